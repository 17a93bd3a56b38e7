"""``molmag vae train|sample|map``: the GAUSS VAE as a user runs it.

``molmag vae train CONFIG.yaml`` (:class:`VAETrainConfig`, ``molmag template vae``):

.. code-block:: yaml

    corpus: default              # a `molmag corpus` file (.csv or .smi), or molmag's built-in one
    max_heavy_atoms: 12          # keep ligands up to this size (null: all)
    n_train: null                # at most this many ligands (random subset; null: all)
    validation_fraction: 0.05    # held out: reconstruction accuracy, head R^2
    representation: smiles       # smiles | selfies
    head: proxies                # proxies (GAUSS-II) | gaps (GAUSS-I) | none
    labels:                      # the semi-supervised labels (head != none)
      n: 1000                    # ligands labelled (random; the rest stay unlabelled)
      dataset: vae-labels.db     # where labels are stored: a rerun reuses them
      workers: null              # labelling processes (null: one per core)
    max_epochs: 200
    seed: 0
    output: vae.npz              # model; vae.npz.ckpt is the resumable checkpoint

The labels are computed by :mod:`molmag.generative.labels` through the labelling pipeline
(GFN2-xTB + D4 proxies of the free ligand, or the Kramers gaps of Dy(H2O)5L2 from the
crystal-field engine with GAUSS-I's structural features as the head's extra inputs).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import Field

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate

from . import labels as L
from .corpus import DEFAULT_MAX_HEAVY_ATOMS, Ligand, default_corpus, read_corpus


class LabelSettings(_Strict):
    n: int = Field(default=1000, ge=0, description="training ligands labelled (random subset)")
    dataset: str = Field(default="vae-labels.db",
                         description="labelled dataset (reused on a rerun)")
    workers: int | None = Field(default=None, ge=1)
    fmax: float = Field(default=0.05, gt=0)


class VAETrainConfig(_Strict):
    corpus: str = "default"
    max_heavy_atoms: int | None = Field(default=12, ge=1)
    n_train: int | None = Field(default=None, ge=10)
    validation_fraction: float = Field(default=0.05, ge=0.0, lt=0.5)
    representation: Literal["smiles", "selfies"] = "smiles"
    decoder: Literal["autoregressive", "gauss"] = "autoregressive"
    kl_anneal_epochs: float = Field(default=1.0, ge=0.0)
    augment: int = Field(default=0, ge=0, le=20)
    head: Literal["proxies", "gaps", "none"] = "proxies"
    labels: LabelSettings = Field(default_factory=LabelSettings)
    max_epochs: int = Field(default=200, ge=1)
    batch_size: int = Field(default=100, ge=1)
    seed: int = 0
    output: str = "vae.npz"


def load_vae_train_config(path: str | Path, **overrides) -> VAETrainConfig:
    """Read and validate ``molmag vae train`` settings; errors name the file and key.
    ``overrides`` (command-line options, None = not given) replace top-level keys."""
    path = Path(path)
    raw = read_yaml(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    cfg = validate(path, VAETrainConfig, raw)
    base = path.resolve().parent
    if cfg.corpus != "default":
        cfg.corpus = resolve(cfg.corpus, base)
    cfg.output = resolve(cfg.output, base)
    cfg.labels.dataset = resolve(cfg.labels.dataset, base)
    return cfg


# -- corpus ----------------------------------------------------------------------------------
def heavy_atoms(smiles: str) -> int:
    from rdkit import Chem

    from molmag.chem.builders import quiet_rdkit

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    return mol.GetNumHeavyAtoms() if mol is not None else 10**6


def load_ligands(corpus: str = "default", max_heavy_atoms: int | None = None) -> list[Ligand]:
    """The corpus (``"default"`` or a file), ligands above ``max_heavy_atoms`` left out."""
    ligs = default_corpus() if corpus == "default" else read_corpus(corpus)
    if max_heavy_atoms is not None:
        ligs = [g for g in ligs if heavy_atoms(g.smiles) <= max_heavy_atoms]
    if not ligs:
        raise ValueError(f"corpus {corpus}: no ligands"
                         + (f" with at most {max_heavy_atoms} heavy atoms" if max_heavy_atoms
                            else ""))
    return ligs


@dataclass
class CorpusSplit:
    train: list[str]
    val: list[str]


def split_corpus(smiles: Sequence[str], n_train: int | None, validation_fraction: float,
                 seed: int = 0) -> CorpusSplit:
    """A held-out validation set (``validation_fraction`` of the corpus) and a random training
    set from the rest (at most ``n_train``), both fixed by ``seed``."""
    rng = np.random.default_rng([seed, 17])
    order = rng.permutation(len(smiles))
    n_val = min(int(round(validation_fraction * len(smiles))), max(0, len(smiles) - 10))
    val = [smiles[i] for i in order[:n_val]]
    train = [smiles[i] for i in order[n_val:]][:n_train]
    if len(train) < 10:
        raise ValueError(f"only {len(train)} training ligands; the VAE needs at least 10")
    return CorpusSplit(train, val)


def labelled_subset(smiles: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` ligands drawn at random (fixed by ``seed``) from ``smiles``."""
    rng = np.random.default_rng([seed, 29])
    idx = rng.permutation(len(smiles))[:n]
    return [smiles[i] for i in sorted(idx)]


