"""The autoregressive VAE decoder, its training options, model files across versions and the
MOSES-style metrics (tiny models, a few seconds on one core)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from molmag.generative.metrics import KEYS, evaluate, internal_diversity, prior_metrics
from molmag.generative.sampling import (
    canonical_smiles,
    decode,
    encode,
    reconstruction_accuracy,
    sample_prior,
)
from molmag.generative.training import (
    kl_weight_at,
    load_vae,
    randomised_smiles,
    save_vae,
    train_vae,
)
from molmag.generative.vae import MoleculeVAE, VAEConfig, kl_divergence, sequence_log_likelihood
from molmag.generative.vocab import Vocabulary

torch.set_num_threads(1)

#: 48 donor-first ligands (QM9-like, donor atom first)
LIGANDS = [
    "O=C(C)C", "OCC", "N#CC", "[O-]C(=O)C", "O=P(C)(C)C", "Nc1ccccc1", "OC(C)C", "n1ccccc1",
    "O=CC", "OC", "NC", "N(C)C", "O=C(N)C", "O=C(OC)C", "OC1CC1", "N#CC#C", "O(C)C",
    "O=S(C)C", "O=S(=O)(C)C", "[O-]C", "[O-]CC", "[N-]C", "OCC#N", "O=C1CCC1", "OC1CCC1",
    "n1ccoc1", "n1cc[nH]c1", "O=C(C)CC", "OCCO", "NCCO", "N#CCC", "O=CC=C", "OC=O",
    "[O-]C=O", "NC=O", "O=C(C)N(C)C", "OCC(C)C", "OCCC", "NCC", "NC(C)C", "O=C1CC1",
    "O=C(CC)CC", "N(CC)CC", "OC(C)(C)C", "[O-]c1ccccc1", "Oc1ccccc1", "N=C(C)C", "O=CN(C)C"]

SMALL = dict(latent_dim=8, encoder_hidden=(32,), ar_hidden=64, ar_layers=1, embed_dim=16)


@pytest.fixture(scope="module")
def overfit():
    """~50 ligands memorised: the greedy decoding of each one's mu is the ligand."""
    cfg = VAEConfig(**{**SMALL, "latent_dim": 16, "ar_hidden": 96}, kl_weight=1e-4)
    return train_vae(LIGANDS, config=cfg, max_epochs=80, batch_size=16, lr=1e-2, seed=0,
                     window=500)


def test_teacher_forced_loss_equals_sampled_log_likelihood():
    """The log-likelihood the sampler accumulates step by step equals the teacher-forced one
    of the same string (same z), and the masked mean loss is its per-token average."""
    v = Vocabulary.from_corpus(LIGANDS)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        m = MoleculeVAE(v, VAEConfig(**SMALL)).eval()
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    for temperature in (0.0, 1.0):
        tok, ll = m.generate(z, temperature, torch.Generator().manual_seed(2))
        logits = m.decode(z, tok)
        tf = sequence_log_likelihood(logits, tok)
        assert torch.allclose(tf, ll, atol=1e-4), (tf - ll).abs().max()
    out = m(torch.nn.functional.one_hot(tok, len(v)).float(), target_idx=tok, sample=False)
    from molmag.generative.vae import decoding_mask, reconstruction_loss

    recon = reconstruction_loss(out["logits"], tok, out["mask"]).detach()
    n_scored = decoding_mask(tok).sum()
    ll_tf = sequence_log_likelihood(m.decode(out["z"], tok), tok).detach()
    assert float(recon) == pytest.approx(float(-ll_tf.sum() / n_scored), rel=1e-5)


def test_overfit_reconstructs_exactly(overfit):
    assert reconstruction_accuracy(overfit, LIGANDS) == 1.0
    # sampling at temperature -> 0 is greedy decoding
    mu = encode(overfit, LIGANDS[:8])
    assert mu.shape == (8, 16)
    assert decode(overfit, mu, temperature=1e-6, seed=0) == LIGANDS[:8]


