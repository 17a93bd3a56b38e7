r"""Extended Stevens operators, spherical tensor operators of J, and lanthanide ion data.

Angular momentum
----------------
Matrices act on the ground multiplet ``|J M>``, M = -J..J in ascending order (the order of
:mod:`molmag.physics.wigner`), with Condon-Shortley phases:
``<J M+1|J_+|J M> = sqrt(J(J+1) - M(M+1))``, J_x = (J_+ + J_-)/2, J_y = (J_+ - J_-)/(2i).

Spherical tensor operators
--------------------------
``T^k_q(J)`` is the operator equivalent of the solid harmonic ``r^k C^k_q(r)`` with the
Racah-normalised harmonic ``C^k_q = sqrt(4 pi/(2k+1)) Y_k^q`` (Condon-Shortley phase):

.. math::

    T^k_k = (-1)^k \frac{\sqrt{(2k)!}}{2^k k!} J_+^k, \qquad
    T^k_{q-1} = \frac{[J_-, T^k_q]}{\sqrt{(k+q)(k-q+1)}}

(Racah's commutator rule).  Since ``r^k C^k_k = (-1)^k sqrt((2k)!)/(2^k k!) (x + iy)^k``, the
top component is the operator equivalent of the polynomial.  The matrices are built from the
equivalent Wigner-Eckart form ``<J M|T^k_q|J M'> = R_k <J M' k q|J M>`` (exact
Clebsch-Gordan coefficients), with R_k fixed by the top component; the commutator rule is
checked in the tests.

Extended Stevens operators (ESO)
--------------------------------
The ESO of Rudowicz (J. Phys. C 18, 1415 (1985)), Ryabov (J. Magn. Reson. 140, 141 (1999)) and
EasySpin's ``stev``: for q > 0 the cosine-type

.. math::

    O_k^{q} = \tfrac12 [p_{kq}(J_z),\, J_+^q + J_-^q]_+ , \qquad
    O_k^{-q} = \tfrac{1}{2i} [p_{kq}(J_z),\, J_+^q - J_-^q]_+ , \qquad
    O_k^0 = p_{k0}(J_z)

(with ``[A, B]_+ = (AB + BA)/2`` and the J(J+1) terms of the polynomials as in the
symmetrised operator equivalents), where ``p_kq(z)`` is the q-th derivative of the Legendre
polynomial P_k(z), homogenised with r^2 -> J(J+1), scaled to **coprime integer coefficients**
with a positive leading coefficient (e.g. 3z^2 - r^2, 7z^3 - 3zr^2, 33z^4 - 18z^2r^2 + r^4).
For k = 2, 4, 6 this integer normalisation reproduces the tables of Rudowicz/EasySpin
(O_2^0 = 3J_z^2 - J(J+1), O_4^4 = (J_+^4 + J_-^4)/2, ...; tested) and SINGLE_ANISO's K factors;
for k > 6 (not used by the crystal field of f electrons) it is the same rule, not checked
against another program.  Built from the tensors:

.. math::

    O_k^0 = \frac{T^k_0}{s_{k0}}, \quad
    O_k^{q} = \frac{(-1)^q T^k_q + T^k_{-q}}{2 s_{kq}}, \quad
    O_k^{-q} = \frac{(-1)^q T^k_q - T^k_{-q}}{2i\, s_{kq}}, \quad
    s_{kq} = \sqrt{\frac{(k-q)!}{(k+q)!}}\,\frac{c_{kq}}{N_k},

where ``N_k`` is the factor making ``N_k P_k`` coprime-integer (2, 8, 16 for k = 2, 4, 6) and
``c_kq`` the integer content (gcd) of ``d^q/dz^q (N_k P_k)``.  So the ESO is the operator
equivalent of the tesseral polynomial ``p_kq(z) Re[(x + iy)^q]`` (q >= 0) or
``p_kq(z) Im[(x + iy)^q]`` (q < 0) of the unit vector.  O_k^q for q >= 0 are real symmetric,
for q < 0 imaginary antisymmetric matrices in this basis; all are Hermitian.

The ratio to OpenMolcas SINGLE_ANISO's ITO-based real operators (Chibotaru & Ungur,
J. Chem. Phys. 137, 064112 (2012)), printed as the "(K)^2" column of its ESO table, is
:func:`ito_factor`: ``B_ESO(k, +-q) = K_kq B_ITO(k, q) or C_ITO(k, q)`` with
``K_kq = N_k s_kq`` (K^2 = 6, 1.5 for k = 2, q = 1, 2; 20, 10, 140, 17.5 for k = 4; ...).

Lanthanide ions
---------------
:func:`lanthanide_ion` gives, for Ce3+..Yb3+ (4f^1..4f^13), the Hund's-rule ground multiplet
(S, L, J), the Lande factor g_J, the Stevens factors theta_k (alpha_J, beta_J, gamma_J),
computed exactly from the determinant |M_L = L, M_S = S> of the Hund term (Wigner-Eckart in
L, Clebsch-Gordan coupling to J; no tables), and the radial integrals <r^k> and Sternheimer
shielding factors sigma_k of Edvardsson & Klintenberg (see :data:`RADIAL_INTEGRALS`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache, reduce

import numpy as np
from scipy import constants as _c

#: Ranks of the crystal-field Hamiltonian of f electrons (time-even, k <= 2l = 6).
CF_RANKS = (2, 4, 6)

#: Free-electron g factor |g_e| (CODATA via scipy), used in the Lande factor.
G_ELECTRON = abs(_c.physical_constants["electron g factor"][0])


# --------------------------------------------------------------------------------------
# angular momentum and spherical tensor operators
# --------------------------------------------------------------------------------------
def _two_j(j) -> int:
    tj = Fraction(j) * 2
    if tj.denominator != 1 or tj < 0:
        raise ValueError(f"angular momentum must be a non-negative multiple of 1/2, got {j}")
    return int(tj)


@lru_cache(maxsize=None)
def _jmats(two_j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    j = two_j / 2.0
    m = np.arange(-two_j, two_j + 1, 2) / 2.0
    n = two_j + 1
    jp = np.zeros((n, n))
    for i in range(n - 1):
        jp[i + 1, i] = math.sqrt(j * (j + 1) - m[i] * (m[i] + 1))
    jm = jp.T.copy()
    jz = np.diag(m)
    for a in (jp, jm, jz, m):
        a.setflags(write=False)
    return jp, jm, jz, m


def angular_momentum(j) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(J_x, J_y, J_z), complex (2J+1)x(2J+1) matrices in the basis M = -J..J (hbar = 1)."""
    jp, jm, jz, _ = _jmats(_two_j(j))
    return (0.5 * (jp + jm)).astype(complex), (-0.5j * (jp - jm)), jz.astype(complex)


