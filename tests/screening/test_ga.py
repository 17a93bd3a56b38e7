"""molmag ga (issue 19): genes, the Co(II) template, objectives through the labelling pipeline,
the pre-screen, bad input, and bit-identical resumption (also after kill -9).

The searches here use the cheap oracle (the builders' unrelaxed geometry, serial labelling)
on a small hand-written library, so the whole file runs in seconds; `molmag ga --quick`
(slow) runs the real xTB-relaxed objective end to end."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from molmag.screening import genes as G

LIGANDS = ["O=P(C)(C)C", "O=P(CC)(CC)CC", "O=P(C)(C)c1ccccc1", "[O-]C", "[O-]CC", "[O-]C(C)C",
           "[O-]C(C)(C)C", "[O-]c1ccccc1", "[O-]c1ccc(C)cc1", "[O-]C(=O)C", "[O-]C(=O)CC",
           "O=C(C)C", "O=C(C)CC", "O=CN(C)C", "O=C(N(C)C)C", "OC", "OCC", "O(C)C", "n1ccccc1",
           "n1ccc(C)cc1", "N(C)(C)C", "NC", "NCC", "[N-](C)C", "N#CC", "O=S(C)C", "O=[N+]([O-])C",
           "[O-]CC(F)(F)F", "[O-]C(F)(F)F", "O=C(OC)C"]


@pytest.fixture(scope="module")
def library():
    ok = [s for s in LIGANDS if G.accepted_ligand(s, max_heavy_atoms=8) == s]
    return G.Library(ok, source="test")


# -- genes ------------------------------------------------------------------------------------
def test_individual_key_is_symmetric_and_invertible():
    assert G.individual_key(("[O-]C", "n1ccccc1")) == G.individual_key(("n1ccccc1", "[O-]C"))
    assert G.individual_key(("[O-]C", "[O-]C")) == "[O-]C"
    for ind in [("[O-]C",), ("[O-]C", "[O-]C"), ("n1ccccc1", "[O-]C")]:
        k = G.individual_key(ind)
        assert G.individual_key(G.key_ligands(k, len(ind))) == k


def test_dynamic_children_are_sane_donor_first_ligands(library):
    """Every child of the SELFIES and Graph-GA operators passes the same check as the library
    (parses, valence-sane, donor first, accepted by the builder) and is in its corpus form;
    and the operators do produce new ligands."""
    rng = random.Random(3)
    alphabet = G.selfies_alphabet(library.ligands)
    made = set()
    for _ in range(150):
        a, b = rng.choice(library.ligands), rng.choice(library.ligands)
        for child in (G.selfies_mutate(a, alphabet, rng, 8), G.selfies_crossover(a, b, rng, 8),
                      G.graph_mutate(a, rng, 8), G.graph_crossover(a, b, rng, 8)):
            if child is not None:
                assert G.accepted_ligand(child, max_heavy_atoms=8) == child
                made.add(child)
    assert len(made - set(library.ligands)) >= 20


def test_static_operators_stay_in_the_library(library):
    rng = random.Random(0)
    for n_sites in (1, 2):
        ops = G.Operators("static", library, n_sites, 8)
        for _ in range(100):
            a, b = ops.random_individual(rng), ops.random_individual(rng)
            for child in (ops.mutate(a, rng), ops.crossover(a, b, rng)):
                assert child is not None and len(child) == n_sites
                assert all(x in library for x in child)


def test_library_neighbours_are_the_most_similar(library):
    fp = G.morgan_bits("[O-]CC")
    sims = G.tanimoto(fp, library.fps)
    nb = library.neighbours("[O-]CC", 3)
    assert "[O-]CC" not in nb
    others = sorted((s for s, lig in zip(sims, library.ligands) if lig != "[O-]CC"), reverse=True)
    assert [round(float(sims[library.ligands.index(x)]), 9) for x in nb] == \
        [round(float(s), 9) for s in others[:3]]


# -- the Co(II) template ------------------------------------------------------------------------
def test_co_l4_builder_tetrahedron_charge_and_sites():
    from molmag.chem.builders import build, co_l4_ligands

    a = build("co-l4", ligand="[O-]C.n1ccccc1", relax=False)
    d = a.info["donor_indices"]
    assert a[0].symbol == "Co" and a.info["multiplicity"] == 4 and a.info["charge"] == 0
    assert [a[i].symbol for i in d] == ["O", "O", "N", "N"]
    ang = [a.get_angle(d[i], 0, d[j]) for i in range(4) for j in range(i + 1, 4)]
    assert np.allclose(ang, np.degrees(np.arccos(-1 / 3)), atol=1e-6)
    assert np.allclose([a.get_distance(0, i) for i in d], [1.95, 1.95, 2.05, 2.05])
    b = build("co-l4", ligand="[S-]C", relax=False)
    assert b.info["charge"] == -2 and len(b) == 1 + 4 * 5
    assert co_l4_ligands("A.B.C.D") == ["A", "B", "C", "D"]
    with pytest.raises(ValueError, match="1, 2 or 4"):
        co_l4_ligands("A.B.C")


# -- objectives ---------------------------------------------------------------------------------
def test_objective_for_refuses_what_the_engines_cannot_do():
    from molmag.screening.objectives import objective_for

    assert objective_for("Dy", "dE01").builder == "dy-h2o5l2"
    with pytest.raises(ValueError, match="cannot be computed for Dy"):
        objective_for("Dy", "D")


def test_evaluator_values_failures_and_no_recomputation(tmp_path):
    """Values equal the engines called directly; a failed build is recorded with its reason
    and a second evaluator on the same dataset neither rebuilds nor retries anything."""
    from molmag.chem.builders import build
    from molmag.io.dataset import Dataset
    from molmag.physics.crystal_field import CrystalFieldCalculator
    from molmag.physics.ligand_field import LigandFieldCalculator
    from molmag.screening.objectives import Evaluator, objective_for

    dy = objective_for("Dy", "dE01", relax=False)
    ev = Evaluator(dy, tmp_path / "e.db", workers=1)
    out = ev.evaluate(["[O-]CC", "C1CC1"])       # C1CC1: first atom C is no donor
    a = build("dy-h2o5l2", ligand="[O-]CC", relax=False)
    kd = np.sort(CrystalFieldCalculator(ion="Dy3+", charges="rec", metal_index=0,
                                        donors=a.info["donor_indices"]).get_property(
        "kd_energies", a))
    assert out["[O-]CC"].value == pytest.approx(kd[1] - kd[0], rel=1e-9)
    assert out["C1CC1"].value is None and "donor" in out["C1CC1"].reason
    ds = Dataset(str(tmp_path / "e.db"))
    n_rows, fails = len(ds), ds.failures()
    again = Evaluator(dy, tmp_path / "e.db", workers=1).evaluate(["[O-]CC", "C1CC1"])
    assert again["[O-]CC"].value == out["[O-]CC"].value
    assert again["C1CC1"].reason == out["C1CC1"].reason
    assert len(ds) == n_rows and Dataset(str(tmp_path / "e.db")).failures() == fails

    co = objective_for("Co", "D", relax=False)
    res = Evaluator(co, tmp_path / "c.db", workers=1).evaluate(["[O-]C.n1ccccc1"])
    b = build("co-l4", ligand="[O-]C.n1ccccc1", relax=False)
    D = LigandFieldCalculator(metal_index=0, charge=0, multiplicity=4, ion="Co2+",
                              donors=b.info["donor_indices"]).get_property("zfs_D", b)
    assert res["[O-]C.n1ccccc1"].value == pytest.approx(float(D), rel=1e-9)
    assert co.fitness(-50.0) > co.fitness(-10.0)      # D is minimised


# -- pre-screen ---------------------------------------------------------------------------------
def test_prescreen_learns_a_separable_rule_and_reports_metrics():
    from molmag.screening.prescreen import Prescreen, selection_metrics

    anions = ["[O-]C", "[O-]CC", "[O-]C(C)C", "[O-]CCC", "[O-]CCCC", "[O-]c1ccccc1",
              "[O-]C(C)(C)C", "[O-]CC(C)C"]
    neutral = ["O=P(C)(C)C", "O=C(C)C", "OCC", "n1ccccc1", "N(C)(C)C", "O=CN(C)C", "NCC",
               "O=C(C)CC"]
    fit = {**{k: 400.0 + i for i, k in enumerate(anions[:6])},
           **{k: 20.0 + i for i, k in enumerate(neutral[:6])}, "C1CC1": None}
    ps = Prescreen(explore=0.5, seed=0, n_estimators=50)
    assert ps.fit(fit)
    children = anions[6:] + neutral[6:] + ["[O-]C(C)CC", "OCCC", "O=P(CC)(C)C", "NCCC"]
    sel = ps.select(children, 4, random.Random(0))
    assert set(sel.chosen) <= {"[O-]C(C)(C)C", "[O-]CC(C)C", "[O-]C(C)CC"}
    assert len(sel.chosen) == 2 and len(sel.audit) == 2 and sel.n_rejected == 6
    truth = {k: (400.0 if k.startswith("[O-]") else 20.0) for k in sel.chosen + sel.audit}
    m = selection_metrics(sel, truth, ps)
    assert m["precision"] == 1.0
    fn = sum(1 for k in sel.audit if k.startswith("[O-]")) / 2 * 6
    assert m["recall"] == pytest.approx(2 / (2 + fn))


# -- bad input ----------------------------------------------------------------------------------
def test_bad_configurations_fail_before_anything_runs(tmp_path):
    from molmag.screening.config import load_ga_config
    from molmag.screening.genes import load_library

    p = tmp_path / "ga.yaml"
    p.write_text("metal: Dy\nobjective: dE01\npopulation: 1\n")
    with pytest.raises(ValueError, match="population"):
        load_ga_config(p)
    p.write_text("metal: Co\nobjective: dE01\n")
    with pytest.raises(ValueError, match="cannot be computed for Co"):
        load_ga_config(p)
    p.write_text("metal: Dy\nobjective: dE01\nmutation: 3\n")
    with pytest.raises(ValueError, match="mutation: unknown key"):
        load_ga_config(p)
    lib = tmp_path / "carbon.smi"
    lib.write_text("CCCC\nc1ccccc1\n")
    with pytest.raises(ValueError, match="carbon.smi"):
        load_library(str(lib), 8)


# -- the search: resumption -----------------------------------------------------------------
def _cfg(**over):
    from molmag.screening.config import GAConfig

    base = dict(metal="Dy", objective="dE01", population=5, offspring=5, budget=15,
                relax=False, workers=1, compare={"random": True, "vae": False},
                prescreen={"min_train": 4})
    base.update(over)
    return GAConfig.model_validate(base)


def _state(out: Path) -> dict:
    return json.loads((out / "ga-state.json").read_text())


@pytest.mark.parametrize("genes", ["static", "dynamic"])
def test_interrupted_search_resumes_bit_identically(tmp_path, library, genes):
    from molmag.screening.loop import Search

    cfg = _cfg(genes=genes)
    Search(cfg, tmp_path / "a", library=library, log=lambda s: None).run()
    with pytest.raises(KeyboardInterrupt):
        Search(cfg, tmp_path / "b", library=library, log=lambda s: None, stop_after=3).run()
    assert _state(tmp_path / "b")["arms"]["ga"]["generation"] == 2
    Search(cfg, tmp_path / "b", library=library, log=lambda s: None).run()
    sa, sb = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert sa == sb
    ga = sa["arms"]["ga"]
    assert len(ga["evaluated"]) == 15 == len(set(ga["evaluated"]))
    assert ga["evaluated"][:5] == sa["arms"]["random"]["evaluated"][:5]   # shared generation 0
    if genes == "dynamic":
        assert set(ga["evaluated"]) - set(library.ligands)       # new ligands appeared


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_ga import LIGANDS, _cfg
    from molmag.screening import genes as G
    from molmag.screening import loop
    from molmag.screening.loop import Search
    lib = G.Library([s for s in LIGANDS if G.accepted_ligand(s, max_heavy_atoms=8) == s])
    real = loop.Search._evaluate
    def _evaluate(self, keys):   # give the killer time: each batch takes at least 0.3 s
        time.sleep(0.3)
        return real(self, keys)
    loop.Search._evaluate = _evaluate
    Search(_cfg(), sys.argv[1], library=lib, log=lambda s: None).run()
    print("finished")
""")


