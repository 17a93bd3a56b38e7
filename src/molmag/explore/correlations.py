r"""Magneto-structural correlations over a dataset or a trajectory (Zaverkin et al. 2022, Fig. 4).

For every structure n: the axial zero-field splitting D_n (cm-1, D = 3/2 Z with Z the
largest-magnitude eigenvalue of the traceless D tensor: :func:`molmag.physics.zfs.zfs_from_tensor`),
either from the stored label ``zfs_tensor`` or from an ASE calculator (``zfs_D``, else
``zfs_tensor``), and the structural features of :mod:`molmag.chem.features`
(:func:`~molmag.chem.features.features_table`):

* ``d_ML_mean_A`` - mean metal-donor distance :math:`d = \frac14\sum_i d_i` (Angstrom);
* ``q_tet`` - tetrahedral order parameter
  :math:`q = 1 - \frac38\sum_{i<j}(\cos\theta_{ij} + \frac13)^2` (1 tetrahedron, 1/2 square
  plane; four donors only);
* ``angle_intra_mean_deg`` - mean intraligand donor-M-donor angle (degrees), optional.

For each feature x: the Pearson coefficient

.. math:: r = \frac{\sum_n (x_n - \bar x)(D_n - \bar D)}
                   {\sqrt{\sum_n (x_n - \bar x)^2}\sqrt{\sum_n (D_n - \bar D)^2}},

its two-sided p-value (:func:`scipy.stats.pearsonr`, t test with n - 2 degrees of freedom), a
percentile bootstrap 95 % confidence interval (resampling structures with replacement) and
the least-squares line D = a x + b (a in cm-1 per unit of x).  r is invariant under rotations
and translations of the structures (D and the features are).

Literature: Zaverkin et al., J. Chem. Theory Comput. 18, 1 (2022), MD of
[Co(N2S2O4C8H10)2]2- = [Co(pdms)2]2- at 100 K with a Gaussian-moment NN D-tensor model:
r = -0.22 for D vs the mean Co-N distance and r = 0.88 for D vs q (:data:`LITERATURE`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from molmag.chem.features import features_table
from molmag.physics.zfs import zfs_from_tensor
from molmag.progress import ProgressFn

#: Zaverkin et al. 2022 (MD at 100 K, [Co(pdms)2]2-): Pearson r of D with each feature.
LITERATURE = {
    "source": "Zaverkin, Netz, Zills, Koehn, Kaestner, J. Chem. Theory Comput. 18, 1 (2022), "
              "Fig. 4: MD of [Co(pdms)2]2- at 100 K",
    "r": {"d_ML_mean_A": -0.22, "q_tet": 0.88},
}
#: Features correlated with D, their axis labels and units.
FEATURES = {
    "d_ML_mean_A": ("mean metal–donor distance", "Å"),
    "q_tet": ("tetrahedral order parameter q", ""),
    "angle_intra_mean_deg": ("mean intraligand donor–M–donor angle", "deg"),
}
_TRAJ_SUFFIXES = (".xyz", ".extxyz", ".traj", ".pdb", ".cif")


def pearson(x, y, *, n_bootstrap: int = 2000, seed: int = 0,
            confidence: float = 0.95) -> dict:
    """Pearson r of y with x, its p-value, a percentile bootstrap CI and the fit y = a x + b.

    Returns ``{"r", "p_value", "ci_low", "ci_high", "slope", "intercept", "n"}``; r, p, CI
    and the fit are NaN when x or y is constant or n < 3.
    """
    from scipy.stats import pearsonr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    out = {"r": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "slope": np.nan, "intercept": np.nan, "n": int(n)}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    r, p = pearsonr(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    out.update(r=float(r), p_value=float(p), slope=float(slope), intercept=float(intercept))
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        chunks: list[np.ndarray] = []
        for chunk in np.array_split(np.arange(n_bootstrap), max(1, n_bootstrap * n // 2_000_000)):
            idx = rng.integers(0, n, size=(len(chunk), n))
            xb, yb = x[idx], y[idx]
            xb = xb - xb.mean(axis=1, keepdims=True)
            yb = yb - yb.mean(axis=1, keepdims=True)
            den = np.sqrt(np.sum(xb**2, axis=1) * np.sum(yb**2, axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                chunks.append(np.sum(xb * yb, axis=1) / den)
        rs = np.concatenate(chunks)
        rs = rs[np.isfinite(rs)]
        if len(rs):
            a = 0.5 * (1.0 - confidence)
            out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(rs, [a, 1.0 - a]))
    return out


@dataclass
class CorrelationResult:
    """D (cm-1) and features of n structures, with the statistics of each feature.

    ``stats[feature]`` is :func:`pearson`'s dict; ``literature`` Zaverkin et al.'s r values;
    ``names`` identify the structures (dataset row ids or frame numbers); ``skipped`` the
    structures left out and why.
    """

    D: np.ndarray
    features: dict[str, np.ndarray]
    stats: dict[str, dict]
    names: list[str]
    source: str = ""
    D_from: str = ""
    skipped: list[str] = field(default_factory=list)
    literature: dict = field(default_factory=lambda: json.loads(json.dumps(LITERATURE)))
    meta: dict = field(default_factory=dict)

    def r(self, feature: str) -> float:
        return self.stats[feature]["r"]

    def table(self) -> list[dict]:
        """One row per feature: r, p, CI, slope, and the literature r where there is one."""
        return [{"feature": k, **v, "r_literature": self.literature["r"].get(k)}
                for k, v in self.stats.items()]

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """``<path>.npz`` (D and features per structure) and ``<path>.json`` (statistics)."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
        arrays: dict[str, Any] = {"D": self.D, "names": np.array(self.names, dtype=str),
                                  **{f"feature::{k}": v for k, v in self.features.items()}}
        np.savez(npz, **arrays)
        js.write_text(json.dumps({
            "format": "molmag.correlations/1", "source": self.source, "D_from": self.D_from,
            "units": {"D": "cm-1", **{k: FEATURES.get(k, ("", ""))[1] for k in self.features}},
            "n": int(len(self.D)), "stats": self.stats, "literature": self.literature,
            "skipped": self.skipped, "meta": self.meta}, indent=1, default=float))
        return npz, js

    @classmethod
    def load(cls, path: str | Path) -> CorrelationResult:
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        doc = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as z:
            feats = {k.split("::", 1)[1]: z[k] for k in z.files if k.startswith("feature::")}
            D, names = z["D"], [str(s) for s in z["names"]]
        return cls(D=D, features=feats, stats=doc["stats"], names=names, source=doc["source"],
                   D_from=doc["D_from"], skipped=doc["skipped"], literature=doc["literature"],
                   meta=doc["meta"])

    def plot(self, directory: str | Path, prefix: str = "correlation") -> list[Path]:
        """One scatter PNG per feature, ``<prefix>_<feature>.png``: D (cm-1) against the
        feature, with the least-squares line; r (95 % CI) and the literature r in the legend."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for k, x in self.features.items():
            st = self.stats[k]
            label, unit = FEATURES.get(k, (k, ""))
            fig, ax = plt.subplots(figsize=(5.0, 4.0))
            ax.scatter(x, self.D, s=6, alpha=0.5, label=f"n = {st['n']}")
            if np.isfinite(st["r"]):
                xs = np.linspace(np.nanmin(x), np.nanmax(x), 2)
                ci = (f" [{st['ci_low']:.2f}, {st['ci_high']:.2f}]"
                      if np.isfinite(st["ci_low"]) else "")
                ax.plot(xs, st["slope"] * xs + st["intercept"], "r-",
                        label=f"fit: r = {st['r']:.3f}{ci}")
            lit = self.literature["r"].get(k)
            if lit is not None:
                ax.plot([], [], " ", label=f"Zaverkin 2022: r = {lit:+.2f}")
            ax.set_xlabel(f"{label} ({unit})" if unit else label)
            ax.set_ylabel("D (cm-1)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            p = directory / f"{prefix}_{k}.png"
            fig.savefig(p, dpi=120)
            plt.close(fig)
            out.append(p)
        return out


def _items(source, selection, index):
    """(list of Atoms or records, names, description, is_dataset)."""
    if isinstance(source, (str, Path)) and Path(str(source)).suffix.lower() in _TRAJ_SUFFIXES:
        from ase.io import read

        frames = read(str(source), index=index)
        frames = frames if isinstance(frames, list) else [frames]
        return frames, [str(i) for i in range(len(frames))], str(source), False
    if isinstance(source, (str, Path)) or hasattr(source, "select"):
        from molmag.io.dataset import Dataset

        ds = source if hasattr(source, "select") else Dataset(source)
        recs = list(ds.select(selection))
        desc = f"{getattr(ds, 'url', source)}" + (f" [{selection}]" if selection else "")
        return recs, [str(r.id) for r in recs], desc, True
    items = list(source)
    names = [str(getattr(it, "id", None) if getattr(it, "id", None) is not None else i)
             for i, it in enumerate(items)]
    return items, names, f"{len(items)} structures", bool(items) and hasattr(items[0], "atoms")


def _atoms_for_calc(item, charge, multiplicity) -> Atoms:
    a = getattr(item, "atoms", item).copy()
    a.info = dict(getattr(item, "atoms", item).info)
    if hasattr(item, "atoms"):  # a record: its charge, spin and metal
        a.info.setdefault("charge", item.charge)
        a.info.setdefault("multiplicity", item.multiplicity)
        if item.metal_index is not None:
            a.info.setdefault("metal_index", item.metal_index)
    if charge is not None:
        a.info.setdefault("charge", int(charge))
    if multiplicity is not None:
        a.info.setdefault("multiplicity", int(multiplicity))
    return a


def _D_from_calculator(calc, atoms: Atoms) -> float:
    atoms.calc = calc
    impl = getattr(calc, "implemented_properties", ())
    if "zfs_D" in impl:
        return float(calc.get_property("zfs_D", atoms))
    if "zfs_tensor" in impl:
        return zfs_from_tensor(calc.get_property("zfs_tensor", atoms)).D
    raise ValueError(f"{type(calc).__name__} computes neither zfs_D nor zfs_tensor")


def magneto_structural_correlations(
        source, *, calculator=None, selection: str | None = None, index: str = ":",
        metal_index: int | None = None, donors: str | Sequence[int] | None = None,
        include_angle: bool = True, charge: int | None = None,
        multiplicity: int | None = None, n_bootstrap: int = 2000, seed: int = 0,
        progress: ProgressFn | None = None) -> CorrelationResult:
    """Correlate D with the mean metal-donor distance, q and (optionally) the mean bite angle.

    Parameters
    ----------
    source : a molmag dataset (path/URL or :class:`~molmag.io.dataset.Dataset`), a
        trajectory file (``.xyz``/``.extxyz``/``.traj``..., read with :func:`ase.io.read`
        at ``index``), or a list of ``ase.Atoms`` or of :class:`~molmag.io.records.Record`.
    calculator : ASE calculator giving ``zfs_D`` or ``zfs_tensor`` (e.g.
        :class:`~molmag.physics.ligand_field.LigandFieldCalculator` or a
        :class:`~molmag.models.calculator.ModelCalculator`).  Required for structures without
        a ``zfs_tensor`` label; when given it is used for all.
    selection : ASE selection of dataset rows (e.g. ``"group=md1200"``).
    metal_index, donors : passed to :func:`molmag.chem.features.features_table`; ``donors``
        defaults to ``"first"`` for a trajectory or list of Atoms (frames of one complex) and
        ``"auto"`` for records.
    include_angle : also correlate with the mean intraligand angle (when there are chelates).
    charge, multiplicity : put into ``atoms.info`` where absent (what a calculator reads;
        the xyz frames of [Co(pdms)2]2- need charge -2, multiplicity 4).
    n_bootstrap, seed : bootstrap of the r confidence interval (0: none).

    Structures without D (no label, no calculator) are skipped and listed in ``skipped``.
    """
    t0 = time.perf_counter()
    items, names, desc, is_records = _items(source, selection, index)
    if donors is None:
        donors = "auto" if is_records else "first"
    d_values: list[float] = []
    keep: list[int] = []
    skipped: list[str] = []
    for n, item in enumerate(items):
        if progress is not None:
            progress(n, len(items), "D per structure")
        try:
            if calculator is not None:
                d = _D_from_calculator(calculator, _atoms_for_calc(item, charge, multiplicity))
            else:
                labels = getattr(item, "labels", None) or {}
                t = labels.get("zfs_tensor")
                info = getattr(item, "info", {})
                if t is None:  # extxyz frames: REF_-prefixed keys as MACE/apax write them
                    t = info.get("zfs_tensor", info.get("REF_zfs_tensor"))
                if t is None:
                    skipped.append(f"{names[n]}: no zfs_tensor label and no calculator")
                    continue
                d = zfs_from_tensor(np.reshape(np.asarray(t, float), (3, 3))).D
        except Exception as exc:  # a failed structure is reported, not hidden
            skipped.append(f"{names[n]}: {type(exc).__name__}: {exc}")
            continue
        d_values.append(d)
        keep.append(n)
    if len(keep) < 3:
        raise ValueError(f"{desc}: only {len(keep)} structures with D ({len(skipped)} "
                         f"skipped{': ' + skipped[0] if skipped else ''})")
    kept = [items[n] for n in keep]
    rows = features_table(kept, metal_index=metal_index, names=[names[n] for n in keep],
                          donors=donors)
    wanted = ["d_ML_mean_A", "q_tet"] + (["angle_intra_mean_deg"] if include_angle else [])
    feats = {k: np.array([row.get(k, np.nan) for row in rows], float) for k in wanted}
    feats = {k: v for k, v in feats.items() if np.isfinite(v).any()}
    D = np.asarray(d_values, float)
    stats = {k: pearson(v, D, n_bootstrap=n_bootstrap, seed=seed) for k, v in feats.items()}
    src = ("calculator " + type(calculator).__name__ if calculator is not None
           else "zfs_tensor label")
    return CorrelationResult(D=D, features=feats, stats=stats, names=[names[n] for n in keep],
                             source=desc, D_from=src, skipped=skipped,
                             meta={"wall_s": time.perf_counter() - t0, "donors": (
                                 donors if isinstance(donors, str) else list(map(int, donors)))})


__all__ = ["CorrelationResult", "FEATURES", "LITERATURE", "magneto_structural_correlations",
           "pearson"]
