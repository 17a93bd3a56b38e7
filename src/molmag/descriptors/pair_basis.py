r"""A learned element-pair term for SNAP energy models: radial Gaussians per pair of species.

The SNAP bispectrum at 2J = 4 resolves the radial shape of a neighbour density only coarsely
(and within its own short cutoff, 3.1 Å for [Co(pdms)2]2-); the pair term adds, linear in its
coefficients c,

.. math::

    E_\mathrm{pair} = \sum_{i<j,\ r_{ij}<r_c} \sum_{k=1}^{K} c_{t_i t_j, k}\,\phi_k(r_{ij}),
    \qquad
    \phi_k(r) = \exp\!\Big(-\frac{(r-\mu_k)^2}{2 w^2}\Big)\, f_c(r),
    \qquad f_c(r) = \tfrac12\big(\cos(\pi r / r_c) + 1\big),

with centres mu_k = r_0 + (k-1) w evenly spaced from r_0 = 0.7 Å to r_c, width w = (r_c -
r_0)/(K - 1), and one coefficient vector per unordered pair of species (t_i, t_j) (energies
eV, distances Å).  E and its forces F_i = -dE/dr_i are exact and smooth (f_c takes phi and
its derivative to zero at r_c); the same function is a LAMMPS ``pair_style table`` (one
tabulated E(r), F(r) = -dE/dr per pair of types, :func:`write_lammps_table`), so the pair
term runs inside LAMMPS next to ``pair_style snap`` (``hybrid/overlay``).

This is the two-body part that FitSNAP-style potentials usually take from a fixed reference
(ZBL, Thompson et al. 2015, sec. 3) fitted instead, like the rest of the model, by ridge
regression; it reaches beyond the bispectrum's cutoff (5 Å by default), where the
electrostatics of a charged complex act.

Below the data.  A fitted function says nothing where no training pair was: each pair type
keeps the shortest distance r_m of its training (and validation) structures
(:meth:`PairBasis.fit_range`).  Below r_m the learned part keeps its value and slope at r_m
and lets the slope fade, E(r_m) + E'(r_m) delta tanh(Delta / delta) with Delta = r - r_m and
delta = 0.1 Å (:data:`CONTINUATION`; the fitted wiggles are not extrapolated, and a slope that
pulls two atoms together stops pulling 0.1-0.2 Å below the data), and a repulsive wall joins,

.. math::

    W(r) = Z(r) - Z(r_m) - Z'(r_m)\,\Delta - \tfrac12 Z''(r_m)\,\Delta^2 - \kappa\,\Delta^3
    \quad (\Delta < 0), \qquad W = 0 \quad (r \ge r_m),

with kappa = 10 eV/Å^3 (:data:`SOFT_WALL`: 0.08 eV and 1.2 eV/Å 0.2 Å below the data, for
non-bonded pairs such as Co...O at 2.8 Å where Z is negligible) and Z the universal ZBL
screened nuclear repulsion (Ziegler, Biersack & Littmark 1985),
Z(r) = k_e Z_i Z_j / r * sum_n c_n exp(-d_n r / a), a = 0.46850 Å / (Z_i^0.23 + Z_j^0.23),
k_e = 14.399645 eV Å.  W, W' and W'' vanish at r_m (no data point feels it: the fit is the
same with or without it); below r_m, W = -(Z'''(xi) / 6 + kappa) Delta^3 > 0 (Z''' < 0) and
W' < 0, and W grows like 1/r, so two atoms closer than any training pair are pushed apart
instead of falling into a hole of the fit.

Measured on 100 K xTB MD of [Co(pdms)2]2- (DEVELOPERS.md, "Potentials for MD"): quadratic
2J = 4 SNAP force RMSE 0.058 -> 0.042 eV/Å with the pair term.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

#: The first Gaussian's centre (Å): below every bonded distance (H-H in H2 is 0.74 Å).
R0 = 0.7
#: The shortest distance tabulated for LAMMPS (Å; LAMMPS stops below it: the wall W is
#: ~100 eV there for H-H) and the number of table points.
TABLE_R_MIN = 0.05
TABLE_POINTS = 2000


#: Range (Å) over which the learned part's slope at r_m fades below r_m.
CONTINUATION = 0.1
#: Strength (eV/Å^3) of the soft cubic wall kappa (r_m - r)^3 below r_m.
SOFT_WALL = 10.0
#: ZBL universal screening function: coefficients c_n, exponents d_n, and k_e (eV Å).
_ZBL_C = np.array([0.18175, 0.50986, 0.28022, 0.02817])
_ZBL_D = np.array([3.19980, 0.94229, 0.40290, 0.20162])
_KE = 14.399645


def zbl(r: np.ndarray, z1: np.ndarray,
        z2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ZBL repulsion Z(r) (eV), dZ/dr (eV/Å) and d2Z/dr2 (eV/Å^2) of pairs with atomic
    numbers z1, z2."""
    r = np.asarray(r, float)
    a = 0.46850 / (np.asarray(z1, float) ** 0.23 + np.asarray(z2, float) ** 0.23)
    ex = _ZBL_C * np.exp(-(r / a)[..., None] * _ZBL_D)               # (m, 4)
    u = ex.sum(-1)
    du = -(ex * _ZBL_D).sum(-1) / a
    d2u = (ex * _ZBL_D ** 2).sum(-1) / a ** 2
    pre = _KE * np.asarray(z1, float) * np.asarray(z2, float)
    return (pre * u / r, pre * (du / r - u / r ** 2),
            pre * (d2u / r - 2 * du / r ** 2 + 2 * u / r ** 3))