# -- training --------------------------------------------------------------------------------
@dataclass
class TrainOutcome:
    model: object
    path: Path
    metrics: dict
    history_csv: Path
    labelled: int = 0
    label_failures: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def head_targets(head: str, smiles: Sequence[str], table: dict[str, dict]):
    """(properties, extras) arrays for the head: proxies -> (n, 4), gaps -> (n, 7) with the
    GAUSS-I structural features (n, 4) as extras; NaN rows are unlabelled."""
    if head == "proxies":
        return L.matrix(table, smiles, L.PROXY_NAMES), None
    if head == "gaps":
        props = L.matrix(table, smiles, L.GAP_NAMES)
        extras = L.matrix(table, smiles, L.STRUCTURE_FEATURES)
        # the head needs its extra inputs for every row: unlabelled rows get the labelled mean
        # (their property loss is masked, so only the latent part of the head sees them)
        mean = np.nanmean(extras, axis=0) if np.isfinite(extras).any() else np.zeros(4)
        extras = np.where(np.isfinite(extras), extras, mean)
        return props, extras
    return None, None


def head_r2(model, smiles: Sequence[str], targets: np.ndarray,
            extras: np.ndarray | None = None) -> dict[str, float]:
    """R^2 of the head's predictions (from ``mu``) on the labelled rows, per property."""
    from .sampling import encode

    names = L.PROXY_NAMES if targets.shape[1] == 4 else L.GAP_NAMES
    ok = np.isfinite(targets).all(axis=1)
    if ok.sum() < 2:
        return {}
    z = encode(model, [s for s, k in zip(smiles, ok) if k])
    pred = model.predict_properties(z, None if extras is None else extras[ok])
    out = {}
    for j, name in enumerate(names):
        y = targets[ok, j]
        ss = ((y - y.mean()) ** 2).sum()
        out[name] = float(1 - ((y - pred[:, j]) ** 2).sum() / ss) if ss > 0 else float("nan")
    return out


def write_history(history: list[dict], path: Path) -> Path:
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in history:
            w.writerow(r)
    return path


def on_epoch_log(log: Callable[[str], None], every: int = 1) -> Callable[[dict], None]:
    """An epoch callback for :func:`train_vae` that writes one line per ``every`` epochs."""
    def on_epoch(r: dict) -> None:
        if r["epoch"] % every and r["epoch"] != 1:
            return
        msg = (f"epoch {r['epoch']}: loss {r['train_total']:.4f} (recon {r['train_recon']:.4f}"
               f", KL {r['train_kl']:.3f}" + (f", prop {r['train_prop']:.3f}"
                                              if "train_prop" in r else "") + ")")
        if "val_total" in r:
            msg += f", val {r['val_total']:.4f}"
        log(msg + f", {r['seconds']:.1f} s")
    return on_epoch


