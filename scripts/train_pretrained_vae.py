"""Train the pretrained GAUSS-II model shipped with molmag (``gauss-ii-qm9``).

Reproducible and resumable (kill it and run the same command again: nothing computed is lost):

1. ``label``: the GAUSS-II donor proxies (GFN2-xTB Mulliken charge, atomic dipole and D4
   polarisability of the donor on the xTB-relaxed free ligand; :mod:`molmag.generative.labels`)
   of ``--n-labels`` random ligands of the corpus, through the labelling pipeline
   (``WORK/proxies.db``; a rerun skips every ligand already labelled).
2. ``train``: the autoregressive GAUSS-II VAE (SMILES, latent 32, head z -> 32 -> 4
   proxies) on the whole QM9 ligand corpus (``molmag corpus`` of QM9: 364,721 donor-first
   ligands; 5 % held out for the recorded metrics), semi-supervised on whatever proxies are
   labelled when training starts (their number is recorded), checkpointed every epoch and
   every ``--checkpoint-minutes`` inside an epoch (``WORK/gauss-ii-qm9.ckpt``).
3. ``ship``: the best (or, with ``--latest``, the latest) parameters written to
   ``src/molmag/generative/pretrained/gauss-ii-qm9.npz`` with the training ligands kept for
   novelty (compressed; < 20 MB) and the metrics of :func:`molmag.generative.metrics.evaluate`.

Usage::

    python scripts/train_pretrained_vae.py label --work /work/gen --n-labels 4000
    python scripts/train_pretrained_vae.py train --work /work/gen --hours 1.5
    python scripts/train_pretrained_vae.py ship  --work /work/gen
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

QM9 = "/work/shared/data/qm9_smiles.csv"


def corpus(work: Path) -> list[str]:
    """The QM9 ligand corpus (built once into ``WORK/qm9_ligands.csv``)."""
    from molmag.generative.corpus import ligands_from_smiles, read_corpus, write_corpus

    path = work / "qm9_ligands.csv"
    if not path.is_file():
        import csv

        with open(QM9, newline="") as fh:
            smi = [r["smiles"] for r in csv.DictReader(fh)]
        ligs, _ = ligands_from_smiles(smi)
        write_corpus(ligs, path)
    return [g.smiles for g in read_corpus(path)]


def cmd_label(a) -> None:
    from molmag.generative import labels as L
    from molmag.generative.runs import labelled_subset

    smiles = corpus(a.work)
    todo = labelled_subset(smiles, a.n_labels, seed=0)
    t0 = time.time()
    # in growing chunks (the pipeline relaxes a whole run before labelling it), so that
    # labelled ligands are there early; every chunk is resumable and reuses the ones before
    for n in sorted({min(k, len(todo)) for k in (250, 500, 1000, 2000, len(todo))}):
        cfg = L.proxy_label_config(todo[:n], a.work / "proxies.db", workers=a.workers,
                                   batch_size=16)
        L.run_label_config(cfg)
        print(json.dumps({"asked": n, "labelled": len(L.proxy_table(a.work / "proxies.db")),
                          "seconds": time.time() - t0}), flush=True)


#: the shipped model's configuration (autoregressive decoder, GAUSS-II head z -> 32 -> 4)
MODEL = dict(decoder="autoregressive", encoder_hidden=(256,), ar_hidden=256, ar_layers=2,
             embed_dim=32, kl_weight=0.1, free_bits=0.1, word_dropout=0.0)
TRAIN = dict(batch_size=256, lr=1e-3, kl_anneal_epochs=0.25, seed=0, max_epochs=100)


def split(work: Path):
    from molmag.generative.runs import split_corpus

    return split_corpus(corpus(work), None, 0.05, seed=0)


def log_line(work: Path, rec: dict) -> None:
    with open(work / "train-log.jsonl", "a") as fh:
        fh.write(json.dumps({"utc": time.strftime("%H:%M:%S", time.gmtime()), **rec}) + "\n")


def cmd_train(a) -> None:
    """Train (resumable); the labels are those in proxies.db when the run first started
    (frozen into WORK/labels-used.json so that a resumed run sees the same ones)."""
    import numpy as np

    from molmag.generative import labels as L
    from molmag.generative.training import save_vae, train_vae
    from molmag.generative.vae import VAEConfig
    from molmag.generative.vocab import Vocabulary

    sp = split(a.work)
    frozen = a.work / "labels-used.json"
    if not frozen.is_file():
        table = L.proxy_table(a.work / "proxies.db")
        frozen.write_text(json.dumps(table))
    table = json.loads(frozen.read_text())
    props = L.matrix(table, sp.train, L.PROXY_NAMES)
    vprops = L.matrix(table, sp.val, L.PROXY_NAMES)
    vocab = Vocabulary.from_corpus(sp.train + sp.val, "smiles")
    cfg = VAEConfig.gauss2(**MODEL)
    log_line(a.work, {"start": True, "n_train": len(sp.train), "n_val": len(sp.val),
                      "labelled": int(np.isfinite(props).all(1).sum())})
    kw = dict(config=cfg, vocab=vocab, properties=props, val_strings=sp.val,
              val_properties=vprops, checkpoint=a.work / "gauss-ii-qm9.ckpt",
              checkpoint_seconds=a.checkpoint_minutes * 60,
              log=lambda r: log_line(a.work, r), step_log=lambda r: log_line(a.work, r),
              **TRAIN)
    for budget in (1800.0, a.hours * 3600.0):
        model = train_vae(sp.train, max_seconds=budget, **kw)
        name = "gauss-ii-qm9-30min.npz" if budget == 1800.0 else "gauss-ii-qm9-latest.npz"
        save_vae(model, a.work / name, store_training_strings=False)
        log_line(a.work, {"saved": name, "seconds": model.header["training"]["seconds"],
                          "epochs": len(model.history), "best_epoch": model.best_epoch})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("label", "train", "ship"):
        s = sub.add_parser(name)
        s.add_argument("--work", type=Path, default=Path("pretrained-work"))
        s.add_argument("--threads", type=int, default=1)
        if name == "train":
            s.add_argument("--hours", type=float, default=3.0)
            s.add_argument("--checkpoint-minutes", type=float, default=5.0)
        if name == "label":
            s.add_argument("--n-labels", type=int, default=4000)
            s.add_argument("--workers", type=int, default=1)
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(a.threads)
    {"label": cmd_label, "train": cmd_train}[a.cmd](a)


if __name__ == "__main__":
    main()
