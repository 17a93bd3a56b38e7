"""Training, evaluation, prediction and learning curves: what ``molmag train``, ``evaluate``,
``predict`` and ``learning-curve`` run.

Outputs of :func:`train` in the configuration's ``output`` folder:

* ``model.npz``     the committee (see :mod:`molmag.models.committee`), with the
  configuration, the descriptor settings, the row ids of every split and the metrics;
* ``metrics.json``  the metrics of every split (:mod:`molmag.training.metrics`);
* ``parity.png``    the test-set parity plot (validation set when there is no test set);
* ``reliability.png`` the reliability diagram of the calibrated committee sigma on that set;
* ``train.log``     one line per training event; ``checkpoints/`` for networks.

A finished model with the same configuration is not trained again; a network interrupted
mid-training resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms

from molmag.models.committee import (
    DETERMINISTIC,
    Committee,
    default_descriptor_settings,
    member_class,
)
from molmag.models.targets import target_spec
from molmag.training.config import TrainConfig
from molmag.training.data import frame_of, labelled_records, split_records, targets_of
from molmag.training.metrics import headline, metrics
from molmag.training.plots import learning_curve_plot, parity_plot, reliability_plot

Log = Callable[[str], None]


def _species(frames: Sequence[Atoms]) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in sorted({int(z) for a in frames for z in a.numbers})]


def descriptor_settings(kind: str, frames: Sequence[Atoms], overrides: dict) -> dict:
    """Default descriptor settings of ``kind`` for the elements of ``frames``, updated with
    ``overrides`` and validated by the descriptor itself."""
    cls = member_class(kind)
    settings = default_descriptor_settings(kind, _species(frames))
    settings.update(overrides or {})
    if cls.descriptor_type == "snap":
        from molmag.descriptors.bispectrum import SNAPSettings

        try:
            return SNAPSettings.from_dict(settings).as_dict()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"descriptor: {exc}") from None
    from molmag.descriptors.gaussian_moments import GaussianMoments

    try:
        return GaussianMoments.from_settings(settings).settings()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"descriptor: {exc}") from None


@dataclass
class TrainResult:
    model: Committee
    output: Path
    metrics: dict[str, Any]
    sizes: dict[str, int]
    seconds: float
    resumed: bool = False
    files: list[Path] = field(default_factory=list)


def _config_key(cfg: TrainConfig) -> dict:
    d = cfg.model_dump()
    d.pop("output", None)
    return d


def _config_hash(key: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _member_hyper(kind: str, n: int, folder: Path) -> list[dict] | None:
    """Per-member epoch checkpoints of the networks (in a folder named after the
    configuration, so a changed configuration never resumes from another run's epochs)."""
    if kind in DETERMINISTIC:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return [{"checkpoint": str(folder / f"member{k}.pt")} for k in range(n)]


def _subset(pred: dict[str, Any], idx: Sequence[int], keep: Sequence[str] = ()
            ) -> dict[str, Any]:
    """The rows ``idx`` of a prediction; entries ``keep`` (the spec's ``member_info``) are
    the same for all rows."""
    out = {}
    for k, v in pred.items():
        if k in keep:
            out[k] = v
        elif isinstance(v, np.ndarray):
            out[k] = v[np.asarray(idx, dtype=int)]
        else:
            out[k] = [v[i] for i in idx]
    return out


def evaluate_splits(model: Committee, splits: dict[str, list]) -> tuple[dict, dict]:
    """Metrics and predictions per split; ``splits`` maps names to records.  Every distinct
    row is predicted once."""
    rows: dict[Any, int] = {}
    unique: list[Any] = []
    for recs in splits.values():
        for r in recs:
            key = r.id if r.id is not None else id(r)
            if key not in rows:
                rows[key] = len(unique)
                unique.append(r)
    if not unique:
        return {}, {}
    frames = [frame_of(r) for r in unique]
    p_all = model.predict(frames)
    out, preds = {}, {}
    for name, recs in splits.items():
        if not recs:
            continue
        idx = [rows[r.id if r.id is not None else id(r)] for r in recs]
        ref = targets_of(recs, model.target)
        p = _subset(p_all, idx, target_spec(model.target).member_info)
        fr = [frames[i] for i in idx]
        out[name] = metrics(model.target, p, ref, fr)
        out[name]["calibration"] = model.calibration_metrics(p, ref, fr)
        preds[name] = (p, ref, fr)
    return out, preds


def calibrate(model: Committee, frames: Sequence[Atoms], targets: dict[str, Any] | None,
              method: str, log: Log) -> None:
    """Calibrate ``model`` on the validation structures (``method`` "none" keeps the raw
    spread and says so; no structures or ``targets`` None: the raw spread, said so)."""
    if method == "none":
        log("calibration: none (the uncertainties are the raw committee spread)")
        return
    if not frames or targets is None:
        log("calibration: no validation split, so the uncertainties are the raw committee "
            "spread (usually far too small); give data.split.val > 0")
        return
    cals = model.calibrate(frames, targets, method)
    log(f"calibration ({method}) on {len(frames)} validation structures: " + ", ".join(
        f"{k} x{c.scale:.3g}" + (f" + {c.floor:.3g}" if c.floor else "")
        for k, c in cals.items()))


def train(cfg: TrainConfig, log: Log | None = None, force: bool = False) -> TrainResult:
    """Train the committee ``cfg`` describes, evaluate it on every split, write its files."""
    log = log or (lambda s: None)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.npz"
    logfile = open(out / "train.log", "a")

    def say(text: str) -> None:
        logfile.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        logfile.flush()
        log(text)

    try:
        kind = cfg.model.kind
        target = member_class(kind).target
        records = labelled_records(cfg.data.dataset, target, cfg.data.selection)
        sp = cfg.data.split
        split = split_records(records, sp.by, sp.val, sp.test, sp.key, sp.n_train,
                              cfg.data.seed)
        sizes = split.sizes()
        if model_path.exists() and not force:
            old = Committee.read_header(model_path)
            if old.get("config", {}).get("train_config") == _config_key(cfg):
                say(f"{model_path} is already trained with this configuration; skipping "
                    "(--force retrains)")
                model = Committee.load(model_path)
                return TrainResult(model, out, model.metrics, sizes, 0.0, resumed=True,
                                   files=[model_path])
        t0 = time.perf_counter()
        train_frames = [frame_of(r) for r in split.train]
        val_frames = [frame_of(r) for r in split.val]
        settings = descriptor_settings(kind, [r.atoms for r in records], cfg.descriptor)
        say(f"training {kind} (committee of {cfg.model.committee}) on {sizes['train']} "
            f"structures, validation {sizes['val']}, test {sizes['test']} from "
            f"{cfg.data.dataset}")
        config = {"train_config": _config_key(cfg), "dataset": cfg.data.dataset,
                  "split_ids": {name: [r.id for r in recs] for name, recs in split.items()}}
        model = Committee(kind, settings, n_members=cfg.model.committee,
                          subsample=cfg.model.subsample, resample=cfg.model.resample,
                          seed=cfg.data.seed, config=config, **cfg.model.hyper_kwargs())
        val_t = targets_of(split.val, target) if split.val else None
        model.fit(train_frames, targets_of(split.train, target), val_frames, val_t, log=say,
                  member_hyper=_member_hyper(kind, cfg.model.committee,
                                             out / "checkpoints" / _config_hash(_config_key(cfg))))
        calibrate(model, val_frames, val_t, cfg.model.calibration, say)
        seconds = time.perf_counter() - t0
        say(f"trained in {seconds:.1f} s; evaluating")
        m, preds = evaluate_splits(model, dict(split.items()))
        m["train_seconds"] = seconds
        model.metrics = m
        model.config["train_seconds"] = seconds
        files = [model.save(model_path)]
        (out / "metrics.json").write_text(json.dumps(m, indent=2))
        files.append(out / "metrics.json")
        which = "test" if "test" in preds else ("val" if "val" in preds else "train")
        p, ref, fr = preds[which]
        files.append(parity_plot(out / "parity.png", target, p, ref,
                                 f"{kind}, {which} set ({sizes[which]} structures)", fr))
        files.append(_reliability(model, out / "reliability.png", p, ref, fr, which))
        for name in ("train", "val", "test"):
            if name in m:
                say(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in
                                            headline(target, m[name]).items()))
        return TrainResult(model, out, m, sizes, seconds, files=files)
    finally:
        logfile.close()


