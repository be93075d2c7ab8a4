r"""Contrastive Representation Distillation (Tian, Krishnan & Isola, 2019; ICLR 2020).

Paper: https://arxiv.org/abs/1910.10699
Id:    tian2019contrastive

Idea: make the student's representation S = f^S(x) carry as much information about the teacher's
T = f^T(x) as possible. A critic h(T, S) learns to tell the congruent pair (T, S of the same input)
from N incongruent ones (T and S of different inputs); training the student together with the
critic maximises a lower bound on the mutual information I(T; S). Negatives come from a memory
bank holding a momentum-averaged embedding of every one of the M training samples.

Bound and critic loss (Sec. 3.1), with q(C=1) = 1/(N+1) for one positive per N negatives:
    I(T; S) >= log N + E_{q(T,S|C=1)}[log h(T, S)] + N E_{q(T,S|C=0)}[log(1 - h(T, S))]
                      `--------------------- L_critic(h) ---------------------'
    f^S* = argmax_{f^S} max_h L_critic(h).
Critic (Sec. 3.1):  h(T, S) = exp(g^T(T)'g^S(S)/tau) / (exp(g^T(T)'g^S(S)/tau) + N/M),
g^T, g^S: linear maps to a common dimension followed by L2 normalisation (the "embedding heads").
Since h = sigmoid(x - log(N/M)) with x = g^T(T)'g^S(S)/tau, this file evaluates log h and
log(1 - h) with logsigmoid (stable for tau = 0.07, where exp(x) spans e^{+-14}).
Loss returned here: -L_critic, the N negatives of each anchor summed (the sample estimate of
N E[.]), averaged over the batch. Full objective (Sec. 3): CE + crd_weight * (-L_critic)
(+ KD for CRD+KD); crd_weight is the paper's beta (0.8 in the authors' CIFAR-100 runs).
Layers (paper): T and S are the penultimate (pooled, pre-classifier) features; the caller passes them.

Paper vs the authors' code (HobbitLong/RepDistiller, crd/). Defaults follow the CODE on the three
switches below, because the paper's critic as written trained badly in our check (MNIST-1D,
500 training samples): with the current pair as positive, both heads drifted to one shared
direction (positive and negative scores equal) and the student ended below the student alone;
with the code's choices the positive/negative scores separate and the student is not hurt.
- positive_from_bank (default True, code): the anchor is scored against the *other side's bank
  entry* of its own sample, so positive and negatives are all bank entries and a shift common to
  all anchors cannot raise the positive alone. False: the current pair g^T(t_i)'g^S(s_i), the
  paper's congruent pair (then the positive carries gradient into both heads).
- estimate_z (default True, code): h = e^x / (e^x + N Z / M), Z fixed at the first call as M times
  the mean of exp(x) (the code: over the K+1 sampled bank entries of the first batch; here: over
  the N negatives), so that h starts near the prior 1/(N+1). False: the paper's h (Z = 1), whose
  threshold x = log(N/M) makes the loss grow like N at the start.
- symmetric (default True, code): a second term anchors the teacher embedding against the student
  bank. Both terms use negatives from p(T)p(S), as the paper's bound asks.
Gradients: the teacher network is frozen (its features are detached here); the heads g^S, g^T
belong to the critic h, which the paper maximises over, and both are trained (in the code too).
With positive_from_bank, g^T learns only through the teacher-anchored term. Banks: buffers,
written in place after the loss without gradient, bank[i] <- normalise(momentum bank[i] +
(1-momentum) v_i), as in the code (ContrastMemory's index_copy_ in the same forward).
Cost (as the code, ContrastMemory: memory.index_select(0, idx.view(-1)), then bmm): each anchor's
N + 1 candidate rows are gathered from the bank first and only they are scored, O(B N D) per step
instead of O(B M D) for the full anchor-bank product. The gathered rows are copies, so the
backward pass does not read the bank and the in-place update before backward() is safe.
Shared negatives (shared_negatives=True; not in the paper or the code): one set of N bank rows
per step, shared by the whole batch, drawn uniformly from the samples that are not in the batch,
so no anchor meets its own sample as a negative. Each anchor's negatives are still draws from
p(T)p(S), so the bound is unchanged; what changes is that the B anchors' estimates share their
negatives (correlated within a step, as in MoCo's queue). The negatives are scored as one matrix
product (B, D) @ (D, N) on N gathered rows, instead of B x (N+1) gathered rows: at N = 16,384,
B = 128, D = 128 that is 8 MB gathered per side instead of 1.07 GB, which is what made the
per-anchor step cost 2.3x the plain student-plus-teacher step (benchmarks/overhead.py). Default
False (the code's per-anchor sampling); the atlas's CIFAR/ImageNet-size recipe turns it on.
Under DistributedDataParallel every rank writes the whole global batch (all ranks' embeddings and
indices are gathered first), so the banks stay identical on every rank (the authors' code is
single-process).
Negatives: the code's CIFAR loader draws them only from samples of *other classes* (mode
"exact", label-aware); here N indices uniform over the M - 1 other samples, with a seeded
torch.Generator (pass negative_index to use your own). Bank start: random unit vectors (the
code: uniform in +-1/sqrt(dim/3)). Defaults from the code (the paper does not list them all):
feat_dim=128, N=16384, tau=0.07, momentum=0.5; M = num_data (50,000 for CIFAR-100).
Depends only on torch.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["crd_critic_loss", "update_bank", "CRDLoss"]


def crd_critic_loss(pos_logit: Tensor, neg_logits: Tensor, num_data: int, log_z: float | Tensor = 0.0) -> Tensor:
    """-L_critic: -(log h(pos) + sum_j log(1 - h(neg_j))), averaged over the batch (Sec. 3.1).

    pos_logit (B,) and neg_logits (B, N) are x = g^T(T)'g^S(S)/tau. With log_z = 0 this is the paper's
    h = e^x / (e^x + N/M); a non-zero log_z gives the authors' code, h = e^x / (e^x + N Z / M)."""
    num_neg = neg_logits.shape[1]
    log_noise = math.log(num_neg) - math.log(num_data) + log_z  # log(N Z / M)
    log_h_pos = F.logsigmoid(pos_logit - log_noise)  # log h(T_i, S_i)
    log_1m_h_neg = F.logsigmoid(log_noise - neg_logits)  # log(1 - h(T_j, S_i))
    return -(log_h_pos + log_1m_h_neg.sum(dim=1)).mean()


