r"""What distillation costs on top of training the student.

Part 1, one training step at CIFAR size (batch 128, 3x32x32, 100 classes; resnet8x4 student,
resnet32x4 teacher, on this machine's CPU). The floor is what any distillation step must pay: a plain
student step (forward, cross-entropy, backward, SGD update) plus one teacher forward under
``torch.no_grad()``. Each method's step is the same step with the method's loss (the adapters of
``kdatlas.bench``, with CIFAR geometry: FitNets guides stage 2 by the teacher's stage 2, AT pairs the
three residual groups, CRD keeps 16,384 negatives in a 50,000-entry bank). Each configuration takes
one warm-up step and ``reps`` timed steps, interleaved (rep 1 of every configuration, then rep 2, ...),
so slow phases of the machine hit all of them alike. On a shared 2-core machine whole steps scatter
by 10-20% from one rep to the next (measured: the fastest and the median floor step differ by ~20%,
and plain KD came out "slower" than the floor, which it cannot be), too much to resolve a few percent.
So the method's own cost is also timed in isolation: its loss, forward and backward into the
student's outputs (and the loss module's parameters), on fixed outputs, fastest of ``loss_reps``.
Reported ratio = (floor + that cost) / floor, floor = the fastest floor step; the whole-step
timings (fastest and median, with their ratios) stay in the JSON for comparison.
Target: every method within 10% of the floor.

Part 2, one epoch on the embedded data (MNIST-1D, the 4,000 generated training sequences, the bench's
teacher and student, Hinton KD), through ``kdatlas.harness.train``: the student alone, the student with
the live teacher, and with the cached teacher (outputs computed once, looked up by sample index).

    .venv/bin/python benchmarks/overhead.py            # writes results/overhead.json, prints tables
    .venv/bin/python benchmarks/overhead.py --reps 5 --out /tmp/o.json

The docs page is generated from results/overhead.json; rerun this script after changing a method.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from kdatlas import bench
from kdatlas.harness import (Outputs, TeacherCache, build_model, load_mnist1d, model_outputs, pool,
                             seed_everything, train)

ROOT = Path(__file__).resolve().parents[1]

# CIFAR geometry for the adapters (features of resnet8x4/resnet32x4: stem, group 1, group 2, group 3).
CIFAR_SETTINGS = {
    "romero2014fitnets": {"guided_stage": 2, "hint_stage": 2},
    "zagoruyko2016paying": {"stages": [1, 2, 3]},
    "tian2019contrastive": {"num_negatives": 16384, "feat_dim": 128},
}


def _step(student, teacher, loss_fn, opt, x, y, idx) -> float:
    """One training step as ``kdatlas.harness.train`` takes it; returns seconds."""
    t0 = time.perf_counter()
    feats, logits = student.forward_features(x)
    s_out = Outputs(logits, feats, pool(feats[-1]), idx)
    t_out = None
    if teacher is not None:
        with torch.no_grad():
            t_out = model_outputs(teacher, x, idx)
    loss = F.cross_entropy(logits, y) if loss_fn is None else loss_fn(s_out, t_out, y)
    if isinstance(loss, dict):
        loss = sum(loss.values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def measure_steps(batch: int = 128, size: int = 32, reps: int = 5, student_name: str = "resnet8x4",
                  teacher_name: str = "resnet32x4", num_classes: int = 100, n_data: int = 50000,
                  loss_reps: int = 20, log=print) -> dict:
    """Part 1: median step time of the floor, the student alone and every implemented method."""
    seed_everything(0)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, num_classes, (batch,))
    idx = torch.randperm(n_data)[:batch]
    teacher = build_model(teacher_name, num_classes=num_classes).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    configs = {}  # name -> student, teacher (None: no teacher), loss (None: CE), optimizer, method, stage

    def sgd(params):
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)

    for name, with_teacher in (("student alone", False), ("floor", True)):
        student = build_model(student_name, num_classes=num_classes).train()
        configs[name] = dict(student=student, teacher=teacher if with_teacher else None, loss=None,
                             opt=sgd(student.parameters()), pid=None, stage=None)
    skipped = {}
    for pid in bench.METHOD_IDS:
        mod = bench._import_method(pid)
        if isinstance(mod, str):
            skipped[pid] = mod
            continue
        settings = {**bench.DEFAULT_CONFIG["settings"][pid], **CIFAR_SETTINGS.get(pid, {})}
        student = build_model(student_name, num_classes=num_classes).train()
        setup = bench.Setup(bench.probe(student, x[:2]), bench.probe(teacher, x[:2]), n_data,
                            steps_per_epoch=391, epochs=240)  # CIFAR: 50,000 / 128, 240 epochs
        stages = bench.ADAPTERS[pid](mod, setup, student, settings)
        for stage in stages:  # FitNets' two stages are timed separately
            name = pid if len(stages) == 1 else f"{pid} ({stage.name} stage)"
            modules = list(stage.extra_modules)
            for m in modules:
                m.train()
            ps = stage.params if stage.params is not None else [*student.parameters(),
                                                                 *(p for m in modules for p in m.parameters())]
            configs[name] = dict(student=student, teacher=teacher, loss=stage.loss_fn, opt=sgd(ps), pid=pid,
                                 stage=stage.name)

    times = {name: [] for name in configs}
    for rep in range(reps + 1):  # rep 0: warm-up, not recorded
        for name, c in configs.items():
            t = _step(c["student"], c["teacher"], c["loss"], c["opt"], x, y, idx)
            if rep:
                times[name].append(t)
        log(f"  rep {rep}/{reps} done")

    # The method's own cost, isolated: its loss (forward + backward into the student's outputs and the
    # loss module's parameters) on fixed outputs, many times; precise where whole steps are not.
    with torch.no_grad():
        feats, logits = build_model(student_name, num_classes=num_classes).forward_features(x)
        t_out = model_outputs(teacher, x, idx)
    loss_s = {}
    for name, c in configs.items():
        if c["loss"] is None:
            continue
        ts = []
        for rep in range(loss_reps + 1):
            s_feats = [f.detach().clone().requires_grad_() for f in feats]
            s_logits = logits.detach().clone().requires_grad_()
            t0 = time.perf_counter()
            out = c["loss"](Outputs(s_logits, s_feats, pool(s_feats[-1]), idx), t_out, y)
            (sum(out.values()) if isinstance(out, dict) else out).backward()
            if rep:
                ts.append(time.perf_counter() - t0)
        loss_s[name] = min(ts)

    floor, floor_med = min(times["floor"]), statistics.median(times["floor"])
    rows = []
    for name, ts in times.items():
        extra = loss_s.get(name)
        ratio = None if extra is None else (floor + extra) / floor
        rows.append({"name": name, "method": configs[name]["pid"], "stage": configs[name]["stage"],
                     "loss_s": None if extra is None else round(extra, 5),
                     "ratio_to_floor": round(min(ts) / floor if extra is None else ratio, 4),
                     "within_10pct": None if extra is None else ratio <= 1.10,
                     "step_min_s": round(min(ts), 4), "step_median_s": round(statistics.median(ts), 4),
                     "step_ratio_to_floor": round(min(ts) / floor, 4),
                     "step_median_ratio_to_floor": round(statistics.median(ts) / floor_med, 4),
                     "step_times_s": [round(t, 4) for t in ts]})
    return {"setup": {"batch": batch, "input": [3, size, size], "num_classes": num_classes, "n_data": n_data,
                      "student": student_name, "teacher": teacher_name, "reps": reps, "warmup_steps": 1,
                      "loss_reps": loss_reps, "optimizer": "SGD(lr=0.05, momentum=0.9, weight_decay=5e-4)",
                      "threads": torch.get_num_threads(), "settings_overrides": CIFAR_SETTINGS},
            "floor_s": round(floor, 4), "floor_median_s": round(floor_med, 4),
            "ratio": "(floor + loss_s) / floor, floor = fastest of the floor's steps; loss_s = fastest "
                     "forward+backward of the method's loss alone",
            "rows": rows, "skipped": skipped}


def measure_epochs(reps: int = 3, batch: int = 64, n_train: int | None = None, log=print) -> dict:
    """Part 2: one epoch of student alone / live teacher / cached teacher on MNIST-1D (Hinton KD)."""
    from kdatlas.implementations.hinton2015distilling import kd_loss

    data = load_mnist1d(seed=0, n_train=n_train)
    seed_everything(0)
    teacher = build_model(bench.DEFAULT_CONFIG["teacher"], num_classes=10).eval()
    s = bench.DEFAULT_CONFIG["settings"]["hinton2015distilling"]

    def kd(so, to, y):
        return s["ce_weight"] * F.cross_entropy(so.logits, y) + s["kd_weight"] * kd_loss(so.logits, to.logits,
                                                                                        s["temperature"])

    def epoch(**kw) -> float:
        seed_everything(0)
        student = build_model(bench.DEFAULT_CONFIG["student"], num_classes=10)
        return train(student, data.loaders(batch, seed=0)[0], epochs=1, progress=False, device="cpu",
                     **kw).wall_s

    modes = {"student alone": {}, "live teacher": dict(loss_fn=kd, teacher=teacher),
             "cached teacher": dict(loss_fn=kd, teacher=None)}
    times = {m: [] for m in modes}
    builds = []
    for rep in range(reps + 1):
        t0 = time.perf_counter()
        cache = TeacherCache.build(teacher, data.train, device="cpu")
        if rep:
            builds.append(time.perf_counter() - t0)
        modes["cached teacher"]["teacher"] = cache
        for m, kw in modes.items():
            t = epoch(**kw)
            if rep:
                times[m].append(t)
    med = {m: statistics.median(ts) for m, ts in times.items()}
    return {"setup": {"dataset": "mnist1d", "n_train": len(data.train), "batch": batch,
                      "teacher": bench.DEFAULT_CONFIG["teacher"], "student": bench.DEFAULT_CONFIG["student"],
                      "loss": "hinton2015distilling", "reps": reps, "threads": torch.get_num_threads()},
            "epoch_s": {m: round(v, 4) for m, v in med.items()},
            "ratio_to_student_alone": {m: round(v / med["student alone"], 3) for m, v in med.items()},
            "cache_build_s": round(statistics.median(builds), 4)}


def _table(steps: dict, epochs: dict) -> str:
    lines = [f"One training step, batch {steps['setup']['batch']}, {steps['setup']['student']} student, "
             f"{steps['setup']['teacher']} teacher ({steps['setup']['threads']} CPU threads)",
             f"{'configuration':<34s} {'loss ms':>8s} {'x floor':>8s}  {'ok':>3s}  "
             f"{'step min s':>10s} {'x':>6s} {'step median s':>13s} {'x':>6s}"]
    for r in steps["rows"]:
        ok = "" if r["within_10pct"] is None else ("yes" if r["within_10pct"] else "NO")
        loss = "" if r["loss_s"] is None else f"{1e3 * r['loss_s']:.1f}"
        lines.append(f"{r['name']:<34s} {loss:>8s} {r['ratio_to_floor']:8.3f}  {ok:>3s}  {r['step_min_s']:10.3f} "
                     f"{r['step_ratio_to_floor']:6.3f} {r['step_median_s']:13.3f} {r['step_median_ratio_to_floor']:6.3f}")
    for pid, why in steps["skipped"].items():
        lines.append(f"{pid:<42s} skipped: {why}")
    lines += ["", f"One epoch on MNIST-1D ({epochs['setup']['n_train']} sequences, batch {epochs['setup']['batch']})",
              f"{'mode':<34s} {'median s':>7s} {'x alone':>8s}"]
    for m, v in epochs["epoch_s"].items():
        lines.append(f"{m:<34s} {v:7.3f} {epochs['ratio_to_student_alone'][m]:8.3f}")
    lines.append(f"{'(building the cache, once)':<34s} {epochs['cache_build_s']:7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="timed steps/epochs per configuration (after 1 warm-up)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "overhead.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print("part 1: CIFAR-size steps")
    steps = measure_steps(batch=args.batch, reps=args.reps)
    print("part 2: MNIST-1D epochs")
    epochs = measure_epochs(reps=args.reps)
    result = {"step": steps, "epoch": epochs,
              "environment": {"torch": torch.__version__, "python": platform.python_version(),
                              "machine": platform.machine(), "processor": platform.processor(),
                              "device": "cpu"},
              "total_s": round(time.perf_counter() - t0, 1)}
    bench._write_json(args.out, result)
    print(_table(steps, epochs))
    print(f"wrote {args.out} in {result['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
