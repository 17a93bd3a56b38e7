r"""Magnetic relaxation by one-phonon processes: rates, the master equation, tau(T) and the
Arrhenius / power-law fits of relaxation data.

Given a spin (or J-multiplet) Hamiltonian H (n x n, cm-1, Zeeman term included), phonon modes of
energy hbar omega_alpha (cm-1) and spin-phonon couplings V_alpha = (dH/dq_alpha) sqrt(hbar / 2
omega_alpha) (n x n, cm-1: the derivative along the mass-weighted normal coordinate times the
zero-point amplitude), the Fermi golden rule gives the one-phonon (direct and Orbach) rates
between eigenstates |a> -> |b> (Lunghi & Sanvito, Sci. Adv. 5, eaax7163 (2019), eq. 3; Lunghi,
Sci. Adv. 8, eabn7880 (2022), eq. 2)

.. math::  W_{ba} = \frac{2\pi}{\hbar} \sum_\alpha |\langle b|V_\alpha|a\rangle|^2
   \big[\bar n(E_{ba})\, G(E_{ba} - \hbar\omega_\alpha)
        + (\bar n(|E_{ba}|) + 1)\, G(E_{ba} + \hbar\omega_\alpha)\big] ,            (1)

with E_ba = E_b - E_a: the first term absorbs a phonon (E_ba > 0), the second emits one
(E_ba < 0); G is a normalised Gaussian (or Lorentzian) line of full width at half maximum
``linewidth`` (cm-1) standing in for the delta function of the phonon density of states, and
n(E) = 1/(exp(E/kT) - 1) the Bose-Einstein occupation.  The occupation is taken at the energy
the spin exchanges, |E_ba| (for a delta line the two are the same): then W_ba / W_ab =
exp(-E_ba / kT) holds exactly, detailed balance, for any line width.  In s-1 with energies in
cm-1: 2 pi / hbar -> 4 pi^2 c (c in cm/s).

The populations follow the master equation dp/dt = R p, R_ba = W_ba (b != a), R_aa = -sum_b
W_ba; its eigenvalues are 0 (equilibrium) and negative; the relaxation time of the
magnetisation is tau = 1 / |lambda_1|, the smallest non-zero rate (Lunghi 2022).  R is
symmetrised with the Boltzmann weights (detailed balance makes P^-1/2 R P^1/2 symmetric), so
the eigenvalues are real to rounding.

Exactly degenerate levels (Kramers doublets at zero field) make the eigenbasis, and hence the
secular rates, arbitrary: give the Hamiltonian a small field (e.g. 0.01-0.1 T along the easy
axis), as relaxation measurements do.

Two-phonon (Raman) rates (:class:`RamanModel`; Lunghi, Sci. Adv. 8, eabn7880 (2022), eqs. 4-5,
in the notation above): absorption of a phonon alpha and emission of a phonon beta,

.. math::  W^{(2)}_{ba} = \frac{2\pi}{\hbar} \sum_{\alpha\beta} |T^{\alpha\beta}_{ba}|^2
   \bar n_\alpha (\bar n_\beta + 1)\, G(E_{ba} - \hbar\omega_\alpha + \hbar\omega_\beta) ,   (2)

   T^{\alpha\beta}_{ba} = \langle b|V^{(2)}_{\alpha\beta}|a\rangle
   + \sum_c \Big[\frac{\langle b|V_\beta|c\rangle\langle c|V_\alpha|a\rangle}
                        {E_a - E_c + \hbar\omega_\alpha + i\eta}
                 + \frac{\langle b|V_\alpha|c\rangle\langle c|V_\beta|a\rangle}
                        {E_a - E_c - \hbar\omega_\beta + i\eta}\Big] ,              (3)

where V^(2)_alpha,beta = d2H/dq_alpha dq_beta Q_zp,alpha Q_zp,beta is the second-order coupling
(the phonon matrix element of (a + a^dag)_alpha (a + a^dag)_beta is sqrt(n_alpha (n_beta + 1)))
and the sum over the spin states c is the pair of first-order couplings through a virtual
state, absorbing alpha first or emitting beta first (the energy denominators are those of
second-order perturbation theory; eta = linewidth / 2 keeps a resonant intermediate state,
the Orbach path that eq. (1) already counts, finite).  The rates are computed for downward
transitions (E_ba < 0) and the upward ones follow by detailed balance, exactly.

Fits (:func:`fit_arrhenius`, :func:`fit_power_law`): tau = tau_0 exp(U_eff / kT) over the
high-temperature points and 1/tau = C T^n over the low-temperature ones, by linear least
squares on ln tau (the forms ccfit2 and PHI users fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molmag.physics.magnetism import K_B_CM

#: speed of light in cm/s
C_CM = 2.99792458e10
#: 2 pi / hbar for energies in cm-1 and rates in s-1: W = 4 pi^2 c |V|^2 G
GOLDEN_RULE = 4.0 * np.pi ** 2 * C_CM
#: levels closer than this (cm-1) are degenerate
DEGENERACY_TOL = 1e-8


def line_shape(x, width: float, shape: str = "gaussian") -> np.ndarray:
    """Normalised line (cm) of full width at half maximum ``width`` (cm-1) at offsets x."""
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"the line width must be a positive number of cm-1, got {width!r}")
    x = np.asarray(x, float)
    if shape == "gaussian":
        s = width / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2.0 * np.pi))
    if shape == "lorentzian":
        g = width / 2.0
        return g / np.pi / (x ** 2 + g ** 2)
    raise ValueError(f"unknown line shape {shape!r} (gaussian or lorentzian)")


def bose(energy, temperature: float) -> np.ndarray:
    """Bose-Einstein occupation of a mode of ``energy`` (cm-1, > 0) at ``temperature`` K."""
    with np.errstate(over="ignore"):                  # far above kT: n = 0
        return 1.0 / np.expm1(np.asarray(energy, float) / (K_B_CM * temperature))


@dataclass
class RateModel:
    """Eigen-energies (cm-1, ascending) of H and the squared couplings |<b|V_alpha|a>|^2
    (n_modes, n, n) in that basis, with the mode energies (cm-1)."""

    energies: np.ndarray
    v2: np.ndarray
    mode_energies: np.ndarray

    @classmethod
    def from_hamiltonian(cls, h, couplings, mode_energies) -> RateModel:
        h = np.asarray(h, complex)
        v = np.asarray(couplings, complex)
        w = np.asarray(mode_energies, float).ravel()
        n = h.shape[0]
        if h.shape != (n, n) or v.ndim != 3 or v.shape[1:] != (n, n) or len(v) != len(w):
            raise ValueError(f"H must be (n, n), the couplings (n_modes, n, n) and the mode "
                             f"energies (n_modes,); got {h.shape}, {v.shape}, {w.shape}")
        bad = w[~(np.isfinite(w) & (w > 0))]
        if bad.size:
            raise ValueError(f"mode energies must be positive (imaginary or zero modes are "
                             f"excluded before): got {bad[0]:g} cm-1")
        e, u = np.linalg.eigh(h)
        gaps = np.diff(e)
        if np.any(gaps < DEGENERACY_TOL):
            k = int(np.argmin(gaps))
            raise ValueError(f"levels {k} and {k + 1} are degenerate ({e[k]:.6g} cm-1): apply "
                             "a small magnetic field (e.g. 0.01 T along the easy axis) so that "
                             "the secular rates are defined")
        vb = np.einsum("in,kij,jm->knm", u.conj(), v, u)
        return cls(e - e[0], np.abs(vb) ** 2, w)

    def rates(self, temperature: float, linewidth: float, shape: str = "gaussian"
              ) -> np.ndarray:
        """W (n, n), W[b, a] the rate a -> b in s-1, eq. (1); zero diagonal."""
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be positive kelvin, got {temperature!r}")
        e = self.energies
        eba = e[:, None] - e[None, :]
        nb = np.zeros_like(eba)
        off = np.abs(eba) > 0
        nb[off] = bose(np.abs(eba[off]), temperature)
        # absorption where E_ba > 0 (occupation n), emission where E_ba < 0 (n + 1)
        occ_abs = np.where(eba > 0, nb, 0.0)
        occ_em = np.where(eba < 0, nb + 1.0, 0.0)
        w = self.mode_energies[:, None, None]
        lines = (occ_abs[None] * line_shape(eba[None] - w, linewidth, shape)
                 + occ_em[None] * line_shape(eba[None] + w, linewidth, shape))
        out = GOLDEN_RULE * np.sum(self.v2 * lines, axis=0)
        np.fill_diagonal(out, 0.0)
        return out


@dataclass
class RamanModel:
    """Eq. (2)-(3): the spin levels (cm-1, ascending, ground 0), the temperature-independent
    weights S[alpha, beta, b, a] = |T|^2 G(E_ba - w_alpha + w_beta) (cm) of downward
    transitions, and the mode energies (cm-1)."""

    energies: np.ndarray
    weights: np.ndarray
    mode_energies: np.ndarray

    @classmethod
    def from_hamiltonian(cls, h, couplings, mode_energies, linewidth: float,
                         second=None, shape: str = "gaussian") -> RamanModel:
        """``couplings`` (M, n, n) first-order V_alpha, ``second`` (M, M, n, n)
        V^(2)_alpha,beta or None (virtual-state paths only), cm-1."""
        base = RateModel.from_hamiltonian(h, couplings, mode_energies)
        e, u = np.linalg.eigh(np.asarray(h, complex))
        e = e - e[0]
        v = np.einsum("in,kij,jm->knm", u.conj(), np.asarray(couplings, complex), u)
        w = base.mode_energies
        eta = 0.5 * float(linewidth)
        line_shape(0.0, linewidth, shape)  # validates the width
        # 1 / (E_a - E_c + w_alpha + i eta) and 1 / (E_a - E_c - w_beta + i eta): (M, n_c, n_a)
        eac = e[None, :] - e[:, None]                       # [c, a] = E_a - E_c
        d_abs = 1.0 / (eac[None] + w[:, None, None] + 1j * eta)
        d_em = 1.0 / (eac[None] - w[:, None, None] + 1j * eta)
        # T[alpha, beta, b, a]
        t = np.einsum("kbc,jca->jkba", v, v * d_abs)        # absorb alpha first, then V_beta
        t += np.einsum("jbc,kca->jkba", v, v * d_em)        # emit beta first, then V_alpha
        if second is not None:
            v2 = np.asarray(second, complex)
            m, n = len(w), len(e)
            if v2.shape != (m, m, n, n):
                raise ValueError(f"second-order couplings must be (M, M, n, n) = "
                                 f"{(m, m, n, n)}, got {v2.shape}")
            t += np.einsum("im,jkil,ln->jkmn", u.conj(), v2, u)
        eba = e[:, None] - e[None, :]
        lines = line_shape(eba[None, None] - w[:, None, None, None] + w[None, :, None, None],
                           linewidth, shape)
        down = (eba < -DEGENERACY_TOL)[None, None]
        return cls(e, np.where(down, np.abs(t) ** 2 * lines, 0.0), w)

    def rates(self, temperature: float) -> np.ndarray:
        """W (n, n) of eq. (2), W[b, a] the rate a -> b in s-1; detailed balance exact."""
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be positive kelvin, got {temperature!r}")
        n = bose(self.mode_energies, temperature)
        occ = n[:, None] * (n[None, :] + 1.0)
        down = GOLDEN_RULE * np.einsum("jk,jkba->ba", occ, self.weights)
        e = self.energies
        gap = np.clip((e[:, None] - e[None, :]) / (K_B_CM * temperature), 0.0, None)
        up = down.T * np.exp(-gap)
        out = down + np.where(e[:, None] > e[None, :] + DEGENERACY_TOL, up, 0.0)
        np.fill_diagonal(out, 0.0)
        return out


def rate_matrix(w: np.ndarray) -> np.ndarray:
    """R of the master equation dp/dt = R p from rates W[b, a] (a -> b)."""
    r = np.array(w, float)
    np.fill_diagonal(r, 0.0)
    r -= np.diag(r.sum(axis=0))
    return r


def relaxation_time(w: np.ndarray, energies: np.ndarray, temperature: float) -> float:
    """tau (s) = 1 / the smallest non-zero |eigenvalue| of the rate matrix of W, symmetrised
    with the Boltzmann populations.  Raises when nothing relaxes (all rates zero)."""
    r = rate_matrix(w)
    scale = np.max(np.abs(r)) if r.size else 0.0
    if not scale > 0:
        raise ValueError("no relaxation: the couplings connect no pair of states at these "
                         "mode energies and line width (all rates are zero)")
    # symmetrised with sqrt(p): S_ab = S_ba = W_down exp(-|E_b - E_a| / 2kT), the downward
    # rate of the pair times the square root of the Boltzmann ratio (= sqrt(W_ba W_ab) under
    # detailed balance, with no overflow however far apart the levels are)
    s = _symmetrised(r, np.asarray(energies, float), temperature)
    lam = np.sort(np.abs(np.linalg.eigvalsh(s)))
    if len(lam) > 1 and lam[1] > 1e-8 * scale:
        return float(1.0 / lam[1])           # resolved in double precision
    # the slowest rate is below double precision's reach next to the fastest: extended
    # precision (mpmath, 60 digits; the matrices are at most (2J+1)^2 = 17^2)
    # The matrix is rebuilt there from the rates themselves, so that the diagonal (sums of
    # rates) and the equilibrium zero are exact and only the rates' own rounding remains.
    import mpmath

    w = np.array(w, float)
    np.fill_diagonal(w, 0.0)
    n = len(w)
    e = np.asarray(energies, float)
    with mpmath.workdps(60):
        wm = mpmath.matrix(w.tolist())
        kt = mpmath.mpf(float(K_B_CM * temperature))
        sm = mpmath.matrix(n, n)
        for a in range(n):
            sm[a, a] = -mpmath.fsum(wm[b, a] for b in range(n))
            for b in range(a + 1, n):
                # the downward rate of the pair times exp(-|dE| / 2kT): sqrt(W_ba W_ab)
                lo, hi = (a, b) if e[a] <= e[b] else (b, a)
                val = wm[lo, hi] * mpmath.exp(-(mpmath.mpf(float(e[hi])) - float(e[lo]))
                                              / (2 * kt))
                sm[b, a] = sm[a, b] = val
        ev = mpmath.eigsy(sm, eigvals_only=True)
        lam_mp = sorted(abs(x) for x in ev)
    if len(lam_mp) < 2 or not lam_mp[1] > mpmath.mpf(10) ** -40 * scale:
        raise ValueError("no relaxation: the rate matrix has no non-zero eigenvalue")
    return float(1 / lam_mp[1])


def _symmetrised(r: np.ndarray, energies: np.ndarray, temperature: float) -> np.ndarray:
    """P^-1/2 R P^1/2 of the rate matrix R, built from the downward rate of each pair."""
    de = energies[:, None] - energies[None, :]              # [b, a] = E_b - E_a
    down = np.where(de > 0, r.T, r)                         # W(upper -> lower) of the pair
    with np.errstate(under="ignore"):
        off = down * np.exp(-np.abs(de) / (2.0 * K_B_CM * temperature))
    s = np.where(np.eye(len(r), dtype=bool), r, off)
    return 0.5 * (s + s.T)


def tau_of_t(h, couplings, mode_energies, temperatures, linewidth: float,
             shape: str = "gaussian", order: int = 1, second=None) -> np.ndarray:
    """tau (s) at every temperature (K) by the master equation with the one-phonon rates of
    eq. (1) and, for ``order=2``, the two-phonon rates of eqs. (2)-(3) added (``second``: the
    second-order couplings, or None for the virtual-state paths alone)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    model = RateModel.from_hamiltonian(h, couplings, mode_energies)
    raman = (RamanModel.from_hamiltonian(h, couplings, mode_energies, linewidth, second, shape)
             if order == 2 else None)
    out = []
    for t in np.atleast_1d(np.asarray(temperatures, float)):
        w = model.rates(t, linewidth, shape)
        if raman is not None:
            w = w + raman.rates(t)
        out.append(relaxation_time(w, model.energies, t))
    return np.array(out)


