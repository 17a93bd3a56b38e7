"""Parity plots and learning curves (matplotlib, Agg), written as PNG beside the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molmag.physics.zfs import zfs_from_tensor


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
                title: str = "") -> Path:
    """Parity plot of a prediction against reference targets (one PNG, one panel per
    quantity): D_ij and D for D tensors; energy (meV/atom, shifted by the mean) and force
    components for energies; levels for Kramers doublets; B_kq for crystal fields."""
    plt = _plt()
    panels = []
    if target == "zfs_tensor":
        t_r = np.asarray(ref["zfs_tensor"])
        d_r = np.array([zfs_from_tensor(t).D for t in t_r])
        panels = [(t_r, pred["zfs_tensor"], "D_ij", "cm-1", pred.get("zfs_tensor_std")),
                  (d_r, pred["zfs_D"], "D", "cm-1", pred.get("zfs_D_std"))]
    elif target == "energy":
        e_r, e_p = np.asarray(ref["energy"]), np.asarray(pred["energy"])
        panels = [(1000 * (e_r - e_r.mean()), 1000 * (e_p - e_r.mean()), "E - <E_ref>", "meV",
                   None if "energy_std" not in pred else 1000 * np.asarray(pred["energy_std"]))]
        if ref.get("forces") is not None:
            panels.append((np.concatenate([np.ravel(f) for f in ref["forces"]]),
                           np.concatenate([np.ravel(f) for f in pred["forces"]]),
                           "F", "eV/Å", None))
    elif target == "kd_energies":
        panels = [(np.asarray(ref["kd_energies"])[:, 1:], np.asarray(pred["kd_energies"])[:, 1:],
                   "Kramers-doublet energies", "cm-1", None)]
    else:
        from molmag.training.metrics import cf_vector

        r = cf_vector(ref["cf_parameters"], pred["cf_keys"], pred["cf_convention"])
        panels = [(r, pred["cf_parameters"], f"B_kq ({pred['cf_convention']})", "cm-1", None)]
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




_UNITS = {"zfs_tensor": "cm-1", "zfs_D": "cm-1", "zfs_E": "cm-1", "energy": "eV",
          "forces": "eV/Å", "kd_energies": "cm-1", "cf_parameters": "cm-1"}


def reliability_plot(path: str | Path, errors: dict[str, tuple], title: str = "") -> Path:
    """Reliability diagram: for each calibrated quantity, the observed share of errors
    inside the central Gaussian interval of the predicted sigma against the expected share
    (the diagonal is perfect calibration; below it, sigmas are too small).  ``errors`` maps a
    quantity to (errors, calibrated sigmas), as
    :func:`molmag.models.committee.reference_errors` returns them.  A second panel bins the
    structures by sigma and plots the RMSE of each bin against its RMS sigma."""
    from molmag.models.calibration import calibration_report, reliability_curve

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
                 label=f"{key} (unit {scale:.3g} {_UNITS.get(key, '')})")
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
