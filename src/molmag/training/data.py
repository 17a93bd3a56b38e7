"""Training data from a molmag dataset: rows with the model's target label, their splits, and
the frames/targets dicts the models take (see :mod:`molmag.models.base`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from molmag.io.dataset import Dataset
from molmag.io.records import Record
from molmag.models.targets import TARGETS, target_spec

#: the labels a target needs on a row (forces are used when every row has them);
#: :attr:`molmag.models.targets.TargetSpec.labels`.
REQUIRED = {name: spec.labels for name, spec in TARGETS.items()}


def frame_of(record: Record) -> Atoms:
    """The record's structure with its metal in ``info['metal_index']`` and its id."""
    a = record.atoms.copy()
    a.calc = None
    if record.metal_index is not None:
        a.info["metal_index"] = int(record.metal_index)
    if record.id is not None:
        a.info["row_id"] = int(record.id)
    return a


def targets_of(records: Sequence[Record], target: str) -> dict[str, Any]:
    """The targets dict of a model: arrays with the units of the dataset labels (see
    :mod:`molmag.models.targets`): the target's labels stacked (labels that are not plain
    arrays, crystal-field dicts, as given), and ``forces`` for targets with forces (None
    unless every row has them)."""
    spec = target_spec(target)
    key = spec.name
    values: Any
    if spec.align is not None:
        values = [r.labels[key] for r in records]
    else:
        arrays = [np.asarray(r.labels[key], float) for r in records]
        if spec.shape == ():                           # scalars (energies): float(label)
            arrays = [x.reshape(()) for x in arrays]
        bad = next((n for n, x in enumerate(arrays) if x.shape != arrays[0].shape), None)
        if bad is not None:
            r0, rb = records[0], records[bad]
            raise ValueError(f"row {rb.id}: {len(arrays[bad])} {spec.count_name} where row "
                             f"{r0.id} has {len(arrays[0])}; a model needs the same count on "
                             "every row")
        fixed = tuple(d if isinstance(d, int) else 0 for d in spec.shape)
        values = np.stack(arrays) if arrays else np.zeros((0, *fixed))
    out: dict[str, Any] = {key: values}
    if spec.forces:
        out["forces"] = None
        if records and all("forces" in r.labels for r in records):
            out["forces"] = [np.asarray(r.labels["forces"], float) for r in records]
    return out


@dataclass
class Split:
    """Records of the training, validation and test sets."""

    train: list[Record] = field(default_factory=list)
    val: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))


def labelled_records(dataset: str, target: str, selection: str | None = None) -> list[Record]:
    """Rows of ``dataset`` (matching ``selection``) that carry the labels ``target`` needs.
    Raises ``ValueError`` naming the dataset when there are none."""
    need = target_spec(target).labels
    rows = [r for r in Dataset(dataset).select(selection) if all(k in r.labels for k in need)]
    if not rows:
        where = f" matching {selection!r}" if selection else ""
        raise ValueError(f"{dataset}: no rows{where} with the label(s) {', '.join(need)}; "
                         "label the dataset first (molmag label)")
    return rows


def split_records(records: Sequence[Record], by: str = "fraction", val: float = 0.1,
                  test: float = 0.2, key: str = "split", n_train: int | None = None,
                  seed: int = 0) -> Split:
    """Split rows by a seeded shuffle (fractions) or by a tag (``train``/``val``/``test``)."""
    records = list(records)
    rng = np.random.default_rng(seed)
    if by == "fraction":
        idx = rng.permutation(len(records))
        n_val, n_test = int(round(val * len(records))), int(round(test * len(records)))
        s = Split(train=[records[i] for i in idx[n_val + n_test:]],
                  val=[records[i] for i in idx[:n_val]],
                  test=[records[i] for i in idx[n_val:n_val + n_test]])
    elif by == "tag":
        def tag(r: Record):
            return r.split if key == "split" else r.tags.get(key)

        s = Split(*([r for r in records if tag(r) == name] for name in ("train", "val", "test")))
        s.train = [s.train[i] for i in rng.permutation(len(s.train))]
        if not s.train:
            raise ValueError(f"no rows have {key} = train")
    else:
        raise ValueError(f"unknown split method {by!r} (fraction or tag)")
    if n_train is not None:
        if n_train > len(s.train):
            raise ValueError(f"n_train = {n_train} but only {len(s.train)} training rows")
        s.train = s.train[:n_train]
    if len(s.train) < 2:
        raise ValueError(f"only {len(s.train)} training row(s); a model needs at least 2")
    return s


__all__ = ["frame_of", "targets_of", "labelled_records", "split_records", "Split", "REQUIRED"]