def fit_arrhenius(temperatures, tau) -> dict:
    """tau = tau_0 exp(U_eff / kT): ``{"U_eff": cm-1, "tau0": s, "n": points}`` by least
    squares of ln tau against 1/T."""
    t, y = _fit_data(temperatures, tau)
    slope, icpt = np.polyfit(1.0 / t, np.log(y), 1)
    return {"U_eff": float(slope * K_B_CM), "tau0": float(np.exp(icpt)), "n": int(len(t))}


def fit_power_law(temperatures, tau) -> dict:
    """1/tau = C T^n: ``{"C": s-1 K^-n, "n": exponent, "points": n}`` by least squares of
    ln(1/tau) against ln T."""
    t, y = _fit_data(temperatures, tau)
    n, lnc = np.polyfit(np.log(t), -np.log(y), 1)
    return {"C": float(np.exp(lnc)), "n": float(n), "points": int(len(t))}


def _fit_data(temperatures, tau) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(temperatures, float).ravel()
    y = np.asarray(tau, float).ravel()
    if t.shape != y.shape or t.size < 2:
        raise ValueError("a fit needs at least two (T, tau) points of equal number")
    if np.any(~np.isfinite(t) | (t <= 0)) or np.any(~np.isfinite(y) | (y <= 0)):
        raise ValueError("temperatures and relaxation times must be positive and finite")
    return t, y


__all__ = ["RateModel", "RamanModel", "line_shape", "bose", "rate_matrix", "relaxation_time",
           "tau_of_t", "fit_arrhenius", "fit_power_law", "GOLDEN_RULE"]
