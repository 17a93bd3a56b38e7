"""Accuracy, fit time and throughput of the linear SNAP energy model and of the Kramers-doublet
and crystal-field ridges.

1. [Co(pdms)2]2- energies and forces (:class:`molmag.models.snap_energy.SNAPEnergyRidge`) on a
   labelled dataset (``molmag label`` with the co-pdms template: 1501 rows = relaxed structure
   + 3 x 500 displaced ones, GFN2-xTB energy and forces).  Rows of ``--exclude-group``
   (default md1200, the 1200 reference MD configurations when the dataset has them) are left
   out of the split and, if present, predicted as an extra test set.  Random split
   ``--train/--val/--test`` (default 900/100/300); SNAP species Co S O N C H, rcutfac 3.1 Å
   (the paper's energy model), 2J = 8.  For every ``--force-weights`` value (0 = energies
   only): RMSE of the energy (meV/atom) and of the force components (eV/Å) on the test set,
   fit time (descriptors and their derivatives included) and predictions/s (energy + forces,
   and energy only); the test RMSE also per displacement group (tag "group").

2. Dy(H2O)5L2 (``--ligands``, default OPMe3 and methoxide): the unrelaxed builder template
   (``--relax`` relaxes it with GFN2-xTB first), ``--n-dy`` structures with every coordinate
   displaced uniformly by +-``--delta`` Å, labelled by molmag's crystal-field engine (REC
   charges; donor types from the undisplaced structure).  Split 60/20/20 %.  For
   :class:`~molmag.models.invariant_ridge.KDGapRidge`: RMSE of the 7 gaps vs their std; for
   :class:`~molmag.models.cf_ridge.CFRidge`: RMSE of the spherical components A^k (k = 2, 4,
   6) vs their std, and the RMSE of the gaps computed by the crystal-field engine from the
   predicted parameters.  SNAP species of the complex, rcutfac 3.5 Å, 2J = 6, neighbour
   weights H 0.3, C 0.6, O/P 0.8, Dy 1.

    python benchmarks/energy_cf_models.py [--db /tmp/lab/full.db] [--force-weights 0,0.1]

Prints tables (and nothing else is written).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def _table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    cells = [[str(h) for h in header]] + [[x if isinstance(x, str) else f"{x:.4g}" for x in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------------------------
# 1. SNAP energy model on [Co(pdms)2]2-
# ------------------------------------------------------------------------------------------
def energy_benchmark(args) -> None:
    from molmag.descriptors.bispectrum import SNAPDescriptor, SNAPSettings
    from molmag.io.dataset import Dataset
    from molmag.models.snap_energy import SNAPEnergyRidge

    if not Path(args.db).exists():
        print(f"\n[energy] {args.db} not found: skipped")
        return
    recs = [r for r in Dataset(args.db).select()
            if "energy" in r.labels and "forces" in r.labels]
    extra = [r for r in recs if r.tags.get("group") == args.exclude_group]
    recs = [r for r in recs if r.tags.get("group") != args.exclude_group]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(recs))
    n_tr, n_va, n_te = args.train, args.val, args.test
    if n_tr + n_va + n_te > len(recs):
        raise SystemExit(f"{len(recs)} rows, asked for {n_tr}+{n_va}+{n_te}")
    sets = {"train": order[:n_tr], "val": order[n_tr:n_tr + n_va],
            "test": order[n_tr + n_va:n_tr + n_va + n_te]}

    def pick(idx):
        frames = [recs[i].atoms for i in idx]
        return frames, {"energy": np.array([recs[i].labels["energy"] for i in idx]),
                        "forces": [np.asarray(recs[i].labels["forces"]) for i in idx]}

    tr, va, te = (pick(sets[k]) for k in ("train", "val", "test"))
    te_groups = np.array([str(recs[i].tags.get("group")) for i in sets["test"]])
    ex = ([r.atoms for r in extra],
          {"energy": np.array([r.labels["energy"] for r in extra]),
           "forces": [np.asarray(r.labels["forces"]) for r in extra]}) if extra else None
    n_at = len(te[0][0])
    print(f"\n[energy] {args.db}: {len(recs)} rows ({n_tr} train / {n_va} val / {n_te} test, "
          f"seed {args.seed}), {n_at} atoms; test energy std "
          f"{1e3 * np.std(te[1]['energy']) / n_at:.1f} meV/atom, force std "
          f"{np.std(np.concatenate([f.ravel() for f in te[1]['forces']])):.3f} eV/Å")
    settings = SNAPSettings(species=("Co", "S", "O", "N", "C", "H"), rcutfac=3.1, twojmax=8)
    rows = []
    for fw in [float(x) for x in args.force_weights.split(",")]:
        with SNAPDescriptor(settings) as d:
            t0 = time.perf_counter()
            targets = dict(tr[1]) if fw > 0 else {"energy": tr[1]["energy"], "forces": None}
            m = SNAPEnergyRidge(d, force_weight=fw).fit(tr[0], targets, va[0], va[1],
                                                        log=print)
            t_fit = time.perf_counter() - t0
            for name, (frames, y) in (("test", te), (args.exclude_group, ex)):
                if frames is None or not len(frames):
                    continue
                t0 = time.perf_counter()
                p = m.predict(frames)
                t_pred = time.perf_counter() - t0
                t0 = time.perf_counter()
                m.predict(frames[:100], forces=False)
                t_e = time.perf_counter() - t0
                n = np.array([len(a) for a in frames])
                e_rmse = _rmse(p["energy"] / n, y["energy"] / n) * 1e3
                f_rmse = _rmse(np.concatenate([f.ravel() for f in p["forces"]]),
                               np.concatenate([f.ravel() for f in y["forces"]]))
                rows.append([f"{fw:g}", name, len(frames), e_rmse, f_rmse, m.fit_.lam,
                             t_fit, len(frames) / t_pred, min(100, len(frames)) / t_e])
                if name != "test":
                    continue
                for g in sorted(set(te_groups)):
                    sel = np.flatnonzero(te_groups == g)
                    rows.append([f"{fw:g}", f"test:{g}", len(sel),
                                 _rmse(p["energy"][sel] / n[sel], y["energy"][sel] / n[sel]) * 1e3,
                                 _rmse(np.concatenate([p["forces"][i].ravel() for i in sel]),
                                       np.concatenate([y["forces"][i].ravel() for i in sel])),
                                 "", "", "", ""])
    _table("SNAP energy ridge, [Co(pdms)2]2- (GFN2-xTB)",
           ["force_weight (Å)", "set", "n", "E RMSE (meV/atom)", "F RMSE (eV/Å)", "lambda",
            "fit (s)", "pred E+F (1/s)", "pred E (1/s)"], rows)


# ------------------------------------------------------------------------------------------
# 2. KD-gap and CF ridges on Dy(H2O)5L2
# ------------------------------------------------------------------------------------------
def dy_data(ligand: str, n: int, delta: float, relax: bool, seed: int):
    from molmag.chem.builders import build
    from molmag.physics.crystal_field import (
        cf_parameter_set,
        crystal_field_batch,
        values_from_vector,
    )

    base = build("dy-h2o5l2", ligand=ligand, relax=relax)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.uniform(-delta, delta, a.positions.shape)
        frames.append(a)
    levels = crystal_field_batch([base] + frames, metal_index=base.info.get("metal_index", 0),
                                 donors=base.info["donor_indices"])
    kd = np.asarray(levels.kd_energies)[1:]
    params = np.asarray(levels.parameters)[1:]
    labels = [cf_parameter_set(values_from_vector(p), "stevens") for p in params]
    return base, frames, kd, params, labels


def dy_benchmark(args) -> None:
    from molmag.descriptors.bispectrum import SNAPDescriptor, SNAPSettings
    from molmag.models.cf_ridge import CFRidge
    from molmag.models.invariant_ridge import KDGapRidge
    from molmag.physics.cf_spherical import spherical_from_stevens

    rows_kd, rows_cf = [], []
    for ligand in [x for x in args.ligands.split(",") if x]:
        t0 = time.perf_counter()
        base, frames, kd, params, labels = dy_data(ligand, args.n_dy, args.delta, args.relax,
                                                   args.seed)
        t_label = time.perf_counter() - t0
        n = len(frames)
        n_tr, n_va = int(0.6 * n), int(0.2 * n)
        tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, n)
        species = tuple(dict.fromkeys(base.get_chemical_symbols()))
        weights = {s: {"H": 0.3, "C": 0.6, "O": 0.8, "P": 0.8}.get(s, 1.0) for s in species}
        settings = SNAPSettings(species=species, rcutfac=3.5, twojmax=6, weights=weights)
        name = f"{base.get_chemical_formula()} L={ligand}"
        print(f"\n[Dy] {name}: {n} structures (+-{args.delta} Å), labels {t_label:.1f} s; "
              f"mean levels {np.round(kd.mean(axis=0)).astype(int).tolist()} cm-1")
        with SNAPDescriptor(settings) as d:
            t0 = time.perf_counter()
            km = KDGapRidge(d).fit(frames[tr], {"kd_energies": kd[tr]},
                                   frames[va], {"kd_energies": kd[va]})
            t_fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            p = km.predict(frames[te])["kd_energies"]
            rate = len(p) / (time.perf_counter() - t0)
            err = np.sqrt(np.mean((p - kd[te]) ** 2, axis=0))[1:]
            std = np.std(kd[te], axis=0)[1:]
            rows_kd.append([name, "KDGapRidge", float(np.mean(err)), float(np.mean(std)),
                            float(np.mean(err / std)), err[0], std[0], t_fit, rate])

            t0 = time.perf_counter()
            cm = CFRidge(d).fit(frames[tr], {"cf_parameters": labels[tr]},
                                frames[va], {"cf_parameters": labels[va]})
            t_fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            a_pred = cm.predict_spherical(frames[te])
            rate = len(a_pred) / (time.perf_counter() - t0)
            a_true = spherical_from_stevens(params[te])
            rel = []
            for sl in (slice(0, 5), slice(5, 14), slice(14, 27)):
                rel.append(_rmse(a_pred[:, sl], a_true[:, sl])
                           / float(np.mean(np.std(a_true[:, sl], axis=0))))
            pk = cm.predict_kd(frames[te])
            err = np.sqrt(np.mean((pk - kd[te]) ** 2, axis=0))[1:]
            rows_kd.append([name, "CFRidge -> CF engine", float(np.mean(err)),
                            float(np.mean(std)), float(np.mean(err / std)), err[0], std[0],
                            t_fit, rate])
            rows_cf.append([name, *rel, _rmse(a_pred[:, :5], a_true[:, :5]),
                            float(np.mean(np.std(a_true[:, :5], axis=0))), t_fit, rate])
    _table("Kramers-doublet gaps (cm-1), test set",
           ["structure", "model", "mean RMSE", "mean std", "mean RMSE/std", "E1 RMSE", "E1 std",
            "fit (s)", "pred (1/s)"], rows_kd)
    _table("Crystal-field spherical components A^k (cm-1), test set",
           ["structure", "RMSE/std k=2", "k=4", "k=6", "RMSE A^2", "std A^2", "fit (s)",
            "pred (1/s)"], rows_cf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/lab/full.db")
    ap.add_argument("--exclude-group", default="md1200")
    ap.add_argument("--train", type=int, default=900)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--force-weights", default="0,0.1")
    ap.add_argument("--ligands", default="O=P(C)(C)C,[O-]C")
    ap.add_argument("--n-dy", type=int, default=300)
    ap.add_argument("--delta", type=float, default=0.05, help="Å, uniform per coordinate")
    ap.add_argument("--relax", action="store_true", help="relax the Dy template with xTB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-energy", action="store_true")
    ap.add_argument("--skip-dy", action="store_true")
    args = ap.parse_args()
    if not args.skip_energy:
        energy_benchmark(args)
    if not args.skip_dy:
        dy_benchmark(args)


if __name__ == "__main__":
    main()
