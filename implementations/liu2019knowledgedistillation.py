r"""Knowledge Distillation via Instance Relationship Graph (Liu, Cao, Li, Yuan, Hu, Li & Duan; CVPR 2019).

Paper: https://openaccess.thecvf.com/content_CVPR_2019/html/Liu_Knowledge_Distillation_via_Instance_Relationship_Graph_CVPR_2019_paper.html
Code:  https://github.com/yufanLIU/IRG (official, Caffe)
Id:    liu2019knowledgedistillation

Idea: a teacher knows three things about a mini-batch, not one. What each instance looks like (its
features: the vertices of a graph), how the instances relate to each other (their pairwise
distances: the edges), and how the feature space is transformed from one layer to the next (how far
each instance moves between two layers). The student matches the teacher's logits (vertices), its
edge matrices at chosen layers, and its per-instance transformations; the last two compare only
distances, so teacher and student widths may differ.

Notation: a batch x_1..x_n; f^l_i the (globally average-pooled) features of x_i at layer l; z_i the
logits. T / S mark teacher and student.
- Graph of a layer (Sec. 3.1): IRG^l = (V^l, E^l), vertices V^l = {f^l_i}, edges
      A^l_ij = ||f^l_i - f^l_j||_2^2            (squared Euclidean distance),
  normalised by the largest entry of the batch (A / max A, the official BatchEuclideanMap layer),
  so that the teacher's and student's edges share the scale [0, 1].
- Transformation between two layers l1, l2 of the same network (Sec. 3.2), vertex part:
      Lambda_i = ||f^{l1}_i - f^{l2}_i||_2^2,   also divided by its batch maximum
  (the official BatchEuclideanVector layer).
- Multi-type knowledge loss (Sec. 3.3):
      L = L_CE + lambda_1 L_logit-V + lambda_2 L_MTK-E + lambda_3 L_Tran,
      L_logit-V = || z_T - z_S ||^2                      (vertices, at the logit layer)
      L_MTK-E   = sum_l || A^l_T - A^l_S ||^2           (edges, at several layers)
      L_Tran    = || Lambda_T - Lambda_S ||^2           (vertex transformation).
  Names here: vertex_weight (lambda_1), edge_weight (lambda_2), transformation_weight (lambda_3).
Reductions (this file): vertex = mean over batch and classes; edge = mean over the n^2 entries of
each matrix, then mean over the layers; transformation = mean over the n instances (then over
the layer pairs). Means, not the paper's sums, so that the weights do not grow with the batch.
Defaults 0.1 / 5 / 5 are those of a widely used PyTorch re-implementation
(AberHu/Knowledge-Distillation-Zoo, which uses the same mean reductions). The paper's own lambdas
could not be read in any stored copy; the official prototxts use loss_weight 0.005 on Caffe's
EuclideanLoss (sum / (2 n) for the edge matrix, sum / 2 for the transformation vector), i.e.
0.005 * n / 2 = 0.16 at their batch of 64 in this file's mean reductions.

Paper vs the authors' code (yufanLIU/IRG), and what this file does:
- The released prototxts train the student with CE + one term each: IRG.prototxt uses only the
  edge term on the final pooled features; IRG_Transformation.prototxt only the transformation
  term, between the first and last block of each of the three stages (same width, no projection).
  No released prototxt has the logit-vertex term. This file provides all three terms (the paper's
  full multi-type loss).
- In the transformation prototxt the student's middle pair is (block 5, block 4) where the
  teacher's is (block 6, block 4): likely a slip; not reproduced.
- The hand-written Caffe backward of both distance layers treats the max normaliser as a constant
  and propagates each entry's gradient only to its row instance (half the exact gradient for a
  symmetric loss). This file differentiates the normalised matrices exactly (autograd through the
  max); a test pins the gradient against finite differences.
- When the two layers of a transformation have different widths (here: consecutive stages of
  one network, e.g. 16 -> 32 channels), the wider pooled vector is averaged over groups of
  adjacent channels down to the narrower width, a parameter-free projection (the paper asks for a
  common dimension; this grouping is our choice; Knowledge-Distillation-Zoo averages channel pairs).
- Maps are globally average-pooled before every distance, as in the official code (its distance
  layers take 1x1 blobs); Knowledge-Distillation-Zoo flattens whole maps for its edges instead.
- The teacher is .detach()ed (the code sets lr_mult 0 on the teacher's layers).
Depends only on torch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["irg_edges", "irg_transformation", "match_width", "irg_vertex_loss", "irg_edge_loss",
           "irg_transformation_loss", "IRGLoss"]


def _flat(f: Tensor) -> Tensor:
    """(B, C, ...) maps are globally average-pooled to (B, C), as the official code does."""
    return f.flatten(2).mean(-1) if f.dim() > 2 else f


def irg_edges(features: Tensor, normalize: bool = True, eps: float = 1e-12) -> Tensor:
    """A: (B, B) squared Euclidean distances between the instances, divided by their maximum.

    ``features``: (B, D) vectors or (B, C, ...) maps (pooled first). Symmetric, zero diagonal."""
    f = _flat(features)
    a = (f.unsqueeze(1) - f.unsqueeze(0)).pow(2).sum(-1)  # exact zeros on the diagonal
    return a / a.max().clamp_min(eps) if normalize else a


def match_width(f: Tensor, width: int) -> Tensor:
    """Average groups of adjacent channels of a (B, C) tensor down to (B, width); C % width == 0."""
    c = f.shape[1]
    if c == width:
        return f
    if c % width:
        raise ValueError(f"cannot average {c} channels down to {width}: not a multiple")
    return f.reshape(f.shape[0], width, c // width).mean(-1)


def irg_transformation(feat_a: Tensor, feat_b: Tensor, normalize: bool = True, eps: float = 1e-12) -> Tensor:
    """Lambda: (B,) squared distance each instance moves between two layers of one network,
    divided by its batch maximum. Maps are pooled; the wider one is averaged down (match_width)."""
    a, b = _flat(feat_a), _flat(feat_b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"batch sizes differ: {a.shape[0]} vs {b.shape[0]}")
    w = min(a.shape[1], b.shape[1])
    lam = (match_width(a, w) - match_width(b, w)).pow(2).sum(-1)
    return lam / lam.max().clamp_min(eps) if normalize else lam


def irg_vertex_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """L_logit-V: mean over batch and classes of (z_T - z_S)^2. Shapes (B, K). Teacher detached."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    return (student_logits - teacher_logits.detach()).pow(2).mean()


