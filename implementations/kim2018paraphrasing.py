r"""Paraphrasing Complex Network: Network Compression via Factor Transfer (Kim, Park & Kwak, NeurIPS 2018).

Paper: https://arxiv.org/abs/1802.04977
Code:  https://github.com/Jangho-Kim/Factor-Transfer-pytorch (official; read, not copied)
Id:    kim2018paraphrasing

Idea: do not make the student copy the teacher's feature map itself, which may be too rich and
shaped for another architecture; first *paraphrase* it. A small convolutional autoencoder, the
paraphraser, is trained without labels to reconstruct the teacher's last feature map through a
bottleneck of k * C_T channels (k the paraphrase rate); its encoder's output is the teacher's
*factor*. A translator (three convolutions) maps the student's last feature map to the same shape,
and the student learns to make its factor point where the teacher's does:

    stage 1:  min_P  L_rec = || x_T - P_dec(P_enc(x_T)) ||              (P trained, teacher frozen)
    stage 2:  min_{S, Tr}  CE(S(x), y) + beta * || F_T / ||F_T||_2 - F_S / ||F_S||_2 ||_1,
              F_T = P_enc(x_T) (P frozen),  F_S = Tr(x_S),  factors flattened per sample.

Checked against the official code (Models/FeatureProjection.py, train_Paraphraser.py,
train_student.py, utils.FT): the paraphraser is conv(C, C), conv(C, kC), conv(kC, kC) then the
mirror transposed convolutions, all 3x3 with bias and LeakyReLU(0.1), no batch norm (commented out);
the translator is conv(C_S, C_S), conv(C_S, kC_T), conv(kC_T, kC_T) with LeakyReLU(0.1); k = 0.5;
the factors are ``F.normalize(x.view(B, -1))``; beta = 500 on ``nn.L1Loss()``, i.e. on the *mean*
absolute difference over the batch and the factor's entries; the reconstruction loss is also
``nn.L1Loss()``; the paraphraser trains for 5 epochs (SGD, lr 0.1), the student and translator
together, each with its own SGD. The paper's text could not be read in the stored sources (see the
YAML); the draft notes wrote its losses as an L2 reconstruction and beta/2 times a summed p = 1 norm.
This file follows the code; ``reconstruction_loss(p=2)`` gives the squared-error variant.

Our maps may be 1-D (MNIST-1D) or 2-D: ``dim`` picks Conv1d/ConvTranspose1d or the 2-D ones.
Depends only on torch.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Paraphraser", "Translator", "factor", "reconstruction_loss", "factor_transfer_loss"]


def _convs(dim: int):
    return (nn.Conv1d, nn.ConvTranspose1d) if dim == 1 else (nn.Conv2d, nn.ConvTranspose2d)


class Paraphraser(nn.Module):
    """Convolutional autoencoder on the teacher's map: C -> C -> kC -> kC (encoder) -> kC -> C -> C."""

    def __init__(self, channels: int, rate: float = 0.5, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        k = int(round(channels * rate))
        if k < 1:
            raise ValueError(f"paraphrase rate {rate} leaves no factor channel for {channels} channels")
        conv, deconv = _convs(dim)
        self.factor_channels = k
        self.encoder = nn.Sequential(conv(channels, channels, 3, 1, 1), nn.LeakyReLU(0.1),
                                     conv(channels, k, 3, 1, 1), nn.LeakyReLU(0.1),
                                     conv(k, k, 3, 1, 1), nn.LeakyReLU(0.1))
        self.decoder = nn.Sequential(deconv(k, k, 3, 1, 1), nn.LeakyReLU(0.1),
                                     deconv(k, channels, 3, 1, 1), nn.LeakyReLU(0.1),
                                     deconv(channels, channels, 3, 1, 1), nn.LeakyReLU(0.1))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class Translator(nn.Module):
    """Three convolutions from the student's map to the teacher factor's channels: C_S -> C_S -> kC -> kC."""

    def __init__(self, student_channels: int, factor_channels: int, dim: int = 2):
        super().__init__()
        conv, _ = _convs(dim)
        self.net = nn.Sequential(conv(student_channels, student_channels, 3, 1, 1), nn.LeakyReLU(0.1),
                                 conv(student_channels, factor_channels, 3, 1, 1), nn.LeakyReLU(0.1),
                                 conv(factor_channels, factor_channels, 3, 1, 1), nn.LeakyReLU(0.1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def factor(x: Tensor, eps: float = 1e-12) -> Tensor:
    """A factor flattened per sample and scaled to unit L2 norm (the official ``utils.FT``)."""
    return F.normalize(x.reshape(x.shape[0], -1), dim=1, eps=eps)


def reconstruction_loss(paraphraser: Paraphraser, teacher_map: Tensor, p: int = 1) -> Tensor:
    """Stage 1: mean |x_T - P(x_T)| (p = 1, the official code) or mean squared error (p = 2).
    The teacher's map is detached: stage 1 trains the paraphraser only."""
    x = teacher_map.detach()
    out = paraphraser(x)
    if p == 1:
        return (out - x).abs().mean()
    if p == 2:
        return (out - x).pow(2).mean()
    raise ValueError(f"p must be 1 or 2, got {p}")


def factor_transfer_loss(student_factor: Tensor, teacher_factor: Tensor) -> Tensor:
    """Stage 2's transfer term without beta: mean over batch and entries of |F_S/||F_S|| - F_T/||F_T|||
    (the official ``nn.L1Loss()`` on ``utils.FT``). The teacher factor is detached."""
    return (factor(student_factor) - factor(teacher_factor.detach())).abs().mean()


if __name__ == "__main__":
    import torch

    torch.manual_seed(0)
    p, tr = Paraphraser(16, 0.5, dim=1), Translator(8, 8, dim=1)
    xt, xs = torch.randn(4, 16, 10), torch.randn(4, 8, 10)
    print("rec", round(reconstruction_loss(p, xt).item(), 4),
          "ft", round(factor_transfer_loss(tr(xs), p.encode(xt)).item(), 4))
