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
    # optional: continue with a larger KL weight (prior validity), then ship that one
    python scripts/train_pretrained_vae.py finetune --work /work/gen --kl-weight 1 --hours 1.5
    python scripts/train_pretrained_vae.py ship --work /work/gen --kl-weight 1
    # the SELFIES model (gauss-ii-qm9-selfies): same labels, same settings
    python scripts/train_pretrained_vae.py train --work /work/gen --representation selfies
    python scripts/train_pretrained_vae.py ship  --work /work/gen --representation selfies

``--representation selfies`` trains the same model on SELFIES strings (``selfies.encoder`` of
each corpus ligand; every decoded string is a molecule) and ships it as
``gauss-ii-qm9-selfies``; its checkpoints and logs carry that name, the labels are shared.
"""

from __future__ import annotations

import argparse
import json
import math
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


def model_name(a) -> str:
    """``gauss-ii-qm9`` (SMILES) or ``gauss-ii-qm9-selfies``: the shipped name and the stem
    of the run's checkpoints."""
    return "gauss-ii-qm9" if a.representation == "smiles" else f"gauss-ii-qm9-{a.representation}"


def vocabulary(a, sp):
    """The run's vocabulary (training + held-out ligands in its representation)."""
    from molmag.generative.vocab import Vocabulary

    return Vocabulary.from_corpus(sp.train + sp.val, a.representation, from_smiles=True)


def log_line(work: Path, rec: dict, name: str = "gauss-ii-qm9") -> None:
    log = "train-log.jsonl" if name == "gauss-ii-qm9" else f"train-log-{name}.jsonl"
    with open(work / log, "a") as fh:
        fh.write(json.dumps({"utc": time.strftime("%H:%M:%S", time.gmtime()), **rec}) + "\n")


def cmd_train(a) -> None:
    """Train (resumable); the labels are those in proxies.db when the run first started
    (frozen into WORK/labels-used.json so that a resumed run sees the same ones)."""
    import numpy as np

    from molmag.generative import labels as L
    from molmag.generative.training import save_vae, train_vae
    from molmag.generative.vae import VAEConfig

    sp = split(a.work)
    name = model_name(a)
    frozen = a.work / "labels-used.json"
    if not frozen.is_file():
        table = L.proxy_table(a.work / "proxies.db")
        frozen.write_text(json.dumps(table))
    table = json.loads(frozen.read_text())
    props = L.matrix(table, sp.train, L.PROXY_NAMES)
    vprops = L.matrix(table, sp.val, L.PROXY_NAMES)
    vocab = vocabulary(a, sp)
    cfg = VAEConfig.gauss2(**MODEL)
    log_line(a.work, {"start": True, "n_train": len(sp.train), "n_val": len(sp.val),
                      "labelled": int(np.isfinite(props).all(1).sum())}, name)
    kw = dict(config=cfg, vocab=vocab, kind=a.representation, properties=props,
              val_strings=[vocab.to_repr(s) for s in sp.val],
              val_properties=vprops, checkpoint=a.work / f"{name}.ckpt",
              checkpoint_seconds=a.checkpoint_minutes * 60,
              log=lambda r: log_line(a.work, r, name),
              step_log=lambda r: log_line(a.work, r, name), **TRAIN)
    train = [vocab.to_repr(s) for s in sp.train]
    for budget in (1800.0, a.hours * 3600.0):
        model = train_vae(train, max_seconds=budget, **kw)
        out = f"{name}-30min.npz" if budget == 1800.0 else f"{name}-latest.npz"
        save_vae(model, a.work / out, store_training_strings=False)
        log_line(a.work, {"saved": out, "seconds": model.header["training"]["seconds"],
                          "epochs": len(model.history), "best_epoch": model.best_epoch}, name)


def finetune_ckpt(work: Path, kl_weight: float, name: str = "gauss-ii-qm9") -> Path:
    return work / f"{name}-kl{kl_weight:g}.ckpt"


