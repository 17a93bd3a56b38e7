"""Latent-space analysis and targeted generation (Khatibi et al. 2026, Figs. 4-10).

* :func:`latent_pca` — principal components of the latent means ``mu`` (centred SVD, as
  scikit-learn's PCA), used for the maps coloured by proxies and Kramers gaps (Figs. 4, 7, 9).
* :func:`generate_ligands` — local-perturbation sampling around a seed, keeping only strings
  that are *ligands* (:func:`molmag.generative.corpus.as_ligand`: atom 0 a donor by the corpus
  rules), unique and not in an excluded set (the training corpus, the labelled seeds).  As in
  the paper, sampling starts at a small ``sigma`` and widens it step by step until
  ``n_target`` ligands are found or the draws run out.
* :func:`seed_bins` and :func:`seed_sample_r2` — the seed-bin experiment (Figs. 5, 8): seeds
  drawn from bins of the target range, their samples labelled, and
  ``R^2 = 1 - sum (y_sample - y_seed)^2 / sum (y_sample - mean y_sample)^2``: the seed's
  value taken as the prediction of each of its samples' values.
* :func:`distribution_summary` and :func:`repopulation_shift` — targeted repopulation
  (Fig. 10): Delta E01 of the ligands generated around the top seeds against the seeds and
  against randomly drawn corpus ligands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from molmag.chem.builders import quiet_rdkit

from .corpus import Ligand, as_ligand
from .sampling import decode, encode, perturb
from .vae import MoleculeVAE


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay out, write (PNG, parent folders made) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# -- PCA ------------------------------------------------------------------------------------
@dataclass
class PCA:
    """A fitted PCA: ``coords = (z - mean) @ components.T``."""

    mean: np.ndarray
    components: np.ndarray          # (k, d)
    explained_variance_ratio: np.ndarray

    def transform(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, dtype=float) - self.mean) @ self.components.T


def latent_pca(z: np.ndarray, n_components: int = 2) -> PCA:
    """PCA of latent vectors ``z`` ``(n, d)`` by SVD of the centred matrix; each component's
    sign is fixed so that its largest-magnitude loading is positive (reproducible maps)."""
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"PCA needs at least two latent vectors, got shape {z.shape}")
    k = min(n_components, z.shape[1], len(z))
    mean = z.mean(axis=0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    comps = vt[:k]
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    var = s**2
    return PCA(mean, comps, var[:k] / var.sum() if var.sum() > 0 else np.zeros(k))


def plot_latent_maps(coords: np.ndarray, panels: Sequence[tuple[str, np.ndarray]],
                     path: str | Path, *, background: np.ndarray | None = None,
                     explained: Sequence[float] | np.ndarray | None = None,
                     title: str | None = None,
                     columns: int = 3) -> Path:
    """Scatter plots of PCA coordinates ``(n, 2)``, one panel per ``(label, values)`` (NaN =
    not labelled: not drawn); ``background`` ``(m, 2)`` points (e.g. the whole corpus) are
    drawn in light grey under every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = np.asarray(coords, dtype=float)
    n = len(panels)
    cols = min(columns, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    xl = f"PC1 ({100 * explained[0]:.0f} %)" if explained is not None else "PC1"
    yl = f"PC2 ({100 * explained[1]:.0f} %)" if explained is not None and len(explained) > 1 \
        else "PC2"
    for ax, (label, values) in zip(axes.ravel(), panels):
        if background is not None and len(background):
            ax.scatter(*np.asarray(background).T[:2], s=2, c="0.85", lw=0, rasterized=True)
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        order = np.argsort(v[ok])                      # large values drawn last (on top)
        sc = ax.scatter(coords[ok, 0][order], coords[ok, 1][order], c=v[ok][order], s=8,
                        cmap="viridis", lw=0)
        fig.colorbar(sc, ax=ax, shrink=0.85)
        ax.set_title(f"{label} ({ok.sum()} ligands)", fontsize=9)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def neighbour_correlation(coords: np.ndarray, values: np.ndarray, k: int = 5) -> float:
    """How ordered a latent map is for one property: the Pearson r between each point's value
    and the mean value of its ``k`` nearest neighbours in ``coords`` (1 = smooth map, 0 =
    no order).  NaN values are left out."""
    coords = np.asarray(coords, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    x, v = coords[ok], v[ok]
    if len(v) <= k + 1 or np.std(v) == 0:
        return float("nan")
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nb = np.argsort(d, axis=1)[:, :k]
    return float(np.corrcoef(v, v[nb].mean(axis=1))[0, 1])


# -- generation ----------------------------------------------------------------------------
@dataclass
class Generated:
    """Ligands generated around one seed: ``ligands`` (corpus-form SMILES, in order found),
    ``draws`` (latent samples decoded), ``sigmas`` (the widths used) and ``n_valid``
    (strings RDKit parses); ``n_unique`` distinct valid molecules among the draws and
    ``insane`` the found ligands that fail the valence sanity filter
    (:func:`molmag.chem.valence.valence_problems`), which are kept in ``ligands`` but flagged."""

    seed: str
    ligands: list[str]
    draws: int
    sigmas: list[float]
    n_valid: int
    n_unique: int = 0
    insane: list[str] | None = None

    def stats(self) -> dict:
        """Validity, uniqueness and novelty of this seed's draws (for the per-seed tables)."""
        return {"draws": self.draws, "n_valid": self.n_valid, "n_unique": self.n_unique,
                "n_novel": len(self.ligands),
                "n_novel_sane": len(self.ligands) - len(self.insane or []),
                "sigmas": list(self.sigmas)}


def generate_ligands(model: MoleculeVAE, seed: str | np.ndarray, n_target: int, *,
                     sigmas: Sequence[float] = (0.1, 0.2, 0.3), draws_per_sigma: int = 1000,
                     batch: int = 100, exclude: Iterable[str] = (), rng_seed: int = 0,
                     max_heavy_atoms: int | None = None, seed_name: str | None = None
                     ) -> Generated:
    """Up to ``n_target`` new ligands around ``seed`` (a string in the model's
    representation, or a latent vector) by LP sampling ``z' = mu(seed) + sigma eps``.

    The sigmas are tried in order, each for at most ``draws_per_sigma`` samples (drawn in
    batches of ``batch``), and sampling stops as soon as ``n_target`` are found.  A sample
    counts when it decodes to a ligand (:func:`as_ligand`), not in ``exclude`` (corpus-form
    SMILES) and not already found; ``max_heavy_atoms`` bounds its size."""
    from rdkit import Chem

    from .corpus import DEFAULT_MAX_HEAVY_ATOMS

    z = encode(model, [seed])[0] if isinstance(seed, str) else np.asarray(seed)
    from molmag.chem.valence import is_sane

    from .sampling import canonical_smiles

    excluded = set(exclude)
    found: list[str] = []
    draws = n_valid = 0
    used: list[float] = []
    distinct: set[str] = set()
    mha = max_heavy_atoms or DEFAULT_MAX_HEAVY_ATOMS
    with quiet_rdkit():
        for k, sigma in enumerate(sigmas):
            if len(found) >= n_target:
                break
            used.append(float(sigma))
            for b in range(int(np.ceil(draws_per_sigma / batch))):
                if len(found) >= n_target:
                    break
                strings = decode(model, perturb(z, float(sigma), batch, seed=[rng_seed, k, b]))
                draws += len(strings)
                for s in strings:
                    smi = model.vocab.to_smiles(s) if model.vocab.kind == "selfies" else s
                    lig = as_ligand(smi, max_heavy_atoms=mha) if smi else None
                    ok = lig is not None or bool(smi and Chem.MolFromSmiles(smi))
                    n_valid += ok
                    if ok:
                        distinct.add(lig.smiles if lig is not None else
                                     (canonical_smiles(smi) or smi))
                    if lig is not None and lig.smiles not in excluded and len(found) < n_target:
                        excluded.add(lig.smiles)
                        found.append(lig.smiles)
    name = seed_name if seed_name is not None else (seed if isinstance(seed, str) else "")
    return Generated(name, found, draws, used, n_valid, len(distinct),
                     [g for g in found if not is_sane(g)])


# -- seed bins and R^2 ---------------------------------------------------------------------
def seed_bins(values: dict[str, float], n_bins: int = 6, per_bin: int = 1,
              rng_seed: int = 0) -> list[tuple[int, str]]:
    """``per_bin`` random seeds from each of ``n_bins`` equal-width bins of ``values``
    (``{ligand: Delta E01}``); a bin with fewer ligands gives what it has.  Returns
    ``(bin index, ligand)`` pairs, lowest bin first."""
    if not values:
        raise ValueError("no labelled ligands to draw seeds from")
    names = sorted(values)
    v = np.array([values[n] for n in names])
    edges = np.linspace(v.min(), v.max(), n_bins + 1)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)
    rng = np.random.default_rng(rng_seed)
    out = []
    for b in range(n_bins):
        members = [names[i] for i in np.flatnonzero(which == b)]
        if members:
            pick = rng.choice(len(members), size=min(per_bin, len(members)), replace=False)
            out += [(b, members[i]) for i in sorted(pick)]
    return out


def seed_sample_r2(seed_values: Sequence[float] | np.ndarray,
                   sample_values: Sequence[float] | np.ndarray) -> float:
    """The paper's seed-vs-sample R^2: each sample's value predicted by its seed's value,
    ``1 - sum (y_s - y_seed)^2 / sum (y_s - mean y_s)^2`` over all (seed, sample) pairs."""
    y0 = np.asarray(seed_values, dtype=float)
    y = np.asarray(sample_values, dtype=float)
    if y.shape != y0.shape or y.size < 2:
        raise ValueError("seed_sample_r2 needs matching seed/sample values, at least two")
    ss = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((y - y0) ** 2).sum() / ss) if ss > 0 else float("nan")


