import numpy as np
import pytest
from conftest import rotations, tensors
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import sph_harm_y

from molmag.physics.tensors import (
    real_spherical_from_cartesian,
    spherical_from_cartesian,
)
from molmag.physics.wigner import (
    euler_from_matrix,
    matrix_from_euler,
    small_d,
    wigner_D,
    wigner_D_euler,
    wigner_D_real,
    wigner_D_real_euler,
)


def _scale(a):
    return max(1.0, float(np.abs(a).max()))


@settings(max_examples=300, deadline=None)
@given(rotations(), tensors(symmetric=False))
def test_rotating_a_tensor_rotates_its_components_by_the_wigner_matrix(r, a):
    t = spherical_from_cartesian(a)
    t_rot = spherical_from_cartesian(r @ a @ r.T)
    np.testing.assert_allclose(wigner_D(2, r) @ t, t_rot, rtol=0, atol=1e-12 * _scale(a))
    tr = real_spherical_from_cartesian(a)
    tr_rot = real_spherical_from_cartesian(r @ a @ r.T)
    np.testing.assert_allclose(wigner_D_real(2, r) @ tr, tr_rot, rtol=0, atol=1e-12 * _scale(a))


def _ylm(l, v):
    v = v / np.linalg.norm(v)
    theta, phi = np.arccos(np.clip(v[2], -1, 1)), np.arctan2(v[1], v[0])
    return np.array([sph_harm_y(l, m, theta, phi) for m in range(-l, l + 1)])


@pytest.mark.parametrize("l", range(7))
def test_wigner_rotates_spherical_harmonics_up_to_l6(l):
    rng = np.random.default_rng(l)
    from scipy.spatial.transform import Rotation

    for seed in range(5):
        r = Rotation.random(random_state=seed + 10 * l).as_matrix()
        v = rng.normal(size=3)
        np.testing.assert_allclose(_ylm(l, r @ v), wigner_D(l, r) @ _ylm(l, v), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(rotations(), rotations(), st.integers(0, 6))
def test_representation_unitarity_and_real_orthogonality(r1, r2, l):
    w1, w2, w12 = wigner_D(l, r1), wigner_D(l, r2), wigner_D(l, r1 @ r2)
    np.testing.assert_allclose(w1 @ w2, w12, atol=1e-12)
    np.testing.assert_allclose(w1 @ w1.conj().T, np.eye(2 * l + 1), atol=1e-12)
    wr = wigner_D_real(l, r1)
    np.testing.assert_allclose(wr @ wr.T, np.eye(2 * l + 1), atol=1e-12)
    np.testing.assert_allclose(wigner_D_real(l, r1) @ wigner_D_real(l, r2),
                               wigner_D_real(l, r1 @ r2), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(rotations(), st.integers(0, 6))
def test_euler_angles_and_matrix_give_the_same_wigner_matrix(r, l):
    a, b, g = euler_from_matrix(r)
    assert 0.0 <= b <= np.pi
    np.testing.assert_allclose(matrix_from_euler(a, b, g), r, atol=1e-12)
    np.testing.assert_allclose(wigner_D_euler(l, a, b, g), wigner_D(l, r), atol=1e-12)
    np.testing.assert_allclose(wigner_D_real_euler(l, a, b, g), wigner_D_real(l, r), atol=1e-12)


def test_small_d_l1_closed_form():
    """d^1(beta) in closed form (Sakurai), rows/columns m = -1, 0, 1."""
    for beta in np.linspace(0, np.pi, 7):
        c, s = np.cos(beta), np.sin(beta)
        expected = np.array([
            [(1 + c) / 2, s / np.sqrt(2), (1 - c) / 2],
            [-s / np.sqrt(2), c, s / np.sqrt(2)],
            [(1 - c) / 2, -s / np.sqrt(2), (1 + c) / 2],
        ])
        np.testing.assert_allclose(small_d(1, beta), expected, atol=1e-14)


def test_real_l1_wigner_is_the_rotation_matrix_in_yzx_order():
    from scipy.spatial.transform import Rotation

    r = Rotation.random(random_state=7).as_matrix()
    perm = [1, 2, 0]
    np.testing.assert_allclose(wigner_D_real(1, r), r[np.ix_(perm, perm)], atol=1e-13)


def test_rotation_about_z_is_a_phase():
    alpha = 0.3
    r = matrix_from_euler(alpha, 0.0, 0.0)
    m = np.arange(-2, 3)
    np.testing.assert_allclose(wigner_D(2, r), np.diag(np.exp(1j * m * alpha)), atol=1e-14)


def test_bad_inputs():
    with pytest.raises(ValueError, match="l must be"):
        wigner_D(7, np.eye(3))
    with pytest.raises(ValueError, match="proper rotation"):
        wigner_D(2, -np.eye(3))
