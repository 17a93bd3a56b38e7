"""Extended Stevens operators, tensor operators and lanthanide ion data."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from molmag.physics.stevens import (
    LANTHANIDES,
    angular_momentum,
    clebsch_gordan,
    ito_factor,
    ladder_operators,
    lande_g,
    lanthanide_ion,
    m_values,
    spherical_tensor_operators,
    stevens_operator,
    stevens_polynomial,
)


def _explicit(j):
    """Textbook ESO polynomials (Rudowicz; EasySpin 'stevensoperators' table), [A,B]_+ =
    (AB+BA)/2, s = J(J+1)."""
    jp, jm = ladder_operators(j)
    _, _, jz = angular_momentum(j)
    jz = jz.real
    n = len(jz)
    one = np.eye(n)
    s = j * (j + 1)
    p = np.linalg.matrix_power

    def ac(a, b):
        return (a @ b + b @ a) / 2

    return {
        (2, 0): 3 * jz @ jz - s * one,
        (2, 1): 0.5 * ac(jz, jp + jm),
        (2, -1): ac(jz, jp - jm) / 2j,
        (2, 2): 0.5 * (p(jp, 2) + p(jm, 2)),
        (2, -2): (p(jp, 2) - p(jm, 2)) / 2j,
        (4, 0): 35 * p(jz, 4) - (30 * s - 25) * p(jz, 2) + (3 * s * s - 6 * s) * one,
        (4, 1): 0.5 * ac(7 * p(jz, 3) - (3 * s + 1) * jz, jp + jm),
        (4, 2): 0.5 * ac(7 * p(jz, 2) - (s + 5) * one, p(jp, 2) + p(jm, 2)),
        (4, -3): ac(jz, p(jp, 3) - p(jm, 3)) / 2j,
        (4, 4): 0.5 * (p(jp, 4) + p(jm, 4)),
        (4, -4): (p(jp, 4) - p(jm, 4)) / 2j,
        (6, 0): 231 * p(jz, 6) - (315 * s - 735) * p(jz, 4)
        + (105 * s * s - 525 * s + 294) * p(jz, 2)
        - (5 * s ** 3 - 40 * s * s + 60 * s) * one,
        (6, -2): ac(33 * p(jz, 4) - (18 * s + 123) * p(jz, 2) + (s * s + 10 * s + 102) * one,
                    p(jp, 2) - p(jm, 2)) / 2j,
        (6, 3): 0.5 * ac(11 * p(jz, 3) - (3 * s + 59) * jz, p(jp, 3) + p(jm, 3)),
        (6, 4): 0.5 * ac(11 * p(jz, 2) - (s + 38) * one, p(jp, 4) + p(jm, 4)),
        (6, -5): ac(jz, p(jp, 5) - p(jm, 5)) / 2j,
        (6, 6): 0.5 * (p(jp, 6) + p(jm, 6)),
    }


@pytest.mark.parametrize("j", [3, 4.5, 7.5, 8])
def test_stevens_operators_match_textbook_polynomials(j):
    for (k, q), ref in _explicit(j).items():
        op = stevens_operator(j, k, q)
        assert np.allclose(op, ref, atol=1e-9 * max(1.0, np.abs(ref).max())), (j, k, q)


def test_easyspin_stev_example_and_simple_forms():
    # EasySpin documentation: stev(2,[4,2]) has 7.3485 = 3 sqrt(6) at (M=+-2, 0), -12 at (1, -1)
    o = stevens_operator(2, 4, 2).real
    assert o[0, 2] == pytest.approx(3 * np.sqrt(6)) and o[4, 2] == pytest.approx(3 * np.sqrt(6))
    assert o[1, 3] == pytest.approx(-12.0)
    # O20 = 3Jz^2 - J(J+1) for J = 15/2: diagonal 3M^2 - 63.75
    m = m_values(7.5)
    assert np.allclose(np.diag(stevens_operator(7.5, 2, 0)).real, 3 * m ** 2 - 63.75)


@pytest.mark.parametrize("j", [2.5, 6, 7.5])
def test_operators_hermitian_real_or_imaginary_and_vanish_above_2j(j):
    for k in (2, 4, 6):
        for q in range(-k, k + 1):
            op = stevens_operator(j, k, q)
            scale = max(np.abs(op).max(), 1.0)
            assert np.abs(op - op.conj().T).max() < 1e-12 * scale
            part = op.imag if q >= 0 else op.real
            assert np.abs(part).max() < 1e-12 * scale
            if k > 2 * j:
                assert np.abs(op).max() < 1e-12
            else:
                assert np.abs(op).max() > 0.1


@pytest.mark.parametrize("j,k", [(2.5, 2), (3.5, 4), (7.5, 6), (6, 4)])
def test_tensor_operators_obey_racah_commutation_rules(j, k):
    """[J_z, T_q] = q T_q, [J_+-, T_q] = sqrt(k(k+1) - q(q+-1)) T_q+-1 and T_k = c_k J_+^k."""
    t = spherical_tensor_operators(j, k)
    jp, jm = ladder_operators(j)
    jz = np.diag(m_values(j))
    tol = 1e-12 * np.abs(t).max()
    for q in range(-k, k + 1):
        tq = t[q + k]
        assert np.abs(jz @ tq - tq @ jz - q * tq).max() < tol
        if q < k:
            up = np.sqrt(k * (k + 1) - q * (q + 1)) * t[q + k + 1]
            assert np.abs(jp @ tq - tq @ jp - up).max() < tol
        if q > -k:
            down = np.sqrt(k * (k + 1) - q * (q - 1)) * t[q + k - 1]
            assert np.abs(jm @ tq - tq @ jm - down).max() < tol
    c = (-1) ** k * np.sqrt(float(np.prod(np.arange(1, 2 * k + 1)))) \
        / (2 ** k * np.prod(np.arange(1, k + 1)))
    assert np.abs(t[2 * k] - c * np.linalg.matrix_power(jp, k)).max() < tol


def test_ito_factor_matches_single_aniso_k2_column():
    # "(K)^2" column of the ESO tables printed by ORCA 6.1 SINGLE_ANISO (Ce3+ output)
    printed = {(2, 1): 6.0, (2, 2): 1.5, (4, 1): 20.0, (4, 2): 10.0, (4, 3): 140.0, (4, 4): 17.5,
               (6, 1): 42.0, (6, 2): 26.25, (6, 3): 105.0, (6, 4): 31.5, (6, 5): 693.0,
               (6, 6): 57.75}
    for (k, q), k2 in printed.items():
        assert ito_factor(k, q) ** 2 == pytest.approx(k2, rel=1e-12)
        assert ito_factor(k, -q) == ito_factor(k, q)
    assert all(ito_factor(k, 0) == pytest.approx(1.0) for k in (2, 4, 6))


def test_tesseral_polynomials_are_coprime_integer_derivatives():
    assert stevens_polynomial(4, 2) == ((-1, 0, 7), 60)
    assert stevens_polynomial(6, 2)[0] == (1, 0, -18, 0, 33)
    assert stevens_polynomial(6, 0)[0] == (-5, 0, 105, 0, -315, 0, 231)


# Stevens factors of the Hund ground multiplets (Stevens 1952; Abragam & Bleaney Table 20;
# Hutchings 1964), as exact fractions.
PUBLISHED_THETA = {
    "Ce": ("-2/35", "2/315", "0"),
    "Pr": ("-52/2475", "-4/5445", "272/4459455"),
    "Nd": ("-7/1089", "-136/467181", "-1615/42513471"),
    "Sm": ("13/315", "26/10395", "0"),
    "Tb": ("-1/99", "2/16335", "-1/891891"),
    "Dy": ("-2/315", "-8/135135", "4/3864861"),
    "Ho": ("-1/450", "-1/30030", "-5/3864861"),
    "Er": ("4/1575", "2/45045", "8/3864861"),
    "Tm": ("1/99", "8/49005", "-5/891891"),
    "Yb": ("2/63", "-2/1155", "4/27027"),
}


@pytest.mark.parametrize("symbol", sorted(PUBLISHED_THETA))
def test_stevens_factors_match_published_table(symbol):
    ion = lanthanide_ion(symbol + "3+")
    for k, ref in zip((2, 4, 6), PUBLISHED_THETA[symbol]):
        assert ion.theta[k] == pytest.approx(float(Fraction(ref)), rel=1e-10, abs=1e-15)


def test_hund_ground_multiplets_and_lande_factors():
    expected = {"Ce": "2F5/2", "Pr": "3H4", "Nd": "4I9/2", "Pm": "5I4", "Sm": "6H5/2",
                "Eu": "7F0", "Gd": "8S7/2", "Tb": "7F6", "Dy": "6H15/2", "Ho": "5I8",
                "Er": "4I15/2", "Tm": "3H6", "Yb": "2F7/2"}
    for s in LANTHANIDES:
        assert lanthanide_ion(s).term == expected[s]
    # with g_S = 2 the textbook values: Ce 6/7, Dy 4/3, Er 6/5, Yb 8/7, Tb 3/2
    textbook = {"Ce": 6 / 7, "Dy": 4 / 3, "Er": 6 / 5, "Yb": 8 / 7, "Tb": 1.5, "Sm": 2 / 7}
    for s, g in textbook.items():
        ion = lanthanide_ion(s)
        assert lande_g(ion.S, ion.L, ion.J, g_s=2.0) == pytest.approx(g)
    assert lanthanide_ion("Dy3+").g_J == pytest.approx(1.33411, abs=1e-5)  # g_e = 2.00232


def test_ion_names_radial_integrals_and_errors():
    dy = lanthanide_ion("Dy3+")
    assert lanthanide_ion("dy") is dy and lanthanide_ion("Dy(III)") is dy
    assert (dy.radial[2], dy.radial[4], dy.radial[6]) == (0.849, 1.977, 10.44)
    assert dy.kramers and not lanthanide_ion("Tb3+").kramers and dy.dim == 16
    assert not lanthanide_ion("Gd3+").has_crystal_field
    assert not lanthanide_ion("Eu3+").has_crystal_field
    for bad in ("Co2+", "Lu3+", "Xx", "Dy4+"):
        with pytest.raises(ValueError, match="unknown or unsupported ion"):
            lanthanide_ion(bad)


def test_clebsch_gordan_known_values_and_orthonormality():
    assert clebsch_gordan(0.5, 0.5, 0.5, -0.5, 1, 0) == pytest.approx(np.sqrt(0.5))
    assert clebsch_gordan(0.5, 0.5, 0.5, -0.5, 0, 0) == pytest.approx(np.sqrt(0.5))
    assert clebsch_gordan(0.5, -0.5, 0.5, 0.5, 0, 0) == pytest.approx(-np.sqrt(0.5))
    assert clebsch_gordan(1, 1, 1, -1, 2, 0) == pytest.approx(np.sqrt(1 / 6))
    j1, j2 = 3, 2.5
    for j in np.arange(0.5, 5.6, 1.0):
        total = sum(clebsch_gordan(j1, m1, j2, 1.5 - m1, j, 1.5) ** 2 for m1 in range(-3, 4)
                    if abs(1.5 - m1) <= j2)
        assert total == pytest.approx(1.0 if j >= 1.5 else 0.0)
