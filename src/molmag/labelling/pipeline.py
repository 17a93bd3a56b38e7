"""The labelling pipeline behind ``molmag label CONFIG.yaml``.

Two stages, both resumable because every result is written to the dataset as it arrives and
nothing written is ever recomputed:

1. **structures** — each source becomes rows of the output dataset.  A builder source is one
   work item per structure to build (one per ligand for ``dy-h2o5l2``): the item builds and
   relaxes the complex and draws its samples on a worker, and all its rows (the relaxed
   structure, tagged ``group=base``, and the samples) are written in one transaction, so an
   item is either complete or absent.  Every row carries the tags ``source`` (the item's key),
   ``group`` (``base``, ``disp0.05``, ``md300K``, ...) and ``sample_index``.  Files and
   datasets are imported as they are (structures already present are not duplicated).
2. **labels** — every row of the run that lacks one of the labels asked for is sent, in
   batches, to the workers (:func:`molmag.labelling.labellers.label_batch`); each finished
   batch is written in one transaction.

A failure (a build that does not relax, an SCF that does not converge after its retry, an
ion the engine cannot treat) is recorded per item and labeller in the dataset's metadata
(:meth:`molmag.io.dataset.Dataset.failures`) and the run goes on; a re-run skips recorded
failures unless ``retry_failed`` is set.  Work runs on Dask (:mod:`molmag.labelling.cluster`).

**Several runs on one dataset** (on one machine or on many nodes) share the work instead of
repeating it: before a build item or a batch of rows goes to a worker, the run takes a lease
on it in the dataset (:meth:`molmag.io.dataset.Dataset.claim`, key ``build:...`` or
``row:<id>``), renews its leases every ``lease_seconds / 3`` from a background thread, and
gives them up in the transaction that stores the results.  Work leased by another live run
is left to it; when the run's own work is done it waits for those leases, and re-reads the
rows: finished by the other run (nothing to do), or leased by a run that died (its leases
expire after ``lease_seconds``; the work is taken over).  A row is re-read after it is
claimed, so it is never labelled twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from ase import Atoms

from molmag.io.dataset import Dataset
from molmag.io.extxyz import read_records
from molmag.io.provenance import now_iso
from molmag.io.records import Record
from molmag.labelling.cluster import Executor, open_executor
from molmag.labelling.config import LabelConfig, SamplerConfig, SourceConfig
from molmag.labelling.labellers import ORDER, label_batch


class Reporter:
    """Progress callbacks (the CLI shows them with rich; the default does nothing)."""

    def start(self, stage: str, total: int, done: int = 0) -> None: ...
    def advance(self, stage: str, n: int = 1) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class RunSummary:
    output: str
    built: int = 0
    build_skipped: int = 0
    rows_added: int = 0
    rows_in_run: int = 0
    labelled: int = 0
    already_labelled: int = 0
    failures_new: dict[str, str] = field(default_factory=dict)
    failures_skipped: int = 0
    labeller_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- structures -----------------------------------------------------------------------------
def build_items(src: SourceConfig) -> list[tuple[str, str | None]]:
    """(key, ligand) of each structure a builder source builds."""
    if src.ligands:
        return [(f"build:{src.builder}:{lig}", lig) for lig in src.ligands]
    return [(f"build:{src.builder}", None)]


def _sample(atoms: Atoms, sampler: SamplerConfig) -> list[Atoms]:
    from molmag.chem import sampling
    from molmag.chem.xtb import XTBCalculator

    if sampler.kind == "displacements":
        return sampling.displacement_sets(atoms, deltas=tuple(sampler.deltas),
                                          n_per_delta=sampler.n, seed=sampler.seed)
    if sampler.kind == "md":
        return sampling.md_snapshots(atoms, XTBCalculator(), sampler.temperatures, sampler.n,
                                     interval=sampler.interval, timestep_fs=sampler.timestep_fs,
                                     friction=sampler.friction_per_fs,
                                     equilibration_steps=sampler.equilibration_steps,
                                     seed=sampler.seed)
    modes = sampling.normal_modes(atoms, XTBCalculator())
    out: list[Atoms] = []
    for k, t in enumerate(sampler.temperatures):
        out += sampling.boltzmann_normal_mode_samples(atoms, modes, t, sampler.n,
                                                      seed=sampler.seed + k,
                                                      quantum=sampler.quantum)
    return out


def _group(info: dict, sampler: SamplerConfig) -> str:
    if sampler.kind == "displacements":
        return f"disp{info.get('delta_A'):g}"
    prefix = "md" if sampler.kind == "md" else "nm"
    return f"{prefix}{info.get('temperature_K'):g}K"


_SAMPLE_TAGS = ("delta_A", "temperature_K", "sample_index", "kinetic_temperature_K")


def build_and_sample(builder: str, ligand: str | None, relax: bool, fmax: float,
                     sampler: dict | None, group: str | None) -> list[dict]:
    """Worker task: build (and relax) one structure, draw its samples; rows as plain dicts."""
    import tblite.interface  # noqa: F401  (load its OpenMP runtime before limiting it)
    from threadpoolctl import threadpool_limits

    from molmag.chem.builders import build
    with threadpool_limits(limits=1):
        opts: dict[str, Any] = {"relax": relax, "fmax": fmax}
        if ligand is not None:
            opts["ligand"] = ligand
        atoms = build(builder, **opts)
        base_tags: dict[str, Any] = {"builder": builder}
        if atoms.info.get("donor_indices") is not None:
            # the donors of the built structure are the donors of all its samples, however
            # far a displacement moves other atoms towards the metal
            # (one donor is written "0,": ASE databases refuse a string that reads as a number)
            text = ",".join(str(int(i)) for i in atoms.info["donor_indices"])
            base_tags["donors"] = text if "," in text else text + ","
        if ligand is not None:
            base_tags["ligand"] = ligand
        if atoms.info.get("relaxed"):
            # how the built structure was relaxed (its samples are drawn around it)
            base_tags["relax_fmax_eV_A"] = float(atoms.info["relax_fmax_target_eV_A"])
            base_tags["relax_steps"] = int(atoms.info["relax_steps"])
        rows = []
        sampler_cfg = SamplerConfig.model_validate(sampler) if sampler else None
        if sampler_cfg is None or sampler_cfg.include_base:
            rows.append(_row(atoms, {**base_tags, "group": group or "base"}))
        if sampler_cfg is not None:
            for s in _sample(atoms, sampler_cfg):
                tags = {**base_tags, "group": group or _group(s.info, sampler_cfg)}
                tags.update({k: s.info[k] for k in _SAMPLE_TAGS if k in s.info})
                rows.append(_row(s, tags))
    return rows


def _row(atoms: Atoms, tags: dict) -> dict:
    info = atoms.info
    return {"numbers": np.asarray(atoms.numbers), "positions": np.asarray(atoms.positions),
            "charge": int(info["charge"]), "multiplicity": int(info["multiplicity"]),
            "metal_index": info.get("metal_index"),
            "tags": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in tags.items()}}


def _donors_tag(rec: Record) -> list[int] | None:
    text = rec.tags.get("donors")
    if not text:
        return None
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"row {rec.id}: tag donors={text!r} is not a list of atom indices") \
            from None


def _record(row: dict, source: str) -> Record:
    return Record(Atoms(numbers=row["numbers"], positions=row["positions"]),
                  charge=row["charge"], multiplicity=row["multiplicity"],
                  metal_index=row["metal_index"], tags={**row["tags"], "source": source})


# -- leases ---------------------------------------------------------------------------------
class LeaseKeeper:
    """Renews the leases of ``holder`` every ``seconds / 3`` from a daemon thread (with its
    own connection), so that work that takes longer than a lease stays this run's.  Errors
    are kept for the next tick: a dataset busy for a moment must not stop the run."""

    def __init__(self, url: str, holder: str, seconds: float):
        self.url, self.holder, self.seconds = url, holder, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="molmag-leases", daemon=True)
        self.renewals = 0

    def _loop(self) -> None:
        ds = None
        while not self._stop.wait(self.seconds / 3.0):
            try:
                ds = ds if ds is not None else Dataset(self.url)
                ds.renew(self.holder, self.seconds)
                self.renewals += 1
            except Exception:  # retried at the next tick
                ds = None

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _holder() -> str:
    """A name for this run that no other run shares: host, process, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- the run ----------------------------------------------------------------------------------