@torch.no_grad()
def update_bank(bank: Tensor, index: Tensor, embedding: Tensor, momentum: float) -> Tensor:
    """Rows index of `bank` <- normalise(momentum * bank[index] + (1 - momentum) * embedding).

    In place (index_copy_, no gradient; only the rows `index` are written); returns `bank` itself.
    Safe before backward(): CRDLoss.scores reads copies of the candidate rows, never the bank."""
    mixed = momentum * bank[index] + (1.0 - momentum) * embedding.detach()
    return bank.index_copy_(0, index, F.normalize(mixed, p=2, dim=1))


class CRDLoss(nn.Module):
    """Embedding heads g^S, g^T + one memory bank per side; forward returns -L_critic (a scalar).

    forward(student_features (B, D_s), teacher_features (B, D_t), index (B,), negative_index=None)
    index: the samples' positions in the training set (0..num_data-1, distinct within a batch);
    negative_index: bank rows to use as negatives, (B, N) per anchor or (N,) shared by the batch
    (default: drawn with the seeded generator, per anchor, or shared when shared_negatives=True).
    """

    def __init__(self, student_dim: int, teacher_dim: int, num_data: int, feat_dim: int = 128,
                 num_negatives: int = 16384, nce_temperature: float = 0.07, momentum: float = 0.5,
                 symmetric: bool = True, estimate_z: bool = True, positive_from_bank: bool = True,
                 shared_negatives: bool = False, seed: int = 0):
        super().__init__()
        if num_data < 2:
            raise ValueError("the memory bank needs at least 2 samples")
        self.embed_student = nn.Linear(student_dim, feat_dim)  # g^S (then L2-normalised)
        self.embed_teacher = nn.Linear(teacher_dim, feat_dim)  # g^T (then L2-normalised)
        self.num_data, self.num_negatives = num_data, num_negatives  # M, N
        self.temperature, self.momentum = nce_temperature, momentum  # tau, bank momentum
        self.symmetric, self.estimate_z, self.positive_from_bank = symmetric, estimate_z, positive_from_bank
        self.shared_negatives = shared_negatives
        self.generator = torch.Generator().manual_seed(seed)  # negative sampling (CPU, seeded)
        init = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("bank_student", F.normalize(torch.randn(num_data, feat_dim, generator=init), dim=1))
        self.register_buffer("bank_teacher", F.normalize(torch.randn(num_data, feat_dim, generator=init), dim=1))
        # log Z for (student anchor, teacher anchor); NaN = not yet estimated (estimate_z only)
        self.register_buffer("log_z", torch.full((2,), float("nan")))

    def embed(self, student_features: Tensor, teacher_features: Tensor) -> tuple[Tensor, Tensor]:
        """g^S(S), g^T(T): linear + L2 normalisation. The teacher features are detached."""
        s = F.normalize(self.embed_student(student_features.flatten(1)), p=2, dim=1)
        t = F.normalize(self.embed_teacher(teacher_features.detach().flatten(1)), p=2, dim=1)
        return s, t

    def sample_negatives(self, index: Tensor) -> Tensor:
        """(B, N) indices uniform over the other M - 1 samples (never the anchor's own index)."""
        shape = (index.shape[0], self.num_negatives)
        draw = torch.randint(0, self.num_data - 1, shape, generator=self.generator).to(index.device)
        return draw + (draw >= index.unsqueeze(1)).long()  # skip the anchor's own row

    def sample_shared_negatives(self, index: Tensor) -> Tensor:
        """(N,) indices uniform over the M - B samples not in the batch, shared by every anchor."""
        batch = torch.unique(index.cpu())  # sorted
        if self.num_data - batch.numel() < 1:
            raise ValueError(f"shared negatives need samples outside the batch: num_data={self.num_data}, "
                             f"batch of {batch.numel()} distinct indices")
        draw = torch.randint(0, self.num_data - batch.numel(), (self.num_negatives,), generator=self.generator)
        gaps = batch - torch.arange(batch.numel())  # draw r -> r + #{j: batch_j - j <= r} skips the batch rows
        return (draw + torch.searchsorted(gaps, draw, right=True)).to(index.device)

    def scores(self, anchor: Tensor, other: Tensor, bank: Tensor, index: Tensor,
               neg_idx: Tensor) -> tuple[Tensor, Tensor]:
        """x = <anchor, candidate>/tau for the positive (B,) and the N negatives (B, N).

        Candidates come from `bank` (the other side's); the positive is bank[index] (authors' code)
        or the other side's current embedding `other` (paper; positive_from_bank=False). Only the
        candidate rows are gathered (copies, no gradient) and scored: (B, N+1, D) @ (B, D, 1) for
        per-anchor negatives, (B, D) @ (D, N) for shared ones (neg_idx of shape (N,))."""
        if neg_idx.dim() == 1:  # shared by the batch
            neg = anchor @ bank.index_select(0, neg_idx).t() / self.temperature  # (B, N)
            pos = bank.index_select(0, index) if self.positive_from_bank else other
            return (anchor * pos).sum(1) / self.temperature, neg
        rows = torch.cat([index.unsqueeze(1), neg_idx], 1) if self.positive_from_bank else neg_idx
        cand = bank.index_select(0, rows.reshape(-1)).view(*rows.shape, bank.shape[1])
        x = torch.bmm(cand, anchor.unsqueeze(2)).squeeze(2) / self.temperature  # (B, N+1) or (B, N)
        if self.positive_from_bank:
            return x[:, 0], x[:, 1:]
        return (anchor * other).sum(1) / self.temperature, x

    def _side_loss(self, pos: Tensor, neg: Tensor, which: int) -> Tensor:
        log_z: float | Tensor = 0.0
        if self.estimate_z:
            if torch.isnan(self.log_z[which]):  # Z = M * mean exp(x) over the first batch's negatives
                x = neg.detach().flatten()
                self.log_z[which] = torch.logsumexp(x, 0) - math.log(x.numel()) + math.log(self.num_data)
            log_z = self.log_z[which]
        return crd_critic_loss(pos, neg, self.num_data, log_z)

    def forward(self, student_features: Tensor, teacher_features: Tensor, index: Tensor,
                negative_index: Tensor | None = None) -> Tensor:
        s, t = self.embed(student_features, teacher_features)
        if negative_index is not None:
            neg_idx = negative_index
        elif self.shared_negatives:
            neg_idx = self.sample_shared_negatives(index)
        else:
            neg_idx = self.sample_negatives(index)
        loss = self._side_loss(*self.scores(s, t, self.bank_teacher, index, neg_idx), 0)  # student anchor
        if self.symmetric:
            loss = loss + self._side_loss(*self.scores(t, s, self.bank_student, index, neg_idx), 1)  # teacher anchor
        s_all, t_all, index_all = _gather_across_ranks(s.detach(), t.detach(), index)
        update_bank(self.bank_student, index_all, s_all, self.momentum)  # in place, after the loss
        update_bank(self.bank_teacher, index_all, t_all, self.momentum)
        return loss


def _gather_across_ranks(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Under torch.distributed (DDP), every rank's batch, concatenated in rank order, so that each
    rank writes every sample of the global batch into its banks and the banks stay identical across
    ranks (each rank sees a different shard of the data). Without a process group: unchanged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    world = dist.get_world_size()
    n = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)  # batch sizes may differ on the last step
    biggest = int(max(int(k) for k in sizes))
    out = []
    for x in tensors:
        padded = torch.zeros((biggest, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        out.append(torch.cat([part[: int(k)] for part, k in zip(parts, sizes)]))
    return tuple(out)


if __name__ == "__main__":
    torch.manual_seed(0)
    crd = CRDLoss(student_dim=64, teacher_dim=256, num_data=1000, num_negatives=512)
    f_s, f_t, idx = torch.randn(8, 64, requires_grad=True), torch.randn(8, 256), torch.randperm(1000)[:8]
    loss = crd(f_s, f_t, idx)
    loss.backward()
    print("CRD loss", loss.item(), "grad on g^T:", crd.embed_teacher.weight.grad.abs().sum().item() > 0)
