r"""DLB: Self-Distillation from the Last Mini-Batch for Consistency Regularization (Shen et al., CVPR 2022).

Paper: https://arxiv.org/abs/2203.16172
Code:  https://github.com/Meta-knowledge-Lab/DLB (official; dlb.py, my_dataloader.py)
Id:    shen2022selfdistillation

Idea: no teacher, no extra head. Each training mini-batch is made of two halves: the samples of
the previous iteration, seen again (differently augmented), and new samples, which will be seen
again at the next iteration. The network's predictions on the new half, made now and kept (with
no graph), become the soft targets of the same samples one iteration later. The network is so
asked to stay consistent with its own, one-step-older self on every sample: a sample-level
smoothing of the targets that costs one stored batch of logits.

Method (abstract; details from the official code, dlb.py train_one_epoch):
    iteration t, with B_t the loader's t-th batch (b samples) and B_{t-1} the previous one:
      z_new  = f_theta_t(aug_1(B_t))         logits on the new half (stored, detached, for t+1)
      z_rep  = f_theta_t(aug_2(B_{t-1}))     logits on the repeated half
      L_t    = CE([z_rep; z_new], [y_{t-1}; y_t])                              (mean over 2b)
             + alpha * tau^2 * KL( softmax(z_new^{(t-1)} / tau) || softmax(z_rep / tau) )  (batchmean over b)
    where z_new^{(t-1)} are the logits stored at iteration t-1, computed by f_theta_{t-1} in train
    mode, detached. At the first iteration there is nothing stored: L_1 = CE(z_new, y_1). The store
    carries over epoch boundaries (the code returns pre_data / pre_out from each epoch), so only the
    run's very first step is plain cross-entropy. One optimiser step per loader batch: the number of
    updates and the schedule are the student's alone; each step runs 2b samples through the network.

Defaults and where they come from: tau = 3 (the code's default experiment name "TP3_0.5", read as
T = 3; the draft plan's tau = 3) and alpha = 1 (the draft plan). The code has no default for either
(--T, --alpha are required arguments) and the paper's implementation details were not readable, so
both are unconfirmed (see the YAML). The "0.5" of "TP3_0.5" may be alpha = 0.5: not settled.

Paper vs code, and what this file follows (the code):
- The paper describes one mini-batch whose halves are old and new samples; the code makes two
  forward passes (the repeated batch and the new batch separately), so batch normalisation sees two
  batches of b, not one of 2b. :func:`dlb_step` does the same (``joint_forward=True`` gives the
  single pass of 2b instead; the benchmark does not use it).
- The code's loader yields two augmented views of every image (aug_nums = 2): view 0 when the batch
  is new, view 1 when it is repeated. Here the caller passes the repeated inputs (the recipe
  re-reads the samples from the dataset, so an augmented dataset draws a fresh augmentation; the
  embedded tasks are not augmented, so both visits see the same input).
- CE is over the 2b samples of both halves, as in the code (each sample gets the label loss twice).
Depends only on torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["dlb_kl", "dlb_loss", "LastBatch", "dlb_step"]


def dlb_kl(logits_repeat: Tensor, teacher_logits: Tensor, temperature: float = 3.0) -> Tensor:
    """tau^2 * KL(softmax(teacher / tau) || softmax(repeat / tau)), mean over the b samples.

    ``teacher_logits``: the stored logits of the previous iteration, which play the teacher
    (detached here); row i of both is the same sample."""
    if logits_repeat.shape != teacher_logits.shape:
        raise ValueError(f"repeated logits {tuple(logits_repeat.shape)} and stored logits "
                         f"{tuple(teacher_logits.shape)} differ")
    log_p = F.log_softmax(logits_repeat / temperature, dim=1)
    q = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * temperature ** 2


def dlb_loss(logits_new: Tensor, targets_new: Tensor, logits_repeat: Tensor | None = None,
             targets_repeat: Tensor | None = None, previous_logits: Tensor | None = None,
             temperature: float = 3.0, alpha: float = 1.0) -> dict[str, Tensor]:
    """{"ce": CE over both halves, "dlb": alpha * dlb_kl}; without a repeated half, {"ce": CE(new)}."""
    if logits_repeat is None:
        return {"ce": F.cross_entropy(logits_new, targets_new)}
    ce = F.cross_entropy(torch.cat([logits_repeat, logits_new]), torch.cat([targets_repeat, targets_new]))
    return {"ce": ce, "dlb": alpha * dlb_kl(logits_repeat, previous_logits, temperature)}


@dataclass
class LastBatch:
    """What iteration t keeps for t+1: the batch's inputs, labels, dataset indices and its logits
    (detached: the soft targets carry no graph back to the step that made them)."""

    x: Tensor | None = None
    y: Tensor | None = None
    index: Tensor | None = None
    logits: Tensor | None = None

    @property
    def empty(self) -> bool:
        return self.logits is None

    def keep(self, x: Tensor, y: Tensor, logits: Tensor, index: Tensor | None = None) -> None:
        self.x, self.y, self.index, self.logits = x, y, index, logits.detach()


def dlb_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, last: LastBatch,
             index: Tensor | None = None, repeat_x: Tensor | None = None, temperature: float = 3.0,
             alpha: float = 1.0, joint_forward: bool = False) -> dict[str, Tensor]:
    """One DLB iteration on the new batch (x, y): forward, loss, backward, optimiser step, and
    ``last`` replaced by this batch and its (pre-step) logits. ``repeat_x``: the previous batch's
    inputs for its second visit (default: ``last.x`` as stored). Returns the loss terms (detached)."""
    if last.empty:
        z_new = model(x)
        terms = dlb_loss(z_new, y)
    else:
        x_rep = last.x if repeat_x is None else repeat_x
        if joint_forward:
            z = model(torch.cat([x_rep, x]))
            z_rep, z_new = z[: len(x_rep)], z[len(x_rep):]
        else:  # the code: two passes, the new batch first
            z_new = model(x)
            z_rep = model(x_rep)
        terms = dlb_loss(z_new, y, z_rep, last.y, last.logits, temperature, alpha)
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    optimizer.step()
    last.keep(x, y, z_new, index)
    return {k: v.detach() for k, v in terms.items()}


if __name__ == "__main__":
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    last = LastBatch()
    for step in range(4):
        xb, yb = torch.randn(8, 6), torch.randint(0, 5, (8,))
        print(step, {k: round(v.item(), 4) for k, v in dlb_step(net, opt, xb, yb, last).items()})
