"""Active learning against random selection from the same MD frames, on [Co(pdms)2]2-.

Run::

    python benchmarks/active_learning.py --out /tmp/al-bench [--budget 60 --batch 10]
        [--time-ps 2 --temperature 100 --initial 20 --seeds 0,1] [--test test.db]

1. **Test set**: an independent reference-labelled MD test set: GFN2-xTB Langevin MD of the
   relaxed complex at ``--temperature`` (ASE, 0.5 fs, 0.01 fs^-1), ``--test-frames`` frames
   20 fs apart after 1 ps, labelled with xTB energies/forces and the ligand-field D tensor
   (or ``--test DB``: an existing labelled dataset).
2. **Active learning** (``molmag learn``'s loop, :func:`molmag.dynamics.learn_runs.run_learning`):
   SNAP energy and covariant D committees, ``--initial`` normal-mode samples at
   ``--temperature`` to start (quadratic SNAP 2J = 4, the shipped energy descriptor), MD at
   ``--temperature`` for ``--time-ps`` per round, ``--batch`` labels per round chosen by
   query by committee + farthest-point selection (the last frames before a stopped run first:
   ``select.stopped_first``, ``molmag learn``'s default since stop 37; stop 34's measurement
   in DEVELOPERS.md ran without it), until ``--budget`` labels are added.
3. **Random selection**: the same number of labels per round drawn uniformly from the pool of
   every MD frame the active loop produced (all rounds), labelled the same way, the same
   models trained on the same initial rows plus them.
4. **MD stability** (``--stability-runs``, ``--stability-ps``): the final potential of each arm
   runs Langevin MD at ``--temperature`` (``molmag md``, LAMMPS engine); how many runs reach
   the end, and the mean run length.

For each arm and label count: force RMSE (eV/Å) and D_ij RMSE (cm-1) on the test set.  The
summary says how many labels the active loop needed to reach random selection's final error
(target: at most one third of random's labels): ``ratio`` counts every label (the shared
initial samples included), ``ratio_selected`` only the labels each arm selected itself.
Results are cached in ``--out``; a rerun continues.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def make_test_set(out: Path, start, temperature: float, n_frames: int, seed: int) -> str:
    """xTB Langevin MD frames of ``start`` labelled with xTB + LF into ``out/test.db``."""
    from ase import units
    from ase.constraints import FixCom
    from ase.io import write
    from ase.md.langevin import Langevin

    from molmag.chem.xtb import XTBCalculator
    from molmag.dynamics.md import start_velocities
    from molmag.labelling.config import LabelConfig
    from molmag.labelling.pipeline import run_labelling

    db = out / "test.db"
    frames_file = out / "test_frames.extxyz"
    if not frames_file.exists():
        a = start.copy()
        a.info = dict(start.info)
        a.set_constraint(FixCom())   # as molmag md: 3N - 3 degrees of freedom
        a.calc = XTBCalculator()
        start_velocities(a, temperature, seed + 100, 0)
        dyn = Langevin(a, timestep=0.5 * units.fs, temperature_K=temperature,
                       friction=0.01 / units.fs, fixcm=False,
                       rng=np.random.default_rng(seed + 100))
        dyn.run(2000)  # 1 ps
        frames = []
        for _ in range(n_frames):
            dyn.run(40)  # 20 fs apart
            frames.append(a.copy())
            frames[-1].set_constraint()
        write(frames_file, frames, format="extxyz")
    cfg = LabelConfig.model_validate({
        "output": str(db), "sources": [{"file": str(frames_file), "charge": -2,
                                        "multiplicity": 4, "metal_index": 0, "group": "test"}],
        "labels": {"xtb": {"properties": ["energy", "forces"]},
                   "ligand_field": {"donors": [int(i) for i in start.info["donor_indices"]]}},
        "cluster": {"kind": "serial"}})
    run_labelling(cfg)
    return str(db)


def learn_config(out: Path, args, start, seed: int, test_db: str):
    from molmag.dynamics.learn_runs import LearnConfig
    from molmag.training.templates import SNAP_ENERGY_DESCRIPTOR

    donors = [int(i) for i in start.info["donor_indices"]]
    return LearnConfig.model_validate({
        "structure": {"file": str(out / "start.xyz")},
        "dataset": str(out / f"al{seed}" / "labels.db"),
        "initial": {"kind": "normal-modes", "n": args.initial,
                    "temperature": args.temperature, "seed": seed},
        "labels": {"xtb": {"properties": ["energy", "forces"]},
                   "ligand_field": {"donors": donors}},
        "potential": {"kind": "snap-energy", "committee": 4},
        "descriptors": {"potential": SNAP_ENERGY_DESCRIPTOR},
        "tensor": {"kind": "covariant-ridge", "committee": 4},
        "md": {"temperatures": [args.temperature], "time_ps": args.time_ps, "stride": 10,
               "seed": seed},
        "select": {"batch": args.batch}, "budget": args.budget,
        "max_rounds": args.budget // args.batch + 1, "seed": seed,
        "test": {"dataset": test_db}, "cluster": {"kind": "serial"},
        "output": str(out / f"al{seed}")})


def random_arm(cfg, state: dict, seed: int, out: Path) -> list[dict]:
    """Random frames from the active loop's MD pool at the same label counts."""
    from ase.io import read

    from molmag.dynamics.learn_runs import _label_frames, _train, test_errors
    from molmag.io.dataset import Dataset

    folder = out / f"random{seed}"
    cache = folder / "rows.json"
    rows = json.loads(cache.read_text()) if cache.exists() else []
    pool = []
    for traj in sorted(Path(cfg.output).glob("round*/md/*.extxyz")):
        if not traj.name.endswith("_last_good.extxyz"):
            pool += read(traj, ":")
    rng = np.random.default_rng(seed + 1000)
    order = rng.permutation(len(pool))
    rcfg = cfg.model_copy(deep=True)
    rcfg.dataset = str(folder / "labels.db")
    rcfg.output = str(folder)
    if not Path(rcfg.dataset).exists():  # the same initial rows as the active loop
        folder.mkdir(parents=True, exist_ok=True)
        Dataset(rcfg.dataset).add_many(list(Dataset(cfg.dataset).select("group=al-initial")))
    start = read(Path(cfg.output) / "initial.extxyz", 0)
    start.info.update(charge=-2, multiplicity=4, metal_index=0)
    n0 = state["initial_labels"]
    for r in state["rounds"]:
        n = r["n_labels"]
        if any(x["n_labels"] == n for x in rows):
            continue
        k = n - n0
        if k:
            _label_frames(rcfg, [pool[i] for i in order[:k]], folder / f"n{n}.extxyz",
                          f"random{n}", start)
        sub = folder / f"n{n}"
        pot = _train(rcfg, rcfg.potential, "potential", sub / "potential", lambda s: None)
        ten = _train(rcfg, rcfg.tensor, "tensor", sub / "tensor", lambda s: None)
        rows.append({"n_labels": n, **test_errors(rcfg, pot, ten)})
        cache.write_text(json.dumps(rows, indent=1))
    return rows


