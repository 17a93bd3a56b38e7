"""Learning curves, training times and prediction throughput of molmag's models on a labelled
[Co(pdms)2]2- dataset.

Make the dataset (the seed's displacement protocol, 1500 configurations + the relaxed one;
add the 1200 reference configurations of ../shared/data/copdms as a second ``file`` source,
``group: md1200``), then run the benchmark::

    molmag template label --system co-pdms --out co-pdms.yaml   # add the file source
    molmag label co-pdms.yaml
    python benchmarks/models.py --db copdms.db [--sizes 100,300,900] [--committee 1]

One fixed validation set and test set (``--val``, ``--test`` rows; the same for every model
and size; the training sets are nested); for every tensor model and size: RMSE of the
D-tensor elements D_ij and of D (cm-1), RMSE(D_ij)/std(D_ij) of the test set (the std of each
element across the test structures, averaged over the six unique elements), the fit time and
the prediction throughput (structures/s, descriptors included, one committee).  Energy models
(``--energy-kinds``): RMSE of the energy (meV/atom) and of the force components (eV/Å).
Prints a table; results are kept in ``--out`` (a re-run skips finished points).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from molmag.training.config import TrainConfig
from molmag.training.data import labelled_records
from molmag.training.run import learning_curve


def config(kind: str, db: str, select: str | None, n_val: int, n_test: int, n_rows: int,
           committee: int, seed: int, out: Path, hyper: dict) -> TrainConfig:
    return TrainConfig.model_validate({
        "model": {"kind": kind, "committee": committee, "hyper": hyper},
        "data": {"dataset": db, "selection": select, "seed": seed,
                 "split": {"by": "fraction", "val": n_val / n_rows, "test": n_test / n_rows}},
        "output": str(out / kind)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="dataset with zfs_tensor (and energy) labels")
    ap.add_argument("--select", default=None, help="ASE selection of rows")
    ap.add_argument("--sizes", default="100,300,900")
    ap.add_argument("--kinds", default="covariant-ridge,equivariant-ridge,gmnn-tensor")
    ap.add_argument("--energy-kinds", default="snap-energy,gmnn-energy")
    ap.add_argument("--energy-size", type=int, default=900)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--committee", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-models", help="folder for models and results")
    args = ap.parse_args()
    out = Path(args.out)
    sizes = [int(x) for x in args.sizes.split(",")]
    n_rows = len(labelled_records(args.db, "zfs_tensor", args.select))
    rows = []
    for kind in [k for k in args.kinds.split(",") if k]:
        t0 = time.perf_counter()
        cfg = config(kind, args.db, args.select, args.val, args.test, n_rows, args.committee,
                     args.seed, out, {})
        res = learning_curve(cfg, sizes, log=lambda s, k=kind: print(f"  [{k}] {s}",
                                                                     flush=True))
        for n in res["sizes"]:
            r = res["results"][n]
            m = r["metrics"]
            # std of D_ij: per element across the test structures, averaged over the six
            # unique elements (not the spread of all elements pooled together)
            std_ij = sum(c["ref_std"] for c in m["components"].values()) / 6
            rows.append((kind, n, m["D_ij"]["rmse"], m["D"]["rmse"],
                         m["D_ij"]["rmse"] / std_ij, r["fit_seconds"],
                         r["predictions_per_second"]))
        print(f"  [{kind}] {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\n{n_rows} configurations; validation {args.val}, test {args.test}; "
          f"committee of {args.committee}")
    print(f"{'model':<18} {'n_train':>7} {'RMSE D_ij':>10} {'RMSE D':>8} {'/std D_ij':>9} "
          f"{'fit s':>7} {'pred/s':>7}")
    for kind, n, rij, rd, rel, fit, pps in rows:
        print(f"{kind:<18} {n:>7} {rij:>10.3f} {rd:>8.3f} {rel:>9.1%} {fit:>7.1f} {pps:>7.0f}")
    erows = []
    for kind in [k for k in args.energy_kinds.split(",") if k]:
        n_e = len(labelled_records(args.db, "energy", args.select))
        cfg = config(kind, args.db, args.select, args.val, args.test, n_e, args.committee,
                     args.seed, out, {})
        res = learning_curve(cfg, [args.energy_size],
                             log=lambda s, k=kind: print(f"  [{k}] {s}", flush=True))
        r = res["results"][args.energy_size]
        m = r["metrics"]
        erows.append((kind, args.energy_size, m["energy_meV_per_atom"]["rmse"],
                      m.get("forces_eV_per_A", {}).get("rmse", float("nan")),
                      r["fit_seconds"], r["predictions_per_second"]))
    if erows:
        print(f"\n{'energy model':<18} {'n_train':>7} {'RMSE E meV/at':>14} {'RMSE F eV/A':>12} "
              f"{'fit s':>7} {'pred/s':>7}")
        for kind, n, re_, rf, fit, pps in erows:
            print(f"{kind:<18} {n:>7} {re_:>14.3f} {rf:>12.3f} {fit:>7.1f} {pps:>7.0f}")


if __name__ == "__main__":
    main()
