r"""The first graph family: a k-NN graph of the 8x8 digits and dense graph convolutional networks.

For GNN-SD (Chen et al. 2021) in batch 3 and the graph-distillation papers of batch 5. Nodes are
scikit-learn's 1,797 bundled digits (64 pixel features scaled to [0, 1]); each node is joined to its
``k`` nearest neighbours by cosine similarity of the pixels, the edges made symmetric (an edge if
either end chose the other). The GCN of Kipf & Welling (2017) propagates with the renormalised
adjacency ``A_hat = D^{-1/2} (A + I) D^{-1/2}`` (D: the degrees of A + I); a layer is
``H' = relu(A_hat H W)`` and the output layer ``A_hat H W_out`` (no ReLU), with dropout before every
layer, as in the paper. Dense matrices: 1,797^2 floats (13 MB) and one matrix product per layer.

So that the harness's ``train``, teacher cache and metric work unchanged, a dataset item is a node's
*index* ``(node id, label, position)``, the model holds the graph (features and ``A_hat`` as buffers)
and ``model(ids)`` runs the whole graph and returns the rows of ``ids``: a batch larger than the
training set is one full-graph step per epoch (transductive training, as in the GCN paper).
``forward_features(ids)`` returns every hidden layer's node embeddings for those rows (``(B, C)``
maps: ``pool`` leaves them as they are), so feature-based losses apply.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["knn_adjacency", "normalized_adjacency", "GCN", "load_digits_graph"]


def knn_adjacency(x: Tensor, k: int) -> Tensor:
    """Symmetric 0/1 adjacency of the ``k`` nearest neighbours by cosine similarity (no self-loops)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}], got {k}")
    z = F.normalize(x.flatten(1).float(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(-float("inf"))
    nbrs = sim.topk(k, dim=1).indices
    a = torch.zeros(len(x), len(x))
    a.scatter_(1, nbrs, 1.0)
    return ((a + a.T) > 0).float()


def normalized_adjacency(a: Tensor) -> Tensor:
    """``D^{-1/2} (A + I) D^{-1/2}`` with D the degree matrix of ``A + I`` (Kipf & Welling, Eq. 2)."""
    a_tilde = a + torch.eye(len(a))
    d = a_tilde.sum(1).rsqrt()
    return d[:, None] * a_tilde * d[None, :]


class GCN(nn.Module):
    """A dense GCN over a fixed graph: ``hidden`` widths of ReLU layers, then the output layer."""

    def __init__(self, features: Tensor, adjacency: Tensor, hidden: tuple[int, ...], num_classes: int,
                 dropout: float = 0.5):
        super().__init__()
        self.register_buffer("x", features.float(), persistent=False)  # the graph: not in checkpoints
        self.register_buffer("a_hat", adjacency.float(), persistent=False)
        dims = [features.shape[1], *hidden]
        self.stages = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(hidden)))
        self.fc = nn.Linear(dims[-1], num_classes)
        self.feature_channels = list(hidden)
        self.dropout = dropout

    def _propagate(self) -> tuple[list[Tensor], Tensor]:
        h, feats = self.x, []
        for layer in self.stages:
            h = F.relu(self.a_hat @ layer(F.dropout(h, self.dropout, self.training)))
            feats.append(h)
        return feats, self.a_hat @ self.fc(F.dropout(h, self.dropout, self.training))

    def forward_features(self, ids: Tensor) -> tuple[list[Tensor], Tensor]:
        feats, logits = self._propagate()
        return [f[ids] for f in feats], logits[ids]

    def embedding(self, ids: Tensor) -> Tensor:
        return self.forward_features(ids)[0][-1]

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_features(ids)[1]


def load_digits_graph(k: int = 10) -> tuple[Tensor, Tensor, Tensor]:
    """``(features (1797, 64), labels, A_hat)`` of the k-NN digits graph."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    return x, torch.tensor(d.target, dtype=torch.long), normalized_adjacency(knn_adjacency(x, k))
