r"""Rocket Launching (Zhou, Fan, Cui, Bian, Zhu & Gai, AAAI 2018; arXiv 2017).

Paper: https://arxiv.org/abs/1708.04106
Code:  https://github.com/zhougr1993/Rocket-Launching (PyTorch 0.x, the authors': rocket_interval.py,
       rocket_bottom.py, utils.py)
Id:    zhou2017rocket

Idea: no pre-trained teacher. A small "light" net and a large "booster" net share their lower layers
and are trained together, in one run, on the same mini-batches; the booster's logits guide the light
net during the whole of training (its trajectory, not only its end point). After training the
booster-only layers are dropped, like a rocket's booster stage: the deployed model is the shared
layers plus the light net's own layers.

Notation (paper, Sec. "Rocket Launching"): l(x), z(x) the light and booster logits, p = softmax(l),
q = softmax(z); W_S the shared parameters, W_L the light net's own, W_B the booster's own.

Objective (Eq. 1):
    L(x; W_S, W_L, W_B) = H(y, p(x)) + H(y, q(x)) + lambda * ||l(x) - z(x)||_2^2 .
The hint is on logits (as in ba2013deep, "L_mimic"), not on probabilities: the paper shows that the
MSE between softmax outputs has a gradient proportional to p_i (Eq. 2), vanishing for very negative
logits, while d L_mimic / d l_i = l_i - z_i (Eq. 3) does not; temperature KD (Eq. 4) is the third
candidate and also loses to L_mimic in its Table 3.
Reductions (the authors' code, rocket_interval.py h()): both cross-entropies averaged over the batch;
the hint summed over classes and averaged over the batch, gamma * sum((z - l)^2) / batchSize.

Gradient block, exactly (the question this file answers): when the hint's gradient flows back, the
booster's own parameters W_B are held fixed, so z(x) of the forward pass is a target the light net
moves towards and the booster learns from H(y, q) alone (Fig. 2 of the paper; the authors' wiki page
alibaba/x-deeplearning "Rocket Training" says the same in words: W_B is not updated by the hint).
The authors' code implements it as a stop-gradient on the booster's logits (``y.data``, wrapped in a
Variable with requires_grad=False), which blocks *every* path of the hint through z:
    - W_B: no hint gradient (the block the paper names);
    - W_S *through the booster's path* (d z / d W_S): no hint gradient either;
    - W_S through the light path (d l / d W_S) and W_L: the full hint gradient 2 lambda (l - z) dl/dW.
So under the block the shared layers are pulled by the hint only as part of the light net. This file
follows the code (``gradient_block=True`` detaches z). Without the block (``gradient_block=False``,
the paper's Table 2 ablation) z also moves towards l, through W_B and through W_S on the booster path.
The cross-entropies are never blocked: W_S gets H(y, p) and H(y, q) from both heads.

Defaults: hint_weight lambda = 0.03 (the authors' README, every rocket command of Tables 1, 2 and 4:
``--gamma 0.03``; the paper's text value could not be read). The two cross-entropies have weight 1
(Eq. 1). One optimiser over all parameters (the code: one SGD over light, booster and shared).

Paper vs code, and which is followed:
- The block, as above: the paper says W_B is fixed; the code detaches z, which also removes the hint's
  pull on W_S through the booster path. The code is followed (the two agree on W_B and W_L).
- The code's ablation switch ``--grad_block False`` is parsed with ``type=bool``, and bool("False") is
  True, so the README's Table 2 "without gradient block" command still blocks; the ablation here
  (gradient_block=False) is what the paper describes, not what that command runs.
- Sharing: in the code the shared layers are shared *convolution weights*; the light net recomputes
  them with its own BatchNorm layers (``bns*``). Here the shared module is run once and both heads read
  its output (Fig. 1 of the paper; the industrial model shares its embedding layers this way).
- The code divides the hint by the nominal batch size (128) even on a smaller last batch; here by the
  actual batch size.
Left out: "rocket + KD" (an extra temperature-KD term from a separately pre-trained booster, Tables 1
and 4), attention transfer baselines, the interval-sharing layout of WRNs (bottom sharing is the one
implemented: shared lower layers, then separate upper layers), and the CTR model of Table 5.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["hint_loss", "rocket_loss", "RocketNet", "rocket_step", "count_parameters"]


def hint_loss(light_logits: Tensor, booster_logits: Tensor) -> Tensor:
    """||l(x) - z(x)||_2^2 summed over classes, averaged over the batch (Eq. 1; the code's reduction).

    The booster logits are used as given: detach them for the gradient block (see :func:`rocket_loss`)."""
    return (light_logits - booster_logits).pow(2).sum(-1).mean()


def rocket_loss(light_logits: Tensor, booster_logits: Tensor, targets: Tensor, hint_weight: float = 0.03,
                gradient_block: bool = True) -> dict[str, Tensor]:
    """The terms of Eq. 1: {"ce_light": H(y, p), "ce_booster": H(y, q), "hint": lambda ||l - z||^2}.

    ``gradient_block``: the hint sees the booster's logits as a constant (the authors' ``y.data``), so it
    updates the light net (W_L, and W_S through l) and never the booster (W_B, nor W_S through z)."""
    target = booster_logits.detach() if gradient_block else booster_logits
    return {"ce_light": F.cross_entropy(light_logits, targets),
            "ce_booster": F.cross_entropy(booster_logits, targets),
            "hint": hint_weight * hint_loss(light_logits, target)}


class RocketNet(nn.Module):
    """Shared lower layers and two heads (Fig. 1): ``forward(x) -> (l(x), z(x))``.

    shared: W_S, run once per input; light_head: W_L; booster_head: W_B. ``light(x)`` is the deployed
    model, light_head(shared(x)); the booster head is dropped at inference."""

    def __init__(self, shared: nn.Module, light_head: nn.Module, booster_head: nn.Module):
        super().__init__()
        self.shared, self.light_head, self.booster_head = shared, light_head, booster_head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.shared(x)
        return self.light_head(h), self.booster_head(h)

    def light(self, x: Tensor) -> Tensor:
        return self.light_head(self.shared(x))

    def booster(self, x: Tensor) -> Tensor:
        return self.booster_head(self.shared(x))


def count_parameters(*modules: nn.Module) -> int:
    """Number of distinct parameters of ``modules`` together (a shared module is counted once)."""
    seen = {id(p): p for m in modules for p in m.parameters()}
    return sum(p.numel() for p in seen.values())


def rocket_step(net: RocketNet, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
                hint_weight: float = 0.03, gradient_block: bool = True) -> dict[str, Tensor]:
    """One joint update of light, booster and shared layers on the mini-batch (x, y); detached terms."""
    light_logits, booster_logits = net(x)
    terms = rocket_loss(light_logits, booster_logits, y, hint_weight, gradient_block)
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


if __name__ == "__main__":
    torch.manual_seed(0)
    net = RocketNet(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), nn.Linear(16, 5),
                    nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 5)))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    xb, yb = torch.randn(32, 6), torch.randint(0, 5, (32,))
    for it in range(3):
        print(it, {k: round(v.item(), 4) for k, v in rocket_step(net, opt, xb, yb).items()})
    print("deployed parameters:", count_parameters(net.shared, net.light_head), "of", count_parameters(net))