def test_kill_9_and_rerun_continues(tmp_path):
    """A search killed with SIGKILL in the middle and run again ends exactly where an
    uninterrupted one does, without recomputing what the dataset holds."""
    tests = str(Path(__file__).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT.format(tests=tests))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 120:
        f = killed / "ga-state.json"
        if f.is_file():
            try:
                if json.loads(f.read_text())["arms"]["ga"]["generation"] >= 1:
                    break
            except (ValueError, KeyError):
                pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    st = _state(killed)["arms"]
    assert "random" not in st or not st["random"]["done"]
    from molmag.io.dataset import Dataset
    rows_before = len(Dataset(str(killed / "evaluations.db")))
    assert rows_before > 0
    from molmag.screening.loop import Search

    lib = G.Library([s for s in LIGANDS if G.accepted_ligand(s, max_heavy_atoms=8) == s])
    for out in (killed, tmp_path / "whole"):          # the rerun, and an uninterrupted run
        Search(_cfg(), out, library=lib, log=lambda s: None).run()
    assert _state(killed) == _state(tmp_path / "whole")
    # nothing computed twice: the killed-and-rerun dataset has exactly the rows of the other
    assert len(Dataset(str(killed / "evaluations.db"))) == \
        len(Dataset(str(tmp_path / "whole" / "evaluations.db")))


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """`molmag ga --quick`: the real objective (xTB-relaxed Dy(H2O)5L2), GA vs random vs a VAE
    trained on the library; outputs written."""
    r = subprocess.run([sys.executable, "-m", "molmag", "ga", "--quick", "--out",
                        str(tmp_path / "q")], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((tmp_path / "q" / "ga.json").read_text())
    assert set(doc["arms"]) == {"ga", "random", "vae"}
    for f in ("report.md", "report.html", "figures/ga_vs_random_vae.png", "evaluations.db"):
        assert (tmp_path / "q" / f).is_file()


# -- diversity mechanisms (synthetic objective: few distinct values, no labelling) ------------
def _plateau_value(key: str) -> float:
    """D-like (minimised) value of a two-site individual that depends only on the donor
    classes of its ligands: a dozen distinct values, wide plateaus of equal ones."""
    def score(lig: str) -> float:
        for prefix, s in (("[O-]", 3.0), ("[N-]", 2.5), ("O", 1.0), ("n", 2.0), ("N", 2.0)):
            if lig.startswith(prefix):
                return s
        return 0.0
    return -sum(score(x) for x in G.key_ligands(key, 2))


def _synthetic_search(cfg, out, library, value=_plateau_value):
    from molmag.screening.loop import Search

    class Synthetic(Search):
        def _evaluate(self, keys):
            for k in keys:
                self.outcomes[k] = {"value": value(k), "reason": None}

    return Synthetic(cfg, out, library=library, log=lambda s: None)


def _co_cfg(diversity: dict, **over):
    from molmag.screening.config import DiversitySettings

    off = DiversitySettings.off().model_dump()
    off.update(diversity)
    return _cfg(metal="Co", objective="D", diversity=off, **over)


def test_immigrant_fraction_brings_that_many_new_random_individuals(tmp_path, library):
    """immigrants: 0.4 of 5 evaluations per generation = 2 new random library individuals,
    evaluated in that generation and never evaluated before; none with immigrants: 0."""
    from molmag.screening.loop import Search

    drawn: list[list[str]] = []
    real = Search._random_new

    def spy(self, n, rng, exclude):
        out = real(self, n, rng, exclude)
        drawn.append(list(out))
        return out

    for frac, per_gen in ((0.4, 2), (0.0, 0)):
        drawn.clear()
        s = _synthetic_search(_co_cfg({"immigrants": frac}, budget=30), tmp_path / f"i{frac}",
                              library)
        s._random_new = spy.__get__(s)           # type: ignore[method-assign]
        arm = s.run_ga()
        gens = arm.history[1:]
        assert len(gens) == 5 and all(r["immigrants"] == per_gen for r in gens)
        assert [len(d) for d in drawn] == [per_gen] * (5 if per_gen else 0)
        for g, d in enumerate(drawn):           # the batch of generation g+1 ends with them
            start = 5 * (g + 1)
            batch = arm.evaluated[start:start + 5]
            assert batch[-per_gen:] == d and not set(d) & set(arm.evaluated[:start])
            assert all(x in library for k in d for x in G.key_ligands(k, 2))


@pytest.mark.parametrize("radius,on", [(0.0, "molecule"), (0.4, "molecule"), (0.7, "donor")])
def test_clearing_lowers_the_duplicate_share(tmp_path, library, radius, on):
    """On a plateau objective the plain GA fills its population with equal values; clearing
    (one winner per niche, equal values one niche) keeps distinct ones."""
    dup = {}
    for niching in ("none", "clearing"):
        shares = []
        for seed in range(3):
            cfg = _co_cfg({"niching": niching, "niche_radius": radius, "niche_on": on,
                           "niche_capacity": 1}, budget=40, seed=seed,
                          prescreen={"enabled": False})
            arm = _synthetic_search(cfg, tmp_path / f"{niching}{seed}", library).run_ga()
            shares.append(arm.history[-1]["duplicate_share"])
        dup[niching] = float(np.mean(shares))
    assert dup["none"] >= 0.6
    assert dup["clearing"] <= min(0.3, dup["none"] - 0.3)


def test_clearing_and_crowding_survivors(tmp_path, library):
    """Clearing: the best of each niche first (equal values or Tanimoto distance below the
    radius share one), then the cleared by fitness.  Crowding: a child replaces its most
    similar population member only if at least as good."""
    a, b = "[O-]CC", "[O-]CCC"                       # similar ligands
    ind = {"ab": G.individual_key((a, b)), "aa": G.individual_key((a, a)),
           "far": G.individual_key(("N(C)(C)C", "OC")),
           "far2": G.individual_key(("n1ccccc1", "O=P(C)(C)C")),
           "near_far": G.individual_key(("N(C)(C)C", "OCC"))}
    vals = {ind["ab"]: -9.0, ind["aa"]: -8.0, ind["far"]: -7.0, ind["far2"]: -7.0,
            ind["near_far"]: -7.0}
    fps = G.individual_fingerprints([ind["ab"], ind["aa"]], 2)
    d_close = float(G.tanimoto_distances(fps)[0, 1])
    assert d_close < 0.5

    def search(**div):
        div = {"niche_on": "molecule", "niche_capacity": 1, **div}
        s = _synthetic_search(_co_cfg(div, population=3), tmp_path / str(div), library,
                              value=vals.__getitem__)
        s.outcomes = {k: {"value": v, "reason": None} for k, v in vals.items()}
        return s

    keys = list(vals)[:4]
    assert search(niching="none")._survivors(keys[:2], keys[2:]) == \
        [ind["ab"], ind["aa"], ind["far"]]           # plain: the best three
    # clearing by distance: aa is within the radius of ab; far2 ties far's value
    got = search(niching="clearing", niche_radius=0.5)._survivors(keys[:2], keys[2:])
    assert got == [ind["ab"], ind["far"], ind["aa"]]
    # a small radius: aa is its own niche, far2 still shares far's (value) niche
    got = search(niching="clearing", niche_radius=0.01)._survivors(keys[:2], keys[2:])
    assert got == [ind["ab"], ind["aa"], ind["far"]]
    # donor fingerprints: ab and aa (two alkoxides) share a niche at any radius, far2 and far
    # (other donors) do not; with 2 per niche aa is a winner again
    got = search(niching="clearing", niche_on="donor", niche_radius=0.01)._survivors(
        keys[:2], keys[2:])
    assert got == [ind["ab"], ind["far"], ind["aa"]]
    got = search(niching="clearing", niche_on="donor", niche_radius=0.01,
                 niche_capacity=2)._survivors(keys[:2], keys[2:])
    assert got == [ind["ab"], ind["aa"], ind["far"]]
    # crowding: aa (worse) does not replace ab, its nearest; near_far (equal value) replaces
    # far, its nearest, though worse than ab
    s = search(niching="crowding")
    s.cfg.population = 2
    assert s._survivors([ind["ab"], ind["far"]], [ind["aa"]]) == [ind["ab"], ind["far"]]
    assert s._survivors([ind["ab"], ind["far"]], [ind["near_far"]]) == \
        [ind["ab"], ind["near_far"]]


def test_adaptive_mutation_follows_the_loss_of_diversity(tmp_path, library):
    """Each generation's mutation rate and random-ligand share rise from their settings in
    proportion to how far the population's diversity fell below generation 0's."""
    cfg = _co_cfg({"adaptive": True, "random_ligand": 0.2}, budget=50, mutation_rate=0.3)
    arm = _synthetic_search(cfg, tmp_path / "a", library).run_ga()
    h = arm.history
    d0 = h[0]["diversity"]
    assert d0 > 0.5
    collapses = []
    for prev, row in zip(h, h[1:]):
        c = min(1.0, max(0.0, 1.0 - prev["diversity"] / d0))
        collapses.append(c)
        assert row["mutation_rate"] == pytest.approx(0.3 + 0.7 * c)
        assert row["random_ligand"] == pytest.approx(0.2 + 0.8 * c)
    assert max(collapses) > 0.05                     # the plateau objective does collapse it


def test_restart_after_stagnation(tmp_path, library):
    """A constant objective never improves: with restart_after 2 generations 3, 6, ...
    evaluate random individuals only, and the population is the 1 kept plus those."""
    cfg = _co_cfg({"restart_after": 2, "restart_keep": 1}, budget=50,
                  prescreen={"enabled": False})
    arm = _synthetic_search(cfg, tmp_path / "r", library, value=lambda k: -1.0).run_ga()
    restarts = [r["generation"] for r in arm.history[1:] if r["restart"]]
    assert restarts == [3, 6, 9]
    for r in arm.history[1:]:
        assert r["immigrants"] == (5 if r["restart"] else 0)
    assert len(arm.population) == 5


def test_runs_written_before_the_diversity_options_resume(tmp_path, library):
    """A ga-state.json without the diversity settings was written by the plain GA: it resumes
    with diversity off, and refuses the new defaults."""
    from molmag.screening.config import DiversitySettings

    out = tmp_path / "old"
    cfg = _cfg(diversity=DiversitySettings.off().model_dump(), compare={"random": False,
                                                                          "vae": False})
    _synthetic_search(cfg, out, library, value=lambda k: 1.0).run()
    doc = _state(out)
    del doc["settings"]["diversity"]
    (out / "ga-state.json").write_text(json.dumps(doc))
    _synthetic_search(cfg, out, library, value=lambda k: 1.0)       # accepted
    with pytest.raises(ValueError, match="other settings"):
        _synthetic_search(_cfg(compare={"random": False, "vae": False}), out, library)


@pytest.mark.parametrize("system", ["dy-axial", "co-chelate"])
def test_ga_templates_show_the_defaults(system):
    """`molmag template ga` documents every setting with the value a run uses."""
    import yaml

    from molmag.screening.config import GAConfig
    from molmag.screening.templates import GA_TEMPLATES

    doc = yaml.safe_load(GA_TEMPLATES[system])
    cfg = GAConfig.model_validate(doc)
    default = GAConfig(metal=doc["metal"], objective=doc["objective"])
    assert cfg.model_dump() == default.model_dump()
    assert set(doc["diversity"]) == set(type(cfg.diversity).model_fields)


def test_report_shows_the_diversity_per_generation(tmp_path, library):
    from molmag.screening.report import write_outputs

    cfg = _co_cfg({"niching": "clearing", "immigrants": 0.4}, budget=20)
    s = _synthetic_search(cfg, tmp_path / "rep", library)
    res = s.run()
    summary = write_outputs(res, cfg)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "niching clearing" in md and "40 % immigrants" in md
    rows = [r for r in md.splitlines() if r.startswith("| 1 |")]
    assert rows and rows[0].split("|")[8].strip() == "2"            # immigrants column
    h = summary["arms"]["ga"]["history"]
    assert all(0.0 <= r["diversity"] <= 1.0 and 0.0 <= r["duplicate_share"] <= 1.0 for r in h)


# -- the VAE of the comparison --------------------------------------------------------------
def test_vae_arm_uses_the_shipped_gauss_ii_model_by_default(tmp_path, library):
    """vae.model defaults to the pretrained GAUSS-II model (by name, loaded from the package);
    a file that does not exist is refused naming the key; null still means 'train one'."""
    from molmag.screening.config import GAConfig, load_ga_config

    assert GAConfig().vae.model == "gauss-ii-qm9"
    p = tmp_path / "ga.yaml"
    p.write_text("metal: Dy\nobjective: dE01\nvae: {model: gauss-ii-qm9}\n")
    assert load_ga_config(p).vae.model == "gauss-ii-qm9"
    p.write_text("metal: Dy\nobjective: dE01\nvae: {model: nowhere.npz}\n")
    with pytest.raises(ValueError, match=r"ga.yaml: vae.model: no such file .*nowhere.npz"):
        load_ga_config(p)
    p.write_text("metal: Dy\nobjective: dE01\nvae: {model: null}\n")
    assert load_ga_config(p).vae.model is None
    s = _synthetic_search(_cfg(compare={"random": False, "vae": True}), tmp_path / "s", library)
    model = s.vae_model()
    assert model.config.decoder != "gauss"              # the autoregressive GAUSS-II model
    assert model.vocab.encodes("[O-]CC")
    assert len(model.training_strings) > 100_000      # trained on the QM9 ligand corpus
    assert not (tmp_path / "s" / "vae.npz").exists()  # nothing trained


def test_runs_begun_with_another_vae_resume_until_the_vae_arm_starts(tmp_path, library):
    """The VAE settings decide only the VAE arm: a run whose state was written under other
    VAE settings resumes while its VAE arm has evaluated nothing, and is refused after."""
    cfg_old = _cfg(vae={"model": None}, compare={"random": True, "vae": False})
    cfg_new = _cfg(compare={"random": True, "vae": False})
    out = tmp_path / "run"
    _synthetic_search(cfg_old, out, library, value=lambda k: 1.0).run_ga()
    s = _synthetic_search(cfg_new, out, library, value=lambda k: 1.0)     # accepted
    assert s.arms["ga"].evaluated
    doc = _state(out)
    doc["settings"]["vae"]["model"] = None
    doc["arms"]["vae"] = {"name": "vae", "evaluated": ["[O-]C"], "population": ["[O-]C"]}
    (out / "ga-state.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="other settings"):
        _synthetic_search(cfg_new, out, library, value=lambda k: 1.0)


def test_cli_refuses_a_library_without_ligands_in_one_line(tmp_path):
    """`molmag ga` with a library the builder accepts none of: one error line naming the
    file, exit status 1, nothing run."""
    from typer.testing import CliRunner

    from molmag.cli.main import app

    lib = tmp_path / "lib.csv"
    lib.write_text("smiles\nCCCC\n")
    cfg = tmp_path / "ga.yaml"
    cfg.write_text(f"library: {lib}\n")
    r = CliRunner().invoke(app, ["ga", str(cfg), "--quick", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(lib) in errors[0] and "none of its 1 ligands" in errors[0]
    assert not (tmp_path / "o" / "evaluations.db").exists()
