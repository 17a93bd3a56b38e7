"""`molmag md CONFIG.yaml`: several temperatures x independent trajectories of one complex,
run in parallel on Dask (:mod:`molmag.labelling.cluster`), each one resumable
(:func:`molmag.dynamics.md.run_md`).  Runs are written as ``<output>/T<T>K_run<k>``
(extxyz + JSON sidecar, :mod:`molmag.dynamics.md_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal

from ase import Atoms
from pydantic import Field, field_validator, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate
from molmag.dynamics.md import MAX_TIMESTEP_FS, MDResult, MDSettings, check_potential, run_md
from molmag.explore.calculators import (
    CalculatorSpec,
    StructureSpec,
    load_structure,
    make_calculator,
)
from molmag.labelling.config import ClusterConfig


class StopConfig(_Strict):
    """When a run stops itself (it keeps every good frame and the last good state)."""

    max_temperature_factor: float = Field(default=3.0, gt=1, description="x the target temperature")
    max_force: float = Field(default=25.0, gt=0, description="largest force component, eV/Angstrom")
    max_stretch: float = Field(default=1.6, gt=1, description="nearest-neighbour distance over its "
                                                       "start value")


class MDConfig(_Strict):
    structure: StructureSpec = Field(default_factory=lambda: StructureSpec(builder="co-pdms"))
    potential: CalculatorSpec = Field(..., description="energy + forces: {model: E.npz} or "
                                                       "{xtb: {}}")
    tensor: CalculatorSpec | None = Field(default=None,
                                          description="D tensor of every stored frame: "
                                          "{model: D.npz} or {ligand_field: {}}")
    engine: Literal["auto", "ase", "lammps"] = Field(
        default="auto", description="lammps: the whole run inside LAMMPS (snap-energy models); "
                            "auto: lammps for snap-energy models, ase otherwise")
    temperatures: list[float] = Field(default_factory=lambda: [100.0], min_length=1)
    trajectories: int = Field(default=1, ge=1, description="independent runs per temperature")
    time_ps: float | None = Field(default=None, gt=0)
    n_steps: int | None = Field(default=None, ge=1)
    timestep_fs: float = Field(default=0.5, gt=0, le=MAX_TIMESTEP_FS)
    friction_per_fs: float = Field(default=0.01, gt=0)
    stride: int = Field(default=20, ge=1, description="steps between stored frames")
    checkpoint_every: int = Field(default=1000, ge=1, description="steps between checkpoints")
    seed: int = 0
    stop: StopConfig = Field(default_factory=StopConfig)
    cluster: ClusterConfig = Field(default_factory=lambda: ClusterConfig(kind="local"))
    output: str = "md"

    @field_validator("temperatures")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not t > 0]
        if bad:
            raise ValueError(f"temperatures must be > 0 K (got {bad[0]})")
        return v

    @model_validator(mode="after")
    def _length(self):
        if (self.time_ps is None) == (self.n_steps is None):
            raise ValueError("give exactly one of time_ps or n_steps")
        if self.checkpoint_every % self.stride:
            raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple "
                             f"of stride ({self.stride})")
        if self.potential.ligand_field is not None:
            raise ValueError("potential: the ligand-field engine gives no forces; use "
                             "{model: ENERGY.npz} or {xtb: {}}")
        if self.tensor is not None and self.tensor.xtb is not None:
            raise ValueError("tensor: xtb gives no D tensor; use {model: D.npz} or "
                             "{ligand_field: {}}")
        return self

    @property
    def steps(self) -> int:
        """Steps of each run, rounded up to whole strides (every run ends on a stored
        frame, so it can be extended and its frames are evenly spaced)."""
        if self.n_steps is not None:
            n = self.n_steps
        else:
            assert self.time_ps is not None  # the validator asks for exactly one
            n = max(1, int(round(self.time_ps * 1000 / self.timestep_fs)))
        return -(-n // self.stride) * self.stride

    def settings(self, temperature: float, trajectory: int) -> MDSettings:
        every = max(self.stride, self.checkpoint_every)
        return MDSettings(temperature_K=float(temperature), n_steps=self.steps,
                          timestep_fs=self.timestep_fs, friction_per_fs=self.friction_per_fs,
                          stride=self.stride, checkpoint_every=every, seed=self.seed,
                          trajectory=trajectory, **self.stop.model_dump())


def load_md_config(path: str | Path, **overrides) -> MDConfig:
    """Read and validate an MD configuration (errors name the file and the key);
    ``overrides``: ``output``, ``time_ps``, ``temperatures``, ``trajectories``."""
    path = Path(path)
    raw = read_yaml(path)
    for key in ("output", "temperatures", "trajectories"):
        if overrides.get(key) is not None:
            raw[key] = overrides[key]
    if overrides.get("time_ps") is not None:
        raw["time_ps"], raw["n_steps"] = overrides["time_ps"], None
    cfg = validate(path, MDConfig, raw)
    base = path.resolve().parent
    cfg.structure.file = resolve(cfg.structure.file, base)
    for spec in (cfg.potential, cfg.tensor):
        if spec is not None:
            spec.model = resolve(spec.model, base)
    cfg.output = resolve(cfg.output, base)
    return cfg


def run_stem(output: str | Path, temperature: float, trajectory: int) -> Path:
    return Path(output) / f"T{temperature:g}K_run{trajectory}"


def _label(spec: CalculatorSpec | None) -> str | None:
    if spec is None:
        return None
    return spec.model if spec.model is not None else ("xtb" if spec.xtb is not None
                                                      else "ligand_field")


def _tensor_source(spec: CalculatorSpec | None, start: Atoms):
    from molmag.dynamics.frame_tensors import TensorSource

    if spec is None:
        return None
    if spec.model is not None:
        from molmag.models.committee import load_model

        return TensorSource(model=load_model(spec.model), label=spec.model)
    return TensorSource(calculator=make_calculator(spec, start), label="ligand_field")


def check_config(cfg: MDConfig, start: Atoms) -> None:
    """Everything that can be refused before a run starts: the potential gives forces and
    both models know the structure's elements."""
    pot = make_calculator(cfg.potential, start)
    check_potential(pot)
    model = getattr(pot, "model", None)
    if model is not None and model.domain is not None:
        unseen = [p for p in model.domain.problems(start, limit=1000) if "never seen" in p]
        if unseen:
            raise ValueError(f"potential {cfg.potential.model}: the structure has elements "
                             f"it was never trained on ({unseen[0]})")
    if cfg.engine == "lammps" and getattr(model, "kind", None) != "snap-energy":
        raise ValueError("engine: lammps runs snap-energy models only; use engine: ase")
    src = _tensor_source(cfg.tensor, start)
    if src is not None:
        src.check_structure(start)


