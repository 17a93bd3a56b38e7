"""The files of one MD run, written so that a killed run loses at most one checkpoint interval
and a rerun continues bit-identically.

A run with stem ``out/T100K_run0`` owns

* ``T100K_run0.extxyz`` — the stored frames (ASE extxyz, appended);
* ``T100K_run0.json`` — the sidecar: the run's settings and its status
  (format ``molmag-md/1``, see :data:`SIDECAR_FORMAT`);
* ``T100K_run0.ckpt.npz`` — the last checkpoint: positions, momenta, the thermostat's random
  generator state, the step, and the byte length of the trajectory file at that step;
* ``T100K_run0.lock`` — held (``flock``) while a process writes the run, so two runs of the
  same stem never interleave (the lock goes with the process, also on kill -9).

Order of writing at a checkpoint: frames appended and fsync'ed, then the checkpoint replaced
atomically (``os.replace``).  A crash between the two leaves frames beyond the checkpoint's
byte length; resuming truncates the trajectory to that length and recomputes them
identically.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np
from ase import Atoms
from ase.io import write

from molmag.io.jsonable import json_default

SIDECAR_FORMAT = "molmag-md/1"


@dataclass(frozen=True)
class RunFiles:
    stem: Path

    @property
    def trajectory(self) -> Path:
        return self.stem.with_name(self.stem.name + ".extxyz")

    @property
    def sidecar(self) -> Path:
        return self.stem.with_name(self.stem.name + ".json")

    @property
    def checkpoint(self) -> Path:
        return self.stem.with_name(self.stem.name + ".ckpt.npz")

    @property
    def lockfile(self) -> Path:
        return self.stem.with_name(self.stem.name + ".lock")

    @property
    def last_good(self) -> Path:
        return self.stem.with_name(self.stem.name + "_last_good.extxyz")


class RunLock:
    """An exclusive ``flock`` on the run's lock file (released on exit or process death)."""

    def __init__(self, files: RunFiles):
        self.path = files.lockfile
        self._fh: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RuntimeError(f"{self.path}: another process is running this MD run; "
                               "wait for it or use another output") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=json_default) + "\n")
    os.replace(tmp, path)




def read_sidecar(files: RunFiles) -> dict[str, Any] | None:
    if not files.sidecar.is_file():
        return None
    try:
        return json.loads(files.sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{files.sidecar}: not a readable MD sidecar ({exc})") from None


def frames_to_text(frames: list[Atoms]) -> bytes:
    """The extxyz text of ``frames`` (what :func:`append_frames` writes)."""
    buf = io.StringIO()
    for a in frames:
        write(buf, a, format="extxyz")
    return buf.getvalue().encode()


def append_frames(files: RunFiles, frames: list[Atoms]) -> int:
    """Append ``frames`` to the trajectory, flushed to disk; returns the file's new length."""
    with open(files.trajectory, "ab") as fh:
        fh.write(frames_to_text(frames))
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def truncate_trajectory(files: RunFiles, length: int) -> None:
    """Cut the trajectory back to ``length`` bytes (frames written after the checkpoint)."""
    if not files.trajectory.exists():
        if length:
            raise ValueError(f"{files.trajectory}: missing, but the checkpoint "
                             f"{files.checkpoint.name} says it held {length} bytes")
        return
    size = files.trajectory.stat().st_size
    if size < length:
        raise ValueError(f"{files.trajectory}: {size} bytes, shorter than the {length} bytes "
                         f"the checkpoint {files.checkpoint.name} recorded (edited or "
                         "truncated by hand?); delete the run to start again")
    if size > length:
        with open(files.trajectory, "r+b") as fh:
            fh.truncate(length)


@dataclass
class Checkpoint:
    step: int
    positions: np.ndarray
    momenta: np.ndarray
    rng_state: Mapping[str, Any]
    n_frames: int
    traj_bytes: int
    wall_s: float
    velocities: np.ndarray | None = None  # LAMMPS runs continue from these exact values


def save_checkpoint(files: RunFiles, ck: Checkpoint) -> None:
    tmp = files.checkpoint.with_name(files.checkpoint.name + ".tmp.npz")
    extra: dict[str, Any] = {} if ck.velocities is None else {"velocities": ck.velocities}
    np.savez(tmp, step=ck.step, positions=ck.positions, momenta=ck.momenta,
             rng_state=json.dumps(ck.rng_state), n_frames=ck.n_frames,
             traj_bytes=ck.traj_bytes, wall_s=ck.wall_s, **extra)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, files.checkpoint)


def load_checkpoint(files: RunFiles) -> Checkpoint | None:
    if not files.checkpoint.is_file():
        return None
    try:
        with np.load(files.checkpoint) as z:
            return Checkpoint(step=int(z["step"]), positions=np.array(z["positions"]),
                              momenta=np.array(z["momenta"]),
                              rng_state=json.loads(str(z["rng_state"])),
                              n_frames=int(z["n_frames"]), traj_bytes=int(z["traj_bytes"]),
                              wall_s=float(z["wall_s"]),
                              velocities=np.array(z["velocities"]) if "velocities" in z
                              else None)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{files.checkpoint}: unreadable checkpoint ({exc}); delete it and "
                         "the run's trajectory to start again") from None


__all__ = ["SIDECAR_FORMAT", "RunFiles", "RunLock", "Checkpoint", "save_checkpoint",
           "load_checkpoint", "append_frames", "truncate_trajectory", "read_sidecar",
           "write_json_atomic", "frames_to_text"]
