"""MOSES-style metrics of a ligand VAE (Polykovskiy et al. 2020, "Molecular Sets"), plus the
local-perturbation (LP) sampling curve of Khatibi et al. 2026 (Fig. 2c).

:func:`evaluate` returns the keys of ``molmag vae evaluate --json``:

``reconstruction``
    held-out whole-string reconstruction: the fraction of held-out strings whose greedy
    decoding of ``mu`` is exactly the input string (:func:`~.sampling.reconstruction_accuracy`).
``valid``
    the fraction of ``n`` prior samples (``z ~ N(0, I)``, multinomial decoding at temperature
    1) that RDKit parses *and* that pass the valence sanity filter
    (:func:`molmag.chem.valence.is_sane`); ``valid_rdkit`` is RDKit alone.
``unique_1k``, ``unique_10k``
    MOSES unique@k: distinct canonical SMILES among the valid molecules of the first k
    samples, divided by the number of valid ones (``None`` when fewer than k were drawn).
``novel``
    distinct valid molecules not among the training ligands / distinct valid molecules
    (canonical SMILES without stereochemistry, :func:`~.sampling.canonical_smiles`).
``int_div``
    internal diversity IntDiv_1 = 1 - mean Tanimoto similarity over all pairs of distinct
    valid molecules (Morgan fingerprints, radius 2, 2048 bits; at most ``max_div`` molecules,
    a random subset above).
``ligand_share``
    of the valid samples, the share that are donor-first ligands by molmag's corpus rules
    (:func:`molmag.generative.corpus.as_ligand`: atom 0 an O/N donor).
``lp_curve``
    per sigma: LP samples ``z = mu(seed) + sigma * eps`` around ``lp_seeds`` random training
    ligands, ``lp_draws`` each (greedy decoding, the paper's protocol, unless
    ``lp_temperature > 0``); the mean per seed of ``valid`` (valid-and-sane rate),
    ``unique`` (distinct valid / draws), ``novel`` (distinct valid and novel / draws) and
    ``unique_novel_per_1000`` (distinct valid, sane and novel ligands per 1000 draws, the
    issue's LP target), with the per-seed minimum and maximum of the last.

FCD is not reported: no maintained package that ships its network weights installs here.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np

from molmag.chem.builders import quiet_rdkit
from molmag.chem.valence import is_sane

from .sampling import (
    canonical_set,
    canonical_smiles,
    decode,
    encode,
    perturb,
    reconstruction_accuracy,
    sample_prior,
    training_canonical,
)
from .vae import MoleculeVAE

KEYS = ("reconstruction", "valid", "unique_1k", "unique_10k", "novel", "int_div",
        "ligand_share", "lp_curve")
LP_SIGMAS = (0.1, 0.3, 0.5, 1.0)


class Judged:
    """Canonical form, sanity and ligand-ness of generated SMILES, cached per string."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str | None, bool, bool]] = {}

    def __call__(self, smiles: str) -> tuple[str | None, bool, bool]:
        """``(canonical SMILES or None, valid and sane, donor-first ligand)``."""
        hit = self._cache.get(smiles)
        if hit is None:
            from .corpus import as_ligand

            c = canonical_smiles(smiles)
            sane = c is not None and is_sane(smiles)
            lig = sane and as_ligand(smiles, max_heavy_atoms=10**6) is not None
            hit = self._cache[smiles] = (c, sane, lig)
        return hit


