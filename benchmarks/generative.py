"""Generative benchmark (issue 18): ligand VAEs on the QM9 ligand corpus against MOSES-style
targets, the autoregressive decoder beside the paper's (GAUSS, Khatibi et al. 2026) trained
for the same wall-clock time.

Run (each step resumable; a killed run continues from its checkpoint):

    python benchmarks/generative.py train --decoder autoregressive --minutes 30 --work W
    python benchmarks/generative.py train --decoder gauss --minutes 30 --work W
    python benchmarks/generative.py train --decoder autoregressive --representation selfies \
        --minutes 10 --work W
    python benchmarks/generative.py evaluate W/*.npz [--model-names ...] [--json]
    python benchmarks/generative.py table W/*.json [--campaign DIR]

* Corpus: the donor-first O/N ligands of QM9 (``molmag corpus``: 364,721 ligands, all <= 9
  heavy atoms), 5 % held out (``split_corpus(seed=0)``: the split of
  ``scripts/train_pretrained_vae.py``), the rest for training.
* ``train``: one VAE for ``--minutes`` of training, wall-clock or (``--clock cpu``, on a
  loaded machine) CPU minutes of the one-thread process (``train_vae(max_seconds=...)``:
  the epoch in progress when the budget runs out ends there; the best parameters on the
  held-out loss are kept). ``--decoder autoregressive`` is the shipped model's architecture
  (encoder bi-GRU 256, decoder GRU 2 x 256, KL weight 0.1 annealed over 0.25 epoch, free bits
  0.1 nat per dimension), ``gauss`` the paper's (encoder bi-GRU 128/96/32, decoder z repeated
  into bi-GRUs 128 and V; KL weight 0.01; batch 100).
* ``evaluate``: :func:`molmag.generative.metrics.evaluate`: held-out reconstruction (greedy,
  5000 held-out ligands), 10,000 prior samples (validity with the valence sanity filter,
  unique@1k/@10k, novelty, IntDiv, ligand share), the LP curve around 16 random training
  ligands, 1000 draws per sigma (greedy decoding).
* ``table``: the targets of the issue beside the measured values, MOSES's VAE and CharRNN and
  the paper.

Wall-clock budgets depend on how loaded the machine is: the JSON records the CPU seconds the
training process got, next to the wall seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

QM9 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qm9_smiles.csv"

TARGETS = {"reconstruction": 0.8, "valid": 0.95, "valid_selfies": 1.0, "unique_10k": 0.99,
           "novel": 0.7, "lp_per_1000": 100}
MOSES = {"VAE": {"valid": 0.953, "unique_1k": 1.0, "unique_10k": 0.999, "novel": 0.695,
                 "int_div": 0.856},
         "CharRNN": {"valid": 0.975, "unique_1k": 1.0, "unique_10k": 0.999, "novel": 0.842,
                     "int_div": 0.856}}
PAPER = {"lp_per_1000": 36, "seed_sample_r2": 0.82}

AR = dict(decoder="autoregressive", encoder_hidden=(256,), ar_hidden=256, ar_layers=2,
          embed_dim=32, kl_weight=0.1, free_bits=0.1)
GAUSS = dict(decoder="gauss")


def corpus(work: Path) -> list[str]:
    from molmag.generative.corpus import ligands_from_smiles, read_corpus, read_smiles, write_corpus

    path = work / "qm9_ligands.csv"
    if not path.is_file():
        ligs, _ = ligands_from_smiles(read_smiles(QM9))
        write_corpus(ligs, path)
    return [g.smiles for g in read_corpus(path)]


def cmd_train(a) -> None:
    from molmag.generative.runs import split_corpus
    from molmag.generative.training import save_vae, train_vae
    from molmag.generative.vae import VAEConfig
    from molmag.generative.vocab import Vocabulary

    sp = split_corpus(corpus(a.work), None, 0.05, seed=0)
    vocab = Vocabulary.from_corpus(sp.train + sp.val, a.representation, from_smiles=True)
    tr = [vocab.to_repr(s) for s in sp.train]
    va = [vocab.to_repr(s) for s in sp.val]
    cfg = VAEConfig(**(AR if a.decoder == "autoregressive" else GAUSS))
    name = f"{a.decoder}-{a.representation}-{a.minutes:g}{a.clock}min"
    kw = dict(batch_size=256, lr=1e-3, kl_anneal_epochs=0.25) if a.decoder == "autoregressive" \
        else dict(batch_size=100, lr=1e-3)
    log = open(a.work / f"{name}.log", "a")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    model = train_vae(tr, config=cfg, vocab=vocab, kind=a.representation, val_strings=va,
                      max_epochs=1000, seed=0, checkpoint=a.work / f"{name}.ckpt",
                      checkpoint_seconds=300 if a.clock == "wall" else 60,
                      max_seconds=a.minutes * 60, budget_clock=a.clock,
                      log=lambda r: print(json.dumps(r), file=log, flush=True),
                      step_log=lambda r: print(json.dumps(r), file=log, flush=True), **kw)
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
    model.header["training"]["cpu_seconds_this_call"] = cpu
    save_vae(model, a.work / f"{name}.npz")
    print(json.dumps({"model": str(a.work / f"{name}.npz"), **model.header["training"]}))


def cmd_snapshot(a) -> None:
    """A model file from a training checkpoint (the latest parameters), e.g. to compare two
    runs at the same CPU time; ``--cpu`` is recorded as the process CPU seconds."""
    import torch

    from molmag.generative.runs import split_corpus
    from molmag.generative.training import save_vae
    from molmag.generative.vae import MoleculeVAE, VAEConfig
    from molmag.generative.vocab import Vocabulary

    sp = split_corpus(corpus(a.work), None, 0.05, seed=0)
    vocab = Vocabulary.from_corpus(sp.train + sp.val, "smiles")
    model = MoleculeVAE(vocab, VAEConfig(**(AR if a.decoder == "autoregressive" else GAUSS)))
    c = torch.load(a.ckpt, weights_only=True)
    model.load_state_dict(c["model"])
    model.eval()
    n_batches = -(-len(sp.train) // (256 if a.decoder == "autoregressive" else 100))
    part = c.get("partial")
    model.history = list(c["history"])
    model.header = {"training": {"epochs": len(c["history"]),
                                 "epochs_done": c["epoch"] + (part["step"] / n_batches
                                                              if part else 0.0),
                                 "seconds": float(c["seconds"]), "cpu_seconds_process": a.cpu,
                                 "n_train": len(sp.train), "n_val": len(sp.val)}}
    model.training_strings, model.held_out_strings = sp.train, sp.val
    cache = a.work / "training-canonical.txt"
    if cache.is_file():
        model.training_canonical = set(cache.read_text().split("\n"))
    save_vae(model, a.out)
    print(json.dumps({"model": str(a.out), **model.header["training"]}))


def cmd_evaluate(a) -> None:
    from molmag.generative.metrics import evaluate
    from molmag.generative.training import load_vae

    for path in a.models:
        m = load_vae(path)
        res = evaluate(m, n=a.n, lp_seeds=16, lp_draws=a.lp_draws, seed=0,
                       lp_sigmas=tuple(float(x) for x in a.sigmas.split(",")))
        tr = m.header.get("training", {})
        res["training"] = {k: tr.get(k) for k in ("seconds", "epochs", "epochs_done",
                                                   "best_epoch", "n_train", "n_val",
                                                   "cpu_seconds_this_call",
                                                   "cpu_seconds_process", "max_seconds")}
        res["history_last"] = (m.history or [{}])[-1]
        res["model"] = str(path)
        out = Path(str(path).removesuffix(".npz") + "-metrics.json")
        out.write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res) if a.json else f"{path}: {out}")


#: the posterior-collapse ablation: (name, config overrides, kl_anneal_epochs)
ABLATION = (("plain (no annealing, no free bits)", dict(free_bits=0.0), 0.0),
            ("KL annealing", dict(free_bits=0.0), 1.0),
            ("KL annealing + free bits 0.1", dict(free_bits=0.1), 1.0),
            ("KL annealing + word dropout 0.25", dict(free_bits=0.0, word_dropout=0.25), 1.0))


def cmd_ablation(a) -> None:
    """The same small autoregressive model trained for the same time with and without KL
    annealing, free bits and word dropout (KL weight 0.5, where collapse is a risk):
    held-out reconstruction, KL per latent dimension, active units (Burda et al. 2016:
    Cov_x(E_q[z_k]) > 0.01) and prior validity."""

    from molmag.generative.metrics import prior_metrics
    from molmag.generative.runs import split_corpus
    from molmag.generative.sampling import (
        canonical_set,
        encode,
        reconstruction_accuracy,
        sample_prior,
    )
    from molmag.generative.training import train_vae
    from molmag.generative.vae import VAEConfig
    from molmag.generative.vocab import Vocabulary

    sp = split_corpus(corpus(a.work), a.n_train, 0.05, seed=0)
    held = sp.val[:500]
    vocab = Vocabulary.from_corpus(sp.train + held)
    out = []
    for name, over, anneal in ABLATION:
        cfg = VAEConfig(**{**AR, "encoder_hidden": (128,), "ar_hidden": 128, "ar_layers": 1,
                           "kl_weight": 0.5, **over})
        t0 = time.perf_counter()
        m = train_vae(sp.train, config=cfg, vocab=vocab, val_strings=held, max_epochs=1000,
                      batch_size=128, kl_anneal_epochs=anneal, max_seconds=a.minutes * 60,
                      seed=0)
        mu = encode(m, held)
        au = int((mu.var(0) > 0.01).sum())
        prior = prior_metrics(sample_prior(m, 1000, seed=0), canonical_set(sp.train))
        row = {"name": name, "epochs": len(m.history), "seconds": time.perf_counter() - t0,
               "reconstruction": reconstruction_accuracy(m, held),
               "val_kl_per_dim": m.history[m.best_epoch - 1].get("val_kl"),
               "active_units": au, "valid": prior["valid"], "novel": prior["novel"],
               "unique": prior["n_unique"] / max(prior["n_valid"], 1)}
        out.append(row)
        print(json.dumps(row), flush=True)
    (a.work / "ablation.json").write_text(json.dumps(out, indent=1) + "\n")
    print("| variant | epochs | recon (held out) | KL/dim (nats) | active units /32 | valid | "
          "unique | novel |\n|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['name']} | {r['epochs']} | {r['reconstruction']:.3f} | "
              f"{r['val_kl_per_dim']:.3f} | {r['active_units']} | {r['valid']:.3f} | "
              f"{r['unique']:.3f} | {r['novel']:.3f} |")


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def cmd_table(a) -> None:
    rows = [json.loads(Path(p).read_text()) for p in a.results]
    print("| model | train (wall / epochs) | recon | valid | unique@1k | unique@10k | novel | "
          "IntDiv | ligand share | LP sigma=0.3: new ligands / 1000 / seed (min-max) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lp = next((c for c in r["lp_curve"] if abs(c["sigma"] - 0.3) < 1e-9), None)
        tr = r.get("training", {})
        ep = tr.get("epochs")
        frac = (r.get("history_last") or {}).get("fraction")
        eps = f"{tr['epochs_done']:.2f}" if tr.get("epochs_done") is not None else \
            (f"{(ep or 1) - 1 + (frac if frac else 1.0):.2f}" if ep else "-")
        cpu = tr.get("cpu_seconds_process") or tr.get("cpu_seconds_this_call")
        print(f"| {r['decoder']} ({r['representation']}) | {_f(tr.get('seconds'), '.0f')} s"
              + (f" ({cpu:.0f} CPU s)" if cpu else "") + " / "
              f"{eps} | {_f(r['reconstruction'])} | {_f(r['valid'])} | {_f(r['unique_1k'])} | "
              f"{_f(r['unique_10k'])} | {_f(r['novel'])} | {_f(r['int_div'])} | "
              f"{_f(r['ligand_share'])} | "
              + (f"{lp['unique_novel_per_1000']:.0f} ({lp['unique_novel_per_1000_min']:.0f}-"
                 f"{lp['unique_novel_per_1000_max']:.0f})" if lp else "-") + " |")
    for k, m in MOSES.items():
        print(f"| MOSES {k} (1.6M ZINC, GPU days) | - | - | {m['valid']} | {m['unique_1k']} | "
              f"{m['unique_10k']} | {m['novel']} | {m['int_div']} | - | - |")
    print(f"| GAUSS-II paper (~10^5 ligands, ~70 epochs) | - | - | - | - | - | - | - | - | "
          f"~{PAPER['lp_per_1000']} (2k unique in a few minutes) |")
    print(f"| target (issue 18) | <= 30 min | >= {TARGETS['reconstruction']} | >= "
          f"{TARGETS['valid']} (SELFIES 1.0) | - | >= {TARGETS['unique_10k']} | >= "
          f"{TARGETS['novel']} | - | - | >= {TARGETS['lp_per_1000']} |")
    print("\nLP: mean over 16 random training ligands of the distinct valid, sane, novel "
          "donor-first ligands per 1000 greedy-decoded draws at sigma = 0.3.")
    for r in rows:
        print(f"\n{r['model']}: LP curve (sigma: valid / unique / novel per draw, "
              "new ligands per 1000)")
        for c in r["lp_curve"]:
            print(f"  {c['sigma']:g}: {c['valid']:.3f} / {c['unique']:.3f} / {c['novel']:.3f}, "
                  f"{c['unique_novel_per_1000']:.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--decoder", choices=("autoregressive", "gauss"), default="autoregressive")
    t.add_argument("--representation", choices=("smiles", "selfies"), default="smiles")
    t.add_argument("--minutes", type=float, default=30.0)
    t.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="count --minutes in wall-clock or in CPU minutes of the process "
                        "(a loaded machine)")
    e = sub.add_parser("evaluate")
    e.add_argument("models", nargs="+", type=Path)
    e.add_argument("--n", type=int, default=10000)
    e.add_argument("--lp-draws", type=int, default=1000)
    e.add_argument("--sigmas", default="0.1,0.3,0.5,1.0")
    e.add_argument("--json", action="store_true")
    tb = sub.add_parser("table")
    tb.add_argument("results", nargs="+", type=Path)
    sn = sub.add_parser("snapshot")
    sn.add_argument("ckpt", type=Path)
    sn.add_argument("--decoder", choices=("autoregressive", "gauss"), required=True)
    sn.add_argument("--out", type=Path, required=True)
    sn.add_argument("--cpu", type=float, default=None)
    ab = sub.add_parser("ablation")
    ab.add_argument("--n-train", type=int, default=5000)
    ab.add_argument("--minutes", type=float, default=4.0)
    for p in (t, e, tb, ab, sn):
        p.add_argument("--work", type=Path, default=Path("generative-bench"))
        p.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(a.threads)
    {"train": cmd_train, "evaluate": cmd_evaluate, "table": cmd_table,
     "ablation": cmd_ablation, "snapshot": cmd_snapshot}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
