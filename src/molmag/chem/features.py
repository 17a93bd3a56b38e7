"""Structural features of a metal's first coordination sphere.

The numbers the papers correlate with magnetic anisotropy:

* metal-donor distances d_ML (Angstrom);
* the tetrahedral order parameter of a 4-coordinate metal (Zaverkin et al., J. Chem. Theory
  Comput. 2022, eq. 14)::

      q = 1 - 3/8 sum_{i<j} (cos theta_ij + 1/3)^2

  over the six donor-M-donor angles theta_ij: q = 1 for a perfect tetrahedron, 0.5 for a
  square plane, and 0 on average for randomly placed donors;
* intraligand donor-M-donor ("bite") angles, e.g. the two N-Co-N angles of [Co(pdms)2]2-;
* for a pentagonal bipyramid (Dy(H2O)5L2): the axial L-M-L angle, the planarity of the five
  equatorial donors (MPP, SDP of T. Lu, J. Mol. Model. 27, 263 (2021)) and the atomic numbers
  of the axial donors (GAUSS-II, Khatibi et al. 2026).

Donors.  Unless given explicitly, the donors of metal M are the non-hydrogen atoms X with
``d(M, X) < DONOR_FACTOR * (r_M + r_X)``, r the covalent radii of :data:`ase.data.covalent_radii`
(Cordero et al. 2008) and ``DONOR_FACTOR = 1.2`` (the default of
:func:`molmag.physics.elements.bonded_neighbours`).  That keeps Co(II)-N up to 2.36 Angstrom and
Dy(III)-O up to 3.10 Angstrom, and leaves out the second shell (C, S, P behind a donor).
Hydrogen atoms are never donors by default (give hydrides explicitly).

Ligands are the connected fragments of the bond graph (``d_ij < DONOR_FACTOR (r_i + r_j)``)
with the metal removed; two donors in the same fragment are an intraligand pair.

:func:`features_table` computes the same numbers for many structures, vectorised over frames
that share elements, metal, donors and ligand pairs (an MD trajectory of one complex).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from molmag.physics.elements import bonded_neighbours, find_metal_index

#: Bond criterion: d < DONOR_FACTOR x (sum of covalent radii), for donors and ligand bonds.
DONOR_FACTOR = 1.2
#: Ideal angle between adjacent equatorial donors of a pentagonal bipyramid (degrees).
PENTAGON_ANGLE_DEG = 72.0


# --- topology: metal, donors, ligands -----------------------------------------------------
def _name(atoms: Atoms, i: int) -> str:
    return f"{chemical_symbols[atoms.numbers[i]]}{i}"


def _metal(atoms: Atoms, metal_index: int | None) -> int:
    if metal_index is None:
        m = find_metal_index(atoms)
        if m is None:
            raise ValueError(f"{atoms.get_chemical_formula()} has no d/f-block atom; give the "
                             "metal index explicitly")
        return m
    m = int(metal_index)
    if not 0 <= m < len(atoms):
        raise ValueError(f"{atoms.get_chemical_formula()}: metal index {m} is not an atom index "
                         f"(0..{len(atoms) - 1})")
    return m


def donor_indices(atoms: Atoms, metal_index: int | None = None,
                  factor: float = DONOR_FACTOR) -> np.ndarray:
    """Indices (ascending) of the non-hydrogen atoms X bonded to the metal M:
    d(M, X) < factor x (r_M + r_X), covalent radii in Angstrom, minimum image in periodic cells."""
    m = _metal(atoms, metal_index)
    return np.array(sorted(j for j in bonded_neighbours(atoms, m, factor=factor)
                           if atoms.numbers[j] > 1), dtype=int)


def _donors(atoms: Atoms, m: int, donors: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if donors is None:
        d = donor_indices(atoms, m)
        if len(d) == 0:
            raise ValueError(f"{atoms.get_chemical_formula()}: no atom is bonded to "
                             f"{_name(atoms, m)} (donor criterion d < {DONOR_FACTOR} x sum of "
                             "covalent radii); give the donors explicitly")
        return d
    d = np.asarray(donors, dtype=int).ravel()
    bad = [int(i) for i in d if not 0 <= i < len(atoms) or i == m]
    if bad or len(set(d.tolist())) != len(d):
        raise ValueError(f"{atoms.get_chemical_formula()}: donors {d.tolist()} must be distinct "
                         f"atom indices (0..{len(atoms) - 1}) other than the metal {m}")
    return d


def ligand_fragments(atoms: Atoms, metal_index: int | None = None,
                     factor: float = DONOR_FACTOR) -> np.ndarray:
    """Ligand label of every atom: the connected fragments (0, 1, ...) of the bond graph
    d_ij < factor x (r_i + r_j) with the metal removed; the metal gets -1."""
    m = _metal(atoms, metal_index)
    keep = np.delete(np.arange(len(atoms)), m)
    if atoms.pbc.any():
        d = atoms.get_all_distances(mic=True)[np.ix_(keep, keep)]
    else:
        d = squareform(pdist(atoms.positions[keep]))
    r = covalent_radii[atoms.numbers[keep]]
    _, labels = connected_components(csr_matrix(d < factor * (r[:, None] + r[None, :])),
                                     directed=False)
    out = np.full(len(atoms), -1)
    out[keep] = labels
    return out


def _intra_pairs(atoms: Atoms, m: int, donors: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of positions in ``donors`` whose atoms share a ligand."""
    lab = ligand_fragments(atoms, m)[donors]
    return [(a, b) for a in range(len(donors)) for b in range(a + 1, len(donors))
            if lab[a] == lab[b]]


