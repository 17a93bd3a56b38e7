"""Thermal averages of the ZFS tensor along MD runs (Zaverkin et al., J. Chem. Theory Comput.
2022, Sec. 4.2, Figs 4 and 5).

Per target temperature (the sidecar's ``temperature_K``; independent runs at one temperature
are pooled after each has its first ``skip_ps`` picoseconds discarded as equilibration):

* the six independent elements D_ij (i <= j) of the tensor: mean and standard deviation
  (cm-1) and their histograms (Fig. 5 left), by default in the molecule's Eckart frame (the
  orientation of the first run's first frame): a free molecule tumbles during gas-phase MD
  and its laboratory-frame D_ij would mix with that rotation (the paper's periodic box does
  not tumble);
* D = 3/2 Z and E = (X - Y)/2 of every frame's tensor, Z the eigenvalue of largest magnitude
  of its traceless part and E with the sign of D (molmag's convention,
  :func:`molmag.physics.zfs.zfs_from_tensor`; the paper's E = |X - Y|/2 is ``E_abs``), mean
  and standard deviation (Fig. 5 right);
* Pearson's r of D with the mean metal-donor distance d_ML = 1/4 sum_i d_i and with the
  tetrahedral order parameter q = 1 - 3/8 sum_{i<j} (cos theta_ij + 1/3)^2 (eq. 14, Fig. 4;
  :mod:`molmag.chem.features`, donors fixed to those of each run's first frame);
* the calibrated committee spread of D (``zfs_D_std`` of the frames) along the run.

Standard deviations are population ones (``numpy.std``, ddof = 0) over the pooled frames.
``D_sem_blocks`` is a standard error of the mean D that respects time correlation: every run
is cut into :data:`N_BLOCKS` consecutive blocks and the standard error is
std(block means, ddof = 1) / sqrt(number of blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molmag.dynamics.trajectory import Trajectory, check_same_structure, group_by_temperature

#: The six independent elements of the symmetric tensor, (i, j) with i <= j, and their names.
COMPONENTS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
COMPONENT_NAMES = tuple("xyz"[i] + "xyz"[j] for i, j in COMPONENTS)
#: Blocks per run for the block standard error of the mean D.
N_BLOCKS = 5


@dataclass
class ThermalSeries:
    """The per-frame numbers of all runs at one temperature, after the equilibration cut.

    ``run`` (n,) index into ``paths``; ``time_ps`` (n,); ``tensors`` (n, 3, 3) cm-1; ``D``,
    ``E`` (n,) cm-1; ``d_ML`` (n,) Angstrom; ``q`` (n,) or None (not four donors);
    ``sigma_D`` (n,) cm-1 or None (no committee); ``tensors_std`` (n, 3, 3) or None;
    ``T_kinetic`` (n,) K or None; ``forces_std_max`` (n,) eV/Angstrom or None."""

    temperature: float
    paths: list[str]
    run: np.ndarray
    time_ps: np.ndarray
    tensors: np.ndarray
    D: np.ndarray
    E: np.ndarray
    d_ML: np.ndarray
    q: np.ndarray | None
    sigma_D: np.ndarray | None
    tensors_std: np.ndarray | None
    T_kinetic: np.ndarray | None
    forces_std_max: np.ndarray | None
    skip_ps: float
    n_donors: int
    frame: str = "molecular"

    @property
    def n_frames(self) -> int:
        return len(self.D)


def zfs_series(tensors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D and E (cm-1) of every tensor of an (n, 3, 3) array (molmag's convention, see
    :func:`molmag.physics.zfs.zfs_from_tensor`)."""
    from molmag.physics.zfs import zfs_from_tensor

    out = np.array([(p.D, p.E) for p in map(zfs_from_tensor, tensors)]).reshape(-1, 2)
    return out[:, 0], out[:, 1]


