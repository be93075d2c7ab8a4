"""The harness's transformation sets (SLA, HSAKD, SKD): exact, invertible, identity first."""
import pytest
import torch

from kdatlas.harness import get_task
from kdatlas.harness.transforms import (FLIP4, ROTATE4, joint_labels, split_joint, transform_set,
                                        transform_set_for)


def _x(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("tset, shape", [(ROTATE4, (3, 2, 5, 5)), (FLIP4, (3, 2, 7))])
def test_index_zero_is_the_identity_and_the_others_change_a_generic_input(tset, shape):
    x = _x(shape)
    assert torch.equal(tset.apply(x, 0), x)
    outs = [tset.apply(x, m) for m in range(len(tset))]
    for a in range(len(tset)):
        for b in range(a + 1, len(tset)):
            assert not torch.equal(outs[a], outs[b]), (tset.names[a], tset.names[b])
    for o in outs:  # a permutation (and for FLIP4 a sign) of the same values: nothing interpolated
        assert torch.equal(o.abs().flatten(1).sort(-1).values, x.abs().flatten(1).sort(-1).values)


def test_rotations_form_the_cyclic_group_of_order_four():
    x = _x((2, 1, 6, 6))
    r90 = lambda z: ROTATE4.apply(z, 1)  # noqa: E731
    assert torch.equal(r90(r90(r90(r90(x)))), x)
    assert torch.equal(r90(r90(x)), ROTATE4.apply(x, 2)) and torch.equal(r90(ROTATE4.apply(x, 2)), ROTATE4.apply(x, 3))
    # counter-clockwise by 90 degrees: the top row becomes the left column, read bottom to top
    img = torch.arange(4.0).reshape(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    assert ROTATE4.apply(img, 1).flatten().tolist() == [1.0, 3.0, 0.0, 2.0]


def test_the_1d_set_is_a_klein_four_group():
    x = _x((2, 1, 9))
    for m in range(4):
        assert torch.equal(FLIP4.apply(FLIP4.apply(x, m), m), x)  # each its own inverse
    assert torch.equal(FLIP4.apply(FLIP4.apply(x, 1), 2), FLIP4.apply(x, 3))
    seq = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert FLIP4.apply(seq, 3).flatten().tolist() == [-3.0, -2.0, -1.0]


@pytest.mark.parametrize("tset, shape", [(ROTATE4, (3, 1, 4, 4)), (FLIP4, (3, 1, 8))])
def test_expand_stacks_transformation_major_with_the_right_labels(tset, shape):
    x = _x(shape)
    x_all, t = tset.expand(x)
    assert x_all.shape == (4 * 3, *shape[1:]) and t.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for m in range(4):
        assert torch.equal(x_all[m * 3:(m + 1) * 3], tset.apply(x, m))


def test_joint_labels_round_trip_and_refuse_bad_indices():
    y, t = torch.tensor([0, 9, 4, 4]), torch.tensor([0, 3, 1, 2])
    j = joint_labels(y, t, 4)
    assert j.tolist() == [0, 39, 17, 18] and len(set(j.tolist())) == 4
    back_y, back_t = split_joint(j, 4)
    assert torch.equal(back_y, y) and torch.equal(back_t, t)
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        joint_labels(y, torch.tensor([0, 4, 1, 1]), 4)
    with pytest.raises(ValueError, match="differ in shape"):
        joint_labels(y, t[:2], 4)


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="square images"):
        ROTATE4.apply(_x((1, 1, 4, 5)), 1)
    with pytest.raises(ValueError, match=r"applies to \(B, C, L\) inputs"):
        FLIP4.expand(_x((1, 1, 4, 4)))
    with pytest.raises(IndexError, match="has 4 transformations"):
        FLIP4.apply(_x((1, 1, 4)), 4)
    with pytest.raises(ValueError, match="no transformation set"):
        transform_set_for(_x((4, 10)))


def test_each_bench_task_gets_the_set_of_its_input_shape():
    assert transform_set(get_task("mnist1d", quick=True)) is FLIP4
    assert transform_set(get_task("digits", quick=True)) is ROTATE4
