"""The training loop: determinism, a frozen teacher, loss modules, the cached teacher, checkpoints."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest
from torch import nn

from kdatlas.harness import (ConvNet, Outputs, TeacherCache, default_device, evaluate, load_checkpoint,
                             load_mnist1d, model_outputs, save_checkpoint, seed_everything, train)


@pytest.fixture(scope="module")
def data():
    return load_mnist1d(seed=0, num_samples=400)  # 320 train / 80 test


def small(width: int = 4) -> ConvNet:
    return ConvNet(1, (width, 2 * width), num_classes=10)


def kd(s: Outputs, t: Outputs, y, progress):
    return {"ce": F.cross_entropy(s.logits, y),
            "kd": F.kl_div(F.log_softmax(s.logits / 4, -1), F.log_softmax(t.logits / 4, -1),
                           reduction="batchmean", log_target=True) * 16}


def fit(data, seed: int, **kw):
    seed_everything(seed)
    model = small()
    hist = train(model, data.loaders(64, seed=seed)[0], epochs=2, progress=False, device="cpu", **kw)
    return model, hist


def test_same_seed_same_numbers_other_seed_other_numbers(data):
    a, ha = fit(data, 1)
    b, hb = fit(data, 1)
    c, hc = fit(data, 2)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert ha.train_loss == hb.train_loss
    assert ha.train_loss != hc.train_loss
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_training_learns_and_evaluate_is_percent(data):
    seed_everything(0)
    model = small(8)
    before = evaluate(model, data.loaders()[1])
    hist = train(model, data.loaders(32)[0], epochs=8, lr=0.1, test_loader=data.loaders()[1],
                 progress=False, device="cpu")
    assert len(hist.test_acc) == 8 and hist.test_acc[-1] == evaluate(model, data.loaders()[1])
    assert hist.train_loss[-1] < hist.train_loss[0] and hist.test_acc[-1] > before + 15
    assert model.training  # evaluate restores the mode


def test_evaluate_counts_correct_predictions():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return F.one_hot(x[:, 0].long(), 3).float()

    x = torch.tensor([[0.0], [1.0], [2.0], [2.0]])
    y = torch.tensor([0, 1, 0, 2])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=3)
    assert evaluate(Fixed(), loader) == 75.0


def test_teacher_is_frozen_and_sees_the_students_samples(data):
    seed_everything(0)
    teacher = small(8)
    teacher.train()  # handed over in train mode with requires_grad=True: the loop must cope
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    seen = []

    def loss(s, t, y, progress):
        assert progress.step == len(seen) and progress.epoch == 0 and progress.steps_per_epoch == 5
        assert not teacher.training, "teacher must be in eval mode"
        assert not t.logits.requires_grad and s.logits.requires_grad
        assert torch.equal(s.index, t.index)  # same samples, same order
        x = torch.stack([data.train[int(i)][0] for i in s.index])
        torch.testing.assert_close(t.logits, teacher(x))  # the teacher saw exactly these inputs
        seen.append(s.index.clone())
        return kd(s, t, y, progress)

    seed_everything(0)
    student = small()
    w0 = student.fc.weight.detach().clone()
    train(student, data.loaders(64, seed=0)[0], epochs=1, loss_fn=loss, teacher=teacher, progress=False,
          device="cpu")
    assert len(seen) == 5
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), f"teacher {k} changed"  # weights and BN statistics
    assert all(p.grad is None for p in teacher.parameters())
    assert not torch.equal(student.fc.weight, w0)
    with pytest.raises(ValueError, match="teacher parameters"):
        train(student, data.loaders()[0], epochs=1, teacher=teacher, params=list(teacher.parameters()),
              progress=False, device="cpu")


def test_distillation_reaches_the_student(data):
    """The teacher's outputs change the student (a swapped or dropped teacher would not)."""
    seed_everything(0)
    t1, t2 = small(8), small(8)
    a, _ = fit(data, 0, loss_fn=kd, teacher=t1)
    b, _ = fit(data, 0, loss_fn=kd, teacher=t2)
    assert not torch.equal(a.fc.weight, b.fc.weight)