def coordination_series(traj: Trajectory, frames) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Mean metal-donor distance d_ML (Angstrom) and tetrahedral order parameter q (eq. 14;
    None unless the metal has four donors) of the given frames, with the donors of the run's
    first frame; returns (d_ML, q, number of donors)."""
    from molmag.chem.features import metal_donor_distances, tetrahedral_order_parameter

    atoms = traj.frame(0)
    m = traj.metal_index
    try:
        _, donors = metal_donor_distances(atoms, m)
    except ValueError as exc:
        raise ValueError(f"{traj.path}, frame 0: {exc}") from None
    if len(donors) == 0:
        raise ValueError(f"{traj.path}, frame 0: the metal has no donor atoms")
    d = np.empty(len(frames))
    q = np.empty(len(frames)) if len(donors) == 4 else None
    for k, f in enumerate(frames):
        atoms.positions = traj.positions[f]
        d[k] = metal_donor_distances(atoms, m, donors)[0].mean()
        if q is not None:
            q[k] = tetrahedral_order_parameter(atoms, m, donors)[0]
    return d, q, len(donors)


def _cat(parts):
    return None if any(p is None for p in parts) else np.concatenate(parts)


def thermal_series(trajectories: list[Trajectory], skip_ps: float | Sequence[float] = 0.0,
                   frame: str = "molecular") -> dict[str, ThermalSeries]:
    """The per-frame series of every temperature (keys ``f"{T:g}"``, increasing), each run's
    first ``skip_ps`` ps discarded (one number for every run, or one per trajectory in the
    order given; a temperature's ``skip_ps`` is then the largest of its runs').  Every run
    needs ``zfs_tensor`` in its frames; runs of different structures are refused
    (:func:`check_same_structure`).

    ``frame="molecular"`` (default) turns every tensor into the Eckart frame of the first
    run's first frame (:meth:`Trajectory.molecular_frame_tensors`), so that the D_ij do not
    wander with the tumbling of the free molecule; ``"lab"`` keeps them as stored.  D, E and
    the correlations do not depend on it; ``tensors_std`` stays as stored."""
    if frame not in ("molecular", "lab"):
        raise ValueError(f"frame {frame!r}: 'molecular' or 'lab'")
    check_same_structure(trajectories)
    cuts = np.asarray(skip_ps, float)
    if cuts.ndim == 0:
        cuts = np.full(len(trajectories), float(cuts))
    elif cuts.shape != (len(trajectories),):
        raise ValueError(f"skip_ps: {cuts.size} values for {len(trajectories)} trajectories")
    if not np.all(cuts >= 0):
        raise ValueError(f"skip_ps must be >= 0, got {sorted(cuts.tolist())}")
    skips = {id(t): float(x) for t, x in zip(trajectories, cuts)}   # grouping keeps the objects
    reference = trajectories[0].positions[0]
    out = {}
    for key, runs in group_by_temperature(trajectories).items():
        parts: dict[str, list[Any]] = {
            k: [] for k in ("run", "t", "ten", "sd", "tstd", "tk", "fs", "d", "q")}
        n_donors = 0
        for r, traj in enumerate(runs):
            ten = traj.require("zfs_tensor")
            keep = traj.after(skips[id(traj)])
            d, q, n_donors = coordination_series(traj, keep)
            parts["run"].append(np.full(len(keep), r))
            parts["t"].append(traj.times_fs[keep] / 1000.0)
            parts["ten"].append(traj.molecular_frame_tensors(reference, keep)
                                if frame == "molecular" else ten[keep])
            parts["d"].append(d)
            parts["q"].append(q)
            sd = traj.scalars.get("zfs_D_std")
            parts["sd"].append(None if sd is None else sd[keep])
            parts["tstd"].append(None if traj.tensors_std is None else traj.tensors_std[keep])
            parts["tk"].append(None if traj.temperatures_K is None else traj.temperatures_K[keep])
            fs = traj.scalars.get("forces_std_max")
            parts["fs"].append(None if fs is None else fs[keep])
        tensors = np.concatenate(parts["ten"])
        D, E = zfs_series(tensors)
        out[key] = ThermalSeries(
            temperature=runs[0].temperature, paths=[str(t.path) for t in runs],
            run=np.concatenate(parts["run"]), time_ps=np.concatenate(parts["t"]),
            tensors=tensors, D=D, E=E, d_ML=np.concatenate(parts["d"]), q=_cat(parts["q"]),
            sigma_D=_cat(parts["sd"]), tensors_std=_cat(parts["tstd"]),
            T_kinetic=_cat(parts["tk"]), forces_std_max=_cat(parts["fs"]),
            skip_ps=max(skips[id(t)] for t in runs), n_donors=n_donors, frame=frame)
    return out


def pearson_r(x: np.ndarray | None, y: np.ndarray | None) -> float | None:
    """Pearson's linear correlation coefficient; None when either series is missing or
    constant (or has fewer than 3 points)."""
    if x is None or y is None or len(x) < 3:
        return None
    x, y = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    den = np.sqrt(np.sum(x * x) * np.sum(y * y))
    if not den > 0:
        return None
    return float(np.sum(x * y) / den)


def block_sem(values: np.ndarray, run: np.ndarray, n_blocks: int = N_BLOCKS) -> float | None:
    """Standard error of the mean from block averages: each run cut into ``n_blocks``
    consecutive blocks, std(block means, ddof=1)/sqrt(#blocks); None with < 2 blocks."""
    means = []
    for r in np.unique(run):
        v = values[run == r]
        for b in np.array_split(v, min(n_blocks, len(v))):
            means.append(b.mean())
    if len(means) < 2:
        return None
    return float(np.std(means, ddof=1) / np.sqrt(len(means)))


def _stats(x: np.ndarray | None) -> tuple[float | None, float | None]:
    if x is None:
        return None, None
    return float(np.mean(x)), float(np.std(x))


def summarize(s: ThermalSeries) -> dict:
    """The JSON entry of one temperature (see :func:`thermal_summary`)."""
    comp = np.stack([s.tensors[:, i, j] for i, j in COMPONENTS], axis=1)
    res = {
        "n_frames": s.n_frames,
        "D_mean": float(np.mean(s.D)), "D_std": float(np.std(s.D)),
        "E_mean": float(np.mean(s.E)), "E_std": float(np.std(s.E)),
        "Dij_mean": {n: float(v) for n, v in zip(COMPONENT_NAMES, comp.mean(axis=0))},
        "Dij_std": {n: float(v) for n, v in zip(COMPONENT_NAMES, comp.std(axis=0))},
        "r_D_dML": pearson_r(s.D, s.d_ML),
        "r_D_q": pearson_r(s.D, s.q),
        "sigma_D_mean": None if s.sigma_D is None else float(np.mean(s.sigma_D)),
    }
    E_abs = np.abs(s.E)
    dml, dml_sd = _stats(s.d_ML)
    q, q_sd = _stats(s.q)
    tk, tk_sd = _stats(s.T_kinetic)
    res.update({
        "temperature_K": s.temperature,
        "n_runs": len(s.paths),
        "runs": s.paths,
        "skip_ps": s.skip_ps,
        "analysed_ps": float(sum(np.ptp(s.time_ps[s.run == r]) for r in np.unique(s.run))),
        "D_sem_blocks": block_sem(s.D, s.run),
        "E_abs_mean": float(np.mean(E_abs)), "E_abs_std": float(np.std(E_abs)),
        "d_ML_mean": dml, "d_ML_std": dml_sd, "q_mean": q, "q_std": q_sd,
        "n_donors": s.n_donors,
        "tensor_frame": s.frame,
        "T_kinetic_mean": tk, "T_kinetic_std": tk_sd,
        "sigma_D_max": None if s.sigma_D is None else float(np.max(s.sigma_D)),
        "sigma_Dij_mean": None if s.tensors_std is None else {
            n: float(s.tensors_std[:, i, j].mean()) for n, (i, j) in zip(COMPONENT_NAMES,
                                                                         COMPONENTS)},
        "forces_std_max": None if s.forces_std_max is None else float(np.max(s.forces_std_max)),
        "units": {"D E Dij sigma": "cm-1", "d_ML": "Angstrom", "T": "K", "time": "ps",
                  "forces_std": "eV/Angstrom"},
    })
    return res


def thermal_summary(trajectories: list[Trajectory], skip_ps: float | Sequence[float] = 0.0,
                    series: dict[str, ThermalSeries] | None = None,
                    frame: str = "molecular") -> dict:
    """Thermal averages per temperature: ``{"<T>": {"n_frames", "D_mean", "D_std", "E_mean",
    "E_std", "Dij_mean", "Dij_std", "r_D_dML", "r_D_q", "sigma_D_mean", ...}}`` (cm-1;
    ``Dij_*`` keyed xx, xy, xz, yy, yz, zz; r None where undefined; ``sigma_D_mean`` None
    without a committee), plus the keys listed in :func:`summarize` (n_runs, runs, skip_ps,
    analysed_ps, D_sem_blocks, E_abs_*, d_ML_*, q_*, T_kinetic_*, sigma_D_max,
    sigma_Dij_mean, forces_std_max).  ``series`` reuses :func:`thermal_series`' result."""
    if series is None:
        series = thermal_series(trajectories, skip_ps, frame)
    return {key: summarize(s) for key, s in series.items()}


# --- plots ------------------------------------------------------------------------------
def plot_thermal(series: dict[str, ThermalSeries], out_dir) -> list[Path]:
    """Write thermal_Dij.png (histograms of the six D_ij per temperature, Fig. 5 left),
    thermal_DE.png (D and E mean +- std against T, Fig. 5 right), thermal_correlation.png
    (D against d_ML and q, Fig. 4) and thermal_spread.png (D and its committee spread along
    the runs) into ``out_dir``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(series)
    colours = plt.cm.coolwarm(np.linspace(0, 1, max(len(keys), 2)))[:len(keys)]
    files = []

    fig, axes = plt.subplots(2, 3, figsize=(11, 6.5))
    for ax, (i, j), name in zip(axes.ravel(), COMPONENTS, COMPONENT_NAMES):
        allv = np.concatenate([s.tensors[:, i, j] for s in series.values()])
        bins = np.linspace(allv.min(), allv.max() + 1e-12, 41)
        for c, (key, s) in zip(colours, series.items()):
            ax.hist(s.tensors[:, i, j], bins=bins, density=True, histtype="step", color=c,
                    lw=1.4, label=f"{key} K")
        ax.set_xlabel(f"$D_{{{name}}}$ (cm$^{{-1}}$)")
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("thermal distribution of the D-tensor elements")
    fig.tight_layout()
    files.append(out / "thermal_Dij.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    T = np.array([s.temperature for s in series.values()])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, name in zip(axes, ("D", "E")):
        v = [getattr(s, name) for s in series.values()]
        ax.errorbar(T, [x.mean() for x in v], yerr=[x.std() for x in v], fmt="o-", capsize=4)
        ax.set_xlabel("T (K)")
        ax.set_ylabel(f"{name} (cm$^{{-1}}$), mean ± std")
    fig.tight_layout()
    files.append(out / "thermal_DE.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for c, (key, s) in zip(colours, series.items()):
        r = pearson_r(s.D, s.d_ML)
        axes[0].plot(s.d_ML, s.D, ".", ms=2, color=c,
                     label=f"{key} K, r = {r:.2f}" if r is not None else f"{key} K")
        if s.q is not None:
            r = pearson_r(s.D, s.q)
            axes[1].plot(s.q, s.D, ".", ms=2, color=c,
                         label=f"{key} K, r = {r:.2f}" if r is not None else f"{key} K")
    axes[0].set_xlabel(r"mean metal–donor distance $d_{ML}$ (Å)")
    axes[1].set_xlabel("tetrahedral order parameter q")
    for ax in axes:
        ax.set_ylabel("D (cm$^{-1}$)")
        if ax.lines:
            ax.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    files.append(out / "thermal_correlation.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for c, (key, s) in zip(colours, series.items()):
        for r in np.unique(s.run):
            m = s.run == r
            lab = f"{key} K" if r == 0 else None
            axes[0].plot(s.time_ps[m], s.D[m], lw=0.6, color=c, label=lab)
            if s.sigma_D is not None:
                axes[1].plot(s.time_ps[m], s.sigma_D[m], lw=0.6, color=c, label=lab)
    axes[0].set_ylabel("D (cm$^{-1}$)")
    axes[0].legend(fontsize=7)
    axes[1].set_ylabel("calibrated σ(D) (cm$^{-1}$)")
    if not any(s.sigma_D is not None for s in series.values()):
        axes[1].text(0.5, 0.5, "no committee spread in these runs (reference tensor)",
                     ha="center", va="center", transform=axes[1].transAxes)
    axes[1].set_xlabel("time (ps)")
    fig.tight_layout()
    files.append(out / "thermal_spread.png")
    fig.savefig(files[-1], dpi=120)
    plt.close(fig)
    return files


__all__ = ["COMPONENTS", "COMPONENT_NAMES", "ThermalSeries", "thermal_series",
           "thermal_summary", "summarize", "plot_thermal", "pearson_r", "block_sem",
           "zfs_series", "coordination_series"]
