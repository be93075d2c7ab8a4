r"""Knowledge Acquisition from Examples Via Multiple Models (Domingos, ICML 1997): CMM.

Paper: Proc. 14th ICML, pp. 98-106, Morgan Kaufmann, 1997 (author copy: homes.cs.washington.edu/~pedrod/papers/mlc97.pdf)
Id:    domingos1997knowledge

Idea: bagging makes a rule or tree learner more accurate but replaces one readable model by many.
CMM (Combined Multiple Models) keeps one model: use the bagged ensemble as an oracle to label many
new, generated examples, add them to the training set, and run the *same* base learner once more
on the enlarged set. The single model recovers part of the ensemble's accuracy gain and stays
comprehensible.

Steps, and where each is described (the ICML text itself could not be read in any stored corpus):
  1. ``bagged_trees``: m models of the base learner, each on a bootstrap replicate of the training
     set (the paper: bagging of C4.5RULES; the author's AAAI-97 abstract and the journal version's
     abstract, Intelligent Data Analysis 2, 1998, as summarised in papers/domingos1997knowledge.yaml).
  2. ``rule_examples``: the generator. Bucilua, Caruana & Niculescu-Mizil (KDD 2006, Sec. 5)
     describe CMM's generator: it is specific to the base models, decision rule sets, and "for each
     decision rule in the rule set, some examples were generated randomly from the hyperspace
     classified by the decision rule". With trees, a rule is a root-to-leaf path, its hyperspace the
     leaf's box: here every leaf of every member gets an equal share of the new examples, drawn
     uniformly in its box (open sides closed by the training data's range). The per-rule count, and
     how nominal attributes are drawn, are NOT confirmed. ``uniform_examples`` (uniform in the data's
     bounding box, the "random attribute vectors" of the AAAI-97 abstract) is the baseline generator.
  3. ``vote``: each new example labelled with the ensemble's majority vote (ties: the lowest class).
  4. ``cmm``: the base learner re-run on the original plus the labelled new examples.

Base learner: C4.5RULES is replaced by a small CART (``fit_tree``: axis-aligned binary splits at
midpoints between consecutive distinct values, Gini impurity, depth and leaf-size limits, no
pruning), written with torch tensors so that the file stays torch-only. The tree code is duplicated
on purpose in zharov2018yasenn's file (each file must be copyable on its own). No official code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Tree", "fit_tree", "predict_tree", "leaf_index", "bagged_trees", "vote", "rule_examples",
           "uniform_examples", "cmm", "tree_rules"]


@dataclass
class Tree:
    """Nodes in arrays (node 0 is the root). Internal node k: x[:, feature[k]] <= threshold[k] goes to
    left[k], else right[k]; a leaf has left = right = -1. ``counts[k]``: class counts of the training
    examples at k. ``lower``/``upper[k]``: the box of inputs that reach k (+-inf on open sides)."""

    feature: Tensor
    threshold: Tensor
    left: Tensor
    right: Tensor
    counts: Tensor
    lower: Tensor
    upper: Tensor

    @property
    def leaves(self) -> Tensor:
        return (self.left < 0).nonzero().flatten()

    @property
    def prediction(self) -> Tensor:
        return self.counts.argmax(-1)  # ties: the lowest class


def _best_split(x: Tensor, y: Tensor, num_classes: int, min_leaf: int):
    """(gain, feature, threshold) of the Gini-best split, or None when no cut is allowed. A cut with
    zero gain is kept (as in common CART code): XOR needs one at its root."""
    n, d = x.shape
    xs, order = x.sort(0)
    onehot = torch.nn.functional.one_hot(y, num_classes).to(torch.float64)
    left = onehot[order].cumsum(0)                                   # (n, d, C): class counts left of cut i
    total = onehot.sum(0)
    nl = torch.arange(1, n + 1, dtype=torch.float64)[:, None]
    nr = n - nl
    gini_l = 1 - (left ** 2).sum(-1) / nl ** 2
    gini_r = 1 - ((total - left) ** 2).sum(-1) / nr.clamp_min(1) ** 2
    impurity = (nl * gini_l + nr * gini_r) / n                        # weighted child impurity
    ok = (xs[1:] > xs[:-1]) & (nl[:-1] >= min_leaf) & (nr[:-1] >= min_leaf)  # cut between distinct values
    impurity = torch.where(ok, impurity[:-1], torch.full_like(impurity[:-1], float("inf")))
    if not torch.isfinite(impurity).any():
        return None
    flat = int(impurity.argmin())
    i, f = divmod(flat, d)
    parent = 1 - (total ** 2).sum() / n ** 2
    gain = float(parent - impurity[i, f])
    return gain, f, float((xs[i, f] + xs[i + 1, f]) / 2)


def fit_tree(x: Tensor, y: Tensor, num_classes: int, max_depth: int = 4, min_leaf: int = 1) -> Tree:
    """CART with Gini impurity (the stand-in for C4.5RULES): grow depth-first until ``max_depth``, a
    pure node, fewer than 2 ``min_leaf`` examples, or no allowed cut (all inputs equal)."""
    x = x.reshape(len(x), -1).to(torch.float64)
    d = x.shape[1]
    feature, threshold, left, right, counts, lower, upper = [], [], [], [], [], [], []

    def grow(idx: Tensor, depth: int, lo: Tensor, hi: Tensor) -> int:
        k = len(feature)
        feature.append(-1), threshold.append(0.0), left.append(-1), right.append(-1)
        counts.append(torch.bincount(y[idx], minlength=num_classes)), lower.append(lo), upper.append(hi)
        if depth >= max_depth or len(idx) < 2 * min_leaf or int((counts[k] > 0).sum()) <= 1:
            return k
        split = _best_split(x[idx], y[idx], num_classes, min_leaf)
        if split is None:
            return k
        _, f, t = split
        go_left = x[idx, f] <= t
        feature[k], threshold[k] = f, t
        hi_l, lo_r = hi.clone(), lo.clone()
        hi_l[f], lo_r[f] = t, t
        left[k] = grow(idx[go_left], depth + 1, lo, hi_l)
        right[k] = grow(idx[~go_left], depth + 1, lo_r, hi)
        return k

    inf = torch.full((d,), float("inf"), dtype=torch.float64)
    grow(torch.arange(len(x)), 0, -inf, inf)
    return Tree(torch.tensor(feature), torch.tensor(threshold, dtype=torch.float64), torch.tensor(left),
                torch.tensor(right), torch.stack(counts), torch.stack(lower), torch.stack(upper))


def leaf_index(tree: Tree, x: Tensor) -> Tensor:
    """The leaf each input reaches."""
    x = x.reshape(len(x), -1).to(torch.float64)
    node = torch.zeros(len(x), dtype=torch.long)
    while True:
        inner = tree.left[node] >= 0
        if not inner.any():
            return node
        f = tree.feature[node].clamp_min(0)
        go_left = x.gather(1, f[:, None]).squeeze(1) <= tree.threshold[node]
        node = torch.where(inner, torch.where(go_left, tree.left[node], tree.right[node]), node)


def predict_tree(tree: Tree, x: Tensor) -> Tensor:
    """Class predictions (the majority class of each leaf)."""
    return tree.prediction[leaf_index(tree, x)]


def bagged_trees(x: Tensor, y: Tensor, num_classes: int, n_models: int = 10, max_depth: int = 4,
                 min_leaf: int = 1, generator: torch.Generator | None = None) -> list[Tree]:
    """Bagging: each tree on its own bootstrap replicate (n examples drawn with replacement)."""
    trees = []
    for _ in range(n_models):
        idx = torch.randint(0, len(x), (len(x),), generator=generator)
        trees.append(fit_tree(x[idx], y[idx], num_classes, max_depth, min_leaf))
    return trees


def vote(trees: list[Tree], x: Tensor, num_classes: int) -> Tensor:
    """The ensemble's majority vote; ties go to the lowest class index."""
    votes = sum(torch.nn.functional.one_hot(predict_tree(t, x), num_classes) for t in trees)
    return votes.argmax(-1)


