"""Angular-momentum algebra: spin matrices, Wigner 3j symbols and Gaunt coefficients.

Conventions: basis |j m> ordered m = j, j-1, ..., -j for spin matrices (the usual order of an
effective spin Hamiltonian), hbar = 1, Condon-Shortley phases.
"""

from __future__ import annotations

from functools import lru_cache
from math import factorial, sqrt

import numpy as np


@lru_cache(maxsize=None)
def spin_matrices(s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S_x, S_y, S_z) for spin s in the basis m = s, s-1, ..., -s (complex, read-only).

    S_z = diag(m); <m+1|S_+|m> = sqrt(s(s+1) - m(m+1)); S_x = (S_+ + S_-)/2,
    S_y = (S_+ - S_-)/(2i).
    """
    two_s = round(2 * s)
    if two_s < 0 or abs(2 * s - two_s) > 1e-9:
        raise ValueError(f"spin must be a non-negative integer or half-integer, got {s}")
    s = two_s / 2
    m = s - np.arange(two_s + 1)
    sp = np.zeros((two_s + 1, two_s + 1), dtype=complex)
    for i in range(1, two_s + 1):  # row i-1 (m+1) <- column i (m)
        sp[i - 1, i] = np.sqrt(s * (s + 1) - m[i] * (m[i] + 1))
    sm = sp.conj().T
    out = (0.5 * (sp + sm), -0.5j * (sp - sm), np.diag(m).astype(complex))
    for a in out:
        a.setflags(write=False)
    return out


def wigner_3j(j1: float, j2: float, j3: float, m1: float, m2: float, m3: float) -> float:
    """Wigner 3j symbol (j1 j2 j3; m1 m2 m3) by the Racah formula (integer or half-integer
    arguments; exact to double precision for the small j used here)."""
    if abs(m1 + m2 + m3) > 1e-9:
        return 0.0
    if not (abs(j1 - j2) <= j3 <= j1 + j2):
        return 0.0
    if abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3:
        return 0.0
    a = [round(x) for x in (j1 + j2 - j3, j1 - j2 + j3, -j1 + j2 + j3, j1 + j2 + j3 + 1,
                            j1 + m1, j1 - m1, j2 + m2, j2 - m2, j3 + m3, j3 - m3)]
    tri = factorial(a[0]) * factorial(a[1]) * factorial(a[2]) / factorial(a[3])
    pref = sqrt(tri * factorial(a[4]) * factorial(a[5]) * factorial(a[6]) * factorial(a[7])
                * factorial(a[8]) * factorial(a[9]))
    kmin = max(0, round(j2 - j3 - m1), round(j1 - j3 + m2))
    kmax = min(round(j1 + j2 - j3), round(j1 - m1), round(j2 + m2))
    total = 0.0
    for k in range(kmin, kmax + 1):
        total += (-1) ** k / (factorial(k) * factorial(round(j1 + j2 - j3) - k)
                              * factorial(round(j1 - m1) - k) * factorial(round(j2 + m2) - k)
                              * factorial(round(j3 - j2 + m1) + k)
                              * factorial(round(j3 - j1 - m2) + k))
    sign = (-1) ** (round(j1 - j2 - m3) % 2)
    return float(sign * pref * total)


def gaunt_ck(l: int, k: int, m: int, mp: int) -> float:
    """Condon-Shortley coefficient c^k(l m, l m') = sqrt(4 pi/(2k+1)) <l m|Y_k^{m-m'}|l m'>
    = (-1)^m (2l+1) (l k l; 0 0 0) (l k l; -m m-m' m')."""
    return float((-1) ** (int(m) % 2) * (2 * l + 1) * wigner_3j(l, k, l, 0, 0, 0)
                 * wigner_3j(l, k, l, -m, m - mp, mp))
