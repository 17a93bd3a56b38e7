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

Tensor models trained for the job (``--train-sizes``, default 50,100,200,300,1000; empty: no
such rows): training structures made from the relaxed structure and its xTB normal modes,
labelled with the ligand-field engine (the reference), fitted as a committee, then their
couplings on the same modes against the reference's.  Training sets (``--train-sets``):

* ``zp-pairs``: ``zero_point_mode_displacements`` (two random modes at a time, each at +/- its
  zero-point amplitude Q_zp);
* ``wigner-0K``: ``boltzmann_normal_mode_samples`` at 0 K (every mode >= 50 cm-1 at once,
  Gaussian with the zero-point width);
* ``random-0.01``: every Cartesian coordinate uniform within +/- 0.01 A;
* ``campaign``: the quick campaign's protocol at other sizes (uniform within +/- 0.05, 0.1
  and 0.2 A, a third each).

Models (``--train-models``): a kind with optional hyperparameters, ``KIND[:key=value;...]``
(values YAML; ``committee=N`` sets the committee size, default 3), e.g.
``covariant-ridge``, ``covariant-ridge:degree=1``, ``gmnn-tensor:max_epochs=50;committee=1``
(GM-NN with the ``molmag template train`` settings: Gaussian moments r_cut 5 A, hidden
[128, 128], origin at the metal, env_cutoff 3.6 A).  A seeded tenth of each set (at least 5)
is the validation split (ridge lambda, best epoch).  Per row: the coupling-norm error on the
10 strongest reference modes (as above), the error of the coupling tensors
|C_ml - C_ref| / |C_ref| (Frobenius) on the same modes, and the seconds to label and to train.

    python benchmarks/spin_phonon.py --campaign DIR --tensor-models "" --train-sets zp-pairs \
        --train-sizes 50,100,200 --train-models covariant-ridge,covariant-ridge:degree=1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

TRAIN_SETS = ("zp-pairs", "wigner-0K", "random-0.01", "campaign")


