"""Efficiency of the ligand GA (issue 19) against random search and VAE LP sampling.

At equal evaluation budgets (every arm's run is one search at the largest budget; the smaller
budgets are its prefixes) and several seeds: the best value found by the GA with static genes
(with and without the random-forest pre-screen), the GA with dynamic (SELFIES/Graph-GA) genes,
random sampling of the same library and LP sampling of a VAE around the best individuals so far
(the shipped GAUSS-II model ``gauss-ii-qm9`` by default; ``--vae-model library`` trains one on
the library, as the first version of this benchmark did).  All arms of a seed start from the
same generation 0.  The GA arms use the default diversity settings (``diversity:`` of
``molmag ga``); ``ga-static-plain`` is the GA without any of them (the first issue-19 version),
with the pre-screen.  Reported:

* best value after each budget, per arm (median over seeds, and per seed);
* the evaluations each arm needs to reach random search's best at the largest budget (per
  seed; '-' = not reached), and the speed-up budget / median of those (a seed not reached
  counts as more than the budget; the issue's target: >= 5x; Frangoulis et al. 2025: up to
  20x);
* the evaluations each arm needs to reach the top 1 % of the library's objective
  distribution (its 1 % quantile, estimated from ``--sample`` random library individuals
  drawn independently of the arms; they share the dataset, so cost nothing twice);
* the final population's diversity (mean Tanimoto distance) and duplicate share (members
  whose value repeats another's);
* the pre-screen's saving: evaluations to that target without / with the pre-screen.

Objectives (``--objective``):

``co-unrelaxed``  D of tetrahedral Co(II)L2L'2 (ligand-field engine) on the builder's
                  UNRELAXED start geometry: a real molmag engine at ~0.1 s per evaluation,
                  cheap enough for budgets of 500 and several seeds; much cruder than the
                  relaxed oracle (the geometry is an ideal tetrahedron, only the donor types,
                  Co-donor distances and ligand orientation differ).
``dy-relaxed``    Delta E01 of GFN2-xTB-relaxed Dy(H2O)5L2 (crystal-field engine): the
                  objective of ``molmag ga``; 10-60 s per evaluation on one core.
``co-relaxed``    D of GFN2-xTB-relaxed Co(II)L2L'2.
``dy-unrelaxed``  Delta E01 on the unrelaxed build (takes only ~5 distinct values: a check).

Every run is resumable (ga-state.json per arm and seed, one shared evaluations.db).

Ablations: ``--variant NAME=JSON`` adds a static-gene GA arm with those settings over the
defaults (``--variant 'crowd={"diversity": {"niching": "crowding"}}'``; repeatable), and
``--direct`` (unrelaxed objectives only) computes each value in-process with the same builder
and labeller functions as the pipeline (``direct-values.json`` caches them) instead of
through the labelling pipeline and its dataset: the same numbers, several times faster.

    python benchmarks/ga.py --objective co-unrelaxed --budgets 100 200 500 --seeds 0 1 2
    python benchmarks/ga.py --objective dy-relaxed --budgets 24 48 --seeds 0 --arms ga-static random
    python benchmarks/ga.py --direct --seeds 0 1 2 3 4 5 6 7 --arms ga-static-plain random \
        --variant 'imm50={"diversity": {"niching": "none", "immigrants": 0.5}}'
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

OBJ = {"co-unrelaxed": ("Co", "D", False), "co-relaxed": ("Co", "D", True),
       "dy-relaxed": ("Dy", "dE01", True), "dy-unrelaxed": ("Dy", "dE01", False)}
ARMS = ("ga-static", "ga-static-noscreen", "ga-static-plain", "ga-dynamic", "random", "vae")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objective", choices=list(OBJ), default="co-unrelaxed")
    ap.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 500])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--max-heavy-atoms", type=int, default=8)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--offspring", type=int, default=20)
    ap.add_argument("--vae-model", default="gauss-ii-qm9",
                    help="the VAE arm's model: a shipped one (gauss-ii-qm9, the default), a "
                         "model file, or 'library': one trained on the library (--vae-epochs)")
    ap.add_argument("--vae-epochs", type=int, default=40)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sample", type=int, default=1000,
                    help="random library individuals for the top-p %% quantiles (0: none)")
    ap.add_argument("--top", type=float, nargs="+", default=[1.0, 0.5, 0.2],
                    help="p of the top-p %% targets (percent of the library sample)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                    help="an extra static-gene GA arm with these GAConfig settings")
    ap.add_argument("--direct", action="store_true",
                    help="unrelaxed objectives: values computed in-process, no dataset")
    ap.add_argument("--out", default="bench-ga")
    args = ap.parse_args()
    variants = {}
    for v in args.variant:
        name, _, js = v.partition("=")
        variants[name] = json.loads(js)
    if args.direct and OBJ[args.objective][2]:
        ap.error("--direct is for the unrelaxed objectives")
    arms = list(args.arms) + list(variants)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch

    torch.set_num_threads(1)
    from molmag.screening.config import GAConfig
    from molmag.screening.genes import load_library
    from molmag.screening.loop import Search, best_curve, evaluations_to_reach

    metal, objective, relax = OBJ[args.objective]
    out = Path(args.out) / args.objective
    out.mkdir(parents=True, exist_ok=True)
    budget = max(args.budgets)
    t0 = time.perf_counter()
    library = load_library("default", args.max_heavy_atoms)
    print(f"library: {len(library)} ligands (<= {args.max_heavy_atoms} heavy atoms), "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    dataset = out / "evaluations.db"

    def cfg_for(arm: str, seed: int, vae_model: str | None = None,
                n: int = budget) -> GAConfig:
        from molmag.screening.config import DiversitySettings

        base = dict(
            metal=metal, objective=objective, relax=relax, workers=args.workers,
            max_heavy_atoms=args.max_heavy_atoms, population=args.population,
            offspring=args.offspring, budget=n, seed=seed,
            genes="dynamic" if arm == "ga-dynamic" else "static",
            prescreen={"enabled": arm != "ga-static-noscreen"},
            diversity=(DiversitySettings.off() if arm == "ga-static-plain"
                       else DiversitySettings()).model_dump(),
            vae={"model": vae_model if arm == "vae" else None, "max_epochs": args.vae_epochs})
        return GAConfig.model_validate(_merge(base, variants.get(arm, {})))

    direct = _DirectValues(out / "direct-values.json") if args.direct else None

    def search(cfg: GAConfig, where: Path) -> Search:
        if direct is None:
            return Search(cfg, where, library=library, dataset=dataset, log=lambda m: None)

        class Direct(Search):
            def _evaluate(self, keys):
                for k in keys:
                    v, why = direct(self.obj, k)
                    self.outcomes[k] = {"value": v, "reason": why}
                direct.save()

        return Direct(cfg, where, library=library, log=lambda m: None)

    tops: dict[float, float] = {}
    if args.sample:
        t1 = time.perf_counter()
        s = search(cfg_for("random", 1_000_003, n=args.sample), out / "sample")
        try:
            st = s.run_random()
        finally:
            s.evaluator.close()
        sv = np.array([v for v in (s.outcomes.get(k, {}).get("value") for k in st.evaluated)
                       if v is not None])
        desc = []
        for pc in args.top:
            q = float(np.quantile(sv, 1 - pc / 100 if s.obj.sense > 0 else pc / 100))
            tops[pc] = q
            share = float(np.mean(s.obj.sense * sv >= s.obj.sense * q - 1e-9))
            desc.append(f"top {pc:g} %: {q:.3f} (reached by {100 * share:.1f} %)")
        print(f"library sample: {len(st.evaluated)} random individuals ({len(sv)} valid); "
              + "; ".join(desc) + f"; best {sv.min() if s.obj.sense < 0 else sv.max():.3f}; "
              f"{time.perf_counter() - t1:.0f} s", flush=True)

    vae_model = None if args.vae_model == "library" else args.vae_model
    if "vae" in args.arms and vae_model is None:
        s = Search(cfg_for("vae", 0), out / "vae-model", library=library, dataset=dataset,
                   log=lambda m: print("  " + m, flush=True))
        s.vae_model()
        vae_model = str((out / "vae-model" / "vae.npz").resolve())

    curves: dict[tuple[str, int], list] = {}
    seconds: dict[tuple[str, int], float] = {}
    values: dict[tuple[str, int], list] = {}
    final: dict[tuple[str, int], dict] = {}
    for seed in args.seeds:
        for arm in arms:
            t1 = time.perf_counter()
            s = search(cfg_for(arm, seed, vae_model), out / f"{arm}-s{seed}")
            try:
                st = {"random": s.run_random, "vae": s.run_vae}.get(arm, s.run_ga)()
            finally:
                s.evaluator.close()
            curves[(arm, seed)] = best_curve(st, s.outcomes, s.obj)
            values[(arm, seed)] = [s.outcomes.get(k, {}).get("value") for k in st.evaluated]
            seconds[(arm, seed)] = time.perf_counter() - t1
            final[(arm, seed)] = st.history[-1] if st.history else {}
            c = curves[(arm, seed)]
            print(f"seed {seed} {arm:>18}: {len(c)} evaluations, best {c[-1] if c else None} "
                  f"({seconds[(arm, seed)]:.0f} s){' ' + st.note if st.note else ''}",
                  flush=True)
    obj = s.obj

    def at(c, n):
        return c[min(n, len(c)) - 1] if c else None

    def top10(v, n):
        """Mean of the 10 best values among the first n evaluations (the GA's population
        quality, which the single best does not show)."""
        ok = sorted((x for x in v[:n] if x is not None), key=lambda x: -obj.sense * x)[:10]
        return float(np.mean(ok)) if ok else None

    def med_reach(reach):
        """Median evaluations to a target over seeds, a seed not reached counting as more
        than the budget (None then if that is the median)."""
        m = float(np.median([budget + 1 if r is None else r for r in reach]))
        return None if m > budget else m

    rows, per_seed = [], []
    for arm in arms:
        bests = {n: [at(curves[(arm, sd)], n) for sd in args.seeds] for n in args.budgets}
        reach = []
        reach_top: dict[float, list] = {pc: [] for pc in tops}
        for sd in args.seeds:
            target = at(curves.get(("random", sd), []), budget)
            reach.append(evaluations_to_reach(curves[(arm, sd)], target, obj))
            for pc, q in tops.items():
                reach_top[pc].append(evaluations_to_reach(curves[(arm, sd)], q, obj))
            per_seed.append({"arm": arm, "seed": sd, **{f"best@{n}": at(curves[(arm, sd)], n)
                                                        for n in args.budgets},
                             "reach_random_best": reach[-1],
                             **{f"reach_top{pc:g}": r[-1] for pc, r in reach_top.items()},
                             "evaluations": len(curves[(arm, sd)]),
                             "diversity": final[(arm, sd)].get("diversity"),
                             "duplicate_share": final[(arm, sd)].get("duplicate_share"),
                             "seconds": seconds[(arm, sd)]})
        rows.append({"arm": arm, **{f"best@{n}": _med(bests[n]) for n in args.budgets},
                     "top10@max": _med([top10(values[(arm, sd)], budget) for sd in args.seeds]),
                     "reach": reach, "reach_median": med_reach(reach),
                     "reached": f"{sum(r is not None for r in reach)}/{len(reach)}",
                     "reach_top": {f"{pc:g}": r for pc, r in reach_top.items()},
                     "reach_top_median": {f"{pc:g}": med_reach(r)
                                          for pc, r in reach_top.items()},
                     "diversity": _med([final[(arm, sd)].get("diversity") for sd in args.seeds]),
                     "duplicate_share": _med([final[(arm, sd)].get("duplicate_share")
                                              for sd in args.seeds])})

    unit = "cm-1"
    print(f"\n{args.objective}: best {objective} ({unit}, "
          f"{'max' if obj.sense > 0 else 'min'}imised), median over seeds {args.seeds}; "
          f"library {len(library)}; population {args.population}, offspring {args.offspring}")
    head = "| arm | " + " | ".join(f"best @{n}" for n in args.budgets) + \
        f" | mean of 10 best @{budget} | evaluations to reach random's best @{budget} (per seed)" \
        f" | speed-up {budget}/median | diversity / duplicate share @end |"
    print(head)
    print("|" + "---|" * (len(args.budgets) + 5))

    def seeds_str(xs):
        return ", ".join("-" if x is None else str(x) for x in xs)

    for r in rows:
        sp = (f"{budget / r['reach_median']:.1f}x" if r["reach_median"] else "< 1x") \
            if r["arm"] != "random" else "-"   # random: where it happened to find its own best
        print(f"| {r['arm']} | " + " | ".join(_f(r[f'best@{n}']) for n in args.budgets) +
              f" | {_f(r['top10@max'])} | {seeds_str(r['reach'])} | {sp} | "
              f"{_f(r['diversity'], 2)} / {_f(r['duplicate_share'], 2)} |")
    rnd = [at(curves[("random", sd)], budget) for sd in args.seeds] if "random" in args.arms \
        else []
    if rnd:
        print(f"random search's best @{budget} per seed: {', '.join(_f(v) for v in rnd)}")
    if tops:
        rel = ">=" if obj.sense > 0 else "<="
        print("\nevaluations to the top p % of the library sample (per seed; median, a seed "
              "not reached counting as more than the budget):")
        print("| arm | " + " | ".join(f"top {pc:g} % ({objective} {rel} {q:.2f})"
                                     for pc, q in tops.items()) + " |")
        print("|---|" + "---|" * len(tops))
        for r in rows:
            print(f"| {r['arm']} | " + " | ".join(
                f"{seeds_str(r['reach_top'][f'{pc:g}'])} "
                f"({_f(r['reach_top_median'][f'{pc:g}'], 0)})" for pc in tops) + " |")
    d = {r["arm"]: r for r in rows}
    if "ga-static" in d and "ga-static-noscreen" in d and d["ga-static"]["reach_median"] and \
            d["ga-static-noscreen"]["reach_median"]:
        print(f"pre-screen saving (static genes): {d['ga-static-noscreen']['reach_median']:.0f} / "
              f"{d['ga-static']['reach_median']:.0f} = "
              f"{d['ga-static-noscreen']['reach_median'] / d['ga-static']['reach_median']:.2f}x "
              "fewer evaluations to random's best")
    print(f"total {time.perf_counter() - t0:.0f} s")
    (out / "benchmark.json").write_text(json.dumps(
        {"objective": args.objective, "budgets": args.budgets, "seeds": args.seeds,
         "rows": rows, "per_seed": per_seed, "library": len(library),
         "top": {f"{pc:g}": q for pc, q in tops.items()},
         "sample": args.sample,
         "population": args.population, "offspring": args.offspring,
         "curves": {f"{a}:{s}": c for (a, s), c in curves.items()}}, indent=1) + "\n")


def _merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` merged in, nested dictionaries key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


class _DirectValues:
    """Objective values of unrelaxed builds computed in-process with the labelling
    pipeline's own builder and labeller functions (cached in a JSON file)."""

    def __init__(self, path: Path):
        self.path = path
        self.values: dict = json.loads(path.read_text()) if path.is_file() else {}
        self._new = 0

    def __call__(self, obj, key: str) -> tuple[float | None, str | None]:
        if key not in self.values:
            from molmag.chem.builders import build
            from molmag.labelling.labellers import label_crystal_field, label_ligand_field

            try:
                a = build(obj.builder, ligand=key, relax=False)
            except Exception as exc:  # noqa: BLE001 - recorded as the pipeline does
                self.values[key] = [None, f"build: {exc}"]
            else:
                name, opts = next(iter(obj.labels.items()))
                fn = label_ligand_field if name == "ligand_field" else label_crystal_field
                try:
                    labels, _ = fn(a, opts, {}, 0, a.info["donor_indices"])
                    self.values[key] = [obj.value(labels), None]
                except Exception as exc:  # noqa: BLE001
                    self.values[key] = [None, f"{name}: {exc}"]
            self._new += 1
        v, why = self.values[key]
        return v, why

    def save(self) -> None:
        if self._new:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.values))
            tmp.replace(self.path)
            self._new = 0


def _med(v):
    v = [x for x in v if x is not None]
    return float(np.median(v)) if v else None


def _f(v, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


if __name__ == "__main__":
    main()
