r"""Do Deep Nets Really Need to be Deep? (Ba & Caruana, 2013; NIPS 2014).

Paper: https://arxiv.org/abs/1312.6184
Id:    ba2013deep

Idea: *mimic learning*. A shallow net (one wide non-linear hidden layer) trained on the labels falls
short of a deep net; trained instead to regress the deep teacher's logits, the same shallow net gets
much closer. Logits, not probabilities: the softmax squashes the log-scale differences between the
classes that a confident teacher still encodes in its logits.

Loss (Sec. 2.2): the squared L2 distance between the student's and the teacher's logits,
    L(W, beta) = 1/(2T) sum_t || g(x_t; W, beta) - z_t ||_2^2,
T the number of training examples, z_t the teacher's pre-softmax outputs. On a mini-batch the sum
over examples becomes the mean over the batch: summed over the classes, averaged over the samples,
times 1/2. The gradient with respect to the student's logits is (g - z) / batch.
No temperature and no label term: the labels reach the student only through the teacher.

Linear bottleneck (Sec. 2.3): the wide input-to-hidden matrix W (H x D) is factored as W = U V,
U (H x k), V (k x D), a layer of k linear units, which cuts the first layer from H*D to k*(H + D)
weights and speeds up learning:  g(x) = beta f(U V x).  ``LinearBottleneckMLP`` is that student.
The non-linearity f is the paper's generic hidden non-linearity; ReLU is this file's choice
(the paper's CIFAR-10 mimics also put a convolution and pooling before the wide layer; not here).

Relation to Hinton et al. (hinton2015distilling, Sec. 2.1): for zero-mean logits and a large
temperature, T^2 * KL(softmax(z_t/T) || softmax(g/T)) -> ||g - z_t||^2 / (2 N) per sample (N classes),
i.e. this loss divided by N; unlike KL-based KD it is not invariant to adding a constant to all
teacher logits (no re-centering is done here, as in the paper).

Simplified or left out: the teacher ensembles and the extra unlabelled (teacher-labelled) inputs
of the paper's TIMIT set-up; the benchmark's student is the task's small CNN, and the bottleneck MLP
is the shallow student of the notebook. The paper's learning-rate schedules are not reproduced.
The authors released no code. Depends only on torch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["mimic_loss", "LinearBottleneckMLP"]


def mimic_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """(1/2) * mean over the batch of ||g - z||^2 summed over classes (Sec. 2.2). Shapes (batch, classes).

    The teacher's logits are detached: they are regression targets."""
    diff = student_logits - teacher_logits.detach()  # g(x) - z, per sample and class
    return 0.5 * diff.pow(2).sum(dim=-1).mean()


class LinearBottleneckMLP(nn.Module):
    """The shallow mimic net of Sec. 2.3: flatten, V (k linear units), U and f (H units), beta.

    ``forward_features`` returns ``([hidden of shape (batch, H, 1)], logits)``, the stage-list shape the
    atlas harness expects of its CNNs, so it can train this net like them.
    """

    def __init__(self, in_dim: int, bottleneck: int, hidden: int, num_classes: int):
        super().__init__()
        self.V = nn.Linear(in_dim, bottleneck, bias=False)  # k linear units, no non-linearity
        self.U = nn.Linear(bottleneck, hidden)              # W = U V, then the hidden bias
        self.f = nn.ReLU()
        self.beta = nn.Linear(hidden, num_classes)          # hidden-to-output weights

    def forward_features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        h = self.f(self.U(self.V(x.flatten(1))))
        return [h.unsqueeze(-1)], self.beta(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[1]


if __name__ == "__main__":
    torch.manual_seed(0)
    net = LinearBottleneckMLP(40, 16, 256, 10)
    x, z = torch.randn(8, 1, 40), torch.randn(8, 10)
    loss = mimic_loss(net(x), z)
    loss.backward()
    print("mimic loss", round(loss.item(), 4), "params", sum(p.numel() for p in net.parameters()))
