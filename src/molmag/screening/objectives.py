r"""Objectives of the ligand search, computed through molmag's labelling pipeline.

=============  ========  =========  ============================================================
objective      metal     builder    value (cm-1)
=============  ========  =========  ============================================================
``dE01``       Dy        dy-h2o5l2  Delta E01 = E(KD1) - E(KD0) of Dy(H2O)5L2, the crystal-field
                                    engine's PCEM/REC Kramers doublets of 6H15/2 (Khatibi et al.
                                    2026; the dy-ligands campaign's labeller); maximised
``D``          Co        co-l4      the axial ZFS parameter D of tetrahedral Co(II)L2L'2 from the
                                    ligand-field engine (AOM + Racah + SOC, D = 3/2 D_zz of the
                                    traceless tensor, :mod:`molmag.physics.zfs`); minimised
                                    (the search wants D far below zero, Frangoulis et al. 2025)
=============  ========  =========  ============================================================

The structure is built and (``relax: true``, the default) relaxed with GFN2-xTB by the
builder; ``relax: false`` labels the builder's unrelaxed start geometry (a cheaper but much
cruder oracle: for Dy(H2O)5L2 it only sees the donor element and charge).

Every evaluation is a :class:`molmag.labelling.pipeline.LabelRun` over a batch of individuals
into one ASE database (``evaluations.db``): a ligand already labelled there is never computed
again (whichever search arm asked for it first), a crash loses nothing stored, and a
failed build or labeller is recorded once with its reason and never retried.  The fitness
the GA maximises is ``sense * value`` (sense +1 for dE01, -1 for D).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, overload

import numpy as np

if TYPE_CHECKING:
    from molmag.labelling.cluster import Executor

#: The (metal, objective) pairs molmag's engines compute.
OBJECTIVES: dict[tuple[str, str], dict[str, Any]] = {
    ("Dy", "dE01"): dict(builder="dy-h2o5l2", n_sites=1,
                         labels={"crystal_field": {"ion": "Dy3+"}}, label="kd_energies",
                         sense=1.0, unit="cm-1", title="Delta E01 of Dy(H2O)5L2"),
    ("Co", "D"): dict(builder="co-l4", n_sites=2,
                      labels={"ligand_field": {"ion": "Co2+"}}, label="zfs_tensor",
                      sense=-1.0, unit="cm-1", title="D of tetrahedral Co(II)L2L'2"),
}


@dataclass(frozen=True)
class Objective:
    metal: str
    name: str
    builder: str
    n_sites: int
    labels: dict
    label: str
    sense: float
    unit: str
    title: str
    relax: bool = True
    fmax: float = 0.05

    def value(self, labels: dict) -> float:
        """The objective (cm-1) from a labelled row's labels."""
        if self.name == "dE01":
            kd = np.sort(np.asarray(labels["kd_energies"], float))
            return float(kd[1] - kd[0])
        from molmag.physics.zfs import zfs_from_tensor

        return float(zfs_from_tensor(np.asarray(labels["zfs_tensor"], float)).D)

    @overload
    def fitness(self, value: float) -> float: ...

    @overload
    def fitness(self, value: None) -> None: ...

    @overload
    def fitness(self, value: float | None) -> float | None: ...

    def fitness(self, value: float | None) -> float | None:
        return None if value is None else self.sense * value


def objective_for(metal: str, name: str, *, relax: bool = True, fmax: float = 0.05) -> Objective:
    """The objective ``name`` for ``metal``; ValueError naming what the engines can do."""
    spec = OBJECTIVES.get((metal, name))
    if spec is None:
        can = ", ".join(f"{o} for {m}" for m, o in OBJECTIVES)
        raise ValueError(f"objective {name!r} cannot be computed for {metal} by molmag's engines "
                         f"(they give: {can})")
    return Objective(metal, name, relax=relax, fmax=fmax, **spec)


@dataclass
class Outcome:
    """One evaluated individual: its value (cm-1) or the reason it failed."""

    key: str
    value: float | None
    reason: str | None = None


class Evaluator:
    """Evaluates batches of individual keys through the labelling pipeline into ``dataset``,
    reusing one executor (Dask LocalCluster by default; ``workers=1``: serial in-process)."""

    def __init__(self, objective: Objective, dataset: str | Path, *, workers: int | None = None,
                 batch_size: int = 2, reporter=None):
        self.obj = objective
        self.dataset = str(dataset)
        self.workers = workers
        self.batch_size = batch_size
        self.reporter = reporter
        self._executor: Executor | None = None
        self._known: dict[str, Outcome] = {}

    def _cluster(self) -> dict:
        if self.workers is not None and self.workers <= 1:
            return {"kind": "serial"}
        return {"kind": "local", **({"n_workers": int(self.workers)} if self.workers else {})}

    def config(self, keys: Sequence[str]):
        from molmag.labelling.config import LabelConfig

        return LabelConfig.model_validate({
            "output": self.dataset,
            "sources": [{"builder": self.obj.builder, "ligands": list(dict.fromkeys(keys)),
                         "relax": self.obj.relax, "fmax": self.obj.fmax, "group": "ga"}],
            "labels": self.obj.labels, "cluster": self._cluster(),
            "batch_size": self.batch_size, "retry_failed": False})

    def evaluate(self, keys: Sequence[str]) -> dict[str, Outcome]:
        """Outcomes of ``keys`` (computing only those the dataset lacks)."""
        from molmag.labelling.cluster import open_executor
        from molmag.labelling.pipeline import LabelRun

        keys = list(dict.fromkeys(keys))
        todo = [k for k in keys if k not in self._known]
        if todo:
            self._read(todo)
            missing = [k for k in todo if k not in self._known]
            if missing:
                cfg = self.config(missing)
                if self._executor is None:
                    self._executor = open_executor(cfg.cluster)
                LabelRun(cfg, reporter=self.reporter, executor=self._executor).run()
                self._read(missing)
                for k in missing:   # neither a row nor a recorded failure: say so, once
                    self._known.setdefault(k, Outcome(k, None, "no result recorded"))
        return {k: self._known[k] for k in keys}

    def _read(self, keys: Sequence[str]) -> None:
        """Outcomes of ``keys`` already in the dataset (rows or recorded failures)."""
        from molmag.io.dataset import Dataset

        if not Path(self.dataset).is_file():
            return
        ds = Dataset(self.dataset)
        fails = ds.failures()
        for key in keys:
            bkey = f"build:{self.obj.builder}:{key}"
            if bkey in fails:
                self._known[key] = Outcome(key, None, "build: " + str(fails[bkey].get("reason")))
                continue
            for rec in ds.select(builder=self.obj.builder, ligand=key):
                if self.obj.label in rec.labels:
                    try:
                        self._known[key] = Outcome(key, self.obj.value(rec.labels))
                    except (ValueError, IndexError) as exc:
                        self._known[key] = Outcome(key, None, f"objective: {exc}")
                else:
                    name = next(iter(self.obj.labels))
                    f = fails.get(f"{rec.hash}:{name}")
                    if f is not None:
                        self._known[key] = Outcome(key, None, f"{name}: {f.get('reason')}")
                break

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


__all__ = ["OBJECTIVES", "Objective", "objective_for", "Outcome", "Evaluator"]