def test_prior_samples_reproducible_and_metrics(overfit):
    a = sample_prior(overfit, 200, seed=4)
    assert a == sample_prior(overfit, 200, seed=4)
    assert a != sample_prior(overfit, 200, seed=5)
    res = evaluate(overfit, held_out=LIGANDS[:10], n=300, lp_seeds=2, lp_draws=50,
                   lp_sigmas=(0.0, 0.5), max_div=200)
    assert set(KEYS) <= set(res)
    assert res["reconstruction"] == 1.0
    assert res["unique_1k"] is None and res["unique_10k"] is None  # fewer than 1000 drawn
    assert 0.0 <= res["valid"] <= res["valid_rdkit"] <= 1.0
    # sigma = 0: every draw is the (memorised, so not novel) seed itself
    row0 = res["lp_curve"][0]
    assert row0["valid"] == 1.0 and row0["unique"] == pytest.approx(1 / 50)
    assert row0["novel"] == 0.0 and row0["unique_novel_per_1000"] == 0.0


def test_prior_metrics_by_hand():
    samples = ["OCC", "C(O)C", "OCC", "O=[SH](C)(CC)C(C)C", "C1CC(", "CCCC", "[O-]C1=CC=C1",
               "n1ccccc1"]
    res = prior_metrics(samples, training={canonical_smiles("CCO")})
    # valid & sane: OCC x2, C(O)C (same molecule), CCCC, n1ccccc1 -> 5 of 8
    assert res["valid"] == 5 / 8
    assert res["valid_rdkit"] == 7 / 8
    assert res["n_unique"] == 3 and res["novel"] == pytest.approx(2 / 3)
    # donor-first ligands among the valid: OCC, OCC, n1ccccc1 (C(O)C and CCCC are not)
    assert res["ligand_share"] == pytest.approx(3 / 5)


def test_internal_diversity_limits():
    assert internal_diversity(["CCO", "CCO"]) is None  # one distinct molecule
    d = internal_diversity(["CCO", "c1ccccc1"])
    assert d == pytest.approx(1.0)  # no Morgan bit in common
    assert 0 < internal_diversity(["CCO", "CCCO", "CCCCO"]) < 1


def test_free_bits_and_annealing():
    mu = torch.tensor([[0.1, 2.0], [0.1, 2.0]])
    lv = torch.zeros(2, 2)
    per_dim = 0.5 * mu[0] ** 2  # KL of N(mu, 1) from N(0, 1)
    assert float(kl_divergence(mu, lv)) == pytest.approx(float(per_dim.mean()))
    lam = 0.5
    assert float(kl_divergence(mu, lv, lam)) == pytest.approx(
        float(torch.clamp(per_dim, min=lam).mean()))
    assert kl_weight_at(0.1, 2.0, 0.0) == 0.0
    assert kl_weight_at(0.1, 2.0, 1.0) == pytest.approx(0.05)
    assert kl_weight_at(0.1, 2.0, 5.0) == 0.1
    assert kl_weight_at(0.1, 0.0, 0.0) == 0.1


def test_randomised_smiles_keep_the_donor_first():
    from rdkit import Chem

    for smi in ("[O-]C(=O)c1ccccc1C", "O=P(NC(C)C)(NC(C)C)C(C)(C)C", "n1cc(C)c(O)cc1"):
        forms = randomised_smiles(smi, 5, seed=1)
        assert forms and len(set(forms)) == len(forms) and smi not in forms
        assert forms == randomised_smiles(smi, 5, seed=1)
        ref = Chem.MolFromSmiles(smi).GetAtomWithIdx(0)
        for f in forms:
            assert canonical_smiles(f) == canonical_smiles(smi)
            a = Chem.MolFromSmiles(f).GetAtomWithIdx(0)
            assert (a.GetSymbol(), a.GetFormalCharge(), a.GetDegree()) == \
                (ref.GetSymbol(), ref.GetFormalCharge(), ref.GetDegree())


