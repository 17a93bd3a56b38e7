"""The finite-temperature stages of the [Co(pdms)2]2- campaign (Zaverkin et al. 2022, Sec. 4):

* **learn** — active learning from ML MD (:mod:`molmag.dynamics.learn_runs`): the SNAP energy
  committee and the covariant D-tensor committee, trained on the campaign's training and
  validation rows (copied into ``learn/labels.db``; the test rows stay out), run MD at the
  learning temperatures; the frames where their calibrated spreads exceed the models' own
  thresholds are labelled (xTB + ligand field) and the models retrained;
* **md** — Langevin NVT with the learned committees (LAMMPS SNAP), several temperatures,
  every stored frame with D, E and the spreads (:mod:`molmag.dynamics.md`);
* **thermal** — thermal averages and correlations per temperature
  (:func:`molmag.dynamics.thermal.thermal_summary`, ``thermal/thermal.json``) and a spot
  check: every k-th MD frame re-labelled by the reference engines, the RMSE of the committee
  against them and the coverage of its calibrated spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from molmag.workflows.stages import Context

#: Zaverkin et al. 2022, Sec. 4.2 (Figs 4 and 5): GM-NN committees, MD 2.5 ns per temperature.
PAPER_THERMAL = {"25": {"D_mean": -105.7, "D_std": 3.1, "E_mean": 1.2, "E_std": 0.2},
                 "100": {"D_mean": -106.0, "D_std": 6.2, "E_mean": 1.3, "E_std": 0.5,
                         "r_D_dML": -0.22, "r_D_q": 0.88}}


#: the learn stage's D committee: members on 80 % subsamples (the learn template's): bootstrap
#: members, 63 % distinct rows each, shrank the scan slopes of D on ~200 labels (DEVELOPERS.md,
#: "Ridge penalty by leave-one-out")
LEARN_TENSOR = {"kind": "covariant-ridge", "resample": "subsample", "subsample": 0.8}


def _split_records(ctx: Context) -> dict[str, list]:
    """The campaign's train/val/test rows (the split stored in the covariant model)."""
    from molmag.io.dataset import Dataset
    from molmag.models.committee import Committee

    header = Committee.read_header(ctx.out / "models" / "covariant" / "model.npz")
    ids = header["config"]["split_ids"]
    ds = Dataset(str(ctx.out / "copdms.db"))
    return {name: [ds.get(int(i)) for i in rows] for name, rows in ids.items()}


def _copy_rows(records: list, url: Path) -> int:
    from molmag.io.dataset import Dataset

    if url.exists():
        return len(Dataset(str(url)))
    tmp = url.with_name(url.name + ".part")
    tmp.unlink(missing_ok=True)
    ds = Dataset(str(tmp))
    ds.add_many(records)
    n = len(ds)
    del ds
    tmp.rename(url)
    return n