def fit_vae(train: Sequence[str], val: Sequence[str], head: str, table: dict[str, dict], *,
            representation: str = "smiles", max_epochs: int = 200, batch_size: int = 100,
            seed: int = 0, checkpoint: str | Path | None = None,
            log: Callable[[dict], None] | None = None, decoder: str = "autoregressive",
            kl_anneal_epochs: float | None = None, augment: int = 0):
    """Train the GAUSS VAE on ``train`` (SMILES) with the head ``head`` ('proxies', 'gaps' or
    'none') on the labels of ``table`` (NaN where a ligand has none), ``val`` held out.
    Returns (model, metrics): sizes, epochs, reconstruction accuracy (validation and up to
    1000 training ligands) and the head's R^2 on the labelled rows."""
    from .sampling import reconstruction_accuracy
    from .training import train_vae
    from .vae import VAEConfig
    from .vocab import Vocabulary

    train, val = list(train), list(val)
    props, extras = head_targets(head, train, table)
    vprops, vextras = head_targets(head, val, table) if val else (None, None)
    vocab = Vocabulary.from_corpus(train + val, representation, from_smiles=True)
    train_s = [vocab.to_repr(s) for s in train]
    val_s = [vocab.to_repr(s) for s in val]
    if head == "proxies":
        vcfg = VAEConfig.gauss2(decoder=decoder)
    elif head == "gaps":
        vcfg = VAEConfig.gauss1(n_extra=len(L.STRUCTURE_FEATURES), decoder=decoder)
    else:
        vcfg = VAEConfig(n_properties=0, decoder=decoder)
    if kl_anneal_epochs is None:
        kl_anneal_epochs = 1.0 if decoder == "autoregressive" else 0.0
    model = train_vae(train_s, config=vcfg, vocab=vocab, kind=representation, properties=props,
                      extras=extras, val_strings=val_s or None, val_properties=vprops,
                      val_extras=vextras, max_epochs=max_epochs, batch_size=batch_size,
                      seed=seed, checkpoint=checkpoint, log=log,
                      kl_anneal_epochs=kl_anneal_epochs,
                      augment=augment if representation == "smiles" else 0)
    labelled = 0 if props is None else int(np.isfinite(props).all(axis=1).sum())
    metrics = {"n_train": len(train_s), "n_val": len(val_s), "labelled": labelled,
               "decoder": decoder,
               "epochs": len(model.history), "best_epoch": model.best_epoch,
               "converged": bool(model.header["training"]["converged"]),
               "train_seconds": float(model.header["training"]["seconds"]),
               "reconstruction_accuracy_val": reconstruction_accuracy(model, val_s) if val_s
               else None,
               "reconstruction_accuracy_train": reconstruction_accuracy(model, train_s[:1000])}
    if head != "none" and labelled:
        metrics["head_r2_train"] = head_r2(model, train_s, props, extras)
        if val_s and vprops is not None:
            metrics["head_r2_val"] = head_r2(model, val_s, vprops, vextras)
    return model, metrics


def run_vae_train(cfg: VAETrainConfig, *, log: Callable[[str], None] = lambda s: None,
                  executor=None, reporter=None, ligands: Sequence[Ligand] | None = None
                  ) -> TrainOutcome:
    """Everything ``molmag vae train`` does: corpus -> split -> labels (resumable) ->
    training (resumable from ``OUTPUT.ckpt``) -> model file, history CSV, metrics JSON."""
    from .training import save_vae

    t0 = time.perf_counter()
    if ligands is None:
        ligands = load_ligands(cfg.corpus, cfg.max_heavy_atoms)
    smiles = [g.smiles for g in ligands]
    split = split_corpus(smiles, cfg.n_train, cfg.validation_fraction, cfg.seed)
    log(f"corpus: {len(smiles)} ligands; training {len(split.train)}, validation "
        f"{len(split.val)}")
    table: dict[str, dict] = {}
    labelled = failures = 0
    if cfg.head != "none" and cfg.labels.n > 0:
        todo = labelled_subset(split.train + split.val,
                               min(cfg.labels.n, len(split.train) + len(split.val)), cfg.seed)
        make = L.proxy_label_config if cfg.head == "proxies" else L.gap_label_config
        lcfg = make(todo, cfg.labels.dataset, workers=cfg.labels.workers, fmax=cfg.labels.fmax)
        log(f"labels ({cfg.head}): {len(todo)} ligands -> {cfg.labels.dataset}")
        summ = L.run_label_config(lcfg, executor=executor, reporter=reporter)
        table = L.proxy_table(cfg.labels.dataset) if cfg.head == "proxies" else \
            L.gap_table(cfg.labels.dataset)
        labelled = sum(1 for s in todo if s in table)
        failures = len(todo) - labelled
        log(f"labels: {labelled} labelled, {failures} failed "
            f"({summ.seconds:.0f} s)")
        if labelled < 2:
            raise RuntimeError(f"labelling gave {labelled} labelled ligands; see the failures "
                               f"in {cfg.labels.dataset} (molmag data failures)")
    out = Path(cfg.output)
    model, metrics = fit_vae(split.train, split.val, cfg.head, table,
                             representation=cfg.representation, max_epochs=cfg.max_epochs,
                             batch_size=cfg.batch_size, seed=cfg.seed, decoder=cfg.decoder,
                             kl_anneal_epochs=cfg.kl_anneal_epochs, augment=cfg.augment,
                             checkpoint=out.with_name(out.name + ".ckpt"), log=on_epoch_log(log))
    metrics["labelled"] = labelled           # of the training and validation ligands
    metrics["labels"] = {"head": cfg.head, "dataset": cfg.labels.dataset if labelled else None}
    save_vae(model, out, metrics=metrics)
    hist = write_history(model.history, out.with_name(out.stem + "-history.csv"))
    out.with_name(out.stem + "-metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return TrainOutcome(model, out, metrics, hist, labelled, failures,
                        time.perf_counter() - t0)


