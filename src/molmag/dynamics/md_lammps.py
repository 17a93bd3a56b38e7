"""The fast path of :func:`molmag.dynamics.md.run_md` for SNAP energy committees: the whole
Langevin run inside LAMMPS (``pair_style snap`` with molmag's fitted coefficients,
``fix langevin``; :func:`molmag.dynamics.lammps_snap.run_lammps_langevin`), written to the
same files (:mod:`molmag.dynamics.md_files`, format ``molmag-md/1``) with the same
checkpoints, stop criteria and per-frame tensors.

Differences from the ASE path, stated in the sidecar (``"engine": "lammps"``): LAMMPS
integrates with the committee's mean coefficients (for a linear SNAP model exactly the
committee-mean energy and forces); the committee spreads of energy and forces of every
*stored* frame come from the full committee evaluated on the frames in a batch; the
centre of mass is held as ASE's ``FixCom`` holds it (start velocities without net momentum,
``fix langevin ... zero yes``), so the kinetic temperature counts 3N - 3 degrees of freedom as
the ASE path does; the stop criteria are judged on stored frames (every ``stride`` steps), and
``n_steps`` must be a whole number of strides (``molmag md`` rounds it up).
Resumption is bit-identical: the random forces of each block of ``checkpoint_every`` steps
are seeded by (seed, trajectory, temperature, step at the block's start), and a resumed run
starts at a checkpoint; inside a block the frames are taken without a new LAMMPS run setup.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixCom

from molmag.dynamics.md import (
    MDResult,
    MDSettings,
    ProgressFn,
    StopCheck,
    _check_resume,
    _result,
    _sidecar,
    _structure_hash,
    frame_atoms,
    start_velocities,
)
from molmag.dynamics.md_files import (
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


def run_md_lammps(start: Atoms, committee, settings: MDSettings, stem: str | Path, *,
                  tensor=None, potential_label: str = "", tensor_label: str | None = None,
                  progress: ProgressFn | None = None) -> MDResult:
    """Like :func:`molmag.dynamics.md.run_md`, with a ``snap-energy`` committee in LAMMPS."""
    settings.check()
    if settings.n_steps % settings.stride:
        raise ValueError(f"the LAMMPS engine stores a frame every {settings.stride} steps and "
                         f"needs n_steps ({settings.n_steps}) to be a multiple of it")
    if getattr(committee, "kind", None) != "snap-energy":
        raise ValueError("the LAMMPS engine runs snap-energy committees only (got "
                         f"{getattr(committee, 'kind', type(committee).__name__)}); "
                         "use engine: ase")
    files = RunFiles(Path(stem))
    side = _sidecar(settings, start, _structure_hash(start), potential_label or "snap-energy",
                    tensor_label)
    side["engine"] = "lammps"
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
        return _integrate(start, committee, settings, files, side, ck, tensor, progress)


def _spread_results(committee, frames: list[Atoms]) -> list[dict[str, Any]]:
    pred = committee.predict(frames)
    return [{"energy": float(pred["energy"][n]), "energy_std": float(pred["energy_std"][n]),
             "forces_std": np.asarray(pred["forces_std"][n])} for n in range(len(frames))]


def _integrate(start: Atoms, committee, settings: MDSettings, files: RunFiles,
               side: dict[str, Any], ck: Checkpoint | None, tensor,
               progress: ProgressFn | None) -> MDResult:
    from molmag.dynamics.lammps_snap import run_lammps_langevin

    atoms = start.copy()
    atoms.info = dict(start.info)
    masses = atoms.get_masses()[:, None]
    if ck is None:
        if files.trajectory.exists():
            truncate_trajectory(files, 0)
        start_velocities(atoms, settings.temperature_K, settings.seed, settings.trajectory)
        ck = Checkpoint(0, atoms.positions.copy(), atoms.get_momenta(), {}, 0, 0, 0.0)
    else:
        truncate_trajectory(files, ck.traj_bytes)
    resumed_from = ck.step
    atoms.set_positions(ck.positions)
    velocities = ck.velocities if ck.velocities is not None else ck.momenta / masses
    stop_check = StopCheck(start, settings)
    write_json_atomic(files.sidecar, side)
    t0, wall0 = time.perf_counter(), ck.wall_s
    n_frames, traj_bytes = ck.n_frames, ck.traj_bytes
    buffer: list[Atoms] = []
    state: dict[str, Any] = {"reason": None,
                             "last": (ck.positions.copy(), ck.momenta.copy(), ck.step)}
    seed = int(np.random.SeedSequence([settings.seed, settings.trajectory,
                                       int(round(settings.temperature_K * 1000))]
                                      ).generate_state(1)[0] % (2 ** 31 - 1))

    def flush() -> None:
        nonlocal n_frames, traj_bytes
        if not buffer:
            return
        for a, res in zip(buffer, _spread_results(committee, buffer)):
            fa = frame_atoms(a, a.info["step"], settings, a.arrays["forces"], res)
            t_kin = a.info["temperature_K"]      # store()'s, with 3N - 3 degrees of freedom
            a.info.update(fa.info)
            a.info["temperature_K"] = t_kin
            a.arrays["forces_std"] = fa.arrays["forces_std"]
        if tensor is not None:
            tensor.annotate(buffer)
        traj_bytes = append_frames(files, buffer)
        n_frames += len(buffer)
        buffer.clear()

    def store(step: int, pos, vel, forces) -> Atoms:
        a = Atoms(atoms.numbers, positions=pos, masses=masses[:, 0])
        a.set_momenta(vel * masses, apply_constraint=False)
        a.arrays["forces"] = np.array(forces, float)
        a.set_constraint(FixCom())         # 3N - 3 degrees of freedom, as in the ASE path
        t_kin = float(a.get_temperature())
        a.set_constraint()
        a.info.update(step=int(step), time_fs=step * settings.timestep_fs, temperature_K=t_kin)
        if "metal_index" in atoms.info:
            a.info["metal_index"] = int(atoms.info["metal_index"])
        return a

    def on_frame(step, pos, vel, energy, forces):
        a = store(step, pos, vel, forces)
        reason = stop_check(a, np.asarray(forces))
        if reason is not None:
            state["reason"] = f"step {step} ({step * settings.timestep_fs:g} fs): {reason}"
            return False
        state["last"] = (pos.copy(), vel * masses, step)
        buffer.append(a)
        if step % settings.checkpoint_every == 0 or step == settings.n_steps:
            flush()
            save_checkpoint(files, Checkpoint(step, pos.copy(), vel * masses, {}, n_frames,
                                              traj_bytes, wall0 + time.perf_counter() - t0,
                                              velocities=vel.copy()))
            write_json_atomic(files.sidecar, _status(side, "running", step))
        if progress is not None:
            progress(step, settings.n_steps, side.get("ns_per_day") or 0.0)
        return True

    def _status(s: dict, st: str, step: int) -> dict:
        el = time.perf_counter() - t0
        done = step - resumed_from
        s.update(status=st, n_frames=n_frames, steps_done=step, wall_s=round(wall0 + el, 2),
                 ns_per_day=round(done * settings.timestep_fs * 1e-6 / (el / 86400), 4)
                 if done and el > 0 else None)
        return s

    if ck.step == 0:  # the start frame, with the potential's forces
        from molmag.dynamics.lammps_snap import LammpsSNAP

        eng = LammpsSNAP(committee, atoms)
        try:
            _, f0 = eng.energy_forces(atoms.positions)
        finally:
            eng.close()
        buffer.append(store(0, atoms.positions, velocities, f0))
    run_lammps_langevin(atoms, committee, settings.temperature_K, settings.timestep_fs,
                        settings.friction_per_fs, settings.n_steps, settings.stride, seed,
                        velocities=velocities, start_step=ck.step, on_frame=on_frame,
                        fix_com=True,   # as FixCom in the ASE path: no drift of the molecule
                        # thermostat reseeded at every checkpoint (where a resumed run starts)
                        reseed_every=settings.checkpoint_every)
    flush()
    if state["reason"] is not None:
        from ase.io import write

        pos, mom, step = state["last"]
        good = Atoms(atoms.numbers, positions=pos)
        good.set_momenta(mom, apply_constraint=False)
        good.info.update(step=step, time_fs=step * settings.timestep_fs)
        write(files.last_good, good, format="extxyz")
        side = _status(side, "stopped", step)
        side["stop_reason"] = (f"{state['reason']}; the last good state (step {step}) is in "
                               f"{files.last_good.name}")
    else:
        side = _status(side, "finished", settings.n_steps)
    write_json_atomic(files.sidecar, side)
    return _result(files, side, resumed_from)


__all__ = ["run_md_lammps"]