def stage_learn(ctx: Context) -> dict:
    from molmag.dynamics.learn_runs import LearnConfig, plot_rounds, run_learning
    from molmag.training.templates import SNAP_ENERGY_DESCRIPTOR

    s = ctx.settings
    folder = ctx.out / "learn"
    folder.mkdir(parents=True, exist_ok=True)
    split = _split_records(ctx)
    n0 = _copy_rows(split.get("train", []) + split.get("val", []), folder / "labels.db")
    n_test = _copy_rows(split.get("test", []), folder / "test.db") if split.get("test") else 0
    donors = [int(i) for i in _start(ctx).info["donor_indices"]]
    cfg = LearnConfig.model_validate({
        "structure": {"file": str(ctx.out / "start.xyz")},
        "dataset": str(folder / "labels.db"),
        "initial": {"kind": "normal-modes", "n": s.learn_initial,
                    "temperature": max(s.learn_temperatures)},
        "labels": {"xtb": {"properties": ["energy", "forces", "charges"]},
                   "ligand_field": {"donors": donors}},
        "potential": {"kind": "snap-energy", "committee": s.energy_committee},
        # quadratic SNAP 2J = 4 with element weights: the best forces on xTB MD and ~6x
        # faster MD in LAMMPS than linear 2J = 8 (DEVELOPERS.md, "Potentials for MD")
        "descriptors": {"potential": SNAP_ENERGY_DESCRIPTOR},
        # the potential learns the thermal region: not the 0.2 A displacements, whose
        # forces (several eV/A) would dominate its fit
        "potential_selection": "group!=disp0.2",
        "tensor": LEARN_TENSOR | {"committee": s.covariant_committee},
        "md": {"temperatures": list(s.learn_temperatures), "time_ps": s.learn_time_ps,
               "stride": 10, "trajectories": s.learn_trajectories, "seed": s.learn_seed},
        "select": {"batch": s.learn_batch, "stopped_first": s.learn_stopped_first},
        "budget": s.learn_budget,
        "max_rounds": s.learn_rounds, "val_fraction": s.val,
        "test": {"dataset": str(folder / "test.db")} if n_test else None,
        "cluster": {"kind": "local", "n_workers": s.workers}, "output": str(folder)})
    ctx.log(f"active learning from {n0} labelled structures + {s.learn_initial} normal-mode "
            f"samples at {max(s.learn_temperatures):g} K (test set: {n_test})")
    st = run_learning(cfg, log=lambda t: ctx.log(f"  {t}"), start=_start(ctx))
    plot_rounds(st, folder / "rounds.png")
    final = {k: str(Path(v).relative_to(ctx.out)) if v else None
             for k, v in st["final"].items()}
    return {"status": st["status"], "stop_reason": st["stop_reason"],
            "initial_labels": st["initial_labels"],
            "labels_added": sum(len(r["picked"]) for r in st["rounds"]),
            "rounds": [{k: r[k] for k in ("round", "n_labels", "candidates", "n_frames",
                                          "max_spread", "thresholds", "test")}
                       | {"md": [m["status"] for m in r["md"]]} for r in st["rounds"]],
            "final": final, "plot": "learn/rounds.png"}


def _start(ctx: Context):
    from molmag.workflows.co_pdms import _read_start

    return _read_start(ctx)


