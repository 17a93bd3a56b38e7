r"""Magnetic observables of a spin or crystal-field Hamiltonian: powder chi*T(T), M(H) and the
effective g of every Kramers doublet.

A :class:`MagneticSystem` is a zero-field Hamiltonian H_0 (n x n, cm-1) and the dimensionless
moment operators M_a (a = x, y, z) of its Zeeman term

.. math::  H(\mathbf B) = H_0 + \mu_B\, \mathbf B \cdot \mathbf M ,

so that the magnetic moment is -mu_B M:

* a spin Hamiltonian (:func:`spin_system`):
  H_0 = S.D.S (or D[S_z^2 - S(S+1)/3] + E(S_x^2 - S_y^2)), M = g S (M_a = sum_b g_ab S_b);
* a lanthanide J multiplet (:func:`crystal_field_system`):
  H_0 = sum_kq B_k^q O_k^q (Stevens, :mod:`molmag.physics.crystal_field`), M = g_J J.

Energies are in cm-1, fields in tesla, temperatures in kelvin, mu_B = 0.46686 cm-1/T,
k_B = 0.69503 cm-1/K (CODATA 2018).

**Susceptibility.**  The molar susceptibility tensor at zero field is the Van Vleck
expression (Van Vleck 1932; Kahn, *Molecular Magnetism*, eq. 1.16) in the eigenbasis
{|n>, E_n} of H_0,

.. math::  \chi_{ab} T = \frac{N_A\mu_B^2}{k_B} \frac{1}{Z}\sum_n e^{-E_n/kT}
   \Big[\sum_{m:E_m=E_n} M^a_{nm}M^b_{mn} - 2kT \sum_{m:E_m\ne E_n}
   \frac{\mathrm{Re}\,M^a_{nm}M^b_{mn}}{E_n-E_m}\Big] ,                          (1)

in cm3 K mol-1 (CGS-emu, the unit of SQUID papers): N_A mu_B^2 / (3 k_B) = 0.125049 cm3 K
mol-1.  The powder average of a linear response is exactly Tr(chi)/3: no grid is needed.  The
Curie limit (kT >> the splitting) is chi*T = 0.125049 g^2 S(S+1) (S = 3/2, g = 2: 1.8757) or
0.125049 g_J^2 J(J+1) (free Dy3+ with g_J = 4/3: 14.172; molmag's g_J uses g_e = 2.00232,
which gives 14.190).

**Magnetisation.**  Along a field B n, M_n = -(1/Z) sum_i e^{-E_i/kT} <i| n.M |i> (Hellmann-
Feynman, mu_B per molecule), with E_i, |i> the eigenpairs of H(B n); the powder average is
the integral over field directions, done on a Lebedev grid (scipy.integrate.lebedev_rule; the
default order 17, 110 points, integrates spherical harmonics to degree 17 exactly and is
converged to < 1e-4 relative for the test systems, see tests/physics/test_magnetism.py).  Saturation
at high field and low T: M -> g S (spin), g_J J (lanthanide ion).

**Kramers doublets.**  For a pair of states {|1>, |2>} the effective g tensor of S_eff = 1/2
follows from g g^T = 2 Tr_doublet(M_a M_b) (Chibotaru & Ungur 2012, eq. 7, the SINGLE_ANISO
definition); principal values sqrt(eigenvalues), ascending.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from molmag.physics.angular_momentum import spin_matrices

#: CODATA 2018: Bohr magneton in cm-1/T, Boltzmann constant in cm-1/K.
MU_B_CM = 0.46686447783
K_B_CM = 0.6950348004
#: N_A mu_B^2 / (3 k_B) in cm3 K mol-1 (CGS-emu): 6.02214076e23 (9.2740100783e-21 erg/G)^2 /
#: (3 x 1.380649e-16 erg/K)
CURIE_CONSTANT = 6.02214076e23 * 9.2740100783e-21 ** 2 / (3 * 1.380649e-16)
#: states closer than this (cm-1) are degenerate in eq. (1)
DEGENERACY_TOL = 1e-6


@dataclass(frozen=True)
class MagneticSystem:
    """H_0 (n, n) cm-1 and the moment operators M (3, n, n): H(B) = H_0 + mu_B B.M; ``name``
    says what it is, ``kramers`` whether its states come in Kramers doublets."""

    h0: np.ndarray
    moment: np.ndarray
    name: str = ""
    kramers: bool = False

    def __post_init__(self):
        h0 = np.asarray(self.h0, complex)
        m = np.asarray(self.moment, complex)
        n = h0.shape[0]
        if h0.shape != (n, n) or m.shape != (3, n, n):
            raise ValueError(f"H_0 must be (n, n) and M (3, n, n); got {h0.shape} and {m.shape}")
        if not np.allclose(h0, h0.conj().T, atol=1e-9 * max(1.0, np.abs(h0).max())):
            raise ValueError("H_0 is not Hermitian")
        if not all(np.allclose(x, x.conj().T, atol=1e-12) for x in m):
            raise ValueError("the moment operators are not Hermitian")
        object.__setattr__(self, "h0", h0)
        object.__setattr__(self, "moment", m)

    @property
    def dim(self) -> int:
        return self.h0.shape[0]

    def levels(self) -> tuple[np.ndarray, np.ndarray]:
        """Zero-field energies (ascending, ground = 0, cm-1) and eigenvectors."""
        w, v = np.linalg.eigh(self.h0)
        return w - w[0], v

    def hamiltonian(self, field_T) -> np.ndarray:
        """H(B) (cm-1) for a field vector (tesla) or a batch (..., 3)."""
        b = np.asarray(field_T, float)
        return self.h0 + MU_B_CM * np.tensordot(b, self.moment, axes=([-1], [0]))


def parse_spin(value) -> float:
    """A spin from '3/2', '1.5', 3/2 ...; must be a positive multiple of 1/2."""
    try:
        s = float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"spin {value!r}: expected a number like 3/2 or 1.5") from None
    if s <= 0 or abs(2 * s - round(2 * s)) > 1e-9:
        raise ValueError(f"spin {value!r}: must be a positive multiple of 1/2")
    return round(2 * s) / 2


def g_matrix(g) -> np.ndarray:
    """A g tensor from one value (isotropic), three principal values (x, y, z) or a 3x3."""
    g = np.asarray(g, float)
    if g.ndim == 0 or g.shape == (1,):
        return float(np.ravel(g)[0]) * np.eye(3)
    if g.shape == (3,):
        return np.diag(g)
    if g.shape == (3, 3):
        return g
    raise ValueError(f"g must be one value, three principal values or a 3x3 tensor; got shape "
                     f"{g.shape}")


def spin_system(spin, *, D: float = 0.0, E: float = 0.0, g=2.0,
                d_tensor=None) -> MagneticSystem:
    """H = D[S_z^2 - S(S+1)/3] + E(S_x^2 - S_y^2) + mu_B B.g.S (cm-1), or S.D.S with a 3x3
    ``d_tensor`` (cm-1); ``g`` one value, three principal values along x, y, z (the D axes) or
    a 3x3 tensor."""
    s = parse_spin(spin)
    sx, sy, sz = (np.asarray(x, complex) for x in spin_matrices(s))
    sv = np.stack([sx, sy, sz])
    if d_tensor is not None:
        d = np.asarray(d_tensor, float)
        if d.shape != (3, 3):
            raise ValueError(f"the D tensor must be 3x3, got {d.shape}")
        d = 0.5 * (d + d.T)
        h0 = np.einsum("ab,aij,bjk->ik", d, sv, sv)
    else:
        for name, v in (("D", D), ("E", E)):
            if not np.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
        n = sx.shape[0]
        h0 = D * (sz @ sz - s * (s + 1) / 3 * np.eye(n)) + E * (sx @ sx - sy @ sy)
    gm = g_matrix(g)
    if not np.all(np.isfinite(gm)):
        raise ValueError("g must be finite")
    moment = np.einsum("ab,bij->aij", gm, sv)
    return MagneticSystem(h0, moment, f"S = {Fraction(s)}", kramers=bool(round(2 * s) % 2))


def crystal_field_system(ion, parameters=None) -> MagneticSystem:
    """The ground J multiplet of a lanthanide ion: H_0 = sum B_k^q O_k^q (``parameters``: any
    label or Stevens dict :func:`molmag.physics.crystal_field.hamiltonian` takes; ``None`` is
    the free ion) and M = g_J J."""
    from molmag.physics.crystal_field import hamiltonian, ion_model

    model = ion_model(ion)
    n = model.j_ops.shape[-1]
    h0 = np.zeros((n, n), complex) if parameters is None else hamiltonian(ion, parameters)
    return MagneticSystem(h0, model.ion.g_J * model.j_ops, model.ion.name,
                          kramers=bool(model.ion.n_f % 2))


def _check_temperatures(temperatures) -> np.ndarray:
    t = np.atleast_1d(np.asarray(temperatures, float))
    bad = t[~(np.isfinite(t) & (t > 0))]
    if bad.size:
        raise ValueError(f"temperatures must be positive kelvin, got {bad[0]!r}")
    return t


def chi_t_tensor(system: MagneticSystem, temperatures) -> np.ndarray:
    """chi*T tensors (n_T, 3, 3), cm3 K mol-1, by eq. (1)."""
    t = _check_temperatures(temperatures)
    e, v = system.levels()
    m = np.einsum("in,aij,jm->anm", v.conj(), system.moment, v)          # M^a_nm
    mm = np.einsum("anm,bmn->abnm", m, m).real                            # Re M^a_nm M^b_mn
    de = e[:, None] - e[None, :]                                          # E_n - E_m
    deg = np.abs(de) < DEGENERACY_TOL
    inv = np.where(deg, 0.0, 1.0 / np.where(deg, 1.0, de))
    curie = np.einsum("abnm,nm->abn", mm, deg.astype(float))              # first term
    vanvleck = -2.0 * np.einsum("abnm,nm->abn", mm, inv)                  # / kT below
    out = np.empty((len(t), 3, 3))
    for k, temp in enumerate(t):
        kt = K_B_CM * temp
        p = np.exp(-e / kt)
        p /= p.sum()
        out[k] = 3 * CURIE_CONSTANT * np.einsum("abn,n->ab", curie + kt * vanvleck, p)
    return out


def powder_chi_t(system: MagneticSystem, temperatures) -> np.ndarray:
    """Powder chi*T (n_T,), cm3 K mol-1: Tr(chi T)/3 of eq. (1), exact for a linear response."""
    return np.trace(chi_t_tensor(system, temperatures), axis1=1, axis2=2) / 3.0


def curie_chi_t(g: float, j: float) -> float:
    """The Curie limit 0.125049 g^2 J(J+1), cm3 K mol-1."""
    return CURIE_CONSTANT * g * g * j * (j + 1)


def powder_grid(order: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (n, 3) and weights (n,) summing to 1 of a Lebedev grid of ``order``
    (scipy.integrate.lebedev_rule): the powder average of f is sum_i w_i f(n_i)."""
    from scipy.integrate import lebedev_rule

    x, w = lebedev_rule(int(order))
    return np.asarray(x, float).T, np.asarray(w, float) / np.sum(w)


