"""Claims of Ma et al. (2021), the nasty teacher, checked on self_undermining_loss / student_kd_loss.

The self-undermining loss *trains a teacher*: in its catchers the "student" is the nasty teacher
(it must get the gradient) and the "teacher" is the frozen adversarial network f_A (it must not).
The recipe test below checks the same split on a real run: f_A bit-identical, the nasty one moved."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.ma2021undistillable import self_undermining_loss, student_kd_loss
from kdatlas.testing import Case, catchers, seeded


def _net(seed, hidden=16):
    return seeded(lambda: nn.Sequential(nn.Linear(6, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 5)), seed)


test_catchers_nasty = catchers(Case(
    loss=lambda s, t, x, y: self_undermining_loss(s(x), t(x), y, weight=0.04, temperature=4.0),
    student=lambda: nn.Linear(6, 5), teacher=_net, zero_when_equal=True))
test_catchers_student = catchers(Case(
    loss=lambda s, t, x, y: student_kd_loss(s(x), t(x), y), student=lambda: nn.Linear(6, 5), teacher=_net,
    zero_when_equal=True))


def test_weight_zero_is_the_cross_entropy():
    torch.manual_seed(0)
    zt, za, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    out = self_undermining_loss(zt, za, y, weight=0.0)
    assert torch.allclose(out["ce"], F.cross_entropy(zt, y)) and out["undermine"] == 0


def test_hand_case_sign_and_kl_direction():
    # Two classes, tau = 1: p_T = softmax(0, ln 3) = (1/4, 3/4), p_A = (1/2, 1/2).
    # KL(p_T || p_A) = 1/4 ln(1/2) + 3/4 ln(3/2); the reverse KL(p_A || p_T) = 1/2 ln 2 + 1/2 ln(2/3) differs.
    zt = torch.tensor([[0.0, math.log(3.0)]])
    za = torch.zeros(1, 2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    out = self_undermining_loss(zt, za, torch.tensor([1]), weight=0.5, temperature=1.0)
    assert math.isclose(out["undermine"].item(), -0.5 * kl, rel_tol=1e-6)  # minus: the teacher maximises it
    assert not math.isclose(kl, 0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel_tol=1e-3)
    # tau^2 scaling at tau = 2
    out2 = self_undermining_loss(zt, za, torch.tensor([1]), weight=0.5, temperature=2.0)
    p = F.softmax(zt / 2, 1)
    kl2 = (p * (p.log() - math.log(0.5))).sum()
    assert math.isclose(out2["undermine"].item(), -0.5 * 4 * kl2.item(), rel_tol=1e-6)


def test_a_step_on_the_undermining_term_moves_the_teacher_away_from_f_a():
    torch.manual_seed(1)
    za = torch.randn(8, 5)
    zt = (za + 0.1 * torch.randn(8, 5)).requires_grad_(True)
    y = za.argmax(1)
    kl = lambda z: F.kl_div(F.log_softmax(za / 4, 1), F.softmax(z / 4, 1), reduction="batchmean")  # noqa: E731
    before = kl(zt).item()
    self_undermining_loss(zt, za, y)["undermine"].backward()
    with torch.no_grad():
        stepped = zt - 1.0 * zt.grad
    assert kl(stepped).item() > before


def test_student_kd_is_the_official_mixture():
    torch.manual_seed(2)
    zs, zt, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    out = student_kd_loss(zs, zt, y, alpha=0.9, temperature=4.0)
    kd = F.kl_div(F.log_softmax(zs / 4, 1), F.softmax(zt / 4, 1), reduction="batchmean") * 16 * 0.9
    assert torch.allclose(out["kd"], kd, atol=1e-6)
    assert torch.allclose(out["ce"], 0.1 * F.cross_entropy(zs, y))


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, 6, generator=torch.Generator().manual_seed(99)) * 1.2
    y = torch.randint(0, 5, (n,), generator=g)
    return centres[y] + torch.randn(n, 6, generator=g), y


def _fit(model, x, y, loss, steps=300, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = loss(model(x), y)
        (sum(out.values()) if isinstance(out, dict) else out).backward()
        opt.step()
    return model.eval()


def test_the_nasty_teacher_keeps_its_accuracy_and_teaches_worse_than_a_normal_one():
    # The paper's claim on a toy: 5 Gaussian classes in 6-d, MLP teachers, small MLP students on
    # 100 examples, 3 seeds. The nasty teacher is within 3 points of the normal one, yet students
    # distilled from it score below students distilled from the normal teacher.
    x_t, y_t = _blobs(2000, 0)
    x_s, y_s = x_t[:100], y_t[:100]
    x_te, y_te = _blobs(2000, 1)
    acc = lambda m: (m(x_te).argmax(1) == y_te).float().mean().item()  # noqa: E731
    gaps = []
    for seed in (1, 2, 3):
        normal = _fit(_net(seed, 64), x_t, y_t, F.cross_entropy)
        for p in normal.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            z_normal = normal(x_t)
        nasty = _fit(_net(seed + 10, 64).train(), x_t, y_t,
                     lambda z, y: self_undermining_loss(z, z_normal, y, weight=0.04, temperature=4.0))
        assert acc(nasty) > acc(normal) - 0.03, (acc(nasty), acc(normal))
        with torch.no_grad():
            t_normal, t_nasty = normal(x_s), nasty(x_s)
        from_normal = _fit(seeded(lambda: nn.Linear(6, 5), seed), x_s, y_s, lambda z, y: student_kd_loss(z, t_normal, y))
        from_nasty = _fit(seeded(lambda: nn.Linear(6, 5), seed), x_s, y_s, lambda z, y: student_kd_loss(z, t_nasty, y))
        gaps.append(acc(from_normal) - acc(from_nasty))
    assert sum(gaps) / len(gaps) > 0.02, gaps


def test_the_recipe_trains_the_nasty_teacher_and_leaves_f_a_frozen():
    from kdatlas.harness import get_task
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.ma2021undistillable import train_nasty

    task = get_task("mnist1d", quick=True, teacher_epochs=1)
    normal = task.make_teacher().eval().requires_grad_(False)
    before = {k: v.clone() for k, v in normal.state_dict().items()}
    recipe = get_recipe("ma2021undistillable")
    nasty, hist = train_nasty(make_context(task, normal, 1), recipe.settings_for("mnist1d"))
    assert all(torch.equal(before[k], v) for k, v in normal.state_dict().items())
    assert set(hist.terms) == {"ce", "undermine"} and hist.terms["undermine"][-1] < 0
    fresh = task.make_teacher()
    assert any(not torch.equal(a, b) for a, b in zip(nasty.state_dict().values(), fresh.state_dict().values()))
    assert not nasty.training and not any(p.requires_grad for p in nasty.parameters())