def _model_splits(model: Committee, dataset: str, records: list) -> dict[str, list]:
    """The splits of ``records``: the training run's (row ids stored in the model) on the
    dataset it was trained on, else the rows' ``split`` field."""
    ids = model.config.get("split_ids") or {}
    trained_on = str(model.config.get("dataset", ""))
    same = bool(ids) and (trained_on == dataset if "://" in dataset
                          else Path(trained_on).resolve() == Path(dataset).resolve())
    splits: dict[str, list] = {}
    if same:
        by_id = {r.id: r for r in records}
        for name, id_list in ids.items():
            splits[name] = [by_id[i] for i in id_list if i in by_id]
    else:
        for r in records:
            if r.split:
                splits.setdefault(r.split, []).append(r)
    return splits


def calibrate_model(model: str | Path, dataset: str, selection: str | None = None,
                    method: str = "conformal", output: str | Path | None = None,
                    log: Log | None = None) -> dict[str, Any]:
    """Calibrate (or re-calibrate) a model file on held-out rows of ``dataset`` and write it
    (to ``output``, default: in place).  The rows: the model's validation split on the
    dataset it was trained on, else rows whose ``split`` is ``val``; with ``selection``, the
    rows it selects (they must not be training rows).  Returns the calibrations and the
    coverage on the calibration rows."""
    log = log or (lambda s: None)
    path = Path(model)
    committee = Committee.load(path)
    records = labelled_records(dataset, committee.target, selection)
    if selection is not None:
        rows = records
        ids = committee.config.get("split_ids") or {}
        same = Path(str(committee.config.get("dataset", ""))).resolve() == \
            Path(dataset).resolve()
        for split in ("train", "test"):
            if same and set(ids.get(split, [])) & {r.id for r in rows}:
                raise ValueError(
                    f"--select {selection!r} picks test rows of the model; calibrate on "
                    "held-out rows that are not its test split" if split == "test" else
                    f"--select {selection!r} picks training rows of the model; calibrate on "
                    "held-out rows only")
    else:
        rows = _model_splits(committee, dataset, records).get("val", [])
        if not rows:
            raise ValueError(f"{dataset}: no validation rows for {path} (neither the model's "
                             "validation split nor rows with split = val); give --select")
    frames = [frame_of(r) for r in rows]
    targets = targets_of(rows, committee.target)
    calibrate(committee, frames, targets, method, log)
    pred = committee.predict(frames)
    report = committee.calibration_metrics(pred, targets, frames)
    for split_metrics in committee.metrics.values():   # coverage of the old calibration
        if isinstance(split_metrics, dict):
            split_metrics.pop("calibration", None)
    out = committee.save(output or path)
    return {"model": str(out), "n": len(rows), "method": method,
            "calibration": committee.calibration.as_dict(), "coverage": report}