def stage_md(ctx: Context) -> dict:
    from molmag.dynamics.md_runs import MDConfig, run_md_config

    s = ctx.settings
    final = ctx.results["learn"]["final"]
    cfg = MDConfig.model_validate({
        "structure": {"file": str(ctx.out / "start.xyz")},
        "potential": {"model": str(ctx.out / final["potential"])},
        "tensor": {"model": str(ctx.out / final["tensor"])},
        "temperatures": list(s.md_temperatures), "trajectories": s.md_trajectories,
        "time_ps": s.md_time_ps, "stride": s.md_stride,
        "checkpoint_every": s.md_stride * max(1, 2000 // s.md_stride),
        "cluster": {"kind": "local", "n_workers": s.workers}, "output": str(ctx.out / "md")})
    ctx.log(f"MD: {len(cfg.temperatures)} temperature(s) x {cfg.trajectories} run(s) x "
            f"{s.md_time_ps:g} ps with the learned committees")
    results = run_md_config(cfg, start=_start(ctx), log=ctx.log)
    runs = []
    for r in results:
        if isinstance(r, BaseException):
            raise RuntimeError(f"an MD run failed: {r}")
        runs.append({"run": r.stem.name, "status": r.status, "stop_reason": r.stop_reason,
                     "n_frames": r.n_frames, "ns_per_day": r.ns_per_day,
                     "wall_s": r.wall_s, "engine": r.sidecar.get("engine", "ase"),
                     "trajectory": str(r.trajectory.relative_to(ctx.out))})
        ctx.log(f"  {r.stem.name}: {r.status}, {r.n_frames} frames, {r.ns_per_day:.3g} ns/day")
    return {"runs": runs, "time_ps": s.md_time_ps, "temperatures": list(s.md_temperatures)}


def spot_check(frames: list, start, every: int, max_frames: int) -> dict[str, Any]:
    """Every ``every``-th frame (at most ``max_frames``) re-labelled by the reference engines
    (xTB forces, ligand-field D): RMSE of the committee values stored in the frames, and the
    fraction of reference values inside the committee's calibrated +-1 sigma."""
    from molmag.chem.xtb import XTBCalculator
    from molmag.physics.ligand_field import LigandFieldCalculator
    from molmag.physics.zfs import zfs_from_tensor

    pick = frames[::max(1, every)][:max_frames]
    lf = LigandFieldCalculator(donors=[int(i) for i in start.info["donor_indices"]])
    from scipy.stats import chi

    d_err, d_in, f_err, f_in = [], [], [], []
    for a in pick:
        b = a.copy()
        b.info = {k: start.info[k] for k in ("charge", "multiplicity", "metal_index")}
        d_ref = zfs_from_tensor(np.asarray(lf.get_property("zfs_tensor", b.copy()))).D
        d_err.append(a.info["zfs_D"] - d_ref)
        d_in.append(abs(d_err[-1]) <= a.info.get("zfs_D_std", 0.0))
        f_ref = XTBCalculator().get_forces(b.copy())
        # ase.io.read moves an extxyz 'forces' column into a SinglePointCalculator
        f_ml = (a.calc.results["forces"] if a.calc is not None and "forces" in a.calc.results
                else a.arrays["forces"])
        err = np.asarray(f_ml) - f_ref
        f_err.append(err.ravel())
        if "forces_std" in a.arrays:  # per-atom norm of the component sigmas
            f_in.append(np.linalg.norm(err, axis=1) <= a.arrays["forces_std"])
    f = np.concatenate(f_err)
    return {"n_frames": len(pick), "every": every,
            "D_rmse": float(np.sqrt(np.mean(np.square(d_err)))),
            "D_coverage_1sigma": float(np.mean(d_in)),
            "forces_rmse": float(np.sqrt(np.mean(f ** 2))),
            # |error of an atom| <= the norm of its three component sigmas: for calibrated
            # Gaussian errors a chi(3) variable below sqrt(3), probability 0.608
            "forces_coverage_atom": float(np.mean(np.concatenate(f_in))) if f_in else None,
            "forces_coverage_expected": float(chi(3).cdf(np.sqrt(3.0)))}


def stage_thermal(ctx: Context) -> dict:
    import json

    from molmag.dynamics.thermal import plot_thermal, thermal_series, thermal_summary
    from molmag.dynamics.trajectory import read_trajectories

    s = ctx.settings
    paths = [ctx.out / r["trajectory"] for r in ctx.results["md"]["runs"]]
    trajs = read_trajectories(paths)
    # a run that stopped early (blow-up) keeps its frames: it skips at most half its length,
    # the others the whole equilibration
    skips = [min(s.thermal_skip_ps, 0.5 * float(t.times_fs[-1]) / 1000.0) for t in trajs]
    stopped = [r["run"] for r in ctx.results["md"]["runs"] if r["status"] != "finished"]
    if stopped:
        short = [f"{r['run']} {x:.3g} ps" for r, x in zip(ctx.results["md"]["runs"], skips)
                 if x < s.thermal_skip_ps]
        ctx.log(f"  runs stopped early: {', '.join(stopped)}; equilibration skipped: "
                f"{s.thermal_skip_ps:g} ps" + (f" ({', '.join(short)})" if short else ""))
    series = thermal_series(trajs, skip_ps=skips)
    summary = thermal_summary(trajs, series=series)
    out = ctx.path("thermal", "thermal.json")
    out.write_text(json.dumps(summary, indent=1))
    plots = [str(Path(p).relative_to(ctx.out)) for p in plot_thermal(series, out.parent)]
    from ase.io import read

    frames: list[Atoms] = []
    for p in paths:
        frames += read(p, ":")
    n = max(1, len(frames) // s.spot_check_frames)
    check = spot_check(frames, _start(ctx), n, s.spot_check_frames)
    ctx.log(f"spot check of {check['n_frames']} MD frames: D RMSE {check['D_rmse']:.2f} cm-1 "
            f"(coverage {check['D_coverage_1sigma']:.2f}), forces RMSE "
            f"{check['forces_rmse']:.3f} eV/A")
    for t, v in summary.items():
        ctx.log(f"  {t} K: D {v['D_mean']:.1f} +- {v['D_std']:.1f}, E {v['E_mean']:.2f} +- "
                f"{v['E_std']:.2f} cm-1, r(D, d_CoN) {_r(v['r_D_dML'])}, r(D, q) "
                f"{_r(v['r_D_q'])}")
    return {"thermal": summary, "spot_check": check, "plots": plots,
            "skip_ps": max(skips), "skip_ps_runs": skips,
            "stopped_runs": stopped, "file": "thermal/thermal.json"}


def _r(x) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


__all__ = ["stage_learn", "stage_md", "stage_thermal", "spot_check", "PAPER_THERMAL"]
