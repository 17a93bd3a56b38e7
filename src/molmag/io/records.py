"""One dataset entry: a structure, its electronic state, its labels and their provenance."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from ase import Atoms

from molmag.io.errors import LabelError
from molmag.io.labels import LABELS, validate_label
from molmag.io.provenance import Provenance
from molmag.io.validation import validate_structure
from molmag.physics.elements import find_metal_index

#: Resolution of the positions that enter the structure hash (Angstrom).
HASH_RESOLUTION = 1e-6


def structure_hash(atoms: Atoms, charge: int = 0, multiplicity: int = 1,
                   point_charges=None) -> str:
    """SHA-256 (hex, 32 characters) of the elements, the positions rounded to 1e-6 Angstrom,
    the cell and periodicity, the charge, the spin multiplicity and the external point
    charges (rows ``[q, x, y, z]``, e and Angstrom, rounded to 1e-6; order-independent).

    Two rows with the same hash are the same structure in the same electronic state and the
    same external field; the dataset store uses it to make imports idempotent.  Without point
    charges the hash is what it was before they entered it.
    """
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    pos = np.rint(np.asarray(atoms.positions) / HASH_RESOLUTION).astype(np.int64)
    h.update(pos.tobytes())
    if atoms.pbc.any():
        h.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
        h.update(np.rint(np.asarray(atoms.cell) / HASH_RESOLUTION).astype(np.int64).tobytes())
    h.update(f"|{int(charge)}|{int(multiplicity)}".encode())
    pcs = _point_charge_array(point_charges)
    if pcs is not None:
        q = np.rint(pcs / HASH_RESOLUTION).astype(np.int64)
        q = q[np.lexsort(q.T[::-1])]  # the same field however the charges are listed
        h.update(b"|pc|")
        h.update(q.tobytes())
    return h.hexdigest()[:32]


def _point_charge_array(point_charges) -> np.ndarray | None:
    """Point charges as an (n, 4) float array ``[q, x, y, z]``, ``None`` when there are none."""
    if point_charges is None or isinstance(point_charges, str):
        # a string is a labeller's mode (ligand field: point_charges "none" | "xtb"), not a
        # field of charges
        return None
    arr = np.asarray(point_charges, dtype=float)
    if arr.size == 0:
        return None
    arr = arr.reshape(-1, 4)
    if not np.all(np.isfinite(arr)):
        raise LabelError("point_charges", "contain NaN or infinite values")
    return arr


def record_point_charges(provenance: dict) -> np.ndarray | None:
    """The external point charges a record's labels were computed in: the ``point_charges``
    parameter of the labels' provenance (QC parsers put them there), ``None`` if none.
    Labels computed in different point-charge fields cannot share a record."""
    found = None
    for name, p in provenance.items():
        params = p.parameters if isinstance(p, Provenance) else dict(p).get("parameters", {})
        pcs = _point_charge_array((params or {}).get("point_charges"))
        if pcs is None:
            continue
        if found is not None and (found.shape != pcs.shape or not np.allclose(found, pcs)):
            raise LabelError(f"provenance.{name}", "labels computed with different point "
                                                   "charges cannot share one structure")
        found = pcs
    return found


def _as_int(field_name: str, value: Any) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise LabelError(field_name, f"expected an integer, got {value!r}") from None
    if not np.isfinite(f) or f != int(f):
        raise LabelError(field_name, f"expected an integer, got {value!r}")
    return int(f)


#: Row keys molmag itself writes; tags may not use them.
RESERVED_KEYS = frozenset({"total_charge", "multiplicity", "metal_index", "split",
                           "structure_hash", "zfs_D", "zfs_E", "kd_gap", "cf_convention",
                           "charge", "id", "energy", "forces", "natoms", "formula", "mass",
                           "fmax", "smax", "volume", "age", "user", "calculator", "magmom",
                           "unique_id", "ctime", "mtime", "numbers", "positions", "cell", "pbc"})


def validate_tags(tags: dict | None) -> dict[str, Any]:
    """Tags are extra scalar key-value pairs of a row (e.g. ``group="disp0.1"``,
    ``delta_A=0.1``, ``ligand="O=P(C)(C)C"``), usable in selections.  Keys are identifiers not
    used by molmag; values are str, int, float or bool."""
    out: dict[str, Any] = {}
    for k, v in (tags or {}).items():
        if not str(k).isidentifier() or k in RESERVED_KEYS or str(k).startswith("has_"):
            raise LabelError("tags", f"{k!r} cannot be a tag name (reserved or not an identifier)")
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            raise LabelError(f"tags.{k}", "must be finite")
        if not isinstance(v, (str, int, float, bool)):
            raise LabelError(f"tags.{k}", f"must be a string or a number, got {type(v).__name__}")
        out[str(k)] = v
    return out


@dataclass
class Record:
    """A structure with charge, spin multiplicity, metal index, split tag, labels (see
    :mod:`molmag.io.labels`) and one :class:`Provenance` per label.

    ``tags`` are extra scalar key-value pairs (see :func:`validate_tags`).

    ``metal_index`` defaults to the structure's only d/f-block atom (``None`` if it has none;
    a structure with several must say which).  Construction validates every field and raises
    :class:`molmag.io.errors.LabelError` naming the one at fault; the structure passes
    :func:`molmag.io.validation.validate_structure` (a
    :class:`~molmag.io.errors.StructureError` otherwise), so no dataset ever stores a
    non-finite or clashing structure.
    """

    atoms: Atoms
    charge: int = 0
    multiplicity: int = 1
    metal_index: int | None = None
    split: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)
    id: int | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    #: False for rows read back from a dataset: they passed the gate when they were written
    #: (rows of datasets written before the gate are read as they are, not refused)
    gate: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self):
        n = len(self.atoms)
        self.charge = _as_int("charge", self.charge)
        self.multiplicity = _as_int("multiplicity", self.multiplicity)
        if self.multiplicity < 1:
            raise LabelError("multiplicity", f"must be >= 1, got {self.multiplicity}")
        nelec = int(np.sum(self.atoms.numbers)) - self.charge
        if nelec < 0:
            raise LabelError("charge", f"charge {self.charge:+d} leaves {nelec} electrons")
        if nelec % 2 == self.multiplicity % 2:
            raise LabelError("multiplicity",
                             f"multiplicity {self.multiplicity} is impossible with {nelec} "
                             f"electrons (charge {self.charge:+d}): an "
                             f"{'even' if nelec % 2 == 0 else 'odd'} count needs an "
                             f"{'odd' if nelec % 2 == 0 else 'even'} multiplicity")
        if self.metal_index is None:
            try:
                self.metal_index = find_metal_index(self.atoms)
            except ValueError as exc:
                raise LabelError("metal_index", str(exc)) from None
        else:
            self.metal_index = _as_int("metal_index", self.metal_index)
            if not 0 <= self.metal_index < n:
                raise LabelError("metal_index",
                                 f"{self.metal_index} is not an atom index (0..{n - 1})")
        # the one gate for structures: finite, sane, no clashes, a multiplicity the metal can hold
        if self.gate:
            validate_structure(self.atoms, charge=self.charge, multiplicity=self.multiplicity,
                               metal_index=self.metal_index)
        if self.split is not None:
            self.split = str(self.split).strip()
            if not self.split.isidentifier():
                raise LabelError("split",
                                 f"{self.split!r} is not a simple name (e.g. train, val, test)")
        self.tags = validate_tags(self.tags)
        self.labels = {k: validate_label(k, v, n) for k, v in self.labels.items()}
        prov = {}
        for k, p in self.provenance.items():
            if k not in LABELS:
                raise LabelError("provenance", f"record for unknown label {k!r}")
            try:
                prov[k] = p if isinstance(p, Provenance) else Provenance.model_validate(p)
            except Exception as exc:  # pydantic ValidationError: keep its explanation
                raise LabelError(f"provenance.{k}", str(exc).replace("\n", " ")) from None
        for k in self.labels:
            prov.setdefault(k, Provenance())
        self.provenance = {k: v for k, v in prov.items() if k in self.labels}
        record_point_charges(self.provenance)  # one point-charge field per record

    @property
    def point_charges(self) -> np.ndarray | None:
        """External point charges ``[q, x, y, z]`` of the labels (from their provenance)."""
        return record_point_charges(self.provenance)

    @property
    def hash(self) -> str:
        return structure_hash(self.atoms, self.charge, self.multiplicity, self.point_charges)

    @property
    def formula(self) -> str:
        return self.atoms.get_chemical_formula()

    def with_labels(self, labels: dict[str, Any],
                    provenance: dict[str, Provenance | dict]) -> Record:
        """A copy with ``labels`` added (or replaced), each with its provenance."""
        new_labels = {**self.labels, **labels}
        new_prov = {**self.provenance, **provenance}
        # Record validates the dicts into Provenance
        return Record(self.atoms.copy(), self.charge, self.multiplicity, self.metal_index,
                      self.split, new_labels, cast("dict[str, Provenance]", new_prov), self.id,
                      dict(self.tags),
                      gate=self.gate)