def irg_edge_loss(student_feats, teacher_feats) -> Tensor:
    """L_MTK-E: mean over layers of mean_ij (A_T - A_S)^2. One tensor or a list of paired layers;
    widths may differ between student and teacher. Teacher detached."""
    if isinstance(student_feats, Tensor):
        student_feats, teacher_feats = [student_feats], [teacher_feats]
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError("give the same (non-zero) number of student and teacher layers")
    terms = []
    for s, t in zip(student_feats, teacher_feats):
        if s.shape[0] != t.shape[0]:
            raise ValueError(f"batch sizes differ: {s.shape[0]} vs {t.shape[0]}")
        terms.append((irg_edges(s) - irg_edges(t.detach())).pow(2).mean())
    return torch.stack(terms).mean()


def irg_transformation_loss(student_pairs, teacher_pairs) -> Tensor:
    """L_Tran: mean over layer pairs of mean_i (Lambda_T - Lambda_S)^2. Each pair: (earlier, later)
    features of one network. Teacher detached."""
    if len(student_pairs) != len(teacher_pairs) or not student_pairs:
        raise ValueError("give the same (non-zero) number of student and teacher layer pairs")
    terms = [(irg_transformation(*s) - irg_transformation(*(x.detach() for x in t))).pow(2).mean()
             for s, t in zip(student_pairs, teacher_pairs)]
    return torch.stack(terms).mean()


class IRGLoss(nn.Module):
    """The three IRG terms on lists of stage features, weighted; add CE yourself.

    forward(student_feats, teacher_feats, student_logits, teacher_logits) -> dict of weighted terms.
    ``edge_layers``: indices into the feature lists for L_MTK-E; ``transformation_pairs``: (l1, l2)
    index pairs for L_Tran. Defaults: the last two of three stages (edges) and stage 2 -> 3."""

    def __init__(self, vertex_weight: float = 0.1, edge_weight: float = 5.0, transformation_weight: float = 5.0,
                 edge_layers=(1, 2), transformation_pairs=((1, 2),)):
        super().__init__()
        self.vertex_weight = vertex_weight  # lambda_1
        self.edge_weight = edge_weight  # lambda_2
        self.transformation_weight = transformation_weight  # lambda_3
        self.edge_layers = tuple(edge_layers)
        self.transformation_pairs = tuple(tuple(p) for p in transformation_pairs)

    def forward(self, student_feats, teacher_feats, student_logits, teacher_logits) -> dict[str, Tensor]:
        s_pairs = [(student_feats[a], student_feats[b]) for a, b in self.transformation_pairs]
        t_pairs = [(teacher_feats[a], teacher_feats[b]) for a, b in self.transformation_pairs]
        return {"vertex": self.vertex_weight * irg_vertex_loss(student_logits, teacher_logits),
                "edge": self.edge_weight * irg_edge_loss([student_feats[i] for i in self.edge_layers],
                                                         [teacher_feats[i] for i in self.edge_layers]),
                "transformation": self.transformation_weight * irg_transformation_loss(s_pairs, t_pairs)}


if __name__ == "__main__":
    torch.manual_seed(0)
    s_feats = [torch.randn(16, c, 10, requires_grad=True) for c in (8, 16, 32)]
    t_feats = [torch.randn(16, c, 10) for c in (32, 64, 128)]
    s_logits, t_logits = torch.randn(16, 10, requires_grad=True), torch.randn(16, 10)
    terms = IRGLoss()(s_feats, t_feats, s_logits, t_logits)
    sum(terms.values()).backward()
    print({k: round(v.item(), 4) for k, v in terms.items()})