def md_stability(out: Path, name: str, model: Path, args) -> dict:
    """``--stability-runs`` Langevin runs of ``--stability-ps`` at ``--temperature`` with the
    final potential of one arm (``molmag md``, LAMMPS engine, seeds 7 + run): how many run to
    the end and how long the others last before a blow-up stops them.  What active learning
    is for: test-set errors on typical frames say nothing about the holes a run falls into."""
    from molmag.dynamics.md_runs import MDConfig, run_md_config

    cfg = MDConfig.model_validate({
        "structure": {"file": str(out / "start.xyz"), "charge": -2, "multiplicity": 4},
        "potential": {"model": str(model)}, "tensor": None, "engine": "lammps",
        "temperatures": [args.temperature], "trajectories": args.stability_runs,
        "time_ps": args.stability_ps, "stride": 20, "seed": 7, "cluster": {"kind": "serial"},
        "output": str(out / "stability" / name)})
    res = [r for r in run_md_config(cfg) if not isinstance(r, BaseException)]
    ps = [r.steps_done * cfg.timestep_fs / 1000.0 for r in res]
    return {"runs": len(res), "finished": sum(r.status == "finished" for r in res),
            "ps": ps, "mean_ps": float(np.mean(ps)) if ps else float("nan")}


def labels_to_reach(curve: list[dict], key: str, target: float) -> int | None:
    for row in sorted(curve, key=lambda r: r["n_labels"]):
        if row.get(key) is not None and row[key] <= target:
            return row["n_labels"]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("al-bench"))
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--initial", type=int, default=20)
    ap.add_argument("--time-ps", type=float, default=2.0)
    ap.add_argument("--temperature", type=float, default=100.0)
    ap.add_argument("--test-frames", type=int, default=40)
    ap.add_argument("--test", default=None, help="an existing labelled test dataset")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--stability-runs", type=int, default=6,
                    help="MD runs per arm with its final potential (0: none)")
    ap.add_argument("--stability-ps", type=float, default=10.0)
    args = ap.parse_args()
    from ase.io import read, write

    from molmag.chem.builders import build
    from molmag.dynamics.learn_runs import run_learning

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "start.xyz").exists():
        write(out / "start.xyz", build("co-pdms", relax=True), format="extxyz")
    start = read(out / "start.xyz")
    start.info["donor_indices"] = [int(i) for i in start.info["donor_indices"]]
    test_db = args.test or make_test_set(out, start, args.temperature, args.test_frames, 0)
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = learn_config(out, args, start, seed, test_db)
        state = run_learning(cfg, log=print, start=start)
        al = [{"n_labels": r["n_labels"], **r["test"]} for r in state["rounds"]]
        rnd = random_arm(cfg, state, seed, out)
        results[seed] = {"active": al, "random": rnd}
        if args.stability_runs:
            n = max(r["n_labels"] for r in rnd)
            last = max(int(p.parent.parent.name[5:]) for p in
                       Path(cfg.output).glob("round*/potential/model.npz"))
            results[seed]["stability"] = {
                "active": md_stability(out, f"active{seed}", Path(cfg.output) /
                                       f"round{last}" / "potential" / "model.npz", args),
                "random": md_stability(out, f"random{seed}", out / f"random{seed}" /
                                       f"n{n}" / "potential" / "model.npz", args)}
    print(f"\n{'seed':>4} {'arm':>7} {'labels':>7} {'F RMSE eV/A':>12} {'D_ij RMSE cm-1':>15}")
    summary = {}
    for seed, res in results.items():
        for arm in ("active", "random"):
            for row in res[arm]:
                print(f"{seed:>4} {arm:>7} {row['n_labels']:>7} "
                      f"{row.get('forces_rmse', float('nan')):>12.4f} "
                      f"{row.get('D_ij_rmse', float('nan')):>15.3f}")
        final = max(res["random"], key=lambda r: r["n_labels"])
        n0 = min(r["n_labels"] for r in res["active"])   # the shared initial samples
        for key in ("forces_rmse", "D_ij_rmse"):
            need = labels_to_reach(res["active"], key, final[key])
            added = final["n_labels"] - n0
            summary[f"seed{seed}_{key}"] = {
                "random_final": final[key], "random_labels": final["n_labels"],
                "active_labels_to_reach": need,
                "ratio": None if need is None else need / final["n_labels"],
                # the same counted over the labels each arm chose (the initial ones excluded);
                # None where the shared initial samples alone already reach it (random
                # selection made the model worse: no comparison)
                "ratio_selected": None if need is None or not added or need <= n0
                else (need - n0) / added,
                "reached_by_initial": need is not None and need <= n0}
        for arm, st in res.get("stability", {}).items():
            summary[f"seed{seed}_md_{arm}"] = st
            print(f"{seed:>4} {arm:>7} MD at {args.temperature:g} K: {st['finished']} of "
                  f"{st['runs']} runs of {args.stability_ps:g} ps finished, mean run length "
                  f"{st['mean_ps']:.2f} ps")
    print(json.dumps(summary, indent=1))
    (out / "summary.json").write_text(json.dumps({"results": results, "summary": summary},
                                                 indent=1))


if __name__ == "__main__":
    main()
