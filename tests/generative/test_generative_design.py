"""Latent analysis and generation (PCA, LP ligand generation, seed bins, R^2, repopulation),
the `molmag vae` commands and a tiny complete `dy-ligands` campaign."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.generative.analysis import (
    generate_ligands,
    latent_pca,
    neighbour_correlation,
    repopulation_shift,
    seed_bins,
    seed_sample_r2,
    top_seeds,
)
from molmag.generative.corpus import as_ligand
from molmag.generative.training import train_vae
from molmag.generative.vae import VAEConfig

torch.set_num_threads(1)
runner = CliRunner()

LIGANDS = ["O=P(C)(C)C", "[O-]c1ccccc1", "n1ccccc1", "[O-]C(C)(C)C", "O=C(C)C", "OC",
           "[O-]C", "N#CC", "O=C(C)N", "[O-]CC", "OCC", "[O-]C(C)C", "O=CC", "NC", "N(C)C",
           "[N-](C)C", "O=S(C)C", "[O-]C=O", "OC(C)C", "n1ccncc1"]


# -- analysis -----------------------------------------------------------------------------
def test_latent_pca_matches_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 5)) * np.array([3.0, 1.0, 0.5, 0.2, 0.1])
    z = z @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    pca = latent_pca(z, 2)
    w, v = np.linalg.eigh(np.cov(z.T))
    for k in range(2):
        assert abs(abs(pca.components[k] @ v[:, -1 - k]) - 1) < 1e-8
    assert np.allclose(pca.explained_variance_ratio, w[::-1][:2] / w.sum())
    xy = pca.transform(z)
    assert np.allclose(xy.mean(0), 0, atol=1e-10)
    # translation of all latent vectors leaves the map unchanged
    assert np.allclose(latent_pca(z + 5.0).transform(z + 5.0), xy)
    with pytest.raises(ValueError):
        latent_pca(z[:1])


def test_neighbour_correlation_orders():
    rng = np.random.default_rng(1)
    xy = rng.uniform(size=(400, 2))
    assert neighbour_correlation(xy, xy[:, 0] + 0.05 * rng.normal(size=400)) > 0.9
    assert abs(neighbour_correlation(xy, rng.normal(size=400))) < 0.2
    v = xy[:, 1].copy()
    v[:50] = np.nan                                      # unlabelled points are left out
    assert neighbour_correlation(xy, v) > 0.9


def test_seed_sample_r2_and_bins_and_shift():
    assert seed_sample_r2([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    # samples scattered around their seeds: 1 - SS_res / SS_tot by hand
    y0, y = np.array([0, 0, 10, 10.0]), np.array([1, -1, 9, 11.0])
    assert seed_sample_r2(y0, y) == pytest.approx(1 - 4 / 104)   # mean 5: 16+36+16+36
    assert seed_sample_r2([5, 5, 5, 5], [1, 2, 3, 4]) < 0     # a bad "predictor"
    values = {f"L{i}": float(i) for i in range(60)}
    picks = seed_bins(values, n_bins=6, per_bin=2, rng_seed=0)
    assert [b for b, _ in picks] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    for b, name in picks:
        assert 10 * b <= values[name] < 10 * (b + 1) or (b == 5 and values[name] == 59)
    assert seed_bins(values, 6, 2, 0) == picks             # reproducible
    assert top_seeds(values, 3) == ["L59", "L58", "L57"]
    sh = repopulation_shift([5, 6, 7], [1, 2, 3])
    assert sh["mean_shift"] == pytest.approx(4) and sh["p_greater"] == 1.0
    assert repopulation_shift([1, 2, 3], [1, 2, 3])["p_greater"] == pytest.approx(0.5)
    # the bootstrap interval of the mean shift: around the shift, narrowing with more data
    rng = np.random.default_rng(0)
    small = repopulation_shift(rng.normal(100, 30, 16), rng.normal(0, 30, 40))
    big = repopulation_shift(rng.normal(100, 30, 400), rng.normal(0, 30, 1000))
    for sh in (small, big):
        assert sh["mean_shift_low"] < sh["mean_shift"] < sh["mean_shift_high"]
    assert 60 < small["mean_shift_low"] and small["mean_shift_high"] < 140
    assert (big["mean_shift_high"] - big["mean_shift_low"]) < \
        0.3 * (small["mean_shift_high"] - small["mean_shift_low"])
    assert repopulation_shift([5.0], [1.0, 2.0])["mean_shift_low"] is None


@pytest.fixture(scope="module")
def memorised():
    cfg = VAEConfig(latent_dim=8, encoder_hidden=(32, 32, 16), decoder_hidden=(64, None))
    return train_vae(LIGANDS * 5, config=cfg, max_epochs=60, batch_size=25, lr=3e-3, seed=0,
                     min_delta=0.0)


def test_generate_ligands_rules(memorised):
    model = memorised
    exclude = set(LIGANDS[:10])
    g = generate_ligands(model, "[O-]c1ccccc1", 5, sigmas=(0.0, 0.5, 1.0), draws_per_sigma=300,
                         exclude=exclude, rng_seed=3)
    assert len(g.ligands) <= 5 and len(set(g.ligands)) == len(g.ligands)
    assert g.draws <= 900 and g.sigmas[0] == 0.0
    for s in g.ligands:
        lig = as_ligand(s)
        assert lig is not None and lig.smiles == s and s not in exclude
    # sigma = 0 decodes the seed's mean only: at most one distinct ligand
    g0 = generate_ligands(model, "[O-]c1ccccc1", 5, sigmas=(0.0,), draws_per_sigma=200)
    assert len(g0.ligands) <= 1 and g0.draws == 200
    assert g0.n_valid in (0, 200) and g.n_valid >= len(g.ligands)


# -- CLI ----------------------------------------------------------------------------------
def _config(tmp_path, **over):
    text = runner.invoke(app, ["template", "vae"]).output
    import yaml

    cfg = yaml.safe_load(text)
    cfg.update({"max_heavy_atoms": 6, "n_train": 60, "max_epochs": 2,
                "labels": {"n": 6, "workers": 1, "dataset": "labels.db"}})
    cfg.update(over)
    path = tmp_path / "vae.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_vae_template_validates(tmp_path):
    from molmag.generative.runs import load_vae_train_config

    res = runner.invoke(app, ["template", "vae", "-o", str(tmp_path / "v.yaml")])
    assert res.exit_code == 0
    cfg = load_vae_train_config(tmp_path / "v.yaml")
    assert cfg.head == "proxies" and cfg.labels.n == 1000 and cfg.output.endswith("vae.npz")


def test_vae_config_errors_name_file_and_key(tmp_path):
    path = _config(tmp_path, heads="gaps")
    res = runner.invoke(app, ["vae", "train", str(path)])
    assert res.exit_code == 1 and "vae.yaml" in res.output and "heads" in res.output
    res = runner.invoke(app, ["vae", "sample", str(tmp_path / "none.npz"), "-s", "OC"])
    assert res.exit_code == 1 and "none.npz" in res.output


def test_vae_train_sample_map_cli(tmp_path):
    path = _config(tmp_path)
    res = runner.invoke(app, ["vae", "train", str(path), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout[res.stdout.index("{"):])
    assert m["labelled"] == 6 and m["epochs"] == 2 and m["n_train"] == 60
    for f in ("vae.npz", "vae.npz.ckpt", "vae-history.csv", "vae-metrics.json", "labels.db"):
        assert (tmp_path / f).is_file(), f
    # a rerun labels nothing and trains no further epoch
    again = runner.invoke(app, ["vae", "train", str(path), "--json"])
    assert again.exit_code == 0
    assert "0 failed" in again.stderr or "6 labelled" in again.stderr
    m2 = json.loads(again.stdout[again.stdout.index("{"):])
    assert m2["epochs"] == 2
    res = runner.invoke(app, ["vae", "sample", str(tmp_path / "vae.npz"), "-s", "[O-]c1ccccc1",
                              "--n", "50", "--sigma", "0.5", "-o", str(tmp_path / "s.csv"),
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["metrics"][0]["n_samples"] == 50
    assert (tmp_path / "s.csv").is_file()
    res = runner.invoke(app, ["vae", "map", str(tmp_path / "vae.npz"), "--proxies",
                              str(tmp_path / "labels.db"), "-o", str(tmp_path / "map"), "--json"])
    assert res.exit_code == 0, res.output
    mp = json.loads(res.stdout)
    assert mp["n_proxies"] == 6 and set(mp["neighbour_correlation"]) == {
        "donor_Z", "donor_charge", "donor_dipole", "donor_polarizability"}
    assert (tmp_path / "map" / "latent_map_proxies.png").is_file()


# -- campaign -----------------------------------------------------------------------------
def test_tiny_dy_ligands_campaign(tmp_path):
    from molmag.workflows.dy_ligands import DyLigandSettings, run_dy_ligands

    s = DyLigandSettings.quick(max_heavy_atoms=5, n_proxies=12, max_epochs=2, n_labelled=8,
                               seeds_per_bin=1, samples_per_seed=1, top_seeds=3,
                               repop_draws=100, n_repopulate=2, curve_batches=1, workers=1)
    out = tmp_path / "camp"
    res = run_dy_ligands(out, s)
    for stage in ("corpus", "proxies", "train", "gaps", "map", "seeds", "repopulate",
                  "magnetism", "report"):
        assert stage in res, stage
    mg = res["magnetism"]
    assert mg["gap_cm-1"] > 0 and mg["U_eff_cm-1"] > 0 and len(mg["tau"]) == 50
    # below the free ion's Curie value (14.17): a splitting of ~10^3 cm-1 leaves the upper
    # doublets partly empty at 300 K, but not far below
    assert 11.0 < mg["chi_T_300K"] < 14.17
    assert (out / "magnetism" / "magnetism.png").is_file()
    assert res["gaps"]["labelled"] >= 6
    assert res["map"]["n_gaps"] == res["gaps"]["labelled"]
    # quick runs relax the complexes to 0.1 eV/A, and each row says so
    from molmag.io.dataset import Dataset

    rows = list(Dataset(str(out / "complexes.db")).select())
    assert {r.tags.get("relax_fmax_eV_A") for r in rows} == {s.gap_fmax} == {0.1}
    assert all(r.tags["relax_steps"] > 0 for r in rows)
    html = (out / "report.html").read_text()
    assert "Targeted repopulation" in html and 'src="data:image/png;base64,' in html
    assert "Magnetism of the best complex" in html
    assert 'src="figures' not in html
    md = (out / "report.md").read_text()
    # R^2 with its interval (or a plain "too few"), the per-seed table, the valence filter
    ci = res["seeds"]["r2_dE01_interval"]
    assert ci is None or ci["n_pairs"] == res["seeds"]["n_labelled"]
    assert "too few" in md or "bootstrap interval" in md
    assert "novel and sane" in md and "| bin | seed | σ | draws | valid |" in md
    assert ("valence sanity filter" in md) == bool(res["repopulate"]["labelled"])
    from molmag.workflows.dy_ligands_report import shift_interval

    sh = res["repopulate"]["shift_vs_random"]
    if sh["mean_shift_low"] is not None:
        assert shift_interval(sh) in md and "bootstrap interval" in shift_interval(sh)
    per = res["repopulate"]["per_seed"]
    assert len(per) == len(res["repopulate"]["top_seeds"])
    for r in per:
        assert r["n_novel_sane"] <= r["n_novel"] <= r["n_unique"] <= r["n_valid"] <= r["draws"]
    state = json.loads((out / "campaign.json").read_text())
    assert all(v["status"] == "done" for v in state["stages"].values())
    # a second run skips every stage but the report
    again = run_dy_ligands(out, s)
    assert again["train"] == res["train"]
    with pytest.raises(ValueError, match="quick"):
        run_dy_ligands(out, DyLigandSettings.full())
    # labels relaxed to another threshold are not mixed into the folder
    with pytest.raises(ValueError, match="gap_fmax"):
        run_dy_ligands(out, dataclasses.replace(s, gap_fmax=0.05))


def test_tiny_dy_ligands_campaign_from_a_selfies_model(tmp_path):
    """--pretrained with a SELFIES model (gauss-ii-qm9-selfies is one): the campaign's seeds
    are corpus SMILES and its samples come back as SMILES; the map, seed-bin and repopulation
    stages used to hand SMILES to the SELFIES encoder and stopped ('... is not a SELFIES
    string')."""
    from molmag.generative.runs import fit_vae, load_ligands
    from molmag.generative.training import save_vae
    from molmag.workflows.dy_ligands import DyLigandSettings, run_dy_ligands

    ligs = [g.smiles for g in load_ligands("default", 5)][:300]
    model, _ = fit_vae(ligs[:280], ligs[280:], "proxies", {}, representation="selfies",
                       max_epochs=2)
    assert model.vocab.kind == "selfies"
    path = save_vae(model, tmp_path / "selfies.npz")   # no metrics in its header: the report
    # shows '-' for what it lacks
    s = DyLigandSettings.quick(pretrained=str(path), max_heavy_atoms=5, n_labelled=8,
                               seeds_per_bin=1, samples_per_seed=1, min_pairs=0, top_seeds=2,
                               bin_draws=100, repop_draws=100, n_repopulate=1,
                               curve_batches=1, workers=1)
    res = run_dy_ligands(tmp_path / "camp", s)
    assert res["train"]["pretrained"] == str(path)
    assert res["map"]["n_gaps"] == res["gaps"]["labelled"] >= 4
    rows = res["map"]["sampling_curve"]["rows"]
    assert rows and rows[0]["n_samples"] == 100
    # generated ligands are SMILES (a SELFIES string would start with '[')
    from molmag.generative.corpus import as_ligand

    gen = [g for lst in json.loads((tmp_path / "camp" / "seed_bins.json").read_text())[
        "generated"].values() for g in lst]
    assert all(not g.startswith("[") or as_ligand(g) is not None for g in gen)
    assert all(as_ligand(g) is not None for g in gen)
    assert "repopulate" in res and "report" in res
    # the folder holds this model's run: another model is refused, not mixed in
    with pytest.raises(ValueError, match="pretrained"):
        run_dy_ligands(tmp_path / "camp", DyLigandSettings.quick(
            pretrained="gauss-ii-qm9", max_heavy_atoms=5, n_labelled=6, workers=1))


def test_seed_bins_ask_for_enough_pairs():
    """The quick --pretrained campaign asks for >= 60 seed/sample pairs (issue 18, item 4)
    however many seeds its bins hold; the other modes keep their sizes."""
    from molmag.workflows.dy_ligands import DyLigandSettings, samples_per_seed

    s = DyLigandSettings.quick(pretrained="gauss-ii-qm9")
    assert s.min_pairs == 60
    assert samples_per_seed(s, 12) == 6          # 6 bins x 2 seeds: 72 asked
    assert samples_per_seed(s, 10) == 7          # 10 seeds in the bins: 70 asked
    for n in range(1, 13):
        assert n * samples_per_seed(s, n) >= 1.1 * 60
    full = DyLigandSettings.full()
    assert samples_per_seed(full, 30) == 10 and samples_per_seed(full, 3) == 10
    assert samples_per_seed(DyLigandSettings.quick(), 6) == 2


def test_vae_train_gauss1_head_on_kramers_gaps(tmp_path):
    """GAUSS-I: the head reads the latent and the structural features of the labelled
    Dy(H2O)5L2 complexes (labels from the crystal-field engine, through the pipeline)."""
    from molmag.generative.labels import STRUCTURE_FEATURES, gap_table
    from molmag.generative.training import load_vae

    path = _config(tmp_path, head="gaps", max_heavy_atoms=3, n_train=None, max_epochs=1,
                   labels={"n": 2, "workers": 1, "dataset": "gaps.db"})
    res = runner.invoke(app, ["vae", "train", str(path), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout[res.stdout.index("{"):])
    table = gap_table(tmp_path / "gaps.db")
    assert m["labelled"] == len(table) == 2
    model = load_vae(tmp_path / "vae.npz")
    assert model.config.n_properties == 7 and model.config.n_extra == len(STRUCTURE_FEATURES)
    lig = next(iter(table))
    z = np.zeros((1, model.config.latent_dim))
    feats = np.array([[table[lig][k] for k in STRUCTURE_FEATURES]])
    assert model.predict_properties(z, feats).shape == (1, 7)


def test_fit_vae_selfies_round_trip_strings():
    """A SELFIES model built from SMILES input: the vocabulary is SELFIES, its training strings
    decode back to the input ligands."""
    from molmag.generative.runs import fit_vae
    from molmag.generative.vocab import selfies_to_smiles

    model, m = fit_vae(LIGANDS, LIGANDS[:3], "none", {}, representation="selfies",
                       max_epochs=1)
    assert model.vocab.kind == "selfies" and m["n_train"] == len(LIGANDS)
    assert all(t.startswith("[") for t in model.vocab.tokens[1:])
    from molmag.generative.sampling import canonical_smiles

    assert [canonical_smiles(selfies_to_smiles(s)) for s in model.training_strings] == \
        [canonical_smiles(s) for s in LIGANDS]


def test_dy_ligands_cli_refusals(tmp_path):
    res = runner.invoke(app, ["campaign", "dy-ligands", "--quick", "--corpus",
                              str(tmp_path / "none.csv"), "-o", str(tmp_path / "c")])
    assert res.exit_code == 1 and "none.csv" in res.output
    res = runner.invoke(app, ["campaign", "dy-ligands", "--quick", "--stop-after", "pso",
                              "-o", str(tmp_path / "c")])
    assert res.exit_code == 1 and "no stage 'pso'" in res.output and "repopulate" in res.output
    # --model names the pretrained model: it needs --pretrained, and a known name or a file
    res = runner.invoke(app, ["campaign", "dy-ligands", "--quick", "--model",
                              "gauss-ii-qm9-selfies", "-o", str(tmp_path / "m")])
    assert res.exit_code == 1 and "give --pretrained too" in res.output
    res = runner.invoke(app, ["campaign", "dy-ligands", "--quick", "--pretrained", "--model",
                              "gauss-ii-zinc", "-o", str(tmp_path / "m")])
    assert res.exit_code == 1 and "gauss-ii-zinc" in res.output \
        and "gauss-ii-qm9-selfies" in res.output
    assert not (tmp_path / "m").exists()


def test_vocabulary_encodes(memorised):
    voc = memorised.vocab
    assert voc.encodes("[O-]c1ccccc1") and voc.encodes("O=P(C)(C)C")
    assert not voc.encodes("O=P[PH](C)(C)C")          # token never seen in training
    assert not voc.encodes("C" * (voc.max_len + 1))   # longer than the model's strings


# -- LP sampling table: re-encoding, sanity, seed checks -------------------------------------
PH_LIGANDS = ["O=P(C)CCCC", "O=P(C)(C)C", "OC", "[O-]c1ccccc1", "O=S(C)C", "n1ccccc1"]


@pytest.fixture(scope="module")
def ph_model():
    """A model that memorises 'O=P(C)CCCC': RDKit writes its donor-first form 'O=[PH](C)CCCC'
    with the token '[PH]', which this vocabulary never saw (issue 16: fatal in vae sample)."""
    cfg = VAEConfig(latent_dim=8, encoder_hidden=(32, 32, 16), decoder_hidden=(64, None),
                    n_properties=4)
    props = np.array([[8, -0.5, 1.0, 1.0], [8, -0.6, 1.2, 0.9], [8, -0.4, 0.5, 0.8],
                      [8, -0.9, 0.3, 1.1], [8, -0.7, 1.5, 1.0], [7, -0.3, 0.8, 1.2]] * 8)
    return train_vae(PH_LIGANDS * 8, config=cfg, properties=props, max_epochs=80, batch_size=16,
                     lr=3e-3, seed=0, min_delta=0.0)


def test_sample_table_counts_samples_it_cannot_reencode(ph_model):
    from molmag.generative.runs import sample_table
    from molmag.generative.sampling import decode, encode

    assert not ph_model.vocab.encodes("O=[PH](C)CCCC")
    assert decode(ph_model, encode(ph_model, ["O=P(C)CCCC"]))[0] == "O=P(C)CCCC"
    metrics, rows = sample_table(ph_model, ["O=P(C)CCCC", "[O-]c1ccccc1"], 0.0, 20)
    m = metrics[0]
    assert m["n_samples"] == 20 and m["n_valid"] == 20 and m["n_valid_sane"] == 20
    assert m["valid_sane_rate"] == 1.0 and m["n_not_reencodable"] == 1
    row = next(r for r in rows if r["seed"] == "O=P(C)CCCC")
    assert row["smiles"] == "O=[PH](C)CCCC" and row["reencodable"] is False
    assert row["count"] == 20 and row["sane"] and row["donor_kind"] == "phosphoryl O"
    # its properties are predicted from the decoded string, the same latent point as the seed
    pred = ph_model.predict_properties(encode(ph_model, ["O=P(C)CCCC"]), None)[0]
    assert row["pred_donor_Z"] == pytest.approx(float(pred[0]), rel=1e-5)
    assert metrics[1]["n_not_reencodable"] == 0
    # wider sampling: every valid sample is counted sane or not; the counts add up
    metrics, rows = sample_table(ph_model, ["O=P(C)CCCC"], 1.5, 300, rng_seed=4)
    m = metrics[0]
    assert m["n_valid_sane"] <= m["n_valid"] <= 300
    assert m["n_valid_sane"] == sum(r["count"] for r in rows if r["sane"])
    assert m["n_valid"] == sum(r["count"] for r in rows)
    assert m["n_not_reencodable"] == sum(1 for r in rows if not r["reencodable"])
    for r in rows:
        assert r["sane"] == (r["valence_problems"] == "")


def test_vae_sample_cli_refuses_bad_seeds_and_reports_sanity(ph_model, tmp_path):
    from molmag.generative.runs import check_seeds
    from molmag.generative.training import save_vae

    with pytest.raises(ValueError, match=r"seed 'C1CC\(O' is not a SMILES that RDKit can read"):
        check_seeds(ph_model, ["OC", "C1CC(O"])
    with pytest.raises(ValueError, match=r"seed 'OCCCl': the model cannot encode it"):
        check_seeds(ph_model, ["OCCCl"])
    # methanol written carbon first, hypochlorous acid: not donor-first ligands
    with pytest.raises(ValueError, match=r"seed 'CO' is not a donor-first ligand: atom 0 \(C\)"):
        check_seeds(ph_model, ["CO"])
    with pytest.raises(ValueError, match=r"seed 'OCl' is not a donor-first ligand"):
        check_seeds(ph_model, ["OCl"])
    assert check_seeds(ph_model, ["O=P(C)CCCC", "[O-]C1=CC=CC=C1", "OC"]) == [
        "O=P(C)CCCC", "[O-]c1ccccc1", "OC"]      # corpus form when readable, else as written
    path = save_vae(ph_model, tmp_path / "ph.npz")
    res = runner.invoke(app, ["vae", "sample", str(path), "-s", "C1CC(O", "--n", "10"])
    assert res.exit_code == 1 and "C1CC(O" in res.output and "valid" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["vae", "sample", str(path), "-s", "O=P(C)CCCC", "--n", "30",
                              "--sigma", "0", "-o", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    assert "valid & sane" in res.output and "100.0%" in res.output
    assert "1 unique molecule(s) the model cannot re-encode" in res.output
    text = (tmp_path / "s.csv").read_text()
    assert "O=[PH](C)CCCC" in text and "reencodable" in text.splitlines()[0]
    res = runner.invoke(app, ["vae", "sample", str(path), "-s", "O=P(C)CCCC", "--n", "30",
                              "--json"])
    m = json.loads(res.stdout)["metrics"][0]
    assert m["n_valid_sane"] <= m["n_valid"] and "n_not_reencodable" in m


# -- dy-ligands report numbers ---------------------------------------------------------------
def test_seed_sample_r2_interval_by_hand():
    """Two seeds A (0 cm-1) and B (10 cm-1), two samples each.  Resampling whole seeds gives AB
    or BA (R^2 = 1 - 4/104) or AA / BB (samples scatter +-1 around their own seed: R^2 = 0),
    each half the time: the 95 % interval is [0, 1 - 4/104]."""
    from molmag.generative.analysis import seed_sample_r2_interval

    y0, y = [0, 0, 10, 10.0], [1, -1, 9, 11.0]
    ci = seed_sample_r2_interval(y0, y, groups=["A", "A", "B", "B"], n_boot=4000)
    assert ci["r2"] == pytest.approx(1 - 4 / 104)
    assert ci["low"] == pytest.approx(0.0, abs=1e-12)
    assert ci["high"] == pytest.approx(1 - 4 / 104)
    assert (ci["n_pairs"], ci["n_groups"], ci["n_boot"], ci["level"]) == (4, 2, 4000, 0.95)
    # a perfect predictor: every resample has R^2 = 1
    perfect = seed_sample_r2_interval([1, 2, 3, 4, 5.0], [1, 2, 3, 4, 5.0])
    assert perfect["low"] == perfect["high"] == 1.0 and perfect["n_groups"] == 5
    # one seed only: no interval, said so in the report's words
    from molmag.workflows.dy_ligands_report import r2_interval

    one = seed_sample_r2_interval([3, 3, 3.0], [1, 2, 4.0], groups=[0, 0, 0])
    assert one["low"] is None and one["n_groups"] == 1
    assert r2_interval({"r2_dE01_interval": one}) == \
        "(3 pairs from 1 seeds: too few for a bootstrap interval)"
    assert r2_interval({"r2_dE01_interval": ci}) == \
        "(95 % bootstrap interval 0.00 to 0.96, seeds resampled; 4 pairs from 2 seeds)"
    assert r2_interval({"n_labelled": 1}) == "(1 pairs: too few for an interval)"
    wide = dict(ci, low=-1021.34, high=0.89)
    assert r2_interval({"r2_dE01_interval": wide}) == \
        "(95 % bootstrap interval below −1 to 0.89, seeds resampled; 4 pairs from 2 seeds)"


def test_per_seed_table_and_generated_stats(memorised):
    from molmag.chem.valence import is_sane
    from molmag.workflows.dy_ligands_report import per_seed_rows

    g = generate_ligands(memorised, "[O-]c1ccccc1", 5, sigmas=(0.5, 1.0), draws_per_sigma=200,
                         exclude=set(LIGANDS), rng_seed=1)
    st = g.stats()
    assert st["draws"] == g.draws and st["n_valid"] == g.n_valid
    assert len(g.ligands) <= st["n_unique"] <= st["n_valid"] <= st["draws"]
    assert st["n_novel"] == len(g.ligands)
    assert st["n_novel_sane"] == sum(1 for x in g.ligands if is_sane(x))
    rows = per_seed_rows([{"bin": 2, "seed": "X", "draws": 200, "n_valid": 150,
                           "n_unique": 30, "n_novel": 12, "n_novel_sane": 11,
                           "sigmas": [0.1, 0.2]}, {"bin": 3, "seed": "Y"}], "bin")
    assert rows == [[2, "`X`", "0.1, 0.2", 200, "75.0 %", "30 (20.0 %)", 12, 11]]