def _vectors(atoms: Atoms, m: int, donors: np.ndarray) -> np.ndarray:
    """Metal -> donor vectors (k, 3), Angstrom (minimum image in periodic cells)."""
    if atoms.pbc.any():
        return atoms.get_distances(m, donors, mic=True, vector=True).reshape(-1, 3)
    return atoms.positions[donors] - atoms.positions[m]


# --- geometry on stacks of frames: vec has shape (F, k, 3), metal -> donor ------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _angles_deg(u: np.ndarray, pairs) -> np.ndarray:
    """Angles (F, n_pairs), degrees, between unit vectors u[:, a] and u[:, b]."""
    a, b = np.asarray(pairs, dtype=int).reshape(-1, 2).T
    cos = np.einsum("fpi,fpi->fp", u[:, a], u[:, b])
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _q_tet(vec: np.ndarray) -> np.ndarray:
    """q = 1 - 3/8 sum_{i<j} (cos theta_ij + 1/3)^2 for (F, 4, 3) vectors."""
    u = _unit(vec)
    cos = np.einsum("fai,fbi->fab", u, u)
    i, j = np.triu_indices(4, 1)
    return 1.0 - 0.375 * np.sum((cos[:, i, j] + 1.0 / 3.0) ** 2, axis=1)


def _plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MPP and SDP (Angstrom) of (F, n, 3) points; see :func:`planarity`."""
    x = points - points.mean(axis=1, keepdims=True)
    normal = np.linalg.svd(x, full_matrices=False)[2][:, -1]  # smallest singular value
    h = np.einsum("fni,fi->fn", x, normal)
    return np.sqrt(np.mean(h**2, axis=1)), h.max(axis=1) - h.min(axis=1)


def _pentagonal_bipyramid(vec: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """Pentagonal-bipyramid features of (F, 7, 3) vectors; z: atomic numbers of the donors."""
    f = np.arange(len(vec))
    u = _unit(vec)
    i, j = np.triu_indices(7, 1)
    cos = np.einsum("fai,fbi->fab", u, u)[:, i, j]
    best = np.argmin(cos, axis=1)  # the pair closest to 180 degrees is axial
    a, b = i[best], j[best]
    eq_mask = np.ones((len(vec), 7), bool)
    eq_mask[f, a] = eq_mask[f, b] = False
    eq = np.nonzero(eq_mask)[1].reshape(-1, 5)
    eq_vec = np.take_along_axis(vec, eq[..., None], axis=1)
    mpp, sdp = _plane(eq_vec)
    # adjacent equatorial donors: sort them by azimuth about the axial direction
    axis = _unit(u[f, a] - u[f, b])
    e1 = _unit(eq_vec[:, 0] - np.einsum("fi,fi->f", eq_vec[:, 0], axis)[:, None] * axis)
    e2 = np.cross(axis, e1)
    phi = np.arctan2(np.einsum("fni,fi->fn", eq_vec, e2), np.einsum("fni,fi->fn", eq_vec, e1))
    ring = np.take_along_axis(_unit(eq_vec), np.argsort(phi, axis=1)[..., None], axis=1)
    adjacent = _angles_deg(ring, [(k, (k + 1) % 5) for k in range(5)])
    d = np.linalg.norm(vec, axis=-1)
    za, zb = np.sort(np.stack([z[a], z[b]]), axis=0)
    return {"Z_axial_1": za, "Z_axial_2": zb,
            "angle_LML_axial_deg": np.degrees(np.arccos(np.clip(cos[f, best], -1.0, 1.0))),
            "MPP_eq_A": mpp, "SDP_eq_A": sdp,
            "eq_angle_dev_deg": np.mean(np.abs(adjacent - PENTAGON_ANGLE_DEG), axis=1),
            "d_ML_axial_mean_A": 0.5 * (d[f, a] + d[f, b]),
            "d_ML_eq_mean_A": np.take_along_axis(d, eq, axis=1).mean(axis=1)}


def _features(vec: np.ndarray, z: np.ndarray,
              pairs: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """All features applicable to (F, k, 3) metal -> donor vectors, each an array (F,)."""
    nf, k = vec.shape[:2]
    d = np.linalg.norm(vec, axis=-1)
    out = {"n_donors": np.full(nf, k), "d_ML_mean_A": d.mean(axis=1),
           "d_ML_min_A": d.min(axis=1), "d_ML_max_A": d.max(axis=1)}
    if k == 4:
        out["q_tet"] = _q_tet(vec)
    if pairs:
        ang = _angles_deg(_unit(vec), pairs)
        out.update({"n_intra_pairs": np.full(nf, len(pairs)),
                    "angle_intra_mean_deg": ang.mean(axis=1),
                    "angle_intra_min_deg": ang.min(axis=1),
                    "angle_intra_max_deg": ang.max(axis=1)})
    if k == 7:
        out.update(_pentagonal_bipyramid(vec, z))
    return out


def _row(features: dict[str, np.ndarray], f: int) -> dict:
    return {key: (int(v[f]) if np.issubdtype(v.dtype, np.integer) else float(v[f]))
            for key, v in features.items()}


# --- public functions on one structure ----------------------------------------------------
def metal_donor_distances(atoms: Atoms, metal_index: int | None = None,
                          donors: Sequence[int] | np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Metal-donor distances d_ML (Angstrom) and the donor indices, in the same order."""
    m = _metal(atoms, metal_index)
    d = _donors(atoms, m, donors)
    return np.linalg.norm(_vectors(atoms, m, d), axis=1), d


