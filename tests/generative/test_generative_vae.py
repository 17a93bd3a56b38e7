"""The GAUSS VAE: vocabularies, model, losses, training/resume, model files, sampling and
generation metrics (tiny models; a few seconds on one core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from molmag.generative.sampling import (
    canonical_smiles,
    decode,
    encode,
    generation_metrics,
    plot_sampling_curve,
    reconstruction_accuracy,
    sample_around,
    sampling_curve,
)
from molmag.generative.training import load_vae, save_vae, train_vae
from molmag.generative.vae import MoleculeVAE, VAEConfig, kl_divergence, masked_mse, vae_loss
from molmag.generative.vocab import Vocabulary, smiles_to_selfies, tokenize_smiles

torch.set_num_threads(1)

_BUILTIN = ["C", "N", "O", "C#C", "C#N", "C=O", "CC", "CO", "CC#C", "CC#N", "CC=O", "NC=O",
            "CCC", "CCO", "COC", "C1CC1", "C1CO1", "CC(C)=O", "CC(N)=O", "NC(N)=O", "CC(C)C",
            "CC(C)O", "C#CC#C", "NCC=O", "OCC=O", "CC1CC1", "C1CCC1", "C1COC1", "CCC#C",
            "CCC=O", "CCCO", "CCOC", "OC1CC1", "NC1CC1", "CN1CC1", "C=CC=O", "CC=CC", "c1cc[nH]c1",
            "c1ccoc1", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "CCl", "CBr", "ClCCl"]

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as conftest

TINY = dict(latent_dim=8, encoder_hidden=(16, 16, 8), decoder_hidden=(32, None),
            decoder="gauss")


def _corpus(n: int = 200) -> list[str]:
    path = SHARED_DATA / "qm9_smiles.csv"
    if path.is_file():
        lines = path.read_text().splitlines()[1:n + 1]
        return [s.strip() for s in lines if s.strip()]
    return (_BUILTIN * (n // len(_BUILTIN) + 1))[:n]


@pytest.fixture(scope="module")
def trained():
    strings = _corpus(200)
    model = train_vae(strings, config=VAEConfig(**TINY), max_epochs=6, batch_size=50, seed=1,
                      lr=3e-3)
    return model, strings


# -- vocabulary ----------------------------------------------------------------------------
def test_smiles_tokens():
    assert tokenize_smiles("C[C@@H](Cl)c1cc[nH]c1Br.[O-]C%10CC%10") == [
        "C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "[nH]", "c", "1", "Br", ".", "[O-]",
        "C", "%10", "C", "C", "%10"]


@pytest.mark.parametrize("kind", ["smiles", "selfies"])
def test_one_hot_round_trip(kind):
    smiles = ["CCO", "c1ccccc1Cl", "[O-]C(=O)CBr", "C[C@@H](N)C(=O)O", "C1CC2CC1CC2"]
    strings = smiles if kind == "smiles" else [smiles_to_selfies(s) for s in smiles]
    v = Vocabulary.from_corpus(strings, kind)
    assert v.tokens[0] == " "
    x = v.one_hot(strings)
    assert x.shape == (len(strings), v.max_len, len(v))
    assert np.all(x.sum(-1) == 1.0)
    # the shorter strings are padded with ' ' (index 0)
    lengths = [len(v.tokenize(s)) for s in strings]
    assert max(lengths) == v.max_len
    for row, n in zip(x, lengths):
        assert np.all(row[n:, 0] == 1.0)
    assert v.decode_one_hot(x) == strings
    assert Vocabulary.from_dict(v.to_dict()).decode_one_hot(x) == strings
    if kind == "selfies":
        assert [canonical_smiles(v.to_smiles(s)) for s in strings] == \
            [canonical_smiles(s) for s in smiles]


def test_vocabulary_errors_name_the_string():
    v = Vocabulary.from_corpus(["CCO", "CN"])
    with pytest.raises(ValueError, match=r"CCCl.*'Cl'"):
        v.indices(["CCCl"])
    with pytest.raises(ValueError, match=r"'CCCCO'.*max_len=3"):
        v.indices(["CCCCO"])


# -- model and loss --------------------------------------------------------------------------
def test_shapes_paper_size():
    v = Vocabulary.from_corpus(["CCO", "c1ccccc1Cl", "[O-]C=O"])
    m = MoleculeVAE(v, VAEConfig.gauss1(n_extra=3, decoder="gauss"))
    x = torch.as_tensor(v.one_hot(["CCO", "[O-]C=O"]))
    out = m(x, torch.zeros(2, 3))
    assert out["logits"].shape == (2, v.max_len, len(v))
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (2, 32)
    assert out["properties"].shape == (2, 7)
    assert [g.hidden_size for g in m.encoder_grus] == [128, 96, 32]
    assert all(g.bidirectional for g in [*m.encoder_grus, *m.decoder_grus])
    assert [g.hidden_size for g in m.decoder_grus] == [128, len(v)]
    assert [mod.out_features for mod in m.head.net if isinstance(mod, torch.nn.Linear)] == \
        [32, 8, 7]
    assert m.head.net[0].in_features == 32 + 3
    m2 = MoleculeVAE(v, VAEConfig.gauss2())
    assert [mod.out_features for mod in m2.head.net if isinstance(mod, torch.nn.Linear)] == \
        [32, 4]


def test_kl_zero_at_standard_normal():
    assert float(kl_divergence(torch.zeros(5, 32), torch.zeros(5, 32))) == 0.0
    # analytic value per dimension: 1/2 (mu^2 + s^2 - 1 - ln s^2)
    mu, lv = torch.full((1, 4), 1.0), torch.full((1, 4), np.log(2.0))
    assert float(kl_divergence(mu, lv)) == pytest.approx(0.5 * (1 + 2 - 1 - np.log(2.0)))


def test_masked_property_loss_equals_labelled_rows():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 4, generator=g)
    y = torch.randn(6, 4, generator=g)
    y[[1, 4]] = float("nan")
    labelled = [0, 2, 3, 5]
    ref = torch.mean((pred[labelled] - y[labelled]) ** 2)
    assert float(masked_mse(pred, y)) == pytest.approx(float(ref), rel=1e-6)
    assert float(masked_mse(pred, torch.full_like(y, float("nan")))) == 0.0
    # in the total loss: a batch with unlabelled rows == its labelled rows' property loss
    out = {"logits": torch.zeros(6, 3, 2), "mu": torch.zeros(6, 2), "logvar": torch.zeros(6, 2),
           "properties": pred.requires_grad_()}
    parts = vae_loss(out, torch.zeros(6, 3, dtype=torch.long), y)
    assert float(parts["prop"].detach()) == pytest.approx(float(ref), rel=1e-6)
    parts["total"].backward()
    assert torch.all(pred.grad[[1, 4]] == 0)


# -- training ------------------------------------------------------------------------------
def test_training_reduces_reconstruction_loss(trained):
    model, strings = trained
    h = model.history
    assert h[-1]["train_recon"] < 0.8 * h[0]["train_recon"]
    assert model.best_epoch == int(np.argmin([r["monitor"] for r in h])) + 1


def test_sigma_zero_validity_is_reconstruction_validity(trained):
    model, strings = trained
    for seed_string in strings[-3:]:
        rec = decode(model, encode(model, [seed_string]))[0]
        row = sampling_curve(model, seed_string, training_set=strings, sigmas=[0.0],
                             n_batches=1, batch_size=5)[0]
        assert row["valid_rate"] == (1.0 if canonical_smiles(rec) else 0.0)
        assert row["n_unique"] <= 1


def test_semi_supervised_training_and_resume(tmp_path):
    strings = _corpus(60)
    rng = np.random.default_rng(0)
    props = rng.normal(size=(len(strings), 2)) * 10 + 5
    props[::2] = np.nan  # half of the molecules unlabelled
    cfg = VAEConfig(**TINY, n_properties=2, head_hidden=(8,), head_activations=("silu",),
                    head_dropout=0.1)
    kw = dict(config=cfg, properties=props, val_strings=strings[:10],
              val_properties=props[:10], max_epochs=4, batch_size=20, seed=3)
    full = train_vae(strings, **kw)
    ck = tmp_path / "run.ckpt"
    part = train_vae(strings, checkpoint=ck, max_epochs_this_call=2, **kw)
    assert len(part.history) == 2 and ck.exists()
    resumed = train_vae(strings, checkpoint=ck, **kw)
    assert len(resumed.history) == 4
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert "train_prop" in full.history[0] and "val_total" in full.history[0]
    assert np.allclose(full.prop_mean.numpy(), np.nanmean(props, axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="another training run"):
        train_vae(strings, checkpoint=ck, **{**kw, "seed": 4})


def test_save_load_round_trip(trained, tmp_path):
    model, strings = trained
    path = save_vae(model, tmp_path / "vae.npz")
    back = load_vae(path)
    assert back.vocab.to_dict() == model.vocab.to_dict()
    assert back.training_strings == strings
    x = torch.as_tensor(model.vocab.one_hot(strings[:20]))
    with torch.no_grad():
        a, b = model(x, sample=False), back(x, sample=False)
    assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["mu"], b["mu"])
    with np.load(path, allow_pickle=False) as data:  # readable without pickles
        assert "header" in data.files
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a molmag VAE file"):
        load_vae(tmp_path / "junk.npz")


def test_sampling_reproducible_and_curve(trained, tmp_path):
    model, strings = trained
    a = sample_around(model, strings[10], 0.5, 20, seed=7)
    b = sample_around(model, strings[10], 0.5, 20, seed=7)
    assert a == b and len(a) == 20
    rows = sampling_curve(model, strings[10], sigmas=[0.0, 0.5, 1.0], n_batches=2,
                          batch_size=10, seed=1)
    assert rows == sampling_curve(model, strings[10], sigmas=[0.0, 0.5, 1.0], n_batches=2,
                                  batch_size=10, seed=1)
    assert [r["n_samples"] for r in rows] == [20, 20, 20]
    cum = [r["cumulative_unique_novel"] for r in rows]
    assert cum == sorted(cum)
    assert plot_sampling_curve(rows, tmp_path / "curve.png").stat().st_size > 0
    acc = reconstruction_accuracy(model, strings[:20])
    assert 0.0 <= acc <= 1.0


def test_generation_metrics_hand_made():
    training = ["CCO", "c1ccccc1"]
    # OCC == CCO (not novel); C1=CC=CC=C1 == benzene (kekulised canonical, not novel);
    # 'C(' invalid; CCN twice (novel, one unique); CC(=O)O novel
    samples = ["OCC", "C1=CC=CC=C1", "C(", "CCN", "NCC", "CC(=O)O", ""]
    m = generation_metrics(samples, training)
    assert (m["n_samples"], m["n_valid"], m["n_novel"], m["n_unique"], m["n_unique_novel"]) == \
        (7, 5, 3, 4, 2)
    assert m["valid_rate"] == pytest.approx(5 / 7)
    assert m["unique_rate"] == pytest.approx(2 / 7)
    assert m["uniqueness"] == pytest.approx(4 / 5)
    assert m["novelty"] == pytest.approx(2 / 4)
    sf = generation_metrics([smiles_to_selfies(s) for s in ["CCO", "CCN"]], training, "selfies")
    assert (sf["n_valid"], sf["n_novel"]) == (2, 1)
