"""Throughput of molmag's reference engines (the default labelling oracles).

* d7 ligand field: D tensor + g tensor of [Co(pdms)2]2- (53 atoms, the Lunghi-Sanvito
  configurations in ../shared/data/copdms), batched over conformers with
  ``LigandFieldModel.aom_matrices`` + ``LigandFieldEngine.solve(n_states=4)``, and for
  comparison the ASE calculator called structure by structure.
* 4f crystal field: Kramers doublets, g values and CF parameters of a Dy(H2O)5L2 complex
  (L = methoxide, built here) through the batched crystal-field API.

Each is measured on 1 core (one process, one BLAS thread) and on 2 cores (two worker processes,
one BLAS thread each, as Dask workers would run).  Targets (issue 3): >= 500 d7 labels/s and
>= 5000 Dy labels/s on 2 cores.

Run:  python benchmarks/oracle.py [--n 2000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.io import read  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --- d7 ligand field ---------------------------------------------------------------------
def _copdms_frames(data: Path, n: int) -> list[Atoms]:
    path = data / "copdms" / "copdms_configurations_1200.xyz"
    if not path.is_file():
        raise SystemExit(f"need {path} for the [Co(pdms)2]2- benchmark (--data)")
    frames = read(path, index=":")
    out = [frames[i % len(frames)] for i in range(n)]
    for f in out:
        f.info.update(charge=-2, multiplicity=4)
    return out


def lf_labels(positions: np.ndarray, reference: Atoms) -> np.ndarray:
    from molmag.physics.ligand_field import LigandFieldModel, engine_for

    model = LigandFieldModel.from_atoms(reference)
    eng = engine_for(model.ion, n_threads=1)
    res = eng.solve(model.aom_matrices(positions), n_states=4)
    return res.zfs_tensor


def lf_calculator(frames: list[Atoms]) -> None:
    from molmag.physics.ligand_field import LigandFieldCalculator

    for f in frames:
        LigandFieldCalculator().get_property("zfs_tensor", f)


# --- 4f crystal field --------------------------------------------------------------------
def dy_h2o5l2() -> Atoms:
    """Dy(H2O)5(OMe)2: five waters at 2.40 A in the equatorial plane (72 degrees apart), two
    methoxides on the axis at 2.15 A (C behind the O, three H on C)."""
    pos, sym = [[0.0, 0.0, 0.0]], ["Dy"]
    for k in range(5):
        a = 2 * np.pi * k / 5
        u = np.array([np.cos(a), np.sin(a), 0.0])
        o = 2.40 * u
        t = np.array([-np.sin(a), np.cos(a), 0.0])
        pos += [o, o + 0.96 * (np.cos(np.radians(52)) * u + np.sin(np.radians(52)) * t),
                o + 0.96 * (np.cos(np.radians(52)) * u - np.sin(np.radians(52)) * t)]
        sym += ["O", "H", "H"]
    for s in (1, -1):
        o = np.array([0, 0, 2.15 * s])
        c = o + np.array([0.5, 0, 1.32 * s])
        pos += [o, c, c + [0.5, 0.8, 0.3 * s], c + [0.5, -0.8, 0.3 * s], c + [-1.0, 0, 0.4 * s]]
        sym += ["O", "C", "H", "H", "H"]
    a = Atoms(sym, positions=pos)
    a.info.update(charge=1, multiplicity=6)
    return a


def cf_labels(positions: np.ndarray, reference: Atoms):
    from molmag.physics.crystal_field import crystal_field_batch

    frames = []
    for p in positions:
        f = reference.copy()
        f.positions = p
        frames.append(f)
    return crystal_field_batch(frames, "Dy3+")


# --- runner ------------------------------------------------------------------------------
def rate(fn, positions, reference, workers: int) -> float:
    """Labels per second; worker processes are started and warmed up before the clock runs."""
    if workers == 1:
        fn(positions[:8], reference)  # warm-up: imports, caches
        t0 = time.perf_counter()
        fn(positions, reference)
        return len(positions) / (time.perf_counter() - t0)
    chunks = np.array_split(positions, workers * 4)
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(fn, [positions[:8]] * workers, [reference] * workers))
        t0 = time.perf_counter()
        list(ex.map(fn, chunks, [reference] * len(chunks)))
        return len(positions) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="structures per measurement")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()

    rows = []
    frames = _copdms_frames(args.data, args.n)
    ref = frames[0]
    pos = np.stack([f.positions for f in frames])
    for w in (1, 2):
        rows.append(("d7 ligand field, [Co(pdms)2]2- (batched)", w,
                     rate(lf_labels, pos, ref, w), 500))
    t0 = time.perf_counter()
    lf_calculator(frames[:200])
    rows.append(("d7 ligand field, ASE calculator per structure", 1,
                 200 / (time.perf_counter() - t0), None))

    dy = dy_h2o5l2()
    rng = np.random.default_rng(0)
    n_cf = 5 * args.n
    pos = dy.positions[None] + rng.uniform(-0.05, 0.05, size=(n_cf, len(dy), 3))
    for w in (1, 2):
        rows.append(("4f crystal field, Dy(H2O)5(OMe)2 (batched)", w,
                     rate(cf_labels, pos, dy, w), 5000))

    width = max(len(r[0]) for r in rows)
    print(f"{'oracle':<{width}}  cores  labels/s  target (2 cores)")
    for name, w, r, target in rows:
        tgt = f">= {target}" if target and w == 2 else ""
        print(f"{name:<{width}}  {w:>5}  {r:>8.0f}  {tgt}")


if __name__ == "__main__":
    main()
