"""Gaussian-moment neural networks (Zaverkin et al. 2022) on a labelled [Co(pdms)2]2- dataset.

Run:  python benchmarks/gmnn.py --db full.db [--select "group!=md1200"] [--sizes 900]
                                [--threads 2] [--models gmnn-tensor,gmnn-energy]

The dataset is what ``molmag label`` writes (``zfs_tensor`` from the ligand-field engine,
``energy``/``forces`` from GFN2-xTB).  Split as in ``benchmarks/models.py``: one fixed
validation set (100, early stopping) and test set (300); training sets from the rest.  For
each model and training size the table gives the test RMSE of the D-tensor elements D_ij and
of D (cm-1; D from :func:`molmag.physics.zfs.zfs_from_tensor`) or of the energy (eV, and
meV/atom) and force components (eV/Å), the training wall time, the epochs run and the
prediction throughput (structures/s, descriptors included; forces included for the energy
model).  Default hyperparameters unless ``--max-epochs`` or ``--hyper key=value`` say
otherwise.
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
import torch

from molmag.io.dataset import Dataset
from molmag.models.gmnn import GMNNEnergy, GMNNTensor
from molmag.physics.zfs import zfs_from_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="dataset with zfs_tensor / energy labels")
    ap.add_argument("--select", default=None, help="ASE selection of rows")
    ap.add_argument("--sizes", default="900")
    ap.add_argument("--models", default="gmnn-tensor,gmnn-energy")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--max-epochs", type=int, default=None, help="override the default")
    ap.add_argument("--hyper", action="append", default=[], help="key=value (Python literal)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-predict", type=int, default=1000,
                    help="structures predicted for the throughput")
    ap.add_argument("--verbose", action="store_true", help="print the per-epoch log")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hyper = {}
    for kv in args.hyper:
        k, v = kv.split("=", 1)
        try:
            hyper[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            hyper[k] = v
    if args.max_epochs is not None:
        hyper["max_epochs"] = args.max_epochs

    recs = [r for r in Dataset(args.db).select(args.select)
            if "zfs_tensor" in r.labels and "energy" in r.labels and "forces" in r.labels]
    frames = [r.atoms for r in recs]
    for a, r in zip(frames, recs):
        a.info["metal_index"] = r.metal_index
    tensors = np.stack([r.labels["zfs_tensor"] for r in recs])
    energies = np.array([float(r.labels["energy"]) for r in recs])
    forces = [np.asarray(r.labels["forces"], dtype=float) for r in recs]
    idx = np.random.default_rng(args.seed).permutation(len(recs))
    val, test, pool = idx[:100], idx[100:400], idx[400:]
    species = sorted({s for a in frames for s in a.get_chemical_symbols()})
    settings = {"species": species}
    d_test = np.array([zfs_from_tensor(t).D for t in tensors[test]])
    f_test = np.concatenate([forces[i] for i in test])
    print(f"{len(recs)} configurations of {frames[0].get_chemical_formula()}; test "
          f"{len(test)}, validation {len(val)}; std of D_ij {tensors[test].std(axis=0).mean():.2f}"
          f" cm-1, of D {d_test.std():.2f} cm-1, of E {energies[test].std():.3f} eV, of F "
          f"{f_test.std():.3f} eV/Å; torch threads {torch.get_num_threads()}")
    print(f"{'model':<12} {'n_train':>7} {'RMSE D_ij':>10} {'RMSE D':>8} {'RMSE E':>9} "
          f"{'meV/atom':>9} {'RMSE F':>8} {'fit s':>7} {'epochs':>6} {'best':>5} {'pred/s':>7}")

    def sub(ix):
        return [frames[i] for i in ix]

    n_pred = min(args.n_predict, len(recs))
    pred_frames = sub(np.resize(test, n_pred))
    for kind in args.models.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            if n > len(pool):
                continue
            tr = pool[:n]
            log = print if args.verbose else None
            t0 = time.perf_counter()
            if kind == "gmnn-tensor":
                model = GMNNTensor(settings, seed=args.seed, **hyper)
                model.fit(sub(tr), {"zfs_tensor": tensors[tr]}, sub(val),
                          {"zfs_tensor": tensors[val]}, log=log)
            elif kind == "gmnn-energy":
                model = GMNNEnergy(settings, seed=args.seed, **hyper)
                model.fit(sub(tr), {"energy": energies[tr], "forces": [forces[i] for i in tr]},
                          sub(val), {"energy": energies[val],
                                     "forces": [forces[i] for i in val]}, log=log)
            else:
                raise SystemExit(f"unknown model {kind!r}")
            t_fit = time.perf_counter() - t0
            p = model.predict(sub(test))
            t1 = time.perf_counter()
            model.predict(pred_frames)
            rate = n_pred / (time.perf_counter() - t1)
            cols = ["", "", "", "", ""]
            if kind == "gmnn-tensor":
                t = p["zfs_tensor"]
                cols[0] = f"{np.sqrt(np.mean((t - tensors[test]) ** 2)):.2f}"
                d = np.array([zfs_from_tensor(x).D for x in t])
                cols[1] = f"{np.sqrt(np.mean((d - d_test) ** 2)):.2f}"
            else:
                err_e = p["energy"] - energies[test]
                cols[2] = f"{np.sqrt(np.mean(err_e ** 2)):.3f}"
                cols[3] = f"{1000 * np.sqrt(np.mean((err_e / len(frames[0])) ** 2)):.2f}"
                err_f = np.concatenate(p["forces"]) - f_test
                cols[4] = f"{np.sqrt(np.mean(err_f ** 2)):.3f}"
            print(f"{kind:<12} {n:>7} {cols[0]:>10} {cols[1]:>8} {cols[2]:>9} {cols[3]:>9} "
                  f"{cols[4]:>8} {t_fit:>7.1f} {len(model.history):>6} "
                  f"{str(model.best_epoch):>5} {rate:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
