r"""Effective spin Hamiltonians from many-electron states.

Given the 2S+1 components |0 M> (M = S..-S, standard phases) of a spin-free ground multiplet
and the lowest 2S+1 eigenstates |k> (energies E_k) of the full Hamiltonian with spin-orbit
coupling, the effective Hamiltonian in the model space is (des Cloizeaux)

.. math::

    P_{Mk} = \langle 0M | k \rangle, \quad \tilde C = P (P^\dagger P)^{-1/2} = U V^\dagger
    \;(P = U \Sigma V^\dagger), \quad H_{\rm eff} = \tilde C\, {\rm diag}(E_k)\, \tilde C^\dagger ,

and D (3x3, traceless, cm-1) is the least-squares fit of H_eff = S.D.S + c 1 over all
(2S+1)^2 matrix elements (Maurice et al., J. Chem. Theory Comput. 5, 2977 (2009); the
"EFFECTIVE HAMILTONIAN" D of ORCA).  The g tensor comes from the Zeeman operator
mu = -mu_B (k L + g_e S) projected the same way and fitted to (k L + g_e S)_eff,a =
sum_b g_ab S_b, i.e. H_Z = mu_B B . g . S.  The fit residuals measure how well a spin
Hamiltonian describes the states (4th-order terms for S >= 2, orbital near-degeneracy).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from molmag.physics.angular_momentum import spin_matrices
from molmag.physics.tensors import cartesian_from_real_spherical

G_E = 2.00231930436256


@lru_cache(maxsize=None)
def _d_fit_basis(two_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design matrix for H = sum_k c_k S.D_k.S + c_5 1 (D_k: the 5 real orthonormal
    symmetric traceless tensors), its pseudo-inverse, and the D_k."""
    s = two_s / 2
    spin = np.stack(spin_matrices(s))
    dks = cartesian_from_real_spherical(np.eye(5))  # (5, 3, 3)
    ops = [np.einsum("ab,aij,bjk->ik", dk, spin, spin) for dk in dks]
    ops.append(np.eye(two_s + 1, dtype=complex))
    a = np.stack([np.concatenate([o.real.ravel(), o.imag.ravel()]) for o in ops], axis=1)
    pinv = np.linalg.pinv(a)
    return a, pinv, dks


@lru_cache(maxsize=None)
def _g_fit_basis(two_s: int) -> tuple[np.ndarray, np.ndarray]:
    spin = spin_matrices(two_s / 2)
    a = np.stack([np.concatenate([o.real.ravel(), o.imag.ravel()]) for o in spin], axis=1)
    return a, np.linalg.pinv(a)


def _flatten(h: np.ndarray) -> np.ndarray:
    return np.concatenate([h.real.reshape(*h.shape[:-2], -1),
                           h.imag.reshape(*h.shape[:-2], -1)], axis=-1)


def fit_d_tensor(h_eff: np.ndarray, two_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares D (..., 3, 3) with H_eff = S.D.S + c, and the RMS residual (cm-1).

    ``h_eff`` (..., 2S+1, 2S+1) in the basis M = S..-S.  S must be >= 1.
    """
    if two_s < 2:
        raise ValueError("a spin S < 1 has no zero-field splitting (S.D.S is a constant)")
    a, pinv, dks = _d_fit_basis(two_s)
    y = _flatten(np.asarray(h_eff))
    coef = y @ pinv.T
    resid = y - coef @ a.T
    rms = np.sqrt(np.mean(resid**2, axis=-1))
    d = np.einsum("...k,kab->...ab", coef[..., :5], dks)
    return d, rms


def fit_g_tensor(m_eff: np.ndarray, two_s: int) -> tuple[np.ndarray, np.ndarray]:
    """g (..., 3, 3) from projected Zeeman matrices m_eff (..., 3, 2S+1, 2S+1) of
    (k L_a + g_e S_a): m_eff[a] = sum_b g_ab S_b; and the RMS residual."""
    a, pinv = _g_fit_basis(two_s)
    y = _flatten(np.asarray(m_eff))  # (..., 3, 2*(2S+1)^2)
    g = y @ pinv.T
    resid = y - g @ a.T
    return g, np.sqrt(np.mean(resid**2, axis=(-2, -1)))


def des_cloizeaux(model: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormalised projection C~ = U V^dagger of P = model^dagger . states.

    ``model`` (..., N, m), ``states`` (..., N, m) column vectors.  Returns C~ (..., m, m) and
    the smallest singular value of P (how much of the states lies in the model space: 1 =
    all, near 0 = the spin-orbit states are not derived from that multiplet).
    """
    p = np.einsum("...nm,...nk->...mk", model.conj(), states)
    u, sv, vh = np.linalg.svd(p)
    return u @ vh, sv[..., -1]


def effective_hamiltonian(c_tilde: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """H_eff = C~ diag(E) C~^dagger."""
    return np.einsum("...mk,...k,...nk->...mn", c_tilde, energies, c_tilde.conj())


def project_operator(c_tilde: np.ndarray, op_states: np.ndarray) -> np.ndarray:
    """C~ O C~^dagger for an operator O already in the basis of the states (..., m, m)."""
    return np.einsum("...mk,...kl,...nl->...mn", c_tilde, op_states, c_tilde.conj())
