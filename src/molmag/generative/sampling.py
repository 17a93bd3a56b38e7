"""Encoding, greedy decoding, local-perturbation sampling and generation metrics.

* :func:`encode`: strings -> ``mu`` (the mean of q(z|x); no noise).
* :func:`decode`: latent vectors -> strings by greedy decoding (argmax token at every position,
  the string ending at the first pad token).
* :func:`perturb` / :func:`sample_around`: local-perturbation (LP) sampling of Khatibi et al.
  2026, ``z' = z + sigma * eps``, ``eps ~ N(0, I)`` (``sigma`` dimensionless, in latent units),
  reproducible with ``seed``.
* Metrics on kekulised canonical SMILES (RDKit; aromaticity and stereochemistry removed, as
  in the paper's Methods): a string is *valid* when RDKit parses it into a molecule with at
  least one atom (a SELFIES model's strings are decoded to SMILES first); *novel* when its
  canonical SMILES is not that of any training molecule; *valid and sane* when it is valid and
  also passes the valence sanity filter (:mod:`molmag.chem.valence`); see
  :func:`generation_metrics`.
* :func:`reconstruction_accuracy`: fraction of strings whose greedy decoding of ``mu`` is
  exactly the input string.
* :func:`sampling_curve` / :func:`plot_sampling_curve`: the paper's Fig. 2c over sigma in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from molmag.chem.builders import quiet_rdkit
from molmag.chem.valence import is_sane

from .vae import MoleculeVAE


# -- model I/O ---------------------------------------------------------------------------
@torch.no_grad()
def encode(model: MoleculeVAE, strings: Sequence[str], batch_size: int = 1000) -> np.ndarray:
    """``mu`` ``(n, latent_dim)`` of each string (in the model's representation)."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(strings), batch_size):
        x = torch.as_tensor(model.vocab.one_hot(list(strings[s:s + batch_size])))
        out.append(model.encode(x)[0].numpy())
    model.train(was)
    if not out:
        return np.zeros((0, model.config.latent_dim), np.float32)
    return np.concatenate(out)


@torch.no_grad()
def decode(model: MoleculeVAE, z: np.ndarray, batch_size: int = 1000, *,
           temperature: float = 0.0, seed: int | Sequence[int] | None = None,
           return_log_likelihood: bool = False):
    """Decode latent vectors ``(n, latent_dim)`` to strings: greedy (argmax at every step,
    ``temperature = 0``, the default: reconstruction) or multinomial sampling from
    ``softmax(logits / temperature)`` (generation; reproducible with ``seed``). With
    ``return_log_likelihood`` also the log-likelihood (nats) of each decoded string under
    the model (:meth:`MoleculeVAE.generate`)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, not {temperature}")
    was = model.training
    model.eval()
    z = np.asarray(z, dtype=np.float32).reshape(-1, model.config.latent_dim)
    gen = None
    if temperature > 0:
        gen = torch.Generator().manual_seed(
            int(np.random.default_rng(seed).integers(0, 2**62)))
    out: list[str] = []
    ll: list[np.ndarray] = []
    for s in range(0, len(z), batch_size):
        tok, lp = model.generate(torch.as_tensor(z[s:s + batch_size]), temperature, gen)
        out += model.vocab.decode_indices(tok.numpy())
        ll.append(lp.numpy())
    model.train(was)
    if return_log_likelihood:
        return out, (np.concatenate(ll) if ll else np.zeros(0, np.float32))
    return out


def sample_prior(model: MoleculeVAE, n: int, *, temperature: float = 1.0,
                 seed: int | Sequence[int] = 0, batch_size: int = 1000) -> list[str]:
    """``n`` strings decoded from ``z ~ N(0, I)`` (MOSES's prior sampling): multinomial at
    ``temperature`` (1 = the model's distribution; 0 = greedy)."""
    z = np.random.default_rng(seed).standard_normal((n, model.config.latent_dim))
    return decode(model, z, batch_size, temperature=temperature, seed=[*np.atleast_1d(seed),
                                                                          1])


def perturb(z: np.ndarray, sigma: float, n: int,
            seed: int | Sequence[int] | None = None) -> np.ndarray:
    """``n`` local perturbations ``z' = z + sigma * eps`` of one seed vector ``z``
    (``(n, d)``; ``eps ~ N(0, I)`` from ``numpy.random.default_rng(seed)``)."""
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, not {sigma}")
    eps = np.random.default_rng(seed).standard_normal((n, z.size))
    return (z + sigma * eps).astype(np.float32)


def sample_around(model: MoleculeVAE, seed_point: str | np.ndarray, sigma: float, n: int,
                  seed: int | None = None, *, temperature: float = 0.0) -> list[str]:
    """Decode ``n`` LP samples around a seed string (encoded to ``mu``) or latent vector
    (greedy by default, as in the paper; ``temperature > 0`` samples each string)."""
    z = encode(model, [seed_point])[0] if isinstance(seed_point, str) else seed_point
    zs = perturb(z, sigma, n, seed)
    if temperature > 0:
        return decode(model, zs, temperature=temperature,
                      seed=[*np.atleast_1d(seed if seed is not None else 0), 2])
    return decode(model, zs)


def reconstruction_accuracy(model: MoleculeVAE, strings: Sequence[str]) -> float:
    """Fraction of ``strings`` equal (exact string match) to the greedy decoding of their
    ``mu``; use held-out strings for a test score."""
    if not strings:
        raise ValueError("no strings to reconstruct")
    rec = decode(model, encode(model, strings))
    return float(np.mean([a == b for a, b in zip(rec, strings)]))


# -- chemistry -------------------------------------------------------------------------------
def canonical_smiles(smiles: str) -> str | None:
    """Kekulised canonical SMILES without stereochemistry, or None if RDKit cannot parse
    ``smiles`` (or it has no atoms)."""
    from rdkit import Chem

    if not smiles:
        return None
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or mol.GetNumAtoms() == 0:
            return None
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception:  # noqa: BLE001 - RDKit raises its own KekulizeException types
            return None
        return Chem.MolToSmiles(mol, kekuleSmiles=True, isomericSmiles=False)


def canonical_set(smiles: Iterable[str]) -> set[str]:
    """Canonical forms of the parsable SMILES in ``smiles`` (e.g. a training set)."""
    return {c for c in map(canonical_smiles, smiles) if c is not None}


def training_canonical(model: MoleculeVAE) -> set[str]:
    """The canonical SMILES (:func:`canonical_smiles`) of the model's training strings, what
    novelty is judged against: read from the model file where :func:`save_vae` stored them,
    else computed once and kept on the model."""
    cached = getattr(model, "training_canonical", None)
    if cached is None:
        cached = canonical_set(model.vocab.to_smiles(s) for s in model.training_strings)
        model.training_canonical = cached
    return cached


def generation_metrics(samples: Sequence[str], training_set: Iterable[str] | set[str],
                       kind: str = "smiles", training_is_canonical: bool = False) -> dict:
    """Counts and rates of a batch of generated strings.

    ``samples`` are in the representation ``kind`` ('smiles' or 'selfies'; SELFIES are
    decoded to SMILES first); ``training_set`` are SMILES (or, with
    ``training_is_canonical=True``, a set of :func:`canonical_smiles`).

    Returns ``n_samples``; ``n_valid`` (RDKit parses); ``n_valid_sane`` (valid and passing the
    valence sanity filter :func:`molmag.chem.valence.valence_problems`: no hypervalent S/P
    outside sulfinyl/sulfonyl/phosphoryl groups, no antiaromatic small ring, no stray charge;
    RDKit alone accepts such strings) with ``valid_sane_rate = n_valid_sane/n`` and
    ``n_unique_sane`` (distinct valid and sane molecules); ``n_novel`` (valid and not in the
    training set, repeats counted); ``n_unique`` (distinct valid molecules); ``n_unique_novel``
    (distinct valid molecules not in the training set); the paper's per-sample rates
    ``valid_rate = n_valid/n``, ``novel_rate = n_novel/n``, ``unique_rate = n_unique_novel/n``
    (Fig. 2c: unique among the novel ones); and the per-valid fractions
    ``uniqueness = n_unique/n_valid`` and ``novelty = n_unique_novel/n_unique`` (0 when
    undefined). ``novel`` is the set of distinct novel canonical SMILES.
    """
    from .vocab import selfies_to_smiles

    train = set(training_set) if training_is_canonical else canonical_set(training_set)
    canon, sane_flags = [], []
    verdict: dict[str, bool] = {}
    for s in samples:
        smi = selfies_to_smiles(s) if kind == "selfies" else s
        c = canonical_smiles(smi)
        canon.append(c)
        # judged on the generated, donor-first string: the filter allows a charge on the
        # donor, atom 0, which canonical SMILES may move elsewhere
        if c is not None and smi not in verdict:
            verdict[smi] = is_sane(smi)
        sane_flags.append(c is not None and verdict[smi])
    valid = [c for c in canon if c is not None]
    novel = [c for c in valid if c not in train]
    uniq, uniq_novel = set(valid), set(novel)
    sane = {c for c, ok in zip(canon, sane_flags) if ok}
    n_sane = sum(sane_flags)
    n = len(samples)
    return {"n_samples": n, "n_valid": len(valid), "n_valid_sane": n_sane,
            "valid_sane_rate": n_sane / n if n else 0.0, "n_unique_sane": len(sane),
            "n_novel": len(novel),
            "n_unique": len(uniq), "n_unique_novel": len(uniq_novel),
            "valid_rate": len(valid) / n if n else 0.0,
            "novel_rate": len(novel) / n if n else 0.0,
            "unique_rate": len(uniq_novel) / n if n else 0.0,
            "uniqueness": len(uniq) / len(valid) if valid else 0.0,
            "novelty": len(uniq_novel) / len(uniq) if uniq else 0.0,
            "novel": uniq_novel}


def sampling_curve(model: MoleculeVAE, seed_point: str | np.ndarray,
                   training_set: Iterable[str] | None = None,
                   sigmas: Sequence[float] = tuple(np.round(np.linspace(0.0, 1.0, 11), 10)),
                   n_batches: int = 50, batch_size: int = 100,
                   seed: int = 0) -> list[dict]:
    """The paper's sampling experiment (Fig. 2c): for each ``sigma``, ``n_batches`` batches of
    ``batch_size`` LP samples around one seed. Returns one row per sigma: ``sigma``, the
    :func:`generation_metrics` counts and rates (novel ones and ``novel`` set left out), and
    ``cumulative_unique_novel`` (distinct novel molecules over all sigmas so far, the paper's
    accumulated count). ``training_set`` defaults to the model's stored training strings
    (SMILES; converted for a SELFIES model)."""
    train = training_canonical(model) if training_set is None else canonical_set(training_set)
    z = encode(model, [seed_point])[0] if isinstance(seed_point, str) else seed_point
    rows, seen = [], set()
    for i, sigma in enumerate(sigmas):
        samples: list[str] = []
        for b in range(n_batches):
            samples += decode(model, perturb(z, float(sigma), batch_size,
                                             seed=[seed, i, b]))
        m = generation_metrics(samples, train, model.vocab.kind, training_is_canonical=True)
        seen |= m.pop("novel")
        rows.append({"sigma": float(sigma), **m, "cumulative_unique_novel": len(seen)})
    return rows


def plot_sampling_curve(rows: Sequence[dict], path: str | Path, title: str | None = None) -> Path:
    """PNG of a :func:`sampling_curve` table: valid/novel/unique rates (%) against sigma,
    and the accumulated number of distinct novel molecules on the right axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = [r["sigma"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for key, label in (("valid_rate", "valid"), ("novel_rate", "novel"),
                       ("unique_rate", "unique novel")):
        ax.plot(s, [100 * r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("LP sampling std sigma (latent units)")
    ax.set_ylabel("samples (%)")
    ax.set_ylim(0, 105)
    ax2 = ax.twinx()
    ax2.plot(s, [r["cumulative_unique_novel"] for r in rows], "k--", label="accumulated unique")
    ax2.set_ylabel("accumulated distinct novel molecules (count)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="center right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["encode", "decode", "sample_prior", "perturb", "sample_around",
           "reconstruction_accuracy", "canonical_smiles", "canonical_set", "training_canonical",
           "generation_metrics", "sampling_curve", "plot_sampling_curve"]