# -- sampling --------------------------------------------------------------------------------
def check_seeds(model, seeds: Sequence[str]) -> list[str]:
    """The seed SMILES of LP sampling, checked: each must be a molecule RDKit reads and one the
    model can encode (known tokens, not longer than its ``max_len``), in its donor-first corpus
    form or else as written; returns the form encoded for each.  Raises ValueError with a
    one-line message naming the first bad seed; an unparsable seed such as ``'C1CC(O'`` would
    otherwise be encoded token by token and sampled as if it were a molecule."""
    from .corpus import as_ligand
    from .sampling import canonical_smiles

    if not seeds:
        raise ValueError("give at least one seed ligand")
    out = []
    for seed in seeds:
        if not isinstance(seed, str) or canonical_smiles(seed) is None:
            raise ValueError(f"seed {seed!r} is not a SMILES that RDKit can read (unclosed ring "
                             f"or bracket, bad valence?)")
        lig = as_ligand(seed)
        if lig is None:
            raise ValueError(f"seed {seed!r} is not a donor-first ligand: atom 0 "
                             f"({_first_atom(seed)}) must be an O or N donor by molmag's "
                             "corpus rules (write the donor first; see molmag corpus)")
        # the corpus (donor-first) form when the model can read it, else the seed as written
        forms = [lig.smiles, seed] if lig and lig.smiles != seed else [seed]
        readable = [f for f in forms if model.vocab.encodes(f)]
        if not readable:
            try:
                model.vocab.indices([model.vocab.to_repr(forms[-1])])
            except ValueError as exc:
                raise ValueError(f"seed {seed!r}: the model cannot encode it ({exc})") from None
        out.append(readable[0])
    return out


def _first_atom(smiles: str) -> str:
    from rdkit import Chem

    from molmag.chem.builders import quiet_rdkit

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return "?"
    a = mol.GetAtomWithIdx(0)
    q = a.GetFormalCharge()
    return a.GetSymbol() + (f", charge {q:+d}" if q else "")


def prior_table(model, n: int, *, rng_seed: int = 0, temperature: float = 1.0
                ) -> tuple[dict, list[dict]]:
    """``n`` samples from the prior ``z ~ N(0, I)``: the MOSES-style metrics of the draw
    (:func:`molmag.generative.metrics.prior_metrics`) and one row per distinct valid molecule
    (donor-first form where it is a ligand, novel, sane, count, the head's predictions)."""
    from .corpus import as_ligand
    from .metrics import Judged, prior_metrics
    from .sampling import encode, sample_prior, training_canonical

    strings = sample_prior(model, n, temperature=temperature, seed=rng_seed)
    train = training_canonical(model)
    judge = Judged()
    summary = prior_metrics(strings, train, model.vocab.kind, judge)
    rows: dict[str, dict] = {}
    for s in strings:
        smi = model.vocab.to_smiles(s)
        c, sane, is_lig = judge(smi)
        if c is None:
            continue
        if c in rows:
            rows[c]["count"] += 1
            continue
        g = as_ligand(smi) if is_lig else None
        rows[c] = {"smiles": g.smiles if g else smi, "ligand": g is not None,
                   "donor_kind": g.kind if g else "", "novel": c not in train, "sane": sane,
                   "count": 1, "_s": s}
    out = list(rows.values())
    names = _head_names(model)
    if names and out:
        pred = model.predict_properties(encode(model, [r["_s"] for r in out]))
        for r, p in zip(out, pred):
            r.update({f"pred_{nm}": float(v) for nm, v in zip(names, p)})
    for r in out:
        del r["_s"]
    summary["temperature"] = temperature
    summary["n_novel_ligands"] = sum(1 for r in out if r["ligand"] and r["novel"] and r["sane"])
    return summary, out


