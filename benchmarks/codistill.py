"""Codistillation (anil2018large) with one worker per process: torchrun, or any launcher that sets
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (gloo on CPU, NCCL on GPUs).

Each process trains one worker of kdatlas.recipes.anil2018large (the same code path as the
benchmark's in-process run, which gives bit-identical weights) and exchanges parameters with the
others through torch.distributed.all_gather. At the end every rank scores its model; rank 0 prints
the scores and the test churn (the fraction of test inputs on which the workers' predictions
differ) and writes them to ``--out`` as JSON.

One machine, two processes (CPU):
    .venv/bin/torchrun --standalone --nproc_per_node=2 benchmarks/codistill.py --task mnist1d --seed 1
Two machines, one process each (run on both, node rank 0 and 1):
    torchrun --nnodes=2 --nproc_per_node=1 --node_rank=<0|1> --rdzv_backend=c10d \\
        --rdzv_endpoint=<host of node 0>:29500 benchmarks/codistill.py --task mnist1d --seed 1
``--distill-weight 0`` trains the same workers independently (the churn baseline).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.distributed as dist


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="the CI-sized task")
    ap.add_argument("--epochs", type=int, default=None, help="override the task's student epochs")
    ap.add_argument("--distill-weight", type=float, default=None)
    ap.add_argument("--exchange-every", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from kdatlas.harness import cleanup_distributed, get_task, setup_distributed
    from kdatlas.implementations import anil2018large as impl
    from kdatlas.recipes import get_recipe
    from kdatlas.recipes.anil2018large import train_workers

    rank, world = setup_distributed()
    if world < 2:
        print("codistill.py needs at least two processes (run it under torchrun)", file=sys.stderr)
        return 2
    over = {"epochs": args.epochs} if args.epochs else {}
    task = get_task(args.task, quick=args.quick, **over)
    s = get_recipe("anil2018large").settings_for(task.name)
    s |= {k: v for k, v in (("distill_weight", args.distill_weight), ("exchange_every", args.exchange_every))
          if v is not None} | {"workers": world}
    workers, _ = train_workers(task, args.seed, s, [rank], world,
                               exchange=lambda ws: impl.exchange_parameters(ws[0].model))
    model = workers[rank].model.eval()
    score = task.score(model)
    with torch.no_grad():
        preds = torch.cat([model(b[0].to(task.device)).argmax(-1) for b in task.test_loader])
    gathered = impl.exchange_predictions(preds.to(torch.float32))
    scores = [torch.empty(1) for _ in range(world)]
    dist.all_gather(scores, torch.tensor([score], dtype=torch.float32))
    if rank == 0:
        churn = float((torch.stack(gathered) != gathered[0]).any(0).float().mean()) * 100
        result = {"task": task.name, "seed": args.seed, "world": world, "settings": s,
                  "scores": [round(float(v), 2) for v in scores], "test_churn_percent": round(churn, 2)}
        print(json.dumps(result))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=2)
    cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
