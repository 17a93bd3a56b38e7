import numpy as np
import pytest
from conftest import rotations, tensors
from hypothesis import given, settings

from molmag.physics.zfs import tensor_from_zfs, zfs_DE, zfs_from_tensor


def test_axial_tensor():
    # S = 3/2 easy-axis Co(II): D = -100 cm-1, E = 0, z along the lab z
    t = np.diag([100 / 3, 100 / 3, -200 / 3])
    p = zfs_from_tensor(t)
    assert p.D == pytest.approx(-100.0)
    assert p.E == pytest.approx(0.0, abs=1e-12)
    assert p.E_over_D == pytest.approx(0.0, abs=1e-14)
    assert abs(p.axes[:, 2] @ [0, 0, 1]) == pytest.approx(1.0)


def test_rhombic_tensor_and_standard_frame():
    # Z is the largest-magnitude eigenvalue (-15): D = -22.5; X, Y = 5, 10 ordered so that
    # E = (X - Y)/2 = -2.5 has the sign of D, E/D = 1/9 (taking z = 10 would give E/D > 1/3)
    t = np.diag([5.0, -15.0, 10.0])
    p = zfs_from_tensor(t)
    assert p.D == pytest.approx(1.5 * -15.0)
    assert p.E_over_D == pytest.approx(abs(10.0 - 5.0) / 2 / 22.5)
    assert p.E < 0  # E carries the sign of D
    assert 0 <= p.E_over_D <= 1 / 3
    np.testing.assert_allclose(p.tensor(), t, atol=1e-12)


def test_rhombic_limit_and_zero_tensor():
    p = zfs_from_tensor(np.diag([-1.0, 0.0, 1.0]))
    assert p.E_over_D == pytest.approx(1 / 3)
    z = zfs_from_tensor(np.zeros((3, 3)))
    assert (z.D, z.E, z.E_over_D) == (0.0, 0.0, 0.0)


def test_isotropic_part_is_kept():
    t = tensor_from_zfs(-10.0, 1.0, iso=3.0)
    p = zfs_from_tensor(t)
    assert p.iso == pytest.approx(3.0)
    assert p.D == pytest.approx(-10.0)
    assert p.E == pytest.approx(-1.0)  # sign follows D


@settings(max_examples=300, deadline=None)
@given(tensors(symmetric=True), rotations())
def test_D_E_invariant_under_rotation_and_E_over_D_in_range(t, r):
    p = zfs_from_tensor(t)
    q = zfs_from_tensor(r @ t @ r.T)
    scale = max(1.0, np.abs(t).max())
    assert q.D == pytest.approx(p.D, abs=1e-10 * scale)
    assert q.E == pytest.approx(p.E, abs=1e-10 * scale)
    for x in (p, q):
        assert -1e-12 <= x.E_over_D <= 1 / 3 + 1e-9
        assert np.linalg.det(x.axes) == pytest.approx(1.0)
        np.testing.assert_allclose(x.axes.T @ x.axes, np.eye(3), atol=1e-12)


@settings(max_examples=300, deadline=None)
@given(tensors(symmetric=True))
def test_tensor_rebuilt_from_D_E_axes_equals_the_original(t):
    p = zfs_from_tensor(t)
    np.testing.assert_allclose(tensor_from_zfs(p.D, p.E, p.axes, p.iso), t,
                               atol=1e-11 * max(1.0, np.abs(t).max()))


def test_bad_tensor():
    with pytest.raises(ValueError, match="3x3"):
        zfs_from_tensor(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        zfs_from_tensor(np.full((3, 3), np.nan))


def test_batched_D_E_equal_the_single_tensor_ones():
    """zfs_DE (one batched eigvalsh) gives zfs_from_tensor's D and E, including the
    degenerate cases: zero, axial, the rhombic limit E/D = 1/3 of both signs, an isotropic
    part, non-symmetric input."""
    rng = np.random.default_rng(0)
    t = rng.normal(size=(500, 3, 3)) * rng.uniform(0.1, 100, (500, 1, 1))
    t[0] = 0.0
    t[1] = tensor_from_zfs(-10.0, 0.0)
    t[2] = tensor_from_zfs(-10.0, 10.0 / 3)
    t[3] = tensor_from_zfs(10.0, 10.0 / 3)
    t[4] = tensor_from_zfs(5.0, 1.0, iso=2.0)
    d, e = zfs_DE(t)
    one = [zfs_from_tensor(x) for x in t]
    np.testing.assert_allclose(d, [p.D for p in one], atol=1e-12 * np.abs(t).max())
    np.testing.assert_allclose(e, [p.E for p in one], atol=1e-12 * np.abs(t).max())
    with pytest.raises(ValueError, match="tensor 2 contains non-finite"):
        zfs_DE(np.concatenate([t[:2], np.full((1, 3, 3), np.nan)]))
    with pytest.raises(ValueError, match=r"\(n, 3, 3\)"):
        zfs_DE(np.zeros((3, 3)))
