"""Learning curves of molmag's tensor models on a labelled [Co(pdms)2]2- dataset.

Run:  molmag template label --system co-pdms --out co-pdms.yaml && molmag label co-pdms.yaml
      python benchmarks/models.py --db copdms.db [--sizes 100,300,900]

One fixed test set (300 configurations) and validation set (100, for the ridge lambda); for
each model and training size: RMSE of the D-tensor elements D_ij and of D (cm-1), training time
and prediction throughput (structures/s, descriptors included).  Prints a table.  So far the
covariant bispectrum ridge (Lunghi & Sanvito 2020) and the equivariant spherical-harmonic ridge;
the Gaussian-moment network joins when it lands.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from molmag.descriptors.bispectrum import SNAPSettings
from molmag.io.dataset import Dataset
from molmag.models.tensor_models import TensorCommittee
from molmag.physics.zfs import zfs_from_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="dataset with zfs_tensor labels")
    ap.add_argument("--select", default=None, help="ASE selection of rows")
    ap.add_argument("--sizes", default="100,300,900")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    recs = [r for r in Dataset(args.db).select(args.select) if "zfs_tensor" in r.labels]
    frames = [r.atoms for r in recs]
    tensors = np.stack([r.labels["zfs_tensor"] for r in recs])
    metals = [r.metal_index for r in recs]
    idx = np.random.default_rng(args.seed).permutation(len(recs))
    val, test, pool = idx[:100], idx[100:400], idx[400:]
    species = tuple(dict.fromkeys(a.get_chemical_symbols()[i] for a in frames[:1]
                                  for i in range(len(a))))
    settings = SNAPSettings(species=species, rcutfac=3.5).as_dict()
    d_test = np.array([zfs_from_tensor(t).D for t in tensors[test]])
    print(f"{len(recs)} configurations; test {len(test)}, validation {len(val)}; "
          f"std of D_ij {tensors[test].std(axis=0).mean():.2f} cm-1, std of D "
          f"{d_test.std():.2f} cm-1")
    print(f"{'model':<18} {'n_train':>7} {'RMSE D_ij':>10} {'RMSE D':>8} {'fit s':>7} "
          f"{'pred/s':>7}")

    def sub(ix):
        return [frames[i] for i in ix], tensors[ix], [metals[i] for i in ix]

    for kind in ("covariant-ridge", "equivariant-ridge"):
        for n in (int(x) for x in args.sizes.split(",")):
            if n > len(pool):
                continue
            t0 = time.perf_counter()
            model = TensorCommittee(kind, settings, n_members=1, env_cutoff=3.5)
            model.fit(*sub(pool[:n]), *sub(val))
            t1 = time.perf_counter()
            f, t, m = sub(test)
            p = model.predict(f, m)
            t2 = time.perf_counter()
            rmse_ij = np.sqrt(np.mean((p["zfs_tensor"] - t) ** 2))
            rmse_d = np.sqrt(np.mean((p["zfs_D"] - d_test) ** 2))
            print(f"{kind:<18} {n:>7} {rmse_ij:>10.2f} {rmse_d:>8.2f} {t1 - t0:>7.1f} "
                  f"{len(test) / (t2 - t1):>7.0f}")


if __name__ == "__main__":
    main()