class PairBasis:
    """The radial basis of the pair term for the species ``numbers`` (atomic numbers, the
    model's species order): ``cutoff`` r_c (Å), ``n_basis`` K Gaussians.  Columns are ordered
    pair by pair (pairs (a, b), a <= b in species order), K per pair."""

    def __init__(self, numbers: Sequence[int], cutoff: float, n_basis: int):
        self.numbers = [int(z) for z in numbers]
        self.cutoff = float(cutoff)
        self.n_basis = int(n_basis)
        if not self.cutoff > R0:
            raise ValueError(f"pair cutoff must exceed {R0} Å, got {cutoff}")
        if self.n_basis < 2:
            raise ValueError(f"pair basis needs at least 2 functions, got {n_basis}")
        t = len(self.numbers)
        self.pairs = [(a, b) for a in range(t) for b in range(a, t)]
        self._index = np.full((t, t), -1, dtype=int)
        for k, (a, b) in enumerate(self.pairs):
            self._index[a, b] = self._index[b, a] = k
        self.centres = np.linspace(R0, self.cutoff, self.n_basis)
        self.width = (self.cutoff - R0) / (self.n_basis - 1)
        #: per pair type: the shortest training distance r_m (Å), below which the learned
        #: part continues linearly and the wall W acts (R0 until :meth:`fit_range`)
        self.r_min = np.full(len(self.pairs), R0)
        self._z = np.array([[self.numbers[a], self.numbers[b]] for a, b in self.pairs], float)

    def fit_range(self, structures: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Set r_m of each pair type to its shortest distance in ``structures`` ((numbers,
        positions) pairs); a type absent from them (or only beyond r_c) gets r_c: no learned
        part, the wall below r_c."""
        r_min = np.full(len(self.pairs), self.cutoff)
        for numbers, positions in structures:
            t = self._types(np.asarray(numbers))
            i, j, _, r = self._pairs_within(np.asarray(positions, float))
            if len(r):
                np.minimum.at(r_min, self._index[t[i], t[j]], r)
        self.r_min = r_min

    def _phi_pairs(self, r: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """phi_k and dphi_k/dr (m, K) of pairs at distances r of types p; below each type's
        r_m continued as phi_k(r_m) + phi_k'(r_m) delta tanh((r - r_m) / delta) (module
        docstring)."""
        rm = self.r_min[p]
        below = r < rm
        g, dg = self.phi(np.where(below, rm, r))
        x = np.where(below, (r - rm) / CONTINUATION, 0.0)
        g = g + (CONTINUATION * np.tanh(x))[:, None] * dg
        dg = dg / np.cosh(x)[:, None] ** 2
        return g, dg

    def wall(self, r: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """W(r) (eV) and dW/dr (eV/Å) of pairs at distances r of types p (module docstring)."""
        r = np.asarray(r, float)
        rm = self.r_min[p]
        z1, z2 = self._z[p, 0], self._z[p, 1]
        below = r < rm
        out_w, out_dw = np.zeros(len(r)), np.zeros(len(r))
        if below.any():
            zr, dzr, _ = zbl(r[below], z1[below], z2[below])
            zm, dzm, d2zm = zbl(rm[below], z1[below], z2[below])
            dl = r[below] - rm[below]
            out_w[below] = zr - zm - dzm * dl - 0.5 * d2zm * dl * dl - SOFT_WALL * dl ** 3
            out_dw[below] = dzr - dzm - d2zm * dl - 3.0 * SOFT_WALL * dl * dl
        return out_w, out_dw

    @property
    def n_columns(self) -> int:
        return len(self.pairs) * self.n_basis

    def phi(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """phi_k(r) and dphi_k/dr, each (len(r), K); zero at and beyond r_c."""
        r = np.asarray(r, float)
        inside = r < self.cutoff
        fc = np.where(inside, 0.5 * (np.cos(np.pi * r / self.cutoff) + 1.0), 0.0)
        dfc = np.where(inside, -0.5 * np.pi / self.cutoff * np.sin(np.pi * r / self.cutoff), 0.0)
        x = (r[:, None] - self.centres) / self.width
        g = np.exp(-0.5 * x * x)
        dg = -g * x / self.width
        return g * fc[:, None], dg * fc[:, None] + g * dfc[:, None]

    def _types(self, numbers: np.ndarray) -> np.ndarray:
        lookup = {z: k for k, z in enumerate(self.numbers)}
        try:
            return np.array([lookup[int(z)] for z in numbers], dtype=int)
        except KeyError as err:
            raise ValueError(f"element Z={err.args[0]} is not among the pair term's species "
                             f"{self.numbers}") from None

    def _pairs_within(self, positions: np.ndarray):
        n = len(positions)
        i, j = np.triu_indices(n, 1)
        d = positions[i] - positions[j]
        r = np.sqrt(np.einsum("ij,ij->i", d, d))
        sel = r < self.cutoff
        return i[sel], j[sel], d[sel], r[sel]

    def design(self, numbers: np.ndarray, positions: np.ndarray,
               forces: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Energy row (P,) = the sums of phi_k over each pair type, and with ``forces`` the
        force rows (3N, P) = -d(row)/dr (atom-major, x y z), for one structure."""
        pos = np.asarray(positions, float)
        t = self._types(np.asarray(numbers))
        i, j, d, r = self._pairs_within(pos)
        p = self._index[t[i], t[j]]
        g, dg = self._phi_pairs(r, p)
        k = self.n_basis
        e = np.zeros((len(self.pairs), k))
        np.add.at(e, p, g)
        if not forces:
            return e.ravel(), None
        n_p = len(self.pairs)
        f = np.zeros((len(pos) * n_p, 3, k))                      # rows (atom, pair type)
        val = dg[:, None, :] * (d / r[:, None])[:, :, None]       # (m, 3, K): dE/dr_i
        np.add.at(f, i * n_p + p, -val)
        np.add.at(f, j * n_p + p, val)
        rows = f.reshape(len(pos), n_p, 3, k).transpose(0, 2, 1, 3)
        return e.ravel(), rows.reshape(3 * len(pos), -1)

    def energy_forces(self, numbers: np.ndarray, positions: np.ndarray,
                      coefficients: np.ndarray | None,
                      wall: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Energies (n,) eV and forces (n, N, 3) eV/Å of the pair term with ``coefficients``
        (P, K) at the frames ``positions`` (n, N, 3) Å of one molecule, the wall W included
        (``wall=False``: without it; ``coefficients=None``: the wall alone)."""
        pos = np.asarray(positions, float)
        if pos.ndim == 2:
            pos = pos[None]
        c = (np.zeros((len(self.pairs), self.n_basis)) if coefficients is None else
             np.asarray(coefficients, float).reshape(len(self.pairs), self.n_basis))
        t = self._types(np.asarray(numbers))
        n_at = pos.shape[1]
        i, j = np.triu_indices(n_at, 1)
        p = self._index[t[i], t[j]]
        cp = c[p]                                                   # (m, K)
        e_out = np.zeros(len(pos))
        f_out = np.zeros(pos.shape)
        for s, x in enumerate(pos):
            d = x[i] - x[j]
            r = np.sqrt(np.einsum("ij,ij->i", d, d))
            sel = r < self.cutoff
            de = np.zeros(int(sel.sum()))                          # dE/dr of each pair
            if coefficients is not None:   # the wall alone needs no basis functions
                g, dg = self._phi_pairs(r[sel], p[sel])
                e_out[s] = float(np.sum(g * cp[sel]))
                de = np.sum(dg * cp[sel], axis=1)
            if wall:
                w, dw = self.wall(r[sel], p[sel])
                e_out[s] += float(w.sum())
                de = de + dw
            v = (de / r[sel])[:, None] * d[sel]
            np.add.at(f_out[s], i[sel], -v)
            np.add.at(f_out[s], j[sel], v)
        return e_out, f_out

    def pair_function(self, coefficients: np.ndarray, pair: int,
                      r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E(r) (eV) and F(r) = -dE/dr (eV/Å) of one pair type, the wall included."""
        c = np.asarray(coefficients, float).reshape(len(self.pairs), self.n_basis)[pair]
        r = np.asarray(r, float)
        p = np.full(len(r), int(pair))
        g, dg = self._phi_pairs(r, p)
        w, dw = self.wall(r, p)
        return g @ c + w, -(dg @ c + dw)

    def as_dict(self) -> dict:
        """The settings (not r_m, which depends on the training data)."""
        return {"numbers": self.numbers, "cutoff": self.cutoff, "n_basis": self.n_basis}


def write_lammps_table(terms: Sequence[tuple[PairBasis, np.ndarray]], labels: Sequence[str],
                       path: str | Path, n_points: int = TABLE_POINTS) -> list[str]:
    """Write the mean of the pair terms ``terms`` ((basis, (P, K) coefficients) of one or more
    committee members: the committee mean) as a LAMMPS ``pair_style table`` file (one section
    per pair of species, E in eV and F = -dE/dr in eV/Å on ``n_points`` distances from
    :data:`TABLE_R_MIN` to r_c); returns the ``pair_coeff`` commands (types are the 1-based
    positions in ``labels``, the species order of the bases) for ``pair_style hybrid/overlay
    ... table spline N``."""
    path = Path(path)
    terms = list(terms)
    basis = terms[0][0]
    if any(b.as_dict() != basis.as_dict() for b, _ in terms):
        raise ValueError("pair terms with different settings")
    r = np.linspace(TABLE_R_MIN, basis.cutoff, int(n_points))
    lines = ["# molmag SNAP pair term (eV, Angstrom): E(r) = sum_k c_k phi_k(r) + W(r)", ""]
    commands = []
    for k, (a, b) in enumerate(basis.pairs):
        ef = [bb.pair_function(c, k, r) for bb, c in terms]
        e = np.mean([x[0] for x in ef], axis=0)
        f = np.mean([x[1] for x in ef], axis=0)
        key = f"{labels[a]}_{labels[b]}"
        lines += [key, f"N {len(r)} R {r[0]:.12g} {r[-1]:.12g}", ""]
        lines += [f"{n + 1} {x:.12g} {ev:.12g} {fv:.12g}"
                  for n, (x, ev, fv) in enumerate(zip(r, e, f))]
        lines.append("")
        commands.append(f"pair_coeff {a + 1} {b + 1} table {path} {key} {basis.cutoff!r}")
    path.write_text("\n".join(lines))
    return commands


__all__ = ["PairBasis", "write_lammps_table", "zbl", "R0", "TABLE_R_MIN", "TABLE_POINTS"]
