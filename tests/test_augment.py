"""Augmentation: deterministic for a seed, int16-valued, and each transform does its job."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_signals

from tinybnn.training.augment import Augment, rotation_matrices


@pytest.fixture(scope="module")
def batch():
    return torch.tensor(make_signals(seed=1, per_class=4)[0], dtype=torch.float32)


def test_same_seed_same_batches(batch):
    a, b = (
        Augment(rotation=10, axes=[(0, 1, 2)], seed=3),
        Augment(rotation=10, axes=[(0, 1, 2)], seed=3),
    )
    for _ in range(3):
        assert torch.equal(a(batch), b(batch))
    assert not torch.equal(Augment(seed=4)(batch), Augment(seed=3)(batch))


def test_output_is_int16_counts_of_the_same_shape(batch):
    out = Augment(scaling=0.5, seed=0)(batch * 3)
    assert out.shape == batch.shape
    assert torch.equal(out, out.round())
    assert out.min() >= -32768 and out.max() <= 32767


def test_all_off_is_identity(batch):
    assert torch.equal(Augment(jitter=0, scaling=0, shift=0, seed=0)(batch), batch)


def test_shift_holds_edges_and_moves_whole_windows():
    x = torch.arange(10.0).repeat(4, 2, 1)  # [4, 2, 10]
    out = Augment(jitter=0, scaling=0, shift=0.3, seed=1)(x)
    for w in out:
        assert torch.equal(w[0], w[1])  # both channels moved alike
        d = torch.diff(w[0])
        assert set(d.tolist()) <= {0.0, 1.0}  # a shifted ramp, flat where held


def test_rotations_are_orthonormal_and_small():
    r = rotation_matrices(50, 15, torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        r @ r.transpose(1, 2), torch.eye(3).expand(50, 3, 3), atol=1e-5, rtol=0
    )
    angle = torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert angle.max() <= math.radians(15) + 1e-4


def test_rotation_keeps_each_sensors_vector_length():
    x = torch.randn(8, 6, 20) * 3000
    out = Augment(jitter=0, scaling=0, shift=0, rotation=20, axes=[(0, 1, 2), (3, 4, 5)], seed=0)(x)
    for group in ((0, 1, 2), (3, 4, 5)):
        idx = list(group)
        torch.testing.assert_close(out[:, idx].norm(dim=1), x[:, idx].norm(dim=1), atol=2, rtol=0)


def test_axes_must_be_triples():
    with pytest.raises(ValueError, match="groups of three"):
        Augment(axes=[(0, 1)])
