"""Reading an MD run written by ``molmag md`` (format ``molmag-md/1``) for analysis.

A run is ``<stem>.extxyz`` (one ASE extxyz frame per stored step) plus the sidecar
``<stem>.json`` with the run's settings (temperature_K, timestep_fs, stride, seed,
trajectory, potential, tensor_model, structure_hash, formula, metal_index, status, ...).
Per frame the analysis uses

* ``positions`` (Angstrom) and ``momenta`` (ASE units; velocities are returned in Angstrom/fs);
* ``atoms.info``: ``step``, ``time_fs``, ``temperature_K`` (instantaneous kinetic temperature),
  ``zfs_tensor`` / ``zfs_tensor_std`` (9 floats, row-major 3x3, cm-1; a 3x3 array is accepted
  too), ``zfs_D_std``, ``zfs_E_std`` (cm-1), ``forces_std_max`` (eV/Angstrom), ``epot_eV``.

A key is either in every frame of a run or in none: a frame that lacks a key the earlier
frames had is an error naming the file, the frame and the key.  :func:`check_same_structure`
refuses to mix runs of different structures (formula, atom order, metal, structure hash) in
one analysis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units

from molmag.io.errors import DataFileError

#: The sidecar format this reader understands.
SIDECAR_FORMAT = "molmag-md/1"

#: Per-frame scalar info keys collected when present (cm-1, eV, eV/Angstrom, K).
SCALAR_KEYS = ("temperature_K", "epot_eV", "epot_std_eV", "forces_std_max", "zfs_D", "zfs_E",
               "zfs_D_std", "zfs_E_std")
#: Per-frame tensor info keys (9 floats, row-major, cm-1) collected when present.
TENSOR_KEYS = ("zfs_tensor", "zfs_tensor_std")


@dataclass
class Trajectory:
    """One MD run: the frames as arrays, the per-frame properties and the sidecar settings.

    ``positions`` (n, N, 3) Angstrom; ``velocities`` (n, N, 3) Angstrom/fs or None;
    ``times_fs`` (n,); ``steps`` (n,); ``temperatures_K`` (n,) the instantaneous kinetic
    temperature or None; ``tensors`` (n, 3, 3) cm-1 or None; ``tensors_std`` likewise;
    ``scalars`` the other per-frame numbers by info key (see :data:`SCALAR_KEYS`);
    ``settings`` the sidecar."""

    path: Path
    settings: dict
    numbers: np.ndarray
    masses: np.ndarray
    positions: np.ndarray
    times_fs: np.ndarray
    steps: np.ndarray
    velocities: np.ndarray | None = None
    temperatures_K: np.ndarray | None = None
    tensors: np.ndarray | None = None
    tensors_std: np.ndarray | None = None
    scalars: dict = field(default_factory=dict)
    info0: dict = field(default_factory=dict)

    # --- the sidecar ------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """The thermostat's target temperature (K), from the sidecar."""
        return float(self.settings["temperature_K"])

    @property
    def incomplete(self) -> str | None:
        """Why the run holds fewer frames than it was set up for ("stopped: <reason>" for a
        run that stopped itself, "running or interrupted: ..." for one not finished yet), or
        None for a finished run."""
        status = self.settings.get("status")
        if status == "stopped":
            return f"stopped: {self.settings.get('stop_reason', 'no reason recorded')}"
        if status not in (None, "finished"):
            done, total = self.settings.get("steps_done"), self.settings.get("n_steps")
            return (f"{status} (step {done} of {total}; a rerun of molmag md continues it)"
                    if done is not None and total else str(status))
        return None

    @property
    def metal_index(self) -> int | None:
        m = self.settings.get("metal_index", self.info0.get("metal_index"))
        return None if m is None else int(m)

    @property
    def formula(self) -> str:
        return Atoms(numbers=self.numbers).get_chemical_formula()

    @property
    def n_frames(self) -> int:
        return len(self.times_fs)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def frame_interval_fs(self) -> float:
        """Time between stored frames (fs); ValueError naming the file when the frames are not
        evenly spaced (correlation functions need a uniform grid)."""
        if self.n_frames < 2:
            raise DataFileError(self.path, f"{self.n_frames} frame(s); correlation functions "
                                "need at least 2")
        dt = np.diff(self.times_fs)
        h = float(np.median(dt))
        bad = np.flatnonzero(np.abs(dt - h) > 1e-6 * max(h, 1.0))
        if bad.size:
            k = int(bad[0]) + 1
            raise DataFileError(self.path, f"time_fs jumps by {dt[k - 1]:g} fs where the "
                                f"other frames are {h:g} fs apart (frames missing?)", k,
                                "time_fs")
        return h

    def frame(self, i: int) -> Atoms:
        """Frame ``i`` as an :class:`ase.Atoms` (positions, velocities, masses; charge,
        multiplicity and metal index in ``info`` from frame 0 or the sidecar)."""
        a = Atoms(numbers=self.numbers, positions=self.positions[i])
        a.set_masses(self.masses)
        if self.velocities is not None:
            a.set_velocities(self.velocities[i] / units.fs)
        for k in ("charge", "multiplicity", "metal_index"):
            v = self.info0.get(k, self.settings.get(k))
            if v is not None:
                a.info[k] = int(v)
        return a

    @property
    def frames(self) -> list[Atoms]:
        return [self.frame(i) for i in range(self.n_frames)]

    def require(self, what: str) -> np.ndarray:
        """The per-frame array ``what`` ("zfs_tensor", "momenta", "zfs_tensor_std" or a scalar
        key); DataFileError naming the file, frame 0 and the key when the run lacks it."""
        value = {"zfs_tensor": self.tensors, "zfs_tensor_std": self.tensors_std,
                 "momenta": self.velocities}.get(what, self.scalars.get(what))
        if value is None:
            hint = {"zfs_tensor": " (run molmag md with a tensor model)",
                    "momenta": " (the velocities; molmag md stores them)"}.get(what, "")
            raise DataFileError(self.path, f"the frames have no {what!r}{hint}", 0, what)
        return value

    def eckart_rotations(self, reference: np.ndarray, frames=None) -> np.ndarray:
        """Per frame the rotation R (n, 3, 3) that brings it onto ``reference`` positions
        (N, 3) in the Eckart sense (mass-weighted Kabsch, :mod:`molmag.physics.alignment`):
        ``R @ (x_i - com) ~ ref_i - com_ref``."""
        from molmag.physics.alignment import kabsch

        frames = range(self.n_frames) if frames is None else frames
        return np.array([kabsch(self.positions[f], reference, self.masses)[0] for f in frames])

    def molecular_frame_tensors(self, reference: np.ndarray, frames=None) -> np.ndarray:
        """The D tensors of the frames turned into the orientation of ``reference`` (the
        molecule's Eckart frame): ``R D R^T`` with R from :meth:`eckart_rotations`.  A free
        molecule tumbles during MD; in the laboratory frame its D_ij mix with the rotation,
        in the molecular frame they change only with the internal motion."""
        frames = np.arange(self.n_frames) if frames is None else np.asarray(frames)
        r = self.eckart_rotations(reference, frames)
        return np.einsum("fia,fab,fjb->fij", r, self.require("zfs_tensor")[frames], r)

    def after(self, skip_ps: float) -> np.ndarray:
        """Indices of the frames at time_fs >= 1000 skip_ps (the equilibration discarded);
        ValueError naming the file when none is left."""
        if not (np.isfinite(skip_ps) and skip_ps >= 0):
            raise ValueError(f"skip {skip_ps} ps: must be a time >= 0")
        keep = np.flatnonzero(self.times_fs >= 1000.0 * skip_ps - 1e-9)
        if keep.size == 0:
            raise DataFileError(self.path, f"no frame left after discarding the first "
                                f"{skip_ps:g} ps (the run ends at "
                                f"{self.times_fs[-1] / 1000:.4g} ps)")
        return keep


