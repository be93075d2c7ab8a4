r"""SimKD: Knowledge Distillation with the Reused Teacher Classifier (Chen et al., CVPR 2022).

Paper: https://arxiv.org/abs/2203.14001
Code:  https://github.com/DefangChen/SimKD (official; models/util.py class SimKD, helper/loops.py,
       train_student.py, scripts/run_distill.sh)
Id:    chen2022knowledge

Idea: the teacher's classifier already knows how to turn the teacher's final features into good
predictions. So keep it, frozen, and put it on top of the student: the student's encoder (plus a
small projector) only has to produce the features that classifier expects. One L2 loss on the final
feature map is the whole training signal (no cross-entropy, no KL term); if P(f_s) = f_t exactly, the
student's predictions are the teacher's. The price is the projector's (and the reused head's)
parameters, which the deployed student carries.

Method (abstract; Sec. 3 in the authors' code, see "what was read" below):
    f_s, f_t   the student's and the teacher's last feature maps, before global pooling
               (the code: feat[-2] of RepDistiller-style models, the last stage's post-ReLU output);
    align      if their spatial sizes differ, the larger map is average-pooled to the smaller size;
    P          projector: conv1x1(C_s -> C_t/r)-BN-ReLU, conv3x3(C_t/r -> C_t/r)-BN-ReLU,
               conv1x1(C_t/r -> C_t)-BN-ReLU, bias-free convs, r = factor (default 2);
    L_SimKD  = MSE(P(f_s), f_t)                 (nn.MSELoss: mean over all elements)
    y_hat    = W_t(pool(P(f_s)))                (W_t: the teacher's linear classifier, frozen)
The student is trained on L_SimKD alone (run scripts: "-c 0 -d 0 -b 1", i.e. CE and KL weights 0,
feature-loss weight 1); the prediction at training and test time is the teacher classifier on the
pooled projected map (helper/loops.py: "logit_s = pred_feat_s"; validate_distill does the same).

Defaults and where they come from: factor = 2 (train_student.py "--factor" default; the README's
main CIFAR-100 row "SimKD (f=2)"; f = 4 and 8 are its cheaper variants); MSE with weight 1 and no
CE/KL (scripts/run_distill.sh, the simkd lines for CIFAR-100 and ImageNet). The teacher is in eval
mode and its features are detached (loops.py runs it under no_grad); the teacher's classifier is
not in the optimiser's parameters (train_student.py: trainable_list holds the student and the
projector only), so it is frozen by construction. Here the deployed model holds a frozen copy
(requires_grad False) of the teacher's classifier.

What was read: the paper's own text beyond the abstract (Sec. 3, the projector figure, the tables)
was not readable in the stored copies (CVF page, arXiv abstract page, Papers with Code: abstract
only), so the projector layout, the pooling alignment, the MSE reduction and the defaults are the
official code's. The abstract confirms: reuse of the teacher classifier for student inference, a
single l2 feature-alignment loss, an added projector, "exactly the same performance as the teacher
model provided that their extracted features are perfectly aligned".

Generalisations and differences (code vs this file):
- The code aligns spatial size by comparing the first spatial dimension only and pools to a square
  (t_H, t_H); here the larger map (by its first spatial dimension, as in the code) is pooled to the
  other's full spatial shape: the same thing for square maps, and correct for 1-D sequences.
- The code is 2-D only (Conv2d/BatchNorm2d); ``dim=1`` gives the same projector with Conv1d/BN1d.
- In the code the ``SimKD`` module calls the teacher's classifier itself; here the classifier is a
  submodule of :class:`SimKDStudent` (a frozen deep copy), so the deployed student is one module
  whose parameter count includes the projector and the reused head (the paper's compression-ratio
  cost). The student's own linear classifier is not part of it: no loss reaches it.
- The teacher's features are detached in :func:`simkd_loss` (the code relies on no_grad upstream).
Depends only on torch.
"""
from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SimKDProjector", "align_spatial", "simkd_loss", "reused_logits", "SimKDStudent",
           "parameter_counts"]


def _pool(x: Tensor) -> Tensor:
    """Global average pooling over every dimension after the channels: (B, C, ...) -> (B, C)."""
    return x if x.dim() == 2 else x.flatten(2).mean(-1)