def evaluate(model: Committee | str | Path, dataset: str, selection: str | None = None,
             plot: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a model on the labelled rows of a dataset, per split.

    On the dataset the model was trained on, the splits are the training run's (row ids
    stored in the model); elsewhere rows are grouped by their ``split`` field, and all rows
    together form ``all``."""
    if not isinstance(model, Committee):
        model = Committee.load(model)
    records = labelled_records(dataset, model.target, selection)
    splits = _model_splits(model, dataset, records)
    splits["all"] = records
    m, preds = evaluate_splits(model, splits)
    plots = []
    if plot is not None:
        which = "test" if "test" in preds else "all"
        p, ref, fr = preds[which]
        plots.append(str(parity_plot(plot, model.target, p, ref,
                                     f"{model.kind} on {Path(dataset).name}, "
                                     f"{which} ({len(splits[which])} structures)", fr)))
        plot = Path(plot)
        plots.append(str(_reliability(model, plot.with_name(plot.stem + "_reliability.png"),
                                      p, ref, fr, which)))
    return {"model": model.kind, "target": model.target, "dataset": dataset,
            "splits": {k: len(v) for k, v in splits.items()},
            "calibration": model.calibration.as_dict(),
            "calibration_note": model.calibration_note, "metrics": m, "plots": plots}


def _reliability(model: Committee, path: Path, pred: dict, ref: dict, frames: list,
                 which: str) -> Path:
    from molmag.models.committee import reference_errors

    errs = reference_errors(model.target, pred, ref, frames)
    return reliability_plot(path, errs, f"{model.kind}, {which} set ({len(frames)} "
                            f"structures); {model.calibration_note}")


def predict(model: Committee | str | Path, frames: Sequence[Atoms], source: str | None = None,
            progress: Callable[[int, int], None] | None = None, chunk: int = 64
            ) -> list[dict[str, Any]]:
    """Per-structure predictions with calibrated uncertainties, as JSON-ready dicts.

    Every structure first passes :func:`molmag.io.validation.validate_structure` (errors name
    ``source`` and the frame).  Each row carries ``flags``: why the prediction should not be
    trusted (atoms outside the model's training domain, a sigma above the calibration's
    threshold; see :meth:`Committee.flags`), and ``trusted`` (no flags).  ``progress(done,
    total)`` is called after every ``chunk`` structures."""
    from molmag.io.validation import validate_structure

    if not isinstance(model, Committee):
        model = Committee.load(model)
    frames = list(frames)
    for n, a in enumerate(frames):
        validate_structure(a, source=source, frame=n)
    spec = target_spec(model.target)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(frames), max(1, int(chunk))):
        part = frames[start:start + chunk]
        p = model.predict(part)
        flags = model.flags(part, p)
        for j, a in enumerate(part):
            row: dict[str, Any] = {"index": start + j, "formula": a.get_chemical_formula()}
            for key, v in p.items():
                if key in spec.member_info:
                    continue
                row[key] = np.asarray(v[j]).tolist()
            if spec.to_label is not None:   # the label form (crystal fields: a dict)
                key = spec.name
                row[key] = spec.to_label(np.asarray(p[key][j]), p)
                row[f"{key}_std"] = spec.to_label(np.asarray(p[f"{key}_std"][j]), p)["values"]
            row["flags"] = flags[j]
            row["trusted"] = not flags[j]
            rows.append(row)
        if progress:
            progress(len(rows), len(frames))
    return rows


def prediction_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """n, mean, std, min and max of every scalar prediction (and of its sigma) over the
    rows of :func:`predict`, and the number and share of flagged structures."""
    out: dict[str, Any] = {"n": len(rows)}
    if not rows:
        return out
    for key, v in rows[0].items():
        if key in ("index", "flags", "trusted") or not isinstance(v, (int, float)) \
                or isinstance(v, bool):
            continue
        x = np.array([r[key] for r in rows], float)
        out[key] = {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()),
                    "max": float(x.max())}
    flagged = sum(1 for r in rows if r["flags"])
    out["flagged"] = flagged
    out["flagged_share"] = flagged / len(rows)
    return out


def learning_curve(cfg: TrainConfig, sizes: Sequence[int], log: Log | None = None
                   ) -> dict[str, Any]:
    """Test-set metrics against training-set size: one fixed validation and test set (the
    configuration's split), training sets the first ``n`` rows of one shuffled pool (nested).
    Results are written to ``learning_curve.json`` as each size finishes (a re-run skips the
    sizes done) with a table-ready summary and ``learning_curve.png``."""
    log = log or (lambda s: None)
    kind = cfg.model.kind
    target = member_class(kind).target
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    records = labelled_records(cfg.data.dataset, target, cfg.data.selection)
    sp = cfg.data.split
    split = split_records(records, sp.by, sp.val, sp.test, sp.key, None, cfg.data.seed)
    if not split.test:
        raise ValueError("a learning curve needs a test set (split.test > 0 or rows tagged "
                         "test)")
    sizes = sorted(int(n) for n in sizes)
    too_big = [n for n in sizes if n > len(split.train)]
    if too_big:
        raise ValueError(f"sizes {too_big} exceed the {len(split.train)} training rows")
    path = out / "learning_curve.json"
    key = _config_key(cfg)
    done: dict[str, Any] = {}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config") == key:
            done = old.get("results", {})
    settings = descriptor_settings(kind, [r.atoms for r in records], cfg.descriptor)
    test_frames = [frame_of(r) for r in split.test]
    test_t = targets_of(split.test, target)
    val_frames = [frame_of(r) for r in split.val]
    val_t = targets_of(split.val, target) if split.val else None
    for n in sizes:
        if str(n) in done:
            log(f"n = {n}: done earlier")
            continue
        t0 = time.perf_counter()
        model = Committee(kind, settings, n_members=cfg.model.committee,
                          subsample=cfg.model.subsample, resample=cfg.model.resample,
                          seed=cfg.data.seed, **cfg.model.hyper_kwargs())
        recs = split.train[:n]
        model.fit([frame_of(r) for r in recs], targets_of(recs, target), val_frames, val_t,
                  member_hyper=_member_hyper(kind, cfg.model.committee,
                                             out / "checkpoints" / f"{_config_hash(key)}-n{n}"))
        calibrate(model, val_frames, val_t, cfg.model.calibration, log)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        p = model.predict(test_frames)
        pred_s = time.perf_counter() - t1
        m = metrics(target, p, test_t, test_frames)
        m["calibration"] = model.calibration_metrics(p, test_t, test_frames)
        done[str(n)] = {"metrics": m, "headline": headline(target, m), "fit_seconds": fit_s,
                        "predictions_per_second": len(test_frames) / pred_s}
        path.write_text(json.dumps({"config": key, "results": done}, indent=2))
        log(f"n = {n}: " + ", ".join(f"{k} {v:.4g}" for k, v in done[str(n)]["headline"].items())
            + f" (fit {fit_s:.1f} s)")
    ns = [n for n in sizes if str(n) in done]
    cols = list(done[str(ns[0])]["headline"])
    unit = target_spec(target).curve_unit
    series: dict[str, Sequence[float]] = {
        c: [done[str(n)]["headline"][c] for n in ns] for c in cols if not c.startswith("axis")}
    png = learning_curve_plot(out / "learning_curve.png", ns, series, unit,
                              f"{kind}: test set of {len(split.test)}")
    return {"model": kind, "target": target, "test_size": len(split.test),
            "val_size": len(split.val), "sizes": ns, "columns": cols,
            "results": {n: done[str(n)] for n in ns}, "png": str(png), "json": str(path)}


__all__ = ["train", "evaluate", "calibrate_model", "predict", "prediction_summary",
           "learning_curve", "TrainResult", "descriptor_settings", "evaluate_splits"]
