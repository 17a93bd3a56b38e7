r"""The search loop: a (mu + lambda) genetic algorithm over ligand tuples, random search and LP
sampling of the VAE, at equal evaluation budgets, each checkpointed per generation.

GA (Frangoulis et al. 2025, review section 3.6): generation 0 is ``population`` random
individuals of the library; each later generation breeds children (tournament selection of
parents, mutation with probability ``mutation_rate`` else crossover; :mod:`.genes`), keeps
the valid ones never evaluated before, lets the random-forest pre-screen (:mod:`.prescreen`)
pick ``offspring`` of them, evaluates those in one batch through the labelling pipeline
(:mod:`.objectives`) and keeps the best ``population`` of parents and children.  A failed
evaluation has no fitness, is recorded with its reason and is never asked for again.

Diversity (``diversity:``, :class:`.config.DiversitySettings`): a share ``immigrants`` of each
generation's evaluations goes to new random library individuals (not pre-screened); survivor
selection by *clearing* (Petrowski 1996: in order of fitness, at most ``niche_capacity``
winners per niche, a niche being the individuals within Tanimoto distance ``niche_radius``
of each other on the ``niche_on`` fingerprints, or of equal objective value; winners first,
then the cleared) or deterministic *crowding* (a child replaces its most similar member if at
least as good); optionally the mutation rate and the share of random-ligand mutations rise as
the population's diversity falls below generation 0's (``adaptive``), and a population whose
best has not improved for ``restart_after`` generations restarts from random individuals
plus the ``restart_keep`` best.  The defaults were chosen by measurement (DEVELOPERS.md): on a
plateau-rich objective the plain GA fills its population with one value.  Everything they
need is in the state, so resumption stays bit-identical.

Random search evaluates random library individuals; the VAE arm evaluates LP samples
``z' = mu(seed) + sigma eps`` (Khatibi et al. 2026) around the best individuals found so far
(one site's ligand replaced).  All three arms start from the same generation 0 and count
every individual they ask for as one evaluation, whether the dataset already held it (asked
by another arm) or not; nothing is computed twice.

State: ``ga-state.json`` (atomic) after every batch: each arm's evaluated keys in order, its
population, generation and the state of its random generator; a run killed at any point
(kill -9) and started again recomputes nothing stored and, as the random state is restored
at the last finished generation, continues with the same children it would have bred.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .config import DiversitySettings, GAConfig
from .genes import (
    Individual,
    Library,
    Operators,
    individual_fingerprints,
    individual_key,
    key_ligands,
    load_library,
    mean_pairwise_distance,
    tanimoto_distances,
)
from .objectives import Evaluator, Objective, objective_for
from .prescreen import Prescreen, Selection, selection_metrics

STATE = "ga-state.json"
DATASET = "evaluations.db"
ARMS = ("ga", "random", "vae")


# -- state -----------------------------------------------------------------------------------
def _rng_dump(rng: random.Random) -> list:
    v, internal, gauss = rng.getstate()
    return [v, list(internal), gauss]


def _rng_load(state: list) -> random.Random:
    rng = random.Random()
    rng.setstate((state[0], tuple(state[1]), state[2]))
    return rng


@dataclass
class ArmState:
    """One search arm's progress (JSON in ``ga-state.json``)."""

    name: str
    evaluated: list[str] = field(default_factory=list)     # keys, in evaluation order
    population: list[str] = field(default_factory=list)
    generation: int = 0
    rng: list | None = None
    history: list[dict] = field(default_factory=list)      # one row per generation
    done: bool = False
    note: str = ""


def _load_state(path: Path, fingerprint: dict) -> dict[str, ArmState]:
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())
    stored = {k: v for k, v in (doc.get("settings") or {}).items() if k != "workers"}
    if "diversity" not in stored and "diversity" in fingerprint:
        # written before the diversity options existed: that GA had none of them
        stored["diversity"] = DiversitySettings.off().model_dump(mode="json")
    arms = doc.get("arms") or {}
    if "vae" in fingerprint and not (arms.get("vae") or {}).get("evaluated"):
        # the VAE settings decide only the VAE arm: before it has evaluated anything, a run
        # resumes under other ones (e.g. a run begun when the default was a library-trained VAE)
        stored["vae"] = fingerprint["vae"]
    if stored != fingerprint:
        raise ValueError(f"{path} was written by a run with other settings; use another --out "
                         "or delete it")
    return {k: ArmState(**v) for k, v in doc["arms"].items()}