def rule_examples(trees: list[Tree], n_new: int, lo: Tensor, hi: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """New examples drawn uniformly in the box of each rule (leaf) of each tree, an equal share per
    rule (the first ``n_new mod rules`` rules get one more); open sides are closed by the data range
    [lo, hi] (per attribute). Returns ``(n_new, d)``, rules in order (tree by tree, leaf by leaf)."""
    lo, hi = lo.reshape(-1).to(torch.float64), hi.reshape(-1).to(torch.float64)
    boxes = [(torch.maximum(t.lower[k], lo), torch.minimum(t.upper[k], hi)) for t in trees for k in t.leaves.tolist()]
    per = [n_new // len(boxes) + (i < n_new % len(boxes)) for i in range(len(boxes))]
    out = [a + (b - a) * torch.rand(m, len(lo), generator=generator, dtype=torch.float64)
           for (a, b), m in zip(boxes, per) if m]
    return torch.cat(out) if out else torch.empty(0, len(lo), dtype=torch.float64)


def uniform_examples(n_new: int, lo: Tensor, hi: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """New examples drawn uniformly in the data's bounding box [lo, hi]."""
    lo, hi = lo.reshape(-1).to(torch.float64), hi.reshape(-1).to(torch.float64)
    return lo + (hi - lo) * torch.rand(n_new, len(lo), generator=generator, dtype=torch.float64)


def cmm(x: Tensor, y: Tensor, num_classes: int, n_models: int = 10, n_new: int = 1000, max_depth: int = 4,
        min_leaf: int = 1, generator_kind: str = "rules", generator: torch.Generator | None = None):
    """CMM: bag, generate ``n_new`` examples, label them by the vote, re-learn on original + new.
    Returns ``(cmm_tree, bagged_trees, new_x, new_y)``."""
    x = x.reshape(len(x), -1).to(torch.float64)
    trees = bagged_trees(x, y, num_classes, n_models, max_depth, min_leaf, generator)
    lo, hi = x.min(0).values, x.max(0).values
    if generator_kind == "rules":
        new_x = rule_examples(trees, n_new, lo, hi, generator)
    elif generator_kind == "uniform":
        new_x = uniform_examples(n_new, lo, hi, generator)
    else:
        raise ValueError(f"generator_kind must be 'rules' or 'uniform', got {generator_kind!r}")
    new_y = vote(trees, new_x, num_classes)
    tree = fit_tree(torch.cat([x, new_x]), torch.cat([y, new_y]), num_classes, max_depth, min_leaf)
    return tree, trees, new_x, new_y


def tree_rules(tree: Tree, names: list[str] | None = None) -> list[str]:
    """The tree as one "IF ... THEN class" rule per leaf (the comprehensible form CMM is for)."""
    rules = []

    def walk(k: int, conds: list[str]):
        if tree.left[k] < 0:
            rules.append(f"IF {' AND '.join(conds) or 'TRUE'} THEN class {int(tree.prediction[k])} "
                         f"({int(tree.counts[k].sum())} examples)")
            return
        f = int(tree.feature[k])
        name = names[f] if names else f"x[{f}]"
        walk(int(tree.left[k]), conds + [f"{name} <= {float(tree.threshold[k]):.3g}"])
        walk(int(tree.right[k]), conds + [f"{name} > {float(tree.threshold[k]):.3g}"])

    walk(0, [])
    return rules
