r"""The d^n many-electron space: Slater determinants and the matrices of the operators a
ligand-field calculation needs, precomputed once per electron count.

Spin-orbitals p = i + 5 s with i = m_l + 2 (m_l = -2..2, complex spherical harmonics,
Condon-Shortley phases) and s = 0 (alpha, m_s = +1/2) or 1 (beta).  A determinant is a
bit mask of occupied spin-orbitals, creation operators applied in ascending p.

Operators (hbar = 1; energies scale with the parameters given by the caller):

* one-electron orbital operators: ``E[i, j] = sum_s a+_{is} a_{js}`` (25 real N x N matrices),
  so a spin-free one-electron operator v (5 x 5, complex m_l basis) is ``sum_ij v_ij E[i, j]``;
* electron repulsion H_ee = F^2 R2 + F^4 R4 with the Slater-Condon two-electron integrals
  <m1 m2|1/r12|m3 m4> = sum_k c^k(m1, m3) c^k(m4, m2) F^k (the F^0 term is a constant for fixed
  n and is left out); with Racah's parameters F^2 = 49 B + 7 C, F^4 = 63 C / 5, so
  H_ee = B (49 R2) + C (7 R2 + 63/5 R4);
* spin-orbit coupling ``sum_i l_i . s_i`` (multiply by zeta);
* total L_a, S_a (a = x, y, z) and the spin lowering operator S_-.

The space has C(10, n) determinants (252 at most, for d^5).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations

import numpy as np

from molmag.physics.angular_momentum import gaunt_ck, spin_matrices

N_ORB = 5
N_SPIN_ORB = 10
M_L = np.arange(-2, 3)


def _ms(p: int) -> float:
    return 0.5 if p < N_ORB else -0.5


def _ml(p: int) -> int:
    return int(M_L[p % N_ORB])


def _annihilate(det: int, p: int) -> tuple[int, int]:
    """a_p |det> = sign |det'>; returns (det', sign), sign 0 if p is empty."""
    if not det >> p & 1:
        return det, 0
    sign = -1 if bin(det & ((1 << p) - 1)).count("1") % 2 else 1
    return det & ~(1 << p), sign


def _create(det: int, p: int) -> tuple[int, int]:
    if det >> p & 1:
        return det, 0
    sign = -1 if bin(det & ((1 << p) - 1)).count("1") % 2 else 1
    return det | (1 << p), sign


@lru_cache(maxsize=None)
def _coulomb_spatial() -> np.ndarray:
    """<m1 m2|m3 m4>_k / F^k for k = 2, 4: array (2, 5, 5, 5, 5)."""
    out = np.zeros((2, 5, 5, 5, 5))
    for ik, k in enumerate((2, 4)):
        for a in range(5):
            for b in range(5):
                for c in range(5):
                    for d in range(5):
                        if M_L[a] + M_L[b] != M_L[c] + M_L[d]:
                            continue
                        out[ik, a, b, c, d] = (gaunt_ck(2, k, M_L[a], M_L[c])
                                               * gaunt_ck(2, k, M_L[d], M_L[b]))
    return out


@dataclass(frozen=True, eq=False)
class DnSpace:
    """Determinant basis and operator matrices of d^n (read-only arrays).

    Attributes: ``n``, ``dets`` (bit masks), ``ms`` (M_S of each determinant),
    ``E`` (5, 5, N, N), ``R2``, ``R4`` (N, N), ``soc`` (N, N, complex, sum l.s),
    ``L`` and ``S`` (3, N, N complex), ``S_minus`` (N, N).
    """

    n: int
    dets: np.ndarray
    ms: np.ndarray
    E: np.ndarray
    R2: np.ndarray
    R4: np.ndarray
    soc: np.ndarray
    L: np.ndarray
    S: np.ndarray
    S_minus: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.dets)

    def racah(self, B: float, C: float) -> np.ndarray:
        """Electron repulsion for Racah B, C (cm-1): B (49 R2) + C (7 R2 + 63/5 R4)."""
        return B * 49.0 * self.R2 + C * (7.0 * self.R2 + 12.6 * self.R4)

    def one_electron(self, v: np.ndarray) -> np.ndarray:
        """Many-electron matrix of a spin-free one-electron operator v (5 x 5, m_l basis);
        v may carry leading batch dimensions (..., 5, 5) -> (..., N, N)."""
        v = np.asarray(v)
        flat = self.E.reshape(25, -1)
        shape = v.shape[:-2] + (self.dim, self.dim)
        re = (v.real.reshape(-1, 25) @ flat).reshape(shape)
        if not np.iscomplexobj(v):
            return re
        return re + 1j * (v.imag.reshape(-1, 25) @ flat).reshape(shape)

    @cached_property
    def E_real_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Real and imaginary parts (15, N*N) of the orbital operators of the real d basis,
        one per pair i <= j (off-diagonal pairs summed with their transpose), so that a real
        symmetric V (real basis) gives H = sum_(i<=j) V_ij (re + i im)."""
        from molmag.physics.tensors import complex_to_real_matrix

        c = complex_to_real_matrix(2)
        # operator |r_i><r_j| in the complex basis: C^T e_ij C^*  ->  sum_mn C_im C*_jn E_mn
        e = np.einsum("im,jn,mnab->ijab", c, c.conj(), self.E)
        pairs = [(i, j) for i in range(5) for j in range(i, 5)]
        mats = np.stack([e[i, j] + (e[j, i] if i != j else 0) for i, j in pairs]).reshape(15, -1)
        return np.ascontiguousarray(mats.real), np.ascontiguousarray(mats.imag)

    def one_electron_real(self, v_real: np.ndarray) -> np.ndarray:
        """As :meth:`one_electron` for a real symmetric operator given in the real d basis
        (xy, yz, z2, xz, x2-y2): (..., 5, 5) -> (..., N, N) complex, two real GEMMs."""
        v = np.asarray(v_real, dtype=float)
        iu = np.triu_indices(5)
        coef = v[..., iu[0], iu[1]].reshape(-1, 15)
        re, im = self.E_real_basis
        shape = v.shape[:-2] + (self.dim, self.dim)
        return ((coef @ re) + 1j * (coef @ im)).reshape(shape)


