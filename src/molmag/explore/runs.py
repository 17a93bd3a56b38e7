"""``molmag optimize`` and ``molmag scan``: configurations and the runs behind them.

Optimize (PSO of chi = E - E0 + gamma D for several gamma, :mod:`molmag.explore.pso`):

.. code-block:: yaml

    structure: {builder: co-pdms, relax: true}   # or {file: start.xyz, charge: -2, multiplicity: 4}
    energy: {model: energy/model.npz}            # or {xtb: {}}
    anisotropy: {model: tensor/model.npz}        # or {ligand_field: {}}
    reference: {ligand_field: {}}                # re-computes D at every optimum (optional)
    gammas: [0.0, 0.005, 0.02]                   # eV per cm-1 of D
    pso: {n_particles: 20, n_steps: 50, max_displacement: 0.2, seed: 0}
    output: pso

writes, in ``output``: ``gamma_table.csv``/``.json`` (one row per gamma: D, E, E/D, cost,
spreads, reference D and its error, the most changed internal coordinates),
``pso_gamma_<k>_path.extxyz`` (the best structure of every step), ``..._history.csv``,
``optimum_gamma_<k>.xyz``, ``pso_convergence.png`` and ``checkpoints/`` (an interrupted run
resumes from them).

Scan (2D scan of two internal coordinates, :func:`molmag.explore.scan.scan_2d`):

.. code-block:: yaml

    structure: {builder: co-pdms, relax: true}
    calculators:                                  # side by side; names are yours
      ML: [{model: energy/model.npz}, {model: tensor/model.npz}]
      reference: [{xtb: {}}, {ligand_field: {}}]
    offsets1: {start: -0.1, stop: 0.1, n: 21}    # mean metal-donor distance, Angstrom
    offsets2: {start: -5.0, stop: 5.0, n: 21}    # mean intraligand bite angle, degrees
    properties: [zfs_D, energy]
    output: scan

writes ``scan.npz``/``scan.json`` (grids, reference values, achieved coordinates, q) and one
contour PNG per calculator and property; the partial grid is checkpointed.

Relative paths are relative to the configuration file; unknown keys are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import ase.io
import numpy as np
from pydantic import Field, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate
from molmag.explore.calculators import (
    CalculatorSpec,
    StructureSpec,
    load_structure,
    make_calculator,
)
from molmag.progress import ProgressFn

Calc = CalculatorSpec | list[CalculatorSpec]


class PSOSettings(_Strict):
    """Swarm settings (Lunghi & Sanvito SI; :func:`molmag.explore.pso.pso_optimize`)."""

    n_particles: int = Field(20, ge=1)
    n_steps: int = Field(50, ge=0)
    omega: float = 0.7
    acceleration: float = 1.7
    max_displacement: float = Field(0.2, gt=0, description="Angstrom")
    init_displacement: float = Field(0.01, ge=0, description="Angstrom")
    v_max: float | None = Field(None, gt=0)
    clash_factor: float = Field(0.7, gt=0)
    clash_strength: float = Field(100.0, ge=0, description="eV")
    fixed: list[int] = Field(default_factory=list)
    seed: int = 0
    std_threshold_E: float | None = Field(None, gt=0, description="eV")
    std_threshold_D: float | None = Field(None, gt=0, description="cm-1")


class OptimizeConfig(_Strict):
    structure: StructureSpec
    energy: Calc
    anisotropy: Calc
    reference: Calc | None = None
    gammas: list[float] = Field(default_factory=lambda: [0.0, 0.005, 0.02],
                                description="eV per cm-1")
    pso: PSOSettings = Field(default_factory=PSOSettings)
    top: int = Field(5, ge=1, description="internal coordinates listed per gamma")
    output: str = "pso"

    @model_validator(mode="after")
    def _gammas(self):
        if not self.gammas:
            raise ValueError("gammas is empty")
        return self


class Grid(_Strict):
    start: float
    stop: float
    n: int = Field(21, ge=1)

    def values(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.n)


class ScanConfig(_Strict):
    structure: StructureSpec
    calculators: dict[str, Calc]
    offsets1: Grid = Field(default_factory=lambda: Grid(start=-0.1, stop=0.1, n=21))
    offsets2: Grid = Field(default_factory=lambda: Grid(start=-5.0, stop=5.0, n=21))
    properties: list[str] = Field(default_factory=lambda: ["zfs_D", "energy"])
    output: str = "scan"

    @model_validator(mode="after")
    def _some(self):
        if not self.calculators:
            raise ValueError("calculators is empty: name at least one")
        return self


def _resolve_calc(spec, base: Path):
    for s in spec if isinstance(spec, list) else [spec]:
        s.model = resolve(s.model, base)


def _resolve_structure(s: StructureSpec, base: Path):
    s.file = resolve(s.file, base)


def load_optimize_config(path: str | Path, **overrides) -> OptimizeConfig:
    """Read and validate an optimize configuration (errors name the file and the key).
    ``overrides``: ``output``, ``gammas``, ``n_steps``, ``n_particles``, ``seed``."""
    path = Path(path)
    raw = read_yaml(path)
    if overrides.get("output") is not None:
        raw["output"] = overrides["output"]
    if overrides.get("gammas"):
        raw["gammas"] = list(overrides["gammas"])
    pso = dict(raw.get("pso") or {})
    for key in ("n_steps", "n_particles", "seed"):
        if overrides.get(key) is not None:
            pso[key] = overrides[key]
    raw["pso"] = pso
    cfg = validate(path, OptimizeConfig, raw)
    base = path.resolve().parent
    _resolve_structure(cfg.structure, base)
    for spec in (cfg.energy, cfg.anisotropy, cfg.reference):
        if spec is not None:
            _resolve_calc(spec, base)
    cfg.output = resolve(cfg.output, base)
    return cfg


def load_scan_config(path: str | Path, **overrides) -> ScanConfig:
    """Read and validate a scan configuration.  ``overrides``: ``output``, ``points``
    (grid points along both axes)."""
    path = Path(path)
    raw = read_yaml(path)
    if overrides.get("output") is not None:
        raw["output"] = overrides["output"]
    if overrides.get("points") is not None:
        for key, default in (("offsets1", (-0.1, 0.1)), ("offsets2", (-5.0, 5.0))):
            g = dict(raw.get(key) or {"start": default[0], "stop": default[1]})
            g["n"] = overrides["points"]
            raw[key] = g
    cfg = validate(path, ScanConfig, raw)
    base = path.resolve().parent
    _resolve_structure(cfg.structure, base)
    for spec in cfg.calculators.values():
        _resolve_calc(spec, base)
    cfg.output = resolve(cfg.output, base)
    return cfg


# ----------------------------------------------------------------------------------------
@dataclass
class OptimizeRun:
    """What :func:`run_optimize` produced: the gamma scan, its table and files."""

    scan: Any  # GammaScanResult
    table: list[dict]
    files: dict[str, str]


def plot_pso_convergence(results, path: str | Path) -> Path:
    """chi (eV) and D (cm-1) of the swarm's best against the step, one line per gamma."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for r in results:
        h = r.history
        lab = f"γ = {r.gamma:g} eV/cm⁻¹"
        a1.plot(h["step"], h["chi_eV"], label=lab)
        a2.plot(h["step"], h["zfs_D_cm-1"], label=lab)
    a1.set_xlabel("PSO step")
    a1.set_ylabel("χ = E − E₀ + γD (eV)")
    a2.set_xlabel("PSO step")
    a2.set_ylabel("D of the best (cm⁻¹)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def calibrated_threshold(calc, prop: str) -> float | None:
    """The calibration's flag threshold (twice the validation's 95th percentile of the
    calibrated sigma, :class:`molmag.models.calibration.Calibration`) of the model behind
    ``calc`` that gives ``prop``; ``None`` for a reference engine or an uncalibrated model."""
    import math

    from molmag.explore.calculators import RoutedCalculator
    from molmag.models.calculator import ModelCalculator

    if isinstance(calc, RoutedCalculator):
        calc = next((c for c in calc.calculators if prop in c.implemented_properties), None)
    if not isinstance(calc, ModelCalculator):
        return None
    thr = calc.model.calibration.get(prop).threshold
    return float(thr) if math.isfinite(thr) else None


def run_optimize(cfg: OptimizeConfig, *, start=None, progress: ProgressFn | None = None,
                 log: Callable[[str], None] | None = None) -> OptimizeRun:
    """PSO for every gamma of ``cfg`` (common random numbers, one checkpoint per gamma) and
    the files listed in the module docstring.  ``start`` replaces ``cfg.structure``."""
    from molmag.explore.pso import pso_gamma_scan

    log = log or (lambda s: None)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    atoms = start.copy() if start is not None else load_structure(cfg.structure)
    if start is not None:
        atoms.info = dict(start.info)
    e_calc = make_calculator(cfg.energy, atoms)
    d_calc = make_calculator(cfg.anisotropy, atoms)
    ref = make_calculator(cfg.reference, atoms) if cfg.reference is not None else None
    p = cfg.pso.model_dump()
    seed = p.pop("seed")
    for key, calc, prop, unit in (("std_threshold_E", e_calc, "energy", "eV"),
                                  ("std_threshold_D", d_calc, "zfs_D", "cm-1")):
        if p[key] is None:
            p[key] = calibrated_threshold(calc, prop)
            if p[key] is not None:
                log(f"flagging steps whose {prop} sigma exceeds {p[key]:.3g} {unit} (the "
                    "model's calibration threshold)")
    log(f"PSO on {atoms.get_chemical_formula()}: {p['n_particles']} particles x "
        f"{p['n_steps']} steps for gamma = {cfg.gammas} eV/cm-1")
    scan = pso_gamma_scan(atoms, e_calc, d_calc, cfg.gammas, seed=seed,
                          checkpoint_dir=out / "checkpoints", reference_d_calc=ref,
                          progress=progress, **p)
    files: dict[str, str] = {}
    for k, r in enumerate(scan.results):
        files[f"path_{k}"] = str(r.write_trajectory(out / f"pso_gamma_{k}_path.extxyz"))
        files[f"history_{k}"] = str(r.write_history(out / f"pso_gamma_{k}_history.csv"))
        opt = r.best_atoms.copy()
        opt.info = {"gamma_eV_per_cm-1": r.gamma, "zfs_D_cm-1": r.zfs_D,
                    "energy_eV": r.energy, "charge": atoms.info.get("charge"),
                    "multiplicity": atoms.info.get("multiplicity")}
        ase.io.write(out / f"optimum_gamma_{k}.xyz", opt, format="extxyz")
        files[f"optimum_{k}"] = str(out / f"optimum_gamma_{k}.xyz")
    table = scan.table(top=cfg.top)
    files["table_csv"] = str(scan.write_table(out / "gamma_table.csv", top=cfg.top))
    files["table_json"] = str(scan.write_table(out / "gamma_table.json", top=cfg.top))
    files["convergence"] = str(plot_pso_convergence(scan.results, out / "pso_convergence.png"))
    ase.io.write(out / "start.xyz", atoms, format="extxyz")
    files["start"] = str(out / "start.xyz")
    return OptimizeRun(scan=scan, table=table, files=files)


def run_scan(cfg: ScanConfig, *, start=None, progress: ProgressFn | None = None,
             log: Callable[[str], None] | None = None):
    """The 2D scan of ``cfg`` (checkpointed in ``output``), saved and plotted; returns the
    :class:`~molmag.explore.scan.Scan2DResult` (``meta['files']`` lists what was written)."""
    from molmag.explore.scan import scan_2d

    log = log or (lambda s: None)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    atoms = start.copy() if start is not None else load_structure(cfg.structure)
    if start is not None:
        atoms.info = dict(start.info)
    calcs = {name: make_calculator(spec, atoms) for name, spec in cfg.calculators.items()}
    o1, o2 = cfg.offsets1.values(), cfg.offsets2.values()
    log(f"2D scan of {atoms.get_chemical_formula()}: {len(o1)} x {len(o2)} points, "
        f"calculators {', '.join(calcs)}")
    res = scan_2d(atoms, calcs, offsets1=o1, offsets2=o2, properties=cfg.properties,
                  checkpoint=out / "scan", progress=progress)
    pngs = res.plot(out)
    res.save(out / "scan")
    res.meta["files"] = {"npz": str(out / "scan.npz"), "json": str(out / "scan.json"),
                         "plots": [str(p) for p in pngs]}
    return res


def scan_slopes(res, calculator: str, prop: str = "zfs_D") -> dict:
    """Derivatives of ``prop`` at the reference point (central differences on the grid's
    middle row/column) and the relative change of ``prop`` between the reference and the
    grid point where it is most negative.  Units: prop per coordinate unit."""
    g = res.grid(calculator, prop)
    i0, j0 = len(res.values1) // 2, len(res.values2) // 2
    ref = res.reference[calculator].get(prop, np.nan)
    ref_abs = ref if prop not in ("energy",) else 0.0
    d1 = np.gradient(g[:, j0], res.values1)[i0] if g.shape[0] > 1 else np.nan
    d2 = np.gradient(g[i0, :], res.values2)[j0] if g.shape[1] > 1 else np.nan
    k = np.nanargmin(g)
    i, j = np.unravel_index(k, g.shape)
    q1, q2 = res.values1[i0] - res.offsets1[i0], res.values2[j0] - res.offsets2[j0]
    return {"calculator": calculator, "property": prop, "reference": float(ref_abs),
            "d_dq1": float(d1), "d_dq2": float(d2),
            "q1_name": res.coordinates[0]["name"], "q2_name": res.coordinates[1]["name"],
            "q1_ref": float(q1), "q2_ref": float(q2),
            "min_value": float(g[i, j]), "min_at": [float(res.values1[i]), float(res.values2[j])],
            "min_rel_change_q1": float(res.offsets1[i] / q1),
            "min_rel_change_q2": float(res.offsets2[j] / q2),
            "min_rel_change_prop": float((g[i, j] - ref_abs) / ref_abs) if ref_abs else None,
            "range": [float(np.nanmin(g)), float(np.nanmax(g))]}


__all__ = ["OptimizeConfig", "ScanConfig", "PSOSettings", "Grid", "OptimizeRun",
           "load_optimize_config", "load_scan_config", "run_optimize", "run_scan",
           "plot_pso_convergence", "scan_slopes"]