def test_loss_module_parameters_join_the_optimizer(data):
    class Regressor(nn.Module):  # a FitNets-style hint regressor owned by the loss
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(8, 16, 1)

        def forward(self, s, t, y, progress):
            return {"ce": F.cross_entropy(s.logits, y),
                    "hint": F.mse_loss(self.conv(s.features[-1]), t.features[-1])}

    seed_everything(0)
    teacher, reg = ConvNet(1, (8, 16), num_classes=10), Regressor()
    w0 = reg.conv.weight.detach().clone()
    _, hist = fit(data, 0, loss_fn=reg, teacher=teacher)
    assert not torch.equal(reg.conv.weight, w0)
    assert set(hist.terms) == {"ce", "hint"} and len(hist.terms["hint"]) == 2
    # params= restricts what moves (FitNets' hint phase: lower stages only)
    seed_everything(0)
    student = small()
    top0 = student.fc.weight.detach().clone()
    low0 = student.stages[0][0][0].weight.detach().clone()
    train(student, data.loaders()[0], epochs=1, loss_fn=reg, teacher=teacher, progress=False, device="cpu",
          params=list(student.stages[0].parameters()) + list(reg.parameters()))
    assert torch.equal(student.fc.weight, top0) and not torch.equal(student.stages[0][0][0].weight, low0)


def test_cached_teacher_equals_live_teacher(data):
    seed_everything(0)
    teacher = small(8).eval()
    cache = TeacherCache.build(teacher, data.train, batch_size=100, device="cpu", features=[1])
    idx = torch.tensor([5, 0, 319])
    x = torch.stack([data.train[int(i)][0] for i in idx])
    out = cache.lookup(idx, torch.device("cpu"))
    live = model_outputs(teacher, x)
    torch.testing.assert_close(out.logits, live.logits)
    torch.testing.assert_close(out.features[1], live.features[1])
    torch.testing.assert_close(out.embedding, live.embedding)
    assert out.features[0] is None  # not kept
    live_student, _ = fit(data, 3, loss_fn=kd, teacher=teacher)
    cached_student, _ = fit(data, 3, loss_fn=kd, teacher=teacher, cache_teacher=True)
    for a, b in zip(live_student.parameters(), cached_student.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_weights_only(tmp_path, data):
    model, _ = fit(data, 0)
    path = tmp_path / "ckpt" / "student.pt"
    save_checkpoint(model, path)
    assert [p.name for p in path.parent.iterdir()] == ["student.pt"]  # no temporary file left
    fresh = load_checkpoint(small(), path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    torch.save({"w": torch.zeros(1), "evil": Outputs}, tmp_path / "pickled.pt")  # a class, not tensors
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        load_checkpoint(small(), tmp_path / "pickled.pt")


def test_default_device_is_a_device():
    dev = default_device()
    assert dev.type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert dev.type == "cpu"


def test_seed_everything_asks_for_deterministic_kernels_without_importing_inductor():
    """seed_everything sets torch's deterministic flag (warn only) as use_deterministic_algorithms
    does, without that call's import of torch._inductor (3-4 s per process, measured)."""
    import subprocess
    import sys

    code = ("import sys, torch; from kdatlas.harness import seed_everything; seed_everything(0); "
            "print(torch.are_deterministic_algorithms_enabled(), "
            "torch.is_deterministic_algorithms_warn_only_enabled(), 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "False"]


def test_make_optimizer_and_cosine_schedule_are_what_train_uses():
    from kdatlas.harness import cosine_schedule, make_optimizer

    p = nn.Parameter(torch.zeros(1))
    opt = make_optimizer("sgd", [p], lr=0.1, weight_decay=0.0)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    assert isinstance(make_optimizer("adamw", [p], 0.1, 0.0), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("adam", [p], 0.1, 0.0)
    sched = cosine_schedule(opt, total_steps=4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1 * (1 + 2 ** -0.5) / 2, 0.05, 0.1 * (1 - 2 ** -0.5) / 2, 0.0, 0.0])
