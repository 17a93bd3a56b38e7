"""The dataset store: a thin layer over an ASE database.

Any URL ASE accepts works: a file name (``data.db``: SQLite, the default), ``*.json``, or
``postgresql://user:password@host:port/dbname`` (needs ``ase-db-backends`` and ``psycopg2``:
``pip install "molmag[postgresql]"``).

A row holds the structure (ASE's own columns), with

* key-value pairs ``total_charge`` (ASE reserves ``charge`` for the sum of initial charges;
  molmag's selections accept ``charge`` and translate it), ``multiplicity``, ``metal_index``,
  ``split``, ``structure_hash``, ``has_<label>`` for each label present, and the derived
  scalars ``zfs_D``, ``zfs_E`` (cm-1), ``kd_gap`` (first excited Kramers doublet, cm-1) and
  ``cf_convention`` so that selections such as ``"zfs_D<-50,split=train"`` work;
* ``energy`` and ``forces`` labels as ASE's single-point results (eV, eV/Angstrom), so that
  ``ase db`` and other ASE tools see them;
* the other labels in ``data["labels"]`` and one provenance record per label in
  ``data["provenance"]``.

Rows are identified by :func:`molmag.io.records.structure_hash`: adding a structure that is
already present adds only the labels it lacks.  :meth:`Dataset.add_many` writes in
transactions of ``chunk_size`` rows, so an interrupted import leaves whole chunks and a
re-run adds only what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect

from molmag.io.labels import LABELS, labels_equal
from molmag.io.provenance import Provenance
from molmag.io.records import Record
from molmag.physics.zfs import zfs_from_tensor

_ARRAY_LABELS = ("zfs_tensor", "kd_energies", "g_tensors", "cf_parameters", "charges", "dipole",
                 "polarizabilities", "atomic_dipoles")
_OWN_KEYS = frozenset({"total_charge", "multiplicity", "metal_index", "split", "structure_hash",
                       "zfs_D", "zfs_E", "kd_gap", "cf_convention"})
_CHARGE_RE = re.compile(r"(?<![A-Za-z0-9_])charge(?![A-Za-z0-9_])")


def translate_selection(selection: str | None) -> str | None:
    """Map molmag's field names onto the row's keys (``charge`` -> ``total_charge``)."""
    if not selection:
        return None
    return _CHARGE_RE.sub("total_charge", selection)


@dataclass
class ImportSummary:
    """What :meth:`Dataset.add_many` did."""

    read: int = 0
    new: int = 0
    merged: int = 0
    present: int = 0
    conflicts: list[tuple[int, list[str]]] = field(default_factory=list)

    def __iadd__(self, other: ImportSummary) -> ImportSummary:
        self.read += other.read
        self.new += other.new
        self.merged += other.merged
        self.present += other.present
        self.conflicts += other.conflicts
        return self


def failure_counts(failures: dict[str, dict]) -> dict[str, int]:
    """Recorded failures counted by stage (build, xtb, ligand_field, crystal_field)."""
    out: dict[str, int] = {}
    for f in failures.values():
        out[f.get("stage", "?")] = out.get(f.get("stage", "?"), 0) + 1
    return out


class Dataset:
    """A molmag dataset at an ASE-database URL (created on first write)."""

    def __init__(self, url: str | Path):
        self.url = str(url)
        self.db = connect(self.url, type=self._type(self.url))

    @staticmethod
    def _type(url: str) -> str:
        if "://" in url:
            return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "extract_from_name"
        return "json" if url.endswith(".json") else "db"

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.db.count()

    def count(self, selection: str | None = None) -> int:
        return self.db.count(translate_selection(selection))

    def get(self, id: int) -> Record:
        """The record of row ``id`` (KeyError if there is none)."""
        return self._row_to_record(self.db.get(id=id))

    def select(self, selection: str | None = None, **kwargs) -> Iterator[Record]:
        """Records matching an ASE selection string (e.g. ``"split=train,zfs_D<-50"``)."""
        for row in self.db.select(translate_selection(selection), **kwargs):
            yield self._row_to_record(row)

    def find(self, record_or_hash: Record | str) -> int | None:
        """Row id of a structure (by its structure hash), or None."""
        h = record_or_hash if isinstance(record_or_hash, str) else record_or_hash.hash
        for row in self.db.select(structure_hash=h, limit=1):
            return row.id
        return None

    @staticmethod
    def _row_to_record(row) -> Record:
        kvp = row.key_value_pairs
        data = row.get("data", {}) or {}
        labels = dict(data.get("labels", {}))
        if row.get("energy") is not None:
            labels["energy"] = row.energy
        if row.get("forces") is not None:
            labels["forces"] = row.forces
        atoms = Atoms(numbers=row.numbers, positions=row.positions, cell=row.cell, pbc=row.pbc)
        tags = {k: v for k, v in kvp.items() if k not in _OWN_KEYS and not k.startswith("has_")}
        return Record(atoms, charge=kvp.get("total_charge", 0),
                      multiplicity=kvp.get("multiplicity", 1),
                      metal_index=kvp.get("metal_index"), split=kvp.get("split"),
                      labels=labels, provenance=dict(data.get("provenance", {})), id=row.id,
                      tags=tags)

    # -- writing --------------------------------------------------------------------------
    @staticmethod
    def _row_content(record: Record) -> tuple[Atoms, dict, dict]:
        atoms = Atoms(numbers=record.atoms.numbers, positions=record.atoms.positions,
                      cell=record.atoms.cell, pbc=record.atoms.pbc)
        results = {k: record.labels[k] for k in ("energy", "forces") if k in record.labels}
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        kvp: dict = {"total_charge": record.charge, "multiplicity": record.multiplicity,
                     "structure_hash": record.hash}
        if record.metal_index is not None:
            kvp["metal_index"] = record.metal_index
        if record.split is not None:
            kvp["split"] = record.split
        kvp.update(record.tags)
        for name in record.labels:
            kvp[f"has_{name}"] = True
        if "zfs_tensor" in record.labels:
            p = zfs_from_tensor(record.labels["zfs_tensor"])
            kvp["zfs_D"], kvp["zfs_E"] = p.D, p.E
        kd = record.labels.get("kd_energies")
        if kd is not None and len(kd) > 1:
            kvp["kd_gap"] = float(kd[1] - kd[0])
        if "cf_parameters" in record.labels:
            kvp["cf_convention"] = record.labels["cf_parameters"]["convention"]
        data = {"labels": {k: record.labels[k] for k in _ARRAY_LABELS if k in record.labels},
                "provenance": {k: p.as_dict() for k, p in record.provenance.items()}}
        return atoms, kvp, data

    def _write_new(self, record: Record) -> int:
        atoms, kvp, data = self._row_content(record)
        return self.db.write(atoms, data=data, **kvp)

    def _rewrite(self, id: int, record: Record) -> None:
        atoms, kvp, data = self._row_content(record)
        self.db.update(id, atoms=atoms, data=data, **kvp)

    def add(self, record: Record) -> tuple[int, str, list[str]]:
        """Add a record; returns (row id, status, conflicting labels).

        status is ``"new"`` (row written), ``"merged"`` (the structure was present and the
        labels it lacked were added), or ``"present"`` (nothing to add).  A label present in
        both with a different value is kept as stored and reported as a conflict.
        """
        id = self.find(record)
        if id is None:
            return self._write_new(record), "new", []
        old = self.get(id)
        missing = {k: v for k, v in record.labels.items() if k not in old.labels}
        conflicts = [k for k, v in record.labels.items()
                     if k in old.labels and not labels_equal(k, old.labels[k], v)]
        if missing:
            merged = old.with_labels(missing, {k: record.provenance[k] for k in missing})
            self._rewrite(id, merged)
            return id, "merged", conflicts
        return id, "present", conflicts

    def add_many(self, records: Iterable[Record], chunk_size: int = 200,
                 progress: Callable[[int], None] | None = None) -> ImportSummary:
        """Add records in transactions of ``chunk_size``; an exception (or Ctrl-C) rolls back
        only the chunk in flight, so re-running adds exactly what is missing."""
        summary = ImportSummary()
        it = iter(records)
        while True:
            chunk_summary = ImportSummary()
            with self.db:
                for record in it:
                    id, status, conflicts = self.add(record)
                    chunk_summary.read += 1
                    setattr(chunk_summary, status, getattr(chunk_summary, status) + 1)
                    if conflicts:
                        chunk_summary.conflicts.append((id, conflicts))
                    if chunk_summary.read >= chunk_size:
                        break
            summary += chunk_summary
            if progress is not None and chunk_summary.read:
                progress(chunk_summary.read)
            if chunk_summary.read < chunk_size:
                return summary

    def set_labels(self, id: int, labels: dict, provenance: dict[str, Provenance | dict]) -> None:
        """Add or replace labels of row ``id`` (each with its provenance), in one transaction."""
        missing = set(labels) - set(provenance)
        if missing:
            raise ValueError(f"no provenance given for {sorted(missing)}")
        with self.db:
            self._rewrite(id, self.get(id).with_labels(labels, provenance))

    def set_labels_many(self, updates: Iterable[tuple[int, dict, dict]]) -> int:
        """Add or replace labels of several rows, ``(id, labels, provenance)`` each, in one
        transaction: all are written or none.  Returns how many rows changed."""
        n = 0
        with self.db:
            for id, labels, provenance in updates:
                if not labels:
                    continue
                missing = set(labels) - set(provenance)
                if missing:
                    raise ValueError(f"row {id}: no provenance given for {sorted(missing)}")
                self._rewrite(id, self.get(id).with_labels(labels, provenance))
                n += 1
        return n

    # -- run bookkeeping (kept in the database's metadata) ----------------------------------
    def failures(self) -> dict[str, dict]:
        """Failures recorded by labelling runs: key -> {"stage", "reason", "item", "date"}."""
        return dict((self.db.metadata or {}).get("molmag_failures", {}))

    def update_failures(self, add: dict[str, dict] | None = None,
                        remove: Iterable[str] = ()) -> None:
        """Record failures (``add``) and forget ones that have since succeeded (``remove``)."""
        add, remove = dict(add or {}), set(remove)
        if not add and not remove:
            return
        meta = dict(self.db.metadata or {})
        fails = dict(meta.get("molmag_failures", {}))
        for k in remove:
            fails.pop(k, None)
        fails.update(add)
        meta["molmag_failures"] = fails
        self.db.metadata = meta

    def set_split(self, ids: Iterable[int], split: str) -> None:
        if not str(split).isidentifier():
            raise ValueError(f"split {split!r} is not a simple name")
        with self.db:
            for id in ids:
                self.db.update(int(id), split=split)

    # -- statistics -----------------------------------------------------------------------
    def stats(self, selection: str | None = None) -> dict:
        """Counts, label coverage and value ranges (with units) of the rows selected."""
        n = 0
        splits: dict[str, int] = {}
        formulas: dict[str, int] = {}
        coverage = {k: 0 for k in LABELS}
        values: dict[str, list] = {k: [] for k in ("energy", "forces", "zfs_D", "zfs_E/D",
                                                   "kd_energies", "kd_gap", "g_values")}
        conventions: dict[str, int] = {}
        groups: dict[str, int] = {}
        for rec in self.select(selection):
            n += 1
            if "group" in rec.tags:
                groups[str(rec.tags["group"])] = groups.get(str(rec.tags["group"]), 0) + 1
            splits[rec.split or "(none)"] = splits.get(rec.split or "(none)", 0) + 1
            formulas[rec.formula] = formulas.get(rec.formula, 0) + 1
            for k, v in rec.labels.items():
                coverage[k] += 1
                if k == "energy":
                    values["energy"].append(v)
                elif k == "forces":
                    values["forces"].append(float(np.abs(v).max()))
                elif k == "zfs_tensor":
                    p = zfs_from_tensor(v)
                    values["zfs_D"].append(p.D)
                    values["zfs_E/D"].append(p.E_over_D)
                elif k == "kd_energies":
                    values["kd_energies"].append(float(v[-1]))
                    if len(v) > 1:
                        values["kd_gap"].append(float(v[1] - v[0]))
                elif k == "g_tensors":
                    g = np.asarray(v)
                    vals = g if g.ndim == 2 else np.linalg.eigvalsh(0.5 * (g + g.swapaxes(-1, -2)))
                    values["g_values"].extend(np.ravel(vals).tolist())
                elif k == "cf_parameters":
                    conventions[v["convention"]] = conventions.get(v["convention"], 0) + 1
        units = {"energy": "eV", "forces": "eV/Angstrom (max |F| per row)", "zfs_D": "cm-1",
                 "zfs_E/D": "", "kd_energies": "cm-1 (highest doublet)",
                 "kd_gap": "cm-1 (first excited doublet)", "g_values": ""}
        ranges = {k: {"min": float(np.min(v)), "max": float(np.max(v)),
                      "mean": float(np.mean(v)), "n": len(v), "unit": units[k]}
                  for k, v in values.items() if v}
        return {"url": self.url, "rows": n, "splits": splits, "formulas": formulas,
                "label_coverage": coverage,
                "label_units": {k: s.unit for k, s in LABELS.items()},
                "ranges": ranges, "cf_conventions": conventions, "groups": groups,
                "failures": failure_counts(self.failures())}
