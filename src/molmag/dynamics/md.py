"""NVT molecular dynamics of one complex with any ASE potential, the D tensor (or Kramers
doublets / crystal-field parameters) of every stored frame from a tensor model, and the
committee spreads that say where the models are unsure (query by committee, Zaverkin et al.
2022, eq. 12, mapped by the models' calibration).

The dynamics are ASE's Langevin integrator (Vanden-Eijnden & Ciccotti; ``ase.md.langevin``)
as in Zaverkin et al. 2022, Sec. 4.2: Maxwell-Boltzmann start at the target temperature,
0.5 fs time step.  The paper does not state its friction; molmag's default is
0.01 fs^-1 (a velocity relaxation time of 100 fs, 10 ps^-1: a weak coupling that keeps the
vibrational dynamics, C_vv and C_DD, close to Newtonian while thermalising a 50-atom molecule
within a few ps).  The centre of mass is fixed with ASE's ``FixCom`` constraint (3 degrees of
freedom fewer in the kinetic temperature).

Units: temperature K, time step fs, friction fs^-1, energies eV, forces eV/Å, D cm-1.

Output: :mod:`molmag.dynamics.md_files` (extxyz + JSON sidecar + checkpoint).  A run stops
itself, keeping every good frame and the last good state in ``<stem>_last_good.extxyz``,
when the instantaneous temperature exceeds ``max_temperature_factor`` x the target, a force
component exceeds ``max_force``, or an atom's nearest neighbour moves beyond ``max_stretch``
x its distance in the start structure (the molecule falls apart).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation
from scipy.spatial import cKDTree

from molmag.chem.sampling import maxwell_boltzmann
from molmag.dynamics.md_files import (
    SIDECAR_FORMAT,
    Checkpoint,
    RunFiles,
    RunLock,
    append_frames,
    load_checkpoint,
    read_sidecar,
    save_checkpoint,
    truncate_trajectory,
    write_json_atomic,
)

#: Largest time step molmag integrates (fs): above it X-H stretches are not resolved.
MAX_TIMESTEP_FS = 2.0
#: Settings a resumed run must share with the files it continues (n_steps may grow).
SAME_ON_RESUME = ("temperature_K", "timestep_fs", "friction_per_fs", "stride", "seed",
                  "trajectory", "structure_hash", "potential", "tensor_model")


@dataclass
class MDSettings:
    """One run: ``n_steps`` of ``timestep_fs`` at ``temperature_K``; a frame stored every
    ``stride`` steps, a checkpoint every ``checkpoint_every`` steps (a multiple of
    ``stride``)."""

    temperature_K: float
    n_steps: int
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.01
    stride: int = 20
    checkpoint_every: int = 1000
    seed: int = 0
    trajectory: int = 0
    max_temperature_factor: float = 3.0
    max_force: float = 25.0
    max_stretch: float = 1.6

    def check(self) -> None:
        if not self.temperature_K > 0:
            raise ValueError(f"temperature_K must be > 0 K (got {self.temperature_K})")
        if not 0 < self.timestep_fs <= MAX_TIMESTEP_FS:
            raise ValueError(f"timestep_fs must be in (0, {MAX_TIMESTEP_FS}] fs (got "
                             f"{self.timestep_fs}): larger steps do not resolve X-H "
                             "vibrations")
        if not self.friction_per_fs > 0:
            raise ValueError(f"friction_per_fs must be > 0 (got {self.friction_per_fs})")
        for key in ("n_steps", "stride", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1 (got {getattr(self, key)})")
        if self.checkpoint_every % self.stride:
            raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple "
                             f"of stride ({self.stride})")
        if self.max_temperature_factor <= 1 or self.max_force <= 0 or self.max_stretch <= 1:
            raise ValueError("stop limits: max_temperature_factor > 1, max_force > 0 and "
                             "max_stretch > 1")


@dataclass
class MDResult:
    stem: Path
    status: str  # "finished" | "stopped"
    stop_reason: str | None
    n_frames: int
    steps_done: int
    wall_s: float
    ns_per_day: float
    resumed_from: int = 0
    sidecar: dict[str, Any] = field(default_factory=dict)

    @property
    def trajectory(self) -> Path:
        return RunFiles(self.stem).trajectory


ProgressFn = Callable[[int, int, float], None]  # (step, n_steps, ns_per_day)


def check_potential(potential) -> None:
    """A potential must give forces (an energy-model committee, xTB, ...)."""
    props = getattr(potential, "implemented_properties", [])
    if "forces" not in props:
        name = type(potential).__name__
        model = getattr(potential, "model", None)
        what = f"{name} ({model.target} model)" if model is not None else name
        raise ValueError(f"the potential {what} gives no forces; MD needs an energy model "
                         "(model.kind snap-energy or gmnn-energy) or xtb")


def start_velocities(atoms: Atoms, temperature_K: float, seed: int, trajectory: int) -> None:
    """Maxwell-Boltzmann momenta at ``temperature_K`` without centre-of-mass translation or
    rotation, from a generator seeded by (seed, trajectory, temperature in mK)."""
    rng = np.random.default_rng([seed, trajectory, int(round(temperature_K * 1000)), 1])
    maxwell_boltzmann(atoms, temperature_K, rng=rng, exact=True)
    Stationary(atoms)
    ZeroRotation(atoms)


def thermostat_rng(settings: MDSettings) -> np.random.Generator:
    return np.random.default_rng([settings.seed, settings.trajectory,
                                  int(round(settings.temperature_K * 1000)), 2])


def nearest_neighbour(positions: np.ndarray) -> np.ndarray:
    d, _ = cKDTree(positions).query(positions, k=2)
    return d[:, 1]


class StopCheck:
    """The blow-up criteria of the module docstring, judged after every step."""

    def __init__(self, start: Atoms, settings: MDSettings):
        self.s = settings
        self.nn0 = nearest_neighbour(start.positions)
        self.symbols = start.get_chemical_symbols()

    def __call__(self, atoms: Atoms, forces: np.ndarray) -> str | None:
        s = self.s
        t = atoms.get_temperature()
        if not np.isfinite(t) or t > s.max_temperature_factor * s.temperature_K:
            return (f"temperature {t:.0f} K > {s.max_temperature_factor:g} x "
                    f"{s.temperature_K:g} K")
        fmax = float(np.max(np.abs(forces))) if np.all(np.isfinite(forces)) else np.inf
        if fmax > s.max_force:
            i = int(np.argmax(np.nan_to_num(np.abs(forces), nan=np.inf)) // 3)
            return (f"force {fmax:.1f} eV/Å on atom {i} ({self.symbols[i]}) > "
                    f"{s.max_force:g} eV/Å")
        stretch = nearest_neighbour(atoms.positions) / self.nn0
        if np.max(stretch) > s.max_stretch:
            i = int(np.argmax(stretch))
            return (f"atom {i} ({self.symbols[i]}) left the molecule: its nearest neighbour "
                    f"is {stretch[i]:.2f} x as far as at the start")
        return None


def frame_atoms(atoms: Atoms, step: int, settings: MDSettings, forces: np.ndarray,
                results: dict[str, Any]) -> Atoms:
    """The stored copy of ``atoms`` at ``step``: momenta, forces, the potential's energy and
    the per-atom norm of its calibrated force spread (trajectory format of
    :mod:`molmag.dynamics.md_files`)."""
    a = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
              masses=atoms.get_masses())
    a.set_momenta(atoms.get_momenta(), apply_constraint=False)
    a.arrays["forces"] = np.array(forces, dtype=float)
    info: dict[str, Any] = {"step": int(step), "time_fs": step * settings.timestep_fs,
                            "temperature_K": float(atoms.get_temperature())}
    if "energy" in results:
        info["epot_eV"] = float(results["energy"])
    if "energy_std" in results:
        info["epot_std_eV"] = float(results["energy_std"])
    if "forces_std" in results:
        fs = np.linalg.norm(np.asarray(results["forces_std"], dtype=float).reshape(-1, 3),
                            axis=1)
        a.arrays["forces_std"] = fs
        info["forces_std_max"] = float(fs.max())
        # the largest per-component sigma: what the calibration threshold is stated in
        info["forces_std_component_max"] = float(np.max(results["forces_std"]))
    if "metal_index" in atoms.info:
        info["metal_index"] = int(atoms.info["metal_index"])
    a.info.update(info)
    return a


def _sidecar(settings: MDSettings, start: Atoms, structure_hash: str, potential_label: str,
             tensor_label: str | None) -> dict[str, Any]:
    import molmag

    s = asdict(settings)
    return {"format": SIDECAR_FORMAT, **{k: s[k] for k in (
                "temperature_K", "timestep_fs", "friction_per_fs", "n_steps", "stride",
                "seed", "trajectory", "checkpoint_every")},
            "stop_limits": {k: s[k] for k in ("max_temperature_factor", "max_force",
                                              "max_stretch")},
            "potential": potential_label, "tensor_model": tensor_label,
            "structure_hash": structure_hash, "formula": start.get_chemical_formula(),
            "n_atoms": len(start), "metal_index": start.info.get("metal_index"),
            "charge": start.info.get("charge"), "multiplicity": start.info.get("multiplicity"),
            "status": "running", "stop_reason": None, "n_frames": 0, "steps_done": 0,
            "wall_s": 0.0, "ns_per_day": None, "molmag_version": molmag.__version__}


def _check_resume(files: RunFiles, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{files.sidecar}: not a molmag MD run (format "
                         f"{old.get('format')!r}); use another output")
    # the engine: a LAMMPS checkpoint has no ASE thermostat state, and one run must not mix
    # two integrators
    if old.get("engine", "ase") != new.get("engine", "ase"):
        raise ValueError(f"{files.sidecar}: this run was started with engine "
                         f"{old.get('engine', 'ase')!r}, not {new.get('engine', 'ase')!r}; use "
                         "another output, or delete the run to start it again")
    for key in SAME_ON_RESUME:
        if old.get(key) != new.get(key):
            what = ("another structure" if key == "structure_hash"
                    else f"{key} {old.get(key)!r}, not {new.get(key)!r}")
            raise ValueError(f"{files.sidecar}: this run was started with {what}; use "
                             "another output, or delete the run to start it again")


def _structure_hash(atoms: Atoms) -> str:
    from molmag.io.records import structure_hash

    return structure_hash(atoms, int(atoms.info.get("charge", 0)),
                          int(atoms.info.get("multiplicity", 1)))


def frame_results(potential, atoms: Atoms) -> dict[str, Any]:
    """The potential's results for a stored frame, with its committee spreads: a calculator
    that leaves ``forces_std`` out of its per-step results (a committee-mean potential such as
    :class:`~molmag.dynamics.lammps_snap.LammpsSNAPCalculator` with ``spread=False``: one
    evaluation per step instead of one per member) is asked for it here, on the stored
    frames only (query by committee where the frames are kept, Zaverkin et al. 2022, eq. 12;
    the integrator's forces are not touched)."""
    if "forces_std" in getattr(potential, "implemented_properties", ()) and \
            "forces_std" not in potential.results:
        potential.get_property("forces_std", atoms)
    return potential.results


def run_md(start: Atoms, potential, settings: MDSettings, stem: str | Path, *,
           tensor=None, potential_label: str = "", tensor_label: str | None = None,
           progress: ProgressFn | None = None) -> MDResult:
    """Run (or continue) one Langevin NVT trajectory of ``start`` with the ASE calculator
    ``potential``; every stored frame gets the quantities of ``tensor`` (a
    :class:`~molmag.dynamics.frame_tensors.TensorSource`, or None).  Files under ``stem``
    (:class:`~molmag.dynamics.md_files.RunFiles`); an existing run with the same settings is
    continued from its checkpoint, a finished one is returned as it is."""
    settings.check()
    check_potential(potential)
    files = RunFiles(Path(stem))
    side = _sidecar(settings, start, _structure_hash(start), potential_label or
                    type(potential).__name__, tensor_label)
    with RunLock(files):
        old = read_sidecar(files)
        ck = None
        if old is not None:
            _check_resume(files, old, side)
            if old.get("status") == "stopped":
                return _result(files, old)
            ck = load_checkpoint(files)
            if old.get("status") == "finished" and ck is not None and \
                    ck.step >= settings.n_steps:
                return _result(files, old)
        elif files.trajectory.exists() or files.checkpoint.exists():
            raise ValueError(f"{files.trajectory}: exists without its sidecar "
                             f"{files.sidecar.name}; delete it or use another output")
        files.stem.parent.mkdir(parents=True, exist_ok=True)
        return _integrate(start, potential, settings, files, side, ck, tensor, progress)


def _result(files: RunFiles, side: dict[str, Any], resumed_from: int = 0) -> MDResult:
    return MDResult(files.stem, side["status"], side.get("stop_reason"),
                    int(side.get("n_frames", 0)), int(side.get("steps_done", 0)),
                    float(side.get("wall_s", 0.0)), float(side.get("ns_per_day") or 0.0),
                    resumed_from, side)


def _integrate(start: Atoms, potential, settings: MDSettings, files: RunFiles,
               side: dict[str, Any], ck: Checkpoint | None, tensor,
               progress: ProgressFn | None) -> MDResult:
    atoms = start.copy()
    atoms.info = dict(start.info)
    atoms.set_constraint(FixCom())
    atoms.calc = potential
    rng = thermostat_rng(settings)
    if ck is None:
        truncate_trajectory(files, 0) if files.trajectory.exists() else None
        start_velocities(atoms, settings.temperature_K, settings.seed, settings.trajectory)
        ck = Checkpoint(0, atoms.positions.copy(), atoms.get_momenta(), rng.bit_generator.state,
                        0, 0, 0.0)
    else:
        truncate_trajectory(files, ck.traj_bytes)
        atoms.set_positions(ck.positions, apply_constraint=False)
        atoms.set_momenta(ck.momenta, apply_constraint=False)
        rng.bit_generator.state = ck.rng_state
    resumed_from = ck.step
    dyn = Langevin(atoms, timestep=settings.timestep_fs * units.fs,
                   temperature_K=settings.temperature_K,
                   friction=settings.friction_per_fs / units.fs, fixcm=False, rng=rng)
    stop_check = StopCheck(start, settings)
    write_json_atomic(files.sidecar, side)
    t0, wall0 = time.perf_counter(), ck.wall_s
    step, n_frames, traj_bytes = ck.step, ck.n_frames, ck.traj_bytes
    buffer: list[Atoms] = []
    if step == 0:  # the start frame
        f = atoms.get_forces(md=True)
        buffer.append(frame_atoms(atoms, 0, settings, f, frame_results(potential, atoms)))
    else:
        f = atoms.get_forces(md=True)
    reason, last_good = None, None

    def flush() -> None:
        nonlocal n_frames, traj_bytes
        if buffer:
            if tensor is not None:
                tensor.annotate(buffer)
            traj_bytes = append_frames(files, buffer)
            n_frames += len(buffer)
            buffer.clear()

    def status(state: str) -> dict[str, Any]:
        wall = wall0 + time.perf_counter() - t0
        done = step - resumed_from
        nsd = (done * settings.timestep_fs * 1e-6) / ((time.perf_counter() - t0) / 86400) \
            if done and time.perf_counter() > t0 else None
        side.update(status=state, n_frames=n_frames, steps_done=step, wall_s=round(wall, 2),
                    ns_per_day=None if nsd is None else round(nsd, 4))
        return side

    while step < settings.n_steps:
        prev = (atoms.positions.copy(), atoms.get_momenta())
        f = dyn.step(f)
        step += 1
        reason = stop_check(atoms, f)
        if reason is not None:
            last_good = prev
            break
        if step % settings.stride == 0:
            buffer.append(frame_atoms(atoms, step, settings, f,
                                      frame_results(potential, atoms)))
        if step % settings.checkpoint_every == 0 or step == settings.n_steps:
            flush()
            save_checkpoint(files, Checkpoint(
                step, atoms.positions.copy(), atoms.get_momenta(), rng.bit_generator.state,
                n_frames, traj_bytes, wall0 + time.perf_counter() - t0))
            write_json_atomic(files.sidecar, status("running"))
        if progress is not None and (step % settings.stride == 0 or step == settings.n_steps):
            progress(step, settings.n_steps, side.get("ns_per_day") or 0.0)
    if reason is not None:
        flush()
        bad_step = step
        step -= 1
        assert last_good is not None  # set together with reason
        good = Atoms(atoms.numbers, positions=last_good[0])
        good.set_momenta(last_good[1], apply_constraint=False)
        good.info.update(step=step, time_fs=step * settings.timestep_fs)
        from ase.io import write

        write(files.last_good, good, format="extxyz")
        side = status("stopped")
        side["stop_reason"] = (f"step {bad_step} ({bad_step * settings.timestep_fs:g} fs): "
                               f"{reason}; the last good state (step {step}) is in "
                               f"{files.last_good.name}")
    else:
        side = status("finished")
    write_json_atomic(files.sidecar, side)
    return _result(files, side, resumed_from)


__all__ = ["MDSettings", "MDResult", "run_md", "check_potential", "start_velocities",
           "StopCheck", "frame_atoms", "frame_results", "MAX_TIMESTEP_FS"]