def test_mid_epoch_checkpoint_resumes_bit_identically(tmp_path):
    kw = dict(config=VAEConfig(**SMALL, word_dropout=0.2, free_bits=0.05), max_epochs=2,
              batch_size=8, seed=2, kl_anneal_epochs=1.0, augment=2,
              val_strings=LIGANDS[:6])
    full = train_vae(LIGANDS, **kw)
    ck = tmp_path / "ck.pt"
    # a checkpoint after every batch, and the run stopped by its time budget after the first
    part = train_vae(LIGANDS, checkpoint=ck, checkpoint_seconds=1e-9, max_seconds=1e-9, **kw)
    assert part.history[0].get("fraction", 1.0) < 1.0 or len(part.history) < 2
    c = torch.load(ck, weights_only=True)
    assert c["partial"] is None  # the time budget closes the (partial) epoch
    # a partial checkpoint written inside an epoch resumes at its batch
    ck2 = tmp_path / "ck2.pt"
    train_vae(LIGANDS, checkpoint=ck2, checkpoint_seconds=1e-9, max_epochs_this_call=1, **kw)
    c = torch.load(ck2, weights_only=True)
    c["epoch"] = 0
    c["partial"] = None
    # emulate a kill inside epoch 1: rerun from the partial state written mid-epoch
    part_state = _mid_epoch_checkpoint(LIGANDS, kw, tmp_path / "ck3.pt")
    resumed = train_vae(LIGANDS, checkpoint=part_state, **kw)
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def _mid_epoch_checkpoint(strings, kw, path):
    """Run epoch 1 writing a checkpoint after every batch, stop it (exception from the step
    log) after 3 batches: the file then holds the state after batch 3 (kill -9 analogue)."""
    class Stop(Exception):
        pass

    def stop(rec):
        raise Stop

    import molmag.generative.training as T

    calls = {"n": 0}
    orig = T._save_checkpoint

    def counting(p, c):
        orig(p, c)
        if c.get("partial") is not None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise Stop

    T._save_checkpoint = counting
    try:
        with pytest.raises(Stop):
            train_vae(strings, checkpoint=path, checkpoint_seconds=1e-9, **kw)
    finally:
        T._save_checkpoint = orig
    assert torch.load(path, weights_only=True)["partial"]["step"] == 3
    return path


def test_model_files_record_decoder_and_old_files_load(tmp_path, overfit):
    p = save_vae(overfit, tmp_path / "ar.npz")
    m = load_vae(p)
    assert m.config.decoder == "autoregressive"
    assert decode(m, encode(m, LIGANDS)) == LIGANDS
    assert m.training_strings == LIGANDS
    assert canonical_smiles("CCO") in m.training_canonical
    # a version-1 file (before the decoder was recorded): the paper's gauss decoder
    g = train_vae(LIGANDS[:20], config=VAEConfig(latent_dim=4, encoder_hidden=(8,),
                                                  decoder_hidden=(8, None), decoder="gauss"),
                  max_epochs=1, batch_size=10)
    header = {"format": "molmag-vae", "version": 1, "molmag": "0.1",
              "vocabulary": g.vocab.to_dict(),
              "config": {k: v for k, v in g.config.to_dict().items()
                         if k not in ("decoder", "ar_hidden", "ar_layers", "embed_dim",
                                      "word_dropout", "free_bits")},
              "history": [], "best_epoch": None, "metrics": {}, "training": {}}
    arrays = {f"w/{k}": v.numpy() for k, v in g.state_dict().items()}
    arrays["training_strings"] = np.asarray(LIGANDS[:20], dtype=str)
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "v1.npz", **arrays)
    old = load_vae(tmp_path / "v1.npz")
    assert old.config.decoder == "gauss" and old.training_strings == LIGANDS[:20]
    z = np.zeros((1, 4), np.float32)
    assert decode(old, z) == decode(g, z)
    # weights of one decoder under a header of the other: refused, naming the decoder
    header2 = dict(header, version=2, config={**g.config.to_dict(), "decoder": "autoregressive"})
    arrays["header"] = np.array(json.dumps(header2))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="autoregressive VAE"):
        load_vae(tmp_path / "bad.npz")
    header3 = dict(header, version=99)
    arrays["header"] = np.array(json.dumps(header3))
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(ValueError, match="newer"):
        load_vae(tmp_path / "new.npz")


def test_selfies_model_samples_are_valid():
    from molmag.generative.vocab import smiles_to_selfies

    sf = [smiles_to_selfies(s) for s in LIGANDS]
    m = train_vae(sf, config=VAEConfig(**SMALL), kind="selfies", max_epochs=2, batch_size=16)
    samples = sample_prior(m, 200, seed=0)
    res = prior_metrics(samples, set(), "selfies")
    # every SELFIES that decodes to a non-empty SMILES is a molecule RDKit reads (strings of
    # only [Ring]/[Branch] symbols, or the end token first, decode to nothing)
    from molmag.generative.vocab import selfies_to_smiles

    assert res["valid_rdkit"] == pytest.approx(
        sum(1 for s in samples if selfies_to_smiles(s)) / 200)


