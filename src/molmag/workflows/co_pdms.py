r"""The [Co(pdms)2]2- design campaign (Lunghi & Sanvito, Sci. Adv. 2020): ``molmag campaign
co-pdms``.

Stages (each resumable, in one output folder; :mod:`molmag.workflows.stages`):

1. **build** — [Co(pdms)2]2- from its ligand SMILES, relaxed with GFN2-xTB (``start.xyz``),
   with D from the ligand-field engine and the structural parameters of the start.
2. **sample** — uniform random displacements of every Cartesian coordinate, ``n`` per
   amplitude delta (the paper's protocol: 500 at each of 0.05, 0.1, 0.2 Angstrom).
3. **label** — GFN2-xTB energies, forces and charges and the ligand-field D tensor of every
   structure, on Dask (``copdms.db``, the :mod:`molmag.labelling` pipeline).
4. **train** — three committees on one split: the covariant bispectrum ridge of D (the
   paper's model), the Gaussian-moment network of D (Zaverkin et al. 2022) and the SNAP
   energy model (bispectrum ridge on energies and forces, the paper's energy model).
4a. **learn**, **md**, **thermal** — active learning from ML MD, Langevin MD of the learned
   committees at several temperatures and the thermal averages of D and E (Zaverkin et al.
   2022, Sec. 4; :mod:`molmag.workflows.co_pdms_dynamics`).
5. **pso** — particle-swarm optimisation of chi = E - E0 + gamma D on the ML committees for
   several gamma (eV per cm-1), every optimum re-computed with the ligand-field engine.
6. **scan** — 2D scan of the mean Co-N distance and the mean intraligand N-Co-N angle (the
   paper's Fig. 4): the ML models and the reference engines (xTB + ligand field) side by side.
7. **correlate** — Pearson r of D with the mean Co-N distance, the tetrahedral order parameter
   q and the bite angle over the labelled dataset (reference labels and ML predictions).
8. **report** — ``report.md`` and a self-contained ``report.html``: which coordinates drive D,
   compared with the paper, with every table and figure.

``quick`` sizes finish in a few minutes on 2 cores; the full sizes are the paper's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from molmag.progress import ProgressFn
from molmag.workflows.co_pdms_dynamics import stage_learn, stage_md, stage_thermal
from molmag.workflows.report import plot_chi_t_and_mh
from molmag.workflows.stages import Context, LabelProgress, Stage

#: The paper's finding (Lunghi & Sanvito 2020, Fig. 4 and text): shorter Co-N distances and
#: smaller intraligand N-Co-N angles make D more negative; a ~5 % reduction of these
#: structural parameters gives a ~50 % increase of |D|.
PAPER = {"dD_dr_sign": +1, "dD_dangle_sign": +1, "reduction": 0.05, "increase": 0.50,
         "extrapolation_error": 0.07}


@dataclass
class CoPdmsSettings:
    """Sizes and settings of a run (``quick()`` / ``full()``)."""

    #: a folder holding a run with other values of these is not resumed with them (its
    #: samples, split and active-learning rounds would be mixed with another run's)
    same_on_resume: ClassVar[tuple[str, ...]] = (
        "deltas", "n_per_delta", "sample_seed", "val", "test", "split_seed",
        "learn_temperatures", "learn_initial", "learn_time_ps", "learn_batch", "learn_budget",
        "learn_rounds", "learn_trajectories", "learn_stopped_first", "learn_seed")

    mode: str = "full"
    deltas: tuple[float, ...] = (0.05, 0.1, 0.2)   # Angstrom
    n_per_delta: int = 500
    sample_seed: int = 0
    workers: int | None = None                      # labelling processes (None: one per core)
    val: float = 0.1
    test: float = 0.2
    split_seed: int = 0
    covariant_committee: int = 3
    gmnn_committee: int = 3
    gmnn_epochs: int = 200                           # the template's (paper: 1000)
    energy_committee: int = 3
    gammas: tuple[float, ...] = (0.0, 0.005, 0.02, 0.1, 0.5)   # eV per cm-1
    pso_particles: int = 20
    pso_steps: int = 50
    pso_max_displacement: float = 0.2
    pso_seed: int = 0
    scan_points: int = 21
    scan_distance: float = 0.1                       # +- Angstrom
    scan_angle: float = 5.0                          # +- degrees
    scan_reference: bool = True                      # xTB + LF beside the ML models
    n_bootstrap: int = 1000
    relax_temperatures: tuple[float, ...] = (2.0, 100.0, 50)   # K: start, stop, n
    relax_linewidth: float = 10.0                    # cm-1, phonon line FWHM
    relax_field: float = 0.1                         # T, along the easy axis
    relax_optimum: bool = True                       # tau(T) also at the PSO optimum
    learn_temperatures: tuple[float, ...] = (100.0,)  # K: active-learning MD
    learn_initial: int = 100                         # normal-mode samples to start from
    learn_time_ps: float = 10.0                      # each round's MD
    learn_batch: int = 20                            # labels per round
    learn_budget: int = 200                          # labels added at most
    learn_rounds: int = 10
    learn_trajectories: int = 4                      # independent MD runs per round
    learn_stopped_first: bool = True                 # label the frames before a blow-up first
    learn_seed: int = 0                              # the learning MD's Langevin seed
    md_temperatures: tuple[float, ...] = (25.0, 50.0, 75.0, 100.0)   # K (the paper's)
    md_trajectories: int = 1
    md_time_ps: float = 2500.0                       # the paper's 2.5 ns
    md_stride: int = 100                             # steps between stored frames
    thermal_skip_ps: float = 50.0                    # equilibration left out of the averages
    spot_check_frames: int = 50                      # MD frames re-labelled by the reference

    @classmethod
    def full(cls, **over) -> CoPdmsSettings:
        return cls(**over)

    @classmethod
    def quick(cls, **over) -> CoPdmsSettings:
        base: dict[str, Any] = dict(mode="quick", deltas=(0.05, 0.1, 0.2), n_per_delta=40,
                    covariant_committee=3, gmnn_committee=2, gmnn_epochs=200,
                    energy_committee=2, gammas=(0.0, 0.02, 0.1), pso_particles=20,
                    pso_steps=50, pso_max_displacement=0.1, scan_points=9,
                    n_bootstrap=300, learn_time_ps=2.0, learn_initial=60, learn_batch=10,
                    learn_budget=60,
                    learn_rounds=6, md_temperatures=(50.0, 100.0), md_time_ps=20.0,
                    md_stride=20, thermal_skip_ps=2.0, spot_check_frames=10)
        base.update(over)
        return cls(**base)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# -- helpers ---------------------------------------------------------------------------------
def _read_start(ctx: Context):
    import ase.io

    atoms = ase.io.read(ctx.out / "start.xyz", format="extxyz")
    assert isinstance(atoms, Atoms)  # one frame
    atoms.calc = None
    if isinstance(atoms.info.get("donor_indices"), np.ndarray):
        atoms.info["donor_indices"] = [int(i) for i in atoms.info["donor_indices"]]
    return atoms


def structure_parameters(atoms, reference=None) -> dict:
    """Mean Co-N distance (Angstrom), mean intraligand N-Co-N angle (deg) and q of ``atoms``
    (donors and chelate pairs of ``reference``, default ``atoms``)."""
    from molmag.chem.features import tetrahedral_order_parameter
    from molmag.explore.scan import ChelateBiteAngle, MetalDonorDistance

    ref = reference if reference is not None else atoms
    donors = ref.info.get("donor_indices")
    metal = ref.info.get("metal_index")
    dist = MetalDonorDistance(ref, metal, donors)
    ang = ChelateBiteAngle(ref, metal, donors)
    q, _ = tetrahedral_order_parameter(atoms, dist.metal, list(dist.donors))
    return {"d_CoN_A": dist.measure(atoms), "angle_NCoN_deg": ang.measure(atoms),
            "q_tet": float(q)}


def _lf(atoms):
    from molmag.physics.ligand_field import LigandFieldCalculator

    return LigandFieldCalculator(donors=[int(i) for i in atoms.info["donor_indices"]])


def _model_path(ctx: Context, name: str) -> str:
    return str(ctx.out / "models" / name / "model.npz")


# -- stages ----------------------------------------------------------------------------------
def stage_build(ctx: Context) -> dict:
    import ase.io

    from molmag.chem.builders import build
    from molmag.chem.xtb import XTBCalculator

    ctx.log("building [Co(pdms)2]2- and relaxing it with GFN2-xTB")
    atoms = build("co-pdms", relax=True, fmax=0.05)
    e = float(XTBCalculator().get_potential_energy(atoms.copy()))
    d = float(_lf(atoms).get_property("zfs_D", atoms.copy()))
    atoms.info["energy_xtb_eV"] = e
    atoms.info["zfs_D_lf_cm-1"] = d
    ase.io.write(ctx.out / "start.xyz", atoms, format="extxyz")
    params = structure_parameters(atoms)
    ctx.log(f"start: D = {d:.1f} cm-1, Co-N {params['d_CoN_A']:.3f} A, "
            f"N-Co-N {params['angle_NCoN_deg']:.2f} deg, q = {params['q_tet']:.3f}")
    return {"formula": atoms.get_chemical_formula(), "n_atoms": len(atoms), "energy_eV": e,
            "zfs_D_cm-1": d, **params, "file": "start.xyz"}


def stage_sample(ctx: Context) -> dict:
    import ase.io

    from molmag.chem.sampling import displacement_sets

    s: CoPdmsSettings = ctx.settings
    start = _read_start(ctx)
    files = {}
    for delta in s.deltas:
        frames = displacement_sets(start, deltas=(delta,), n_per_delta=s.n_per_delta,
                                   seed=s.sample_seed)
        name = f"samples/disp{delta:g}.xyz"
        ase.io.write(ctx.path(name), frames, format="extxyz")
        files[f"disp{delta:g}"] = name
    ctx.log(f"{s.n_per_delta} displaced structures at each delta = {list(s.deltas)} A")
    return {"files": files, "n": s.n_per_delta * len(s.deltas) + 1}


def stage_label(ctx: Context) -> dict:
    from molmag.io.dataset import Dataset
    from molmag.labelling import LabelRun
    from molmag.labelling.config import LabelConfig

    s: CoPdmsSettings = ctx.settings
    start = _read_start(ctx)
    files = ctx.results["sample"]["files"]
    sources: list[dict[str, Any]] = [{"file": str(ctx.out / "start.xyz"), "group": "base"}]
    sources += [{"file": str(ctx.out / f), "group": g, "charge": -2, "multiplicity": 4}
                for g, f in files.items()]
    donors = [int(i) for i in start.info["donor_indices"]]
    cfg = LabelConfig.model_validate({
        "output": str(ctx.out / "copdms.db"), "sources": sources,
        "labels": {"xtb": {"properties": ["energy", "forces", "charges"]},
                   "ligand_field": {"donors": donors}},
        "cluster": {"kind": "local", "n_workers": s.workers}, "batch_size": 8})
    summary = LabelRun(cfg, reporter=LabelProgress(ctx.log)).run()
    ds = Dataset(cfg.output)
    groups = {}
    for g in ["base"] + list(files):
        d = [r.labels["zfs_tensor"] for r in ds.select(f"group={g}") if "zfs_tensor" in r.labels]
        from molmag.physics.zfs import zfs_from_tensor

        D = np.array([zfs_from_tensor(np.asarray(t)).D for t in d])
        groups[g] = {"n": int(ds.count(f"group={g}")), "labelled": len(D),
                     "D_mean": float(D.mean()) if len(D) else None,
                     "D_std": float(D.std()) if len(D) else None,
                     "D_min": float(D.min()) if len(D) else None,
                     "D_max": float(D.max()) if len(D) else None}
    n_fail = len(summary.failures_new) + summary.failures_skipped
    if n_fail and summary.labelled + summary.already_labelled < 10:
        raise RuntimeError(f"labelling failed for most structures: "
                           f"{next(iter(summary.failures_new.values()), '')}")
    return {"dataset": "copdms.db", "rows": summary.rows_in_run, "labelled": summary.labelled,
            "already_labelled": summary.already_labelled, "failures": n_fail,
            "seconds": summary.seconds, "workers": summary.workers, "groups": groups}


def _train_log(ctx: Context, text: str) -> None:
    """Training messages for the campaign log: every tenth network epoch, all the rest."""
    words = text.split()
    if len(words) > 1 and words[0] == "epoch" and words[1].isdigit() and int(words[1]) % 10:
        return
    ctx.log(f"  {text}")


def _train_one(ctx: Context, name: str, kind: str, committee: int, hyper: dict,
               descriptor: dict | None = None) -> dict:
    from molmag.training import train
    from molmag.training.config import TrainConfig
    from molmag.training.metrics import headline

    s: CoPdmsSettings = ctx.settings
    cfg = TrainConfig.model_validate({
        "model": {"kind": kind, "committee": committee, "hyper": hyper},
        "descriptor": descriptor or {},
        "data": {"dataset": str(ctx.out / "copdms.db"),
                 "split": {"by": "fraction", "val": s.val, "test": s.test},
                 "seed": s.split_seed},
        "output": str(ctx.out / "models" / name)})
    ctx.log(f"training {kind} (committee of {committee})")
    res = train(cfg, log=lambda t: _train_log(ctx, t))
    m = res.model.metrics
    cal = (m.get("test") or {}).get("calibration") or {}
    return {"kind": kind, "committee": committee, "sizes": res.sizes,
            "seconds": float(m.get("train_seconds", res.seconds)),
            "test": headline(res.model.target, m["test"]) if "test" in m else {},
            "coverage": {k: {c: v.get(c) for c in ("coverage_1sigma", "coverage_2sigma",
                                                    "spearman_abs_error_sigma", "n")}
                         for k, v in cal.items() if k in ("zfs_D", "energy", "forces")},
            "calibration": res.model.calibration_note,
            "model": f"models/{name}/model.npz", "parity": f"models/{name}/parity.png",
            "reliability": f"models/{name}/reliability.png"}


def stage_train(ctx: Context) -> dict:
    from molmag.training.templates import (
        GMNN_TENSOR_DESCRIPTOR,
        GMNN_TENSOR_HYPER,
        SNAP_ENERGY_DESCRIPTOR,
    )

    s: CoPdmsSettings = ctx.settings
    return {
        "covariant": _train_one(ctx, "covariant", "covariant-ridge", s.covariant_committee, {}),
        # the shipped template's GM-NN (metal-centred 3.6 A environment, 2 x 128, e_weight):
        # the paper's (centroid, 2 x 512, r_cut 8) got dD/dr's sign wrong on the quick data
        "gmnn": _train_one(ctx, "gmnn", "gmnn-tensor", s.gmnn_committee,
                           GMNN_TENSOR_HYPER | {"max_epochs": s.gmnn_epochs},
                           GMNN_TENSOR_DESCRIPTOR),
        # quadratic SNAP 2J = 4 with element weights (DEVELOPERS.md, "Potentials for MD")
        "energy": _train_one(ctx, "energy", "snap-energy", s.energy_committee, {},
                             SNAP_ENERGY_DESCRIPTOR),
    }


def stage_pso(ctx: Context) -> dict:
    from molmag.explore.runs import OptimizeConfig, run_optimize

    s: CoPdmsSettings = ctx.settings
    start = _read_start(ctx)
    cfg = OptimizeConfig.model_validate({
        "structure": {"file": str(ctx.out / "start.xyz")},
        "energy": {"model": _model_path(ctx, "energy")},
        "anisotropy": {"model": _model_path(ctx, "gmnn")},
        "reference": {"ligand_field": {}},
        "gammas": list(s.gammas),
        "pso": {"n_particles": s.pso_particles, "n_steps": s.pso_steps,
                "max_displacement": s.pso_max_displacement, "seed": s.pso_seed},
        "top": 6, "output": str(ctx.out / "pso")})
    run = run_optimize(cfg, start=start, progress=ctx.progress, log=ctx.log)
    p0 = structure_parameters(start)
    rows = []
    for r, row in zip(run.scan.results, run.table):
        p = structure_parameters(r.best_atoms, start)
        row = dict(row)
        row["structure"] = p
        row["rel_change"] = {k: (p[k] - p0[k]) / p0[k] for k in p}
        row["xtb_energy_eV"] = None
        rows.append(row)
    # the energy cost at each optimum from the reference (xTB), beside the ML one
    from molmag.chem.xtb import XTBCalculator

    e0 = float(XTBCalculator().get_potential_energy(start.copy()))
    for r, row in zip(run.scan.results, rows):
        a = r.best_atoms.copy()
        a.info = dict(start.info)
        try:
            row["xtb_energy_eV"] = float(XTBCalculator().get_potential_energy(a)) - e0
        except Exception as exc:  # reported, not fatal
            row["xtb_energy_error"] = f"{type(exc).__name__}: {exc}"
    return {"rows": rows, "start": p0, "convergence": "pso/pso_convergence.png",
            "table": "pso/gamma_table.csv"}


def stage_scan(ctx: Context) -> dict:
    from molmag.explore.runs import ScanConfig, run_scan, scan_slopes

    s: CoPdmsSettings = ctx.settings
    start = _read_start(ctx)
    calcs: dict[str, Any] = {
        "GM-NN": [{"model": _model_path(ctx, "energy")}, {"model": _model_path(ctx, "gmnn")}],
        "covariant": [{"model": _model_path(ctx, "covariant")}]}
    final = (ctx.results.get("learn") or {}).get("final")
    if final:  # the committees after active learning
        calcs["covariant+AL"] = [{"model": str(ctx.out / final["potential"])},
                                 {"model": str(ctx.out / final["tensor"])}]
    if s.scan_reference:
        calcs["reference"] = [{"xtb": {}}, {"ligand_field": {}}]
    cfg = ScanConfig.model_validate({
        "structure": {"file": str(ctx.out / "start.xyz")}, "calculators": calcs,
        "offsets1": {"start": -s.scan_distance, "stop": s.scan_distance, "n": s.scan_points},
        "offsets2": {"start": -s.scan_angle, "stop": s.scan_angle, "n": s.scan_points},
        "properties": ["zfs_D", "energy"], "output": str(ctx.out / "scan")})
    res = run_scan(cfg, start=start, progress=ctx.progress, log=ctx.log)
    slopes = {c: scan_slopes(res, c, "zfs_D") for c in res.data if "zfs_D" in res.data[c]}
    corners = {c: _corner(res, c) for c in slopes}
    return {"slopes": slopes, "corners": corners, "errors": res.errors[:5],
            "n_errors": len(res.errors), "coordinates": res.coordinates,
            "plots": [str(Path(p).relative_to(ctx.out)) for p in res.meta["files"]["plots"]],
            "wall_s": res.meta.get("wall_s")}


def _corner(res, calc: str) -> dict:
    """D at the reference and at the grid point with both coordinates reduced the most (the
    paper's "5 % reduction" direction), with the relative changes."""
    g = res.grid(calc, "zfs_D")
    i0, j0 = len(res.values1) // 2, len(res.values2) // 2
    d0 = res.reference[calc]["zfs_D"]
    q1, q2 = res.values1[i0], res.values2[j0]
    out = {"D_ref": float(d0), "D_corner": float(g[0, 0]),
           "rel_q1": float(res.values1[0] / q1 - 1), "rel_q2": float(res.values2[0] / q2 - 1),
           "rel_D": float(g[0, 0] / d0 - 1), "D_far": float(g[-1, -1]),
           "rel_D_far": float(g[-1, -1] / d0 - 1)}
    if "energy" in res.data.get(calc, {}):
        ge = res.grid(calc, "energy")  # relative to the start structure (scan.RELATIVE)
        # the energy cost of the distortion (eV): what the D gain at the corner costs
        out["dE_corner_eV"] = float(ge[0, 0])
        out["dE_far_eV"] = float(ge[-1, -1])
    return out


def stage_correlate(ctx: Context) -> dict:
    from molmag.explore.correlations import magneto_structural_correlations
    from molmag.models.calculator import ModelCalculator

    s: CoPdmsSettings = ctx.settings
    db = str(ctx.out / "copdms.db")
    out = {}
    ref = magneto_structural_correlations(db, n_bootstrap=s.n_bootstrap)
    ref.save(ctx.out / "correlations" / "reference")
    ref.plot(ctx.out / "correlations", prefix="reference")
    out["reference"] = {"n": len(ref.D), "D_mean": float(ref.D.mean()),
                        "D_std": float(ref.D.std()), "table": ref.table()}
    ml = magneto_structural_correlations(db, calculator=ModelCalculator(_model_path(ctx, "gmnn")),
                                         n_bootstrap=s.n_bootstrap)
    ml.save(ctx.out / "correlations" / "gmnn")
    ml.plot(ctx.out / "correlations", prefix="gmnn")
    out["gmnn"] = {"n": len(ml.D), "D_mean": float(ml.D.mean()), "D_std": float(ml.D.std()),
                   "table": ml.table()}
    return out


def _relaxation_of(atoms, s: "CoPdmsSettings", *, relax: bool) -> tuple[dict, object]:
    """Normal modes (xTB), ZFS couplings (ligand-field engine) and one-phonon tau(T) of one
    structure (molmag.dynamics.spin_phonon); imaginary modes are left out and counted."""
    from molmag.chem.xtb import XTBCalculator
    from molmag.dynamics.spin_phonon import real_modes, relaxation_times, spin_of, zfs_couplings
    from molmag.dynamics.vibrations import vibrations
    from molmag.physics.ligand_field import LigandFieldCalculator
    from molmag.physics.relaxation import fit_arrhenius
    from molmag.physics.zfs import zfs_from_tensor

    t0, t1, n = s.relax_temperatures
    temps = np.linspace(float(t0), float(t1), int(n))
    donors = atoms.info.get("donor_indices")
    lf = LigandFieldCalculator(charge=atoms.info.get("charge"),
                               multiplicity=atoms.info.get("multiplicity"),
                               donors=None if donors is None else [int(i) for i in donors])
    modes = vibrations(atoms, XTBCalculator(), relax=relax)
    n_imag = int(np.sum(modes.frequencies_cm1 <= 0))
    modes = real_modes(modes)
    coup = zfs_couplings(modes, lf)
    tau, info = relaxation_times(coup, spin_of(atoms), temps, field_T=s.relax_field,
                                 linewidth=s.relax_linewidth)
    third = max(2, len(temps) // 3)
    arr = fit_arrhenius(temps[-third:], tau[-third:])
    z = zfs_from_tensor(coup.d0)
    return ({"D_cm-1": z.D, "E_cm-1": z.E, "gap_cm-1": info["levels_cm-1"][2],
             "U_eff_cm-1": arr["U_eff"], "tau0_s": arr["tau0"], "n_modes": modes.n_modes,
             "n_imaginary_excluded": n_imag,
             "tau": [[float(t), float(x)] for t, x in zip(temps, tau)],
             "strongest": [{"wavenumber_cm-1": float(coup.frequencies_cm1[k]),
                            "coupling_cm-1": float(coup.norms[k])}
                           for k in coup.strongest(5)]}, lf)


def stage_magnetism(ctx: Context) -> dict:
    """tau(T) and U_eff of the start structure (relaxed tightly with xTB) and of the PSO
    optimum of the largest gamma (its own modes, imaginary ones left out: it is not a minimum
    of xTB), chi*T(T) and M(H) of the start from the ligand-field engine's D and g."""
    import ase.io

    from molmag.physics.magnetism import magnetisation, powder_chi_t, spin_system

    s: CoPdmsSettings = ctx.settings
    folder = ctx.out / "magnetism"
    folder.mkdir(exist_ok=True)
    start = _read_start(ctx)
    ctx.log("normal modes, spin-phonon couplings and tau(T) of the start structure")
    out: dict[str, Any] = {"start": _relaxation_of(start, s, relax=True)[0]}
    pso = ctx.results.get("pso", {}).get("rows", [])
    if s.relax_optimum and pso:
        k = max(range(len(pso)), key=lambda i: pso[i]["gamma_eV_per_cm-1"])
        opt = ase.io.read(ctx.out / "pso" / f"optimum_gamma_{k}.xyz", format="extxyz")
        assert isinstance(opt, Atoms)  # one frame
        opt.calc = None
        opt.info = {**start.info, **{key: v for key, v in opt.info.items()
                                     if key in ("charge", "multiplicity")}}
        ctx.log(f"the same at the PSO optimum (gamma = {pso[k]['gamma_eV_per_cm-1']:g})")
        out["optimum"] = _relaxation_of(opt, s, relax=False)[0]
        out["optimum"]["gamma_eV_per_cm-1"] = pso[k]["gamma_eV_per_cm-1"]
    # observables of the start structure from the engine's D and g
    from molmag.physics.ligand_field import LigandFieldCalculator

    lf = LigandFieldCalculator(charge=start.info.get("charge"),
                               multiplicity=start.info.get("multiplicity"))
    system = spin_system((int(start.info["multiplicity"]) - 1) / 2,
                         d_tensor=lf.get_property("zfs_tensor", start),
                         g=lf.get_property("g_tensor", start))
    temps = np.linspace(2.0, 300.0, 60)
    fields = np.linspace(0.0, 7.0, 15)
    chi = powder_chi_t(system, temps)
    mh = {t: magnetisation(system, fields, t) for t in (2.0, 5.0)}
    out["chi_T"] = [[float(t), float(c)] for t, c in zip(temps, chi)]
    out["magnetisation"] = {f"{t:g}": [[float(h), float(m)] for h, m in zip(fields, v)]
                            for t, v in mh.items()}
    out["files"] = _magnetism_plots(folder, out, temps, chi, fields, mh)
    return out


def _magnetism_plots(folder: Path, out: dict, temps, chi, fields, mh) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from molmag.physics.magnetism import K_B_CM

    np.savetxt(folder / "tau_start.csv", np.array(out["start"]["tau"]), delimiter=",",
               header="T/K,tau/s", comments="")
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    for key, style in (("start", "o"), ("optimum", "s")):
        if key not in out:
            continue
        t, tau = np.array(out[key]["tau"]).T
        line = ax[0].semilogy(1 / t, tau, style, ms=3, label=f"{key}: U_eff "
                              f"{out[key]['U_eff_cm-1']:.0f} cm⁻¹ (D {out[key]['D_cm-1']:.0f})")
        fit = t[-max(2, len(t) // 3):]                  # the fitted (warmest) third
        ax[0].semilogy(1 / fit, out[key]["tau0_s"] * np.exp(out[key]["U_eff_cm-1"]
                                                            / (K_B_CM * fit)),
                       "--", lw=0.8, color=line[0].get_color())
    ax[0].set_xlabel("1/T (K⁻¹)")
    ax[0].set_ylabel("τ (s), one-phonon")
    ax[0].legend(fontsize=7)
    plot_chi_t_and_mh(ax[1], ax[2], temps, chi, fields, mh)
    fig.tight_layout()
    fig.savefig(folder / "magnetism.png", dpi=110)
    plt.close(fig)
    return ["magnetism/tau_start.csv", "magnetism/magnetism.png"]


def stage_report(ctx: Context) -> dict:
    from molmag.workflows.co_pdms_report import write_report

    md, html = write_report(ctx)
    return {"markdown": md.name, "html": html.name}


STAGES = [
    Stage("build", "build and relax [Co(pdms)2]2- (GFN2-xTB)", stage_build),
    Stage("sample", "random displacements", stage_sample),
    Stage("label", "GFN2-xTB + ligand-field labels (Dask)", stage_label),
    Stage("train", "covariant ridge, GM-NN and SNAP energy committees", stage_train),
    Stage("learn", "active learning from ML MD (query by committee)", stage_learn),
    Stage("md", "Langevin MD with the learned committees", stage_md),
    Stage("thermal", "thermal averages of D and E, spot check", stage_thermal),
    Stage("pso", "particle-swarm optimisation of chi = E + gamma D", stage_pso),
    Stage("scan", "2D scan: Co-N distance x N-Co-N angle", stage_scan),
    Stage("correlate", "magneto-structural correlations", stage_correlate),
    Stage("magnetism", "spin-phonon relaxation tau(T), chi*T and M(H)", stage_magnetism),
    Stage("report", "report (Markdown + HTML)", stage_report),
]


def run_co_pdms(out: str | Path, settings: CoPdmsSettings, *, log=None, reporter=None,
                progress: ProgressFn | None = None, only: str | None = None) -> dict:
    """Run (or resume) the campaign in ``out``; returns the stage summaries."""
    from molmag.workflows.stages import run_campaign

    return run_campaign("co-pdms", STAGES, out, settings, log=log, reporter=reporter,
                        progress=progress, only=only)


__all__ = ["CoPdmsSettings", "STAGES", "PAPER", "run_co_pdms", "structure_parameters"]
