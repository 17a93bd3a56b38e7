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
        ax.figure.colorbar(sc, ax=ax, label=f"committee std ({unit})")
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


__all__ = ["parity_plot", "learning_curve_plot"]
