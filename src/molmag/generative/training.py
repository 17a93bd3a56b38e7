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
#: 2: the configuration records the decoder (``autoregressive`` | ``gauss``) and the training
#: strings may be stored as one UTF-8 byte array; version-1 files are ``gauss`` models
FORMAT_VERSION = 2
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


def randomised_smiles(smiles: str, n: int, seed: int | Sequence[int] = 0) -> list[str]:
    """``n`` randomised SMILES of one donor-first ligand, each still rooted at atom 0 (the
    donor): the heavy atoms after the donor are renumbered at random
    (``numpy.random.default_rng(seed)``) and written non-canonically from atom 0. Duplicates
    and strings equal to the input are dropped, so fewer than ``n`` may come back; [] for a
    SMILES RDKit cannot read."""
    from rdkit import Chem

    from molmag.chem.builders import quiet_rdkit

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() < 2:
        return []
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for _ in range(3 * n):
        order = [0] + [int(i) + 1 for i in rng.permutation(mol.GetNumAtoms() - 1)]
        s = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False, rootedAtAtom=0)
        if s != smiles and s not in out:
            out.append(s)
        if len(out) == n:
            break
    return out


class _Data:
    """Token indices (one-hot made per batch), standardised properties and extras of one
    split; ``variants``: per string, the indices of its randomised forms (encoder inputs)."""

    def __init__(self, model: MoleculeVAE, strings: Sequence[str], props, extras,
                 variants: Sequence[Sequence[str]] | None = None) -> None:
        cfg = model.config
        self.n_tokens = len(model.vocab)
        self.strings = list(strings)
        self.idx = torch.as_tensor(model.vocab.indices(self.strings)).to(torch.uint8
                                                                         if self.n_tokens < 256
                                                                         else torch.int16)
        self.lengths = (self.idx != 0).sum(1).numpy()
        self.variants: list[torch.Tensor] | None = None
        if variants is not None:
            self.variants = []
            for vs in variants:
                ok = [v for v in vs if _fits(model.vocab, v)]
                self.variants.append(torch.as_tensor(model.vocab.indices(ok)).to(self.idx.dtype)
                                     if ok else self.idx[:0])
        n = len(self.strings)
        p = _as_targets(props, n, cfg.n_properties, "property targets")
        self.props = None if p is None else model.standardise_properties(p)
        e = _as_targets(extras, n, cfg.n_extra, "extra features")
        self.extras = model.standardise_extras(e) if e is not None else None

    def __len__(self) -> int:
        return len(self.strings)

    def batch(self, ids, trim: bool = False, pick: np.ndarray | None = None) -> tuple:
        """(one-hot input, target indices, properties, extras) of rows ``ids``; ``trim``
        cuts the padded length to the longest target + its end token; ``pick[i] > 0`` takes
        the encoder input from variant ``pick[i] - 1`` of row ``ids[i]``."""
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        tgt = self.idx[ids].long()
        inp = tgt
        if pick is not None and self.variants is not None and np.any(pick > 0):
            inp = tgt.clone()
            for r, (i, k) in enumerate(zip(ids.tolist(), pick.tolist())):
                v = self.variants[i]
                if k > 0 and len(v):
                    inp[r] = v[(k - 1) % len(v)].long()
        if trim:
            T = min(tgt.shape[1], int((tgt != 0).sum(1).max()) + 1)
            Ti = min(inp.shape[1], int((inp != 0).sum(1).max()) + 1)
            tgt, inp = tgt[:, :T], inp[:, :max(Ti, 1)]
        x = torch.nn.functional.one_hot(inp, self.n_tokens).float()
        return (x, tgt, None if self.props is None else self.props[ids],
                None if self.extras is None else self.extras[ids])


def _fits(vocab: Vocabulary, s: str) -> bool:
    try:
        vocab.indices([s])
    except ValueError:
        return False
    return True


def _evaluate(model: MoleculeVAE, data: _Data, batch_size: int) -> dict[str, float]:
    model.eval()
    cfg = model.config
    sums: dict[str, float] = {}
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            x, idx, p, e = data.batch(np.arange(s, min(s + batch_size, len(data))),
                                      trim=model.autoregressive)
            out = model(x, e, sample=False, target_idx=idx)
            parts = vae_loss(out, idx, p, cfg.kl_weight, cfg.property_weight, cfg.free_bits)
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


