r"""SemCKD: Cross-Layer Distillation with Semantic Calibration (Chen et al., AAAI 2021).

Paper: https://arxiv.org/abs/2012.03236 (v1 the AAAI paper; v2 the extended IEEE TKDE version)
Code:  https://github.com/DefangChen/SemCKD (official; models/util.py SelfA, MLPEmbed, AAEmbed;
       distiller_zoo/SemCKD.py; helper/loops.py; train_student.py; scripts/run_cifar_distill.sh)
Id:    chen2020crosslayer

Idea: feature-map distillation usually pairs student layer l with one hand-picked teacher layer.
When the networks differ, a fixed pair can match layers of different meaning. SemCKD lets every
student layer look at every teacher layer and decide, per sample, how much to learn from each:
a small attention module scores the (student layer, teacher layer) pairs, and the student layer is
projected to the shape of each teacher layer and pulled towards all of them, weighted by the scores.

Method (the authors' code; see "what was read" below). For a batch of b samples, student maps
f_s^l (l = 1..S) and teacher maps f_t^k (k = 1..T):
    A^l   = F_s^l (F_s^l)^T           b x b batch similarity of the flattened student map l
    B^k   = F_t^k (F_t^k)^T           the same for teacher map k (the teacher is detached)
    q_l^i = MLP_q^l(A^l[i, :])        query of sample i: row i of A^l, MLP b -> 2(b/4) -> b/4, L2-normalised
    k_k^i = MLP_k^k(B^k[i, :])        key, same shape
    alpha^i_{l,k} = softmax_k(q_l^i . k_k^i)                               (per sample, over teacher layers)
    P_{l->k}      conv1x1(C_s^l -> 2 C_t^k)-BN-ReLU, conv3x3(2 C_t^k)-BN-ReLU, conv1x1(-> C_t^k)
                  (bias-free; the larger of the two maps is first average-pooled to the other's size)
    d^i_{l,k}     = mean over the elements of sample i of (P_{l->k}(f_s^l) - f_t^k)^2
    L_SemCKD      = 1/(b S) sum_i sum_l sum_k alpha^i_{l,k} d^i_{l,k}
    L             = gamma CE + alpha_KD T^2 KL(p_t^T || p_s^T) + beta L_SemCKD
The attention weights are not detached: the loss trains the query/key MLPs, so the module learns to
put weight on the teacher layers the student layer can match, and the queries also pass gradient
into the student's maps through A^l.

Defaults and where they come from: gamma = alpha_KD = 1, T = 4, beta = 400 (README and
scripts/run_cifar_distill.sh: "-r 1 -a 1 -b 400"; train_student.py --kd_T 4); factor 4 for the query
and key width (SelfA's factor=4); the layers are every stage output between the stem and the pooled
vector (feat[1:-1] of the RepDistiller-style models: post-ReLU stage outputs, is_feat=True with
preact=False); the teacher runs under no_grad. The MLP input width is the batch size: the module is
built for one batch size, and the code's training loop skips a batch that is shorter (loops.py:
"if opt.distill == 'semckd' and input.shape[0] < opt.batch_size: continue"). Here
:meth:`SemCKDAttention.forward` refuses another batch size with a ValueError; what to do with a
short batch is the caller's choice (the atlas's recipe drops the SemCKD term, keeping CE and KD).

What was read: the official code, in full for this method. The paper's own text beyond the
abstract and introduction was not readable in the stored copies, so its equation numbers and any
difference between its equations and the code are not checked; the code is what is followed.

Generalisations and differences (code vs this file):
- The code is 2-D and pools to squares by comparing the first spatial dimension; here ``dim=1``
  gives Conv1d/BatchNorm1d for sequences, and the larger map (by its first spatial dimension, as in
  the code) is pooled to the other's full spatial shape.
- The code's SemCKDLoss allocates its loss tensor with .cuda(); here it is built on the input's
  device. The reduction is the same: per-pair per-sample means, weighted, summed, / (b S).
- :func:`kd_loss` is Hinton's T^2-scaled KL with batch-mean reduction (RepDistiller's DistillKL),
  kept here so the file is self-contained.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["batch_similarity", "QueryKeyEmbed", "LayerProjector", "align_spatial", "SemCKDAttention",
           "semckd_loss", "kd_loss"]


def batch_similarity(features: Tensor) -> Tensor:
    """A = F F^T: (b, b) inner products of the flattened samples of one layer's maps (b, ...)."""
    flat = features.reshape(features.shape[0], -1)
    return flat @ flat.t()


class QueryKeyEmbed(nn.Module):
    """Row i of a b x b similarity matrix -> a unit vector of width b // factor (the query or key of
    sample i): Linear(b, 2 (b // factor)) -> ReLU -> Linear(-> b // factor) -> L2 normalisation."""

    def __init__(self, batch_size: int, factor: int = 4):
        super().__init__()
        width = batch_size // factor
        if width < 1:
            raise ValueError(f"batch_size // factor must be >= 1, got {batch_size} // {factor}")
        self.linear1, self.linear2 = nn.Linear(batch_size, 2 * width), nn.Linear(2 * width, width)

    def forward(self, similarity: Tensor) -> Tensor:
        return F.normalize(self.linear2(F.relu(self.linear1(similarity))), p=2.0, dim=1)


