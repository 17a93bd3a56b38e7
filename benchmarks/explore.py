"""Exploration throughput: chi = E + gamma D evaluations per second with the ML committees
against the reference engines, and the time of each stage of ``molmag campaign co-pdms``.

Run:  python benchmarks/explore.py [--campaign DIR] [--n 200] [--threads 2]

``--campaign`` is the output folder of a finished ``molmag campaign co-pdms --quick`` (or full)
run; without it the quick campaign is run first into ``bench-campaign-co-pdms-quick`` (a few
minutes on 2 cores; re-used on the next call).  The chi evaluations are those PSO makes
(:class:`molmag.explore.pso.ChiEvaluator`: one structure, energy and D, committee spreads
included) on ``--n`` structures displaced uniformly by +-0.05 Angstrom from the relaxed start:

* ML: the campaign's SNAP energy committee with its GM-NN D committee (what the campaign's PSO
  uses) and with its covariant-ridge D committee;
* reference: GFN2-xTB (tblite) energies with ligand-field D, and the ligand-field engine alone.

Throughput is reported as evaluations/s and as the ratio to the reference (xTB + ligand field),
which is what carries across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _evals_per_s(start, e_calc, d_calc, frames) -> tuple[float, int]:
    from molmag.explore.pso import ChiEvaluator

    ev = ChiEvaluator(start, e_calc, d_calc)
    ev(frames[0].positions)   # warm-up: model loading, LAMMPS start, first SCF
    t0 = time.perf_counter()
    bad = 0
    for f in frames:
        bad += ev(f.positions).error is not None
    return len(frames) / (time.perf_counter() - t0), bad


class _Zero:
    """An energy calculator that returns 0 (to time a D engine alone)."""

    implemented_properties = ["energy"]

    def get_property(self, name, atoms=None, allow_calculation=True):
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", type=Path, default=None)
    ap.add_argument("--n", type=int, default=200, help="structures per engine")
    ap.add_argument("--threads", type=int, default=2, help="torch / BLAS threads")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import ase.io
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    camp = args.campaign
    if camp is None:
        camp = Path("bench-campaign-co-pdms-quick")
        if not (camp / "report.md").exists():
            print(f"running the quick campaign into {camp} first ...", flush=True)
            subprocess.run([sys.executable, "-m", "molmag.cli.main", "campaign", "co-pdms",
                            "--quick", "--out", str(camp)], check=True)
    state = json.loads((camp / "campaign.json").read_text())

    from molmag.chem.sampling import random_displacements
    from molmag.chem.xtb import XTBCalculator
    from molmag.models.calculator import ModelCalculator
    from molmag.physics.ligand_field import LigandFieldCalculator

    start = ase.io.read(camp / "start.xyz")
    start.calc = None
    donors = [int(i) for i in start.info["donor_indices"]]
    start.info["donor_indices"] = donors
    frames = random_displacements(start, args.n, 0.05, seed=1)
    models = camp / "models"
    engines = {
        "ML: SNAP E + GM-NN D committees": (ModelCalculator(models / "energy" / "model.npz"),
                                            ModelCalculator(models / "gmnn" / "model.npz")),
        "ML: SNAP E + covariant-ridge D committees": (
            ModelCalculator(models / "energy" / "model.npz"),
            ModelCalculator(models / "covariant" / "model.npz")),
        "reference: GFN2-xTB E + ligand-field D": (XTBCalculator(),
                                                   LigandFieldCalculator(donors=donors)),
        "ligand-field D alone": (_Zero(), LigandFieldCalculator(donors=donors)),
    }
    rows = []
    with threadpool_limits(limits=args.threads):
        for name, (e, d) in engines.items():
            rate, bad = _evals_per_s(start, e, d, frames)
            rows.append((name, rate, bad))
            print(f"  {name}: {rate:.1f} chi/s", flush=True)
    ref = rows[2][1]
    print(f"\nchi = E + gamma D evaluations on [Co(pdms)2]2- ({len(start)} atoms), {args.n} "
          f"structures (+-0.05 A), {args.threads} threads; models of {camp} "
          f"({state.get('mode')} run)")
    print(f"| {'engine':<44} | {'chi evals/s':>11} | {'vs reference':>12} | failed |")
    print(f"|{'-' * 46}|{'-' * 13}|{'-' * 14}|--------|")
    for name, rate, bad in rows:
        print(f"| {name:<44} | {rate:11.1f} | {rate / ref:11.1f}x | {bad:6d} |")

    print(f"\nstages of `molmag campaign co-pdms` ({state.get('mode')}), wall time:")
    print(f"| {'stage':<10} | {'status':<7} | {'seconds':>8} | {'share':>6} |")
    print(f"|{'-' * 12}|{'-' * 9}|{'-' * 10}|{'-' * 8}|")
    total = sum(float(v.get("seconds", 0)) for v in state["stages"].values())
    for k, v in state["stages"].items():
        s = float(v.get("seconds", 0))
        print(f"| {k:<10} | {v.get('status', ''):<7} | {s:8.1f} | {100 * s / total:5.1f}% |")
    print(f"| {'total':<10} | {'':<7} | {total:8.1f} | {'':>6} |")
    pso = state["stages"].get("pso", {}).get("summary", {}).get("rows", [])
    if pso:
        n_ev = sum(r["n_evaluations"] for r in pso)
        t_ev = sum(r["wall_time_s"] for r in pso)
        print(f"\nPSO in the campaign: {n_ev} chi evaluations in {t_ev:.1f} s "
              f"({n_ev / t_ev:.1f}/s) over {len(pso)} gammas")


if __name__ == "__main__":
    main()