def sample_table(model, seeds: Sequence[str], sigma: float, n: int, *, rng_seed: int = 0,
                 training_set: Sequence[str] | None = None, temperature: float = 0.0
                 ) -> tuple[list[dict], list[dict]]:
    """LP samples around each seed (a SMILES ligand): per seed, the paper's metrics
    (validity, uniqueness, novelty, and validity with the valence sanity filter) and the unique
    valid molecules found, with whether each is a ligand (donor first, :func:`as_ligand`),
    novel (not a training ligand), sane (:func:`molmag.chem.valence.valence_problems`, with
    the problems named) and the head's predicted properties.  Returns (metrics rows,
    molecule rows).

    The seeds are checked first (:func:`check_seeds`): an unreadable seed is an error.  A
    sample whose donor-first SMILES the model cannot re-encode (a token the vocabulary lacks,
    e.g. ``[PH]`` after RDKit's canonicalisation) is never fatal: its properties are predicted
    from the string the decoder produced, it is marked ``reencodable = False`` and counted per
    seed in ``n_not_reencodable``."""
    from molmag.chem.valence import valence_problems

    from .corpus import as_ligand
    from .sampling import canonical_smiles, decode, encode, generation_metrics, perturb

    reps = check_seeds(model, seeds)
    from .sampling import training_canonical

    if training_set is None:
        train_lig = set(model.vocab.to_smiles(s) for s in model.training_strings)
        train_canon = training_canonical(model)
    else:
        train_lig = set(training_set)
        train_canon = {c for c in map(canonical_smiles, train_lig) if c is not None}
    names = _head_names(model)
    metrics, molecules = [], []
    for k, (seed, rep_smiles) in enumerate(zip(seeds, reps)):
        z = encode(model, [model.vocab.to_repr(rep_smiles)])[0]
        zs = perturb(z, sigma, n, seed=[rng_seed, k])
        strings = decode(model, zs, temperature=temperature, seed=[rng_seed, k, 1]) \
            if temperature > 0 else decode(model, zs)
        m = generation_metrics(strings, train_canon, model.vocab.kind, training_is_canonical=True)
        novel = m.pop("novel")
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        decoded: dict[str, str] = {}
        for s in strings:
            smi = model.vocab.to_smiles(s) if model.vocab.kind == "selfies" else s
            c = canonical_smiles(smi) if smi else None
            if c is None:
                continue
            counts[c] = counts.get(c, 0) + 1
            first.setdefault(c, smi)
            decoded.setdefault(c, s)
        rows, inputs = [], []
        for c, cnt in counts.items():
            g = as_ligand(first[c])
            smiles = g.smiles if g else first[c]
            problems = valence_problems(smiles)
            reencodable = model.vocab.encodes(smiles)
            rows.append({"seed": seed, "smiles": smiles,
                         "ligand": g is not None, "donor_kind": g.kind if g else "",
                         "novel": c in novel and (g is None or g.smiles not in train_lig),
                         "sane": not problems, "valence_problems": "; ".join(problems),
                         "reencodable": reencodable, "count": cnt})
            inputs.append(model.vocab.to_repr(smiles) if reencodable else decoded[c])
        if names and rows:
            zz = encode(model, inputs)
            try:
                pred = model.predict_properties(zz, None)
            except ValueError:
                pred = None
            if pred is not None:
                for r, p in zip(rows, pred):
                    r.update({f"pred_{nm}": float(v) for nm, v in zip(names, p)})
        n_lig = sum(1 for r in rows if r["ligand"])
        n_lig_novel = sum(1 for r in rows if r["ligand"] and r["novel"])
        n_lig_novel_sane = sum(1 for r in rows if r["ligand"] and r["novel"] and r["sane"])
        metrics.append({"seed": seed, "sigma": sigma, **m, "unique_ligands": n_lig,
                        "unique_novel_ligands": n_lig_novel,
                        "unique_novel_sane_ligands": n_lig_novel_sane,
                        "n_not_reencodable": sum(1 for r in rows if not r["reencodable"])})
        molecules += rows
    return metrics, molecules


def _head_names(model) -> list[str]:
    c = model.config
    if c.n_properties == 4 and c.n_extra == 0:
        return list(L.PROXY_NAMES)
    if c.n_properties == 7:
        return list(L.GAP_NAMES)
    return [f"property{i}" for i in range(c.n_properties)]


