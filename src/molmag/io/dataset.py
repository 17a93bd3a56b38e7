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

**Several writers at once** (two ``molmag data import`` runs, N ``molmag label`` runs, on one
machine or many).  Every write transaction holds the dataset's one writer lock from its first
statement: ``BEGIN IMMEDIATE`` on SQLite (waiting up to :attr:`Dataset.busy_timeout` for it,
where a plain deferred transaction that read first and then tries to write is refused with
"database is locked"), a transaction-scoped advisory lock on PostgreSQL (so that "is this
structure present?" and "write it" cannot interleave with another writer, and the id that
ASE reads back from the id sequence is this session's own).  Creating the tables is done
under the same lock, so two writers that meet an empty database do not both create them.  A
transaction that still fails for a transient reason (busy, deadlock, serialisation, a
dropped connection) is rolled back and replayed, :attr:`Dataset.retries` times at most.

**Leases** (:meth:`Dataset.claim`, :meth:`Dataset.renew`, :meth:`Dataset.release`) are rows
of a table ``molmag_leases`` (key, holder, expiry time) next to ASE's tables: a labelling run
claims the rows it is about to label, renews its leases while it works, and releases them
with the labels' transaction; the leases of a run that dies expire and another run takes the
work over.  ASE's own tools ignore the table.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.db.sqlite import SQLite3Database

from molmag.io.labels import LABELS, labels_equal
from molmag.io.provenance import Provenance
from molmag.io.records import Record
from molmag.physics.zfs import zfs_from_tensor


def holder_is_dead(holder: str) -> bool:
    """Whether a lease holder named ``host:pid:suffix`` (as ``molmag label`` names its runs)
    is a process of this host that no longer exists: its leases need not wait for their
    expiry (a run killed with kill -9 and restarted on the same machine continues at once).
    Holders on other hosts, or not in that form, are judged by expiry alone."""
    import socket

    parts = str(holder).split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:   # alive, another user's
        return False
    return False

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


# -- database back ends that are safe with several writers -----------------------------------
class _LockedTransactions:
    """``with db:`` as one write transaction that holds the back end's writer lock
    (``_lock``) from its start, committed on success and rolled back on any error; ASE's own
    context manager neither locks first nor rolls back."""

    def _lock(self, con) -> None:
        raise NotImplementedError

    def __enter__(self):
        assert self.connection is None
        self.change_count = 0
        con = self._connect()
        try:
            self._initialize(con)
            self._lock(con)
        except BaseException:
            con.close()
            raise
        self.connection = con
        return self

    def __exit__(self, exc_type, exc_value, tb):
        con, self.connection = self.connection, None
        try:
            if exc_type is None:
                con.commit()
            else:
                con.rollback()
        finally:
            con.close()


class _SQLiteStore(_LockedTransactions, SQLite3Database):
    """ASE's SQLite database with a long busy timeout and write transactions that take the
    write lock first (``BEGIN IMMEDIATE``).

    ASE opens a deferred transaction: a chunk that first looks a structure up (a shared lock)
    and then writes needs to upgrade its lock, and when two processes do that at once SQLite
    refuses one of them at once with "database is locked" instead of waiting.  Taking the
    write lock at the start makes the second writer wait (up to ``busy_timeout`` seconds)."""

    busy_timeout = 600.0

    def _connect(self):
        return sqlite3.connect(self.filename, timeout=self.busy_timeout)

    def _initialize(self, con):
        if self.initialized:
            return
        (n,) = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='systems'").fetchone()
        if n == 0 and not con.in_transaction:
            # two writers meeting a new file: only one creates the tables
            con.execute("BEGIN IMMEDIATE")
        super()._initialize(con)
        if n == 0 and con.in_transaction:
            con.commit()

    def _lock(self, con) -> None:
        con.execute("BEGIN IMMEDIATE")


_PG_LOCK = 0x6D6F6C6D61670001  # the advisory-lock key of molmag's writers ("molmag" + 1)


def _postgres_store(url: str):
    """ASE's PostgreSQL database (ase-db-backends) made safe for several writers:

    * write transactions and table creation hold a transaction-scoped advisory lock, so
      look-up-then-insert cannot interleave and two writers do not both create the tables
      (UniqueViolation in ``CREATE TABLE``);
    * the new row's id is read with ``currval`` (this session's), not the sequence's
      ``last_value`` (anyone's: another writer's id gave ForeignKeyViolation on ``species``);
    * the connection can roll back (ase-db-backends' wrapper has no ``rollback``, which
      turned every failed transaction into an AttributeError)."""
    try:
        import psycopg2
        from ase_db_backends.postgresql import Connection, PostgreSQLDatabase
    except ImportError as exc:
        raise ValueError(f"a PostgreSQL dataset needs ase-db-backends and psycopg2 "
                         f"(pip install \"molmag[postgresql]\"): {exc}") from None

    class _Connection(Connection):
        def rollback(self):
            self.con.rollback()

    class _PostgresStore(_LockedTransactions, PostgreSQLDatabase):
        def _connect(self):
            return _Connection(psycopg2.connect(self.filename, connect_timeout=30))

        def _initialize(self, con):
            if self.initialized:
                return
            con.cursor().execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            super()._initialize(con)

        def get_last_id(self, cur):
            cur.execute("SELECT currval(pg_get_serial_sequence('systems', 'id'))")
            return int(cur.fetchone()[0])

        def _lock(self, con) -> None:
            con.cursor().execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")

    return _PostgresStore(url)


def _transient(exc: BaseException) -> bool:
    """Is ``exc`` a failure that a replay of the same transaction may not meet again?"""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    try:
        import psycopg2
    except ImportError:
        return False
    return isinstance(exc, (psycopg2.extensions.TransactionRollbackError,
                            psycopg2.OperationalError))


_T = TypeVar("_T")


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
    """A molmag dataset at an ASE-database URL (created on first write).

    Safe with several writing processes (see the module's notes): ``busy_timeout`` is how
    long an SQLite writer waits for the lock, ``retries`` how often a transaction that failed
    for a transient reason is replayed."""

    busy_timeout = 600.0
    retries = 8

    def __init__(self, url: str | Path, busy_timeout: float | None = None):
        self.url = str(url)
        kind = self._type(self.url)
        self._is_sql = kind in ("db", "postgresql")
        if kind == "db":
            self.db = _SQLiteStore(os.path.abspath(os.path.expanduser(self.url)),
                                   use_lock_file=False)
            self.db.busy_timeout = self.busy_timeout if busy_timeout is None else busy_timeout
        elif kind == "postgresql":
            self.db = _postgres_store(self.url)
        else:
            self.db = connect(self.url, type=kind)

    @staticmethod
    def _type(url: str) -> str:
        if "://" in url:
            return "postgresql" if url.startswith(("postgresql://", "postgres://")) \
                else "extract_from_name"
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
                      tags=tags, gate=False)

    # -- transactions -----------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """One write transaction holding the writer lock (joins the one already open)."""
        if getattr(self.db, "connection", None) is not None:
            yield self
            return
        with self.db:
            yield self

    def retrying(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` in a transaction, replayed (after a randomised back-off) when it fails for
        a transient reason; ``fn`` must be safe to run again (take its input as a list)."""
        for attempt in range(self.retries + 1):
            try:
                with self.transaction():
                    return fn()
            except Exception as exc:
                if not _transient(exc) or attempt == self.retries or \
                        getattr(self.db, "connection", None) is not None:
                    raise
                time.sleep(min(10.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _cursor(self):
        return self.db.connection.cursor()

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
        return self.retrying(lambda: self._add(record))

    def _add(self, record: Record) -> tuple[int, str, list[str]]:
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
        only the chunk in flight, so re-running adds exactly what is missing.  Another
        writer's lock is waited for, and a chunk that fails for a transient reason is
        replayed whole."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
        summary = ImportSummary()
        it = iter(records)
        while True:
            chunk = list(islice(it, chunk_size))
            if not chunk:
                return summary

            def write_chunk(chunk=chunk) -> ImportSummary:
                out = ImportSummary()
                for record in chunk:
                    id, status, conflicts = self._add(record)
                    out.read += 1
                    setattr(out, status, getattr(out, status) + 1)
                    if conflicts:
                        out.conflicts.append((id, conflicts))
                return out

            chunk_summary = self.retrying(write_chunk)
            summary += chunk_summary
            if progress is not None:
                progress(chunk_summary.read)
            if len(chunk) < chunk_size:
                return summary

    def set_labels(self, id: int, labels: dict, provenance: dict[str, Provenance | dict]) -> None:
        """Add or replace labels of row ``id`` (each with its provenance), in one transaction."""
        missing = set(labels) - set(provenance)
        if missing:
            raise ValueError(f"no provenance given for {sorted(missing)}")
        self.retrying(lambda: self._rewrite(id, self.get(id).with_labels(labels, provenance)))

    def set_labels_many(self, updates: Iterable[tuple[int, dict, dict]],
                        release: tuple[str, Iterable[str]] | None = None) -> int:
        """Add or replace labels of several rows, ``(id, labels, provenance)`` each, in one
        transaction: all are written or none.  ``release=(holder, keys)`` gives up those
        leases in the same transaction (the labels are stored before anyone else can take
        the rows).  Returns how many rows changed."""
        updates = list(updates)
        for id, labels, provenance in updates:
            missing = set(labels) - set(provenance)
            if missing:
                raise ValueError(f"row {id}: no provenance given for {sorted(missing)}")
        release_keys = list(release[1]) if release else []

        def write() -> int:
            n = 0
            for id, labels, provenance in updates:
                if labels:
                    self._rewrite(id, self.get(id).with_labels(labels, provenance))
                    n += 1
            if release:
                self._release(release[0], release_keys)
            return n

        return self.retrying(write)

    # -- leases (who is working on what; see the module's notes) ---------------------------
    @property
    def _sql(self) -> bool:
        """SQLite or PostgreSQL (leases need SQL); a JSON file has a single writer, and
        there every claim succeeds."""
        return self._is_sql

    def _lease_table(self) -> None:
        self._cursor().execute("CREATE TABLE IF NOT EXISTS molmag_leases (key TEXT PRIMARY KEY, "
                               "holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)")

    def claim(self, keys: Iterable[str], holder: str, seconds: float) -> list[str]:
        """Take leases on ``keys`` for ``seconds``: those free, expired or already
        ``holder``'s are taken (and returned, in the order given); those another holder keeps
        alive are left."""
        keys = list(dict.fromkeys(keys))
        if not self._sql:
            return keys

        def take() -> list[str]:
            self._lease_table()
            cur = self._cursor()
            now = time.time()
            got = []
            for key in keys:
                cur.execute("SELECT holder, expires FROM molmag_leases WHERE key=?", (key,))
                row = cur.fetchone()
                if row is None:
                    cur.execute("INSERT INTO molmag_leases VALUES (?, ?, ?)",
                                (key, holder, now + seconds))
                elif row[0] == holder or row[1] < now or holder_is_dead(row[0]):
                    cur.execute("UPDATE molmag_leases SET holder=?, expires=? WHERE key=?",
                                (holder, now + seconds, key))
                else:
                    continue
                got.append(key)
            return got

        return self.retrying(take) if keys else []

    def renew(self, holder: str, seconds: float) -> int:
        """Extend every lease of ``holder`` to ``seconds`` from now; returns how many."""
        if not self._sql:
            return 0

        def extend() -> int:
            self._lease_table()
            cur = self._cursor()
            cur.execute("UPDATE molmag_leases SET expires=? WHERE holder=?",
                        (time.time() + seconds, holder))
            return cur.rowcount if hasattr(cur, "rowcount") else cur.cur.rowcount

        return self.retrying(extend)

    def _release(self, holder: str, keys: list[str] | None) -> None:
        if not self._sql:
            return
        self._lease_table()
        cur = self._cursor()
        if keys is None:
            cur.execute("DELETE FROM molmag_leases WHERE holder=?", (holder,))
        for key in keys or []:
            cur.execute("DELETE FROM molmag_leases WHERE key=? AND holder=?", (key, holder))

    def release(self, holder: str, keys: Iterable[str] | None = None) -> None:
        """Give up ``holder``'s leases on ``keys`` (all of its leases when None)."""
        keys = None if keys is None else list(keys)
        self.retrying(lambda: self._release(holder, keys))

    def leases(self) -> dict[str, tuple[str, float]]:
        """Every lease: key -> (holder, expiry as a Unix time); expired ones included."""
        if not self._sql:
            return {}

        def read() -> dict[str, tuple[str, float]]:
            self._lease_table()
            cur = self._cursor()
            cur.execute("SELECT key, holder, expires FROM molmag_leases")
            return {k: (h, float(e)) for k, h, e in cur.fetchall()}

        return self.retrying(read)

    # -- run bookkeeping (kept in the database's metadata) ----------------------------------
    def _metadata(self) -> dict:
        """The metadata as stored now (ASE caches what it read first, which another writer
        may have changed since)."""
        if not self._is_sql:  # JSON files: ASE's own
            name = getattr(self.db, "filename", None)
            if isinstance(name, str) and not os.path.exists(name):
                return {}  # not written yet
            return dict(self.db.metadata or {})
        with self.db.managed_connection() as con:
            cur = con.cursor()
            cur.execute("SELECT value FROM information WHERE name='metadata'")
            row = cur.fetchone()
        return json.loads(row[0]) if row else {}

    def failures(self) -> dict[str, dict]:
        """Failures recorded by labelling runs: key -> {"stage", "reason", "item", "date"}."""
        return dict(self._metadata().get("molmag_failures", {}))

    def update_failures(self, add: dict[str, dict] | None = None,
                        remove: Iterable[str] = ()) -> None:
        """Record failures (``add``) and forget ones that have since succeeded (``remove``):
        read, changed and written in one transaction, so concurrent runs lose none."""
        add, remove = dict(add or {}), set(remove)
        if not add and not remove:
            return

        def update() -> None:
            meta = self._metadata()
            fails = dict(meta.get("molmag_failures", {}))
            for k in remove:
                fails.pop(k, None)
            fails.update(add)
            meta["molmag_failures"] = fails
            self.db.metadata = meta

        self.retrying(update)

    def set_split(self, ids: Iterable[int], split: str) -> None:
        if not str(split).isidentifier():
            raise ValueError(f"split {split!r} is not a simple name")
        ids = [int(i) for i in ids]

        def update() -> None:
            for id in ids:
                self.db.update(id, split=split)

        self.retrying(update)

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
