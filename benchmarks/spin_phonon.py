"""Spin-phonon couplings and tau(T) of [Co(pdms)2]2-: the reference path (GFN2-xTB Hessian,
ligand-field couplings) against the ML path (an energy-model Hessian, tensor-model couplings),
as times and ratios, and how far the ML couplings are from the reference ones on the same
modes.

    python benchmarks/spin_phonon.py --campaign campaign-co-pdms-quick

uses the campaign's ``start.xyz`` and ``models/{energy,gmnn,covariant}/model.npz``.  Prints:
the wall time of each step (Hessian, couplings, tau at 50 temperatures) per path and the
speed-up; for the 10 modes with the strongest reference couplings, the relative error of the
ML coupling norms |dD/dQ| Q_zp (issue 20's target: within 10 %); U_eff from both.

The ML Hessian is timed twice on a fresh calculator each: batched (all 6N displaced frames in
one ``ModelCalculator.batch_forces`` call, the default of ``normal_modes``) and per
displacement (``batch=False``: ASE Vibrations, one ``get_forces`` each, the path before issue
20's batching), with the largest difference of the two Hessians relative to their largest
element.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import ase.io

    from molmag.chem.sampling import normal_modes
    from molmag.chem.xtb import XTBCalculator, relax
    from molmag.dynamics.spin_phonon import real_modes, relaxation_times, zfs_couplings
    from molmag.models.calculator import ModelCalculator
    from molmag.physics.ligand_field import LigandFieldCalculator
    from molmag.physics.relaxation import fit_arrhenius

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", required=True, help="a co-pdms campaign folder")
    ap.add_argument("--tensor-models", default="gmnn,covariant")
    args = ap.parse_args()
    camp = Path(args.campaign)
    atoms = ase.io.read(camp / "start.xyz", format="extxyz")
    atoms.calc = None
    info = dict(atoms.info)
    atoms = relax(atoms, fmax=0.005, steps=2000).atoms
    atoms.info = info
    temps = np.linspace(2.0, 100.0, 50)
    rows = []

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    # reference: xTB modes, LF couplings
    modes_ref, t_hess_ref = timed(lambda: normal_modes(atoms, XTBCalculator(), delta=0.005,
                                                       imaginary="ignore"))
    modes_ref = real_modes(modes_ref)
    lf = LigandFieldCalculator(charge=info.get("charge"), multiplicity=info.get("multiplicity"),
                               donors=[int(i) for i in info["donor_indices"]])
    c_ref, t_c_ref = timed(lambda: zfs_couplings(modes_ref, lf))
    (tau_ref, _), t_tau_ref = timed(lambda: relaxation_times(c_ref, 1.5, temps))
    u_ref = fit_arrhenius(temps[-16:], tau_ref[-16:])["U_eff"]
    rows.append(("reference (xTB + LF)", t_hess_ref, t_c_ref, t_tau_ref, u_ref, None))
    # ML Hessian (energy committee) for the speed ratio
    energy = ModelCalculator(camp / "models" / "energy" / "model.npz")
    modes_ml, t_hess_ml = timed(lambda: normal_modes(atoms, energy, delta=0.005,
                                                     imaginary="ignore"))
    single = ModelCalculator(camp / "models" / "energy" / "model.npz")
    modes_single, t_hess_single = timed(lambda: normal_modes(
        atoms, single, delta=0.005, imaginary="ignore", batch=False))
    h_diff = (np.abs(modes_ml.hessian - modes_single.hessian).max()
              / np.abs(modes_single.hessian).max())
    n_imag = int(np.sum(modes_ml.frequencies_cm1 <= 0))
    top = c_ref.strongest(10)
    for name in [m for m in args.tensor_models.split(",") if m]:
        ten = ModelCalculator(camp / "models" / name / "model.npz")
        c_ml, t_c_ml = timed(lambda: zfs_couplings(modes_ref, ten))   # the same modes
        (tau_ml, _), t_tau_ml = timed(lambda: relaxation_times(c_ml, 1.5, temps))
        u_ml = fit_arrhenius(temps[-16:], tau_ml[-16:])["U_eff"]
        rel = np.abs(c_ml.norms[top] - c_ref.norms[top]) / c_ref.norms[top]
        rows.append((f"ML: energy committee + {name}", t_hess_ml, t_c_ml, t_tau_ml, u_ml, rel))
    print(f"[Co(pdms)2]2-, {modes_ref.n_modes} real modes (xTB); the energy committee's "
          f"Hessian has {n_imag} imaginary modes\n")
    print(f"{'path':<34} {'Hessian s':>9} {'couplings s':>11} {'tau(50 T) s':>11} "
          f"{'U_eff cm-1':>10} {'coupling err, top 10':>22}")
    for name, th, tc, tt, u, rel in rows:
        err = "-" if rel is None else f"median {np.median(rel):.0%}, max {np.max(rel):.0%}"
        print(f"{name:<34} {th:>9.1f} {tc:>11.1f} {tt:>11.2f} {u:>10.1f} {err:>22}")
    ref = rows[0]
    for name, th, tc, *_ in rows[1:]:
        print(f"speed-up of {name}: Hessian {ref[1] / th:.1f}x, couplings {ref[2] / tc:.1f}x")
    print(f"ML Hessian: batched {t_hess_ml:.2f} s, per displacement {t_hess_single:.2f} s "
          f"({t_hess_single / t_hess_ml:.1f}x); xTB / batched ML {t_hess_ref / t_hess_ml:.1f}x, "
          f"xTB / per-displacement ML {t_hess_ref / t_hess_single:.1f}x; max |H_batched - "
          f"H_single| / max |H| = {h_diff:.1e}")


if __name__ == "__main__":
    main()
