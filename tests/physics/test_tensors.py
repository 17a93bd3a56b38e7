import numpy as np
import pytest
from conftest import tensors
from hypothesis import given, settings
from scipy.special import sph_harm_y

from molmag.physics.tensors import (
    cartesian_from_real_spherical,
    cartesian_from_spherical,
    complex_to_real_matrix,
    real_spherical_from_cartesian,
    spherical_from_cartesian,
    symmetric_traceless_part,
)


def test_eqs_7_to_11_on_a_handmade_tensor():
    # A_xx=1, A_yy=2, A_zz=4, A_xy=A_yx=0.5, A_xz=0.25, A_zx=0.75, A_yz=-1, A_zy=-3
    a = np.array([[1.0, 0.5, 0.25], [0.5, 2.0, -1.0], [0.75, -3.0, 4.0]])
    t = spherical_from_cartesian(a)
    assert t[2] == pytest.approx((12.0 - 7.0) / np.sqrt(6))
    assert t[1] == pytest.approx(0.5 * (1.0 - 1j * (-4.0)))
    assert t[3] == pytest.approx(-0.5 * (1.0 + 1j * (-4.0)))
    assert t[0] == pytest.approx(0.5 * (-1.0 - 1j * 1.0))
    assert t[4] == pytest.approx(0.5 * (-1.0 + 1j * 1.0))


def test_components_are_spherical_harmonics_of_the_outer_product():
    """T^m(v v^T) = sqrt(8 pi / 15) |v|^2 Y_2^m(v) with Condon-Shortley Y (scipy)."""
    rng = np.random.default_rng(3)
    for v in rng.normal(size=(20, 3)):
        r = np.linalg.norm(v)
        theta, phi = np.arccos(v[2] / r), np.arctan2(v[1], v[0])
        y = np.array([sph_harm_y(2, m, theta, phi) for m in range(-2, 3)])
        np.testing.assert_allclose(spherical_from_cartesian(np.outer(v, v)),
                                   np.sqrt(8 * np.pi / 15) * r**2 * y, atol=1e-12)


def test_real_form_is_the_xy_yz_z2_xz_x2y2_basis():
    a = np.array([[1.0, 0.3, -0.2], [0.3, -4.0, 0.7], [-0.2, 0.7, 3.0]])
    r = real_spherical_from_cartesian(a)
    s2 = np.sqrt(2)
    expected = [s2 * 0.3, s2 * 0.7, (6.0 - 1.0 + 4.0) / np.sqrt(6), s2 * -0.2, (1.0 + 4.0) / s2]
    np.testing.assert_allclose(r, expected, atol=1e-14)


@pytest.mark.parametrize("l", range(7))
def test_complex_to_real_is_unitary(l):
    c = complex_to_real_matrix(l)
    np.testing.assert_allclose(c @ c.conj().T, np.eye(2 * l + 1), atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(tensors(symmetric=False))
def test_roundtrip_gives_the_symmetric_traceless_part(a):
    st_part = symmetric_traceless_part(a)
    np.testing.assert_allclose(cartesian_from_spherical(spherical_from_cartesian(a)), st_part,
                               atol=1e-12 * max(1.0, np.abs(a).max()))
    np.testing.assert_allclose(cartesian_from_real_spherical(real_spherical_from_cartesian(a)),
                               st_part, atol=1e-12 * max(1.0, np.abs(a).max()))
    t = spherical_from_cartesian(a)
    # reality condition and norm (orthonormal basis)
    np.testing.assert_allclose(t[0], np.conj(t[4]), atol=1e-12 * max(1.0, np.abs(a).max()))
    np.testing.assert_allclose(t[1], -np.conj(t[3]), atol=1e-12 * max(1.0, np.abs(a).max()))
    assert np.sum(np.abs(t) ** 2) == pytest.approx(np.sum(st_part**2), rel=1e-10, abs=1e-12)


def test_stacks_of_tensors():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 2, 3, 3))
    t = spherical_from_cartesian(a)
    assert t.shape == (4, 2, 5)
    np.testing.assert_allclose(t[1, 1], spherical_from_cartesian(a[1, 1]))
    np.testing.assert_allclose(cartesian_from_spherical(t), symmetric_traceless_part(a), atol=1e-13)


def test_non_real_components_are_refused():
    with pytest.raises(ValueError, match="real tensor"):
        cartesian_from_spherical(np.array([1, 0, 0, 0, 1j]))
    with pytest.raises(ValueError, match="3x3"):
        spherical_from_cartesian(np.zeros((2, 2)))
