"""The k-NN digits graph, the dense GCN and task digits_graph (for GNN-SD and batch 5)."""
import pytest
import torch

from kdatlas.harness import get_task
from kdatlas.harness.graph import GCN, knn_adjacency, normalized_adjacency
from kdatlas.harness.train import TeacherCache


def test_knn_adjacency_on_points_on_a_circle():
    angles = torch.tensor([0.0, 0.1, 0.2, 3.0, 3.1])
    x = torch.stack([angles.cos(), angles.sin()], 1)
    a = knn_adjacency(x, 1)
    assert torch.equal(a, a.T) and a.diagonal().sum() == 0
    # nearest by angle: 0-1, 1-0 or 1-2, 2-1, 3-4, 4-3; symmetrised
    assert a[0, 1] == a[1, 2] == a[3, 4] == 1 and a[0, 3] == a[2, 3] == 0
    with pytest.raises(ValueError, match="k must be in"):
        knn_adjacency(x, 5)


def test_renormalised_adjacency_matches_the_formula_on_a_path():
    a = torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])  # degrees with self-loops: 2, 3, 2
    a_hat = normalized_adjacency(a)
    assert a_hat[0, 0] == pytest.approx(1 / 2) and a_hat[1, 1] == pytest.approx(1 / 3)
    assert a_hat[0, 1] == pytest.approx(1 / 6 ** 0.5) and a_hat[0, 2] == 0
    assert torch.allclose(a_hat, a_hat.T)
    assert torch.linalg.eigvalsh(a_hat).max() == pytest.approx(1.0, abs=1e-5)  # spectrum in (-1, 1]


def test_gcn_layers_are_a_hat_h_w_and_return_the_rows_asked_for():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g)
    a_hat = normalized_adjacency(knn_adjacency(x, 2))
    model = GCN(x, a_hat, (5,), 3, dropout=0.0).eval()
    feats, logits = model.forward_features(torch.tensor([4, 1]))
    h = torch.relu(a_hat @ model.stages[0](x))
    assert torch.allclose(feats[0], h[[4, 1]]) and torch.allclose(logits, (a_hat @ model.fc(h))[[4, 1]])
    assert torch.allclose(model(torch.tensor([1])), logits[1:])
    assert "x" not in model.state_dict() and "a_hat" not in model.state_dict()  # the graph is not saved


def test_two_layers_see_two_hops_and_no_further():
    path = torch.zeros(6, 6)
    for i in range(5):
        path[i, i + 1] = path[i + 1, i] = 1
    a_hat = normalized_adjacency(path)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    model = GCN(x, a_hat, (4,), 2, dropout=0.0).eval()
    for j, changes in [(2, True), (3, False), (5, False)]:  # node 0's output after two propagations
        x2 = x.clone()
        x2[j] += 5.0
        other = GCN(x2, a_hat, (4,), 2, dropout=0.0).eval()
        other.load_state_dict(model.state_dict())
        assert (not torch.allclose(other(torch.tensor([0])), model(torch.tensor([0])))) == changes, j


def test_the_task_is_transductive_with_disjoint_node_sets():
    task = get_task("digits_graph", quick=True)
    ids_t = task.teacher_data.train.tensors[0]
    ids_s = task.student_data.train.tensors[0]
    ids_test = task.test_loader.dataset.tensors[0]
    held = get_task("digits_graph", holdout=True, quick=True).test_loader.dataset.tensors[0]
    assert len(ids_t) == 997 and len(ids_test) == 500 and len(held) == 300
    assert set(ids_s.tolist()) <= set(ids_t.tolist())
    assert not set(ids_t.tolist()) & set(ids_test.tolist()) and not set(ids_t.tolist()) & set(held.tolist())
    assert not set(held.tolist()) & set(ids_test.tolist())
    assert torch.bincount(task.student_data.train.tensors[1]).tolist() == [3] * 10
    s, t = task.new_student(1), task.make_teacher()
    assert s.feature_channels == [16] and t.feature_channels == [64, 64]
    cache = TeacherCache.build(t, task.student_data.train)  # the harness's teacher cache works on node ids
    assert torch.allclose(cache.logits, t.eval()(ids_s))


def test_a_student_learns_from_three_labels_per_digit():
    task = get_task("digits_graph", epochs=60)
    _, hist = task.train_student(seed=1)
    assert hist.test_acc[-1] > 60  # chance 10; the full budget reaches 83-86 (see kdatlas.harness.tasks)