def magnetisation(system: MagneticSystem, fields_T, temperature, *,
                  direction=None, order: int = 17) -> np.ndarray:
    """M (mu_B per molecule) along the field, for fields (n_B,) in tesla at one temperature:
    along ``direction`` (a vector) or powder-averaged on a Lebedev grid of ``order``."""
    t = float(_check_temperatures(temperature)[0])
    fields = np.atleast_1d(np.asarray(fields_T, float))
    if not np.all(np.isfinite(fields)) or np.any(fields < 0):
        raise ValueError("fields must be finite, non-negative tesla")
    if direction is not None:
        n = np.asarray(direction, float)
        if n.shape != (3,) or not np.linalg.norm(n) > 0:
            raise ValueError("direction must be a non-zero 3-vector")
        dirs, w = (n / np.linalg.norm(n))[None, :], np.ones(1)
    else:
        dirs, w = powder_grid(order)
    kt = K_B_CM * t
    out = np.empty(len(fields))
    mn = np.tensordot(dirs, system.moment, axes=([1], [0]))              # (n_dir, n, n)
    for k, b in enumerate(fields):
        h = system.h0[None] + MU_B_CM * b * mn
        e, v = np.linalg.eigh(h)
        p = np.exp(-(e - e[:, :1]) / kt)
        p /= p.sum(axis=1, keepdims=True)
        expect = np.einsum("dia,dij,dja->da", v.conj(), mn, v).real       # <i| n.M |i>
        out[k] = float(np.sum(w * np.sum(-p * expect, axis=1)))
    return out