def use_lammps(engine: str, potential) -> bool:
    """Whether a run with ``potential`` (an ASE calculator) goes to LAMMPS."""
    kind = getattr(getattr(potential, "model", None), "kind", None)
    return engine == "lammps" or (engine == "auto" and kind == "snap-energy")


def run_one(start: Atoms, cfg: MDConfig, temperature: float, trajectory: int,
            progress: Callable | None = None) -> MDResult:
    """One trajectory of ``cfg`` (a Dask task, or in this process)."""
    pot = make_calculator(cfg.potential, start)
    settings = cfg.settings(temperature, trajectory)
    stem = run_stem(cfg.output, temperature, trajectory)
    if use_lammps(cfg.engine, pot):
        from molmag.dynamics.md_lammps import run_md_lammps
        from molmag.models.calculator import ModelCalculator

        assert isinstance(pot, ModelCalculator)  # LAMMPS runs snap-energy models only
        return run_md_lammps(start, pot.model, settings, stem,
                             tensor=_tensor_source(cfg.tensor, start),
                             potential_label=_label(cfg.potential) or "",
                             tensor_label=_label(cfg.tensor), progress=progress)
    model = getattr(pot, "model", None)
    if getattr(model, "kind", None) == "snap-energy":
        # ASE engine, linear SNAP: the committee-mean coefficients through LAMMPS each step
        # (one pair_style snap evaluation), the members only on stored frames (their spreads)
        from molmag.dynamics.lammps_snap import LammpsSNAPCalculator

        pot = LammpsSNAPCalculator(model, spread=False)
    return run_md(start, pot, settings, stem, tensor=_tensor_source(cfg.tensor, start),
                  potential_label=_label(cfg.potential) or "", tensor_label=_label(cfg.tensor),
                  progress=progress)


def run_md_config(cfg: MDConfig, *, start: Atoms | None = None,
                  progress: Callable[[str, int, int, float], None] | None = None,
                  log: Callable[[str], None] | None = None) -> list[MDResult | BaseException]:
    """All temperatures x trajectories of ``cfg``; results in the order of
    ``[(T, k) for T in temperatures for k in range(trajectories)]`` (an exception object
    where a run failed; the others still finish).  ``progress(name, step, n_steps,
    ns_per_day)`` is called for runs in this process (serial executor)."""
    from molmag.labelling.cluster import open_executor

    start = start if start is not None else load_structure(cfg.structure)
    check_config(cfg, start)
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    jobs = [(t, k) for t in cfg.temperatures for k in range(cfg.trajectories)]
    results: dict[tuple[float, int], Any] = {}
    cluster = cfg.cluster
    if len(jobs) == 1 and cluster.kind == "local":
        cluster = ClusterConfig(kind="serial")
    ex = open_executor(cluster)
    if log:
        log(f"{len(jobs)} run(s) on {ex.kind} ({ex.n_workers()} worker(s))")
    try:
        tasks = []
        for t, k in jobs:
            name = run_stem(cfg.output, t, k).name
            cb = (lambda s, n, v, _n=name: progress(_n, s, n, v)) if (
                progress and ex.kind == "serial") else None
            tasks.append(((t, k), (run_one, (start, cfg, t, k, cb))))
        ex.map_unordered(_call, [(meta, (fn_args,)) for meta, fn_args in tasks],
                         lambda meta, r: results.__setitem__(meta, r),
                         lambda meta, exc: results.__setitem__(meta, exc))
    finally:
        ex.close()
    return [results[j] for j in jobs]


def _call(fn_args):
    fn, args = fn_args
    return fn(*args)


__all__ = ["MDConfig", "StopConfig", "load_md_config", "run_md_config", "run_one",
           "run_stem", "check_config"]
