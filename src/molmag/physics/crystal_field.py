r"""Crystal field of a trivalent lanthanide in its ground J multiplet.

Hamiltonian and units
---------------------
Inside the ground multiplet ^(2S+1)L_J (basis ``|J M>``, M = -J..J, Condon-Shortley phases)

.. math::

    H_{CF} = \sum_{k=2,4,6} \sum_{q=-k}^{k} B_k^q\, O_k^q(\mathbf J)
    \qquad (\text{cm}^{-1}),

with the extended Stevens operators of :mod:`molmag.physics.stevens` (Rudowicz/EasySpin/
SINGLE_ANISO "ESO" convention; q > 0 cosine, q < 0 sine type).  The magnetic moment is
``mu = -g_J mu_B J``; Zeeman ``H_Z = -mu . B``.

Parameter conventions (``{"convention": ..., "values": {"k,q": value}}``, cm-1)
-------------------------------------------------------------------------------
``"stevens"``  B_k^q of H_CF above (ESO; the Stevens factors theta_k and <r^k> included).

``"wybourne"`` B^k_q of ``H = sum_kq B^k_q sum_i C^k_q(i)`` over the f electrons, with
  ``C^k_q = sqrt(4 pi/(2k+1)) Y_k^q`` (Condon-Shortley) and ``B^k_-q = (-1)^q conj(B^k_q)``;
  real labels ``"k,q"`` = Re B^k_q (q >= 0) and ``"k,-q"`` = Im B^k_q (q > 0).  Inside the
  multiplet ``sum_i C^k_q(i) = theta_k T^k_q(J)``, which gives

  .. math::

      B_k^0 = \theta_k \lambda_{k0} B^k_0,\quad
      B_k^{q} = (-1)^q \theta_k \lambda_{kq}\,\mathrm{Re}\,B^k_q,\quad
      B_k^{-q} = -(-1)^q \theta_k \lambda_{kq}\,\mathrm{Im}\,B^k_q,

  with ``lambda_k0 = s_k0`` and ``lambda_kq = 2 s_kq`` (q > 0; s of
  :func:`molmag.physics.stevens.tesseral_scale`): lambda = 1/2, sqrt6, sqrt6/2 for k = 2
  (the Rudowicz/Kassman factors in magnitude).  Conversions need the ion (theta_k).

``"ito"``      The real ITO parameters of OpenMolcas/ORCA SINGLE_ANISO (Chibotaru & Ungur,
  J. Chem. Phys. 137, 064112 (2012)), printed as "Hcf = SUM_{k,q} [B(k,q) O(k,q) + C(k,q)
  W(k,q)]" with ``O(k,q) = ((-1)^q Y(k,q) + Y(k,-q))/2`` and ``W(k,q) = -i((-1)^q Y(k,q) -
  Y(k,-q))/2``, where Y(k,q) are spherical tensor operators normalised so that
  ``Y(k,0) = O_k^0``.  Labels ``"k,q"`` = B(k,q) (q >= 0), ``"k,-q"`` = C(k,q) (q > 0).
  Then ``B_k^{+-q} = K_kq x [B(k,q) | C(k,q)]`` with K_kq of
  :func:`molmag.physics.stevens.ito_factor` (J-independent; K^2 is the "(K)^2" column of
  SINGLE_ANISO's ESO table).  The complex form ``H = sum A(k,q) Ŷ(k,q)`` with
  ``<J M1|Ŷ(k,q)|J M2> = <J M2 k q|J M1>/<J J k 0|J J>`` (SINGLE_ANISO's last table) is
  :func:`ito_complex_from_stevens`: ``A(k,0) = c_k B(k,0)``,
  ``A(k,q) = (-1)^q c_k (B - iC)/2``, ``A(k,-q) = c_k (B + iC)/2``, ``c_k = <J J|O_k^0|J J>``.
  Checked against the Ce3+ SINGLE_ANISO output in ../shared/data (tests).

Crystal-field parameters from charges
-------------------------------------
Point-charge electrostatic model (PCEM): ligand charges q_j (units of e) at R_j (Å, ion at
the origin) act on each f electron (charge -e) with ``V(r) = -sum_j q_j e^2/(4 pi eps0
|R_j - r|)``; the multipole expansion and the operator equivalents give

.. math::

    B_k^q = -(1-\sigma_k)\,\theta_k \langle r^k\rangle \frac{e^2}{4\pi\varepsilon_0}
            \,\epsilon_q s_{kq}^2 \sum_j q_j \frac{Z_{kq}(\hat R_j)}{R_j^{k+1}},

with ``Z_kq(n) = p_kq(n_z) Re[(n_x + i n_y)^q]`` (q >= 0) or ``p_k|q|(n_z) Im[(n_x + i
n_y)^|q|]`` (q < 0), ``epsilon_0 = 1``, ``epsilon_q = 2`` otherwise; atomic units inside
(<r^k> in a0^k, R in a0, e^2/(4 pi eps0 a0) = 1 Hartree), result in cm-1.  ``sigma_k`` are
Sternheimer shielding factors, applied only when ``shielding=True`` (off by default).  E.g.
for two charges q on the z axis at distance R, B_2^0 = -theta_2 <r^2> q / R^3 (a.u.).

Radial effective charge (REC) model, Baldoví, Borrás-Almenar, Clemente-Juan, Coronado &
Gaita-Ariño, Dalton Trans. 41, 13705 (2012) (SIMPRE: J. Comput. Chem. 34, 1961 (2013)): each
donor is replaced by an effective charge Z_i placed on the Ln-donor line at the distance
``R_i - D_r,i`` (moved towards the ion by D_r), then the PCEM above is applied.

Default charges (:data:`FORMAL_CHARGES`, :data:`REC_PARAMETERS`) and their calibration
-------------------------------------------------------------------------------------
Donor types are assigned from the bonded neighbours of each donor atom
(:func:`classify_donor`).  The ``"formal"`` scheme uses the formal ionic charge of anionic
donors (alkoxide/aryloxide/hydroxide O: -1, carboxylate O: -1/2, halide: -1) and a small
negative charge (-0.2 e) for neutral donors (water, ether/carbonyl O, N), standing for the
lone pair of a neutral ligand (a choice of this project, not a literature value).  As an
unscreened point-charge model it overestimates the splitting (E1 ~ 620-770 cm-1, total
~2200-2600 cm-1 for the cases below); with Sternheimer shielding (``shielding=True``, the
(1 - sigma_k) of Edvardsson & Klintenberg) it drops to E1 ~ 340-420 cm-1.

The ``"rec"`` scheme (default) follows the REC form above with (Z_eff, D_r) = (0.50 e,
0.30 Å) for anionic O donors and (0.20 e, 0.40 Å) for water and other neutral donors.  These
numbers are **not** from a published table: they were chosen in
``scripts/calibrate_crystal_field.py`` (a grid search, weighted to E1 ~ 600/490/400 cm-1 for
the three ideal geometries and a total splitting ~1200 cm-1, ground doublet |+-15/2>) so that
pentagonal-bipyramidal Dy(H2O)5L2 complexes (five waters at 2.35-2.45 Å, anionic O donors at
2.10-2.20 Å: the family of the genetic-algorithm study of Frangoulis et al., whose CASSCF first
excited Kramers doublets reach ~615 cm-1 for the best designs, and of GAUSS-II) get first
excited doublets of a few hundred cm-1 and a |+-15/2> ground doublet.  Calibration table
(Dy(H2O)5(OMe)2 with H atoms; energies cm-1; "rec", no shielding):

====================================  =======  ======  ======  ========  ========  ======
case (Dy-O_ax / Dy-O_w, Å)            O-Dy-O   E1      E7      g_x       g_y       g_z
====================================  =======  ======  ======  ========  ========  ======
ideal D5h 2.10 / 2.35                 180      517     1532    0         0         20.012
ideal D5h 2.15 / 2.40                 180      472     1407    0         0         20.012
ideal D5h 2.20 / 2.45                 180      431     1296    0         0         20.012
distorted 2.12+2.17 / 2.34-2.46       172      474     1441    1.5e-7    1.7e-7    20.011
distorted 2.15+2.22 / 2.33-2.48       165      423     1310    6.6e-7    7.2e-7    20.011
strongly bent 2.16+2.20 / 2.30-2.50   155      398     1262    1.1e-6    1.2e-6    20.011
====================================  =======  ======  ======  ========  ========  ======

(``python scripts/calibrate_crystal_field.py`` reprints it, with the formal schemes.)  The
ground doublet is |+-15/2> to better than 1e-4 in <|M_J|> in every case, so g_z = 2 g_J 15/2
= 20.01 (g_J with g_e = 2.0023).  CASSCF gives g_z ~ 19.6-19.9 for this family; the
difference comes from J-mixing and covalency, which a crystal field inside the ground
multiplet cannot describe, so g_z below ~20.0 should not be expected from this model.  Treat
absolute numbers from any point-charge model as semi-quantitative and refit the REC values
for other ligand families (halide and thiolate donors reuse the anionic-O set untested).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import covalent_radii
from scipy import constants as _c

from molmag.physics import ase_properties  # noqa: F401  (registers property names)
from molmag.physics.elements import bonded_neighbours, metal_indices
from molmag.physics.stevens import (
    CF_RANKS,
    LANTHANIDES,
    LanthanideIon,
    angular_momentum,
    cf_keys,
    ito_factor,
    lanthanide_ion,
    m_values,
    stevens_operator,
    stevens_operator_stack,
    stevens_polynomial,
    tesseral_scale,
)
from molmag.physics.units import convert

CONVENTIONS = ("stevens", "wybourne", "ito")
HARTREE_CM = convert(1.0, "Hartree", "cm-1")
ANGSTROM_BOHR = 1e-10 / _c.physical_constants["Bohr radius"][0]
#: Lanthanide atomic numbers Ce..Yb (58..70).
LANTHANIDE_NUMBERS = frozenset(range(58, 71))


# ======================================================================================
# parameter sets: parsing, vectors, conversions
# ======================================================================================
_KQ = re.compile(r"^\s*\(?\s*(-?\d+)\s*,\s*(-?\d+)\s*\)?\s*$")


def parse_kq(key) -> tuple[int, int]:
    """'k,q' (or '(k, q)', or a tuple) -> (k, q) with even 2 <= k <= 6 and |q| <= k."""
    if isinstance(key, tuple) and len(key) == 2:
        k, q = key
    else:
        m = _KQ.match(str(key))
        if not m:
            raise ValueError(f"crystal-field key {key!r} is not of the form 'k,q'")
        k, q = int(m.group(1)), int(m.group(2))
    if k not in CF_RANKS:
        raise ValueError(f"rank k={k} in {key!r}: crystal-field ranks are 2, 4, 6")
    if abs(q) > k:
        raise ValueError(f"component q={q} in {key!r} out of range (|q| <= k = {k})")
    return int(k), int(q)


def cf_parameter_set(values: dict, convention: str = "stevens") -> dict:
    """A validated label ``{"convention": ..., "values": {"k,q": float}}`` (cm-1)."""
    conv = str(convention).strip().lower()
    if conv not in CONVENTIONS:
        raise ValueError(f"unknown crystal-field convention {convention!r}; "
                         f"use one of {', '.join(CONVENTIONS)}")
    out = {}
    for key, v in values.items():
        k, q = parse_kq(key)
        fv = float(v)
        if not math.isfinite(fv):
            raise ValueError(f"crystal-field parameter {k},{q} is not finite")
        out[f"{k},{q}"] = fv
    return {"convention": conv, "values": out}


def _as_set(params) -> dict:
    """A label dict as it is, or a plain {"k,q": B} dict taken as Stevens parameters."""
    if isinstance(params, dict) and "convention" in params and "values" in params:
        return cf_parameter_set(params["values"], params["convention"])
    return cf_parameter_set(params, "stevens")


def vector_from_values(values: dict, ranks=CF_RANKS) -> np.ndarray:
    """Parameters {"k,q": B} -> vector ordered as :func:`molmag.physics.stevens.cf_keys`."""
    keys = cf_keys(ranks)
    index = {kq: i for i, kq in enumerate(keys)}
    vec = np.zeros(len(keys))
    for key, v in values.items():
        kq = parse_kq(key)
        if kq not in index:
            raise ValueError(f"parameter {key} is outside the ranks {tuple(ranks)}")
        vec[index[kq]] = float(v)
    return vec


def values_from_vector(vec, ranks=CF_RANKS, *, drop_zeros: bool = False) -> dict:
    """Inverse of :func:`vector_from_values` (floats, keys 'k,q')."""
    vec = np.asarray(vec, dtype=float)
    return {f"{k},{q}": float(v) + 0.0 for (k, q), v in zip(cf_keys(ranks), vec)
            if not (drop_zeros and v == 0.0)}


def stevens_from_ito(values: dict) -> dict:
    """SINGLE_ANISO real ITO (B(k,q), C(k,q) as 'k,q', 'k,-q') -> ESO B_k^q (cm-1)."""
    out = {}
    for key, v in values.items():
        k, q = parse_kq(key)
        out[f"{k},{q}"] = ito_factor(k, q) * float(v)
    return out


def ito_from_stevens(values: dict) -> dict:
    """ESO B_k^q -> SINGLE_ANISO real ITO parameters (inverse of :func:`stevens_from_ito`)."""
    out = {}
    for key, v in values.items():
        k, q = parse_kq(key)
        out[f"{k},{q}"] = float(v) / ito_factor(k, q)
    return out


def _wybourne_factor(ion: LanthanideIon, k: int, q: int) -> float:
    """f with B_k^q(Stevens) = f * (Re or Im) B^k_|q| (Wybourne); see module docstring."""
    lam = tesseral_scale(k, q) * (1.0 if q == 0 else 2.0)
    sign = (-1) ** abs(q) * (-1.0 if q < 0 else 1.0)
    return sign * ion.theta[k] * lam


def stevens_from_wybourne(values: dict, ion) -> dict:
    """Wybourne B^k_q (Re for 'k,q', Im for 'k,-q') -> ESO B_k^q of the ion's ground
    multiplet (cm-1).  Ranks whose Stevens factor vanishes (k = 6 for Ce3+, Sm3+) give 0."""
    ion = lanthanide_ion(ion)
    out = {}
    for key, v in values.items():
        k, q = parse_kq(key)
        out[f"{k},{q}"] = _wybourne_factor(ion, k, q) * float(v)
    return out


def wybourne_from_stevens(values: dict, ion) -> dict:
    """ESO B_k^q -> Wybourne B^k_q (inverse of :func:`stevens_from_wybourne`).  Raises when a
    non-zero B_k^q has theta_k = 0 (no Wybourne parameter produces it)."""
    ion = lanthanide_ion(ion)
    out = {}
    for key, v in values.items():
        k, q = parse_kq(key)
        f = _wybourne_factor(ion, k, q)
        if f == 0.0:
            if float(v) != 0.0:
                raise ValueError(f"{ion.name} has theta_{k} = 0: the Stevens parameter {k},{q} "
                                 "cannot come from a Wybourne parameter")
            continue
        out[f"{k},{q}"] = float(v) / f
    return out


def convert_cf_parameters(params, to: str, ion=None) -> dict:
    """Convert a parameter label ``{"convention", "values"}`` to convention ``to``.

    stevens <-> ito needs nothing else; anything involving "wybourne" needs the ``ion``
    (its Stevens factors).  Returns a new label dict."""
    src = _as_set(params)
    to = str(to).strip().lower()
    if to not in CONVENTIONS:
        raise ValueError(f"unknown crystal-field convention {to!r}; "
                         f"use one of {', '.join(CONVENTIONS)}")
    conv, vals = src["convention"], src["values"]
    if conv == to:
        return src
    if "wybourne" in (conv, to) and ion is None:
        raise ValueError("converting to or from Wybourne parameters needs the ion (theta_k)")
    stevens = {"stevens": lambda v: v, "ito": stevens_from_ito,
               "wybourne": lambda v: stevens_from_wybourne(v, ion)}[conv](vals)
    result = {"stevens": lambda v: v, "ito": ito_from_stevens,
              "wybourne": lambda v: wybourne_from_stevens(v, ion)}[to](stevens)
    return cf_parameter_set(result, to)


def ito_complex_from_stevens(values: dict, j) -> dict:
    """ESO B_k^q -> complex A(k,q) of ``H = sum_kq A(k,q) Ŷ(k,q)`` (SINGLE_ANISO's complex ITO
    table, J-dependent through c_k = <J J|O_k^0|J J>).  Keys (k, q) tuples, q = -k..k."""
    ito = ito_from_stevens(values)
    ks = sorted({parse_kq(key)[0] for key in ito})
    out: dict[tuple[int, int], complex] = {}
    for k in ks:
        c_k = stevens_operator(j, k, 0)[-1, -1].real
        b0 = ito.get(f"{k},0", 0.0)
        out[(k, 0)] = complex(c_k * b0)
        for q in range(1, k + 1):
            b, c = ito.get(f"{k},{q}", 0.0), ito.get(f"{k},{-q}", 0.0)
            out[(k, q)] = (-1) ** q * c_k * (b - 1j * c) / 2
            out[(k, -q)] = c_k * (b + 1j * c) / 2
    return out


def stevens_from_ito_complex(a: dict, j, *, tol: float = 1e-6) -> dict:
    """Complex ITO A(k,q) (keys (k, q) or 'k,q') -> ESO B_k^q.  Raises when the A(k,q) are
    not those of a Hermitian Hamiltonian (A(k,-q) = (-1)^q conj A(k,q)) to ``tol`` relative."""
    parsed = {parse_kq(key): complex(v) for key, v in a.items()}
    scale = max([abs(v) for v in parsed.values()] + [1e-300])
    ito = {}
    for k in sorted({k for k, _ in parsed}):
        c_k = stevens_operator(j, k, 0)[-1, -1].real
        if c_k == 0.0:
            raise ValueError(f"rank {k} vanishes for J = {j}")
        a0 = parsed.get((k, 0), 0j)
        if abs(a0.imag) > tol * scale:
            raise ValueError(f"A({k},0) must be real for a Hermitian Hamiltonian")
        ito[f"{k},0"] = a0.real / c_k
        for q in range(1, k + 1):
            ap, am = parsed.get((k, q), 0j), parsed.get((k, -q), 0j)
            if abs(am - (-1) ** q * np.conj(ap)) > tol * scale:
                raise ValueError(f"A({k},{-q}) != (-1)^q conj A({k},{q}): not Hermitian")
            bc = 2 * am / c_k           # = B + iC
            ito[f"{k},{q}"], ito[f"{k},{-q}"] = bc.real, bc.imag
    return stevens_from_ito(ito)


# ======================================================================================
# point charges -> Stevens parameters (PCEM), vectorised
# ======================================================================================
@lru_cache(maxsize=None)
def _tesseral_tables(ranks: tuple[int, ...]):
    keys = cf_keys(ranks)
    kmax = max(ranks)
    poly = np.zeros((len(keys), kmax + 1))
    qabs = np.array([abs(q) for _, q in keys])
    sine = np.array([q < 0 for _, q in keys])
    ks = np.array([k for k, _ in keys])
    weight = np.empty(len(keys))
    for i, (k, q) in enumerate(keys):
        coeffs, _ = stevens_polynomial(k, q)
        poly[i, :len(coeffs)] = coeffs
        weight[i] = (1.0 if q == 0 else 2.0) * tesseral_scale(k, q) ** 2
    return ks, qabs, sine, poly, weight


def _powers(x: np.ndarray, kmax: int) -> np.ndarray:
    """x^0..x^kmax along a new last axis, by repeated multiplication."""
    out = np.empty(x.shape + (kmax + 1,), dtype=x.dtype)
    out[..., 0] = 1.0
    for i in range(1, kmax + 1):
        out[..., i] = out[..., i - 1] * x
    return out


def tesseral_functions(unit_vectors, ranks=CF_RANKS) -> np.ndarray:
    """Z_kq(n) = p_kq(n_z) Re or Im[(n_x + i n_y)^|q|] for unit vectors (..., 3); shape
    (..., nkq) in :func:`cf_keys` order.  (The Stevens tesseral polynomials, e.g.
    Z_20 = 3z^2 - 1, Z_22 = x^2 - y^2, Z_4,-4 = 4xy(x^2 - y^2).)"""
    n = np.asarray(unit_vectors, dtype=float)
    ks, qabs, sine, poly, _ = _tesseral_tables(tuple(ranks))
    kmax = poly.shape[1] - 1
    pz = _powers(n[..., 2], kmax) @ poly.T                            # (..., nkq)
    w = _powers(n[..., 0] + 1j * n[..., 1], kmax)                      # (..., kmax+1)
    re_im = np.concatenate([w.real, w.imag], axis=-1)                  # (..., 2 kmax + 2)
    return pz * re_im[..., qabs + sine * (kmax + 1)]


def pcem_parameters(ion, positions, charges, *, shielding: bool = False,
                    ranks=CF_RANKS) -> np.ndarray:
    """Stevens B_k^q (cm-1) of point charges (module docstring, PCEM equation).

    positions : (..., n, 3) Å relative to the ion (ion at the origin); charges : (..., n) or
    (n,) in e (a ligand anion has q < 0).  Returns (..., nkq) in :func:`cf_keys` order.
    ``shielding`` multiplies each rank by (1 - sigma_k) (Sternheimer)."""
    ion = lanthanide_ion(ion)
    ranks = tuple(ranks)
    pos = np.asarray(positions, dtype=float) * ANGSTROM_BOHR
    q = np.broadcast_to(np.asarray(charges, dtype=float), pos.shape[:-1])
    r = np.linalg.norm(pos, axis=-1)
    if np.any(r < 1e-6):
        raise ValueError("a point charge sits on the ion (distance 0)")
    ks, _, _, _, weight = _tesseral_tables(ranks)
    z = tesseral_functions(pos / r[..., None], ranks)                 # (..., n, nkq)
    rank_index = np.searchsorted(np.array(ranks), ks)
    qr = np.stack([q * r ** (-(k + 1.0)) for k in ranks], axis=-1)    # (..., n, nranks)
    lattice = np.einsum("...nk,...nk->...k", qr[..., rank_index], z)
    theta = np.array([ion.theta[k] for k in ks])
    rk = np.array([ion.radial[k] for k in ks])
    shield = np.array([1.0 - ion.sigma[k] for k in ks]) if shielding else 1.0
    return -HARTREE_CM * shield * theta * rk * weight * lattice


# ======================================================================================
# donors, charges, REC
# ======================================================================================
#: Formal point charges (e) per donor type for charges="formal" (see module docstring).
FORMAL_CHARGES: dict[str, float] = {
    "O_water": -0.2, "O_neutral": -0.2, "N_neutral": -0.2, "S_neutral": -0.2,
    "C_donor": -0.2, "other": -0.2,
    "O_hydroxide": -1.0, "O_alkoxide": -1.0, "O_bare": -1.0, "O_carboxylate": -0.5,
    "S_thiolate": -1.0, "F": -1.0, "Cl": -1.0, "Br": -1.0, "I": -1.0,
}

#: REC parameters (Z_eff, D_r) per donor type for charges="rec": the donor becomes a point
#: charge -Z_eff (e; Z_eff > 0 for the negative end of a ligand) moved D_r (Å) towards the
#: ion.  Model: Baldoví et al., Dalton Trans. 41, 13705 (2012); values calibrated in this
#: project on Dy(H2O)5L2 (module docstring, scripts/calibrate_crystal_field.py), not a
#: published table.
#: The anionic O donors (alkoxide/aryloxide, hydroxide, bare O) share one set, carboxylate
#: O has half the charge; neutral donors share the water set; halides and thiolate reuse
#: the anionic-O set (uncalibrated: no reference data in this project).
REC_PARAMETERS: dict[str, tuple[float, float]] = {
    "O_alkoxide": (0.50, 0.30), "O_hydroxide": (0.50, 0.30), "O_bare": (0.50, 0.30),
    "O_carboxylate": (0.25, 0.30),
    "O_water": (0.20, 0.40), "O_neutral": (0.20, 0.40), "N_neutral": (0.20, 0.40),
    "S_neutral": (0.20, 0.40), "C_donor": (0.20, 0.40), "other": (0.20, 0.40),
    "S_thiolate": (0.50, 0.30), "F": (0.50, 0.30), "Cl": (0.50, 0.30), "Br": (0.50, 0.30),
    "I": (0.50, 0.30),
}

#: Donor atoms: within ``DONOR_SCALE x (r_cov(Ln) + r_cov(X))`` (ASE covalent radii) of the
#: lanthanide; hydrogen is never a donor.
DONOR_SCALE = 1.15
#: Bonds between ligand atoms: d < BOND_SCALE x (r_cov(a) + r_cov(b)).
BOND_SCALE = 1.2
#: C-O bonds shorter than this (Å) are carbonyl (neutral C=O donor); longer ones are C-O(-).
CARBONYL_MAX_CO = 1.28


def lanthanide_index(atoms: Atoms) -> int:
    """Index of the single lanthanide (Ce..Yb) atom; ValueError if none or several."""
    idx = [i for i in metal_indices(atoms) if atoms.numbers[i] in LANTHANIDE_NUMBERS]
    if not idx:
        raise ValueError(f"{atoms.get_chemical_formula() or 'empty structure'}: no lanthanide "
                         "(Ce..Yb) atom; the crystal-field model needs one")
    if len(idx) > 1:
        names = ", ".join(f"{atoms[i].symbol}{i}" for i in idx)
        raise ValueError(f"{atoms.get_chemical_formula()} has several lanthanides ({names}); "
                         "give metal_index")
    return idx[0]


def find_donors(atoms: Atoms, ln: int, cutoff: float | None = None) -> list[int]:
    """Non-hydrogen atoms bonded to atom ``ln``: distance < ``cutoff`` (Å) if given, else
    < DONOR_SCALE x (r_cov(Ln) + r_cov(X)).  Sorted by distance."""
    d = atoms.get_distances(ln, range(len(atoms)), mic=bool(atoms.pbc.any()))
    out = []
    for i in range(len(atoms)):
        if i == ln or atoms.numbers[i] == 1:
            continue
        lim = cutoff if cutoff is not None else DONOR_SCALE * (
            covalent_radii[atoms.numbers[ln]] + covalent_radii[atoms.numbers[i]])
        if d[i] < lim:
            out.append(i)
    return sorted(out, key=lambda i: d[i])


def classify_donor(atoms: Atoms, ln: int, i: int) -> str:
    """Donor type of atom ``i`` bonded to the lanthanide ``ln`` (keys of FORMAL_CHARGES):

    O: 2 H -> O_water; 1 H only -> O_hydroxide; none -> O_bare; one C neighbour with
    C-O >= 1.28 Å -> O_carboxylate if that C carries another terminal O, else O_alkoxide
    (alkoxide/aryloxide); one Si/Ge/Sn neighbour -> O_alkoxide; anything else (ether,
    alcohol, C=O, P=O, S=O, N-O) -> O_neutral.  N -> N_neutral (amide N- is not detected:
    pass per-atom charges for it).  Halogen without neighbours -> halide; S with one
    non-H neighbour -> S_thiolate, else S_neutral; C -> C_donor; others -> other."""
    sym = atoms[i].symbol
    nb = bonded_neighbours(atoms, i, {ln}, factor=BOND_SCALE)
    heavy = [j for j in nb if atoms.numbers[j] != 1]
    nh = len(nb) - len(heavy)
    if sym == "O":
        if not heavy:
            return {2: "O_water", 1: "O_hydroxide", 0: "O_bare"}.get(nh, "O_neutral")
        if nh == 0 and len(heavy) == 1:
            x = heavy[0]
            xs = atoms[x].symbol
            if xs in ("Si", "Ge", "Sn"):
                return "O_alkoxide"
            if xs == "C" and atoms.get_distance(i, x, mic=bool(atoms.pbc.any())) >= CARBONYL_MAX_CO:
                for o in bonded_neighbours(atoms, x, {ln, i}, factor=BOND_SCALE):
                    if atoms[o].symbol == "O" \
                            and bonded_neighbours(atoms, o, {ln}, factor=BOND_SCALE) == [x]:
                        return "O_carboxylate"
                return "O_alkoxide"
            if xs == "C":
                # short C=O: a carbonyl unless the C also carries a terminal O (carboxylate)
                for o in bonded_neighbours(atoms, x, {ln, i}, factor=BOND_SCALE):
                    if atoms[o].symbol == "O" \
                            and bonded_neighbours(atoms, o, {ln}, factor=BOND_SCALE) == [x]:
                        return "O_carboxylate"
        return "O_neutral"
    if sym == "N":
        return "N_neutral"
    if sym in ("F", "Cl", "Br", "I"):
        return sym if not heavy and nh == 0 else "other"
    if sym == "S":
        return "S_thiolate" if len(heavy) + nh == 1 else "S_neutral"
    if sym == "C":
        return "C_donor"
    return "other"


@dataclass(frozen=True)
class PointChargeModel:
    """Point charges around a lanthanide (positions in Å relative to the ion).

    ``positions``/``charges`` are what the PCEM uses (REC-displaced for scheme "rec");
    ``donors`` are atom indices (None for bare point charges), ``types`` their donor types,
    ``distances`` the true ion-donor distances (Å)."""

    positions: np.ndarray
    charges: np.ndarray
    scheme: str
    donors: tuple = ()
    types: tuple = ()
    distances: np.ndarray = field(default_factory=lambda: np.zeros(0))
    displacements: np.ndarray = field(default_factory=lambda: np.zeros(0))


def point_charge_model(atoms: Atoms, *, charges="rec", metal_index: int | None = None,
                       donors=None, cutoff: float | None = None, include: str = "donors",
                       formal_charges: dict | None = None,
                       rec_parameters: dict | None = None) -> PointChargeModel:
    """The point charges of a lanthanide complex.

    charges : "formal" (FORMAL_CHARGES by donor type), "rec" (REC_PARAMETERS: charge Z and
        shift D_r towards the ion), or a per-atom array (len(atoms), e.g. xTB charges in e),
        used at the true positions.
    include : with a per-atom array, "donors" (default) or "all" atoms except the ion.
    donors : explicit donor indices (default: :func:`find_donors` with ``cutoff``).
    formal_charges, rec_parameters : overrides of the default tables, by donor type."""
    ln = lanthanide_index(atoms) if metal_index is None else int(metal_index)
    if not 0 <= ln < len(atoms):
        raise ValueError(f"metal_index {ln} out of range for {len(atoms)} atoms")
    origin = atoms.positions[ln]
    donor_idx = find_donors(atoms, ln, cutoff) if donors is None else [int(i) for i in donors]
    if any(i == ln or not 0 <= i < len(atoms) for i in donor_idx):
        raise ValueError("donor indices must be atoms other than the ion")
    if isinstance(charges, str):
        scheme = charges.strip().lower()
        if scheme not in ("formal", "rec"):
            raise ValueError(f"charges must be 'formal', 'rec' or a per-atom array, "
                             f"got {charges!r}")
        if not donor_idx:
            raise ValueError(f"{atoms.get_chemical_formula()}: no donor atoms around "
                             f"{atoms[ln].symbol}{ln} (cutoff {cutoff or 'covalent'})")
        types = tuple(classify_donor(atoms, ln, i) for i in donor_idx)
        vec = atoms.positions[donor_idx] - origin
        dist = np.linalg.norm(vec, axis=1)
        if scheme == "formal":
            table = {**FORMAL_CHARGES, **(formal_charges or {})}
            q = np.array([table[t] for t in types])
            shift = np.zeros(len(types))
        else:
            table = {**REC_PARAMETERS, **(rec_parameters or {})}
            q = -np.array([table[t][0] for t in types])   # Z_eff > 0 is an anionic charge
            shift = np.array([table[t][1] for t in types])
            if np.any(shift >= dist):
                raise ValueError("REC displacement D_r reaches the ion for a donor closer than D_r")
        pos = vec * ((dist - shift) / dist)[:, None]
        return PointChargeModel(pos, q, scheme, tuple(donor_idx), types, dist, shift)
    arr = np.asarray(charges, dtype=float).reshape(-1)
    if arr.shape != (len(atoms),):
        raise ValueError(f"per-atom charges: need {len(atoms)} values, got {arr.size}")
    if include not in ("donors", "all"):
        raise ValueError("include must be 'donors' or 'all'")
    idx = donor_idx if include == "donors" else [i for i in range(len(atoms)) if i != ln]
    if not idx:
        raise ValueError("no point charges around the ion")
    vec = atoms.positions[idx] - origin
    return PointChargeModel(vec, arr[idx], "atomic charges", tuple(idx),
                            tuple(classify_donor(atoms, ln, i) for i in idx),
                            np.linalg.norm(vec, axis=1), np.zeros(len(idx)))


# ======================================================================================
# diagonalisation
# ======================================================================================
@dataclass(frozen=True)
class IonModel:
    """Per-ion precomputed matrices: Stevens operators (nkq, n, n) in :func:`cf_keys` order
    and the magnetic moment mu = -g_J J (3, n, n), in mu_B."""

    ion: LanthanideIon
    ranks: tuple
    operators: np.ndarray
    moment: np.ndarray
    j_ops: np.ndarray


@lru_cache(maxsize=None)
def _ion_model(symbol: str, ranks: tuple[int, ...]) -> IonModel:
    ion = lanthanide_ion(symbol)
    if not ion.has_crystal_field:
        raise ValueError(f"{ion.name} ({ion.term}) has no crystal-field splitting in its "
                         "ground multiplet (J = 0 or L = 0)")
    ranks = tuple(k for k in ranks if k <= 2 * ion.J)
    ops = stevens_operator_stack(ion.J, ranks)
    jv = np.stack(angular_momentum(ion.J))
    jv.setflags(write=False)
    mu = -ion.g_J * jv
    mu.setflags(write=False)
    return IonModel(ion, ranks, ops, mu, jv)


def ion_model(ion, ranks=CF_RANKS) -> IonModel:
    """Cached :class:`IonModel` (operators built once per ion).  Ranks above 2J are dropped
    (their operators vanish)."""
    return _ion_model(lanthanide_ion(ion).symbol, tuple(ranks))


def _parameter_vector(model: IonModel, parameters) -> np.ndarray:
    if isinstance(parameters, dict):
        label = _as_set(parameters)
        vals = convert_cf_parameters(label, "stevens", model.ion)["values"]
        for key, v in vals.items():
            k, _ = parse_kq(key)
            if k not in model.ranks and v != 0.0:
                raise ValueError(f"rank k={k} exceeds 2J = {int(2 * model.ion.J)} of "
                                 f"{model.ion.name}: O_{k}^q vanishes in this multiplet")
        vals = {k: v for k, v in vals.items() if parse_kq(k)[0] in model.ranks}
        return vector_from_values(vals, model.ranks)
    vec = np.asarray(parameters, dtype=float)
    nkq = len(model.operators)
    if vec.shape[-1] == len(cf_keys(CF_RANKS)) and nkq != vec.shape[-1]:
        keep = [i for i, (k, _) in enumerate(cf_keys(CF_RANKS)) if k in model.ranks]
        if np.any(np.delete(vec, keep, axis=-1) != 0.0):
            raise ValueError(f"ranks above 2J = {int(2 * model.ion.J)} must be zero "
                             f"for {model.ion.name}")
        vec = vec[..., keep]
    if vec.shape[-1] != nkq:
        raise ValueError(f"expected {nkq} Stevens parameters (ranks {model.ranks}), "
                         f"got {vec.shape[-1]}")
    return vec


def hamiltonian(ion, parameters) -> np.ndarray:
    """H_CF (cm-1), (..., 2J+1, 2J+1) complex, from Stevens vectors (..., nkq) or a label."""
    model = ion_model(ion)
    vec = _parameter_vector(model, parameters)
    return np.tensordot(vec, model.operators, axes=([-1], [0]))


def solve(ion, parameters, *, doublet_tol: float = 1.0) -> "CrystalFieldLevels":
    """Diagonalise H_CF for one parameter set or a batch.

    parameters : a label dict (any convention; Wybourne uses the ion), a {"k,q": B} dict
        (Stevens), or Stevens vectors (..., nkq) in :func:`cf_keys` order (cm-1).
    doublet_tol : for non-Kramers ions, states closer than this (cm-1) form a quasi-doublet.
    Batched: one ``numpy.linalg.eigh`` call for all structures."""
    model = ion_model(ion)
    vec = _parameter_vector(model, parameters)
    h = np.tensordot(vec, model.operators, axes=([-1], [0]))
    w, v = np.linalg.eigh(h)
    return CrystalFieldLevels(model, vec, w, v, doublet_tol)


def _doublet_moment_blocks(model: IonModel, vectors: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """2x2 blocks <i|mu_a|j> of mu = -g_J J inside each pair of columns (2d, 2d+1) of
    ``vectors`` (..., n, 2nd); returns (..., nd, 3, 2, 2).  Uses the sparsity of J (J_z
    diagonal, J_+ one off-diagonal) instead of dense products, in chunks of structures."""
    n = vectors.shape[-2]
    nd = vectors.shape[-1] // 2
    lead = vectors.shape[:-2]
    v = vectors.reshape((-1, n, nd, 2))
    m = m_values(model.ion.J)
    j = model.ion.J
    cplus = np.sqrt(j * (j + 1) - m[:-1] * (m[:-1] + 1))[:, None]   # <M+1|J+|M>
    out = np.empty((v.shape[0], nd, 3, 2, 2), dtype=complex)
    for s in range(0, v.shape[0], chunk):
        vv = v[s:s + chunk].transpose(0, 2, 1, 3)                      # (b, nd, n, 2)
        cvt = np.conjugate(np.swapaxes(vv, -1, -2))                     # (b, nd, 2, n)
        jz = cvt @ (m[:, None] * vv)
        jp = cvt[..., 1:] @ (cplus * vv[..., :-1, :])
        jm = np.swapaxes(jp, -1, -2).conj()
        out[s:s + chunk, :, 0] = 0.5 * (jp + jm)
        out[s:s + chunk, :, 1] = -0.5j * (jp - jm)
        out[s:s + chunk, :, 2] = jz
    out *= -model.ion.g_J
    return out.reshape(lead + (nd, 3, 2, 2))


class CrystalFieldLevels:
    """Eigenstates of H_CF, for one structure or a batch (leading axes ``batch_shape``).

    Attributes (cm-1, ground state = 0):
      energies (..., n); vectors (..., n, n) columns in the |J M> basis (M = -J..J);
      kd_energies (..., nd) Kramers-doublet (or quasi-doublet) energies, ground = 0;
      g_values (..., nd, 3) principal g of each doublet, ascending; g_axes (..., nd, 3, 3)
      principal axes as columns (laboratory frame); easy_axis (..., 3) of the ground doublet.

    g of a doublet (pseudo-spin 1/2): with M_a the 2x2 matrix of mu_a = -g_J J_a (mu_B) in
    the doublet and ``mu_a = -sum_c g_ac S_c``, ``g_ac = -Tr(M_a sigma_c)`` and
    ``G = g g^T = 2 Re Tr(M_a M_b)`` (the relation used for SINGLE_ANISO data); principal g =
    singular values of g (= sqrt of the eigenvalues of G, accurate also for g ~ 0), axes =
    the eigenvectors of G (left singular vectors of g).  Kramers ions:
    states (2i, 2i+1) form doublet i.  Non-Kramers ions: consecutive states closer than
    ``doublet_tol`` form quasi-doublets (singlets are skipped in kd_energies/g), computed
    per structure (index a batch first)."""

    def __init__(self, model: IonModel, parameters, eigenvalues, eigenvectors, doublet_tol=1.0):
        self.model = model
        self.ion = model.ion
        self.parameters = parameters
        self._w = eigenvalues
        self.vectors = eigenvectors
        self.doublet_tol = float(doublet_tol)

    # -- basic --------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple:
        return self._w.shape[:-1]

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("a single structure has no length")
        return self.batch_shape[0]

    def __getitem__(self, i) -> "CrystalFieldLevels":
        if not self.batch_shape:
            raise TypeError("not a batch")
        return CrystalFieldLevels(self.model, self.parameters[i], self._w[i], self.vectors[i],
                                  self.doublet_tol)

    @cached_property
    def energies(self) -> np.ndarray:
        return self._w - self._w[..., :1]

    @cached_property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """State indices of each (quasi-)doublet."""
        n = self.ion.dim
        if self.ion.kramers:
            return tuple((2 * i, 2 * i + 1) for i in range(n // 2))
        if self.batch_shape:
            raise ValueError("quasi-doublets of non-Kramers ions are found per structure; "
                             "index the batch first")
        e = self.energies
        out, i = [], 0
        while i < n - 1:
            if e[i + 1] - e[i] < self.doublet_tol:
                out.append((i, i + 1))
                i += 2
            else:
                i += 1
        return tuple(out)

    @cached_property
    def kd_energies(self) -> np.ndarray:
        idx = np.array(self.groups, dtype=int).reshape(-1, 2)
        e = self._w[..., idx].mean(axis=-1)
        if self.ion.kramers:
            return e - e[..., :1]
        return e - self._w[..., :1]

    @cached_property
    def _doublet_g(self) -> tuple[np.ndarray, np.ndarray]:
        idx = np.array(self.groups, dtype=int).reshape(-1, 2)
        if idx.size == 0:
            shape = self.batch_shape + (0,)
            return np.zeros(shape + (3,)), np.zeros(shape + (3, 3))
        blocks = _doublet_moment_blocks(self.model, self.vectors[..., :, idx.reshape(-1)])
        # pseudo-spin g matrix g_ac = -Tr(M_a sigma_c): the doublet's states are a pseudo-spin
        # basis up to a U(2) change, which only rotates g by an SO(3) matrix on the right
        m01 = blocks[..., 0, 1]
        g = -np.stack([2.0 * m01.real, -2.0 * m01.imag,
                       (blocks[..., 0, 0] - blocks[..., 1, 1]).real], axis=-1)
        u, sv, _ = np.linalg.svd(g)                      # g g^T = u diag(sv^2) u^T
        return sv[..., ::-1].copy(), u[..., ::-1].copy()

    @property
    def g_values(self) -> np.ndarray:
        return self._doublet_g[0]

    @property
    def g_axes(self) -> np.ndarray:
        return self._doublet_g[1]

    @cached_property
    def easy_axis(self) -> np.ndarray:
        """Unit vector along the largest g of the ground doublet; sign fixed so that its
        largest-magnitude Cartesian component is positive."""
        if self.g_axes.shape[-3] == 0:
            raise ValueError(f"{self.ion.name}: no (quasi-)doublet to define an easy axis")
        a = self.g_axes[..., 0, :, 2]
        i = np.argmax(np.abs(a), axis=-1)
        s = np.sign(np.take_along_axis(a, i[..., None], axis=-1))
        return a * np.where(s == 0, 1.0, s)

    # -- analysis (per structure) -------------------------------------------------------
    def _single(self, what: str):
        if self.batch_shape:
            raise ValueError(f"{what} is computed per structure; index the batch first")

    def composition(self, axis=None) -> np.ndarray:
        """Weights (nstates, 2J+1) of |M_J> (M = -J..J, quantised along ``axis``, default the
        ground-doublet easy axis) in every eigenstate; rows sum to 1."""
        self._single("composition")
        n = self.easy_axis if axis is None else np.asarray(axis, dtype=float)
        n = n / np.linalg.norm(n)
        jn = np.tensordot(n, self.model.j_ops, axes=(0, 0))
        _, u = np.linalg.eigh(jn)                                    # columns M = -J..J
        return np.abs(u.conj().T @ self.vectors).T ** 2

    def doublet_composition(self, axis=None) -> np.ndarray:
        """(nd, 2J+1): mean |M_J> weights of the two states of each (quasi-)doublet."""
        comp = self.composition(axis)
        return np.array([comp[list(g)].mean(axis=0) for g in self.groups])

    def mean_abs_mj(self, axis=None) -> np.ndarray:
        """<|M_J|> of each (quasi-)doublet along ``axis`` (default: easy axis)."""
        return self.doublet_composition(axis) @ np.abs(m_values(self.ion.J))

    def transition_moments(self) -> np.ndarray:
        """(n, n) matrix of (|<i|mu_x|j>| + |<i|mu_y|j>| + |<i|mu_z|j>|)/3 in mu_B, as in the
        SINGLE_ANISO blocking-barrier analysis: x, y, z are the principal axes of the ground
        doublet's g (z = easy axis) and within each doublet the two states diagonalise mu_z.
        Non-Kramers singlets are kept as they are."""
        self._single("transition_moments")
        axes = self.g_axes[0]
        mu = np.einsum("ba,bij->aij", axes, self.model.moment)        # ground-doublet frame
        v = self.vectors.copy()
        for g in self.groups:
            cols = list(g)
            block = v[:, cols].conj().T @ mu[2] @ v[:, cols]
            _, u = np.linalg.eigh(block)
            v[:, cols] = v[:, cols] @ u
        m = np.einsum("ia,xij,jb->xab", v.conj(), mu, v)
        return np.abs(m).mean(axis=0)

    def stevens_parameters(self) -> dict:
        """The Stevens parameters of this structure as a label dict."""
        self._single("stevens_parameters")
        return cf_parameter_set(values_from_vector(self.parameters, self.model.ranks), "stevens")


# ======================================================================================
# structures -> labels (batched) and the ASE calculator
# ======================================================================================
def _resolve_ion(atoms: Atoms, ln: int, ion):
    if ion is None:
        sym = atoms[ln].symbol
        if sym not in LANTHANIDES:
            raise ValueError(f"atom {ln} is {sym}, not a lanthanide with a crystal-field model; "
                             "give the ion explicitly")
        return lanthanide_ion(sym)
    ion = lanthanide_ion(ion)
    return ion


def crystal_field_from_structure(atoms: Atoms, ion=None, *, charges="rec", shielding=False,
                                 **model_options):
    """(ion, PointChargeModel, CrystalFieldLevels) of one lanthanide complex.

    ``model_options`` go to :func:`point_charge_model` (metal_index, donors, cutoff,
    include, formal_charges, rec_parameters)."""
    pcm = point_charge_model(atoms, charges=charges, **model_options)
    ln = model_options.get("metal_index")
    ln = lanthanide_index(atoms) if ln is None else ln
    ion = _resolve_ion(atoms, ln, ion)
    b = pcem_parameters(ion, pcm.positions, pcm.charges, shielding=shielding,
                        ranks=ion_model(ion).ranks)
    return ion, pcm, solve(ion, b)


def crystal_field_batch(frames, ion=None, *, charges="rec", shielding=False,
                        same_topology: bool = True, **model_options) -> CrystalFieldLevels:
    """Levels of many structures of one complex in a single batched eigensolve.

    With ``same_topology`` (default) the donors and their types are found on the first frame
    and reused for all frames (same atom order: conformers, MD or PSO samples); otherwise
    each frame is analysed on its own.  Returns a batched :class:`CrystalFieldLevels`
    (``.kd_energies`` (nframes, nd), ``.g_values`` (nframes, nd, 3), ``.parameters``)."""
    frames = list(frames)
    if not frames:
        raise ValueError("no structures")
    first = frames[0]
    ln = model_options.get("metal_index")
    ln = lanthanide_index(first) if ln is None else int(ln)
    ion = _resolve_ion(first, ln, ion)
    if same_topology:
        pcm = point_charge_model(first, charges=charges, **model_options)
        pos = np.stack([f.positions for f in frames])
        vec = pos[:, list(pcm.donors)] - pos[:, ln][:, None, :]
        if pcm.scheme == "rec":
            dist = np.linalg.norm(vec, axis=-1)
            vec = vec * ((dist - pcm.displacements) / dist)[..., None]
        charges_arr = pcm.charges
    else:
        models = [point_charge_model(f, charges=charges, **model_options) for f in frames]
        if len({len(m.charges) for m in models}) != 1:
            raise ValueError("frames have different numbers of donors; use same_topology=True "
                             "or compute them separately")
        vec = np.stack([m.positions for m in models])
        charges_arr = np.stack([m.charges for m in models])
    b = pcem_parameters(ion, vec, charges_arr, shielding=shielding, ranks=ion_model(ion).ranks)
    return solve(ion, b)


class CrystalFieldCalculator(ase_properties.ExportRegisteredMixin, Calculator):
    """ASE calculator: crystal-field levels of a lanthanide complex (PCEM/REC, this module).

    Properties (``atoms.calc.get_property(name, atoms)``):
      ``kd_energies`` (nd,) cm-1, ground 0 (quasi-doublets for non-Kramers ions);
      ``g_tensors`` (nd, 3) principal g per doublet, ascending;
      ``cf_parameters`` (27,) Stevens parameters B(k,q) cm-1 in the order of
      :data:`molmag.physics.ase_properties.CF_PARAMETER_KEYS` (k = 2, 4, 6; q = -k..k;
      ``cf_parameters_dict(atoms)`` gives the label dict ``{"convention": "stevens",
      "values": {"k,q": B}}``);
      ``cf_energies`` (2J+1,) all state energies, cm-1, ground 0;
      ``easy_axis`` (3,) unit vector of the ground doublet.
    (The state energies are not called ``energies``: ASE reserves that name for per-atom
    energies in eV.)

    Parameters: ``ion`` (default: from the lanthanide element), ``charges`` ("rec" default,
    "formal", or a per-atom array), ``shielding`` (Sternheimer, default False), ``cutoff``
    (Å), ``donors``, ``metal_index``, ``include``, ``formal_charges``, ``rec_parameters``
    (see :func:`point_charge_model`).  Structures without a lanthanide, with an ion without
    crystal-field splitting (Eu3+, Gd3+) or a non-lanthanide ion raise ValueError.
    """

    implemented_properties = ["kd_energies", "g_tensors", "cf_parameters", "cf_energies",
                              "easy_axis"]
    default_parameters = {"ion": None, "charges": "rec", "shielding": False, "cutoff": None,
                          "donors": None, "metal_index": None, "include": "donors",
                          "formal_charges": None, "rec_parameters": None}

    #: the convention of the array-form ``cf_parameters``
    cf_convention = "stevens"

    def cf_parameters_dict(self, atoms=None) -> dict:
        """``cf_parameters`` as the label dict ``{"convention": "stevens", "values":
        {"k,q": B}}`` (cm-1)."""
        return ase_properties.cf_parameters_dict(self.get_property("cf_parameters", atoms),
                                                 self.cf_convention)

    def calculate(self, atoms=None, properties=("kd_energies",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        p = self.parameters
        opts = {key: p.get(key) for key in ("metal_index", "donors", "cutoff", "formal_charges",
                                             "rec_parameters")}
        opts["include"] = p.get("include", "donors")
        ion, pcm, levels = crystal_field_from_structure(
            self.atoms, p.get("ion"), charges=p.get("charges", "rec"),
            shielding=bool(p.get("shielding", False)), **opts)
        self.results["cf_energies"] = levels.energies.copy()
        self.results["kd_energies"] = levels.kd_energies.copy()
        self.results["g_tensors"] = levels.g_values.copy()
        self.results["cf_parameters"] = ase_properties.cf_parameters_array(
            levels.stevens_parameters())
        if levels.g_axes.shape[-3]:
            self.results["easy_axis"] = levels.easy_axis.copy()
        self.point_charges = pcm
        self.levels = levels


__all__ = [
    "CONVENTIONS", "FORMAL_CHARGES", "REC_PARAMETERS", "parse_kq", "cf_parameter_set",
    "vector_from_values", "values_from_vector", "stevens_from_ito", "ito_from_stevens",
    "stevens_from_wybourne", "wybourne_from_stevens", "convert_cf_parameters",
    "ito_complex_from_stevens", "stevens_from_ito_complex",
    "tesseral_functions", "pcem_parameters", "lanthanide_index", "find_donors",
    "classify_donor", "PointChargeModel", "point_charge_model", "IonModel", "ion_model",
    "hamiltonian", "solve", "CrystalFieldLevels", "crystal_field_from_structure",
    "crystal_field_batch", "CrystalFieldCalculator",
]