def cmd_finetune(a) -> None:
    """Continue from the trained model (best parameters of ``WORK/gauss-ii-qm9.ckpt``) with
    another KL weight (resumable; checkpoint ``WORK/gauss-ii-qm9-kl<W>.ckpt``). A larger
    weight pulls the aggregate posterior onto N(0, I), which is what prior sampling needs:
    the KL-0.1 model decodes 0.96 valid ligands from posterior samples but 0.58 from the
    prior."""
    import torch

    from molmag.generative import labels as L
    from molmag.generative.training import save_vae, train_vae
    from molmag.generative.vae import VAEConfig

    sp = split(a.work)
    name = model_name(a)
    table = json.loads((a.work / "labels-used.json").read_text())
    vocab = vocabulary(a, sp)
    base = torch.load(a.work / f"{name}.ckpt", weights_only=True)
    init = base["best_state"] if base["best_state"] is not None else base["model"]
    cfg = VAEConfig.gauss2(**{**MODEL, "kl_weight": a.kl_weight})
    tag = f"kl{a.kl_weight:g}"
    log_line(a.work, {"finetune": tag, "from_epoch": base["best_epoch"]}, name)
    model = train_vae([vocab.to_repr(s) for s in sp.train], config=cfg, vocab=vocab,
                      kind=a.representation,
                      properties=L.matrix(table, sp.train, L.PROXY_NAMES),
                      val_strings=[vocab.to_repr(s) for s in sp.val],
                      val_properties=L.matrix(table, sp.val, L.PROXY_NAMES),
                      checkpoint=finetune_ckpt(a.work, a.kl_weight, name),
                      checkpoint_seconds=a.checkpoint_minutes * 60, max_seconds=a.hours * 3600,
                      log=lambda r: log_line(a.work, {"tag": tag, **r}, name),
                      step_log=lambda r: log_line(a.work, {"tag": tag, **r}, name),
                      init_state=init, **{**TRAIN, **FINETUNE})
    save_vae(model, a.work / f"{name}-{tag}-latest.npz", store_training_strings=False)


#: fine-tuning settings (``finetune``): a lower learning rate, the KL weight annealed from 0
FINETUNE = dict(lr=5e-4, kl_anneal_epochs=0.25)