class LabelRun:
    """One ``molmag label`` run: ``LabelRun(config).run()``."""

    def __init__(self, config: LabelConfig, reporter: Reporter | None = None,
                 executor: Executor | None = None):
        self.cfg = config
        self.reporter = reporter or Reporter()
        self._executor = executor
        self._own_executor = False
        self.ds = Dataset(config.output)
        self.summary = RunSummary(output=config.output)
        self.spec = {name: getattr(config.labels, name).model_dump()
                     for name in config.labels.names()}
        self.holder = _holder()
        self.lease_seconds = float(config.lease_seconds)
        # how often work leased by another run is looked at again
        self.poll_seconds = max(0.2, min(5.0, self.lease_seconds / 5.0))

    # structures ---------------------------------------------------------------------------
    def _source_rows(self, key: str) -> list[int]:
        return [row.id for row in self.ds.db.select(source=key, columns=["id"])]

    def _stage_structures(self, failures: dict) -> set[int]:
        ids: set[int] = set()
        todo: list[tuple[str, SourceConfig, str | None]] = []
        for src in self.cfg.sources:
            if src.kind == "builder":
                for key, lig in build_items(src):
                    rows = self._source_rows(key)
                    if rows:
                        ids.update(rows)
                        self.summary.build_skipped += 1
                    elif key in failures and not self.cfg.retry_failed:
                        self.summary.failures_skipped += 1
                    else:
                        todo.append((key, src, lig))
            else:
                ids.update(self._import(src))
        if not todo:
            return ids
        self.reporter.start("build", len(todo))

        def args(pending: list, deferred: list) -> Iterator[tuple]:
            for key, src, lig in pending:
                if not self.ds.claim([key], self.holder, self.lease_seconds):
                    deferred.append((key, src, lig))  # another run is building it
                    continue
                rows = self._source_rows(key)
                if rows:  # built by another run since we looked
                    self.ds.release(self.holder, [key])
                    ids.update(rows)
                    self.summary.build_skipped += 1
                    self.reporter.advance("build")
                    continue
                yield (key,), (src.builder, lig, src.relax, src.fmax,
                               src.sampler.model_dump() if src.sampler else None, src.group)

        def done(meta, rows):
            (key,) = meta
            recs = [_record(r, key) for r in rows]

            def write() -> list[int]:
                out = [self.ds._add(rec)[0] for rec in recs]
                self.ds._release(self.holder, [key])
                return out

            ids.update(self.ds.retrying(write))
            self.summary.built += 1
            self.summary.rows_added += len(recs)
            self.ds.update_failures(remove=[key])
            self.reporter.advance("build")

        def failed(meta, exc):
            (key,) = meta
            reason = str(exc).strip() or type(exc).__name__
            self.ds.update_failures(add={key: {"stage": "build", "reason": reason,
                                               "item": key, "date": now_iso()}})
            self.ds.release(self.holder, [key])
            self.summary.failures_new[key] = reason
            self.reporter.message(f"build failed: {key}: {reason}")
            self.reporter.advance("build")

        pending = todo
        while pending:
            deferred: list = []
            self._ex().map_unordered(build_and_sample, args(pending, deferred), done, failed)
            if not deferred:
                break
            time.sleep(self.poll_seconds)
            fails = self.ds.failures()
            pending = []
            for key, src, lig in deferred:
                rows = self._source_rows(key)
                if rows:
                    ids.update(rows)
                    self.summary.build_skipped += 1
                    self.reporter.advance("build")
                elif key in fails and not self.cfg.retry_failed:
                    self.summary.failures_skipped += 1
                    self.reporter.advance("build")
                else:
                    pending.append((key, src, lig))
        return ids

    def _import(self, src: SourceConfig) -> set[int]:
        key = f"file:{src.file}" if src.file else f"dataset:{src.dataset}"
        if src.dataset and src.dataset == self.ds.url:  # label a dataset in place
            return {r.id for r in self.ds.select(src.selection) if r.id is not None}
        if src.file:
            records: Iterable[Record] = read_records(src.file, charge=src.charge,
                                                     multiplicity=src.multiplicity,
                                                     metal_index=src.metal_index)
        else:
            assert src.dataset is not None  # a source has a file or a dataset
            if "://" not in src.dataset and not Path(src.dataset).is_file():
                raise FileNotFoundError(f"source dataset {src.dataset}: no such file")
            records = Dataset(src.dataset).select(src.selection)
        recs = []
        for r in records:
            tags = {**r.tags, "source": key}
            if src.group:
                tags["group"] = src.group
            recs.append(Record(r.atoms, r.charge, r.multiplicity, r.metal_index, r.split,
                               r.labels, r.provenance, tags=tags))

        def write() -> tuple[set[int], int]:
            added = [self.ds._add(rec) for rec in recs]
            return {rid for rid, _, _ in added}, sum(st == "new" for _, st, _ in added)

        ids, new = self.ds.retrying(write)
        self.summary.rows_added += new
        return ids

    # labels -------------------------------------------------------------------------------
    def _needs(self, rec: Record, failures: dict, count: bool = True) -> list[str]:
        need = []
        for name in self.cfg.labels.names():
            if all(lab in rec.labels for lab in self.cfg.labels.label_names(name)):
                continue
            if f"{rec.hash}:{name}" in failures and not self.cfg.retry_failed:
                self.summary.failures_skipped += count
                continue
            need.append(name)
        return need

    def _item(self, rec: Record, failures: dict, count: bool = True) -> dict | None:
        """The work item of a row (None when it needs nothing)."""
        need = self._needs(rec, failures, count)
        if not need:
            return None
        return {"id": rec.id, "hash": rec.hash, "numbers": rec.atoms.numbers,
                "positions": rec.atoms.positions, "charge": rec.charge,
                "multiplicity": rec.multiplicity, "metal_index": rec.metal_index,
                "donors": _donors_tag(rec), "need": need}

    def _claim_batch(self, queue: list[dict], deferred: list[dict], failures: dict) -> list[dict]:
        """Up to ``batch_size`` items of ``queue`` (consumed from its end) that this run now
        holds leases on and that still need labels; items leased by another run go to
        ``deferred``, items finished meanwhile are counted as already labelled."""
        bs = self.cfg.batch_size
        batch: list[dict] = []
        while queue and len(batch) < bs:
            cands = [queue.pop() for _ in range(min(len(queue), bs - len(batch)))]
            got = set(self.ds.claim([f"row:{it['id']}" for it in cands], self.holder,
                                    self.lease_seconds))
            done_now = []
            # failures recorded by other runs since this one started (a row another run
            # failed and released is not tried again here unless retry_failed)
            current = {**self.ds.failures(), **failures} if got else failures
            for it in cands:
                if f"row:{it['id']}" not in got:
                    deferred.append(it)
                    continue
                # re-read after the claim: another run may have labelled it meanwhile
                fresh = self._item(self.ds.get(it["id"]), current, count=False)
                if fresh is None:
                    done_now.append(f"row:{it['id']}")
                else:
                    batch.append(fresh)
            if done_now:
                self.ds.release(self.holder, done_now)
                self.summary.already_labelled += len(done_now)
                self.reporter.advance("label", len(done_now))
        return batch

    def _stage_labels(self, ids: set[int], failures: dict) -> None:
        items = []
        for rid in sorted(ids):
            it = self._item(self.ds.get(rid), failures)
            if it is None:
                self.summary.already_labelled += 1
            else:
                items.append(it)
        self.summary.rows_in_run = len(ids)
        if not items:
            self.reporter.start("label", len(ids), done=len(ids))
            return
        ex = self._ex()
        self.reporter.start("label", len(ids), done=len(ids) - len(items))
        threads = None if ex.kind == "serial" else self.cfg.cluster.threads_per_worker

        def args(queue: list[dict], deferred: list[dict], fails: dict) -> Iterator[tuple]:
            while queue:
                b = self._claim_batch(queue, deferred, fails)
                if b:
                    yield (b,), (b, self.spec, threads)

        def done(meta, results):
            (batch,) = meta
            hashes = {it["id"]: it["hash"] for it in batch}
            needs = {it["id"]: it["need"] for it in batch}
            updates, add, remove = [], {}, []
            for r in results:
                updates.append((r["id"], r["labels"], r["provenance"]))
                for name in needs[r["id"]]:
                    key = f"{hashes[r['id']]}:{name}"
                    if name in r["failures"]:
                        add[key] = {"stage": name, "reason": r["failures"][name],
                                    "item": f"row {r['id']}", "date": now_iso()}
                        self.summary.failures_new[key] = r["failures"][name]
                    elif key in failures:  # succeeded on retry
                        remove.append(key)
                self.summary.labeller_seconds["total"] = (
                    self.summary.labeller_seconds.get("total", 0.0) + r["seconds"])
            # failures first: a row whose lease is gone must show its failure to other runs
            self.ds.update_failures(add, remove)
            self.ds.set_labels_many(updates, release=(self.holder,
                                                      [f"row:{it['id']}" for it in batch]))
            self.summary.labelled += sum(1 for r in results if r["labels"])
            self.reporter.advance("label", len(batch))

        def failed(meta, exc):
            (batch,) = meta
            reason = f"task failed: {type(exc).__name__}: {exc}"
            add = {f"{it['hash']}:{name}": {"stage": name, "reason": reason,
                                             "item": f"row {it['id']}", "date": now_iso()}
                   for it in batch for name in it["need"]}
            self.ds.update_failures(add)
            self.ds.release(self.holder, [f"row:{it['id']}" for it in batch])
            for k in add:
                self.summary.failures_new[k] = reason
            self.reporter.message(reason)
            self.reporter.advance("label", len(batch))

        queue = items[::-1]  # popped from the end: rows in id order
        fails = failures
        while queue:
            deferred: list[dict] = []
            ex.map_unordered(label_batch, args(queue, deferred, fails), done, failed)
            if not deferred:
                break
            # the rest is leased by other runs: wait for them to finish it or to die
            time.sleep(self.poll_seconds)
            queue = deferred[::-1]
            fails = self.ds.failures()

    def _ex(self) -> Executor:
        """The executor, started on first use (a run with nothing left to do starts none)."""
        if self._executor is None:
            self.reporter.message(f"starting the {self.cfg.cluster.kind} cluster")
            self._executor = open_executor(self.cfg.cluster)
            self._own_executor = True
            self.summary.workers = self._executor.n_workers()
            link = self._executor.dashboard()
            self.reporter.message(f"{self.summary.workers} worker(s)"
                                  + (f"; Dask dashboard: {link}" if link else ""))
        return self._executor

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        if self._executor is not None and not self._own_executor:
            self.summary.workers = self._executor.n_workers()
        try:
            with LeaseKeeper(self.ds.url, self.holder, self.lease_seconds):
                try:
                    failures = self.ds.failures()
                    ids = self._stage_structures(failures)
                    self._stage_labels(ids, self.ds.failures())
                finally:
                    try:  # leases of work not finished (an error, Ctrl-C) go back at once
                        self.ds.release(self.holder)
                    except Exception:  # they expire anyway
                        pass
        finally:
            if self._own_executor and self._executor is not None:
                self._executor.close()
                self._executor = None
            self.summary.seconds = time.perf_counter() - t0
        return self.summary


def run_labelling(config: LabelConfig, reporter: Reporter | None = None) -> RunSummary:
    """Run a label configuration (see :class:`LabelRun`)."""
    return LabelRun(config, reporter).run()


__all__ = ["Reporter", "RunSummary", "LabelRun", "run_labelling", "build_and_sample",
           "build_items", "ORDER"]
