r"""Using a Neural Network to Approximate an Ensemble of Classifiers (Zeng & Martinez, 2000).

Paper: Neural Processing Letters 12(3):225-237, 2000, https://doi.org/10.1023/A:1026530200837
Id:    zeng2000using

Idea: an ensemble (bagging, boosting) is more accurate than one network but costs its number of
members in storage and run time. Train one network, the *approximator*, to reproduce what the
ensemble outputs, on the training inputs and on extra generated inputs labelled by the ensemble;
keep only the approximator.

What could be read, and from where. The letter's text was not readable in any stored corpus (only
its abstract: Springer page via Unpaywall, an ACM mirror, datalearner). What the method does beyond
the abstract is taken from the one primary source that describes it, the related-work section of
Bucilua, Caruana & Niculescu-Mizil (KDD 2006, Sec. 5): Zeng and Martinez approximated ensembles of
*ten neural networks*; the approximator was trained on synthetic examples generated "using an
algorithm similar to RANDOM" (their Sec. 2.1: each attribute drawn independently from the bag of
that attribute's training values); and a number of synthetic examples comparable to the size of the
training set was enough. So here:

  1. ``bootstrap_indices``: the members are trained on bootstrap replicates (bagging, the first of
     the two ensemble methods the abstract names; boosting is not implemented).
  2. ``random_instances``: RANDOM as Bucilua et al. describe it; ``n_new`` = the training-set size
     by default in the recipe (1x, "comparable to the size of the initial train set").
  3. ``ensemble_targets``: the targets on the original plus the generated inputs. "average" (the
     default): the mean of the members' softmax probabilities; "vote": the one-hot majority vote,
     ties broken towards the lowest class index (``argmax`` of the vote counts). Which of the two
     the letter uses, or whether it uses the members' raw output vectors, is NOT confirmed.
  4. ``approximation_loss``: -sum_c t_c log q_c, summed over the classes and averaged over the
     batch (soft cross-entropy; with "vote" targets it is the usual cross-entropy on the ensemble's
     labels). The letter's own error function (a 2000 network would likely use squared error on
     sigmoid/softmax outputs) is NOT confirmed; the cross-entropy is the atlas's choice.

There is no temperature: the letter predates it, and these targets are the ensemble's plain outputs.
The targets are constants (computed under ``no_grad`` and detached in the loss). No official code
exists. Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["bootstrap_indices", "random_instances", "ensemble_targets", "approximation_loss",
           "ensemble_probs", "Ensemble"]


def bootstrap_indices(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A bootstrap replicate of a training set of size ``n``: ``n`` indices drawn with replacement."""
    return torch.randint(0, n, (n,), generator=generator)


def random_instances(x: Tensor, n_new: int, generator: torch.Generator | None = None) -> Tensor:
    """RANDOM (Bucilua et al., Sec. 2.1): every attribute (every entry of ``x[i]``) of every new
    instance is drawn uniformly from the bag of that attribute's values in ``x``, independently of
    the other attributes. Returns ``(n_new, *x.shape[1:])``."""
    flat = x.reshape(len(x), -1)
    rows = torch.randint(0, len(x), (n_new, flat.shape[1]), generator=generator).to(x.device)
    return flat.gather(0, rows).reshape(n_new, *x.shape[1:])


def ensemble_targets(member_logits: list[Tensor], combine: str = "average") -> Tensor:
    """The ensemble's combined output, a (B, C) distribution per input (see the module docstring)."""
    if not member_logits:
        raise ValueError("the ensemble has no members")
    if combine == "average":
        return torch.stack([F.softmax(z.detach(), dim=-1) for z in member_logits]).mean(0)
    if combine == "vote":
        c = member_logits[0].shape[-1]
        votes = sum(F.one_hot(z.argmax(-1), c) for z in member_logits)  # argmax: no gradient
        return F.one_hot(votes.argmax(-1), c).to(member_logits[0].dtype)  # ties: the lowest class
    raise ValueError(f"combine must be 'average' or 'vote', got {combine!r}")


def approximation_loss(student_logits: Tensor, ensemble_probs: Tensor) -> Tensor:
    """-sum_c t_c log q_c, q = softmax(student_logits), t the ensemble's targets; mean over the batch."""
    return -(ensemble_probs.detach() * F.log_softmax(student_logits, dim=-1)).sum(-1).mean()


def ensemble_probs(members: list[nn.Module], x: Tensor, combine: str = "average", batch_size: int = 512) -> Tensor:
    """``ensemble_targets`` of the members (in eval mode, no gradient) on ``x``, batch by batch."""
    was = [m.training for m in members]
    out = []
    with torch.no_grad():
        for m in members:
            m.eval()
        for i in range(0, len(x), batch_size):
            out.append(ensemble_targets([m(x[i:i + batch_size]) for m in members], combine))
    for m, w in zip(members, was):
        m.train(w)
    return torch.cat(out)


class Ensemble(nn.Module):
    """The members as one classifier: ``forward`` returns the log of the averaged probabilities
    (its argmax is the "average" ensemble's decision)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([F.softmax(m(x), dim=-1) for m in self.members]).mean(0).clamp_min(1e-12).log()
