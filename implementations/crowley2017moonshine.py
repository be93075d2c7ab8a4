r"""Moonshine: Distilling with Cheap Convolutions (Crowley, Gray & Storkey, NeurIPS 2018).

Paper: https://arxiv.org/abs/1711.02613
Code:  https://github.com/BayesWatch/pytorch-moonshine (official; models/blocks.py GConvBottleneck,
       ConvBottleneck and the G*B* / ConvB* classes; funcs.py at / at_loss / distillation;
       main.py train_student and its options; models/wide_resnet.py)
Id:    crowley2017moonshine

Idea: a student needs no architecture search. Take the teacher's architecture and swap each of its
full convolutions for a cheap block with the same input and output shapes; the student then lines
up with the teacher layer by layer, the teacher's training recipe can be reused as it is, and
attention transfer (Zagoruyko & Komodakis) at the ends of the groups teaches it. Cheap blocks cut
parameters several-fold at a small cost in accuracy, and the attention-transfer student beats the
same cheap network trained from the labels alone.

Cheap block G(g)B(b) (the code's GConvBottleneck), replacing a k x k convolution C_in -> C_out:
    1x1 conv C_in -> C_out/b, BN, ReLU,
    k x k conv C_out/b -> C_out/b with (C_out/b)/g groups (g channels per group), BN, ReLU,
    1x1 conv C_out/b -> C_out                           (all bias-free; the block's stride on the k x k)
B(b) alone (the code's ConvBottleneck) is the same with an ungrouped k x k: ``group_size=None``.
Parameters of one block (k the kernel's number of taps, e.g. 9 for 3 x 3):
    C_in C_out/b + (C_out/b) g k + (C_out/b) C_out      (+ 2 BN layers of 2 C_out/b each)
against C_in C_out k for the full convolution.

Loss (the code's main.py train_student with funcs.py):
    L = (1 - alpha) CE + alpha 2 T^2 KL  +  (3 beta / J) sum_j mean_i || a_s^j(i) - a_t^j(i) ||^2 / HW
    a^j(i) = normalize(mean_c (A^j_c(i))^2)             (the spatial attention map of sample i at group j,
                                                         flattened, unit L2 norm; funcs.py at())
the AT term being the mean over batch and positions of the squared difference (funcs.py at_loss:
.pow(2).mean()), scaled by 3 beta / J for J attention points ("assume the default is three (as in
the original paper) and adjust the beta term accordingly"). Defaults: beta = 1e3, alpha = 0 (no KD:
main.py defaults and the README's example "--alpha 0. --beta 1e3"), T = 4, G8B2 the README's example
block. Where the code takes the maps: the outputs of the WRN's three groups (block1-3). The stem
convolution (3 -> 16 channels) and the 1x1 shortcut convolutions stay full, as in the code
(wide_resnet.py builds conv1 as nn.Conv2d directly; the blocks receive the cheap conv).

What was read: the official code, in full for these parts. The paper's text beyond the abstract
was not readable in the stored copies (its Fig. 1 block diagrams and its tables), so the block
definitions and the loss are the code's; the paper's naming "G(g)" is taken to be the code's
(g channels per group, i.e. C/g groups, not g groups), which is what the code's G8B2 computes.

Generalisations and differences (code vs this file):
- The code is 2-D; ``dim=1`` gives the same block with Conv1d/BatchNorm1d.
- :func:`cheapen` makes the student from any teacher module: a deep copy in which every
  convolution with more than one tap (except the first, the stem) becomes a cheap block, with
  every parameter re-initialised (the student trains from scratch, as in the paper).
- The KD term (used only when alpha > 0) is the code's formula; the code's F.kl_div uses the legacy
  element-wise 'mean' reduction (divides by batch x classes); here it is 'batchmean' (divides by
  the batch), the usual KD scaling: with alpha = 0, the default, the two agree.
- The teacher's maps and logits are detached here; the code runs the teacher in eval mode and
  relies on the optimiser holding only the student's parameters.
Depends only on torch.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CheapConv", "cheapen", "attention_map", "at_loss", "moonshine_loss", "conv_parameters"]


class CheapConv(nn.Module):
    """G(g)B(b): 1x1 down to C_out/b -> BN-ReLU -> grouped k-tap conv (g channels per group) -> BN-ReLU
    -> 1x1 up to C_out. ``group_size=None``: B(b), an ungrouped k-tap conv. Same output shape as the
    full convolution ``conv(in_channels, out_channels, kernel_size, stride, padding)`` it replaces."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=1,
                 bottleneck: int = 2, group_size: int | None = 8, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        mid = out_channels // bottleneck
        if bottleneck < 1 or mid < 1:
            raise ValueError(f"bottleneck must be in 1..{out_channels}, got {bottleneck}")
        groups = 1 if group_size is None else mid // group_size
        if group_size is not None and (group_size < 1 or mid % group_size or groups < 1):
            raise ValueError(f"group_size {group_size} must divide the bottleneck width {mid} "
                             f"({out_channels} channels / bottleneck {bottleneck})")
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.down = conv(in_channels, mid, 1, bias=False)
        self.bn1 = bn(mid)
        self.conv = conv(mid, mid, kernel_size, stride=stride, padding=padding, groups=groups, bias=False)
        self.bn2 = bn(mid)
        self.up = conv(mid, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.down(x)))
        out = F.relu(self.bn2(self.conv(out)))
        return self.up(out)