def ladder_operators(j) -> tuple[np.ndarray, np.ndarray]:
    """(J_+, J_-), real matrices in the basis M = -J..J."""
    jp, jm, _, _ = _jmats(_two_j(j))
    return jp, jm


def m_values(j) -> np.ndarray:
    """The M values -J..J of the basis, ascending."""
    return _jmats(_two_j(j))[3]


@lru_cache(maxsize=None)
def _tensor_operators(two_j: int, k: int) -> np.ndarray:
    j = two_j / 2.0
    n = two_j + 1
    t = np.zeros((2 * k + 1, n, n))
    if k <= two_j:
        m = np.arange(-two_j, two_j + 1, 2) / 2.0
        # reduced element from the top component <J, -J+k| T^k_k |J, -J> = c_k <..|J_+^k|..>
        top = (-1) ** k * math.sqrt(math.factorial(2 * k)) / (2 ** k * math.factorial(k))
        for i in range(k):
            top *= math.sqrt(j * (j + 1) - m[i] * (m[i] + 1))
        red = top / clebsch_gordan(Fraction(two_j, 2), Fraction(-two_j, 2), k, k,
                                   Fraction(two_j, 2), Fraction(-two_j + 2 * k, 2))
        for q in range(-k, k + 1):
            for b in range(n):
                a = b + q
                if 0 <= a < n:
                    t[q + k, a, b] = red * clebsch_gordan(Fraction(two_j, 2),
                                                          Fraction(2 * b - two_j, 2),
                                                          k, q, Fraction(two_j, 2),
                                                          Fraction(2 * a - two_j, 2))
    t.setflags(write=False)
    return t


