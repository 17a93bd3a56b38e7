"""Training of :class:`~molmag.generative.vae.MoleculeVAE` and its model file.

:func:`train_vae` follows Khatibi et al. 2026 (Methods): Adam with learning rate 1e-3,
batches of 100 reshuffled every epoch, ``ReduceLROnPlateau`` (factor 0.5, patience 2,
absolute threshold 1e-4) on the monitored loss, training until the monitored loss improves by less
than ``min_delta = 1e-3`` over a window of 10 epochs (or ``max_epochs``), keeping the
parameters of the lowest monitored loss. The monitored loss is the validation total loss
(evaluated with ``z = mu``) when validation strings are given, else the epoch-mean training
loss.

Determinism and resuming: the initial weights come from ``seed``; epoch ``e`` shuffles with
``numpy.random.default_rng([seed, e])`` and draws its reparameterisation noise and dropout
masks from torch's generator re-seeded from ``(seed, e)`` (inside ``torch.random.fork_rng``,
so the caller's global RNG state is untouched). With ``checkpoint=...`` a checkpoint
(model, optimiser, scheduler, best state, history) is written atomically after every epoch; a
killed run restarted with the same arguments continues from the last completed epoch and ends
with the same weights as an uninterrupted run. A checkpoint of another run (other data,
configuration or seed) is refused.

Model file (:func:`save_vae` / :func:`load_vae`): ``.npz`` without pickles, as molmag's other
models: a JSON ``header`` (format, version, molmag version, vocabulary, configuration,
training settings, history, metrics) plus one array per parameter/buffer (``w/<name>``) and,
optionally, the training strings (``training_strings``; used for novelty); written to a
``.part`` file and renamed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

import molmag
from molmag.io.atomic import read_npz_model, write_npz_atomic

from .vae import MoleculeVAE, VAEConfig, vae_loss
from .vocab import Vocabulary

FORMAT = "molmag-vae"
FORMAT_VERSION = 1
_CHECKPOINT_FORMAT = "molmag-vae-checkpoint"


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.default_rng([seed, epoch, 7]).integers(0, 2**62))


def _as_targets(values: np.ndarray | None, n: int, width: int, what: str) -> np.ndarray | None:
    if width == 0:
        if values is not None:
            raise ValueError(f"{what} given but the model configuration has none "
                             f"(set n_properties / n_extra)")
        return None
    if values is None:
        return np.full((n, width), np.nan, dtype=np.float32)
    a = np.asarray(values, dtype=np.float32).reshape(n, -1)
    if a.shape[1] != width:
        raise ValueError(f"{what} have {a.shape[1]} columns; the configuration expects {width}")
    return a


def _mean_std(a: np.ndarray | None, width: int) -> tuple[np.ndarray, np.ndarray]:
    if a is None or width == 0:
        return np.zeros(width, np.float32), np.ones(width, np.float32)
    with warnings.catch_warnings():  # all-NaN columns: mean 0, std 1
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(a, axis=0)
        std = np.nanstd(a, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


class _Data:
    """Token indices, one-hot inputs, standardised properties and extras of one split."""

    def __init__(self, model: MoleculeVAE, strings: Sequence[str], props, extras) -> None:
        cfg = model.config
        self.strings = list(strings)
        self.idx = torch.as_tensor(model.vocab.indices(self.strings))
        self.x = torch.nn.functional.one_hot(self.idx, len(model.vocab)).float()
        n = len(self.strings)
        p = _as_targets(props, n, cfg.n_properties, "property targets")
        self.props = None if p is None else model.standardise_properties(p)
        e = _as_targets(extras, n, cfg.n_extra, "extra features")
        self.extras = model.standardise_extras(e) if e is not None else None

    def __len__(self) -> int:
        return len(self.strings)

    def batch(self, ids) -> tuple:
        ids = torch.as_tensor(ids)
        return (self.x[ids], self.idx[ids], None if self.props is None else self.props[ids],
                None if self.extras is None else self.extras[ids])


def _evaluate(model: MoleculeVAE, data: _Data, batch_size: int) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            x, idx, p, e = data.batch(np.arange(s, min(s + batch_size, len(data))))
            out = model(x, e, sample=False)
            parts = vae_loss(out, idx, p, model.config.kl_weight, model.config.property_weight)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
    return {k: v / len(data) for k, v in sums.items()}


def _fingerprint(strings, props, extras, val, cfg: VAEConfig, vocab: Vocabulary,
                 settings: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([cfg.to_dict(), vocab.to_dict(), settings], sort_keys=True).encode())
    for part in (strings, val[0] if val else []):
        h.update("\n".join(part).encode())
    for a in (props, extras, *(val[1:] if val else ())):
        if a is not None:
            h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes())
    return h.hexdigest()


def train_vae(strings: Sequence[str], *, config: VAEConfig | None = None,
              vocab: Vocabulary | None = None, kind: str = "smiles",
              properties: np.ndarray | None = None, extras: np.ndarray | None = None,
              val_strings: Sequence[str] | None = None,
              val_properties: np.ndarray | None = None, val_extras: np.ndarray | None = None,
              max_epochs: int = 200, batch_size: int = 100, lr: float = 1e-3,
              min_delta: float = 1e-3, window: int = 10, lr_factor: float = 0.5,
              lr_patience: int = 2, lr_threshold: float = 1e-4, seed: int = 0,
              checkpoint: str | Path | None = None,
              log: Callable[[dict], None] | None = None,
              max_epochs_this_call: int | None = None) -> MoleculeVAE:
    """Train a VAE on ``strings`` (in the vocabulary's representation: SMILES, or SELFIES for
    ``kind='selfies'``; convert with :meth:`Vocabulary.to_repr`).

    ``properties`` ``(n, n_properties)`` may hold NaN for unlabelled molecules (semi-supervised
    training); ``extras`` ``(n, n_extra)`` are the head's extra inputs (GAUSS-I's structural
    features). Both are standardised with the labelled training rows' mean and std, stored
    in the model. ``vocab`` defaults to one built from training + validation strings.
    ``log(record)`` is called after each epoch with ``{'epoch', 'lr', 'train_total',
    'train_recon', 'train_kl', ['train_prop'], ['val_*'], 'seconds'}``.
    ``max_epochs_this_call`` stops after that many epochs of this call (without changing the
    stopping rule), which is how an interruption is simulated in the tests.

    Returns the model with the best parameters loaded (``model.history``,
    ``model.best_epoch``, ``model.header['training']``).
    """
    cfg = config or VAEConfig()
    strings = list(strings)
    if not strings:
        raise ValueError("no training strings")
    if vocab is None:
        vocab = Vocabulary.from_corpus(strings + list(val_strings or []), kind)
    settings = {"max_epochs": max_epochs, "batch_size": batch_size, "lr": lr,
                "min_delta": min_delta, "window": window, "lr_factor": lr_factor,
                "lr_patience": lr_patience, "lr_threshold": lr_threshold, "seed": seed}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MoleculeVAE(vocab, cfg)
    props_arr = _as_targets(properties, len(strings), cfg.n_properties, "property targets")
    extras_arr = _as_targets(extras, len(strings), cfg.n_extra, "extra features")
    for buf, (m, s) in (("prop", _mean_std(props_arr, cfg.n_properties)),
                        ("extra", _mean_std(extras_arr, cfg.n_extra))):
        getattr(model, f"{buf}_mean").copy_(torch.as_tensor(m))
        getattr(model, f"{buf}_std").copy_(torch.as_tensor(s))
    train = _Data(model, strings, properties, extras)
    val = _Data(model, val_strings, val_properties, val_extras) if val_strings else None

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=lr_factor, patience=lr_patience, threshold=lr_threshold,
        threshold_mode="abs")
    fp = _fingerprint(strings, properties, extras,
                      (list(val_strings), val_properties, val_extras) if val_strings else None,
                      cfg, vocab, settings)
    ckpt = Path(checkpoint) if checkpoint else None
    start, best_metric, best_state, best_epoch, history, seconds = 0, math.inf, None, None, [], 0.0
    if ckpt is not None and ckpt.exists():
        c = torch.load(ckpt, weights_only=True)
        if c.get("format") != _CHECKPOINT_FORMAT or c.get("fingerprint") != fp:
            raise ValueError(f"{ckpt}: a checkpoint of another training run (other data, "
                             "configuration or seed); delete it or choose another path")
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["optimizer"])
        sched.load_state_dict(c["scheduler"])
        start, best_metric = int(c["epoch"]), float(c["best_metric"])
        best_state, history = c["best_state"], list(c["history"])
        best_epoch = None if c["best_epoch"] < 0 else int(c["best_epoch"])
        seconds = float(c["seconds"])

    n = len(train)
    steps = math.ceil(n / batch_size)
    done_here = 0
    stopped = _converged(history, window, min_delta)
    for epoch in range(start + 1, max_epochs + 1):
        if stopped or (max_epochs_this_call is not None and done_here >= max_epochs_this_call):
            break
        t0 = time.perf_counter()
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        model.train()
        sums: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_epoch_seed(seed, epoch))
            for b in range(steps):
                ids = perm[b * batch_size:(b + 1) * batch_size]
                x, idx, p, e = train.batch(ids)
                parts = vae_loss(model(x, e, sample=True), idx, p, cfg.kl_weight,
                                 cfg.property_weight)
                opt.zero_grad(set_to_none=True)
                parts["total"].backward()
                opt.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(ids)
        record: dict[str, Any] = {"epoch": epoch, "lr": opt.param_groups[0]["lr"]}
        record.update({f"train_{k}": v / n for k, v in sums.items()})
        if val is not None:
            record.update({f"val_{k}": v for k, v in _evaluate(model, val, batch_size).items()})
        metric = record["val_total" if val is not None else "train_total"]
        record["monitor"] = metric
        sched.step(metric)
        if metric < best_metric:
            best_metric, best_epoch = metric, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        seconds += time.perf_counter() - t0
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        done_here += 1
        stopped = _converged(history, window, min_delta)
        if ckpt is not None:
            _save_checkpoint(ckpt, {"format": _CHECKPOINT_FORMAT, "fingerprint": fp,
                                    "epoch": epoch, "model": model.state_dict(),
                                    "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "best_state": best_state,
                                    "best_metric": best_metric,
                                    "best_epoch": -1 if best_epoch is None else best_epoch,
                                    "history": history, "seconds": seconds})
        if log is not None:
            log(dict(record))
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    model.history, model.best_epoch = history, best_epoch
    model.header = {"training": {**settings, "n_train": n,
                                 "n_val": 0 if val is None else len(val),
                                 "epochs": len(history), "best_epoch": best_epoch,
                                 "best_monitor": best_metric, "converged": stopped,
                                 "seconds": seconds}}
    model.training_strings = strings
    return model


def _converged(history: list[dict], window: int, min_delta: float) -> bool:
    """True when the best monitored loss of the last ``window`` epochs is less than
    ``min_delta`` below the best before them."""
    if len(history) <= window:
        return False
    losses = [r["monitor"] for r in history]
    return min(losses[:-window]) - min(losses[-window:]) < min_delta


def _save_checkpoint(path: Path, c: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(c, tmp)
    os.replace(tmp, path)


# -- model file ------------------------------------------------------------------------------
def save_vae(model: MoleculeVAE, path: str | Path, *, training_strings: Sequence[str] | None
             = None, metrics: dict | None = None, store_training_strings: bool = True) -> Path:
    """Write ``model`` to ``path`` (``.npz``; arrays + JSON header, no pickles, atomic).

    The training strings (``training_strings``, else those remembered by :func:`train_vae`)
    are stored unless ``store_training_strings=False``; they are what novelty is judged by.
    """
    path = Path(path)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "molmag": molmag.__version__,
              "vocabulary": model.vocab.to_dict(), "config": model.config.to_dict(),
              "history": model.history, "best_epoch": model.best_epoch,
              "metrics": metrics if metrics is not None else model.header.get("metrics", {}),
              "training": model.header.get("training", {})}
    arrays = {f"w/{k}": v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    strings = training_strings if training_strings is not None else \
        getattr(model, "training_strings", None)
    if store_training_strings and strings:
        arrays["training_strings"] = np.asarray(list(strings), dtype=str)
    arrays["header"] = np.array(json.dumps(header))
    return write_npz_atomic(path, arrays)


def load_vae(path: str | Path) -> MoleculeVAE:
    """Read a model file written by :func:`save_vae` (in eval mode; ``.header`` and
    ``.training_strings`` set)."""
    header, data = read_npz_model(path, FORMAT, FORMAT_VERSION, "VAE")
    arrays = {k[2:]: v for k, v in data.items() if k.startswith("w/")}
    strings = [str(s) for s in data["training_strings"]] if "training_strings" in data else []
    model = MoleculeVAE(Vocabulary.from_dict(header["vocabulary"]),
                        VAEConfig.from_dict(header["config"]))
    model.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})
    model.eval()
    model.history, model.best_epoch = header.get("history", []), header.get("best_epoch")
    model.header = header
    model.training_strings = strings
    return model


__all__ = ["train_vae", "save_vae", "load_vae", "FORMAT", "FORMAT_VERSION"]
