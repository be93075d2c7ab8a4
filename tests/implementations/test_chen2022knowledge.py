"""Claims of Chen et al. (2022), SimKD, checked on the projector, the loss, the deployed student and the recipe."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.chen2022knowledge import (SimKDProjector, SimKDStudent, align_spatial, parameter_counts,
                                                        reused_logits, simkd_loss)
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): 1-D inputs (8, 3, 5); the student is a 4-channel conv
# followed by its projector to the teacher's 8 channels (the projector is trained with the student).
# A student equal to the teacher (no projector) reproduces the teacher's map: loss 0.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: {"simkd": simkd_loss(*align_spatial(s(x), t(x)))},
    student=lambda: nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), SimKDProjector(4, 8, factor=2, dim=1)),
    teacher=lambda seed: seeded(lambda: nn.Conv1d(3, 8, 3, padding=1), seed), zero_when_equal=True,
    x=lambda: torch.randn(8, 3, 5, generator=torch.Generator().manual_seed(0))))


def test_projector_is_the_codes_bottleneck_and_its_parameter_count_by_hand():
    # conv1x1 C_s -> C_t/r, BN, ReLU; conv3x3 C_t/r -> C_t/r, BN, ReLU; conv1x1 C_t/r -> C_t, BN, ReLU (no biases)
    p = SimKDProjector(4, 8, factor=2, dim=1)
    kinds = [type(m).__name__ for m in p.transfer]
    assert kinds == ["Conv1d", "BatchNorm1d", "ReLU"] * 3
    convs = [m for m in p.transfer if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.bias) for c in convs] == \
        [(4, 4, 1, None), (4, 4, 3, None), (4, 8, 1, None)]
    # weights 4*4*1 + 4*4*3 + 4*8*1 = 96; BN affine 2*(4 + 4 + 8) = 32
    assert sum(q.numel() for q in p.parameters()) == 96 + 32
    # 2-D (the code's): 3x3 kernels, C_t/r = 64 for C_t = 256 at the default factor 2
    p2 = SimKDProjector(32, 256)
    assert p2.transfer[3].kernel_size == (3, 3) and p2.transfer[3].out_channels == 128
    assert p2(torch.randn(2, 32, 5, 5)).shape == (2, 256, 5, 5)
    # a larger factor: a narrower bottleneck, fewer parameters (the paper's accuracy/cost trade-off)
    sizes = [sum(q.numel() for q in SimKDProjector(32, 256, factor=f).parameters()) for f in (1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 3 * sizes[2]
    with pytest.raises(ValueError, match="factor"):
        SimKDProjector(4, 8, factor=16)


def test_projected_map_is_non_negative_and_matches_the_teacher_shape():
    torch.manual_seed(0)
    p = SimKDProjector(6, 10, factor=2, dim=1)
    out = p(torch.randn(5, 6, 7))
    assert out.shape == (5, 10, 7) and (out >= 0).all()  # ends in BN-ReLU, like the post-ReLU teacher map


def test_loss_is_the_mean_squared_error_by_hand_and_zero_when_aligned():
    s = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])  # (1, 2, 2)
    t = torch.tensor([[[0.0, 2.0], [3.0, 1.0]]])
    assert simkd_loss(s, t).item() == pytest.approx((1 + 0 + 9 + 1) / 4)  # mean over all 4 elements
    torch.manual_seed(1)
    a, b = torch.randn(4, 3, 6), torch.randn(4, 3, 6)
    assert torch.allclose(simkd_loss(a, b), F.mse_loss(a, b))  # nn.MSELoss, the code's criterion
    assert simkd_loss(b.clone(), b).item() == 0.0
    with pytest.raises(ValueError, match="differ"):
        simkd_loss(torch.randn(2, 3, 4), torch.randn(2, 5, 4))


def test_teacher_features_carry_no_gradient():
    s = torch.randn(3, 4, 5, requires_grad=True)
    t = torch.randn(3, 4, 5, requires_grad=True)
    simkd_loss(s, t).backward()
    assert t.grad is None and s.grad is not None
    assert torch.allclose(s.grad, 2 * (s - t).detach() / s.numel())


def test_spatial_alignment_pools_the_larger_map_down_in_either_direction():
    big = torch.arange(16.0).view(1, 1, 4, 4)
    small = torch.zeros(1, 3, 2, 2)
    src, tgt = align_spatial(big, small)  # student larger: the student is pooled
    assert tgt is small and torch.equal(src, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    src, tgt = align_spatial(small, big)  # teacher larger: the teacher's map (the target) is pooled
    assert src is small and torch.equal(tgt, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    seq = torch.tensor([[[1.0, 3.0, 5.0, 7.0]]])
    src, _ = align_spatial(seq, torch.zeros(1, 2, 2))  # 1-D sequences: pairs averaged
    assert torch.equal(src, torch.tensor([[[2.0, 6.0]]]))
    a = torch.randn(2, 3, 4)
    assert align_spatial(a, a)[0] is a
    with pytest.raises(ValueError, match="rank"):
        align_spatial(torch.randn(1, 2, 4), torch.randn(1, 2, 4, 4))


def _teacher_trunk(teacher):
    class Trunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = teacher

        def forward(self, x):
            return self.net.forward_features(x)[0][-1]
    return Trunk()


def test_perfectly_aligned_features_give_exactly_the_teachers_predictions():
    # The abstract's key property: if P(f_s) = f_t, the student's logits are the teacher's.
    from kdatlas.harness.models import mnist1d_teacher
    teacher = seeded(mnist1d_teacher, 0).eval()
    x = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(2))
    student = SimKDStudent(_teacher_trunk(copy.deepcopy(teacher)), nn.Identity(), teacher.fc).eval()
    with torch.no_grad():
        assert torch.equal(student(x), teacher(x))
        # and the deployed prediction is the teacher's head on the pooled projected map, whatever P is
        trained = SimKDStudent(nn.Conv1d(1, 8, 3, padding=1), SimKDProjector(8, 128, dim=1), teacher.fc).eval()
        feats, logits = trained.forward_features(x)
        assert torch.equal(logits, teacher.fc(feats[-1].mean(-1)))
        assert torch.equal(logits, reused_logits(trained.projector(trained.encoder(x)), teacher.fc))


def test_reused_classifier_is_a_frozen_copy_that_no_optimiser_step_or_train_call_changes():
    torch.manual_seed(3)
    head = nn.Sequential(nn.Dropout(0.5), nn.Linear(8, 3))  # a head with a train/eval behaviour
    head.requires_grad_(True)
    model = SimKDStudent(nn.Conv1d(2, 4, 3, padding=1), SimKDProjector(4, 8, dim=1), head)
    before = copy.deepcopy(model.classifier.state_dict())
    assert all(not p.requires_grad for p in model.classifier.parameters())
    assert all(p.requires_grad for p in head.parameters())  # the teacher's own head is left as it was
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    enc_before = copy.deepcopy(model.encoder.state_dict())
    model.train()
    assert not model.classifier.training and model.projector.training
    x = torch.randn(16, 2, 9)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        (model(x).pow(2).mean() + simkd_loss(model.forward_features(x)[0][-1], torch.rand(16, 8, 9))).backward()
        assert all(p.grad is None for p in model.classifier.parameters())
        opt.step()
    assert all(torch.equal(v, before[k]) for k, v in model.classifier.state_dict().items())
    assert not torch.equal(model.encoder.weight, enc_before["weight"])  # the encoder did learn
    # the reused head's dropout stays off while the student trains: the head is deterministic
    z = torch.randn(16, 8)
    model.train()
    assert torch.equal(model.classifier(z), head(z) if not head.training else head.eval()(z))


def test_parameter_counts_include_the_projector_and_the_reused_head():
    head = nn.Linear(8, 3)  # 27 parameters
    model = SimKDStudent(nn.Conv1d(2, 4, 3, padding=1), SimKDProjector(4, 8, dim=1), head)
    c = parameter_counts(model)
    assert c == {"encoder": 2 * 4 * 3 + 4, "projector": 96 + 32, "classifier": 27, "total": 28 + 128 + 27}
    assert c["total"] == sum(p.numel() for p in model.parameters())


def test_student_map_larger_than_the_teachers_is_pooled_at_inference_as_in_training():
    head = nn.Linear(8, 3)
    enc = nn.Conv1d(2, 4, 3, padding=1)
    model = SimKDStudent(enc, SimKDProjector(4, 8, dim=1), head, target_size=(4,)).eval()
    x = torch.randn(5, 2, 8)
    feats, logits = model.forward_features(x)
    assert feats[-1].shape == (5, 8, 4)
    with torch.no_grad():
        src, _ = align_spatial(enc(x), torch.zeros(5, 8, 4))
        assert torch.allclose(feats[-1], model.projector(src))


def test_training_on_the_feature_loss_alone_makes_the_student_predict_like_the_teacher():
    # Toy: 3 classes of 2-channel sequences; a trained teacher (conv + linear head). The student
    # (a narrower conv) learns only to match the teacher's map through its projector, never sees a
    # label, and then agrees with the teacher's predictions through the reused head.
    g = torch.Generator().manual_seed(4)
    y = torch.arange(240) % 3
    proto = torch.randn(3, 2, 12, generator=g)
    x = proto[y] + 0.8 * torch.randn(240, 2, 12, generator=g)
    torch.manual_seed(4)
    t_conv, t_head = nn.Sequential(nn.Conv1d(2, 16, 3, padding=1), nn.ReLU()), nn.Linear(16, 3)
    opt = torch.optim.Adam([*t_conv.parameters(), *t_head.parameters()], lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(t_head(t_conv(x).mean(-1)), y).backward()
        opt.step()
    with torch.no_grad():
        t_map, t_pred = t_conv(x), t_head(t_conv(x).mean(-1)).argmax(-1)
    assert (t_pred == y).float().mean() > 0.9
    student = SimKDStudent(nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU()),
                           SimKDProjector(4, 16, factor=2, dim=1), t_head)
    with torch.no_grad():
        agree_before = (student.eval()(x).argmax(-1) == t_pred).float().mean()
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    student.train()
    for _ in range(200):
        loss = simkd_loss(student.forward_features(x)[0][-1], t_map)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        agree = (student.eval()(x).argmax(-1) == t_pred).float().mean()
    assert losses[-1] < 0.3 * losses[0]
    assert agree > 0.9 and agree > agree_before + 0.2


@pytest.fixture(scope="module")
def small_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", num_samples=600, n_train=96, teacher_epochs=1, epochs=2, batch_size=32)


def test_recipe_deploys_encoder_projector_and_the_frozen_teacher_head(small_task):
    from kdatlas.harness.models import pool
    from kdatlas.harness.train import seed_everything
    from kdatlas.recipes import get_recipe, run_recipe

    task = small_task
    seed_everything(0)
    teacher = task.make_teacher().to(task.device).eval()  # an untrained teacher is enough here
    teacher_before = copy.deepcopy(teacher.state_dict())
    recipe = get_recipe("chen2022knowledge")
    assert recipe.needs_teacher and recipe.settings_for("mnist1d") == {"factor": 2}
    init = task.new_student(1)
    model, hist = run_recipe(recipe, task, teacher, seed=1)
    assert isinstance(model, SimKDStudent)
    assert set(hist.terms) == {"simkd"} and len(hist.train_loss) == 2  # no CE, no KL; the task's epochs
    # the reused head is the teacher's, bit for bit, and the teacher did not move
    assert torch.equal(model.classifier.weight, teacher.fc.weight) and torch.equal(model.classifier.bias, teacher.fc.bias)
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
    # the encoder is the seed's student, trained, without its own classifier
    student = model.encoder.student
    assert isinstance(student.fc, nn.Identity)
    assert not torch.equal(student.stages[0][0][0].weight, init.stages[0][0][0].weight)
    c = parameter_counts(model)
    assert c["encoder"] == sum(p.numel() for p in init.parameters()) - sum(p.numel() for p in init.fc.parameters())
    assert c["classifier"] == 128 * 10 + 10
    # projector 32 -> 64 -> 64 -> 128 (1-D): 32*64 + 64*64*3 + 64*128 weights + 2*(64+64+128) BN
    assert c["projector"] == 2048 + 12288 + 8192 + 512
    # what the benchmark scores is the teacher's head on the pooled projected map
    x = next(iter(task.test_loader))[0][:8].to(task.device)
    with torch.no_grad():
        f = student.forward_features(x)[0][-1]
        assert torch.allclose(model(x), teacher.fc(pool(model.projector(f))))
    assert task.score(model) == pytest.approx(task.metric.fn(model, task.test_loader, task.device))
