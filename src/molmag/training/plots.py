"""Parity plots and learning curves (matplotlib, Agg), written as PNG beside the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _parity(ax, ref, pred, label: str, unit: str, std=None) -> None:
    ref, pred = np.ravel(ref), np.ravel(pred)
    if std is not None and np.any(np.ravel(std) > 0):
        sc = ax.scatter(ref, pred, s=6, c=np.ravel(std), cmap="viridis", alpha=0.8)
        ax.figure.colorbar(sc, ax=ax, label=f"calibrated committee std ({unit})")
    else:
        ax.scatter(ref, pred, s=6, alpha=0.6)
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
    rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
    ax.set_xlabel(f"reference {label} ({unit})")
    ax.set_ylabel(f"predicted {label} ({unit})")
    ax.set_title(f"{label}: RMSE {rmse:.3g} {unit}, n = {len(ref)}")
    ax.set_aspect("equal", adjustable="datalim")


def parity_plot(path: str | Path, target: str, pred: dict[str, Any], ref: dict[str, Any],
                title: str = "", frames: Sequence | None = None) -> Path:
    """Parity plot of a prediction against reference targets (one PNG, one panel per
    quantity, :attr:`molmag.models.targets.TargetSpec.panels`): D_ij and D for D tensors;
    energy (meV, shifted by the mean reference) and force components for energies; levels
    for Kramers doublets; B_kq for crystal fields.  ``frames`` (the structures) give the ions
    of crystal-field references in another convention."""
    from molmag.models.targets import reference_values, target_spec

    plt = _plt()
    spec = target_spec(target)
    refs = reference_values(target, pred, ref, list(frames or []))
    strings = {k: v for k, v in pred.items() if isinstance(v, str)}
    panels = []
    for pan in spec.panels:
        r, p = refs.get(pan.key), pred.get(pan.key)
        if r is None or p is None:
            continue
        if isinstance(r, list):                      # per-atom arrays (forces)
            r = np.concatenate([np.ravel(x) for x in r])
            p = np.concatenate([np.ravel(x) for x in p])
        r, p = np.asarray(r), np.asarray(p)
        std = pred.get(f"{pan.key}_std") if pan.std else None
        if pan.key == spec.name and spec.ground_columns:
            r, p = r[:, spec.ground_columns:], p[:, spec.ground_columns:]
        shift = r.mean() if pan.centred else 0.0
        if pan.scale != 1.0 or pan.centred:
            r, p = pan.scale * (r - shift), pan.scale * (p - shift)
            std = None if std is None else pan.scale * np.asarray(std)
        panels.append((r, p, pan.label.format_map(strings), pan.unit, std))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (r, p, label, unit, std) in zip(axes[0], panels):
        _parity(ax, r, p, label, unit, std)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curve_plot(path: str | Path, sizes: Sequence[int],
                        series: dict[str, Sequence[float]], unit: str, title: str = "") -> Path:
    """Log-log learning curve: test error against training-set size, one line per series."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, ys in series.items():
        ax.plot(sizes, ys, "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training configurations")
    ax.set_ylabel(f"test RMSE ({unit})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path



def reliability_plot(path: str | Path, errors: dict[str, tuple], title: str = "") -> Path:
    """Reliability diagram: for each calibrated quantity, the observed share of errors
    inside the central Gaussian interval of the predicted sigma against the expected share
    (the diagonal is perfect calibration; below it, sigmas are too small).  ``errors`` maps a
    quantity to (errors, calibrated sigmas), as
    :func:`molmag.models.committee.reference_errors` returns them.  A second panel bins the
    structures by sigma and plots the RMSE of each bin against its RMS sigma."""
    from molmag.models.calibration import calibration_report, reliability_curve
    from molmag.models.targets import quantity_unit

    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.6))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
    lim = 0.0
    for key, (e, s) in errors.items():
        rep = calibration_report(e, s)
        if not rep.get("n"):
            continue
        p, obs = reliability_curve(e, s)
        ax.plot(p, obs, "o-", ms=3,
                label=f"{key}: ±1σ {rep['coverage_1sigma']:.2f}, ±2σ {rep['coverage_2sigma']:.2f}")
        e, s = np.abs(np.ravel(e)), np.ravel(s)
        order = np.argsort(s)
        bins = [b for b in np.array_split(order, min(10, max(1, len(order) // 20))) if len(b)]
        rms_s = np.array([np.sqrt(np.mean(s[b] ** 2)) for b in bins])
        rmse = np.array([np.sqrt(np.mean(e[b] ** 2)) for b in bins])
        scale = max(float(rms_s.max()), float(rmse.max()), 1e-300)
        ax2.plot(rms_s / scale, rmse / scale, "o-", ms=3,
                 label=f"{key} (unit {scale:.3g} {quantity_unit(key)})")
        lim = 1.05
    ax.set_xlabel("expected coverage (Gaussian)")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("reliability")
    ax2.plot([0, lim], [0, lim], "k--", lw=0.8)
    ax2.set_xlabel("RMS predicted σ of the bin (scaled)")
    ax2.set_ylabel("RMSE of the bin (scaled)")
    ax2.set_title("error against σ (10 bins by σ)")
    ax2.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["parity_plot", "learning_curve_plot", "reliability_plot"]