def fit_head(model, smiles, table, epochs: int = 300, seed: int = 0) -> dict:
    """Fit the GAUSS-II head (z -> 32 -> 4 proxies) on the labelled ligands (SMILES), encoder
    frozen: inputs ``z = mu + sigma * eps`` (fresh noise every epoch, as in joint training),
    masked MSE on standardised targets, Adam 3e-3. Used when most labels arrived after the
    VAE training started. Returns the head's R^2 per proxy (on mu) for the rows given."""
    import numpy as np
    import torch

    from molmag.generative import labels as L
    from molmag.generative.training import _mean_std
    from molmag.generative.vae import masked_mse

    y = L.matrix(table, smiles, L.PROXY_NAMES).astype(np.float32)
    ok = np.isfinite(y).all(1)
    mean, std = _mean_std(y[ok], y.shape[1])
    model.prop_mean.copy_(torch.as_tensor(mean))
    model.prop_std.copy_(torch.as_tensor(std))
    xs = [model.vocab.to_repr(s) for s, k in zip(smiles, ok) if k]
    yt = model.standardise_properties(y[ok])
    with torch.no_grad():
        x = torch.nn.functional.one_hot(torch.as_tensor(model.vocab.indices(xs)),
                                        len(model.vocab)).float()
        mu, logvar = model.encode(x)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.head.parameters(), lr=3e-3)
    model.head.train()
    for _ in range(epochs):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
        loss = masked_mse(model.head(z), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return fitted_r2(model, xs, y[ok])


def fitted_r2(model, xs, y) -> dict:
    from molmag.generative import labels as L
    from molmag.generative.sampling import encode

    pred = model.predict_properties(encode(model, xs))   # xs in the model's representation
    out = {}
    for j, name in enumerate(L.PROXY_NAMES):
        ss = ((y[:, j] - y[:, j].mean()) ** 2).sum()
        out[name] = float(1 - ((y[:, j] - pred[:, j]) ** 2).sum() / ss) if ss > 0 else None
    return out


def cmd_ship(a) -> None:
    """Write the shipped model from the checkpoint (best parameters, or --latest)."""
    import numpy as np
    import torch

    from molmag.generative import labels as L
    from molmag.generative.sampling import reconstruction_accuracy
    from molmag.generative.training import save_vae
    from molmag.generative.vae import MoleculeVAE, VAEConfig

    sp = split(a.work)
    name = model_name(a)
    vocab = vocabulary(a, sp)
    model_cfg = {**MODEL, "kl_weight": a.kl_weight} if a.kl_weight is not None else MODEL
    model = MoleculeVAE(vocab, VAEConfig.gauss2(**model_cfg))
    ckpt = a.ckpt or (finetune_ckpt(a.work, a.kl_weight, name) if a.kl_weight is not None
                      else a.work / f"{name}.ckpt")
    c = torch.load(ckpt, weights_only=True)
    state = c["model"] if a.latest or c["best_state"] is None else c["best_state"]
    model.load_state_dict(state)
    model.eval()
    hist = list(c["history"])
    part = c.get("partial")
    frozen = json.loads((a.work / "labels-used.json").read_text())
    table = L.proxy_table(a.work / "proxies.db")
    rng = np.random.default_rng(1)
    train_repr = [vocab.to_repr(s) for s in sp.train]
    val_repr = [vocab.to_repr(s) for s in sp.val]
    rec_val = reconstruction_accuracy(model, [val_repr[i] for i in
                                              rng.choice(len(sp.val), 2000, replace=False)])
    rec_train = reconstruction_accuracy(model, [train_repr[i] for i in
                                                rng.choice(len(sp.train), 1000, replace=False)])
    labelled_train = [s for s in sp.train if s in table]
    labelled_val = [s for s in sp.val if s in table]
    r2_train = fit_head(model, labelled_train, table) if labelled_train else {}
    r2_val = fitted_r2(model, [vocab.to_repr(s) for s in labelled_val],
                       L.matrix(table, labelled_val, L.PROXY_NAMES)) \
        if len(labelled_val) > 2 else {}
    epochs_done = c["epoch"] + (part["step"] / math.ceil(len(sp.train) / TRAIN["batch_size"])
                                if part else 0.0)
    metrics = {"n_train": len(sp.train), "n_val": len(sp.val),
               "labelled": len(labelled_train) + len(labelled_val),
               "labels": {"head": "proxies", "labelled": len(labelled_train) + len(labelled_val),
                          "labelled_during_vae_training": len(frozen),
                          "head_fit": "encoder frozen, head refit on the labelled ligands"},
               "epochs": len(hist), "epochs_done": round(epochs_done, 3),
               "best_epoch": c["best_epoch"] if c["best_epoch"] >= 0 else None,
               "converged": False, "train_seconds": float(c["seconds"]),
               "parameters": "latest" if a.latest or c["best_state"] is None else "best",
               "reconstruction_accuracy_val": rec_val,
               "reconstruction_accuracy_train": rec_train,
               "head_r2_train": r2_train, "head_r2_val": r2_val,
               "config": model_cfg, "representation": a.representation,
               "training": TRAIN if a.kl_weight is None else
               {**TRAIN, **FINETUNE, "fine_tuned_from": f"{name}.ckpt (KL weight 0.1)"},
               "command": "python scripts/train_pretrained_vae.py label|train|ship --work DIR"
               + ("" if a.representation == "smiles"
                  else f" --representation {a.representation}")}
    model.history, model.best_epoch = hist, metrics["best_epoch"]
    model.header = {"training": {**TRAIN, "n_train": len(sp.train), "n_val": len(sp.val),
                                 "epochs": len(hist), "epochs_done": metrics["epochs_done"],
                                 "seconds": float(c["seconds"])}}
    model.training_strings = train_repr
    model.held_out_strings = val_repr
    cache = a.work / "training-canonical.txt"   # RDKit over 346k ligands: computed once
    if not cache.is_file():
        from molmag.generative.sampling import canonical_set

        cache.write_text("\n".join(sorted(canonical_set(sp.train))))
    model.training_canonical = set(cache.read_text().split("\n"))
    out = a.out or \
        Path(__file__).resolve().parents[1] / f"src/molmag/generative/pretrained/{name}.npz"
    save_vae(model, out, metrics=metrics)
    print(json.dumps({"file": str(out), "MB": out.stat().st_size / 1e6, **metrics}, indent=1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("label", "train", "finetune", "ship"):
        s = sub.add_parser(name)
        s.add_argument("--work", type=Path, default=Path("pretrained-work"))
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--representation", choices=("smiles", "selfies"), default="smiles",
                       help="SMILES (gauss-ii-qm9) or SELFIES (gauss-ii-qm9-selfies)")
        if name == "train":
            s.add_argument("--hours", type=float, default=3.0)
            s.add_argument("--checkpoint-minutes", type=float, default=5.0)
        if name == "finetune":
            s.add_argument("--hours", type=float, default=1.5)
            s.add_argument("--checkpoint-minutes", type=float, default=5.0)
        if name in ("finetune", "ship"):
            s.add_argument("--kl-weight", type=float, default=1.0 if name == "finetune" else None,
                           help="the fine-tuned model's KL weight (ship: which fine-tuning)")
        if name == "ship":
            s.add_argument("--latest", action="store_true",
                           help="the latest parameters instead of the best on the held-out loss")
            s.add_argument("--ckpt", type=Path, default=None,
                           help="another checkpoint (default WORK/gauss-ii-qm9.ckpt)")
            s.add_argument("--out", type=Path, default=None,
                           help="write here instead of the package's gauss-ii-qm9.npz")
        if name == "label":
            s.add_argument("--n-labels", type=int, default=4000)
            s.add_argument("--workers", type=int, default=1)
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(a.threads)
    {"label": cmd_label, "train": cmd_train, "finetune": cmd_finetune,
     "ship": cmd_ship}[a.cmd](a)


if __name__ == "__main__":
    main()