def _save_state(path: Path, fingerprint: dict, arms: dict[str, ArmState]) -> None:
    from molmag.io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps({"settings": fingerprint,
                                        "arms": {k: asdict(v) for k, v in arms.items()}}) + "\n")


# -- the run ---------------------------------------------------------------------------------
@dataclass
class SearchResult:
    out: Path
    objective: Objective
    arms: dict[str, ArmState]
    outcomes: dict[str, dict]          # key -> {"value", "reason"}
    seconds: float


class Search:
    """All arms of one ``molmag ga`` run in ``out`` (resumable)."""

    def __init__(self, cfg: GAConfig, out: str | Path, *, log: Callable[[str], None] = print,
                 reporter=None, library: Library | None = None, stop_after: int | None = None,
                 dataset: str | Path | None = None):
        self.cfg = cfg
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.obj = objective_for(cfg.metal, cfg.objective, relax=cfg.relax, fmax=cfg.fmax)
        self.library = library or self._library()
        self.ops = Operators(cfg.genes, self.library, self.obj.n_sites, cfg.max_heavy_atoms,
                             neighbours=cfg.neighbours,
                             random_jump=cfg.diversity.random_ligand)
        self.evaluator = Evaluator(self.obj, dataset or self.out / DATASET, workers=cfg.workers,
                                   reporter=reporter)
        # the settings that decide what is computed (not how many processes compute it)
        self.fingerprint = cfg.model_dump(mode="json", exclude={"workers"})
        self.arms = _load_state(self.out / STATE, self.fingerprint)
        self.outcomes: dict[str, dict] = {}
        self.stop_after = stop_after      # tests: stop after this many batches (a 'kill')
        self._batches = 0

    def _library(self) -> Library:
        """The library (``library.json`` in the output folder after the first run, so that a
        rerun need not rebuild the corpus; the settings fingerprint guards it)."""
        from molmag.io.atomic import write_text_atomic

        path = self.out / "library.json"
        if path.is_file() and (self.out / STATE).is_file():
            doc = json.loads(path.read_text())
            if doc.get("settings") == [self.cfg.library, self.cfg.max_heavy_atoms]:
                return Library(doc["ligands"], source=self.cfg.library)
        lib = load_library(self.cfg.library, self.cfg.max_heavy_atoms)
        write_text_atomic(path, json.dumps({"settings": [self.cfg.library,
                                                         self.cfg.max_heavy_atoms],
                                            "ligands": lib.ligands}) + "\n")
        return lib

    # evaluation ----------------------------------------------------------------------------
    def _evaluate(self, keys: list[str]) -> None:
        if self.stop_after is not None and self._batches >= self.stop_after:
            raise KeyboardInterrupt("stop_after")
        self._batches += 1
        for k, o in self.evaluator.evaluate(keys).items():
            self.outcomes[k] = {"value": o.value, "reason": o.reason}

    def fitness(self, key: str) -> float | None:
        o = self.outcomes.get(key)
        return None if o is None else self.obj.fitness(o["value"])

    def _rank(self, keys) -> list[str]:
        return sorted(keys, key=lambda k: (self.fitness(k) is None,
                                           -(self.fitness(k) or 0.0), k))

    def _save(self) -> None:
        _save_state(self.out / STATE, self.fingerprint, self.arms)

    def _history_row(self, arm: ArmState, extra: dict | None = None) -> dict:
        vals = [self.outcomes[k]["value"] for k in arm.evaluated
                if self.outcomes.get(k, {}).get("value") is not None]
        pop = [self.outcomes[k]["value"] for k in arm.population
               if self.outcomes.get(k, {}).get("value") is not None]
        fits = [self.obj.fitness(v) for v in vals]
        best = vals[int(np.argmax(fits))] if vals else None
        return {"generation": arm.generation, "evaluations": len(arm.evaluated),
                "best": best, "population_median": float(np.median(pop)) if pop else None,
                "population_best": (pop[int(np.argmax([self.obj.fitness(v) for v in pop]))]
                                    if pop else None),
                "failures": sum(1 for k in arm.evaluated
                                if self.outcomes.get(k, {}).get("value") is None),
                "diversity": self.diversity(arm.population),
                "duplicate_share": self.duplicate_share(arm.population),
                **(extra or {})}

    # population diversity ------------------------------------------------------------------
    def _fps(self, keys: list[str], kind: str = "molecule") -> np.ndarray:
        return individual_fingerprints(keys, self.obj.n_sites, kind)

    def _niche_fps(self, keys: list[str]) -> np.ndarray:
        return self._fps(keys, self.cfg.diversity.niche_on)

    def diversity(self, keys) -> float:
        """Mean Tanimoto distance between the individuals ``keys`` (Morgan counts, sites
        summed): about 0.8-0.9 for random pairs of library ligands, 0 for clones."""
        return mean_pairwise_distance(self._fps(list(keys)))

    def duplicate_share(self, keys) -> float:
        """Share of ``keys`` whose objective value repeats that of another of them (to 1e-6
        relative): the phenotypic duplicates a population of few distinct values fills with."""
        keys = list(keys)
        vals = [self.outcomes.get(k, {}).get("value") for k in keys]
        vals = [v for v in vals if v is not None]
        if not keys:
            return 0.0
        distinct = {float(f"{v:.6g}") for v in vals}
        return (len(vals) - len(distinct)) / len(keys)

    # generation 0, shared by all arms ------------------------------------------------------
    def initial_population(self) -> list[str]:
        rng = random.Random(self.cfg.seed)
        keys: list[str] = []
        tries = 0
        while len(keys) < self.cfg.population and tries < 100 * self.cfg.population:
            tries += 1
            k = individual_key(self.ops.random_individual(rng))
            if k not in keys:
                keys.append(k)
        return keys

    def _start(self, name: str) -> ArmState:
        arm = self.arms.get(name)
        if arm is None:
            arm = ArmState(name, rng=_rng_dump(random.Random(f"{self.cfg.seed}:{name}")))
            self.arms[name] = arm
        if not arm.evaluated:
            init = self.initial_population()
            self._evaluate(init)
            arm.evaluated = list(init)
            arm.population = self._rank(init)[:self.cfg.population]
            arm.history.append(self._history_row(arm))
            self._save()
        else:
            self._evaluate(arm.evaluated)   # read back (nothing is recomputed)
        return arm

    def _random_new(self, n: int, rng: random.Random, exclude: set[str]) -> list[str]:
        """Up to ``n`` random library individuals not in ``exclude`` (which grows)."""
        out: list[str] = []
        tries = 0
        while len(out) < n and tries < 100 * n:
            tries += 1
            k = individual_key(self.ops.random_individual(rng))
            if k not in exclude:
                exclude.add(k)
                out.append(k)
        return out

    # GA ----------------------------------------------------------------------------------
    def _tournament(self, arm: ArmState, rng: random.Random) -> Individual:
        pool = [rng.choice(arm.population) for _ in range(self.cfg.tournament)]
        return key_ligands(self._rank(pool)[0], self.obj.n_sites)

    def _breed(self, arm: ArmState, n: int, rng: random.Random,
               mutation_rate: float | None = None, random_jump: float | None = None
               ) -> list[str]:
        seen = set(arm.evaluated)
        out: list[str] = []
        tries = 0
        rate = self.cfg.mutation_rate if mutation_rate is None else mutation_rate
        while len(out) < n and tries < 60 * n:
            tries += 1
            a = self._tournament(arm, rng)
            if rng.random() < rate:
                child = self.ops.mutate(a, rng, random_jump)
            else:
                child = self.ops.crossover(a, self._tournament(arm, rng), rng)
            if child is None:
                continue
            k = individual_key(child)
            if k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def _collapse(self, arm: ArmState) -> float:
        """0 while the population is as diverse as generation 0, rising to 1 for clones."""
        d0 = arm.history[0].get("diversity") if arm.history else None
        if d0 is None:
            d0 = self.diversity(self.initial_population())
        if not d0 or d0 <= 0:
            return 0.0
        return float(np.clip(1.0 - self.diversity(arm.population) / d0, 0.0, 1.0))

    def _stagnant(self, arm: ArmState) -> int:
        """Generations since the best last improved (or the population last restarted)."""
        n = 0
        for prev, row in zip(arm.history[-2::-1], arm.history[::-1]):
            if row.get("restart"):
                break
            b, a = self.obj.fitness(row["best"]), self.obj.fitness(prev["best"])
            if b is not None and (a is None or b > a + 1e-9 * max(1.0, abs(a))):
                break
            n += 1
        return n

    def _survivors(self, population: list[str], batch: list[str]) -> list[str]:
        """The next population from the current one and the evaluated ``batch``."""
        div, size = self.cfg.diversity, self.cfg.population
        if div.niching == "crowding":
            pop = list(population)
            fps = self._niche_fps(pop)
            for k in batch:
                fit = self.fitness(k)
                if fit is None or k in pop:
                    continue
                fk = self._niche_fps([k])
                if len(pop) < size:
                    pop.append(k)
                    fps = np.vstack([fps, fk])
                    continue
                j = int(np.argmin(tanimoto_distances(fk, fps)[0]))
                old = self.fitness(pop[j])
                if old is None or fit >= old:      # ties replace: drift along plateaus
                    pop[j] = k
                    fps[j] = fk[0]
            return self._rank(pop)
        ranked = self._rank(set(population) | set(batch))
        if div.niching == "none":
            return ranked[:size]
        # clearing (Petrowski 1996): in order of fitness, an individual in the niche of
        # niche_capacity winners already taken is cleared; winners first, then the cleared.
        # Niche: Tanimoto distance below niche_radius, or the same objective value (6
        # significant digits: a plateau of equal values is one niche)
        dist = tanimoto_distances(self._niche_fps(ranked))
        vals = [self.outcomes.get(k, {}).get("value") for k in ranked]
        same = [None if v is None else float(f"{v:.6g}") for v in vals]
        winners: list[int] = []
        cleared: list[int] = []
        for i, k in enumerate(ranked):
            if same[i] is not None and sum(dist[i, j] < div.niche_radius or same[i] == same[j]
                                           for j in winners) < div.niche_capacity:
                winners.append(i)
            else:
                cleared.append(i)
        return [ranked[i] for i in (winners + cleared)[:size]]

    def run_ga(self) -> ArmState:
        cfg = self.cfg
        div = cfg.diversity
        arm = self._start("ga")
        screen = Prescreen(positive_quantile=cfg.prescreen.positive_quantile,
                           explore=cfg.prescreen.explore, min_train=cfg.prescreen.min_train,
                           seed=cfg.seed)
        while not arm.done and len(arm.evaluated) < cfg.budget:
            assert arm.rng is not None  # set by _start
            rng = _rng_load(arm.rng)
            n = min(cfg.offspring, cfg.budget - len(arm.evaluated))
            collapse = self._collapse(arm) if div.adaptive else 0.0
            mutation = cfg.mutation_rate + (1.0 - cfg.mutation_rate) * collapse
            jump = div.random_ligand + (1.0 - div.random_ligand) * collapse
            restart = div.restart_after > 0 and self._stagnant(arm) >= div.restart_after
            n_imm = n if restart else int(round(div.immigrants * n))
            n_child = n - n_imm
            children: list[str] = []
            sel = Selection([], [], 0, None)
            if n_child:
                wanted = n_child * (cfg.prescreen.oversample if cfg.prescreen.enabled else 1)
                children = self._breed(arm, wanted, rng, mutation if div.adaptive else None,
                                       jump if div.adaptive else None)
                if not children and not div.immigrants:
                    arm.done, arm.note = True, "no new valid children could be bred"
                    break
                if children and cfg.prescreen.enabled:
                    screen.fit({k: self.fitness(k) for k in arm.evaluated})
                    sel = screen.select(children, n_child, rng)
                else:
                    sel = Selection(children[:n_child], [], 0, None)
            if div.immigrants:       # a shortfall of children is made up by immigrants
                n_imm = n - len(sel.chosen) - len(sel.audit)
            imm = self._random_new(n_imm, rng, set(arm.evaluated) | set(children)) \
                if n_imm else []
            batch = sel.chosen + sel.audit + imm
            if not batch:
                arm.done, arm.note = True, "no new individuals could be bred or drawn"
                break
            self._evaluate(batch)
            arm.evaluated += batch
            if restart:
                keep = self._rank(set(arm.evaluated) - set(batch))[:div.restart_keep]
                arm.population = self._rank(set(keep) | set(batch))[:cfg.population]
            else:
                arm.population = self._survivors(arm.population, batch)
            arm.generation += 1
            arm.rng = _rng_dump(rng)
            metrics = selection_metrics(sel, {k: self.fitness(k) for k in batch}, screen) \
                if cfg.prescreen.enabled else {"trained": False}
            arm.history.append(self._history_row(arm, {
                "bred": len(children), "prescreen": metrics, "immigrants": len(imm),
                "restart": restart, "mutation_rate": mutation, "random_ligand": jump}))
            self._save()
            row = arm.history[-1]
            self.log(f"GA generation {arm.generation}: {row['evaluations']} evaluations, best "
                     f"{_fmt(row['best'])}, population median {_fmt(row['population_median'])} "
                     f"{self.obj.unit}, diversity {row['diversity']:.2f}"
                     + (" (restart)" if restart else "")
                     + (f"; pre-screen precision {_fmt(metrics['precision'])}"
                        f", recall {_fmt(metrics['recall'])}" if metrics.get("trained") else ""))
        arm.done = True
        self._save()
        return arm

    # random search -------------------------------------------------------------------------
    def run_random(self) -> ArmState:
        cfg = self.cfg
        arm = self._start("random")
        while not arm.done and len(arm.evaluated) < cfg.budget:
            assert arm.rng is not None  # set by _start
            rng = _rng_load(arm.rng)
            n = min(cfg.offspring, cfg.budget - len(arm.evaluated))
            batch = self._random_new(n, rng, set(arm.evaluated))
            if not batch:
                arm.done, arm.note = True, "library exhausted"
                break
            self._evaluate(batch)
            arm.evaluated += batch
            arm.population = self._rank(set(arm.population) | set(batch))[:cfg.population]
            arm.generation += 1
            arm.rng = _rng_dump(rng)
            arm.history.append(self._history_row(arm))
            self._save()
        arm.done = True
        self._save()
        self.log(f"random search: {len(arm.evaluated)} evaluations, best "
                 f"{_fmt(arm.history[-1]['best'])} {self.obj.unit}")
        return arm

    # VAE LP sampling -----------------------------------------------------------------------
    def vae_model(self):
        """The VAE of the comparison: ``vae.model`` (a shipped model's name, by default the
        pretrained ``gauss-ii-qm9``, or a file) or, with ``vae.model: null``, one trained on
        the library (``vae.npz`` in the output folder; training resumes from its checkpoint)."""
        from molmag.generative.training import load_vae

        if self.cfg.vae.model:
            self.log(f"VAE: {self.cfg.vae.model}")
            return load_vae(self.cfg.vae.model)
        path = self.out / "vae.npz"
        if not path.is_file():
            from molmag.generative.runs import fit_vae, split_corpus
            from molmag.generative.training import save_vae

            split = split_corpus(self.library.ligands, None, 0.05, self.cfg.seed)
            self.log(f"training the VAE on {len(split.train)} library ligands "
                     f"({self.cfg.vae.max_epochs} epochs)")
            t0 = time.perf_counter()
            model, metrics = fit_vae(split.train, split.val, "none", {},
                                     max_epochs=self.cfg.vae.max_epochs, seed=self.cfg.seed,
                                     checkpoint=self.out / "vae.npz.ckpt")
            save_vae(model, path, metrics=metrics)
            self.log(f"VAE trained in {time.perf_counter() - t0:.0f} s")
        return load_vae(path)

    def run_vae(self) -> ArmState:
        from molmag.generative.analysis import generate_ligands

        cfg = self.cfg
        arm = self._start("vae")
        model = None
        while not arm.done and len(arm.evaluated) < cfg.budget:
            model = model or self.vae_model()
            assert arm.rng is not None  # set by _start
            rng = _rng_load(arm.rng)
            n = min(cfg.offspring, cfg.budget - len(arm.evaluated))
            seen = set(arm.evaluated)
            ligs_seen = {x for k in arm.evaluated for x in k.split(".")}
            seeds = [k for k in self._rank(arm.evaluated)[:cfg.vae.top_seeds]
                     if self.fitness(k) is not None]
            batch: list[str] = []
            per_seed = max(1, -(-n // max(1, len(seeds))))
            for j, skey in enumerate(seeds):
                ind = key_ligands(skey, self.obj.n_sites)
                site = rng.randrange(self.obj.n_sites)
                lig = ind[site]
                if not model.vocab.encodes(lig):
                    continue
                gen = generate_ligands(model, model.vocab.to_repr(lig), per_seed,
                                       sigmas=cfg.vae.sigmas,
                                       draws_per_sigma=cfg.vae.draws_per_sigma,
                                       exclude=ligs_seen,
                                       rng_seed=cfg.seed * 1000 + arm.generation * 37 + j,
                                       max_heavy_atoms=cfg.max_heavy_atoms)
                for new in gen.ligands:
                    from .genes import accepted_ligand
                    if accepted_ligand(new, max_heavy_atoms=cfg.max_heavy_atoms) != new:
                        continue
                    k = individual_key(tuple(new if s == site else x for s, x in enumerate(ind)))
                    if k not in seen and len(batch) < n:
                        seen.add(k)
                        batch.append(k)
            if not batch:
                arm.done, arm.note = True, "LP sampling found no new valid ligand around the seeds"
                break
            self._evaluate(batch)
            arm.evaluated += batch
            arm.population = self._rank(set(arm.population) | set(batch))[:cfg.population]
            arm.generation += 1
            arm.rng = _rng_dump(rng)
            arm.history.append(self._history_row(arm))
            self._save()
        arm.done = True
        self._save()
        self.log(f"VAE LP sampling: {len(arm.evaluated)} evaluations, best "
                 f"{_fmt(arm.history[-1]['best'])} {self.obj.unit}"
                 + (f" ({arm.note})" if arm.note else ""))
        return arm

    def run(self) -> SearchResult:
        t0 = time.perf_counter()
        try:
            self.run_ga()
            if self.cfg.compare.random:
                self.run_random()
            if self.cfg.compare.vae:
                self.run_vae()
        finally:
            self.evaluator.close()
        return SearchResult(self.out, self.obj, self.arms, self.outcomes,
                            time.perf_counter() - t0)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


# -- curves ----------------------------------------------------------------------------------
def best_curve(arm: ArmState, outcomes: dict[str, dict], obj: Objective) -> list[float | None]:
    """Best value found after each evaluation (None until the first success)."""
    out: list[float | None] = []
    best: float | None = None
    for k in arm.evaluated:
        v = outcomes.get(k, {}).get("value")
        if v is not None and (best is None or obj.fitness(v) > obj.fitness(best)):
            best = v
        out.append(best)
    return out


def evaluations_to_reach(curve: list[float | None], target: float | None,
                         obj: Objective) -> int | None:
    """The first evaluation count at which ``curve`` reaches ``target`` (None: never)."""
    if target is None:
        return None
    for i, v in enumerate(curve):
        if v is not None and obj.fitness(v) >= obj.fitness(target) - 1e-9:
            return i + 1
    return None


__all__ = ["Search", "SearchResult", "ArmState", "best_curve", "evaluations_to_reach",
           "STATE", "DATASET", "ARMS"]
