"""MACE on the [Co(pdms)2]2- MD reference data of ``benchmarks/potentials.py`` (issue 17, item 1).

MACE (``mace-torch``) is the field's standard equivariant potential; molmag does not depend on
it (it pins e3nn 0.4.4 and its own training stack), so this script runs in any Python
environment that has ``mace-torch`` and ASE -- molmag itself is not imported:

    python -m venv mace-env && mace-env/bin/pip install -c constraints.txt mace-torch
    python benchmarks/potentials.py data --out DIR             # the xTB MD data (molmag's env)
    mace-env/bin/python benchmarks/mace_potential.py --data DIR [--epochs 100]
        [--hidden "32x0e + 32x1o"] [--r-max 5.0] [--members 1] [--dtype float64]
        [--threads 2] [--json]

It takes the frames of ``DIR/{train100,train250,test100}.extxyz`` and splits them exactly as
``potentials.py compare`` does (training runs permuted with seed 0, the first max(10, n/10)
for validation, ``test100`` the held-out test), trains ``--members`` models with
``mace_run_train`` (seeds 0, 1, ...; E0s the training average; energy and forces weights
MACE's defaults; ``--dtype`` float64 by default), and prints the same columns as
``potentials.py compare``: force and energy RMSE on the held-out 100 K run, the coverage of
the committee's force spread (with two or more members; raw spread x 1.96, uncalibrated), the
training time, and ASE Langevin MD steps/s (53 atoms, 0.5 fs, 100 K) with the MACE
calculator.  Everything is written under ``DIR/mace/`` (training runs resume from MACE's own
checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RUNS = {"train100": "train", "train250": "train", "test100": "test"}   # potentials.RUNS order


def split_frames(data: Path, seed: int = 0):
    """(train, val, test) lists of ASE frames with their xTB energies/forces, as
    ``potentials.load_split`` makes them."""
    import ase.io

    pairs = []
    for name, split in RUNS.items():
        for f in ase.io.iread(data / f"{name}.extxyz"):
            pairs.append((split, f))
    train = [p[1] for p in pairs if p[0] == "train"]
    test = [p[1] for p in pairs if p[0] == "test"]
    rng = np.random.default_rng(seed)
    train = [train[i] for i in rng.permutation(len(train))]
    n_val = max(10, len(train) // 10)
    return train[n_val:], train[:n_val], test


def write_xyz(path: Path, frames) -> None:
    """extxyz with the reference labels under REF_energy / REF_forces (MACE's keys)."""
    import ase.io

    out = []
    for f in frames:
        a = f.copy()
        a.info = {"REF_energy": float(f.get_potential_energy())}
        a.arrays["REF_forces"] = np.asarray(f.get_forces(), float)
        a.calc = None
        out.append(a)
    ase.io.write(path, out, format="extxyz")


def train_member(work: Path, seed: int, args, log) -> Path:
    """``mace_run_train`` for one member; returns the model file (resumes a killed run)."""
    name = f"copdms_s{seed}"
    model = work / f"{name}.model"
    if model.exists():
        return model
    cmd = ["mace_run_train", f"--name={name}", f"--seed={seed}",
           f"--train_file={work / 'train.xyz'}", f"--valid_file={work / 'valid.xyz'}",
           "--energy_key=REF_energy", "--forces_key=REF_forces", "--E0s=average",
           "--model=MACE", f"--hidden_irreps={args.hidden}", f"--r_max={args.r_max}",
           "--batch_size=10", "--valid_batch_size=20", f"--max_num_epochs={args.epochs}",
           f"--default_dtype={args.dtype}", "--device=cpu", "--restart_latest",
           f"--model_dir={work}", f"--log_dir={work / 'logs'}",
           f"--checkpoints_dir={work / 'checkpoints'}", f"--results_dir={work / 'results'}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    exe = Path(sys.executable).parent / "mace_run_train"
    if exe.exists():
        cmd[0] = str(exe)
    log(" ".join(cmd))
    with open(work / f"{name}.log", "a") as fh:
        subprocess.run(cmd, check=True, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT)
    return model


def md_steps_per_s(calc, atoms, n_steps: int = 100) -> float:
    """ASE Langevin steps/s (0.5 fs, 100 K, friction 0.01/fs), after 5 warm-up steps."""
    import ase.units as u
    from ase.md.langevin import Langevin

    a = atoms.copy()
    a.calc = calc
    dyn = Langevin(a, 0.5 * u.fs, temperature_K=100.0, friction=0.01 / u.fs,
                   rng=np.random.default_rng(0), fixcm=False)
    dyn.run(5)
    t = time.perf_counter()
    dyn.run(n_steps)
    return n_steps / (time.perf_counter() - t)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--hidden", default="32x0e + 32x1o")
    ap.add_argument("--r-max", type=float, default=5.0)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--dtype", default="float64", choices=("float32", "float64"),
                    help="training and evaluation precision (MACE recommends float64 for MD)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--md-steps", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(args.threads)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    data = Path(args.data)
    work = data / "mace"
    work.mkdir(parents=True, exist_ok=True)
    train, val, test = split_frames(data)
    for fname, frames in (("train.xyz", train), ("valid.xyz", val), ("test.xyz", test)):
        if not (work / fname).exists():
            write_xyz(work / fname, frames)
    log(f"train {len(train)}, val {len(val)}, test {len(test)}")
    t0 = time.perf_counter()
    models = [train_member(work, s, args, log) for s in range(args.members)]
    t_fit = time.perf_counter() - t0
    calcs = [MACECalculator(model_paths=str(m), device="cpu", default_dtype=args.dtype)
             for m in models]
    ef, sf, ee = [], [], []
    for f in test:
        preds = []
        for c in calcs:
            a = f.copy()
            a.calc = c
            preds.append((a.get_potential_energy(), a.get_forces()))
        fm = np.mean([p[1] for p in preds], axis=0)
        ef.append(np.ravel(fm - f.get_forces()))
        sf.append(np.ravel(np.std([p[1] for p in preds], axis=0)))
        ee.append(np.mean([p[0] for p in preds]) - f.get_potential_energy())
    ef_a, sf_a = np.concatenate(ef), np.concatenate(sf)
    row = {"model": f"mace {args.hidden}, r_max {args.r_max}, {args.epochs} epochs, "
                    f"{args.dtype}",
           "n_train": len(train), "members": len(models),
           "force_rmse": float(np.sqrt(np.mean(ef_a**2))),
           "energy_rmse": float(np.sqrt(np.mean(np.square(ee)))),
           "force_coverage95_raw": (float(np.mean(np.abs(ef_a) <= 1.96 * sf_a))
                                    if len(models) > 1 else None),
           "fit_s_this_run": t_fit,
           "md_steps_per_s": md_steps_per_s(calcs[0], test[0], args.md_steps),
           "torch": torch.__version__}
    if args.json:
        print(json.dumps(row, indent=1))
        return
    print(f"{'model':40s} {'n_train':>7s} {'F RMSE eV/A':>12s} {'E RMSE eV':>10s} "
          f"{'cov95 F':>8s} {'fit s':>7s} {'MD steps/s':>10s}")
    cov = row["force_coverage95_raw"]
    print(f"{row['model']:40s} {row['n_train']:7d} {row['force_rmse']:12.4f} "
          f"{row['energy_rmse']:10.4f} {'-' if cov is None else f'{cov:.3f}':>8s} "
          f"{row['fit_s_this_run']:7.0f} {row['md_steps_per_s']:10.1f}")


if __name__ == "__main__":
    main()
