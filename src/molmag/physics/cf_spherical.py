r"""Crystal-field parameters as real spherical-tensor components, and their rotation.

The extended Stevens operators of :mod:`molmag.physics.stevens` are, rank by rank, multiples
of the real (tesseral) combinations of the spherical tensor operators ``T^k_q(J)`` (operator
equivalents of ``r^k C^k_q``, Racah-normalised, Condon-Shortley):

.. math::

    O_k^q(\mathbf J) = \frac{\bar T^k_q(\mathbf J)}{c_{kq}}, \qquad
    \bar T^k = C^{(k)} T^k, \qquad
    c_{k0} = s_{k0}, \quad c_{kq} = \sqrt2\, s_{kq}\ (q \ne 0),

with C^{(k)} the complex-to-real matrix of :func:`molmag.physics.tensors.complex_to_real_matrix`
and s_kq of :func:`molmag.physics.stevens.tesseral_scale` (tested to rounding).  Hence

.. math::

    H_{CF} = \sum_{kq} B_k^q O_k^q = \sum_{kq} A^k_q\, \bar T^k_q(\mathbf J),
    \qquad A^k_q = B_k^q / c_{kq}\quad (\text{cm}^{-1}),

and the A^k (m = -k..k, the order of :func:`molmag.physics.stevens.cf_keys`) are the real
spherical components of the crystal field: when the structure is rotated by R (active,
r -> R r), ``A^k -> W_real^k(R) A^k`` with the real Wigner matrix of
:func:`molmag.physics.wigner.wigner_D_real`, and ``H -> U H U^dagger`` with
``U = exp(-i theta n.J)``.  The same factors relate the Stevens tesseral polynomials to the
real Racah-normalised spherical harmonics, ``Cbar^k_q(n) = c_kq Z_kq(n)``
(:func:`racah_harmonics`), so a point charge gives ``A^k_q ∝ Cbar^k_q(R_hat)``.

A is ion-independent (the Stevens factors theta_k stay inside B and A alike) and needs no
J: it is a change of normalisation of each Stevens parameter, B_k^q = c_kq A^k_q.
Labels of other conventions go through :func:`molmag.physics.crystal_field.
convert_cf_parameters` first (Wybourne needs the ion).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from molmag.physics.crystal_field import (
    cf_parameter_set,
    convert_cf_parameters,
    tesseral_functions,
    values_from_vector,
    vector_from_values,
)
from molmag.physics.stevens import CF_RANKS, cf_keys, tesseral_scale
from molmag.physics.wigner import wigner_D_real

__all__ = ["spherical_factor", "spherical_factors", "spherical_from_stevens",
           "stevens_from_spherical", "racah_harmonics", "cf_rotation_matrix",
           "rotate_stevens", "rotate_cf_parameters"]


def spherical_factor(k: int, q: int) -> float:
    """c_kq with B_k^q (Stevens) = c_kq A^k_q (real spherical component)."""
    return float(tesseral_scale(k, q) * (1.0 if q == 0 else np.sqrt(2.0)))


@lru_cache(maxsize=None)
def _factors(ranks: tuple[int, ...]) -> np.ndarray:
    c = np.array([spherical_factor(k, q) for k, q in cf_keys(ranks)])
    c.setflags(write=False)
    return c


def spherical_factors(ranks=CF_RANKS) -> np.ndarray:
    """(nkq,) vector of c_kq in :func:`cf_keys` order."""
    return _factors(tuple(ranks))


def spherical_from_stevens(stevens, ranks=CF_RANKS) -> np.ndarray:
    """Stevens vectors (..., nkq) in :func:`cf_keys` order -> real spherical components A
    (..., nkq), A^k_q = B_k^q / c_kq (cm-1)."""
    b = np.asarray(stevens, dtype=float)
    c = spherical_factors(ranks)
    if b.shape[-1] != len(c):
        raise ValueError(f"expected {len(c)} parameters (ranks {tuple(ranks)}), got {b.shape[-1]}")
    return b / c


def stevens_from_spherical(spherical, ranks=CF_RANKS) -> np.ndarray:
    """Inverse of :func:`spherical_from_stevens`: B_k^q = c_kq A^k_q."""
    a = np.asarray(spherical, dtype=float)
    c = spherical_factors(ranks)
    if a.shape[-1] != len(c):
        raise ValueError(f"expected {len(c)} components (ranks {tuple(ranks)}), got {a.shape[-1]}")
    return a * c


def racah_harmonics(unit_vectors, ranks=CF_RANKS) -> np.ndarray:
    """Real Racah-normalised spherical harmonics ``Cbar^k_q(n) = c_kq Z_kq(n)`` of unit
    vectors (..., 3) -> (..., nkq) in :func:`cf_keys` order (``Cbar^k_0 = P_k(n_z)``; for
    k = 2: (sqrt3 xy, sqrt3 yz, (3z^2-1)/2, sqrt3 xz, sqrt3/2 (x^2-y^2))).  They rotate as
    ``Cbar^k(R n) = W_real^k(R) Cbar^k(n)``."""
    return tesseral_functions(unit_vectors, ranks) * spherical_factors(ranks)


def cf_rotation_matrix(rotation, ranks=CF_RANKS) -> np.ndarray:
    """Block-diagonal (nkq, nkq) real Wigner matrix acting on spherical components A of all
    ``ranks`` when the structure is rotated by ``rotation`` (3x3, proper)."""
    ranks = tuple(ranks)
    n = sum(2 * k + 1 for k in ranks)
    w = np.zeros((n, n))
    o = 0
    for k in ranks:
        w[o:o + 2 * k + 1, o:o + 2 * k + 1] = wigner_D_real(k, rotation)
        o += 2 * k + 1
    return w


def rotate_stevens(stevens, rotation, ranks=CF_RANKS) -> np.ndarray:
    """Stevens vectors (..., nkq) of a structure -> those of the structure rotated by
    ``rotation`` (r -> R r): ``B' = c * (W(R) (B / c))``."""
    a = spherical_from_stevens(stevens, ranks)
    w = cf_rotation_matrix(rotation, ranks)
    return stevens_from_spherical(a @ w.T, ranks)


def rotate_cf_parameters(label, rotation, ion=None) -> dict:
    """A parameter label ``{"convention", "values"}`` of a structure -> the label (same
    convention) of the structure rotated by ``rotation``.  Wybourne labels need the ion."""
    if isinstance(label, dict) and "convention" in label and "values" in label:
        conv = cf_parameter_set(label["values"], label["convention"])["convention"]
    else:
        label, conv = cf_parameter_set(label, "stevens"), "stevens"
    src = convert_cf_parameters(label, "stevens", ion)
    vec = rotate_stevens(vector_from_values(src["values"]), rotation)
    return convert_cf_parameters(cf_parameter_set(values_from_vector(vec), "stevens"), conv, ion)