def kramers_g(system: MagneticSystem) -> tuple[np.ndarray, np.ndarray]:
    """Energies (cm-1, ground 0) and principal g values (n_KD, 3), ascending, of the Kramers
    doublets (states paired in order of energy); refused for a system without Kramers
    degeneracy."""
    if not system.kramers or system.dim % 2:
        raise ValueError(f"{system.name or 'this system'} has no Kramers doublets "
                         "(an integer spin or an even number of f electrons)")
    e, v = system.levels()
    m = np.einsum("in,aij,jm->anm", v.conj(), system.moment, v)
    gs = []
    for k in range(0, system.dim, 2):
        blk = m[:, k:k + 2, k:k + 2]
        gg = 2.0 * np.einsum("aij,bji->ab", blk, blk).real
        gs.append(np.sqrt(np.clip(np.linalg.eigvalsh(gg), 0.0, None)))
    return e[::2], np.array(gs)


def temperature_grid(spec: str) -> np.ndarray:
    """'2:300:50' (start:stop:n, inclusive) or '2,5,10' -> an array; errors name the value."""
    return _grid(spec, "temperatures")


def field_grid(spec: str) -> np.ndarray:
    return _grid(spec, "fields")


def _grid(spec: str, what: str) -> np.ndarray:
    text = str(spec).strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, n = float(parts[0]), float(parts[1]), int(parts[2])
            if n < 1:
                raise ValueError
            return np.linspace(start, stop, n)
        return np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise ValueError(f"--{what} {spec!r}: expected start:stop:n (e.g. 2:300:50) or a "
                         "comma-separated list") from None


__all__ = ["MagneticSystem", "spin_system", "crystal_field_system", "chi_t_tensor",
           "powder_chi_t", "curie_chi_t", "magnetisation", "kramers_g", "powder_grid",
           "parse_spin", "g_matrix", "temperature_grid", "field_grid", "MU_B_CM", "K_B_CM",
           "CURIE_CONSTANT"]
