"""Throughput of the batched crystal-field labeller on Dy(H2O)5L2-like structures.

    OMP_NUM_THREADS=1 python benchmarks/crystal_field_paths.py
    OMP_NUM_THREADS=2 python benchmarks/crystal_field_paths.py

Prints labels/s (kd_energies + principal g of all 8 Kramers doublets + Stevens parameters per
structure) for
  * ``crystal_field_batch(frames)``: from ASE Atoms (donors found once, REC charges),
  * ``pcem_parameters`` + ``solve`` on a position array (the core, no Atoms handling),
  * one structure at a time through the ASE calculator, for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from calibrate_crystal_field import CASES, dy_h2o5_l2  # noqa: E402

from molmag.physics.crystal_field import (  # noqa: E402
    CrystalFieldCalculator,
    crystal_field_batch,
    pcem_parameters,
    point_charge_model,
    solve,
)


def frames(n: int, seed: int = 0):
    base = dy_h2o5_l2(**CASES["distorted, axis 165 deg"])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        out.append(a)
    return out


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="structures per batch")
    args = ap.parse_args(argv)
    fr = frames(args.n)
    pcm = point_charge_model(fr[0], charges="rec")
    pos = np.stack([f.positions[list(pcm.donors)] - f.positions[0] for f in fr])
    dist = np.linalg.norm(pos, axis=-1)
    pos *= ((dist - pcm.displacements) / dist)[..., None]

    def from_atoms():
        lv = crystal_field_batch(fr)
        return lv.kd_energies, lv.g_values

    def core():
        lv = solve("Dy3+", pcem_parameters("Dy3+", pos, pcm.charges))
        return lv.kd_energies, lv.g_values

    from_atoms()                                            # warm caches
    core()
    t_atoms = best_of(from_atoms)
    t_core = best_of(core)
    calc = CrystalFieldCalculator()
    m = min(500, args.n)
    t = time.perf_counter()
    for a in fr[:m]:
        calc.reset()
        calc.get_property("kd_energies", a)
    t_calc = (time.perf_counter() - t) / m
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"OMP_NUM_THREADS={threads}, {args.n} Dy(H2O)5(OMe)2 structures (16 states, 27 B_k^q)")
    print(f"  crystal_field_batch(Atoms)    {args.n / t_atoms:10.0f} labels/s")
    print(f"  pcem_parameters + solve       {args.n / t_core:10.0f} labels/s")
    print(f"  ASE calculator, one by one    {1 / t_calc:10.0f} labels/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