def seed_sample_r2_interval(seed_values: Sequence[float], sample_values: Sequence[float],
                            groups: Sequence | None = None, *, n_boot: int = 2000,
                            level: float = 0.95, rng_seed: int = 0) -> dict:
    """:func:`seed_sample_r2` with a bootstrap ``level`` percentile interval.

    With ``groups`` (the seed of each pair) whole seeds are resampled with their samples
    (cluster bootstrap): pairs of one seed share its value, so resampling pairs alone would
    pretend to more independent evidence than there is.  Resamples whose samples all have
    one value (R^2 undefined) are dropped.  Returns ``r2``, ``low``, ``high`` (None when
    fewer than 3 pairs or 2 groups), ``n_pairs``, ``n_groups``, ``n_boot`` (resamples kept)
    and ``level``."""
    y0 = np.asarray(seed_values, dtype=float)
    y = np.asarray(sample_values, dtype=float)
    r2 = seed_sample_r2(y0, y)
    keys = list(range(len(y))) if groups is None else list(groups)
    if len(keys) != len(y):
        raise ValueError("groups must give one seed per pair")
    names = list(dict.fromkeys(keys))
    members = [np.flatnonzero([k == g for k in keys]) for g in names]
    out = {"r2": r2, "low": None, "high": None, "n_pairs": int(len(y)),
           "n_groups": len(names), "n_boot": 0, "level": level}
    if len(y) < 3 or len(names) < 2:
        return out
    rng = np.random.default_rng(rng_seed)
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        yy = y[idx]
        ss = ((yy - yy.mean()) ** 2).sum()
        if ss > 0 and len(idx) >= 2:
            vals.append(1.0 - ((yy - y0[idx]) ** 2).sum() / ss)
    if vals:
        a = (1.0 - level) / 2.0
        out.update(low=float(np.quantile(vals, a)), high=float(np.quantile(vals, 1.0 - a)),
                   n_boot=len(vals))
    return out


