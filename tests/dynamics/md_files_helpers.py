"""Write MD runs in the molmag-md/1 format (extxyz + JSON sidecar) for the analysis tests,
with ase.io.write exactly as the format describes (tensors as 9 row-major floats)."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

# CoN4: a tetrahedron of N donors at 2.0 Angstrom, plus an H on each N (not donors)
_TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
CON4H4 = Atoms("CoN4H4", positions=np.vstack([[0, 0, 0], 2.0 * _TET, 3.0 * _TET]))


def sidecar(temperature_K: float, n_frames: int, **over) -> dict:
    s = {"format": "molmag-md/1", "temperature_K": temperature_K, "timestep_fs": 0.5,
         "friction_per_fs": 0.01, "n_steps": n_frames * 10, "stride": 10, "seed": 0,
         "trajectory": 0, "potential": "test", "tensor_model": None,
         "structure_hash": "test", "formula": "", "metal_index": 0, "status": "finished",
         "stop_reason": None, "n_frames": n_frames, "wall_s": 1.0, "ns_per_day": 1.0,
         "molmag_version": "test"}
    s.update(over)
    return s


def write_run(stem, atoms: Atoms, positions: np.ndarray, *, temperature_K: float,
              frame_fs: float = 5.0, momenta: np.ndarray | None = None,
              tensors: np.ndarray | None = None, tensors_std: np.ndarray | None = None,
              D_std: np.ndarray | None = None, side: dict | None = None,
              extra_info: list[dict] | None = None) -> Path:
    """Frames of ``atoms`` at ``positions`` (n, N, 3) to ``stem.extxyz`` + ``stem.json``."""
    stem = Path(stem)
    traj = stem.with_name(stem.name + ".extxyz")
    if traj.exists():
        traj.unlink()
    n = len(positions)
    frames = []
    for k in range(n):
        a = Atoms(atoms.numbers, positions=positions[k])
        if momenta is not None:
            a.set_momenta(momenta[k])
        a.info.update(step=10 * k, time_fs=frame_fs * k, temperature_K=float(temperature_K),
                      metal_index=0)
        if tensors is not None:
            a.info["zfs_tensor"] = [float(x) for x in np.asarray(tensors[k]).reshape(9)]
        if tensors_std is not None:
            a.info["zfs_tensor_std"] = [float(x) for x in np.asarray(tensors_std[k]).reshape(9)]
        if D_std is not None:
            a.info["zfs_D_std"] = float(D_std[k])
        if extra_info is not None:
            a.info.update(extra_info[k])
        frames.append(a)
    for a in frames:
        ase.io.write(traj, a, format="extxyz", append=True)
    s = sidecar(temperature_K, n, formula=atoms.get_chemical_formula(),
                stride=int(round(frame_fs / 0.5)))
    s.update(side or {})
    stem.with_name(stem.name + ".json").write_text(json.dumps(s))
    return traj
