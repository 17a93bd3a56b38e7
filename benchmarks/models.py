"""Accuracy and speed of molmag's D-tensor models on [Co(pdms)2]2- (issue 17, item 5).

Protocol: the 1200 configurations of ../shared/data/copdms (900 train / 300 validation,
seeded) and a test set of 300 made by the same distortion protocol (uniform Cartesian
displacements at delta = 0.01, 0.05, 0.10 Angstrom, 100 each), all labelled by molmag's
ligand-field engine through the labelling pipeline -- the dataset of
``benchmarks/calibration.py`` (its ``make_dataset``; cached as ``OUT/copdms_lf.db``, a re-run
reuses it).  Optionally (``--md FILE``) MD frames (e.g. GFN2-xTB at 100 K) labelled the same
way (``OUT/md_lf.db``) as a second test set.

Every model kind is trained with the defaults molmag ships: the configuration that
``molmag template train --model KIND`` writes (its hyperparameters and descriptor settings),
with this dataset and the tag split.  ``--variants`` adds rows for other settings (the ideas
measured for DEVELOPERS.md), e.g. ``covariant-ridge:features=bispectrum`` or
``gmnn-tensor:hidden=[512,512];max_epochs=80``; ``--committee`` overrides the committee size
of every row.  For every row: test RMSE of the six tensor elements D_ij, of D and of E (cm-1),
the same on the MD frames, the training time, and the prediction throughput of the committee
(``Committee.predict`` on a list of ``--n-speed`` fresh structures, descriptors included,
torch/BLAS threads = ``--threads``; fresh displacements, so no cache helps), per wall second
and per CPU second of the process.  The first row is
the mean-tensor baseline (the mean training tensor for every structure).

    python benchmarks/models.py [--out bench-models]
        [--kinds covariant-ridge,equivariant-ridge,gmnn-tensor]
        [--variants SPEC ...] [--md md100.extxyz] [--threads 2] [--n-speed 600]

Trained models are kept in ``OUT/<row>/`` (a re-run skips them; GM-NN members checkpoint
every epoch, so a killed run continues); results accumulate in ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _calibration_module():
    spec = importlib.util.spec_from_file_location("bench_calibration", HERE / "calibration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def label_md(out: Path, md: Path, workers: int) -> str:
    """Label MD frames (any ASE-readable trajectory) by the ligand-field engine, cached."""
    import ase.io

    from molmag.labelling.config import LabelConfig
    from molmag.labelling.pipeline import run_labelling

    db = out / "md_lf.db"
    frames = ase.io.read(str(md), ":")
    path = out / "md.xyz"
    if not path.exists():
        clean = []
        for a in frames:
            b = a.copy()
            b.calc = None
            b.info = {}
            clean.append(b)
        ase.io.write(str(path), clean)
    cfg = LabelConfig.model_validate({
        "output": str(db),
        "sources": [{"file": str(path), "charge": -2, "multiplicity": 4, "group": "md"}],
        "labels": {"ligand_field": {"point_charges": "none"}},
        "cluster": {"kind": "local" if workers > 1 else "serial", "n_workers": workers}})
    run_labelling(cfg)
    return str(db)


def parse_variant(spec: str) -> tuple[str, str, dict]:
    """``KIND[:key=value;key=value]`` -> (row name, kind, overrides); values are YAML."""
    import yaml

    kind, _, rest = spec.partition(":")
    over = {}
    for item in filter(None, rest.split(";")):
        k, _, v = item.partition("=")
        over[k.strip()] = yaml.safe_load(v)
    name = kind if not over else kind + ":" + ";".join(f"{k}={v}" for k, v in over.items())
    return name, kind, over


DESCRIPTOR_KEYS = {"twojmax", "rcutfac", "r_cut", "n_radial", "n_basis", "dtype"}


def template_config(kind: str, db: str, out: Path, over: dict, committee: int | None):
    """The TrainConfig of ``molmag template train --model KIND`` on this dataset (tag
    split), with ``over`` (descriptor keys go to the descriptor section)."""
    import yaml

    from molmag.training.config import TrainConfig
    from molmag.training.templates import train_template

    raw = yaml.safe_load(train_template(kind))
    raw["model"]["hyper"] = dict(raw["model"].get("hyper") or {})
    raw["descriptor"] = dict(raw.get("descriptor") or {})
    for k, v in over.items():
        (raw["descriptor"] if k in DESCRIPTOR_KEYS else raw["model"]["hyper"])[k] = v
    if committee is not None:
        raw["model"]["committee"] = committee
    raw["data"] = {"dataset": db, "split": {"by": "tag", "key": "group"}, "seed": 0}
    raw["output"] = str(out)
    return TrainConfig.model_validate(raw)


def tensor_errors(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """RMSE of the D_ij elements, of D and of E (cm-1)."""
    from molmag.physics.zfs import zfs_from_tensor

    zp = [zfs_from_tensor(t) for t in pred]
    zr = [zfs_from_tensor(t) for t in ref]
    return (float(np.sqrt(np.mean((pred - ref) ** 2))),
            float(np.sqrt(np.mean([(a.D - b.D) ** 2 for a, b in zip(zp, zr)]))),
            float(np.sqrt(np.mean([(a.E - b.E) ** 2 for a, b in zip(zp, zr)]))))


def split_frames(db: str, group: str | None):
    from molmag.training.data import frame_of, labelled_records, targets_of

    recs = [r for r in labelled_records(db, "zfs_tensor")
            if group is None or r.tags.get("group") == group]
    return [frame_of(r) for r in recs], np.asarray(targets_of(recs, "zfs_tensor")["zfs_tensor"],
                                                   float)


def speed(model, frames) -> tuple[float, float]:
    """Structures per second of ``Committee.predict`` on ``frames`` (one call): per wall
    second, and per CPU second of this process (all its threads; on a machine shared with
    other jobs the wall rate understates what the cores give)."""
    model.predict(frames[:4])  # warm up (imports, LAMMPS instance, torch kernels)
    t0, c0 = time.perf_counter(), time.process_time()
    model.predict(frames)
    return (len(frames) / (time.perf_counter() - t0),
            len(frames) / (time.process_time() - c0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-models")
    ap.add_argument("--ref", default=None, help="the 1200 reference configurations (xyz)")
    ap.add_argument("--kinds", default="covariant-ridge,equivariant-ridge,gmnn-tensor")
    ap.add_argument("--variants", nargs="*", default=[],
                    help="KIND:key=value;key=value rows besides the shipped defaults")
    ap.add_argument("--committee", type=int, default=None,
                    help="committee size of every row (default: the template's)")
    ap.add_argument("--md", default=None, help="MD frames (ASE-readable) as a second test set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-speed", type=int, default=600)
    ap.add_argument("--workers", type=int, default=2, help="labelling workers")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from molmag.chem.sampling import random_displacements
    from molmag.training.run import train

    cal = _calibration_module()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = cal.make_dataset(out, Path(args.ref) if args.ref else cal.REF, 300, 0, args.workers)
    tr_f, tr_t = split_frames(db, "train")
    te_f, te_t = split_frames(db, "test")
    tests = {"test": (te_f, te_t)}
    if args.md:
        tests["md"] = split_frames(label_md(out, Path(args.md), args.workers), None)
    # fresh structures for the speed test: nobody has seen these positions
    fresh = [a for k, d in enumerate(cal.DELTAS) for a in random_displacements(
        te_f[0], args.n_speed // 3, d, seed=100 + k)]

    res_path = out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    mean_t = tr_t.mean(axis=0)
    base = {"fit_s": 0.0, "pred_per_s": float("nan"), "pred_per_cpu_s": float("nan")}
    for name, (f, t) in tests.items():
        base[name] = tensor_errors(np.repeat(mean_t[None], len(t), axis=0), t)
    results["mean-tensor baseline"] = base

    rows = [(k, k, {}) for k in args.kinds.split(",") if k] + \
        [parse_variant(v) for v in args.variants]
    for name, kind, over in rows:
        folder = out / name.replace(":", "_").replace(";", "_").replace("=", "-") \
            .replace("[", "").replace("]", "").replace(",", "-").replace(" ", "")
        cfg = template_config(kind, db, folder, over, args.committee)
        print(f"[{name}] training ({cfg.model.committee} members) ...", flush=True)
        res = train(cfg, log=lambda s, n=name: print(f"  [{n}] {s}", flush=True)
                    if ("epoch" not in s or s.split()[1].endswith("0")) else None)
        model = res.model
        row = {"kind": kind, "overrides": over, "committee": model.n_members,
               "fit_s": float(model.config.get("train_seconds", res.seconds))}
        for tname, (f, t) in tests.items():
            row[tname] = tensor_errors(model.predict(f)["zfs_tensor"], t)
        row["pred_per_s"], row["pred_per_cpu_s"] = speed(model, fresh)
        results[name] = row
        res_path.write_text(json.dumps(results, indent=2))

    print(f"\n[Co(pdms)2]2-, LF labels: {len(tr_f)} train, 300 validation, {len(te_f)} test "
          f"(distortions 0.01/0.05/0.10 A)" + (f", {len(tests['md'][0])} MD frames"
                                               if "md" in tests else "")
          + f"; speed: Committee.predict on {len(fresh)} fresh structures, {args.threads} "
          "threads, descriptors included")
    cols = "  ".join(f"{t + ' ' + q:>11}" for t in tests for q in ("D_ij", "D", "E"))
    print(f"{'setting':<52} {'n':>2} {cols} {'fit s':>7} {'pred/s':>7} {'/cpu-s':>7}")
    for name, row in results.items():
        if name != "mean-tensor baseline" and not any(name == r[0] for r in rows):
            continue
        vals = "  ".join(f"{x:>11.3f}" for t in tests for x in row.get(t, [np.nan] * 3))
        print(f"{name:<52} {row.get('committee', ''):>2} {vals} {row['fit_s']:>7.0f} "
              f"{row['pred_per_s']:>7.0f} {row.get('pred_per_cpu_s', float('nan')):>7.0f}")


if __name__ == "__main__":
    main()