def training_structures(name: str, atoms, modes, n: int, seed: int = 0) -> list:
    """``n`` structures of the training set ``name`` (see the module docstring)."""
    from molmag.chem.sampling import (
        boltzmann_normal_mode_samples,
        displacement_sets,
        random_displacements,
        zero_point_mode_displacements,
    )

    if name == "zp-pairs":
        return zero_point_mode_displacements(atoms, modes, n, modes_per_sample=2, seed=seed)
    if name == "wigner-0K":
        return boltzmann_normal_mode_samples(atoms, modes, 0.0, n, seed=seed)
    if name == "random-0.01":
        return random_displacements(atoms, n, 0.01, seed=seed)
    if name == "campaign":
        per = -(-n // 3)
        return displacement_sets(atoms, (0.05, 0.1, 0.2), per, seed=seed)[:n]
    raise ValueError(f"unknown training set {name!r}; choose from {', '.join(TRAIN_SETS)}")


def parse_model(spec: str) -> tuple[str, dict, int]:
    """``KIND[:key=value;...]`` -> (kind, hyperparameters, committee size)."""
    import yaml

    kind, _, rest = spec.partition(":")
    hyper = {}
    for item in filter(None, rest.split(";")):
        k, _, v = item.partition("=")
        hyper[k.strip()] = yaml.safe_load(v)
    committee = int(hyper.pop("committee", 3))
    return kind, hyper, committee


def train_tensor_model(kind: str, hyper: dict, committee: int, frames: list, tensors,
                       seed: int = 0):
    """A committee of ``kind`` fitted on ``frames`` (a seeded tenth, at least 5, validates)."""
    from molmag.models.committee import Committee, default_descriptor_settings

    species = list(dict.fromkeys(frames[0].get_chemical_symbols()))
    settings = default_descriptor_settings(kind, species)
    if kind == "gmnn-tensor":      # the settings of ``molmag template train --model gmnn-tensor``
        from molmag.descriptors.gaussian_moments import GaussianMoments

        settings = GaussianMoments(species, r_cut=5.0).settings()
        hyper = {"origin": "metal", "env_cutoff": 3.6, "hidden": [128, 128], **hyper}
    perm = np.random.default_rng(seed).permutation(len(frames))
    n_val = max(5, len(frames) // 10)
    val, train = perm[:n_val], perm[n_val:]
    model = Committee(kind, settings, n_members=committee, seed=seed, **hyper)
    return model.fit([frames[i] for i in train], {"zfs_tensor": tensors[train]},
                     [frames[i] for i in val], {"zfs_tensor": tensors[val]})


def coupling_errors(c_ml, c_ref, top) -> tuple[np.ndarray, np.ndarray]:
    """Per mode of ``top``: relative error of the coupling norm, and |C_ml - C_ref| / |C_ref|
    of the coupling tensors."""
    ref = c_ref.norms[top]
    rel = np.abs(c_ml.norms[top] - ref) / ref
    ten = np.linalg.norm(c_ml.per_zero_point[top] - c_ref.per_zero_point[top], axis=(1, 2))
    return rel, ten / ref


def trained_rows(atoms, modes, c_ref, lf, sets, sizes, models, seed: int = 0) -> list:
    """(set, n, model, norm errors, tensor errors, label s, train s) for every combination."""
    from molmag.dynamics.spin_phonon import zfs_couplings
    from molmag.models.calculator import ModelCalculator

    top = c_ref.strongest(10)
    rows = []
    for name in sets:
        for n in sizes:
            t0 = time.perf_counter()
            frames = training_structures(name, atoms, modes, n, seed)
            tensors = np.array([np.asarray(lf.get_property("zfs_tensor", a), float)
                                for a in frames])
            t_label = time.perf_counter() - t0
            for spec in models:
                kind, hyper, committee = parse_model(spec)
                t0 = time.perf_counter()
                model = train_tensor_model(kind, hyper, committee, frames, tensors, seed)
                t_train = time.perf_counter() - t0
                c_ml = zfs_couplings(modes, ModelCalculator(model))
                rel, ten = coupling_errors(c_ml, c_ref, top)
                rows.append((name, n, spec, rel, ten, t_label, t_train))
                print(f"  {name:<12} {n:>5} {spec:<36} norm median {np.median(rel):6.1%} "
                      f"max {np.max(rel):6.1%}; tensor median {np.median(ten):6.1%} max "
                      f"{np.max(ten):6.1%}; label {t_label:5.1f} s, train {t_train:6.1f} s",
                      flush=True)
    return rows


def main() -> None:
    import ase
    import ase.io

    from molmag.chem.sampling import normal_modes
    from molmag.chem.xtb import XTBCalculator, relax
    from molmag.dynamics.spin_phonon import real_modes, relaxation_times, zfs_couplings
    from molmag.models.calculator import ModelCalculator
    from molmag.physics.ligand_field import LigandFieldCalculator
    from molmag.physics.relaxation import fit_arrhenius

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", required=True, help="a co-pdms campaign folder")
    ap.add_argument("--tensor-models", default="gmnn,covariant",
                    help="the campaign's tensor models to compare (empty: none)")
    ap.add_argument("--train-sets", default="zp-pairs,wigner-0K",
                    help=f"training sets for the trained arm: {', '.join(TRAIN_SETS)}")
    ap.add_argument("--train-sizes", default="50,100,200,300,1000",
                    help="numbers of training structures (empty: no trained arm)")
    ap.add_argument("--train-models", default="covariant-ridge,covariant-ridge:degree=1",
                    help="KIND[:key=value;...] entries, comma separated")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sets = [x for x in args.train_sets.split(",") if x]
    sizes = [int(x) for x in args.train_sizes.split(",") if x]
    models = [x for x in args.train_models.split(",") if x]
    for name in sets:
        if name not in TRAIN_SETS:
            ap.error(f"unknown training set {name!r}; choose from {', '.join(TRAIN_SETS)}")
    camp = Path(args.campaign)
    atoms = ase.io.read(camp / "start.xyz", index=0, format="extxyz")
    assert isinstance(atoms, ase.Atoms)
    atoms.calc = None
    info = dict(atoms.info)
    atoms = relax(atoms, fmax=0.005, steps=2000).atoms
    atoms.info = info
    temps = np.linspace(2.0, 100.0, 50)
    rows: list[tuple] = []

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
        rel, _ = coupling_errors(c_ml, c_ref, top)
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
    if sizes and sets and models:
        print("\ntensor models trained for the job (LF labels), coupling error on the 10 "
              "strongest reference modes:")
        trained = trained_rows(atoms, modes_ref, c_ref, lf, sets, sizes, models, args.seed)
        print("\n| training set | n | model | norm error median / max | tensor error "
              "median / max | label s | train s |\n|---|---|---|---|---|---|---|")
        for name, n, spec, rel, ten, t_label, t_train in trained:
            print(f"| {name} | {n} | {spec} | {np.median(rel):.1%} / {np.max(rel):.1%} | "
                  f"{np.median(ten):.1%} / {np.max(ten):.1%} | {t_label:.1f} | {t_train:.1f} |")


if __name__ == "__main__":
    main()