def _batches(n: int, batch_size: int, lengths: np.ndarray | None, seed: int, epoch: int
             ) -> list[np.ndarray]:
    """The batches of one epoch: a permutation from ``(seed, epoch)``; with ``lengths``
    (autoregressive decoder) sorted by length inside chunks of 32 batches and the batches
    shuffled, so that a batch's strings have similar lengths (less padding to run over)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    if lengths is None:
        return [perm[i:i + batch_size] for i in range(0, n, batch_size)]
    chunk = 32 * batch_size
    out = []
    for c in range(0, n, chunk):
        part = perm[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (16 hex digits) of a state dict's names and values."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def kl_weight_at(alpha: float, anneal_epochs: float, progress: float) -> float:
    """KL annealing (Bowman et al. 2016): the weight rises linearly from 0 to ``alpha`` over
    the first ``anneal_epochs`` epochs (``progress`` = epochs done, fractional); ``alpha``
    from the start when ``anneal_epochs = 0``."""
    if anneal_epochs <= 0:
        return alpha
    return alpha * min(1.0, progress / anneal_epochs)


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
              max_epochs_this_call: int | None = None,
              kl_anneal_epochs: float = 0.0, augment: int = 0,
              max_seconds: float | None = None,
              checkpoint_seconds: float | None = None,
              step_log: Callable[[dict], None] | None = None,
              budget_clock: str = "wall",
              init_state: dict[str, torch.Tensor] | None = None) -> MoleculeVAE:
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

    ``kl_anneal_epochs``: the KL weight rises from 0 to ``config.kl_weight`` over that many
    epochs (:func:`kl_weight_at`, per batch). ``augment = k > 0``: ``k`` randomised donor-first
    SMILES per training ligand (:func:`randomised_smiles`, SMILES models only); each epoch
    the encoder reads one of the k + 1 forms of every ligand at random and the decoder is
    scored on its corpus form. ``max_seconds``: stop after the first epoch (or
    ``checkpoint_seconds`` slice) that brings the training time past it (a time budget; the
    best parameters so far are kept). ``checkpoint_seconds``: with ``checkpoint``, also
    write the checkpoint inside an epoch every that many seconds (a resumed run continues
    from that batch, with the same result). ``budget_clock``: ``"wall"`` (default) counts
    ``max_seconds`` and ``checkpoint_seconds`` in wall-clock seconds, ``"cpu"`` in CPU
    seconds of this process (:func:`time.process_time`, all threads): the budget a run
    gets on a loaded machine, where wall time says little. ``init_state``: a state dict of a
    model with the same configuration (except ``kl_weight``/``free_bits``/``word_dropout``,
    which only enter the loss) and vocabulary to start from instead of a random
    initialisation: fine-tuning, e.g. with a larger KL weight so that the aggregate
    posterior fills the prior (its hash enters the checkpoint's fingerprint; a checkpoint,
    if one exists, wins).

    Returns the model with the best parameters loaded (``model.history``,
    ``model.best_epoch``, ``model.header['training']``).
    """
    cfg = config or VAEConfig()
    strings = list(strings)
    if not strings:
        raise ValueError("no training strings")
    if budget_clock not in ("wall", "cpu"):
        raise ValueError(f"budget_clock must be 'wall' or 'cpu', not {budget_clock!r}")
    clock = time.perf_counter if budget_clock == "wall" else time.process_time
    if vocab is None:
        vocab = Vocabulary.from_corpus(strings + list(val_strings or []), kind)
    if augment and vocab.kind != "smiles":
        raise ValueError("randomised-SMILES augmentation needs a SMILES vocabulary")
    settings: dict[str, Any] = {"max_epochs": max_epochs, "batch_size": batch_size, "lr": lr,
                "min_delta": min_delta, "window": window, "lr_factor": lr_factor,
                "lr_patience": lr_patience, "lr_threshold": lr_threshold, "seed": seed}
    if kl_anneal_epochs:
        settings["kl_anneal_epochs"] = kl_anneal_epochs
    if augment:
        settings["augment"] = augment
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MoleculeVAE(vocab, cfg)
    if init_state is not None:
        try:
            model.load_state_dict(init_state)
        except RuntimeError as exc:
            raise ValueError("init_state: not a state of a model with this configuration "
                             f"and vocabulary ({str(exc).splitlines()[0]})") from None
        settings["init_state"] = _state_hash(init_state)
    props_arr = _as_targets(properties, len(strings), cfg.n_properties, "property targets")
    extras_arr = _as_targets(extras, len(strings), cfg.n_extra, "extra features")
    for buf, (m, s) in (("prop", _mean_std(props_arr, cfg.n_properties)),
                        ("extra", _mean_std(extras_arr, cfg.n_extra))):
        getattr(model, f"{buf}_mean").copy_(torch.as_tensor(m))
        getattr(model, f"{buf}_std").copy_(torch.as_tensor(s))
    variants = [randomised_smiles(s, augment, seed=[seed, i]) for i, s in
                enumerate(strings)] if augment else None
    train = _Data(model, strings, properties, extras, variants)
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
    partial = None  # a checkpoint written inside an epoch
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
        partial = c.get("partial")

    def save(epoch_done: int, part: dict | None) -> None:
        if ckpt is not None:
            _save_checkpoint(ckpt, {"format": _CHECKPOINT_FORMAT, "fingerprint": fp,
                                    "epoch": epoch_done, "model": model.state_dict(),
                                    "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "best_state": best_state,
                                    "best_metric": best_metric,
                                    "best_epoch": -1 if best_epoch is None else best_epoch,
                                    "history": history, "seconds": seconds,
                                    "partial": part})

    n = len(train)
    ar = model.autoregressive
    done_here = 0
    stopped = _converged(history, window, min_delta)
    out_of_time = max_seconds is not None and seconds >= max_seconds
    for epoch in range(start + 1, max_epochs + 1):
        if stopped or out_of_time or (max_epochs_this_call is not None
                                      and done_here >= max_epochs_this_call):
            break
        t0 = clock()
        t_ck, t_epoch = t0, t0
        batches = _batches(n, batch_size, train.lengths if ar else None, seed, epoch)
        picks = (np.random.default_rng([seed, epoch, 3]).integers(0, augment + 1, n)
                 if augment else None)
        model.train()
        sums: dict[str, float] = {}
        first = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_epoch_seed(seed, epoch))
            if partial is not None and int(partial["epoch"]) == epoch:
                torch.set_rng_state(partial["rng"])
                first, sums = int(partial["step"]), dict(partial["sums"])
            partial = None
            b = first - 1
            for b in range(first, len(batches)):
                ids = batches[b]
                x, idx, p, e = train.batch(ids, trim=ar,
                                           pick=None if picks is None else picks[ids])
                w = kl_weight_at(cfg.kl_weight, kl_anneal_epochs,
                                 epoch - 1 + b / len(batches))
                parts = vae_loss(model(x, e, sample=True, target_idx=idx), idx, p, w,
                                 cfg.property_weight, cfg.free_bits)
                opt.zero_grad(set_to_none=True)
                parts["total"].backward()
                opt.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(ids)
                now = clock()
                if step_log is not None and (b + 1) % 200 == 0:
                    step_log({"epoch": epoch, "step": b + 1, "steps": len(batches),
                              "recon": float(parts["recon"].detach()),
                              "kl": float(parts["kl"].detach()),
                              "seconds": seconds + now - t0})
                if checkpoint_seconds and now - t_ck > checkpoint_seconds \
                        and b + 1 < len(batches):
                    seconds += now - t0
                    t0 = t_ck = now
                    save(epoch - 1, {"epoch": epoch, "step": b + 1, "sums": sums,
                                     "rng": torch.get_rng_state()})
                    if max_seconds is not None and seconds >= max_seconds:
                        break
            n_seen = sum(len(batches[i]) for i in range(min(b + 1, len(batches))))
        record: dict[str, Any] = {"epoch": epoch, "lr": opt.param_groups[0]["lr"]}
        record.update({f"train_{k}": v / max(n_seen, 1) for k, v in sums.items()})
        if b + 1 < len(batches):
            record["fraction"] = n_seen / n  # an epoch cut short by the time budget
        if val is not None:
            record.update({f"val_{k}": v for k, v in _evaluate(model, val, batch_size).items()})
        metric = record["val_total" if val is not None else "train_total"]
        record["monitor"] = metric
        sched.step(metric)
        if metric < best_metric:
            best_metric, best_epoch = metric, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        seconds += clock() - t0
        record["seconds"] = clock() - t_epoch
        record["elapsed"] = seconds
        history.append(record)
        done_here += 1
        stopped = _converged(history, window, min_delta)
        out_of_time = max_seconds is not None and seconds >= max_seconds
        save(epoch, None)
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
                                 "seconds": seconds, "clock": budget_clock,
                                 **({"max_seconds": max_seconds} if max_seconds else {})}}
    model.training_strings = strings
    model.held_out_strings = list(val_strings or [])
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
def _joined(strings: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _split(a: np.ndarray) -> list[str]:
    raw = a.tobytes().decode("utf-8")
    return raw.split("\n") if raw else []


def save_vae(model: MoleculeVAE, path: str | Path, *, training_strings: Sequence[str] | None
             = None, metrics: dict | None = None, store_training_strings: bool = True,
             held_out_strings: Sequence[str] | None = None) -> Path:
    """Write ``model`` to ``path`` (``.npz``; arrays + JSON header, no pickles, atomic).

    The training strings (``training_strings``, else those remembered by :func:`train_vae`)
    are stored unless ``store_training_strings=False``; they are what novelty is judged by.
    The held-out strings (``held_out_strings``, else the validation strings of
    :func:`train_vae`) are stored with them: ``molmag vae evaluate`` reconstructs them.
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
        arrays["training_strings_utf8"] = _joined(list(strings))
        if training_strings is None:
            from .sampling import training_canonical

            arrays["training_canonical_utf8"] = _joined(sorted(training_canonical(model)))
        held = held_out_strings if held_out_strings is not None else \
            getattr(model, "held_out_strings", None)
        if held:
            arrays["held_out_strings_utf8"] = _joined(list(held))
    arrays["header"] = np.array(json.dumps(header))
    return write_npz_atomic(path, arrays)


def load_vae(path: str | Path) -> MoleculeVAE:
    """Read a model file written by :func:`save_vae` (in eval mode; ``.header``,
    ``.training_strings`` and ``.held_out_strings`` set). ``path`` may also be the name of
    a model shipped with molmag (``"gauss-ii-qm9"``: :mod:`molmag.generative.pretrained`)."""
    from .pretrained import resolve_model

    path = resolve_model(path)
    header, data = read_npz_model(path, FORMAT, FORMAT_VERSION, "VAE")
    arrays = {k[2:]: v for k, v in data.items() if k.startswith("w/")}
    if "training_strings_utf8" in data:
        strings = _split(data["training_strings_utf8"])
    else:
        strings = [str(s) for s in data["training_strings"]] if "training_strings" in data \
            else []
    try:
        vocab = Vocabulary.from_dict(header["vocabulary"])
        cfg = VAEConfig.from_dict(header["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: VAE file version {header.get('version', 1)} with a "
                         f"vocabulary or configuration this molmag cannot read ({exc})") from None
    model = MoleculeVAE(vocab, cfg)
    state = {k: torch.as_tensor(v) for k, v in arrays.items()}
    mine = model.state_dict()
    bad = sorted(k for k in set(state) ^ set(mine)) or sorted(
        k for k in state if tuple(state[k].shape) != tuple(mine[k].shape))
    if bad:
        raise ValueError(f"{path}: the weights do not fit a {cfg.decoder} VAE with "
                         f"{len(vocab)} tokens (decoder or vocabulary of another model "
                         f"version?): {', '.join(bad[:4])}")
    model.load_state_dict(state)
    model.eval()
    model.history, model.best_epoch = header.get("history", []), header.get("best_epoch")
    model.header = header
    model.training_strings = strings
    model.held_out_strings = _split(data["held_out_strings_utf8"]) \
        if "held_out_strings_utf8" in data else []
    if "training_canonical_utf8" in data:
        model.training_canonical = set(_split(data["training_canonical_utf8"]))
    return model


__all__ = ["train_vae", "save_vae", "load_vae", "FORMAT", "FORMAT_VERSION"]
