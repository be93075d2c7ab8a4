r"""A Gift from Knowledge Distillation: Fast Optimization, Network Minimization and Transfer Learning
(Yim, Joo, Bae & Kim, CVPR 2017).

Paper: http://openaccess.thecvf.com/content_cvpr_2017/papers/Yim_A_Gift_From_CVPR_2017_paper.pdf
Id:    yim2017gift

Idea: what a teacher knows is not only what its layers output but how it gets from one layer to
the next, its "flow of solution procedure" (FSP). Summarise that flow between two layers of equal
spatial size by the channel-by-channel inner products of their maps, averaged over positions (a
Gram matrix across two layers, where style transfer uses one layer). First train the student to
reproduce the teacher's FSP matrices, then train it on the task from there.

FSP matrix (Sec. 3.2, Eq. 1), F^1 (h x w x m) and F^2 (h x w x n) from one network:
    G_{i,j}(x; W) = sum_{s=1..h} sum_{t=1..w} F^1_{s,t,i}(x; W) F^2_{s,t,j}(x; W) / (h w).
Loss (Sec. 3.3, Eq. 2), over n pairs of layers with equal weights lambda_i and N samples:
    L_FSP(W_t, W_s) = 1/N sum_x sum_i lambda_i || G_i^T(x; W_t) - G_i^S(x; W_s) ||_2^2.
Training (Sec. 3.3): stage 1 minimises L_FSP alone (the student's layers up to the last pair);
stage 2 trains the whole student on the task loss from that initialisation.
Pairs (paper): the first and the last layer of each group of residual blocks (equal spatial size).
What was read: the paper's opening part only (its Sec. 3 was not readable here); the equations are
as recorded in papers/yim2017gift.yaml, unconfirmed there, and agree with RepDistiller's port.

Paper vs RepDistiller (HobbitLong/RepDistiller, distiller_zoo/FSP.py, helper/pretrain.py; no code
of the authors was found), which this file follows where it must:
- reduction: RepDistiller averages the squared differences over the m x n entries and the batch;
  the paper sums over the entries. fsp_loss averages (the paper's loss divided by m n per pair, so
  one weight fits pairs of any width; a test pins the factor);
- pairs: RepDistiller pairs consecutive stage outputs and average-pools the larger map to the
  smaller one's size (fsp_matrices does the same); the paper's pairs sit inside a stage;
- stage 1 lasts 30 epochs before RepDistiller's 240 of cross-entropy (the recipe keeps the ratio).
Not in the paper: the paper's student has the teacher's channel widths at every pair (it is
shallower, not narrower). For a narrower student, FSPConnector maps each student stage to the
teacher's width by a learned bias-free 1x1 convolution (trained in stage 1, dropped afterwards);
since it is linear, the student's FSP matrix G becomes W_a G W_b^T (a test checks this). With equal
widths pass no connector: the file then computes the paper's loss. Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["fsp_matrix", "fsp_matrices", "fsp_loss", "FSPConnector"]


def fsp_matrix(first: Tensor, second: Tensor) -> Tensor:
    """Eq. 1: (B, m, *spatial) and (B, n, *spatial) -> (B, m, n), the mean over positions of F^1_i F^2_j."""
    if first.shape[0] != second.shape[0] or first.shape[2:] != second.shape[2:]:
        raise ValueError(f"an FSP pair needs equal batch and spatial sizes, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}; pool first (fsp_matrices does)")
    a, b = first.flatten(2), second.flatten(2)  # (B, m, hw), (B, n, hw)
    return a @ b.transpose(1, 2) / a.shape[2]  # sum over s, t divided by h w


def _pool_to(x: Tensor, size: tuple) -> Tensor:
    return F.adaptive_avg_pool1d(x, size) if x.dim() == 3 else F.adaptive_avg_pool2d(x, size)


def fsp_matrices(features: list[Tensor]) -> list[Tensor]:
    """FSP matrices of consecutive maps (features[k], features[k+1]); the larger map of a pair is
    average-pooled to the smaller one's spatial size (RepDistiller's pairing)."""
    out = []
    for a, b in zip(features[:-1], features[1:]):
        if a.shape[2:] != b.shape[2:]:
            small = a.shape[2:] if a.shape[2:].numel() < b.shape[2:].numel() else b.shape[2:]
            a, b = _pool_to(a, tuple(small)), _pool_to(b, tuple(small))
        out.append(fsp_matrix(a, b))
    return out


def fsp_loss(student_fsp: list[Tensor], teacher_fsp: list[Tensor], weights: list[float] | None = None) -> Tensor:
    """sum_i lambda_i * mean over batch and the m x n entries of (G_i^T - G_i^S)^2 (lambda_i = 1 by default).

    The teacher's matrices are detached. Shapes must agree pair by pair (use FSPConnector otherwise)."""
    if len(student_fsp) != len(teacher_fsp):
        raise ValueError(f"{len(student_fsp)} student FSP matrices against {len(teacher_fsp)} teacher ones")
    weights = [1.0] * len(student_fsp) if weights is None else weights
    total = student_fsp[0].new_zeros(())
    for lam, gs, gt in zip(weights, student_fsp, teacher_fsp):
        if gs.shape != gt.shape:
            raise ValueError(f"FSP matrices differ in shape, student {tuple(gs.shape)} vs teacher {tuple(gt.shape)}:"
                             " the paper needs equal widths; map the student's with FSPConnector")
        total = total + lam * (gt.detach() - gs).pow(2).mean()
    return total


class FSPConnector(nn.Module):
    """Learned bias-free 1x1 convolutions, student stage width -> teacher stage width (not in the paper)."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int]):
        super().__init__()
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(ct, cs) / cs**0.5) for cs, ct in zip(student_channels, teacher_channels)])

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        # channel mixing at every position: a 1x1 convolution for maps of any spatial rank
        return [torch.einsum("oc,bc...->bo...", w, f) for w, f in zip(self.weights, features)]


if __name__ == "__main__":
    torch.manual_seed(0)
    fs = [torch.randn(4, 8, 16, 16, requires_grad=True), torch.randn(4, 16, 8, 8), torch.randn(4, 32, 4, 4)]
    ft = [torch.randn(4, 32, 16, 16), torch.randn(4, 64, 8, 8), torch.randn(4, 128, 4, 4)]
    conn = FSPConnector([8, 16, 32], [32, 64, 128])
    loss = fsp_loss(fsp_matrices(conn(fs)), fsp_matrices(ft))
    loss.backward()
    print("FSP loss", loss.item(), "matrices", [tuple(g.shape) for g in fsp_matrices(ft)])