# --- reading ----------------------------------------------------------------------------
def run_files(path) -> tuple[Path, Path]:
    """The trajectory and sidecar of a run given as ``stem.extxyz``, ``stem.json`` or
    ``stem``."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return p.with_suffix(".extxyz"), p
    if p.suffix.lower() in (".extxyz", ".xyz"):
        return p, p.with_suffix(".json")
    return p.with_name(p.name + ".extxyz"), p.with_name(p.name + ".json")


def read_sidecar(traj: Path, sidecar: Path) -> dict:
    if not sidecar.is_file():
        raise DataFileError(traj, f"no sidecar {sidecar.name} next to it (molmag md writes "
                            "<stem>.extxyz and <stem>.json together; the analysis needs the "
                            "run's temperature and time step from it)")
    try:
        s = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(sidecar, f"not a readable JSON sidecar ({exc})") from None
    if not isinstance(s, dict):
        raise DataFileError(sidecar, "not an MD sidecar (a JSON object is expected)")
    fmt = s.get("format")
    if fmt != SIDECAR_FORMAT:
        raise DataFileError(sidecar, f"format {fmt!r}, not {SIDECAR_FORMAT!r} (not a molmag md "
                            "sidecar)", field="format")
    t = s.get("temperature_K")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not np.isfinite(t) or t <= 0:
        raise DataFileError(sidecar, f"temperature_K {t!r}: must be a number > 0",
                            field="temperature_K")
    return s


def _tensor(value, path: Path, frame: int, key: str) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.shape == (9,):
        a = a.reshape(3, 3)  # row-major
    if a.shape != (3, 3) or not np.all(np.isfinite(a)):
        raise DataFileError(path, f"{key} must be 9 finite floats (row-major 3x3, cm-1), got "
                            f"{np.asarray(value).ravel()[:9].tolist()}", frame, key)
    return a


def _scalar(value, path: Path, frame: int, key: str) -> float:
    try:
        x = float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        raise DataFileError(path, f"{key} must be one number, got {value!r}", frame,
                            key) from None
    if not np.isfinite(x):
        raise DataFileError(path, f"{key} is {x}", frame, key)
    return x


def read_trajectory(path) -> Trajectory:
    """Read one MD run (``stem.extxyz`` + ``stem.json``, see the module docstring).

    Errors (ValueError subclasses, one line naming the file, frame and key): no trajectory,
    no sidecar, a sidecar of another format or with a temperature <= 0, a malformed frame, a
    frame whose atoms differ from frame 0, a key present in earlier frames but missing in
    this one, steps that do not increase, a tensor that is not 9 finite floats."""
    from molmag.io.extxyz import iter_frames

    traj, sidecar = run_files(path)
    if not traj.is_file():
        raise FileNotFoundError(f"{traj}: no such trajectory file")
    settings = read_sidecar(traj, sidecar)

    numbers: np.ndarray | None = None
    masses: np.ndarray | None = None
    pos, vel, times, steps, temps = [], [], [], [], []
    tens: dict[str, list[np.ndarray]] = {k: [] for k in TENSOR_KEYS}
    scal: dict[str, list[float]] = {k: [] for k in SCALAR_KEYS if k != "temperature_K"}
    present: dict[str, bool] = {}
    info0: dict = {}
    for i, atoms in iter_frames(traj, format="extxyz"):
        if i == 0:
            numbers, masses = atoms.numbers.copy(), atoms.get_masses()
            info0 = dict(atoms.info)
        else:
            assert numbers is not None  # set by frame 0
            if len(atoms) != len(numbers) or np.any(atoms.numbers != numbers):
                raise DataFileError(traj, f"{atoms.get_chemical_formula()} ({len(atoms)} "
                                    f"atoms), not the "
                                    f"{Atoms(numbers=numbers).get_chemical_formula()} of "
                                    "frame 0 in the same order", i, "species")
        has = {"momenta": "momenta" in atoms.arrays, "time_fs": "time_fs" in atoms.info,
               "step": "step" in atoms.info, "temperature_K": "temperature_K" in atoms.info}
        has.update({k: k in atoms.info for k in (*TENSOR_KEYS, *scal)})
        if i == 0:
            present = has
            if not has["time_fs"]:
                raise DataFileError(traj, "no 'time_fs' in the frame (not written by "
                                    "molmag md?)", 0, "time_fs")
        else:
            for k, was in present.items():
                if was and not has[k]:
                    raise DataFileError(traj, f"no {k!r}, which the frames before have", i, k)
        pos.append(atoms.positions)
        times.append(_scalar(atoms.info["time_fs"], traj, i, "time_fs"))
        steps.append(int(atoms.info["step"]) if present["step"] else i)
        if present["momenta"]:
            vel.append(atoms.get_velocities() * units.fs)
        if present["temperature_K"]:
            temps.append(_scalar(atoms.info["temperature_K"], traj, i, "temperature_K"))
        for k in TENSOR_KEYS:
            if present[k]:
                tens[k].append(_tensor(atoms.info[k], traj, i, k))
        for k in scal:
            if present[k]:
                scal[k].append(_scalar(atoms.info[k], traj, i, k))
        if i and times[-1] <= times[-2]:
            raise DataFileError(traj, f"time_fs {times[-1]:g} is not after the previous "
                                f"frame's {times[-2]:g}", i, "time_fs")

    assert numbers is not None and masses is not None  # iter_frames raises on no frames
    return Trajectory(
        path=traj, settings=settings, numbers=numbers, masses=masses,
        positions=np.asarray(pos), times_fs=np.asarray(times), steps=np.asarray(steps),
        velocities=np.asarray(vel) if vel else None,
        temperatures_K=np.asarray(temps) if temps else None,
        tensors=np.asarray(tens["zfs_tensor"]) if tens["zfs_tensor"] else None,
        tensors_std=np.asarray(tens["zfs_tensor_std"]) if tens["zfs_tensor_std"] else None,
        scalars={k: np.asarray(v) for k, v in scal.items() if v}, info0=info0)


def check_same_structure(trajectories: list[Trajectory]) -> None:
    """ValueError naming both files when the runs are not of one structure: another formula
    or atom order, another metal index, or another ``structure_hash`` in the sidecars."""
    if not trajectories:
        raise ValueError("no trajectories given")
    ref = trajectories[0]
    for t in trajectories[1:]:
        why = None
        if len(t.numbers) != len(ref.numbers) or np.any(t.numbers != ref.numbers):
            why = f"{t.formula} ({t.n_atoms} atoms) against {ref.formula} ({ref.n_atoms} atoms)"
        elif t.metal_index != ref.metal_index:
            why = f"metal index {t.metal_index} against {ref.metal_index}"
        else:
            h1, h2 = ref.settings.get("structure_hash"), t.settings.get("structure_hash")
            if h1 and h2 and h1 != h2:
                why = f"structure_hash {h2} against {h1}"
        if why:
            raise ValueError(f"{t.path} is not a run of the structure of {ref.path} ({why}); "
                             "analyse each structure separately")


def read_trajectories(paths) -> list[Trajectory]:
    """Read several runs (files, stems, or folders whose ``*.extxyz`` runs are all taken) and
    check that they are runs of one structure."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            # the runs in a folder: the trajectories with a sidecar (not modes.extxyz, not a
            # stopped run's <stem>_last_good.extxyz)
            found = sorted(q for q in p.glob("*.extxyz") if q.with_suffix(".json").is_file())
            if not found:
                raise FileNotFoundError(f"{p}: a folder without MD runs (*.extxyz with a "
                                        "*.json sidecar)")
            files.extend(found)
        else:
            files.append(p)
    seen: dict[Path, Path] = {}
    for f in files:
        key = run_files(f)[0].resolve()
        if key in seen:
            raise ValueError(f"{f}: the run {run_files(f)[0]} is given twice")
        seen[key] = f
    trajs = [read_trajectory(f) for f in files]
    check_same_structure(trajs)
    return trajs


def group_by_temperature(trajectories: list[Trajectory]) -> dict[str, list[Trajectory]]:
    """Runs grouped by the sidecar's target temperature, keys ``f"{T:g}"`` in increasing T."""
    groups: dict[float, list[Trajectory]] = {}
    for t in trajectories:
        groups.setdefault(t.temperature, []).append(t)
    return {f"{T:g}": groups[T] for T in sorted(groups)}


__all__ = ["SIDECAR_FORMAT", "Trajectory", "read_trajectory", "read_trajectories",
           "check_same_structure", "group_by_temperature", "run_files"]
