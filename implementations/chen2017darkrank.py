r"""DarkRank: Accelerating Deep Metric Learning via Cross Sample Similarities Transfer
(Chen, Wang & Zhang, 2017; AAAI 2018).

Paper: https://arxiv.org/abs/1707.01220
Id:    chen2017darkrank

Idea: a metric-learning teacher has no class probabilities to soften, but it does know how it
*ranks* the other samples of a batch by their similarity to each query. DarkRank turns these
rankings into distributions over permutations (Plackett-Luce, from listwise learning to rank) and
asks the student to match them: either the whole distribution (soft transfer, a KL over all
permutations) or only the teacher's most likely ranking (hard transfer, its log-likelihood under
the student).

Equations (Sec. 3):
- Score of a candidate x for a query q, from embedding distances:
      S(x) = -alpha * ||q - x||_2^beta .
- Plackett-Luce probability of a permutation pi of the n candidates X = (x_1..x_n):
      P(pi | X) = prod_{i=1}^{n} exp(S(x_pi(i))) / sum_{k=i}^{n} exp(S(x_pi(k))) .
- Soft transfer:  L_soft = KL(P(. | X_t) || P(. | X_s)) = sum_pi P(pi|X_t) log(P(pi|X_t) / P(pi|X_s)).
- Hard transfer:  L_hard = -log P(pi_t | X_s), pi_t the teacher's most probable ranking, i.e. the
  candidates sorted by teacher score (nearest first).
Each sample of the mini-batch is a query in turn; its candidates are other samples of the batch.
Losses are averaged over the queries. The student trains on its own loss plus the transfer term.

Lists (this file): the paper defines the distributions over permutations of the mini-batch; a KL
over n! permutations is tractable only for short lists, so each query's list is the teacher's
`list_size` nearest other samples (default 4, 4! = 24 permutations; the teacher chooses the list,
the student scores it). The hard term uses the same list by default; list_size=None ranks every
other sample of the batch (hard only). A query's list thus comes from the teacher.
Defaults: alpha = 3 and beta = 3, and L2-normalised embeddings (normalize=True) before the
distances, are those of a public MXNet re-implementation (DarkRankLoss, also with list length 4);
the stored copies of the paper did not show its values (see the YAML's `unconfirmed`). With unit
embeddings, distances lie in [0, 2] and scores in [-24, 0], so alpha and beta keep a fixed meaning.
No official code was found.

On our tasks (classification), DarkRank runs as CE + darkrank_weight * L on the pooled penultimate
embedding: the paper's students are metric-learning networks trained with their own metric losses
(verification / triplet) on person re-identification, retrieval and clustering; here the label
loss is plain cross-entropy. That is a change of setting, not the paper's experiment.
Numerics: distances^beta are computed as (squared distance clamped at eps)^(beta/2), which has a
finite gradient at zero distance; Plackett-Luce sums use logcumsumexp. The teacher is .detach()ed.
Depends only on torch.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["score_matrix", "plackett_luce_logprob", "teacher_lists", "darkrank_hard_loss", "darkrank_soft_loss",
           "DarkRankLoss"]

MAX_SOFT_LIST = 7  # 7! = 5040 permutations per query; beyond that the soft KL is impractical


def score_matrix(emb: Tensor, alpha: float = 3.0, beta: float = 3.0, normalize: bool = True,
                 eps: float = 1e-12) -> Tensor:
    """S: (B, B), S[q, j] = -alpha * ||e_q - e_j||^beta (row q: the query). Embeddings (B, D)."""
    if emb.dim() != 2:
        raise ValueError("embeddings must be flat (batch, dim)")
    e = F.normalize(emb, dim=1, eps=eps) if normalize else emb
    sq = (e.unsqueeze(1) - e.unsqueeze(0)).pow(2).sum(-1)
    return -alpha * sq.clamp_min(eps).pow(beta / 2)


def plackett_luce_logprob(scores: Tensor) -> Tensor:
    """log P(pi | X) for scores already in the order pi (last dim): sum_i [s_i - logsumexp_{k>=i} s_k]."""
    tail = torch.logcumsumexp(scores.flip(-1), dim=-1).flip(-1)  # logsumexp over positions k >= i
    return (scores - tail).sum(-1)


def teacher_lists(teacher_emb: Tensor, list_size: int | None, alpha: float = 3.0, beta: float = 3.0,
                  normalize: bool = True) -> Tensor:
    """(B, k) indices: for each query, the other samples sorted by teacher score (nearest first),
    the first ``list_size`` of them (all B - 1 when None). The query itself is excluded."""
    b = teacher_emb.shape[0]
    k = b - 1 if list_size is None else list_size
    if not 2 <= k <= b - 1:
        raise ValueError(f"list_size {list_size} needs 2 <= list_size <= batch - 1 = {b - 1}")
    # integer indices: no gradient can flow through them to the teacher
    s = score_matrix(teacher_emb, alpha, beta, normalize)
    s = s.masked_fill(torch.eye(b, dtype=torch.bool, device=s.device), -math.inf)  # never its own candidate
    return s.argsort(dim=1, descending=True, stable=True)[:, :k]


def _check(student_emb: Tensor, teacher_emb: Tensor) -> None:
    if student_emb.dim() != 2 or teacher_emb.dim() != 2:
        raise ValueError("embeddings must be flat (batch, dim); pool feature maps first")
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ValueError(f"batch sizes differ: {student_emb.shape[0]} vs {teacher_emb.shape[0]}")


def darkrank_hard_loss(student_emb: Tensor, teacher_emb: Tensor, alpha: float = 3.0, beta: float = 3.0,
                       list_size: int | None = 4, normalize: bool = True) -> Tensor:
    """Mean over queries of -log P(pi_t | X_s) on the teacher's list. Shapes (B, D_s), (B, D_t)."""
    _check(student_emb, teacher_emb)
    idx = teacher_lists(teacher_emb, list_size, alpha, beta, normalize)
    s = score_matrix(student_emb, alpha, beta, normalize).gather(1, idx)  # student scores, teacher's order
    return -plackett_luce_logprob(s).mean()