def spherical_tensor_operators(j, k: int) -> np.ndarray:
    """``T^k_q(J)`` for q = -k..k, shape (2k+1, 2J+1, 2J+1), real matrices (see module
    docstring: operator equivalents of r^k C^k_q).  Zero for k > 2J."""
    if k < 0 or int(k) != k:
        raise ValueError(f"rank must be a non-negative integer, got {k}")
    return _tensor_operators(_two_j(j), int(k))


# --------------------------------------------------------------------------------------
# tesseral polynomials and the ESO normalisation
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _legendre_integer(k: int) -> tuple[tuple[int, ...], int]:
    """Coefficients (power 0..k) of the coprime-integer multiple N_k P_k(z), and N_k."""
    coeffs = [Fraction(0)] * (k + 1)
    for j in range(k // 2 + 1):
        coeffs[k - 2 * j] = Fraction((-1) ** j * math.factorial(2 * k - 2 * j),
                                     2 ** k * math.factorial(j) * math.factorial(k - j)
                                     * math.factorial(k - 2 * j))
    lcm = reduce(lambda a, b: a * b // math.gcd(a, b), (c.denominator for c in coeffs), 1)
    ints = [int(c * lcm) for c in coeffs]
    g = reduce(math.gcd, (abs(c) for c in ints if c), 0)
    ints = [c // g for c in ints]
    n_k = Fraction(ints[k]) / coeffs[k]
    if n_k.denominator != 1:
        raise AssertionError("N_k must be an integer")
    return tuple(ints), int(n_k)


@lru_cache(maxsize=None)
def stevens_polynomial(k: int, q: int) -> tuple[tuple[int, ...], int]:
    """``(a, c)``: coprime integer coefficients a_j (power j = 0..k-|q| of z, unit sphere)
    of ``p_k|q|(z)``, and the integer content c_kq of ``d^q/dz^q (N_k P_k)``.

    E.g. (4, 2) -> ((-1, 0, 7), 60): p_42 = 7z^2 - 1 (homogeneous: 7z^2 - r^2)."""
    q = abs(int(q))
    if not (0 <= q <= k):
        raise ValueError(f"need 0 <= |q| <= k, got k={k}, q={q}")
    base, _ = _legendre_integer(k)
    d = list(base)
    for _ in range(q):
        d = [i * d[i] for i in range(1, len(d))]
    content = reduce(math.gcd, (abs(c) for c in d if c), 0)
    return tuple(c // content for c in d), content


@lru_cache(maxsize=None)
def tesseral_scale(k: int, q: int) -> float:
    """``s_kq = sqrt((k-|q|)!/(k+|q|)!) c_kq / N_k``: ``(-1)^q r^k C^k_q = s_kq (x+iy)^q p_kq``
    for q >= 0 (module docstring)."""
    q = abs(q)
    _, content = stevens_polynomial(k, q)
    _, n_k = _legendre_integer(k)
    return math.sqrt(math.factorial(k - q) / math.factorial(k + q)) * content / n_k


def legendre_factor(k: int) -> int:
    """N_k with N_k P_k(z) the coprime-integer polynomial: 2, 8, 16 for k = 2, 4, 6.
    ``O_k^0 = N_k T^k_0``."""
    return _legendre_integer(k)[1]


def ito_factor(k: int, q: int) -> float:
    """K_kq = N_k s_kq: ratio of the ESO parameter to SINGLE_ANISO's real ITO parameter,
    ``B_ESO(k, +-q) = K_kq * [B(k,q) or C(k,q)]``; K_k0 = 1.  K^2 is the "(K)^2" column that
    SINGLE_ANISO prints (e.g. 6 for (2, 1), 17.5 for (4, 4), 57.75 for (6, 6))."""
    return legendre_factor(k) * tesseral_scale(k, q)


# --------------------------------------------------------------------------------------
# Stevens operators
# --------------------------------------------------------------------------------------
def _check_kq(k: int, q: int) -> tuple[int, int]:
    if int(k) != k or int(q) != q or k < 0 or abs(q) > k:
        raise ValueError(f"need integers 0 <= |q| <= k, got k={k}, q={q}")
    return int(k), int(q)


@lru_cache(maxsize=None)
def _stevens(two_j: int, k: int, q: int) -> np.ndarray:
    t = _tensor_operators(two_j, k)
    s = tesseral_scale(k, q)
    if q == 0:
        op = t[k] / s + 0j
    elif q > 0:
        op = ((-1) ** q * t[k + q] + t[k - q]) / (2 * s) + 0j
    else:
        p = -q
        op = ((-1) ** p * t[k + p] - t[k - p]) / (2j * s)
    op = 0.5 * (op + op.conj().T)          # Hermitian to the last bit
    op.setflags(write=False)
    return op


def stevens_operator(j, k: int, q: int) -> np.ndarray:
    """Extended Stevens operator ``O_k^q(J)`` (complex Hermitian, basis M = -J..J).

    Zero matrix for k > 2J (the operator vanishes inside the multiplet)."""
    k, q = _check_kq(k, q)
    return _stevens(_two_j(j), k, q)


def cf_keys(ranks=CF_RANKS) -> tuple[tuple[int, int], ...]:
    """Parameter order used by the stacked operators: (k, q) for k in ranks, q = -k..k."""
    return tuple((k, q) for k in ranks for q in range(-k, k + 1))


@lru_cache(maxsize=None)
def _stevens_stack(two_j: int, ranks: tuple[int, ...]) -> np.ndarray:
    ops = np.stack([_stevens(two_j, k, q) for k, q in cf_keys(ranks)])
    ops.setflags(write=False)
    return ops


def stevens_operator_stack(j, ranks=CF_RANKS) -> np.ndarray:
    """All O_k^q(J) for :func:`cf_keys` ``(ranks)``, shape (nkq, 2J+1, 2J+1), cached per J."""
    return _stevens_stack(_two_j(j), tuple(int(k) for k in ranks))


# --------------------------------------------------------------------------------------
# Clebsch-Gordan coefficients (Racah's formula, exact rational arithmetic)
# --------------------------------------------------------------------------------------
def clebsch_gordan(j1, m1, j2, m2, j, m) -> float:
    """``<j1 m1 j2 m2 | j m>`` (Condon-Shortley), arguments integers or half-integers."""
    a, am, b, bm, c, cm = (_twice(x) for x in (j1, m1, j2, m2, j, m))
    if am + bm != cm or abs(am) > a or abs(bm) > b or abs(cm) > c:
        return 0.0
    if c < abs(a - b) or c > a + b or (a + b + c) % 2 or (a + am) % 2 or (b + bm) % 2 \
            or (c + cm) % 2:
        return 0.0
    f = math.factorial

    def h(x: int) -> int:          # twice-values -> values (all sums below are even)
        return x // 2
    pref = Fraction((c + 1) * f(h(c + a - b)) * f(h(c - a + b)) * f(h(a + b - c)),
                    f(h(a + b + c) + 1))
    pref *= Fraction(f(h(c + cm)) * f(h(c - cm)) * f(h(a - am)) * f(h(a + am)) * f(h(b - bm))
                     * f(h(b + bm)))
    total = Fraction(0)
    for kk in range(0, h(a + b - c) + 1):
        dens = (h(a + b - c) - kk, h(a - am) - kk, h(b + bm) - kk, h(c - b + am) + kk,
                h(c - a - bm) + kk)
        if min(dens) < 0:
            continue
        den = f(kk)
        for d in dens:
            den *= f(d)
        total += Fraction((-1) ** kk, den)
    return math.sqrt(pref) * float(total) if total else 0.0


def _twice(x) -> int:
    t = Fraction(x) * 2
    if t.denominator != 1:
        raise ValueError(f"{x} is not a multiple of 1/2")
    return int(t)


# --------------------------------------------------------------------------------------
# lanthanide ions
# --------------------------------------------------------------------------------------
LANTHANIDES = ("Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb")

#: Relativistic (Dirac-Fock) radial integrals <r^k> (atomic units, a0^k) and Sternheimer
#: shielding factors sigma_k of the trivalent ions, from S. Edvardsson and M. Klintenberg,
#: "Role of the electrostatic model in calculating rare-earth crystal-field parameters",
#: J. Alloys Compd. 275-277, 230-233 (1998), doi:10.1016/S0925-8388(98)00309-0 (Table 1),
#: as tabulated in PyCrystalField (Scheie, J. Appl. Cryst. 54, 356 (2021)).
#: Columns: sigma_2, sigma_4, sigma_6, <r^2>, <r^4>, <r^6>.  (The older non-relativistic
#: Hartree-Fock values of Freeman & Watson, Phys. Rev. 127, 2058 (1962), are smaller, e.g.
#: Dy3+ 0.726, 1.322, 5.102.)
RADIAL_INTEGRALS: dict[str, tuple[float, float, float, float, float, float]] = {
    "Ce": (0.510, 0.0132, -0.0294, 1.456, 5.437, 42.26),
    "Pr": (0.515, 0.0138, -0.0301, 1.327, 4.537, 32.65),
    "Nd": (0.518, 0.0130, -0.0310, 1.222, 3.875, 26.12),
    "Pm": (0.519, 0.0109, -0.0314, 1.135, 3.366, 21.46),
    "Sm": (0.519, 0.0077, -0.0317, 1.061, 2.964, 17.99),
    "Eu": (0.520, 0.0033, -0.0319, 0.997, 2.638, 15.34),
    "Gd": (0.521, -0.0031, -0.0318, 0.942, 2.381, 13.36),
    "Tb": (0.523, -0.0107, -0.0318, 0.893, 2.163, 11.75),
    "Dy": (0.527, -0.0199, -0.0316, 0.849, 1.977, 10.44),
    "Ho": (0.534, -0.0306, -0.0313, 0.810, 1.816, 9.345),
    "Er": (0.544, -0.0427, -0.0310, 0.773, 1.677, 8.431),
    "Tm": (0.554, -0.0567, -0.0306, 0.740, 1.555, 7.659),
    "Yb": (0.571, -0.0725, -0.0300, 0.710, 1.448, 7.003),
}


@dataclass(frozen=True)
class LanthanideIon:
    """Ground multiplet ^(2S+1)L_J of a trivalent lanthanide and its crystal-field constants.

    theta : {k: theta_k} Stevens factors (theta_2 = alpha_J, theta_4 = beta_J,
        theta_6 = gamma_J), dimensionless.
    radial : {k: <r^k>} in a0^k (Edvardsson & Klintenberg 1998).
    sigma : {k: sigma_k} Sternheimer shielding factors (same source); shielded
        parameters are (1 - sigma_k) B_k^q.
    g_J : Lande factor with g_L = 1 and g_S = |g_e| (CODATA).
    """

    symbol: str
    n_f: int
    S: float
    L: int
    J: float
    g_J: float
    theta: dict
    radial: dict
    sigma: dict

    @property
    def name(self) -> str:
        return f"{self.symbol}3+"

    @property
    def dim(self) -> int:
        return int(round(2 * self.J)) + 1

    @property
    def kramers(self) -> bool:
        """Odd number of f electrons: every level is (at least) a Kramers doublet."""
        return self.n_f % 2 == 1

    @property
    def term(self) -> str:
        letters = "SPDFGHIKLMNOQ"
        two_j = int(round(2 * self.J))
        j = f"{two_j // 2}" if two_j % 2 == 0 else f"{two_j}/2"
        return f"{int(round(2 * self.S)) + 1}{letters[self.L]}{j}"

    @property
    def has_crystal_field(self) -> bool:
        """False for Eu3+ (J = 0) and Gd3+ (L = 0): no first-order splitting of the ground
        multiplet by the crystal field."""
        return self.J > 0 and any(abs(t) > 0 for t in self.theta.values())


def hund_ground_state(n_f: int) -> tuple[Fraction, int, Fraction]:
    """(S, L, J) of the Hund's-rule ground multiplet of 4f^n (1 <= n <= 13)."""
    if not 1 <= n_f <= 13:
        raise ValueError(f"4f^{n_f}: need 1..13 electrons")
    if n_f <= 7:
        s = Fraction(n_f, 2)
        l = sum(3 - i for i in range(n_f))
        j = abs(l - s)
    else:
        s = Fraction(14 - n_f, 2)
        l = sum(3 - i for i in range(n_f - 7))
        j = l + s
    return s, l, j


def _orbital_expectation(n_f: int, k: int) -> float:
    """<L L| sum_i C^k_0(i) |L L> for the Hund determinant (M_L = L, M_S = S)."""
    occupied = range(3, 3 - n_f, -1) if n_f <= 7 else range(3, 3 - (n_f - 7), -1)
    red = clebsch_gordan(3, 0, k, 0, 3, 0)
    return sum(clebsch_gordan(3, m, k, 0, 3, m) * red for m in occupied)


@lru_cache(maxsize=None)
def stevens_factor(n_f: int, k: int) -> float:
    """theta_k of the ground multiplet of 4f^n: ``sum_i r_i^k C^k_0(i) = theta_k <r^k>
    O_k^0(J) / N_k`` inside the multiplet (alpha_J for k = 2, beta_J 4, gamma_J 6).

    Computed from the Hund determinant, the Wigner-Eckart theorem in L and the
    Clebsch-Gordan coupling of L and S to |J, M_J = J>; 0 where the multiplet has L = 0 or
    k > 2J."""
    s, l, j = hund_ground_state(n_f)
    if l == 0 or k > 2 * j:
        return 0.0
    top = _orbital_expectation(n_f, k)
    ref = clebsch_gordan(l, l, k, 0, l, l)
    u = 0.0
    for ml in range(-l, l + 1):
        ms = j - ml
        if abs(ms) > s:
            continue
        w = clebsch_gordan(l, ml, s, ms, j, j) ** 2
        u += w * top * clebsch_gordan(l, ml, k, 0, l, ml) / ref
    o_jj = stevens_operator(j, k, 0)[-1, -1].real
    return legendre_factor(k) * u / o_jj


def lande_g(s, l, j, g_s: float = G_ELECTRON) -> float:
    """g_J = [J(J+1) + L(L+1) - S(S+1)]/(2J(J+1)) + g_S [J(J+1) - L(L+1) + S(S+1)]/(2J(J+1))."""
    s, l, j = float(s), float(l), float(j)
    if j == 0:
        return 0.0
    jj = j * (j + 1)
    return ((jj + l * (l + 1) - s * (s + 1)) / (2 * jj)
            + g_s * (jj - l * (l + 1) + s * (s + 1)) / (2 * jj))


_ION = re.compile(r"^\s*([A-Za-z]{2})\s*(?:(?:\(\s*III\s*\))|(?:3\+)|(?:\+3)|(?:\^?3\+))?\s*$")


@lru_cache(maxsize=None)
def _ion(symbol: str) -> LanthanideIon:
    n_f = LANTHANIDES.index(symbol) + 1
    s, l, j = hund_ground_state(n_f)
    sig2, sig4, sig6, r2, r4, r6 = RADIAL_INTEGRALS[symbol]
    return LanthanideIon(symbol=symbol, n_f=n_f, S=float(s), L=int(l), J=float(j),
                         g_J=lande_g(s, l, j),
                         theta={k: stevens_factor(n_f, k) for k in CF_RANKS},
                         radial={2: r2, 4: r4, 6: r6}, sigma={2: sig2, 4: sig4, 6: sig6})


def lanthanide_ion(name) -> LanthanideIon:
    """The trivalent ion ``name``: "Dy3+", "Dy", "Dy(III)", "dy3+" (Ce..Yb), or an ion."""
    if isinstance(name, LanthanideIon):
        return name
    m = _ION.match(str(name))
    symbol = m.group(1).capitalize() if m else None
    if symbol not in LANTHANIDES:
        raise ValueError(f"unknown or unsupported ion {name!r}; supported: "
                         + ", ".join(f"{s}3+" for s in LANTHANIDES))
    return _ion(symbol)


__all__ = [
    "CF_RANKS", "G_ELECTRON", "LANTHANIDES", "RADIAL_INTEGRALS", "LanthanideIon",
    "angular_momentum", "ladder_operators", "m_values", "spherical_tensor_operators",
    "stevens_polynomial", "tesseral_scale", "legendre_factor", "ito_factor",
    "stevens_operator", "stevens_operator_stack", "cf_keys", "clebsch_gordan",
    "hund_ground_state", "stevens_factor", "lande_g", "lanthanide_ion",
]