class LayerProjector(nn.Module):
    """P_{l->k}: conv1x1(C_s -> 2 C_t)-BN-ReLU -> conv3x3(2 C_t)-BN-ReLU -> conv1x1(-> C_t), bias-free.

    No activation at the end (the code's AAEmbed): the projection may be negative although the
    teacher's maps are post-ReLU. ``dim``: 2 for images, 1 for sequences."""

    def __init__(self, student_channels: int, teacher_channels: int, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
        mid = 2 * teacher_channels
        self.regressor = nn.Sequential(
            conv(student_channels, mid, 1, bias=False), bn(mid), nn.ReLU(inplace=True),
            conv(mid, mid, 3, padding=1, bias=False), bn(mid), nn.ReLU(inplace=True),
            conv(mid, teacher_channels, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.regressor(x)


def align_spatial(student_map: Tensor, teacher_map: Tensor) -> tuple[Tensor, Tensor]:
    """(student, target): the larger map, by its first spatial dimension, average-pooled to the other's
    spatial shape (the student before its projection, the teacher as the target)."""
    s_size, t_size = tuple(student_map.shape[2:]), tuple(teacher_map.shape[2:])
    if len(s_size) != len(t_size):
        raise ValueError(f"maps of different rank: {tuple(student_map.shape)} vs {tuple(teacher_map.shape)}")
    if s_size == t_size:
        return student_map, teacher_map
    pool = F.adaptive_avg_pool1d if len(s_size) == 1 else F.adaptive_avg_pool2d
    if s_size[0] > t_size[0]:
        return pool(student_map, t_size), teacher_map
    return student_map, pool(teacher_map, s_size)


class SemCKDAttention(nn.Module):
    """Queries, keys and projectors for S student layers and T teacher layers (the code's SelfA).

    ``forward(student_maps, teacher_maps)`` -> (projected, targets, attention): ``projected[l][k]`` is
    P_{l->k} of student map l (aligned), ``targets[l][k]`` teacher map k (detached, aligned),
    ``attention`` (b, S, T) with rows summing to one over the teacher layers."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int], batch_size: int,
                 dim: int = 2, factor: int = 4):
        super().__init__()
        self.batch_size = batch_size
        self.query = nn.ModuleList(QueryKeyEmbed(batch_size, factor) for _ in student_channels)
        self.key = nn.ModuleList(QueryKeyEmbed(batch_size, factor) for _ in teacher_channels)
        self.projectors = nn.ModuleList(
            nn.ModuleList(LayerProjector(c_s, c_t, dim) for c_t in teacher_channels) for c_s in student_channels)

    def attention(self, student_maps: list[Tensor], teacher_maps: list[Tensor]) -> Tensor:
        """alpha: (b, S, T), softmax over the teacher layers of the query . key of each sample."""
        b = student_maps[0].shape[0]
        if b != self.batch_size or any(m.shape[0] != b for m in [*student_maps, *teacher_maps]):
            raise ValueError(f"SemCKDAttention was built for batches of {self.batch_size} (its query and key "
                             f"MLPs read rows of b x b similarity matrices); got batch sizes "
                             f"{[m.shape[0] for m in student_maps]} (student) and "
                             f"{[m.shape[0] for m in teacher_maps]} (teacher)")
        q = torch.stack([mlp(batch_similarity(f)) for mlp, f in zip(self.query, student_maps)], 1)  # (b, S, w)
        k = torch.stack([mlp(batch_similarity(f.detach())) for mlp, f in zip(self.key, teacher_maps)], 2)  # (b, w, T)
        return torch.softmax(torch.bmm(q, k), dim=-1)

    def forward(self, student_maps: list[Tensor], teacher_maps: list[Tensor]):
        if len(student_maps) != len(self.query) or len(teacher_maps) != len(self.key):
            raise ValueError(f"expected {len(self.query)} student and {len(self.key)} teacher maps, "
                             f"got {len(student_maps)} and {len(teacher_maps)}")
        attention = self.attention(student_maps, teacher_maps)
        projected, targets = [], []
        for f_s, row in zip(student_maps, self.projectors):
            pairs = [align_spatial(f_s, f_t.detach()) for f_t in teacher_maps]
            projected.append([proj(s) for proj, (s, _) in zip(row, pairs)])
            targets.append([t for _, t in pairs])
        return projected, targets, attention


def semckd_loss(projected: list[list[Tensor]], targets: list[list[Tensor]], attention: Tensor) -> Tensor:
    """1/(b S) sum_{i,l,k} alpha^i_{l,k} mean_elements((P_{l->k}(f_s^l) - f_t^k)_i^2); a 0-d tensor."""
    b, n_s, n_t = attention.shape
    if len(projected) != n_s or any(len(row) != n_t for row in projected):
        raise ValueError(f"attention is for {n_s} x {n_t} layer pairs, projected holds "
                         f"{[len(row) for row in projected]}")
    d = torch.stack([torch.stack([(p - t.detach()).pow(2).reshape(b, -1).mean(1) for p, t in zip(prow, trow)], 1)
                     for prow, trow in zip(projected, targets)], 1)  # (b, S, T) per-sample distances
    return (attention * d).sum() / (b * n_s)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """T^2 KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the batch (Hinton's term)."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature ** 2


if __name__ == "__main__":
    torch.manual_seed(0)
    b = 16
    student_maps = [torch.relu(torch.randn(b, 8, 8, 8, requires_grad=True)), torch.relu(torch.randn(b, 16, 4, 4))]
    teacher_maps = [torch.relu(torch.randn(b, 32, 8, 8)), torch.relu(torch.randn(b, 64, 4, 4)),
                    torch.relu(torch.randn(b, 128, 2, 2))]
    module = SemCKDAttention([8, 16], [32, 64, 128], batch_size=b)
    projected, targets, alpha = module(student_maps, teacher_maps)
    loss = 400.0 * semckd_loss(projected, targets, alpha)  # beta = 400, the authors' CIFAR-100 value
    loss.backward()
    print("SemCKD loss", round(loss.item(), 4), "attention of sample 0:\n", alpha[0].detach())