def _one_body_matrix(dets: list[int], index: dict[int, int], h: np.ndarray) -> np.ndarray:
    """Matrix of sum_pq h[p, q] a+_p a_q in the determinant basis."""
    n = len(dets)
    dtype = complex if np.iscomplexobj(h) else float
    out = np.zeros((n, n), dtype=dtype)
    nz = np.argwhere(np.abs(h) > 0)
    for col, det in enumerate(dets):
        for p, q in nz:
            d1, s1 = _annihilate(det, q)
            if not s1:
                continue
            d2, s2 = _create(d1, p)
            if not s2:
                continue
            out[index[d2], col] += s1 * s2 * h[p, q]
    return out


def _orbital_ops_spinorbital() -> dict[str, np.ndarray]:
    """One-electron l_a, s_a in the 10 spin-orbital basis."""
    lx, ly, lz = (np.asarray(a)[::-1, ::-1] for a in spin_matrices(2))  # m = -2..2 order
    sx, sy, sz = (np.asarray(a) for a in spin_matrices(0.5))  # alpha, beta order
    # spin-orbital p = i + 5 s: the spin index is the slow one, hence kron(spin, orbital)
    return {"lx": np.kron(np.eye(2), lx), "ly": np.kron(np.eye(2), ly),
            "lz": np.kron(np.eye(2), lz),
            "sx": np.kron(sx, np.eye(5)), "sy": np.kron(sy, np.eye(5)),
            "sz": np.kron(sz, np.eye(5))}


@lru_cache(maxsize=None)
def dn_space(n: int) -> DnSpace:
    """Build (once, then cached) the d^n determinant space and its operator matrices."""
    if not 1 <= n <= 9:
        raise ValueError(f"d^n needs 1 <= n <= 9, got {n}")
    dets = sorted(sum(1 << p for p in occ) for occ in combinations(range(N_SPIN_ORB), n))
    index = {d: i for i, d in enumerate(dets)}
    dim = len(dets)
    ms = np.array([sum(_ms(p) for p in range(N_SPIN_ORB) if d >> p & 1) for d in dets])

    # orbital excitation operators E_ij = sum_s a+_is a_js
    E = np.zeros((5, 5, dim, dim))
    for i in range(5):
        for j in range(5):
            h = np.zeros((10, 10))
            h[i, j] = h[i + 5, j + 5] = 1.0
            E[i, j] = _one_body_matrix(dets, index, h)

    # two-electron repulsion: 1/2 sum <pq|rs> a+_p a+_q a_s a_r, spins conserved per electron
    coul = _coulomb_spatial()
    R = np.zeros((2, dim, dim))
    for col, det in enumerate(dets):
        occ = [p for p in range(N_SPIN_ORB) if det >> p & 1]
        for r in occ:
            d1, s1 = _annihilate(det, r)
            for s in occ:
                if s == r:
                    continue
                d2, s2 = _annihilate(d1, s)
                for q in range(N_SPIN_ORB):
                    if (q < N_ORB) != (s < N_ORB):
                        continue
                    d3, s3 = _create(d2, q)
                    if not s3:
                        continue
                    for p in range(N_SPIN_ORB):
                        if (p < N_ORB) != (r < N_ORB):
                            continue
                        d4, s4 = _create(d3, p)
                        if not s4:
                            continue
                        val = coul[:, p % 5, q % 5, r % 5, s % 5]
                        if not val.any():
                            continue
                        R[:, index[d4], col] += 0.5 * s1 * s2 * s3 * s4 * val

    ops = _orbital_ops_spinorbital()
    L = np.stack([_one_body_matrix(dets, index, ops[a])
                  for a in ("lx", "ly", "lz")]).astype(complex)
    S = np.stack([_one_body_matrix(dets, index, ops[a])
                  for a in ("sx", "sy", "sz")]).astype(complex)
    ls = sum(ops[f"l{a}"] @ ops[f"s{a}"] for a in "xyz")
    soc = _one_body_matrix(dets, index, ls).astype(complex)
    s_minus = _one_body_matrix(dets, index, (ops["sx"] - 1j * ops["sy"]).real)
    arrays = [E, R[0], R[1], soc, L, S, s_minus]
    for a in arrays:
        a.setflags(write=False)
    return DnSpace(n, np.array(dets), ms, E, R[0], R[1], soc, L, S, s_minus)
