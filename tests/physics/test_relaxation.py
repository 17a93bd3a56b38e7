"""One-phonon relaxation (molmag.physics.relaxation): detailed balance, an Orbach process
through a resonant mode gives U_eff = the gap, invariance under rotation, extended precision
for slow rates, zero couplings and degenerate levels refused, and the fits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from molmag.physics.angular_momentum import spin_matrices
from molmag.physics.magnetism import K_B_CM, spin_system
from molmag.physics.relaxation import (
    RateModel,
    fit_arrhenius,
    fit_power_law,
    line_shape,
    relaxation_time,
    tau_of_t,
)

GAP = 100.0      # cm-1: D = -50 for S = 3/2 puts |+-1/2> 2|D| above |+-3/2>


def system(field=0.1):
    s = spin_system("3/2", D=-GAP / 2, g=2.0)
    sx, sy, sz = (np.asarray(x, complex) for x in spin_matrices(1.5))
    # dM = +-1 and +-2 couplings: the path +3/2 -> -1/2 -> -3/2 over the barrier
    v = np.stack([sx @ sz + sz @ sx + (sx @ sx - sy @ sy), 0.3 * (sx @ sz + sz @ sx)])
    return s.hamiltonian([0.0, 0.0, field]), v, np.array([GAP, 7.0])


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian"])
def test_detailed_balance(shape):
    h, v, w = system()
    m = RateModel.from_hamiltonian(h, v, w)
    for t in (3.0, 20.0, 150.0):
        rates = m.rates(t, 8.0, shape)
        e = m.energies
        for a in range(4):
            for b in range(4):
                if a != b and rates[b, a] > 1e-250:
                    assert rates[b, a] / rates[a, b] == pytest.approx(
                        np.exp(-(e[b] - e[a]) / (K_B_CM * t)), rel=1e-10)


def test_orbach_through_a_resonant_mode_gives_the_gap():
    h, v, w = system()
    temps = np.array([4.0, 5.0, 6.0, 7.0, 8.0])
    tau = tau_of_t(h, v[:1], w[:1], temps, linewidth=10.0)
    fit = fit_arrhenius(temps, tau)
    assert fit["U_eff"] == pytest.approx(GAP, rel=0.05)
    assert np.all(np.diff(tau) < 0)                       # slower when colder


def test_slow_rates_beyond_double_precision_follow_the_arrhenius_law():
    """At 2 K tau ~ 1e19 s, 31 orders of magnitude below the fastest rate: the extended-
    precision path must still give tau_0 exp(U/kT) of the warmer points."""
    h, v, w = system()
    warm = np.array([5.0, 6.0, 7.0])
    fit = fit_arrhenius(warm, tau_of_t(h, v[:1], w[:1], warm, linewidth=10.0))
    cold = tau_of_t(h, v[:1], w[:1], [2.0], linewidth=10.0)[0]
    assert cold > 1e15
    assert cold == pytest.approx(fit["tau0"] * np.exp(fit["U_eff"] / (K_B_CM * 2.0)), rel=0.05)


def test_tau_is_independent_of_the_orientation():
    h, v, w = system()
    s = np.stack([np.asarray(x, complex) for x in spin_matrices(1.5)])
    n = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    u = expm(-1j * 1.1 * np.einsum("a,aij->ij", n, s))   # rotation of the spin (and field)
    hr = u @ h @ u.conj().T
    vr = np.einsum("ij,kjl,ml->kim", u, v, u.conj())
    temps = [3.0, 10.0, 40.0]
    np.testing.assert_allclose(tau_of_t(hr, vr, w, temps, 10.0), tau_of_t(h, v, w, temps, 10.0),
                               rtol=1e-8)


def test_zero_couplings_and_degenerate_levels_are_refused():
    h, v, w = system()
    with pytest.raises(ValueError, match="no relaxation"):
        tau_of_t(h, np.zeros_like(v), w, [10.0], 10.0)
    h0, _, _ = system(field=0.0)
    with pytest.raises(ValueError, match="apply a small magnetic field"):
        RateModel.from_hamiltonian(h0, v, w)
    with pytest.raises(ValueError, match="line width"):
        tau_of_t(h, v, w, [10.0], 0.0)
    with pytest.raises(ValueError, match="positive kelvin"):
        tau_of_t(h, v, w, [-1.0], 5.0)
    with pytest.raises(ValueError, match="mode energies must be positive"):
        tau_of_t(h, v, np.array([-30.0, 7.0]), [10.0], 5.0)


def test_line_shapes_are_normalised_and_have_the_width():
    x = np.linspace(-400, 400, 400001)
    for shape in ("gaussian", "lorentzian"):
        g = line_shape(x, 10.0, shape)
        inside = 1.0 if shape == "gaussian" else 2 / np.pi * np.arctan(400.0 / 5.0)
        assert np.trapezoid(g, x) == pytest.approx(inside, abs=1e-7)
        half = g[np.argmin(np.abs(x - 5.0))] / g[np.argmin(np.abs(x))]
        assert half == pytest.approx(0.5, abs=1e-3)


def test_fits_recover_their_parameters():
    t = np.array([10.0, 15.0, 20.0, 30.0])
    tau = 1e-11 * np.exp(450.0 / (K_B_CM * t))
    f = fit_arrhenius(t, tau)
    assert f["U_eff"] == pytest.approx(450.0, rel=1e-10) and f["tau0"] == pytest.approx(1e-11)
    p = fit_power_law(t, 1.0 / (2e-3 * t ** 4.5))
    assert p["n"] == pytest.approx(4.5, rel=1e-10) and p["C"] == pytest.approx(2e-3, rel=1e-8)
    with pytest.raises(ValueError, match="positive"):
        fit_arrhenius([1.0, 2.0], [1.0, -1.0])
    assert relaxation_time(np.array([[0, 1.0], [np.exp(-1.0), 0]]), np.array([0.0, K_B_CM]),
                           1.0) == pytest.approx(1.0 / (1.0 + np.exp(-1.0)))


# -- two-phonon (Raman) rates ---------------------------------------------------------------
def _raman_loops(h, v, v2, w, linewidth, temperature):
    """Eqs. (2)-(3) of molmag.physics.relaxation written as plain loops (downward rates,
    then detailed balance), to check the vectorised implementation."""
    from molmag.physics.relaxation import GOLDEN_RULE, bose, line_shape

    e, u = np.linalg.eigh(h)
    e = e - e[0]
    vb = [u.conj().T @ x @ u for x in v]
    n = len(e)
    eta = linewidth / 2
    occ = bose(w, temperature)
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if not e[b] < e[a] - 1e-8:
                continue
            tot = 0.0
            for al in range(len(w)):
                for be in range(len(w)):
                    t = 0j if v2 is None else (u.conj().T @ v2[al, be] @ u)[b, a]
                    for c in range(n):
                        t += vb[be][b, c] * vb[al][c, a] / (e[a] - e[c] + w[al] + 1j * eta)
                        t += vb[al][b, c] * vb[be][c, a] / (e[a] - e[c] - w[be] + 1j * eta)
                    tot += (abs(t) ** 2 * occ[al] * (occ[be] + 1)
                            * line_shape(e[b] - e[a] - w[al] + w[be], linewidth))
            out[b, a] = GOLDEN_RULE * tot
            out[a, b] = out[b, a] * np.exp(-(e[a] - e[b]) / (0.6950348004 * temperature))
    return out


def _random_hermitian(rng, n, scale=1.0):
    x = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return scale * (x + x.conj().T) / 2


def test_raman_rates_equal_the_loop_formula_and_obey_detailed_balance():
    from molmag.physics.relaxation import RamanModel

    rng = np.random.default_rng(5)
    n, m = 4, 3
    h = np.diag([0.0, 3.0, 40.0, 47.0]).astype(complex) + _random_hermitian(rng, n, 0.3)
    v = np.stack([_random_hermitian(rng, n, 0.5) for _ in range(m)])
    v2 = np.stack([[_random_hermitian(rng, n, 0.2) for _ in range(m)] for _ in range(m)])
    w = np.array([20.0, 23.5, 60.0])
    for second in (None, v2):
        model = RamanModel.from_hamiltonian(h, v, w, 5.0, second)
        for t in (5.0, 30.0):
            got = model.rates(t)
            ref = _raman_loops(h, v, second, w, 5.0, t)
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-300)
            e = model.energies
            for a in range(n):
                for b in range(n):
                    if a != b and got[b, a] > 0:
                        assert got[a, b] / got[b, a] == pytest.approx(
                            np.exp(-(e[a] - e[b]) / (0.6950348004 * t)), rel=1e-10)


def test_raman_relaxes_where_no_single_phonon_is_resonant():
    """A split ground doublet (1 cm-1) and modes far from it: one-phonon processes find no
    phonon at 1 cm-1 (no relaxation), two-phonon ones absorb 30.0 and emit 29.0 cm-1; the
    Raman rate grows with T as n(n + 1)."""
    from molmag.physics.relaxation import tau_of_t

    h = np.diag([0.0, 1.0, 200.0]).astype(complex)
    v = np.zeros((2, 3, 3), complex)
    v[:, 0, 2] = v[:, 2, 0] = 2.0      # through the excited state only
    v[:, 1, 2] = v[:, 2, 1] = 1.5
    w = np.array([30.0, 29.0])
    with pytest.raises(ValueError, match="no relaxation"):
        tau_of_t(h, v, w, [5.0], linewidth=0.5)
    tau = tau_of_t(h, v, w, [5.0, 10.0, 20.0], linewidth=0.5, order=2)
    assert np.all(np.isfinite(tau)) and tau[0] > tau[1] > tau[2]
