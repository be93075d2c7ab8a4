"""Few-shot episodes (the RFS/SKD protocol) and task digits_fewshot."""
import pytest
import torch
from torch import nn

from kdatlas.harness import get_task
from kdatlas.harness.fewshot import embed, episode_accuracy, fewshot_score, sample_episodes


def test_episodes_are_n_way_k_shot_disjoint_and_reproducible():
    labels = torch.arange(6).repeat_interleave(30)
    eps = sample_episodes(labels, n_way=4, k_shot=5, n_query=15, n_episodes=20, seed=3)
    for support, query in eps:
        assert len(support) == 20 and len(query) == 60 and not set(support.tolist()) & set(query.tolist())
        cs, cq = labels[support], labels[query]
        assert len(cs.unique()) == 4 and torch.equal(cs.unique(), cq.unique())
        assert all(int((cs == c).sum()) == 5 and int((cq == c).sum()) == 15 for c in cs.unique())
    again = sample_episodes(labels, 4, 5, 15, 20, seed=3)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(eps, again))
    assert any(len(set(labels[s].tolist()) ^ set(labels[t].tolist())) for (s, _), (t, _) in zip(eps, eps[1:]))
    with pytest.raises(ValueError, match="need 7 classes"):
        sample_episodes(labels, 7, 1, 1, 1)
    with pytest.raises(ValueError, match="fewer than k_shot"):
        sample_episodes(labels, 4, 20, 15, 1)


@pytest.mark.parametrize("classifier", ["prototype", "logistic"])
def test_separable_embeddings_score_100_and_random_ones_near_chance(classifier):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(8).repeat_interleave(25)
    centres = torch.randn(8, 16, generator=g) * 5
    z = centres[labels] + 0.1 * torch.randn(len(labels), 16, generator=g)
    eps = sample_episodes(labels, 4, 5, 15, 30, seed=0)
    acc, ci = episode_accuracy(z, labels, eps, classifier)
    assert acc == 100.0 and ci == 0.0
    acc, ci = episode_accuracy(torch.randn(len(labels), 16, generator=g), labels, eps, classifier)
    assert 15 < acc < 40 and ci > 0  # 4-way chance: 25%


def test_the_score_ignores_the_embeddings_scale():  # the protocol normalises embeddings
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(5).repeat_interleave(20)
    z = torch.randn(len(labels), 8, generator=g) + labels[:, None].float()
    eps = sample_episodes(labels, 3, 1, 5, 25, seed=0)
    assert episode_accuracy(z, labels, eps, "prototype") == episode_accuracy(7 * z, labels, eps, "prototype")
    with pytest.raises(ValueError, match="classifier must be"):
        episode_accuracy(z, labels, eps, "svm")


def test_the_task_trains_on_base_digits_and_scores_episodes_on_novel_ones():
    task = get_task("digits_fewshot", quick=True)
    ys = task.teacher_data.train.tensors[1]
    assert ys.unique().tolist() == list(range(6)) and len(task.student_data.train) == 300
    z, y = embed(task.new_student(1), task.test_loader)
    assert y.unique().tolist() == [6, 7, 8, 9] and z.shape == (len(y), 32)
    assert task.new_student(1).fc.out_features == 6
    assert task.metric.name == "4-way 5-shot accuracy"
    s = task.new_student(1)
    assert task.score(s) == fewshot_score(s, task.test_loader, n_way=4, k_shot=5, n_query=15, n_episodes=50,
                                        classifier="prototype")[0]
    with pytest.raises(ValueError, match="no held-out class split"):
        get_task("digits_fewshot", holdout=True)


def test_a_model_that_ignores_its_input_scores_chance():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4))

        def embedding(self, x):
            return self.w.expand(len(x), 4)

    task = get_task("digits_fewshot", quick=True)
    acc, _ = fewshot_score(Constant(), task.test_loader, n_way=4, k_shot=5, n_query=15, n_episodes=50)
    assert acc == 25.0  # all prototypes equal: argmax picks the first class, right for a quarter of queries
