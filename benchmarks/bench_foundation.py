"""Throughput of molmag's foundation: dataset import/export and rotation algebra.

Run:  python benchmarks/bench_foundation.py [--frames N]
Prints a table; figures are per second on this machine (compare ratios across machines).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation

from molmag.io import Dataset, Record, read_records, write_records
from molmag.physics import eckart_rotation, spherical_from_cartesian, wigner_D, zfs_from_tensor


def _frames(n: int, natoms: int = 53) -> list[Record]:
    rng = np.random.default_rng(0)
    base = rng.uniform(-4, 4, size=(natoms, 3))
    numbers = [27] + [6] * (natoms - 1)
    out = []
    for _ in range(n):
        a = Atoms(numbers=numbers, positions=base + rng.uniform(-0.1, 0.1, base.shape))
        t = rng.normal(size=(3, 3))
        out.append(Record(a, charge=-2, multiplicity=4,
                          labels={"zfs_tensor": t + t.T, "energy": float(rng.normal())}))
    return out


def timed(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    n = ap.parse_args().frames
    rows = []
    records = _frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = Dataset(tmp / "bench.db")
        rows.append(("dataset: add_many (new rows)", n / timed(lambda: ds.add_many(records)),
                     "rows/s"))
        rows.append(("dataset: add_many (re-import)", n / timed(lambda: ds.add_many(records)),
                     "rows/s"))
        rows.append(("dataset: select all", n / timed(lambda: list(ds.select())), "rows/s"))
        rows.append(("extxyz: write",
                     n / timed(lambda: write_records(tmp / "x.extxyz", records)), "frames/s"))
        rows.append(("extxyz: read + validate",
                     n / timed(lambda: list(read_records(tmp / "x.extxyz"))), "frames/s"))
    rots = Rotation.random(200, random_state=0).as_matrix()
    for l in (2, 6):
        rows.append((f"wigner_D l={l}", len(rots) / timed(lambda: [wigner_D(l, r) for r in rots]),
                     "matrices/s"))
    tens = np.random.default_rng(1).normal(size=(10000, 3, 3))
    rows.append(("spherical_from_cartesian (batched)",
                 len(tens) / timed(lambda: spherical_from_cartesian(tens)), "tensors/s"))
    rows.append(("zfs_from_tensor",
                 2000 / timed(lambda: [zfs_from_tensor(t) for t in tens[:2000]]), "tensors/s"))
    ref = records[0].atoms
    rows.append(("eckart_rotation (53 atoms)",
                 500 / timed(lambda: [eckart_rotation(r.atoms, ref) for r in records[:500]]),
                 "structures/s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'operation':<{width}}  {'throughput':>12}  unit")
    for name, rate, unit in rows:
        print(f"{name:<{width}}  {rate:>12.0f}  {unit}")


if __name__ == "__main__":
    main()