def test_selfies_decoding_fills_open_valences_with_hydrogens():
    """A charged SELFIES atom whose valence the string leaves open decodes to the closed-shell
    molecule ([N-1] with one bond -> [NH-]), donor first; strings without open valences come
    back exactly as selfies.decoder writes them; corpus ligands round-trip."""
    import selfies as sf
    from rdkit import Chem

    from molmag.generative.vocab import selfies_to_smiles, smiles_to_selfies

    out = selfies_to_smiles("[N-1][C][Branch1][C][C][=C][C]")
    mol = Chem.MolFromSmiles(out)
    assert mol.GetAtomWithIdx(0).GetSymbol() == "N" and mol.GetAtomWithIdx(0).GetTotalNumHs() == 1
    assert not any(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    assert Chem.MolToSmiles(mol) == Chem.MolToSmiles(Chem.MolFromSmiles("[NH-]C(C)=CC"))
    for s in ("[O-1][C][C]", "[N-1][C][C][Ring1][Ring1]", "[C][C][=O]"):
        assert selfies_to_smiles(s) == sf.decoder(s)
    for smi in ("[NH-]CC", "[N-](C)C", "[O-]c1ccccc1", "O=P(C)(C)C", "n1ccccc1"):
        back = selfies_to_smiles(smiles_to_selfies(smi))
        assert Chem.CanonSmiles(back) == Chem.CanonSmiles(smi)


def test_evaluate_cli_json_and_refusals(overfit, tmp_path):
    from typer.testing import CliRunner

    from molmag.cli.main import app

    p = save_vae(overfit, tmp_path / "m.npz")
    r = CliRunner().invoke(app, ["vae", "evaluate", str(p), "--n", "200", "--lp-seeds", "2",
                                 "--lp-draws", "20", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert set(KEYS) <= set(res) and res["reconstruction"] is None  # no held-out strings
    corpus = tmp_path / "held.smi"
    corpus.write_text("OCC\nO=C(C)C\nO[Si](C)(C)C\n")
    r = CliRunner().invoke(app, ["vae", "evaluate", str(p), "--corpus", str(corpus), "--n",
                                 "100", "--lp-seeds", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_held_out"] == 2  # [Si] is not in the vocabulary
    r = CliRunner().invoke(app, ["vae", "sample", str(p), "--prior", "--n", "100", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["n"] == 100
    r = CliRunner().invoke(app, ["vae", "sample", str(p), "--seeds", "CCO"])
    assert r.exit_code != 0 and "not a donor-first ligand" in r.output
    r = CliRunner().invoke(app, ["vae", "sample", str(p), "--seeds", "C1CC(O"])
    assert r.exit_code != 0 and "RDKit" in r.output
    r = CliRunner().invoke(app, ["vae", "evaluate", "no-such-model"])
    assert r.exit_code != 0 and "no-such-model" in r.output


def test_fine_tuning_starts_from_the_given_state(overfit, tmp_path):
    """train_vae(init_state=...) starts from a trained model (here with a larger KL weight,
    as scripts/train_pretrained_vae.py finetune does); the state enters the checkpoint's
    fingerprint; a state of another configuration is refused."""
    import dataclasses

    cfg = dataclasses.replace(overfit.config, kl_weight=0.5)
    state = {k: v.clone() for k, v in overfit.state_dict().items()}
    kw = dict(config=cfg, vocab=overfit.vocab, batch_size=16, lr=1e-2, seed=0, window=500)
    start = train_vae(LIGANDS, init_state=state, max_epochs=5, max_epochs_this_call=0, **kw)
    for k, v in start.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert reconstruction_accuracy(start, LIGANDS) == 1.0
    ck = tmp_path / "ft.ckpt"
    tuned = train_vae(LIGANDS, init_state=state, max_epochs=1, checkpoint=ck, **kw)
    assert tuned.history[0]["train_kl"] < overfit.history[-1]["train_kl"]
    with torch.random.fork_rng():
        torch.manual_seed(9)
        other = MoleculeVAE(overfit.vocab, cfg).state_dict()
    with pytest.raises(ValueError, match="another training run"):
        train_vae(LIGANDS, init_state=other, max_epochs=2, checkpoint=ck, **kw)
    small = dataclasses.replace(cfg, latent_dim=4)
    with pytest.raises(ValueError, match="init_state: not a state"):
        train_vae(LIGANDS, init_state=state, max_epochs=1, **{**kw, "config": small})