def darkrank_soft_loss(student_emb: Tensor, teacher_emb: Tensor, alpha: float = 3.0, beta: float = 3.0,
                       list_size: int = 4, normalize: bool = True) -> Tensor:
    """Mean over queries of KL(P_t || P_s) over all list_size! permutations of the teacher's list."""
    _check(student_emb, teacher_emb)
    if list_size is None or list_size > MAX_SOFT_LIST:
        raise ValueError(f"soft transfer enumerates list_size! permutations: use list_size <= {MAX_SOFT_LIST}")
    idx = teacher_lists(teacher_emb, list_size, alpha, beta, normalize)
    s = score_matrix(student_emb, alpha, beta, normalize).gather(1, idx)  # (B, k)
    t = score_matrix(teacher_emb.detach(), alpha, beta, normalize).gather(1, idx)
    perms = torch.tensor(list(itertools.permutations(range(list_size))), device=s.device)  # (k!, k)
    lp_s = plackett_luce_logprob(s[:, perms])  # (B, k!)
    lp_t = plackett_luce_logprob(t[:, perms])
    return (lp_t.exp() * (lp_t - lp_s)).sum(-1).mean()


class DarkRankLoss(nn.Module):
    """soft_weight * L_soft + hard_weight * L_hard, as a dict of the weighted terms (zero-weight
    terms are left out). Holds only the settings; add the task loss yourself."""

    def __init__(self, soft_weight: float = 1.0, hard_weight: float = 0.0, alpha: float = 3.0,
                 beta: float = 3.0, list_size: int = 4, normalize: bool = True):
        super().__init__()
        self.soft_weight, self.hard_weight = soft_weight, hard_weight
        self.alpha, self.beta, self.list_size, self.normalize = alpha, beta, list_size, normalize

    def forward(self, student_emb: Tensor, teacher_emb: Tensor) -> dict[str, Tensor]:
        kw = dict(alpha=self.alpha, beta=self.beta, list_size=self.list_size, normalize=self.normalize)
        out = {}
        if self.soft_weight:
            out["soft"] = self.soft_weight * darkrank_soft_loss(student_emb, teacher_emb, **kw)
        if self.hard_weight:
            out["hard"] = self.hard_weight * darkrank_hard_loss(student_emb, teacher_emb, **kw)
        return out


if __name__ == "__main__":
    torch.manual_seed(0)
    s = torch.randn(16, 8, requires_grad=True)
    t = torch.randn(16, 32)
    terms = DarkRankLoss(soft_weight=1.0, hard_weight=1.0)(s, t)
    sum(terms.values()).backward()
    print({k: round(v.item(), 4) for k, v in terms.items()}, "grad norm", s.grad.norm().item())
