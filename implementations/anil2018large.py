r"""Large scale distributed neural network training through online distillation (Anil et al., ICLR 2018).

Paper: https://arxiv.org/abs/1804.03235
Id:    anil2018large

Idea: *codistillation*. Instead of adding workers to one synchronous data-parallel job (whose
returns diminish), train n copies of a model at once, each on its own data, and add to each one's
loss a distillation term towards the average prediction of the *others*. The others' predictions are
computed locally, from stale copies of their weights that the workers exchange only every so many
steps, so the communication is rare and cheap, and training starts with a burn-in of ordinary
training. Codistilled models also agree more with each other (less "prediction churn").

Update of worker i (Algorithm 1, as summarised in the YAML):

    theta_i <- theta_i - eta * grad[ l(y, F(theta_i, x)) + psi( 1/(n-1) sum_{j != i} F(theta~_j, x), F(theta_i, x) ) ]

with l the cross-entropy on the labels, psi the cross-entropy between the averaged peer prediction
(a fixed target: no gradient reaches the copies) and worker i's, and theta~_j the last copy of worker
j's parameters that worker i received.

In torch.distributed (one process per worker, gloo on CPU, NCCL on GPUs through torchrun):
``exchange_parameters`` all-gathers every worker's flattened parameters and buffers, and
``Codistiller.receive`` loads the others' into its stale copies. The same path serves DML-style peers
(zhang2017deep) one per process: ``exchange_predictions`` all-gathers every worker's logits on a
shared batch, the others' being the distillation targets of this step (simultaneous updates, not
DML's sequential ones). A single-process run of all workers uses ``Codistiller.receive`` with the
others' state dicts directly; the test file checks that it gives bit-identical weights to the
two-process gloo run.

What could not be read: the paper's text beyond its abstract (see the YAML). psi as a cross-entropy
to the average of the peers' *probabilities*, temperature 1, the burn-in before the distillation term
and the exchange interval follow the notes' reading of Algorithm 1; ``distill_weight`` (1 in the
atlas's recipe) weights psi. The paper's experiments (Common Crawl language models, ImageNet,
Criteo) are not reproduced.

Depends only on torch.
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["codistillation_loss", "flat_state", "load_flat_state", "exchange_parameters", "exchange_predictions",
           "Codistiller"]


def codistillation_loss(logits: Tensor, targets: Tensor, peer_logits: list[Tensor], distill_weight: float = 1.0,
                        temperature: float = 1.0) -> dict[str, Tensor]:
    """``{"ce": l(y, F(theta_i, x)), "distill": w * psi(mean_j softmax(peer_j / T), F(theta_i, x) / T)}``.

    ``peer_logits``: the other workers' (stale) logits on the same inputs; detached here. An empty
    list (burn-in, or one worker) leaves only the cross-entropy."""
    out = {"ce": F.cross_entropy(logits, targets)}
    if peer_logits and distill_weight != 0:
        target = torch.stack([F.softmax(p.detach() / temperature, dim=-1) for p in peer_logits]).mean(0)
        psi = -(target * F.log_softmax(logits / temperature, dim=-1)).sum(-1).mean()
        out["distill"] = distill_weight * psi
    return out


def flat_state(model: nn.Module) -> Tensor:
    """Every parameter and floating buffer of ``model`` in one flat float tensor (state_dict order)."""
    return torch.cat([v.detach().reshape(-1).to(torch.float64) for v in model.state_dict().values()
                      if v.is_floating_point()])


@torch.no_grad()
def load_flat_state(model: nn.Module, flat: Tensor) -> None:
    """The inverse of ``flat_state``: copy ``flat`` into ``model``'s floating parameters and buffers."""
    i = 0
    for v in model.state_dict().values():
        if v.is_floating_point():
            n = v.numel()
            v.copy_(flat[i:i + n].view_as(v).to(v.dtype))
            i += n
    if i != flat.numel():
        raise ValueError(f"flat state has {flat.numel()} values, the model {i}")


def exchange_parameters(model: nn.Module, group=None) -> list[Tensor]:
    """All-gather every worker's ``flat_state``: entry r is worker r's (a collective: every rank calls it)."""
    mine = flat_state(model)
    world = dist.get_world_size(group)
    out = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(out, mine, group=group)
    return out


def exchange_predictions(logits: Tensor, group=None) -> list[Tensor]:
    """All-gather every worker's logits on the shared batch (detached): entry r is worker r's."""
    mine = logits.detach().contiguous()
    out = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, mine, group=group)
    return out


class Codistiller:
    """Worker ``rank`` of ``world``: its model, stale copies of the others, and its loss per step."""

    def __init__(self, model: nn.Module, rank: int, world: int, exchange_every: int = 50, burn_in: int = 0,
                 distill_weight: float = 1.0, temperature: float = 1.0):
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in a world of {world}")
        if exchange_every < 1:
            raise ValueError(f"exchange_every must be >= 1, got {exchange_every}")
        self.model, self.rank, self.world = model, rank, world
        self.exchange_every, self.burn_in = exchange_every, burn_in
        self.distill_weight, self.temperature = distill_weight, temperature
        self.copies = {j: copy.deepcopy(model).eval().requires_grad_(False) for j in range(world) if j != rank}
        self.received = False

    def due(self, step: int) -> bool:
        """Exchange before ``step`` (0-based) when the burn-in has passed and the interval has come."""
        return step >= self.burn_in and (step - self.burn_in) % self.exchange_every == 0

    def receive(self, states: list[Tensor]) -> None:
        """Load workers' flat states (entry j: worker j's) into the stale copies; own entry ignored."""
        if len(states) != self.world:
            raise ValueError(f"expected {self.world} states, got {len(states)}")
        for j, c in self.copies.items():
            load_flat_state(c, states[j])
        self.received = True

    def loss(self, x: Tensor, y: Tensor, step: int) -> dict[str, Tensor]:
        """The step's loss terms: the cross-entropy alone during burn-in (or before a first exchange)."""
        logits = self.model(x)
        peers = []
        if step >= self.burn_in and self.received:
            with torch.no_grad():
                peers = [c(x) for c in self.copies.values()]
        return codistillation_loss(logits, y, peers, self.distill_weight, self.temperature)


if __name__ == "__main__":
    torch.manual_seed(0)
    workers = [Codistiller(nn.Linear(4, 3), r, 2, exchange_every=2) for r in range(2)]
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    for w in workers:
        w.receive([flat_state(v.model) for v in workers])
    print({k: round(v.item(), 4) for k, v in workers[0].loss(x, y, step=1).items()})
