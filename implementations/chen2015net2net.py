r"""Net2Net: Accelerating Learning via Knowledge Transfer (Chen, Goodfellow & Shlens, ICLR 2016).

Paper: https://arxiv.org/abs/1511.05641
Id:    chen2015net2net

Idea: transfer a trained network's knowledge to a *larger* one by initialising the larger one to
compute the same function (a function-preserving transformation), then train it further. It starts
where the smaller one stopped instead of from scratch. No distillation loss: the knowledge moves
through the parameters. Two transformations (Sec. 2):

Net2WiderNet. Layer i has n units and is widened to q > n. A random mapping
    g(j) = j for j <= n,   g(j) ~ uniform{1..n} for n < j <= q
says which old unit each new unit copies. Incoming weights are copied, outgoing ones divided by the
number of copies so that the next layer's input is unchanged:
    U^(i)_{k,j}   = W^(i)_{k,g(j)},
    U^(i+1)_{j,h} = W^(i+1)_{g(j),h} / |{x : g(x) = g(j)}|.
For convolutions "unit" means output channel (and input channel of the next layer); a batch-norm
layer between them is copied along g (scale, shift, running mean and variance), since each copy
sees the same pre-activation. A small noise on the new outgoing weights breaks the symmetry between
copies (otherwise replicas receive identical gradients forever); with noise the function is only
approximately preserved (the paper says so too). Here the noise is Gaussian on the outgoing weights
of every copy, with standard deviation ``noise_std`` times the std of that layer's weights: the
paper does not fix a form, so this is our choice.

Net2DeeperNet. A new layer initialised to the identity, h' = phi(I phi(W h)) = phi(W h), is exact
when phi(phi(v)) = phi(v) for all v (ReLU: yes; tanh, sigmoid: no). A convolution initialised to
the identity kernel (1 at the centre of an odd kernel, same padding) does the same. With batch
norm after the new layer, its scale and shift are set to undo the normalisation,
gamma = sqrt(var + eps), beta = mean, from estimated statistics of the layer's input; exact in eval
mode (running statistics), approximate in training mode (batch statistics).

What is simplified: the paper's experiments transform Inception-BN networks on ImageNet; here the
operations act on Linear / Conv1d / Conv2d layers with optional batch norm, the building blocks of
any such network (the notebook widens and deepens the atlas's small ConvNet). No official code was
released; the formulas follow the paper's Sec. 2 as summarised in the YAML (see its `unconfirmed`).

Depends only on torch.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

__all__ = ["wider_mapping", "net2wider", "net2deeper_linear", "net2deeper_conv", "identity_batchnorm"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def wider_mapping(n: int, q: int, generator: torch.Generator | None = None) -> Tensor:
    """g: {0..q-1} -> {0..n-1}, identity on the first n units, uniform for the q - n new ones."""
    if q < n:
        raise ValueError(f"new width {q} is smaller than the old width {n}: Net2WiderNet only widens")
    return torch.cat([torch.arange(n), torch.randint(0, n, (q - n,), generator=generator)])


def _resized(layer: nn.Module, out_units: int | None = None, in_units: int | None = None) -> nn.Module:
    new = copy.deepcopy(layer)
    w = layer.weight
    shape = list(w.shape)
    if out_units is not None:
        shape[0] = out_units
    if in_units is not None:
        shape[1] = in_units * (layer.groups if isinstance(layer, (nn.Conv1d, nn.Conv2d)) else 1)
    new.weight = nn.Parameter(w.new_empty(shape))
    if layer.bias is not None and out_units is not None:
        new.bias = nn.Parameter(layer.bias.new_empty(out_units))
    if isinstance(new, nn.Linear):
        new.out_features, new.in_features = shape[0], shape[1]
    else:
        new.out_channels, new.in_channels = shape[0], shape[1]
    return new


@torch.no_grad()
def net2wider(layer: nn.Module, next_layer: nn.Module, new_width: int, bn: nn.Module | None = None,
              noise_std: float = 0.0, generator: torch.Generator | None = None,
              mapping: Tensor | None = None) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """Net2WiderNet on ``layer`` (its output units / channels) and ``next_layer`` (its inputs).

    ``layer``, ``next_layer``: nn.Linear or nn.Conv1d / nn.Conv2d (groups 1); a Linear after a conv
    reads the conv's channels (as after global average pooling). ``bn``: the batch norm between them,
    if any. Returns new (layer, next_layer, bn); the given modules are not modified."""
    for name, m in (("layer", layer), ("next_layer", next_layer)):
        if not isinstance(m, _LAYERS):
            raise TypeError(f"{name} must be nn.Linear, nn.Conv1d or nn.Conv2d, got {type(m).__name__}")
        if getattr(m, "groups", 1) != 1:
            raise ValueError(f"{name} has groups={m.groups}: only ungrouped layers can be widened")
    n = layer.weight.shape[0]
    if next_layer.weight.shape[1] != n:
        raise ValueError(f"next_layer reads {next_layer.weight.shape[1]} units, layer has {n}")
    g = wider_mapping(n, new_width, generator) if mapping is None else mapping
    if g.shape != (new_width,) or int(g.max()) >= n or int(g.min()) < 0 or not torch.equal(g[:n], torch.arange(n)):
        raise ValueError("mapping must have new_width entries in [0, n), the identity on the first n")
    counts = torch.bincount(g, minlength=n).to(layer.weight.dtype)          # |{x : g(x) = k}|

    wide = _resized(layer, out_units=new_width)
    wide.weight.copy_(layer.weight[g])                                      # U^(i)_{k,j} = W^(i)_{k,g(j)}
    if layer.bias is not None:
        wide.bias.copy_(layer.bias[g])

    nxt = _resized(next_layer, in_units=new_width)
    div = counts[g].view(1, -1, *([1] * (next_layer.weight.dim() - 2)))
    out_w = next_layer.weight[:, g] / div                                   # U^(i+1)_{j,h} = W_{g(j),h} / count
    if noise_std > 0:
        scale = noise_std * next_layer.weight.std()
        out_w = out_w + scale * torch.randn(out_w.shape, generator=generator, dtype=out_w.dtype)
    nxt.weight.copy_(out_w)

    new_bn = None
    if bn is not None:
        if not isinstance(bn, _BN) or bn.num_features != n:
            raise ValueError(f"bn must be a BatchNorm1d/2d over the layer's {n} units")
        new_bn = copy.deepcopy(bn)
        new_bn.num_features = new_width
        for name in ("weight", "bias"):
            if getattr(bn, name) is not None:
                setattr(new_bn, name, nn.Parameter(getattr(bn, name)[g].clone()))
        for name in ("running_mean", "running_var"):
            if getattr(bn, name) is not None:
                setattr(new_bn, name, getattr(bn, name)[g].clone())
    return wide, nxt, new_bn


def net2deeper_linear(width: int, dtype: torch.dtype | None = None) -> nn.Linear:
    """A width x width linear layer initialised to the identity (zero bias)."""
    layer = nn.Linear(width, width, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width, dtype=layer.weight.dtype))
        layer.bias.zero_()
    return layer


def net2deeper_conv(channels: int, kernel_size: int = 3, dim: int = 2, dtype: torch.dtype | None = None) -> nn.Module:
    """A same-padding convolution initialised to the identity kernel (bias-free, as the atlas's convs)."""
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd for an identity kernel, got {kernel_size}")
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    conv = (nn.Conv1d if dim == 1 else nn.Conv2d)(channels, channels, kernel_size, padding=kernel_size // 2,
                                                   bias=False, dtype=dtype)
    with torch.no_grad():
        conv.weight.zero_()
        centre = (kernel_size // 2,) * dim
        for c in range(channels):
            conv.weight[(c, c) + centre] = 1.0
    return conv


def identity_batchnorm(mean: Tensor, var: Tensor, eps: float = 1e-5, dim: int = 2) -> nn.Module:
    """A batch norm that undoes its own normalisation: gamma = sqrt(var + eps), beta = mean, with its
    running statistics set to (mean, var). The identity in eval mode; in training mode only as far as
    the batch statistics match (mean, var)."""
    bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(mean.numel(), eps=eps, dtype=mean.dtype)
    with torch.no_grad():
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_((var + eps).sqrt())
        bn.bias.copy_(mean)
    return bn


if __name__ == "__main__":
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(3, 2)
    x = torch.randn(4, 5)
    a2, b2, _ = net2wider(a, b, 7)
    print("wider max |diff|", (b(torch.relu(a(x))) - b2(torch.relu(a2(x)))).abs().max().item())
