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
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

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
    from threadpoolctl import threadpool_limits

    from molmag.chem.builders import build

    import tblite.interface  # noqa: F401  (load its OpenMP runtime before limiting it)
    with threadpool_limits(limits=1):
        opts: dict[str, Any] = {"relax": relax, "fmax": fmax}
        if ligand is not None:
            opts["ligand"] = ligand
        atoms = build(builder, **opts)
        base_tags = {"builder": builder}
        if atoms.info.get("donor_indices") is not None:
            # the donors of the built structure are the donors of all its samples, however
            # far a displacement moves other atoms towards the metal
            # (one donor is written "0,": ASE databases refuse a string that reads as a number)
            text = ",".join(str(int(i)) for i in atoms.info["donor_indices"])
            base_tags["donors"] = text if "," in text else text + ","
        if ligand is not None:
            base_tags["ligand"] = ligand
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

        def args() -> Iterator[tuple]:
            for key, src, lig in todo:
                yield (key,), (src.builder, lig, src.relax, src.fmax,
                               src.sampler.model_dump() if src.sampler else None, src.group)

        def done(meta, rows):
            (key,) = meta
            recs = [_record(r, key) for r in rows]
            with self.ds.db:
                for rec in recs:
                    rid, _, _ = self.ds.add(rec)
                    ids.add(rid)
            self.summary.built += 1
            self.summary.rows_added += len(recs)
            self.ds.update_failures(remove=[key])
            self.reporter.advance("build")

        def failed(meta, exc):
            (key,) = meta
            reason = str(exc).strip() or type(exc).__name__
            self.ds.update_failures(add={key: {"stage": "build", "reason": reason,
                                               "item": key, "date": now_iso()}})
            self.summary.failures_new[key] = reason
            self.reporter.message(f"build failed: {key}: {reason}")
            self.reporter.advance("build")

        self._ex().map_unordered(build_and_sample, args(), done, failed)
        return ids

    def _import(self, src: SourceConfig) -> set[int]:
        key = f"file:{src.file}" if src.file else f"dataset:{src.dataset}"
        if src.dataset and src.dataset == self.ds.url:  # label a dataset in place
            return {r.id for r in self.ds.select(src.selection)}
        if src.file:
            records: Iterable[Record] = read_records(src.file, charge=src.charge,
                                                     multiplicity=src.multiplicity,
                                                     metal_index=src.metal_index)
        else:
            if "://" not in src.dataset and not Path(src.dataset).is_file():
                raise FileNotFoundError(f"source dataset {src.dataset}: no such file")
            records = Dataset(src.dataset).select(src.selection)
        ids: set[int] = set()
        recs = []
        for r in records:
            tags = {**r.tags, "source": key}
            if src.group:
                tags["group"] = src.group
            recs.append(Record(r.atoms, r.charge, r.multiplicity, r.metal_index, r.split,
                               r.labels, r.provenance, tags=tags))
        with self.ds.db:
            for rec in recs:
                rid, status, _ = self.ds.add(rec)
                ids.add(rid)
                self.summary.rows_added += status == "new"
        return ids

    # labels -------------------------------------------------------------------------------
    def _needs(self, rec: Record, failures: dict) -> list[str]:
        need = []
        for name in self.cfg.labels.names():
            if all(lab in rec.labels for lab in self.cfg.labels.label_names(name)):
                continue
            if f"{rec.hash}:{name}" in failures and not self.cfg.retry_failed:
                self.summary.failures_skipped += 1
                continue
            need.append(name)
        return need

    def _stage_labels(self, ids: set[int], failures: dict) -> None:
        items = []
        for rid in sorted(ids):
            rec = self.ds.get(rid)
            need = self._needs(rec, failures)
            if not need:
                self.summary.already_labelled += 1
                continue
            items.append({"id": rid, "hash": rec.hash, "numbers": rec.atoms.numbers,
                          "positions": rec.atoms.positions, "charge": rec.charge,
                          "multiplicity": rec.multiplicity, "metal_index": rec.metal_index,
                          "donors": _donors_tag(rec), "need": need})
        self.summary.rows_in_run = len(ids)
        if not items:
            self.reporter.start("label", len(ids), done=len(ids))
            return
        ex = self._ex()
        self.reporter.start("label", len(ids), done=len(ids) - len(items))
        bs = self.cfg.batch_size
        batches = [items[i:i + bs] for i in range(0, len(items), bs)]
        threads = None if ex.kind == "serial" else self.cfg.cluster.threads_per_worker

        def args() -> Iterator[tuple]:
            for b in batches:
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
            self.ds.set_labels_many(updates)
            self.ds.update_failures(add, remove)
            self.summary.labelled += sum(1 for r in results if r["labels"])
            self.reporter.advance("label", len(batch))

        def failed(meta, exc):
            (batch,) = meta
            reason = f"task failed: {type(exc).__name__}: {exc}"
            add = {f"{it['hash']}:{name}": {"stage": name, "reason": reason,
                                             "item": f"row {it['id']}", "date": now_iso()}
                   for it in batch for name in it["need"]}
            self.ds.update_failures(add)
            for k in add:
                self.summary.failures_new[k] = reason
            self.reporter.message(reason)
            self.reporter.advance("label", len(batch))

        ex.map_unordered(label_batch, args(), done, failed)

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
            failures = self.ds.failures()
            ids = self._stage_structures(failures)
            self._stage_labels(ids, self.ds.failures())
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