def plot_seed_vs_sample(pairs: Sequence[tuple[float, float]], path: str | Path, *,
                        label: str = "Delta E01 (cm-1)", r2: float | None = None) -> Path:
    """Sample value against seed value (Figs. 5, 8), with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.asarray(pairs, dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    if len(p):
        lo, hi = float(p.min()), float(p.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(p[:, 0], p[:, 1], s=14, alpha=0.7)
    ax.set_xlabel(f"seed {label}")
    ax.set_ylabel(f"generated {label}")
    if r2 is not None and np.isfinite(r2):
        ax.set_title(f"R$^2$ (sample vs seed) = {r2:.2f}, {len(p)} samples", fontsize=9)
    return save_figure(fig, path)


# -- repopulation --------------------------------------------------------------------------
def distribution_summary(values: Sequence[float]) -> dict:
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"n": 0, "mean": None, "median": None, "std": None, "q10": None, "q90": None}
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "std": float(v.std()), "q10": float(np.quantile(v, 0.1)),
            "q90": float(np.quantile(v, 0.9))}


def repopulation_shift(generated: Sequence[float], reference: Sequence[float], *,
                       n_boot: int = 2000, level: float = 0.95, rng_seed: int = 0) -> dict:
    """How far the generated ligands' values lie above a reference set's: differences of the
    means and medians, the probability that a generated value exceeds a reference one (the
    common-language effect size, 0.5 = no shift), and a bootstrap ``level`` percentile
    interval of the mean shift (``mean_shift_low``/``_high``: both sets resampled with
    replacement, independently; None with fewer than 2 values in either)."""
    g = np.asarray(list(generated), dtype=float)
    r = np.asarray(list(reference), dtype=float)
    g, r = g[np.isfinite(g)], r[np.isfinite(r)]
    if not g.size or not r.size:
        return {"mean_shift": None, "median_shift": None, "p_greater": None,
                "mean_shift_low": None, "mean_shift_high": None, "level": level}
    p = float(((g[:, None] > r[None, :]).mean() + 0.5 * (g[:, None] == r[None, :]).mean()))
    low = high = None
    if g.size >= 2 and r.size >= 2 and n_boot > 0:
        rng = np.random.default_rng(rng_seed)
        d = (g[rng.integers(0, g.size, (n_boot, g.size))].mean(1)
             - r[rng.integers(0, r.size, (n_boot, r.size))].mean(1))
        a = (1.0 - level) / 2.0
        low, high = float(np.quantile(d, a)), float(np.quantile(d, 1.0 - a))
    return {"mean_shift": float(g.mean() - r.mean()),
            "median_shift": float(np.median(g) - np.median(r)), "p_greater": p,
            "mean_shift_low": low, "mean_shift_high": high, "level": level}


def plot_repopulation(sets: Sequence[tuple[str, Sequence[float]]], path: str | Path, *,
                      label: str = "Delta E01 (cm-1)") -> Path:
    """Overlaid histograms of Delta E01 for several sets (Fig. 10b)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allv = np.concatenate([np.asarray(v, float) for _, v in sets if len(v)]) \
        if any(len(v) for _, v in sets) else np.zeros(1)
    bins = np.linspace(float(np.nanmin(allv)), float(np.nanmax(allv)) + 1e-9, 25)
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for name, values in sets:
        v = np.asarray(values, dtype=float)
        if len(v):
            ax.hist(v, bins=bins.tolist(), density=True, alpha=0.45,
                    label=f"{name} (n={len(v)}, mean {np.nanmean(v):.0f})")
    ax.set_xlabel(label)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def top_seeds(values: dict[str, float], n: int = 16) -> list[str]:
    """The ``n`` ligands with the largest values (ties by SMILES)."""
    return [k for k, _ in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


__all__ = ["PCA", "latent_pca", "plot_latent_maps", "neighbour_correlation", "Generated",
           "generate_ligands", "seed_bins", "seed_sample_r2", "plot_seed_vs_sample",
           "distribution_summary", "repopulation_shift", "plot_repopulation", "top_seeds",
           "Ligand"]