def _taps(conv: nn.Module) -> int:
    n = 1
    for k in conv.kernel_size:
        n *= k
    return n


def cheapen(model: nn.Module, bottleneck: int = 2, group_size: int | None = 8, keep_first: bool = True) -> nn.Module:
    """A fresh student of ``model``'s architecture: a deep copy with every Conv1d/Conv2d of more than
    one tap replaced by a :class:`CheapConv` of the same shapes, stride and padding (``keep_first``:
    the first such convolution, the stem, stays full) and every parameter re-initialised."""
    student = copy.deepcopy(model)
    convs = [(name, m) for name, m in student.named_modules()
             if isinstance(m, (nn.Conv1d, nn.Conv2d)) and _taps(m) > 1]
    if keep_first:
        convs = convs[1:]
    for name, m in convs:
        if m.groups != 1 or m.dilation not in ((1,), (1, 1)):
            raise ValueError(f"{name}: only plain convolutions are replaced (groups {m.groups}, dilation {m.dilation})")
        parent = student.get_submodule(name.rpartition(".")[0]) if "." in name else student
        cheap = CheapConv(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                          bottleneck, group_size, dim=1 if isinstance(m, nn.Conv1d) else 2)
        setattr(parent, name.rpartition(".")[2], cheap)
    for m in student.modules():  # the student is trained from scratch
        if hasattr(m, "reset_parameters") and not isinstance(m, CheapConv):
            m.reset_parameters()
    return student.train().requires_grad_(True)


def conv_parameters(model: nn.Module) -> int:
    """Parameters of the model's convolution weights (the count the paper's cheap blocks reduce)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))


def attention_map(features: Tensor, eps: float = 1e-12) -> Tensor:
    """a = normalize(mean over channels of A^2), flattened: (B, C, *spatial) -> (B, prod(spatial))."""
    return F.normalize(features.pow(2).mean(1).reshape(features.shape[0], -1), p=2.0, dim=1, eps=eps)


def at_loss(student_features: Tensor, teacher_features: Tensor) -> Tensor:
    """Mean over batch and positions of (a_s - a_t)^2 (the code's at_loss); the teacher is detached.
    The maps may differ in channels, not in spatial size."""
    if student_features.shape[2:] != teacher_features.shape[2:] or student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError(f"attention transfer needs maps of one batch and spatial size: student "
                         f"{tuple(student_features.shape)}, teacher {tuple(teacher_features.shape)}")
    return (attention_map(student_features) - attention_map(teacher_features.detach())).pow(2).mean()


def moonshine_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor,
                   student_maps: list[Tensor], teacher_maps: list[Tensor], beta: float = 1e3,
                   alpha: float = 0.0, temperature: float = 4.0) -> dict[str, Tensor]:
    """{"ce": (1 - alpha) CE, "kd": alpha 2 T^2 KL (only if alpha > 0), "at": 3 beta / J sum_j at_loss}."""
    if len(student_maps) != len(teacher_maps) or not student_maps:
        raise ValueError(f"need one teacher map per student map, got {len(student_maps)} and {len(teacher_maps)}")
    out = {"ce": (1.0 - alpha) * F.cross_entropy(student_logits, targets)}
    if alpha > 0:
        kl = F.kl_div(F.log_softmax(student_logits / temperature, 1),
                      F.softmax(teacher_logits.detach() / temperature, 1), reduction="batchmean")
        out["kd"] = alpha * 2.0 * temperature ** 2 * kl
    out["at"] = 3.0 * beta / len(student_maps) * sum(at_loss(s, t) for s, t in zip(student_maps, teacher_maps))
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                            nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
    student = cheapen(teacher, bottleneck=2, group_size=8)  # G8B2, the README's example
    x = torch.randn(4, 3, 16, 16)
    print("conv parameters: teacher", conv_parameters(teacher), "student", conv_parameters(student))
    terms = moonshine_loss(torch.randn(4, 10), torch.randn(4, 10), torch.arange(4), [student(x)], [teacher(x)])
    print({k: round(v.item(), 4) for k, v in terms.items()})