def write_rows(rows: Sequence[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys or ["smiles"])
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


# -- latent maps -----------------------------------------------------------------------------
def latent_map(model, out_dir: str | Path, *, smiles: Sequence[str] | None = None,
               proxies: str | Path | None = None, gaps: str | Path | None = None,
               max_points: int = 20000, seed: int = 0) -> dict:
    """PCA maps of the latent means of ``smiles`` (default: the model's training ligands):
    coloured by the head's predictions for every ligand, by the labelled proxies
    (``proxies`` dataset) and by Delta E01..07 (``gaps`` dataset).  Writes
    ``latent_pca.csv``, ``latent_map_predicted.png``, ``latent_map_proxies.png`` and
    ``latent_map_gaps.png`` (those with data) and returns what it wrote with the explained
    variance and, per property, the neighbour correlation of the map (1 = ordered)."""
    from .analysis import latent_pca, neighbour_correlation, plot_latent_maps
    from .sampling import encode

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    own = smiles is None  # the model's training ligands: readable by its vocabulary
    if smiles is None:
        smiles = [model.vocab.to_smiles(s) for s in model.training_strings]
    smiles = list(dict.fromkeys(smiles))
    ptab = L.proxy_table(proxies) if proxies else {}
    gtab = L.gap_table(gaps) if gaps else {}
    extra = list(dict.fromkeys(list(ptab) + list(gtab)))
    # labelled ligands the model cannot read (e.g. generated ones with new tokens) are left out
    unreadable = [s for s in (extra if own else smiles + extra) if not model.vocab.encodes(s)]
    smiles = list(dict.fromkeys(smiles + extra))
    if unreadable:
        bad = set(unreadable)
        smiles = [s for s in smiles if s not in bad]
    if len(smiles) > max_points:
        keep = set(ptab) | set(gtab)
        rng = np.random.default_rng(seed)
        rest = [s for s in smiles if s not in keep]
        idx = rng.permutation(len(rest))[:max(0, max_points - len(keep))]
        smiles = [s for s in smiles if s in keep] + [rest[i] for i in sorted(idx)]
    z = encode(model, [model.vocab.to_repr(s) for s in smiles])
    pca = latent_pca(z)
    xy = pca.transform(z)
    ev = pca.explained_variance_ratio
    files, order, counts = {}, {}, {}
    rows = [{"smiles": s, "pc1": float(a), "pc2": float(b)} for s, (a, b) in zip(smiles, xy)]
    names = _head_names(model)
    if names and model.config.n_extra == 0:
        pred = model.predict_properties(z, None)
        panels = [(f"predicted {n}", pred[:, j]) for j, n in enumerate(names)]
        files["predicted"] = str(plot_latent_maps(xy, panels, out / "latent_map_predicted.png",
                                                  explained=ev, columns=4))
        for r, p in zip(rows, pred):
            r.update({f"pred_{n}": float(v) for n, v in zip(names, p)})
    for key, table, labels, unit in (
            ("proxies", ptab, L.PROXY_NAMES, lambda n: L.PROXY_UNITS[n] or "Z"),
            ("gaps", gtab, L.GAP_NAMES, lambda n: "cm-1")):
        if not table:
            continue
        M = L.matrix(table, smiles, labels)
        counts[key] = int(np.isfinite(M[:, 0]).sum())
        panels = [(f"{n} ({unit(n)})", M[:, j]) for j, n in enumerate(labels)]
        files[key] = str(plot_latent_maps(xy, panels, out / f"latent_map_{key}.png",
                                          background=xy, explained=ev, columns=4))
        for j, n in enumerate(labels):
            order[n] = neighbour_correlation(xy, M[:, j])
            for r, v in zip(rows, M[:, j]):
                r[n] = None if not np.isfinite(v) else float(v)
    files["table"] = str(write_rows(rows, out / "latent_pca.csv"))
    return {"n": len(smiles), "explained_variance_ratio": [float(v) for v in ev],
            "neighbour_correlation": order, "files": files,
            "n_proxies": counts.get("proxies", 0), "n_gaps": counts.get("gaps", 0),
            "unreadable": unreadable}


__all__ = ["VAETrainConfig", "LabelSettings", "load_vae_train_config", "load_ligands",
           "split_corpus", "labelled_subset", "run_vae_train", "TrainOutcome", "sample_table",
           "prior_table", "check_seeds",
           "latent_map", "write_rows", "head_targets", "head_r2", "heavy_atoms", "fit_vae",
           "on_epoch_log",
           "DEFAULT_MAX_HEAVY_ATOMS"]