class SimKDProjector(nn.Module):
    """P: conv1x1-BN-ReLU -> conv3x3-BN-ReLU -> conv1x1-BN-ReLU, C_s -> C_t/factor -> C_t/factor -> C_t.

    ``dim``: 2 for images (the code), 1 for sequences. Bias-free convolutions, as in the code; the
    final ReLU matches post-ReLU teacher features."""

    def __init__(self, student_channels: int, teacher_channels: int, factor: int = 2, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        if factor < 1 or teacher_channels // factor < 1:
            raise ValueError(f"factor must be in 1..{teacher_channels}, got {factor}")
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
        mid = teacher_channels // factor
        self.student_channels, self.teacher_channels, self.factor = student_channels, teacher_channels, factor
        self.transfer = nn.Sequential(
            conv(student_channels, mid, 1, bias=False), bn(mid), nn.ReLU(inplace=True),
            conv(mid, mid, 3, padding=1, bias=False), bn(mid), nn.ReLU(inplace=True),
            conv(mid, teacher_channels, 1, bias=False), bn(teacher_channels), nn.ReLU(inplace=True))

    def forward(self, student_features: Tensor) -> Tensor:
        return self.transfer(student_features)


def align_spatial(student_features: Tensor, teacher_features: Tensor) -> tuple[Tensor, Tensor]:
    """(source, target): the larger map (by its first spatial dimension) average-pooled to the other's
    spatial shape; maps of equal size come back unchanged. Shapes (B, C, *spatial)."""
    s_size, t_size = tuple(student_features.shape[2:]), tuple(teacher_features.shape[2:])
    if len(s_size) != len(t_size):
        raise ValueError(f"maps of different rank: {tuple(student_features.shape)} vs {tuple(teacher_features.shape)}")
    if s_size == t_size:
        return student_features, teacher_features
    pool = F.adaptive_avg_pool1d if len(s_size) == 1 else F.adaptive_avg_pool2d
    if s_size[0] > t_size[0]:
        return pool(student_features, t_size), teacher_features
    return student_features, pool(teacher_features, s_size)


def simkd_loss(projected: Tensor, teacher_features: Tensor) -> Tensor:
    """L_SimKD = mean over all elements of (P(f_s) - f_t)^2 (nn.MSELoss); the teacher is detached."""
    if projected.shape != teacher_features.shape:
        raise ValueError(f"projected student map {tuple(projected.shape)} and teacher map "
                         f"{tuple(teacher_features.shape)} differ: project and align first")
    return (projected - teacher_features.detach()).pow(2).mean()


def reused_logits(projected: Tensor, teacher_classifier: nn.Module) -> Tensor:
    """The student's prediction: the teacher's classifier on the globally pooled projected map."""
    return teacher_classifier(_pool(projected))


class SimKDStudent(nn.Module):
    """The deployed SimKD student: encoder -> (spatial alignment) -> projector -> frozen teacher head.

    ``encoder(x)`` returns the student's last feature map (B, C_s, *spatial), before pooling.
    ``teacher_classifier`` is deep-copied and frozen (requires_grad False, kept in eval mode), so
    neither an optimiser over ``parameters()`` nor ``train()`` can change it. ``target_size``: the
    teacher map's spatial shape (None: the student's map is used as it is); a student map larger than
    it is average-pooled down to it, as at training time.
    ``forward_features(x)`` -> ([f_s, P(f_s)], logits); ``forward(x)`` -> logits."""

    def __init__(self, encoder: nn.Module, projector: nn.Module, teacher_classifier: nn.Module,
                 target_size: tuple | None = None):
        super().__init__()
        self.encoder, self.projector = encoder, projector
        self.classifier = copy.deepcopy(teacher_classifier).requires_grad_(False).eval()
        self.target_size = None if target_size is None else tuple(target_size)

    def train(self, mode: bool = True) -> "SimKDStudent":
        super().train(mode)
        self.classifier.eval()  # the reused head is frozen: no BN statistics or dropout of its own
        return self

    def project(self, student_features: Tensor) -> Tensor:
        f = student_features
        if self.target_size is not None and tuple(f.shape[2:]) != self.target_size:
            f, _ = align_spatial(f, f.new_empty(f.shape[:2] + self.target_size))
        return self.projector(f)

    def forward_features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        f_s = self.encoder(x)
        p = self.project(f_s)
        return [f_s, p], reused_logits(p, self.classifier)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[1]


def parameter_counts(model: SimKDStudent) -> dict[str, int]:
    """Parameters of the deployed student, by part: encoder, projector, reused classifier, total."""
    parts = {"encoder": model.encoder, "projector": model.projector, "classifier": model.classifier}
    out = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    return out | {"total": sum(out.values())}


if __name__ == "__main__":
    import torch

    torch.manual_seed(0)
    teacher_map = torch.relu(torch.randn(8, 64, 4, 4))      # teacher: 64 channels, 4x4
    teacher_head = nn.Linear(64, 10)
    encoder = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU())  # student: 16 channels, 8x8 -> pooled to 4x4
    student = SimKDStudent(encoder, SimKDProjector(16, 64, factor=2), teacher_head, target_size=(4, 4))
    feats, logits = student.forward_features(torch.randn(8, 3, 16, 16))
    loss = simkd_loss(feats[-1], teacher_map)
    loss.backward()
    print("SimKD loss", round(loss.item(), 4), "logits", tuple(logits.shape), parameter_counts(student))
