r"""Ligand-field engine for d^n ions: zero-field-splitting D tensor, g tensor and ligand-field
states from a structure, without any quantum-chemistry program.

Hamiltonian (cm-1), exactly diagonalised in all C(10, n) Slater determinants of the d shell
(:mod:`molmag.physics.dn_states`):

.. math::

    H = H_{ee}(B, C) + V_{AOM} + \zeta \sum_i \mathbf l_i \cdot \mathbf s_i ,

with Racah parameters B, C (H_ee = B(49 R2) + C(7 R2 + 63/5 R4), i.e. F^2 = 49B + 7C,
F^4 = 63C/5), the angular-overlap ligand field V_AOM of :mod:`molmag.physics.aom` (each donor
e_sigma, e_pi_x, e_pi_y at distance r scaled as e(r0) (r0/r)^n) and the spin-orbit constant
zeta, optionally plus the point-charge field of the atoms beyond the donors
(:func:`point_charge_matrix`, with free-ion 3d <r^2>, <r^4>).  B and C are the free-ion values
times a covalency (nephelauxetic) factor beta;
zeta and the orbital Zeeman term are reduced by the orbital-reduction factor k.

Spin Hamiltonian (:mod:`molmag.physics.spin_hamiltonian`): the lowest 2S+1 spin-orbit states
are projected onto the spin-free ground multiplet |0 M> and orthonormalised (des Cloizeaux);
H_eff = S.D.S + c gives the D tensor, the Zeeman operator mu_B B.(k L + g_e S) gives g.  The
second-order perturbative D (sum over excited spin-free states of <0M|H_SO|n><n|H_SO|0M'> /
(E_0 - E_n)) is available for comparison.  ``D`` and ``E`` follow :mod:`molmag.physics.zfs`.

Pi-axis convention of a donor: z' points from the metal to the donor, y' is the normal of the
plane of the donor's own substituents (for a sulfonamide N the S-N-C plane, for water the
H-O-H plane, for an alkoxide the M-O-C plane), x' = y' x z' lies in that plane.  e_pi_y is the
out-of-plane pi interaction, e_pi_x the in-plane one.  A donor without such a plane (halide,
amine, nitrile) gets an isotropic pi interaction, (e_pi_x + e_pi_y)/2 about its bond.

Calibration of the sulfonamide N (reproduce with ``python scripts/calibrate_ligand_field.py``):
see :data:`DONOR_DEFAULTS` and the script's docstring.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import covalent_radii
from threadpoolctl import threadpool_limits

from molmag.physics import ase_properties  # noqa: F401  (registers property names)
from molmag.physics.aom import aom_matrix, local_frames
from molmag.physics.dn_states import DnSpace, dn_space
from molmag.physics.elements import TRANSITION_METALS, bonded_neighbours, find_metal_index
from molmag.physics.spin_hamiltonian import (
    G_E,
    des_cloizeaux,
    effective_hamiltonian,
    fit_d_tensor,
    fit_g_tensor,
    project_operator,
)
from molmag.physics.tensors import complex_to_real_matrix
from molmag.physics.zfs import zfs_from_tensor

# ----------------------------------------------------------------------------------------
# Ions
# ----------------------------------------------------------------------------------------
_LEVER = ("free-ion Racah B, C: A. B. P. Lever, Inorganic Electronic Spectroscopy, 2nd ed. "
          "(Elsevier, 1984)")
_DUNN = "free-ion zeta: T. M. Dunn, Trans. Faraday Soc. 57, 1441 (1961)"


@dataclass(frozen=True)
class IonParameters:
    """Free-ion parameters of a d^n ion (cm-1) and the reduction factors used in complexes.

    Effective values: B_eff = beta B, C_eff = beta C, zeta_eff = k zeta, orbital Zeeman k L.
    """

    name: str
    n_d: int
    B: float
    C: float
    zeta: float
    beta: float = 0.8
    k: float = 0.9
    source: str = f"{_LEVER}; {_DUNN}"

    @property
    def B_eff(self) -> float:
        return self.beta * self.B

    @property
    def C_eff(self) -> float:
        return self.beta * self.C

    @property
    def zeta_eff(self) -> float:
        return self.k * self.zeta

    def as_dict(self) -> dict:
        return {"ion": self.name, "n_d": self.n_d, "B_free": self.B, "C_free": self.C,
                "zeta_free": self.zeta, "beta": self.beta, "k": self.k, "B": self.B_eff,
                "C": self.C_eff, "zeta": self.zeta_eff, "source": self.source}


#: Free-ion B, C (Lever 1984) and zeta (Dunn 1961), cm-1.  beta = 0.8 and k = 0.9 are
#: typical of the moderately covalent N/O/halide complexes molmag targets (Figgis &
#: Hitchman, Ligand Field Theory and Its Applications, Wiley-VCH 2000, ch. 5 and 9).
ION_DEFAULTS: dict[str, IonParameters] = {
    p.name: p
    for p in (
        IonParameters("Ti3+", 1, 0.0, 0.0, 154.0),
        IonParameters("V3+", 2, 861.0, 4165.0, 209.0),
        IonParameters("Cr3+", 3, 918.0, 3850.0, 273.0),
        IonParameters("Cr2+", 4, 830.0, 3430.0, 230.0),
        IonParameters("Mn3+", 4, 1140.0, 3675.0, 355.0),
        IonParameters("Mn2+", 5, 960.0, 3325.0, 347.0),
        IonParameters("Fe3+", 5, 1015.0, 4800.0, 460.0),
        IonParameters("Fe2+", 6, 1058.0, 3901.0, 410.0),
        IonParameters("Co2+", 7, 1115.0, 4366.0, 533.0),
        IonParameters("Ni2+", 8, 1084.0, 4831.0, 649.0),
        IonParameters("Cu2+", 9, 1238.0, 4659.0, 829.0),
    )
}

#: Oxidation states tried, most common first, when a structure does not say which.
COMMON_OXIDATION_STATES = {"Ti": (3,), "V": (3,), "Cr": (3, 2), "Mn": (2, 3), "Fe": (2, 3),
                           "Co": (2,), "Ni": (2,), "Cu": (2,)}

_ION_RE = re.compile(r"^\s*([A-Z][a-z]?)\s*\(?\s*(\d)\s*\+?\s*\)?\s*$"
                     r"|^\s*([A-Z][a-z]?)\s*\(\s*([IVX]+)\s*\)\s*$")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}


def ion_parameters(ion: str | IonParameters) -> IonParameters:
    """Default parameters of an ion given as ``"Co2+"``, ``"Co(II)"`` or ``"Co2"``."""
    if isinstance(ion, IonParameters):
        return ion
    m = _ION_RE.match(str(ion))
    if m:
        el, ox = (m.group(1), int(m.group(2))) if m.group(1) \
            else (m.group(3), _ROMAN.get(m.group(4), 0))
        key = f"{el}{ox}+"
        if key in ION_DEFAULTS:
            return ION_DEFAULTS[key]
    raise ValueError(f"unsupported ion {ion!r}; the ligand-field engine knows "
                     f"{', '.join(ION_DEFAULTS)}")


def high_spin_multiplicity(n_d: int) -> int:
    return (n_d if n_d <= 5 else 10 - n_d) + 1


# ----------------------------------------------------------------------------------------
# Donors
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DonorParameters:
    """AOM parameters of a donor type at r0 (cm-1, Angstrom), e(r) = e(r0) (r0/r)^exponent.

    e_pi_x: in-plane pi; e_pi_y: out-of-plane pi (normal to the substituents' plane).
    ``formal_charge`` is the charge the donor group carries (for the metal's oxidation state).
    """

    e_sigma: float
    e_pi_x: float
    e_pi_y: float
    r0: float
    exponent: float = 5.0
    formal_charge: int = 0
    source: str = ""

    def isotropic(self) -> DonorParameters:
        e = 0.5 * (self.e_pi_x + self.e_pi_y)
        return replace(self, e_pi_x=e, e_pi_y=e)


_BG = "distance exponent: Bridgeman & Gerloch, Prog. Inorg. Chem. 45, 179 (1997)"

#: Default AOM parameters per donor type (divalent 3d ions).  Sources in ``source``.
DONOR_DEFAULTS: dict[str, DonorParameters] = {
    # Calibrated with scripts/calibrate_ligand_field.py on [Co(pdms)2]2- (the mean of the 1200
    # Lunghi-Sanvito configurations, ../shared/data/copdms): e_sigma = 5500, e_pi_x (in the
    # S-N-C plane) = 0, e_pi_y (out of plane) = 1500 cm-1 at 2.02 A give D = -102 cm-1
    # (CASSCF -100 cm-1; experiment -115 +/- 20 cm-1: Rechkemmer et al., Nat. Commun. 7,
    # 10467 (2016)), E/D < 0.001 and the first excited quartet at ~510 cm-1, and
    # D = -103 +/- 8 cm-1 over the 1200 distorted configurations.  The strong out-of-plane pi
    # donation of the sulfonamide N is the origin of the large negative D (ibid.).  Every D
    # target is met on two branches of e_pi_y, either side of the d_xy / d_x2-y2 crossing
    # (|D| peaks there, ~-140 cm-1 near e_pi_y = 1800); this value is on the normal branch
    # (e_pi/e_sigma = 0.27), whose magneto-structural trends agree with the CASSCF-based ones:
    # D more negative for smaller intraligand N-Co-N angles (Lunghi & Sanvito 2020) and
    # r(D, q) = +0.87 over the 1200 configurations (Zaverkin et al. 2022: +0.88).  The
    # inverted branch (e_pi_y = 2100, molmag <= issue 6) gave the same D with both trends
    # reversed.
    "N_sulfonamide": DonorParameters(5500.0, 0.0, 1500.0, 2.02, 5.0, -1,
                                     "calibrated on [Co(pdms)2]2- "
                                     "(scripts/calibrate_ligand_field.py); " + _BG),
    # deprotonated amide N: like the sulfonamide, slightly weaker pi donor
    "N_amide": DonorParameters(5500.0, 0.0, 1300.0, 2.00, 5.0, -1,
                               "scaled from N_sulfonamide; " + _BG),
    # Ni(NH3)6 2+: 10Dq = 10750 cm-1 = 3 e_sigma (Lever 1984); sp3 N has no pi
    "N_amine": DonorParameters(3600.0, 0.0, 0.0, 2.12, 5.0, 0,
                               "10Dq of [Ni(NH3)6]2+ (Lever 1984); " + _BG),
    # pyridine: weak pi acceptor perpendicular to the ring (Gerloch & Slade, Ligand-Field
    # Parameters, CUP 1973; Bridgeman & Gerloch 1997)
    "N_pyridine": DonorParameters(3600.0, 0.0, -300.0, 2.10, 5.0, 0,
                                  "Gerloch & Slade 1973; Bridgeman & Gerloch 1997"),
    # alkoxide / aryloxide / carboxylate O-: strong sigma and pi donor
    "O_alkoxide": DonorParameters(5500.0, 1000.0, 1500.0, 1.95, 5.0, -1,
                                  "Bridgeman & Gerloch 1997 (phenoxide, alkoxide ranges)"),
    # water (and other neutral O donors): Ni(H2O)6 2+, 10Dq = 8500 cm-1 = 3 e_s - 4 e_pi
    "O_water": DonorParameters(3500.0, 500.0, 500.0, 2.06, 5.0, 0,
                               "10Dq of [Ni(H2O)6]2+ (Lever 1984); " + _BG),
    # chloride: [CoCl4]2- 10Dq_t ~ 3000 cm-1 = 4/3 e_s - 16/9 e_pi
    "Cl": DonorParameters(3300.0, 800.0, 800.0, 2.28, 5.0, -1,
                          "[CoCl4]2- (Bridgeman & Gerloch 1997; Lever 1984); " + _BG),
    # thiolate S-: anisotropic pi perpendicular to the M-S-C plane, [Co(SPh)4]2- (Suturina et
    # al., Inorg. Chem. 56, 3102 (2017))
    "S_thiolate": DonorParameters(4000.0, 500.0, 1500.0, 2.30, 5.0, -1,
                                  "[Co(SPh)4]2- (Suturina et al. 2017)"),
    "S_thioether": DonorParameters(3000.0, 300.0, 800.0, 2.35, 5.0, 0,
                                   "scaled from S_thiolate (neutral S donor)"),
}


#: Free-ion 3d radial expectation values (<r^2>, <r^4>) in bohr^k: ROHF/ANO-RCC of the
#: high-spin free ion, averaged over the 3d orbitals (scripts/radial_integrals_3d.py, PySCF).
RADIAL_3D: dict[str, tuple[float, float]] = {
    "Ti3+": (1.9007, 7.3070), "V3+": (1.6284, 5.4165), "Cr3+": (1.4328, 4.2581),
    "Cr2+": (1.7505, 6.8683), "Mn3+": (1.2749, 3.4126), "Mn2+": (1.5243, 5.2689),
    "Fe3+": (1.1391, 2.7546), "Fe2+": (1.3723, 4.3773), "Co2+": (1.2439, 3.6699),
    "Ni2+": (1.1334, 3.1001), "Cu2+": (1.0374, 2.6382),
}

_HARTREE_CM = 219474.6313632  # cm-1 per hartree
_BOHR_A = 0.529177210903  # Angstrom per bohr


def point_charge_matrix(vectors, charges, radial: tuple[float, float]) -> np.ndarray:
    r"""Crystal-field matrix of point charges on the d shell, real d basis, cm-1.

    .. math::

        V_{mm'} = -\sum_a q_a \sum_{k=2,4} \frac{\langle r^k \rangle}{R_a^{k+1}}
                  c^k(m, m')\, C^k_{m-m'}(\hat R_a)^* \quad\text{(hartree, bohr)}

    from the multipole expansion of -q_a e^2 / |r - R_a| (the electron has charge -e;
    C^k_q = sqrt(4 pi/(2k+1)) Y_k^q; the k = 0 term shifts all d levels equally and is left
    out).  ``vectors`` (..., n, 3) metal -> charge in Angstrom, ``charges`` (..., n) in e,
    ``radial`` = (<r^2>, <r^4>) in bohr^k.  Six charges q = -1 at R on the axes give
    10Dq = (5/3) <r^4> / R^5.
    """
    from scipy.special import sph_harm_y

    from molmag.physics.angular_momentum import gaunt_ck

    vec = np.asarray(vectors, dtype=float) / _BOHR_A
    q = np.asarray(charges, dtype=float)
    r = np.linalg.norm(vec, axis=-1)
    theta = np.arccos(np.clip(vec[..., 2] / r, -1.0, 1.0))
    phi = np.arctan2(vec[..., 1], vec[..., 0])
    v = np.zeros(vec.shape[:-2] + (5, 5), dtype=complex)
    m = np.arange(-2, 3)
    for k, rk in zip((2, 4), radial):
        radial_factor = -q * rk / r ** (k + 1)  # (..., n)
        for i, mi in enumerate(m):
            for j, mj in enumerate(m):
                dq = int(mi - mj)
                if abs(dq) > k:
                    continue
                ck = gaunt_ck(2, k, int(mi), int(mj))
                if ck == 0.0:
                    continue
                ckq = np.sqrt(4 * np.pi / (2 * k + 1)) * np.conj(sph_harm_y(k, dq, theta, phi))
                v[..., i, j] += ck * np.sum(radial_factor * ckq, axis=-1)
    c = complex_to_real_matrix(2)
    v_real = np.einsum("im,...mn,jn->...ij", c.conj(), v, c)  # V_r = C* V_c C^T
    return v_real.real * _HARTREE_CM


@dataclass
class Donor:
    """One coordinated atom: its type, parameters, distance and local frame."""

    index: int
    symbol: str
    kind: str
    params: DonorParameters
    distance: float
    frame: np.ndarray
    has_plane: bool
    plane_atoms: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        return {"index": self.index, "element": self.symbol, "type": self.kind,
                "distance_A": round(self.distance, 4),
                "e_sigma": round(float(self.e_scaled[0]), 2),
                "e_pi_x": round(float(self.e_scaled[1]), 2),
                "e_pi_y": round(float(self.e_scaled[2]), 2)}

    @property
    def e_scaled(self) -> np.ndarray:
        p = self.params if self.has_plane else self.params.isotropic()
        f = (p.r0 / self.distance) ** p.exponent
        return np.array([p.e_sigma, p.e_pi_x, p.e_pi_y]) * f


def find_donors(atoms: Atoms, metal: int, factor: float = 1.25) -> list[int]:
    """Atoms bonded to the metal: distance < factor x (sum of covalent radii), H excluded."""
    d = atoms.get_distances(metal, range(len(atoms)))
    r = covalent_radii[atoms.numbers]
    cut = factor * (r + r[metal])
    return [int(j) for j in np.flatnonzero(d < cut) if j != metal and atoms.numbers[j] != 1]


def classify_donor(atoms: Atoms, metal: int, donor: int) -> tuple[str, tuple[int, int] | None]:
    """Donor type (a key of :data:`DONOR_DEFAULTS`) and the two atoms (a, b) whose positions
    relative to the donor span its substituents' plane (normal = (a - donor) x (b - donor)),
    or None for a donor without such a plane.

    Rules (substituents = bonded atoms other than the metal): Cl -> Cl; O with 2 H -> water,
    O with one heavy substituent and no H (or only H) -> alkoxide/aryloxide (anionic), other
    neutral O -> water-like; N with 3 substituents -> amine; N with 2 and no H: bonded to S ->
    sulfonamide, to a carbonyl C -> amide, otherwise pyridine/imine; N with one substituent
    (nitrile) -> pyridine-like, isotropic pi; S with 1 substituent -> thiolate, 2 -> thioether.
    """
    sym = atoms[donor].symbol
    subs = bonded_neighbours(atoms, donor, {metal})
    heavy = [j for j in subs if atoms.numbers[j] != 1]
    n_h = len(subs) - len(heavy)

    def normal(a: int, b: int) -> tuple[int, int]:
        return int(a), int(b)

    if sym == "Cl":
        return "Cl", None
    if sym == "O":
        if n_h == 2:
            return "O_water", normal(subs[0], subs[1])
        if len(subs) == 1:
            return "O_alkoxide", normal(metal, subs[0])
        if len(subs) == 2:
            return "O_water", normal(subs[0], subs[1])
    if sym == "N":
        if len(subs) == 3:
            return "N_amine", None
        if len(subs) == 2:
            if n_h == 0:
                if any(atoms[j].symbol == "S" for j in heavy):
                    return "N_sulfonamide", normal(subs[0], subs[1])
                for j in heavy:
                    if atoms[j].symbol == "C" and any(
                            atoms[k].symbol == "O" and atoms.get_distance(j, k) < 1.32
                            for k in bonded_neighbours(atoms, j, {donor})):
                        return "N_amide", normal(subs[0], subs[1])
                return "N_pyridine", normal(subs[0], subs[1])
            return "N_amine", None
        if len(subs) == 1:
            return "N_pyridine", None
    if sym == "S":
        if len(subs) == 1:
            return "S_thiolate", normal(metal, subs[0])
        if len(subs) == 2:
            return "S_thioether", normal(subs[0], subs[1])
    raise ValueError(f"donor {sym}{donor} ({len(subs)} substituents) has no default AOM "
                     "parameters; give donor_types or donor_parameters for it")


def build_donors(atoms: Atoms, metal: int, donors: list[int] | None = None,
                 donor_types: dict[int, str] | None = None,
                 donor_parameters: dict[int, DonorParameters] | None = None) -> list[Donor]:
    """Find, classify and parameterise the donors of the metal (overrides by atom index)."""
    donor_types = donor_types or {}
    donor_parameters = donor_parameters or {}
    idx = find_donors(atoms, metal) if donors is None else [int(i) for i in donors]
    if not idx:
        raise ValueError(f"{atoms[metal].symbol}{metal} has no donor atoms within bonding "
                         "distance; give the donors explicitly")
    out = []
    for i in idx:
        if not 0 <= i < len(atoms) or i == metal:
            raise ValueError(f"donor index {i} is not a ligand atom of this structure")
        if i in donor_types or i in donor_parameters:  # user override; keep the pi plane
            try:
                _, plane = classify_donor(atoms, metal, i)
            except ValueError:
                plane = None
            kind = donor_types.get(i, "custom")
            if i not in donor_parameters and kind not in DONOR_DEFAULTS:
                raise ValueError(f"unknown donor type {kind!r} for atom {i}; "
                                 f"known: {', '.join(DONOR_DEFAULTS)}")
        else:
            kind, plane = classify_donor(atoms, metal, i)
        params = donor_parameters.get(i) or DONOR_DEFAULTS[kind]
        bond = atoms.positions[i] - atoms.positions[metal]
        r = float(np.linalg.norm(bond))
        nrm = None
        if plane is not None:
            nrm = np.cross(atoms.positions[plane[0]] - atoms.positions[i],
                           atoms.positions[plane[1]] - atoms.positions[i])
            if np.linalg.norm(np.cross(nrm, bond)) <= 1e-6 * r * np.linalg.norm(nrm):
                plane, nrm = None, None  # substituents collinear with the bond: no plane
        frame = local_frames(bond, nrm)
        out.append(Donor(i, atoms[i].symbol, kind, params, r, frame, plane is not None, plane))
    return out


def aom_from_donors(donors: list[Donor]) -> np.ndarray:
    """V (5 x 5, cm-1, real d basis) of a list of donors."""
    frames = np.stack([d.frame for d in donors])
    e = np.stack([d.e_scaled for d in donors])
    return aom_matrix(frames, e[:, 0], e[:, 1], e[:, 2])


def infer_ion(atoms: Atoms, metal: int, donors: list[Donor] | None = None,
              charge: int | None = None, multiplicity: int | None = None) -> tuple[str, str]:
    """The metal ion (e.g. ``"Co2+"``) and how it was chosen.

    1. from the total charge minus the formal charges of the donor groups (all ligand charge
       on the donors, true of halides, alkoxides, sulfonamides, water, amines);
    2. else from the spin multiplicity (the high-spin ion with that 2S+1);
    3. else the element's most common oxidation state.
    """
    el = atoms[metal].symbol
    if atoms.numbers[metal] not in TRANSITION_METALS or el not in COMMON_OXIDATION_STATES:
        raise ValueError(f"{el}{metal} is not a 3d ion the ligand-field engine treats "
                         f"({', '.join(ION_DEFAULTS)})")
    if charge is not None and donors:
        ox = int(charge) - sum(d.params.formal_charge for d in donors)
        name = f"{el}{ox}+"
        if name in ION_DEFAULTS:
            p = ION_DEFAULTS[name]
            if multiplicity is not None and (multiplicity % 2) == (p.n_d % 2):
                raise ValueError(f"charge {charge:+d} makes the metal {name} (d{p.n_d}), which "
                                 f"cannot have spin multiplicity {multiplicity}")
            return name, f"charge {charge:+d} minus donor formal charges"
    if multiplicity is not None:
        for ox in COMMON_OXIDATION_STATES[el]:
            cand = ION_DEFAULTS.get(f"{el}{ox}+")
            if cand is not None and high_spin_multiplicity(cand.n_d) == multiplicity:
                return cand.name, f"high-spin multiplicity {multiplicity}"
    name = f"{el}{COMMON_OXIDATION_STATES[el][0]}+"
    return name, "most common oxidation state"


# ----------------------------------------------------------------------------------------
# Engine
# ----------------------------------------------------------------------------------------
@dataclass
class LigandFieldResult:
    """Arrays over a batch (leading axis) of ligand fields; energies in cm-1."""

    spin: np.ndarray                 # S of the spin-free ground multiplet
    energies: np.ndarray             # (B, N) spin-orbit states, ground = 0
    energies_spin_free: np.ndarray   # (B, N) spin-free states (each 2S+1 times), ground = 0
    orbital_gap: np.ndarray          # (B,) first orbital excitation of the ground spin, cm-1
    zfs_tensor: np.ndarray           # (B, 3, 3), NaN where S < 1
    zfs_fit_rms: np.ndarray          # (B,)
    g_tensor: np.ndarray             # (B, 3, 3)
    projection: np.ndarray           # (B,) smallest singular value of the model-space overlap
    zfs_tensor_pt2: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.spin)


def _eigh_batch(h: np.ndarray, n_low: int | None, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a stack of Hermitian matrices: all of them (``n_low=None``, LAPACK
    zheevd) or the lowest ``n_low`` (zheevr, about twice as fast), spread over ``n_threads``
    threads with one BLAS thread each."""
    def work(idx):
        if n_low is None:
            return np.linalg.eigh(h[idx])
        ws, vs = zip(*(scipy.linalg.eigh(h[i], subset_by_index=[0, n_low - 1], driver="evr",
                                         check_finite=False) for i in idx))
        return np.stack(ws), np.stack(vs)

    parts = [p for p in np.array_split(np.arange(len(h)), max(1, min(n_threads, len(h)))) if len(p)]
    with threadpool_limits(1):
        if len(parts) == 1:
            res = [work(parts[0])]
        else:
            with ThreadPoolExecutor(len(parts)) as ex:
                res = list(ex.map(work, parts))
    return np.concatenate([r[0] for r in res]), np.concatenate([r[1] for r in res])


class LigandFieldEngine:
    """Exact d^n ligand-field calculations for one ion, batched over ligand fields.

    Everything that does not depend on the geometry (determinants, electron repulsion,
    spin-orbit, L and S matrices, M_S blocks) is built once here.
    """

    def __init__(self, ion: str | IonParameters = "Co2+", *, B: float | None = None,
                 C: float | None = None, zeta: float | None = None, k: float | None = None,
                 n_threads: int | None = None):
        p = ion_parameters(ion)
        self.ion = p
        self.B = p.B_eff if B is None else float(B)
        self.C = p.C_eff if C is None else float(C)
        self.zeta = p.zeta_eff if zeta is None else float(zeta)
        self.k = p.k if k is None else float(k)
        self.space: DnSpace = dn_space(p.n_d)
        self.h_sf0 = self.space.racah(self.B, self.C)
        self.h_so = self.zeta * self.space.soc
        self.h0 = self.h_sf0 + self.h_so
        self.zeeman = self.k * self.space.L + G_E * self.space.S  # (3, N, N)
        self.n_threads = n_threads or min(2, os.cpu_count() or 1)
        ms = self.space.ms
        self.ms_values = np.unique(ms)
        self.blocks = {float(m): np.flatnonzero(np.isclose(ms, m)) for m in self.ms_values}

    def parameters(self) -> dict:
        return {**self.ion.as_dict(), "B": self.B, "C": self.C, "zeta": self.zeta, "k": self.k}

    def _block(self, h: np.ndarray, m: float) -> np.ndarray:
        idx = self.blocks[m]
        return h[:, idx[:, None], idx[None, :]]

    #: structures diagonalised together (bounds the memory of the (B, N, N) matrices)
    chunk_size = 128

    def solve(self, v_real, *, pt2: bool = False, n_states: int | None = None) -> LigandFieldResult:
        """Ligand-field states and spin Hamiltonian of one (5, 5) or a batch (B, 5, 5) of AOM
        matrices in the real d basis (cm-1).

        ``n_states``: how many spin-orbit states to compute (the lowest, at least 2S+1 of the
        high-spin S); all of them by default.  Labelling only needs the ground multiplet and
        runs two to three times faster with ``n_states=2S+1``.  ``pt2`` adds the second-order
        perturbative D.
        """
        v = np.asarray(v_real, dtype=float).reshape(-1, 5, 5)
        n = self.space.dim
        s_max = high_spin_multiplicity(self.ion.n_d)
        n_out = n if n_states is None else min(n, max(int(n_states), s_max))
        parts = [self._solve_chunk(v[i:i + self.chunk_size], pt2, n_out)
                 for i in range(0, len(v), self.chunk_size)]
        if len(parts) == 1:
            return parts[0]
        merged: dict[str, Any] = {
            f: None if getattr(parts[0], f) is None
            else np.concatenate([getattr(p, f) for p in parts])
            for f in LigandFieldResult.__dataclass_fields__}
        return LigandFieldResult(**merged)

    def _solve_chunk(self, v: np.ndarray, pt2: bool, n_out: int) -> LigandFieldResult:
        nb = len(v)
        hlf = self.space.one_electron_real(v)  # (B, N, N)
        hsf = hlf + self.h_sf0[None]
        # spin-free spectrum block by block (M_S >= 0; the -M_S blocks are the same)
        sf_levels, emin = [], {}
        for m in self.ms_values:
            if m < 0:
                continue
            w = np.linalg.eigvalsh(self._block(hsf, float(m)))
            emin[float(m)] = w[:, 0]
            sf_levels += [w, w] if m > 0 else [w]
        e_sf = np.sort(np.concatenate(sf_levels, axis=1), axis=1)
        e0 = e_sf[:, 0]
        tol = 1e-6 * np.maximum(1.0, np.abs(e0))
        spin = np.zeros(nb)
        for m, e in emin.items():
            spin = np.where(np.abs(e - e0) < tol, np.maximum(spin, m), spin)

        n = self.space.dim
        res = LigandFieldResult(
            spin=spin, energies=np.zeros((nb, n_out)), energies_spin_free=e_sf - e0[:, None],
            orbital_gap=np.zeros(nb), zfs_tensor=np.full((nb, 3, 3), np.nan),
            zfs_fit_rms=np.full(nb, np.nan), g_tensor=np.full((nb, 3, 3), np.nan),
            projection=np.zeros(nb), zfs_tensor_pt2=np.full((nb, 3, 3), np.nan) if pt2 else None)
        h_full = hlf
        h_full += self.h0[None]  # reuse the buffer: hlf is not needed any more
        for s in np.unique(spin):
            sel = np.flatnonzero(spin == s)
            two_s = int(round(2 * s))
            dim = two_s + 1
            e_so, low = _eigh_batch(h_full[sel], None if n_out == n else n_out, self.n_threads)
            res.energies[sel] = e_so - e_so[:, :1]
            low = low[:, :, :dim]
            # |0 S> from the M_S = S block, then the other components by S_-
            idx = self.blocks[float(s)]
            wb, vb = np.linalg.eigh(self._block(hsf[sel], float(s)))
            res.orbital_gap[sel] = wb[:, 1] - wb[:, 0] if wb.shape[1] > 1 else np.inf
            model = np.zeros((len(sel), n, dim), dtype=complex)
            model[:, idx, 0] = vb[:, :, 0]
            for j in range(1, dim):
                lowered = model[:, :, j - 1] @ self.space.S_minus.T
                model[:, :, j] = lowered / np.linalg.norm(lowered, axis=1, keepdims=True)
            c_t, proj = des_cloizeaux(model, low)
            res.projection[sel] = proj
            h_eff = effective_hamiltonian(c_t, res.energies[sel][:, :dim])
            z_states = np.swapaxes(low.conj(), 1, 2)[:, None] @ (self.zeeman[None] @ low[:, None])
            m_eff = project_operator(c_t[:, None], z_states)
            res.g_tensor[sel], _ = fit_g_tensor(m_eff, two_s)
            if two_s >= 2:
                res.zfs_tensor[sel], res.zfs_fit_rms[sel] = fit_d_tensor(h_eff, two_s)
                if pt2:
                    assert res.zfs_tensor_pt2 is not None
                    res.zfs_tensor_pt2[sel] = self._pt2(hsf[sel], model, e0[sel], two_s)
        return res

    def _pt2(self, hsf: np.ndarray, model: np.ndarray, e0: np.ndarray, two_s: int) -> np.ndarray:
        """Second-order D: H1 + sum_n <0M|H_SO|n><n|H_SO|0M'> / (E0 - E_n), fitted to S.D.S."""
        vm = self.h_so[None] @ model  # H_SO |0M>
        h_eff = np.swapaxes(model.conj(), 1, 2) @ vm  # first order
        for m in self.ms_values:
            idx = self.blocks[float(m)]
            w, u = np.linalg.eigh(self._block(hsf, float(m)))
            x = np.swapaxes(u.conj(), 1, 2) @ vm[:, idx, :]  # <n|H_SO|0M>
            de = e0[:, None] - w
            excited = np.abs(de) > 1e-6 * np.maximum(1.0, np.abs(e0))[:, None]
            inv = np.where(excited, 1.0 / np.where(excited, de, 1.0), 0.0)
            h_eff = h_eff + np.einsum("xnm,xn,xnk->xmk", x.conj(), inv, x)
        d, _ = fit_d_tensor(h_eff, two_s)
        return d


# ----------------------------------------------------------------------------------------
# Structures
# ----------------------------------------------------------------------------------------
@dataclass
class LigandFieldModel:
    """A structure's ligand field: metal, donors (with types and parameters) and the ion."""

    atoms: Atoms
    metal: int
    donors: list[Donor]
    ion: str
    ion_reason: str
    outer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    outer_charges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _point_charges_on: bool = False

    @classmethod
    def from_atoms(cls, atoms: Atoms, *, metal_index: int | None = None, ion: str | None = None,
                   charge: int | None = None, multiplicity: int | None = None,
                   donors: list[int] | None = None, donor_types: dict[int, str] | None = None,
                   donor_parameters: dict[int, DonorParameters] | None = None,
                   outer_charges=None, outer_cutoff: float | None = None) -> LigandFieldModel:
        """Set up a structure: find the metal (or take ``metal_index``), its donors and the
        ion (``ion``, else from charge/multiplicity, see :func:`infer_ion`; charge and
        multiplicity default to ``atoms.info``).

        ``outer_charges`` (one charge in e per atom, e.g. xTB charges) switches on the
        point-charge term of the atoms beyond the donors (:func:`point_charge_matrix`, the
        metal and the donors excluded — their field is the AOM's), optionally only within
        ``outer_cutoff`` Angstrom of the metal."""
        if metal_index is None:
            metal_index = find_metal_index(atoms)
            if metal_index is None:
                raise ValueError(f"{atoms.get_chemical_formula()} contains no transition metal")
        if not 0 <= metal_index < len(atoms):
            raise ValueError(f"metal index {metal_index} out of range (0..{len(atoms) - 1})")
        if atoms.numbers[metal_index] not in TRANSITION_METALS:
            raise ValueError(f"atom {metal_index} ({atoms[metal_index].symbol}) is not a "
                             "transition metal")
        dl = build_donors(atoms, metal_index, donors, donor_types, donor_parameters)
        charge = atoms.info.get("charge") if charge is None else charge
        multiplicity = atoms.info.get("multiplicity") if multiplicity is None else multiplicity
        if ion is None:
            ion, reason = infer_ion(atoms, metal_index, dl, charge, multiplicity)
        else:
            el = ion_parameters(ion).name.rstrip("0123456789+")
            if el != atoms[metal_index].symbol:
                raise ValueError(f"ion {ion} does not match the metal {atoms[metal_index].symbol}")
            reason = "given"
        model = cls(atoms, metal_index, dl, ion_parameters(ion).name, reason)
        if outer_charges is not None:
            q = np.asarray(outer_charges, dtype=float).reshape(-1)
            if q.shape != (len(atoms),):
                raise ValueError(f"outer_charges needs one charge per atom ({len(atoms)}), "
                                 f"got {q.size}")
            excluded = {metal_index, *(d.index for d in dl)}
            idx = np.array([i for i in range(len(atoms)) if i not in excluded], dtype=int)
            if outer_cutoff is not None:
                dist = atoms.get_distances(metal_index, idx) if len(idx) else np.zeros(0)
                idx = idx[dist <= outer_cutoff]
            model.outer, model.outer_charges = idx, q[idx]
            model._point_charges_on = True
        return model

    def aom_matrix(self) -> np.ndarray:
        """V (5 x 5, cm-1, real d basis): AOM of the donors plus, if switched on, the point
        charges of the atoms beyond them."""
        v = aom_from_donors(self.donors)
        if len(self.outer):
            vec = self.atoms.positions[self.outer] - self.atoms.positions[self.metal]
            v = v + point_charge_matrix(vec, self.outer_charges, RADIAL_3D[self.ion])
        return v

    def aom_matrices(self, positions) -> np.ndarray:
        """V (B, 5, 5) for a batch of conformers (B, natoms, 3) of this structure, keeping
        its metal, donors, types and plane atoms: only distances and frames are recomputed."""
        pos = np.asarray(positions, dtype=float).reshape(-1, len(self.atoms), 3)
        d_idx = np.array([d.index for d in self.donors])
        bonds = pos[:, d_idx] - pos[:, self.metal][:, None]
        r = np.linalg.norm(bonds, axis=-1)
        normals = np.zeros_like(bonds)
        for k, d in enumerate(self.donors):
            if d.plane_atoms is not None:
                a, b = d.plane_atoms
                normals[:, k] = np.cross(pos[:, a] - pos[:, d.index], pos[:, b] - pos[:, d.index])
        frames = local_frames(bonds, normals)
        e0 = np.array([[d.params.e_sigma, d.params.e_pi_x, d.params.e_pi_y] if d.has_plane else
                       [d.params.e_sigma] + [0.5 * (d.params.e_pi_x + d.params.e_pi_y)] * 2
                       for d in self.donors])
        r0 = np.array([d.params.r0 for d in self.donors])
        ex = np.array([d.params.exponent for d in self.donors])
        e = e0[None] * ((r0[None] / r) ** ex[None])[..., None]
        v = aom_matrix(frames, e[..., 0], e[..., 1], e[..., 2])
        if len(self.outer):
            vec = pos[:, self.outer] - pos[:, self.metal][:, None]
            v = v + point_charge_matrix(vec, self.outer_charges, RADIAL_3D[self.ion])
        return v

    def describe(self) -> dict:
        out = {"metal_index": self.metal, "ion": self.ion, "ion_from": self.ion_reason,
               "donors": [d.as_dict() for d in self.donors]}
        if self.outer_charges is not None and self._point_charges_on:
            out["point_charges"] = {"atoms": int(len(self.outer)),
                                    "total_charge_e": float(self.outer_charges.sum()),
                                    "radial_bohr": dict(zip(("<r^2>", "<r^4>"),
                                                            RADIAL_3D[self.ion]))}
        return out


_ENGINES: dict[tuple, LigandFieldEngine] = {}


def engine_for(ion: str, **overrides) -> LigandFieldEngine:
    """A cached engine per (ion, parameter overrides)."""
    key = (ion, tuple(sorted((k, v) for k, v in overrides.items() if v is not None)))
    if key not in _ENGINES:
        _ENGINES[key] = LigandFieldEngine(ion, **{k: v for k, v in overrides.items()
                                                  if v is not None})
    return _ENGINES[key]


class LigandFieldCalculator(Calculator):
    """ASE calculator for the ligand-field D tensor, g tensor and states of a 3d complex.

    Results: ``zfs_tensor`` (3x3, cm-1), ``zfs_D``, ``zfs_E`` (cm-1), ``g_tensor`` (3x3),
    ``lf_energies`` and ``lf_energies_spin_free`` (cm-1, ground = 0), ``zfs_tensor_pt2``
    (second-order D, cm-1).  Parameters: ``ion`` (default: inferred), ``metal_index``,
    ``donors``, ``donor_types``, ``donor_parameters``, ``charge``, ``multiplicity``, the
    ion overrides ``B``, ``C``, ``zeta``, ``k`` (cm-1 / dimensionless), and ``outer_charges``
    (per-atom, e) with ``outer_cutoff`` (Angstrom) for the optional point-charge term of the
    atoms beyond the donors.

    >>> atoms.calc = LigandFieldCalculator()
    >>> atoms.calc.get_property("zfs_D", atoms)
    """

    implemented_properties = ["zfs_tensor", "zfs_D", "zfs_E", "g_tensor", "lf_energies",
                              "lf_energies_spin_free", "zfs_tensor_pt2"]
    default_parameters = {"ion": None, "metal_index": None, "donors": None, "donor_types": None,
                          "donor_parameters": None, "charge": None, "multiplicity": None,
                          "B": None, "C": None, "zeta": None, "k": None,
                          "outer_charges": None, "outer_cutoff": None}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model: LigandFieldModel | None = None

    def calculate(self, atoms=None, properties=("zfs_tensor",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        p = self.parameters
        model = LigandFieldModel.from_atoms(
            self.atoms, metal_index=p.metal_index, ion=p.ion, charge=p.charge,
            multiplicity=p.multiplicity, donors=p.donors, donor_types=p.donor_types,
            donor_parameters=p.donor_parameters, outer_charges=p.outer_charges,
            outer_cutoff=p.outer_cutoff)
        eng = engine_for(model.ion, B=p.B, C=p.C, zeta=p.zeta, k=p.k)
        res = eng.solve(model.aom_matrix(), pt2="zfs_tensor_pt2" in properties)
        s = float(res.spin[0])
        mult = self.atoms.info.get("multiplicity") if p.multiplicity is None else p.multiplicity
        if mult is not None and int(mult) != int(round(2 * s + 1)):
            raise ValueError(f"the ligand field gives a {model.ion} ground state with S = {s:g} "
                             f"(multiplicity {int(round(2 * s + 1))}), but the structure says "
                             f"multiplicity {mult}")
        if s < 1:
            raise ValueError(f"{model.ion} here has a ground spin S = {s:g}: no zero-field "
                             "splitting (the engine treats S >= 1)")
        self.model = model
        t = res.zfs_tensor[0]
        zp = zfs_from_tensor(t)
        self.results = {
            "zfs_tensor": t, "zfs_D": zp.D, "zfs_E": zp.E, "g_tensor": res.g_tensor[0],
            "lf_energies": res.energies[0], "lf_energies_spin_free": res.energies_spin_free[0],
        }
        if res.zfs_tensor_pt2 is not None:
            self.results["zfs_tensor_pt2"] = res.zfs_tensor_pt2[0]
        self.last_result = res
        self.info = {**model.describe(), **eng.parameters(), "spin": s,
                     "orbital_gap_cm-1": (float(res.orbital_gap[0])
                                          if np.isfinite(res.orbital_gap[0]) else None),
                     "projection": float(res.projection[0]),
                     "zfs_fit_rms_cm-1": float(res.zfs_fit_rms[0])}