def morgan_bits(smiles: Iterable[str], radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """``(n, n_bits)`` bool Morgan fingerprints (RDKit) of parsable SMILES."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    rows = []
    with quiet_rdkit():
        for s in smiles:
            m = Chem.MolFromSmiles(s)
            if m is not None:
                rows.append(gen.GetFingerprintAsNumPy(m).astype(bool))
    return np.array(rows, dtype=bool).reshape(-1, n_bits)


def internal_diversity(smiles: Sequence[str], max_n: int = 2000, seed: int = 0) -> float | None:
    """IntDiv_1 = 1 - (1/|P|) sum_{pairs i != j} T(i, j) over distinct molecules (Tanimoto on
    Morgan bits); a random subset of ``max_n`` above that. None for fewer than 2."""
    smiles = list(dict.fromkeys(smiles))
    if len(smiles) > max_n:
        idx = np.random.default_rng(seed).choice(len(smiles), max_n, replace=False)
        smiles = [smiles[i] for i in sorted(idx)]
    fp = morgan_bits(smiles).astype(np.float32)
    n = len(fp)
    if n < 2:
        return None
    inter = fp @ fp.T
    cnt = fp.sum(1)
    union = cnt[:, None] + cnt[None, :] - inter
    sim = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    off = ~np.eye(n, dtype=bool)
    return float(1.0 - sim[off].mean())


def prior_metrics(samples: Sequence[str], training: set[str], kind: str = "smiles",
                  judge: Judged | None = None, max_div: int = 2000) -> dict:
    """MOSES metrics of a list of generated strings (SMILES or SELFIES) against the
    canonical training set ``training`` (see the module docstring)."""
    from .vocab import selfies_to_smiles

    judge = judge or Judged()
    n = len(samples)
    canon: list[str | None] = []
    ok: list[bool] = []
    lig: list[bool] = []
    n_rdkit = 0
    for s in samples:
        smi = selfies_to_smiles(s) if kind == "selfies" else s
        c, sane, is_lig = judge(smi)
        n_rdkit += c is not None
        canon.append(c if sane else None)
        ok.append(sane)
        lig.append(is_lig)

    def unique_at(k: int) -> float | None:
        if n < k:
            return None
        v = [c for c in canon[:k] if c is not None]
        return len(set(v)) / len(v) if v else 0.0

    valid = [c for c in canon if c is not None]
    uniq = set(valid)
    novel = {c for c in uniq if c not in training}
    n_valid = len(valid)
    return {"n": n, "valid": n_valid / n if n else 0.0,
            "valid_rdkit": n_rdkit / n if n else 0.0,
            "unique_1k": unique_at(1000), "unique_10k": unique_at(10000),
            "novel": len(novel) / len(uniq) if uniq else 0.0,
            "int_div": internal_diversity(sorted(uniq), max_div),
            "ligand_share": sum(lig) / n_valid if n_valid else 0.0,
            "n_valid": n_valid, "n_unique": len(uniq), "n_novel": len(novel)}


def lp_curve(model: MoleculeVAE, seeds: Sequence[str], training: set[str],
             sigmas: Sequence[float] = LP_SIGMAS, draws: int = 1000, *, seed: int = 0,
             temperature: float = 0.0, judge: Judged | None = None) -> list[dict]:
    """The LP sampling curve around ``seeds`` (strings in the model's representation): one row
    per sigma with per-seed means (see the module docstring)."""
    from .vocab import selfies_to_smiles

    judge = judge or Judged()
    mus = encode(model, list(seeds))
    rows = []
    for i, sigma in enumerate(sigmas):
        per = []
        for j, mu in enumerate(mus):
            zs = perturb(mu, float(sigma), draws, seed=[seed, i, j])
            out = decode(model, zs, temperature=temperature, seed=[seed, i, j, 1]) \
                if temperature > 0 else decode(model, zs)
            n_ok, uniq, uniq_novel, uniq_lig = 0, set(), set(), set()
            for s in out:
                smi = selfies_to_smiles(s) if model.vocab.kind == "selfies" else s
                c, sane, is_lig = judge(smi)
                if not sane:
                    continue
                n_ok += 1
                uniq.add(c)
                if c not in training:
                    uniq_novel.add(c)
                    if is_lig:
                        uniq_lig.add(c)
            per.append((n_ok / draws, len(uniq) / draws, len(uniq_novel) / draws,
                        1000.0 * len(uniq_lig) / draws))
        a = np.array(per)
        rows.append({"sigma": float(sigma), "valid": float(a[:, 0].mean()),
                     "unique": float(a[:, 1].mean()), "novel": float(a[:, 2].mean()),
                     "unique_novel_per_1000": float(a[:, 3].mean()),
                     "unique_novel_per_1000_min": float(a[:, 3].min()),
                     "unique_novel_per_1000_max": float(a[:, 3].max()),
                     "seeds": len(mus), "draws": draws})
    return rows


def evaluate(model: MoleculeVAE, *, held_out: Sequence[str] | None = None,
             training: Sequence[str] | None = None, n: int = 10000, seed: int = 0,
             temperature: float = 1.0, max_reconstruct: int = 5000, lp_seeds: int = 16,
             lp_draws: int = 1000, lp_sigmas: Sequence[float] = LP_SIGMAS,
             lp_temperature: float = 0.0, max_div: int = 2000) -> dict:
    """All metrics of ``molmag vae evaluate`` (keys :data:`KEYS` plus counts and timings).

    ``held_out`` (strings in the model's representation) default to the held-out strings
    stored in the model file; ``training`` (same) to its training strings. Every draw is
    reproducible from ``seed``."""
    t0 = time.perf_counter()
    to_smi = model.vocab.to_smiles
    if training is None:
        training = list(model.training_strings)
        train_canon = training_canonical(model)
    else:
        training = list(training)
        train_canon = canonical_set(to_smi(s) for s in training)
    if held_out is None:
        held_out = getattr(model, "held_out_strings", []) or []
    held = [s for s in held_out if _fits(model, s)]
    rng = np.random.default_rng([seed, 5])
    if len(held) > max_reconstruct:
        held = [held[i] for i in sorted(rng.choice(len(held), max_reconstruct, replace=False))]
    rec = reconstruction_accuracy(model, held) if held else None
    t_rec = time.perf_counter()
    judge = Judged()
    samples = sample_prior(model, n, temperature=temperature, seed=seed)
    res = prior_metrics(samples, train_canon, model.vocab.kind, judge, max_div)
    t_prior = time.perf_counter()
    curve: list[dict] = []
    if lp_seeds and training:
        pick = rng.choice(len(training), min(lp_seeds, len(training)), replace=False)
        curve = lp_curve(model, [training[i] for i in pick], train_canon, lp_sigmas,
                         lp_draws, seed=seed, temperature=lp_temperature, judge=judge)
    t_lp = time.perf_counter()
    out = {"reconstruction": rec, "valid": res["valid"], "unique_1k": res["unique_1k"],
           "unique_10k": res["unique_10k"], "novel": res["novel"], "int_div": res["int_div"],
           "ligand_share": res["ligand_share"], "lp_curve": curve,
           "valid_rdkit": res["valid_rdkit"], "n_samples": n, "n_held_out": len(held),
           "n_training": len(training), "n_valid": res["n_valid"],
           "n_unique": res["n_unique"], "n_novel": res["n_novel"],
           "temperature": temperature, "lp_temperature": lp_temperature,
           "decoder": model.config.decoder, "representation": model.vocab.kind,
           "seconds": {"reconstruction": t_rec - t0, "prior": t_prior - t_rec,
                       "lp": t_lp - t_prior}}
    return out


def _fits(model: MoleculeVAE, s: str) -> bool:
    try:
        model.vocab.indices([s])
    except ValueError:
        return False
    return True


__all__ = ["KEYS", "LP_SIGMAS", "Judged", "morgan_bits", "internal_diversity",
           "prior_metrics", "lp_curve", "evaluate"]