def tetrahedral_order_parameter(atoms: Atoms, metal_index: int | None = None,
                                donors: Sequence[int] | np.ndarray | None = None
                                ) -> tuple[float, float]:
    """Tetrahedral order parameter q and mean metal-donor distance (Angstrom).

    q = 1 - 3/8 sum_{i<j} (cos theta_ij + 1/3)^2 over the six angles donor_i-M-donor_j
    (Zaverkin et al. 2022, eq. 14): 1 for a tetrahedron, 1/2 for a square plane, 0 on average
    for random directions; d_MN = 1/4 sum_i d_i.  Needs exactly four donors.
    """
    m = _metal(atoms, metal_index)
    d = _donors(atoms, m, donors)
    if len(d) != 4:
        raise ValueError(f"{atoms.get_chemical_formula()}: the tetrahedral order parameter needs 4 "
                         f"donors, {_name(atoms, m)} has {len(d)} "
                         f"({', '.join(_name(atoms, i) for i in d)})")
    vec = _vectors(atoms, m, d)[None]
    return float(_q_tet(vec)[0]), float(np.linalg.norm(vec, axis=-1).mean())


def intraligand_angles(atoms: Atoms, metal_index: int | None = None,
                       donors: Sequence[int] | np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Donor-M-donor angles (degrees) of the donor pairs in the same ligand, and those pairs
    (n, 2) as atom indices.  A ligand is a connected fragment of the bond graph without the
    metal (see :func:`ligand_fragments`); monodentate ligands give no pair."""
    m = _metal(atoms, metal_index)
    d = _donors(atoms, m, donors)
    pairs = _intra_pairs(atoms, m, d)
    if not pairs:
        return np.zeros(0), np.zeros((0, 2), dtype=int)
    ang = _angles_deg(_unit(_vectors(atoms, m, d)[None]), pairs)[0]
    return ang, d[np.asarray(pairs)]


def planarity(atoms: Atoms, plane_atoms: Sequence[int]) -> tuple[float, float]:
    """Molecular planarity parameter MPP and span of deviation from plane SDP (Angstrom).

    T. Lu, J. Mol. Model. 27, 263 (2021): fit the least-squares plane through the atoms (the
    normal n is the right-singular vector of the centred coordinates with the smallest singular
    value); with h_i = (r_i - r_mean) . n the signed distances,

        MPP = sqrt(1/N sum_i h_i^2),     SDP = max_i h_i - min_i h_i.

    The GAUSS-II paper (Khatibi et al. 2026) describes MPP loosely as "the sum of distances"
    from the plane; we follow Lu's root-mean-square definition.
    """
    idx = np.asarray(plane_atoms, dtype=int).ravel()
    if len(idx) < 3 or len(set(idx.tolist())) != len(idx) or idx.min() < 0 \
            or idx.max() >= len(atoms):
        raise ValueError(f"{atoms.get_chemical_formula()}: a plane needs 3 or more distinct atom "
                         f"indices (0..{len(atoms) - 1}), got {idx.tolist()}")
    pos = atoms.positions[idx]
    if atoms.pbc.any():  # unwrap around the first atom
        pos = pos[0] + atoms.get_distances(idx[0], idx, mic=True, vector=True)
    mpp, sdp = _plane(pos[None])
    return float(mpp[0]), float(sdp[0])


def pentagonal_bipyramid_features(atoms: Atoms, metal_index: int | None = None,
                                  donors: Sequence[int] | np.ndarray | None = None) -> dict:
    """Features of a 7-coordinate metal (e.g. Dy(H2O)5L2), as in GAUSS-II.

    The axial donors are the pair with the largest donor-M-donor angle, the other five are
    equatorial.  Returns ``Z_axial_1 <= Z_axial_2`` (atomic numbers of the axial donors, equal
    for L2 complexes), ``angle_LML_axial_deg``, ``MPP_eq_A`` and ``SDP_eq_A`` (:func:`planarity`
    of the five equatorial donor atoms, metal not included), ``eq_angle_dev_deg`` (mean of
    |theta - 72 deg| over the five angles between donors adjacent around the axis),
    ``d_ML_axial_mean_A`` and ``d_ML_eq_mean_A``.  Raises ``ValueError`` unless there are 7 donors.
    """
    m = _metal(atoms, metal_index)
    d = _donors(atoms, m, donors)
    if len(d) != 7:
        raise ValueError(f"{atoms.get_chemical_formula()}: a pentagonal bipyramid needs 7 donors, "
                         f"{_name(atoms, m)} has {len(d)} "
                         f"({', '.join(_name(atoms, i) for i in d)})")
    return _row(_pentagonal_bipyramid(_vectors(atoms, m, d)[None], atoms.numbers[d]), 0)


def structure_features(atoms: Atoms, metal_index: int | None = None,
                       donors: Sequence[int] | np.ndarray | None = None) -> dict:
    """The features that apply to this coordination sphere, keys named with their units.

    Always ``n_donors`` and ``d_ML_mean_A``, ``d_ML_min_A``, ``d_ML_max_A``; with chelating
    ligands ``n_intra_pairs`` and ``angle_intra_{mean,min,max}_deg``; 4 donors: ``q_tet``;
    7 donors: the :func:`pentagonal_bipyramid_features`.  All are invariant under rotation,
    translation and renumbering of the atoms.
    """
    m = _metal(atoms, metal_index)
    d = _donors(atoms, m, donors)
    feats = _features(_vectors(atoms, m, d)[None], atoms.numbers[d], _intra_pairs(atoms, m, d))
    return _row(feats, 0)


def features_table(records_or_atoms: Iterable, metal_index: int | None = None,
                   names: Sequence[str] | None = None,
                   donors: str | Sequence[int] = "auto") -> list[dict]:
    """:func:`structure_features` of many structures (``ase.Atoms`` or records with ``.atoms``
    and ``.metal_index``; ``metal_index`` overrides theirs), one dict per structure, in order.

    ``donors``: ``"auto"`` finds donors and ligand pairs on each structure, except for records
    tagged ``donors="i,j,..."`` (samples of a built structure: see ``molmag label``), whose
    donors are the tag's and whose ligand pairs are those of the first structure with that
    tag; ``"first"`` takes donors and pairs from the first structure for all (frames of one
    complex: displacements, MD), so that a displaced non-donor never becomes a donor; a list
    of indices fixes them for all.  The geometry is computed at once for all structures that
    share elements, metal, donors and ligand pairs.  Errors name the structure (``names[i]``,
    default its position).
    """
    if isinstance(donors, str) and donors not in ("auto", "first"):
        raise ValueError(f"donors must be 'auto', 'first' or a list of indices, got {donors!r}")
    fixed = None if isinstance(donors, str) else [int(i) for i in donors]
    topology: dict = {}  # (tag or "first") -> (donors, pairs)
    groups: dict[tuple, list[int]] = {}
    vecs, zs, pairs_of = [], {}, {}
    for n, item in enumerate(records_or_atoms):
        atoms = getattr(item, "atoms", item)
        tag = (getattr(item, "tags", None) or {}).get("donors")
        try:
            m = _metal(atoms, metal_index if metal_index is not None
                       else getattr(item, "metal_index", None))
            key0: str | tuple[str, str] | None
            if fixed is not None or donors == "first":
                key0 = "first"
                given = fixed
            elif tag:
                key0 = ("tag", str(tag))
                given = [int(x) for x in str(tag).split(",") if x.strip()]
            else:
                key0, given = None, None
            if key0 is not None and key0 in topology:
                d, pairs = topology[key0]
            else:
                d = _donors(atoms, m, given)
                pairs = _intra_pairs(atoms, m, d)
                if key0 is not None:
                    topology[key0] = (d, pairs)
        except ValueError as exc:
            raise ValueError(f"structure {names[n] if names is not None else n}: {exc}") from None
        key = (atoms.numbers[d].tobytes(), d.tobytes() if key0 is not None else b"", tuple(pairs))
        groups.setdefault(key, []).append(n)
        vecs.append(_vectors(atoms, m, d))
        zs[key], pairs_of[key] = atoms.numbers[d], pairs
    rows: list[dict] = [{} for _ in range(len(vecs))]
    for key, members in groups.items():
        feats = _features(np.stack([vecs[i] for i in members]), zs[key], pairs_of[key])
        for f, i in enumerate(members):
            rows[i] = _row(feats, f)
    return rows


__all__ = [
    "DONOR_FACTOR",
    "donor_indices",
    "features_table",
    "intraligand_angles",
    "ligand_fragments",
    "metal_donor_distances",
    "pentagonal_bipyramid_features",
    "planarity",
    "structure_features",
    "tetrahedral_order_parameter",
]
