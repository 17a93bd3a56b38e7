"""Time correlation functions and power spectra of MD runs (Zaverkin et al., J. Chem. Theory
Comput. 2022, Sec. 4.2.3, eq. 15, Fig. 6).

Correlation functions (eq. 15), per target temperature, pooled over independent runs::

    C_vv(t) = 1/(3 N) sum_{i,a} <v_ia(0) v_ia(t)> / <v_ia(0) v_ia(0)>
    C_DD(t) = 1/6 sum_{i<=j} <dD_ij(0) dD_ij(t)> / <dD_ij(0) dD_ij(0)>

* ``<x(0) y(t)>`` is the unbiased time-origin average: for a run of n frames,
  ``S(k) = sum_{t=0}^{n-1-k} x_t x_{t+k}`` (by FFT, zero-padded to at least 2n - 1 points so
  that no circular wrap-around enters) divided by the n - k pairs; runs at one temperature
  are pooled by adding their sums and their pair counts, ``sum_r S_r(k) / sum_r (n_r - k)``.
* D_ij are taken in the molecule's Eckart frame (every frame's tensor turned by the rotation
  that aligns the frame onto the first frame, :mod:`molmag.physics.alignment`), so that the
  tumbling of the free molecule does not decorrelate them (``frame="lab"`` keeps the stored
  tensors); velocities stay in the laboratory frame, as in the paper.
* dD_ij = D_ij - <D_ij> is the fluctuation of the tensor element about its mean over all the
  frames of all runs at that temperature (the static tensor, ~100 cm-1, would otherwise keep
  C_DD near 1 for all t).  Velocities are used as they are (their equilibrium mean is zero).
* Each component is normalised by its own t = 0 value and the normalised functions are
  averaged with equal weights, exactly as in eq. 15.

Also returned: the mass-weighted velocity autocorrelation sum_i m_i <v_i(0) . v_i(t)> (eV),
whose t = 0 value is twice the mean kinetic energy, f k_B T by equipartition (f = 3 N, or
3 N - 3 when the runs keep the centre of mass fixed, detected from the stored momenta).

Power spectra, by the Wiener-Khinchin theorem S(nu) = FT[C(t)]: every component series (each
velocity component, each dD_ij) scaled to unit variance, its one-sided power spectral density
estimated (a) by maximum entropy (Burg's method, memspectrum as in the paper, order chosen
by the final prediction error, capped by ``mesa_max_order``) and (b) by Welch's averaged
periodogram (scipy.signal.welch, Hann windows, 50 % overlap), then averaged over the
components and runs (weights: frames per run).  Frequencies are wavenumbers
nu~ = f / c (cm-1); the densities are per cm-1 and integrate to 1 (the C(0) of eq. 15) over
0 .. Nyquist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units
from scipy import fft as sfft

from molmag.dynamics.trajectory import Trajectory, check_same_structure, group_by_temperature

#: Speed of light (cm/s) and the wavenumber of a frequency of 1 fs^-1 (cm-1).
C_CM_PER_S = 2.99792458e10
WAVENUMBER_PER_INV_FS = 1e15 / C_CM_PER_S
#: The six independent tensor elements (i <= j).
COMPONENTS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
#: Default cap on the maximum-entropy (autoregressive) order.
MESA_MAX_ORDER = 1500


# --- correlation functions --------------------------------------------------------------
def correlation_sums(x: np.ndarray, max_lag: int) -> np.ndarray:
    """``S[k, c] = sum_{t=0}^{n-1-k} x[t, c] x[t+k, c]`` for k = 0..max_lag of an (n, m) (or
    (n,)) array, by FFT zero-padded to at least 2n - 1 points (exact, no wrap-around)."""
    x = np.asarray(x, dtype=float)
    one = x.ndim == 1
    if one:
        x = x[:, None]
    n = x.shape[0]
    max_lag = int(min(max_lag, n - 1))
    nfft = sfft.next_fast_len(2 * n - 1, real=True)
    f = sfft.rfft(x, n=nfft, axis=0)
    s = sfft.irfft(f.real ** 2 + f.imag ** 2, n=nfft, axis=0)[:max_lag + 1]
    return s[:, 0] if one else s


def autocorrelation(x: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Unbiased autocorrelation ``<x(0) x(k)> = S(k) / (n - k)`` of each column of an (n, m)
    (or (n,)) array (no mean subtracted), for k = 0..max_lag (default n - 1)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    max_lag = n - 1 if max_lag is None else int(min(max_lag, n - 1))
    s = correlation_sums(x, max_lag)
    cnt = (n - np.arange(max_lag + 1)).astype(float)
    return s / (cnt if s.ndim == 1 else cnt[:, None])


def pooled_autocorrelation(series: list[np.ndarray], max_lag: int) -> np.ndarray:
    """Per-column unbiased autocorrelation pooled over independent runs:
    ``sum_r S_r(k) / sum_r (n_r - k)`` (runs shorter than a lag add no pairs to it)."""
    tot = None
    cnt = np.zeros(max_lag + 1)
    for x in series:
        x = np.asarray(x, dtype=float).reshape(len(x), -1)
        n = x.shape[0]
        s = np.zeros((max_lag + 1, x.shape[1]))
        k = min(max_lag, n - 1)
        s[:k + 1] = correlation_sums(x, k)
        cnt[:k + 1] += n - np.arange(k + 1)
        tot = s if tot is None else tot + s
    if np.any(cnt == 0):
        raise ValueError(f"lag {int(np.argmin(cnt))} is longer than every run")
    assert tot is not None  # there was a run (else cnt == 0 above)
    return tot / cnt[:, None]


def _active(sd: np.ndarray) -> np.ndarray:
    """Components that fluctuate: rms above 1e-6 x the largest (a component that is zero up
    to rounding, e.g. an off-diagonal D_ij of an axial tensor after a rotation by ~1, is
    left out rather than normalised into white noise)."""
    sd = np.asarray(sd, dtype=float)
    top = float(sd.max()) if sd.size else 0.0
    return sd > max(1e-6 * top, 1e-300)


def normalised_mean(acf: np.ndarray) -> np.ndarray:
    """Eq. 15's average of the per-component autocorrelations, each divided by its t = 0
    value (components with zero variance are left out)."""
    c0 = acf[0]
    ok = _active(np.sqrt(np.maximum(c0, 0.0)))
    if not np.any(ok):
        raise ValueError("every component is constant: no correlation function")
    return (acf[:, ok] / c0[ok]).mean(axis=1)


# --- spectra ----------------------------------------------------------------------------
def ar_spectrum(P: float, a_k: np.ndarray, dt_fs: float, f: np.ndarray) -> np.ndarray:
    """Two-sided spectrum ``dt P / |sum_k a_k exp(-2 pi i f k dt)|^2`` of an autoregressive
    model (a_0 = 1; the maximum-entropy spectrum, Burg 1975) at frequencies ``f`` (fs^-1),
    from a zero-padded FFT of a_k on a grid at least 4x finer than the spacing of ``f`` and
    linear interpolation.  (memspectrum's own ``spectrum`` interpolates from the data's
    coarser FFT grid, 1/(n dt).)"""
    f = np.asarray(f, dtype=float)
    a_k = np.asarray(a_k)
    step = float(np.min(np.diff(f))) if len(f) > 1 else 1.0 / (len(a_k) * dt_fs)
    nfft = sfft.next_fast_len(max(len(a_k), int(np.ceil(4.0 / (step * dt_fs)))))
    den = np.abs(sfft.fft(a_k, n=nfft)) ** 2
    grid = np.arange(nfft // 2 + 1) / (nfft * dt_fs)
    return dt_fs * float(np.real(P)) / np.interp(f, grid, den[:nfft // 2 + 1])


def mesa_psd(x: np.ndarray, dt_fs: float, wavenumbers: np.ndarray,
             max_order: int | None = MESA_MAX_ORDER) -> tuple[np.ndarray, int]:
    """One-sided maximum-entropy power spectral density (per cm-1) of a 1-D series at the
    given wavenumbers (cm-1), and the autoregressive order chosen (Burg's method with the
    final-prediction-error criterion, memspectrum; order at most ``max_order``).  The model's
    two-sided density (:func:`ar_spectrum`, per fs^-1) is doubled and converted to per cm-1."""
    from memspectrum import MESA

    x = np.asarray(x, dtype=float)
    n = len(x)
    m = int(2 * n / np.log(2 * n))
    if max_order is not None:
        m = min(m, int(max_order) + 1)
    m = max(2, min(m, n - 1))
    f = np.asarray(wavenumbers, dtype=float) / WAVENUMBER_PER_INV_FS  # fs^-1
    if not np.std(x) > 0:
        raise ValueError("a constant series has no spectrum")
    import warnings

    while True:
        # the "Fast" Burg recursion can lose stability on (nearly) noiseless lines: it then
        # overflows; retry with half the maximum order
        mesa = MESA()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            mesa.solve(x, m=m, optimisation_method="FPE", method="Fast", early_stop=True)
            s = ar_spectrum(mesa.P, mesa.a_k, dt_fs, f)
        if np.all(np.isfinite(s)) and np.all(np.isfinite(mesa.a_k)):
            break
        if m <= 4:
            raise ValueError("the maximum-entropy recursion is unstable on this series")
        m //= 2
    return 2.0 * s / WAVENUMBER_PER_INV_FS, len(mesa.a_k) - 1


def welch_psd(x: np.ndarray, dt_fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Welch power spectral density (per cm-1) of the columns of an (n, m) array:
    wavenumbers (cm-1) and densities (n_freq, m); Hann windows of ``nperseg`` frames, 50 %
    overlap, linear detrend off, mean removed."""
    from scipy.signal import welch

    fs = WAVENUMBER_PER_INV_FS / dt_fs  # sampling rate in cm-1
    wn, p = welch(np.asarray(x, dtype=float), fs=fs, nperseg=int(min(nperseg, len(x))),
                  axis=0, scaling="density", detrend="constant")
    return wn, p


def spectral_peaks(wavenumbers: np.ndarray, density: np.ndarray, n: int = 12,
                   prominence: float = 0.02) -> list[dict]:
    """The ``n`` highest local maxima (scipy.signal.find_peaks with a prominence of at least
    ``prominence`` x the maximum; the first point counts when it exceeds the second), highest
    first: wavenumber (cm-1) and height relative to
    the highest peak."""
    from scipy.signal import find_peaks

    d = np.asarray(density, dtype=float)
    top = float(d.max()) if d.size else 0.0
    if not top > 0:
        return []
    # a zero in front lets a maximum at the first wavenumber (power piled up at 0 cm-1, slow
    # fluctuations) count as a peak too
    idx, _ = find_peaks(np.concatenate([[0.0], d]), prominence=prominence * top)
    idx = idx - 1
    idx = idx[np.argsort(d[idx])[::-1]][:n]
    hmax = float(d[idx].max()) if idx.size else top
    return [{"wavenumber_cm-1": float(wavenumbers[i]), "height": float(d[i] / hmax)}
            for i in idx]


@dataclass
class SpectraResult:
    """Correlation functions and spectra of the runs at one temperature (see the module
    docstring for the definitions and normalisations)."""

    temperature: float
    paths: list[str]
    frame_interval_fs: float
    lag_ps: np.ndarray
    C_vv: np.ndarray
    C_vv_mw_eV: np.ndarray
    C_DD: np.ndarray | None
    wavenumbers: np.ndarray
    S_vv_mesa: np.ndarray
    S_DD_mesa: np.ndarray | None
    welch_wavenumbers: np.ndarray
    S_vv_welch: np.ndarray
    S_DD_welch: np.ndarray | None
    n_frames: list[int]
    n_atoms: int
    welch_segment: int
    mesa_orders: dict = field(default_factory=dict)
    dof: int = 0
    warnings: list = field(default_factory=list)

    @property
    def equipartition_eV(self) -> float:
        """f k_B T (eV), f = 3 N degrees of freedom (3 N - 3 when the centre of mass is fixed,
        as ``molmag md`` does): the value C_vv_mw(0) takes in a canonical ensemble at the target
        temperature."""
        return (self.dof or 3 * self.n_atoms) * units.kB * self.temperature

    def peaks(self) -> dict[str, list[dict]]:
        out = {"vv_mesa": spectral_peaks(self.wavenumbers, self.S_vv_mesa),
               "vv_welch": spectral_peaks(self.welch_wavenumbers, self.S_vv_welch)}
        if self.S_DD_mesa is not None:
            assert self.S_DD_welch is not None  # both or neither
            out["DD_mesa"] = spectral_peaks(self.wavenumbers, self.S_DD_mesa)
            out["DD_welch"] = spectral_peaks(self.welch_wavenumbers, self.S_DD_welch)
        return out

    def summary(self) -> dict:
        return {
            "temperature_K": self.temperature, "n_runs": len(self.paths), "runs": self.paths,
            "n_frames": self.n_frames, "frame_interval_fs": self.frame_interval_fs,
            "max_lag_ps": float(self.lag_ps[-1]),
            "nyquist_cm-1": float(WAVENUMBER_PER_INV_FS / (2 * self.frame_interval_fs)),
            "welch_segment_frames": self.welch_segment,
            "welch_resolution_cm-1": float(WAVENUMBER_PER_INV_FS
                                           / (self.welch_segment * self.frame_interval_fs)),
            "mesa_order": self.mesa_orders,
            "C_vv_mw_0_eV": float(self.C_vv_mw_eV[0]),
            "degrees_of_freedom": self.dof,
            "equipartition_fkT_eV": self.equipartition_eV,
            "peaks": self.peaks(),
            "warnings": self.warnings,
        }


def _mesa_mean(series: list[np.ndarray], sd: np.ndarray, dt: float, wn: np.ndarray,
               max_order) -> tuple[np.ndarray, dict]:
    acc = np.zeros_like(wn)
    wsum = 0.0
    orders = []
    for x in series:
        for c in np.flatnonzero(_active(sd)):
            s, p = mesa_psd(x[:, c] / sd[c], dt, wn, max_order)
            acc += len(x) * s
            wsum += len(x)
            orders.append(p)
    o = np.asarray(orders)
    return acc / wsum, {"min": int(o.min()), "median": float(np.median(o)),
                        "max": int(o.max())}


def _welch_mean(series: list[np.ndarray], sd: np.ndarray, dt: float, nperseg: int):
    acc, wsum, wn = None, 0.0, None
    ok = np.flatnonzero(_active(sd))
    for x in series:
        wn, p = welch_psd(x[:, ok] / sd[ok], dt, nperseg)
        acc = len(x) * p.mean(axis=1) if acc is None else acc + len(x) * p.mean(axis=1)
        wsum += len(x)
    assert acc is not None, "no runs"
    return wn, acc / wsum


def _group_spectra(runs: list[Trajectory], skip_ps: float, max_lag_ps: float | None,
                   max_wavenumber: float, welch_segment_ps: float | None,
                   mesa_max_order: int | None, spacing_cm1: float,
                   frame: str = "molecular") -> SpectraResult:
    dts = [t.frame_interval_fs for t in runs]
    dt = dts[0]
    for t, d in zip(runs[1:], dts[1:]):
        if abs(d - dt) > 1e-6 * dt:
            raise ValueError(f"{t.path}: frames {d:g} fs apart, but {runs[0].path}'s are "
                             f"{dt:g} fs apart; pool runs stored at the same interval")
    keeps = [t.after(skip_ps) for t in runs]
    v = [t.require("momenta")[k].reshape(len(k), -1) for t, k in zip(runs, keeps)]
    n_min = min(len(k) for k in keeps)
    if n_min < 16:
        raise ValueError(f"{runs[int(np.argmin([len(k) for k in keeps]))].path}: "
                         f"{n_min} frames after the equilibration cut; spectra need >= 16")
    max_lag = n_min // 2 if max_lag_ps is None else int(round(1000 * max_lag_ps / dt))
    if max_lag < 1:
        raise ValueError(f"max lag {max_lag_ps} ps is shorter than the frame interval "
                         f"({dt:g} fs)")
    max_lag = min(max_lag, max(len(k) for k in keeps) - 1)

    # velocities: per component (eq. 15) and mass-weighted (eV)
    acf_v = pooled_autocorrelation(v, max_lag)
    C_vv = normalised_mean(acf_v)
    m3 = np.repeat(runs[0].masses, 3)
    C_vv_mw = (acf_v * m3[None, :]).sum(axis=1) / units.fs ** 2

    # tensors: fluctuations about the pooled mean
    has_t = [t.tensors is not None for t in runs]
    dD = None
    if any(has_t):
        for t in runs:
            t.require("zfs_tensor")
        ref = runs[0].positions[0]
        tens = [t.molecular_frame_tensors(ref, k) if frame == "molecular"
                else t.require("zfs_tensor")[k]
                for t, k in zip(runs, keeps)]
        comp = [np.stack([x[:, i, j] for i, j in COMPONENTS], axis=1) for x in tens]
        mean = np.concatenate(comp).mean(axis=0)
        dD = [c - mean for c in comp]
    C_DD = normalised_mean(pooled_autocorrelation(dD, max_lag)) if dD is not None else None

    nyq = WAVENUMBER_PER_INV_FS / (2 * dt)
    wn = np.arange(0.0, min(max_wavenumber, nyq) + 1e-9, spacing_cm1)
    seg = (n_min // 4 if welch_segment_ps is None
           else int(round(1000 * welch_segment_ps / dt)))
    seg = int(max(8, min(seg, n_min)))
    sd_v = np.sqrt(acf_v[0])
    S_vv_mesa, ord_v = _mesa_mean(v, sd_v, dt, wn, mesa_max_order)
    wwn, S_vv_welch = _welch_mean(v, sd_v, dt, seg)
    orders = {"vv": ord_v}
    S_DD_mesa = S_DD_welch = None
    if dD is not None:
        sd_d = np.sqrt(np.concatenate(dD).var(axis=0))
        S_DD_mesa, orders["DD"] = _mesa_mean(dD, sd_d, dt, wn, mesa_max_order)
        _, S_DD_welch = _welch_mean(dD, sd_d, dt, seg)
    # degrees of freedom: 3N, or 3N - 3 when every frame has zero total momentum
    p_tot = [np.abs((x.reshape(len(x), -1, 3) * runs[0].masses[None, :, None]).sum(axis=1))
             for x in v]
    p_scale = max(float(np.sqrt(np.mean(acf_v[0] * m3 ** 2))), 1e-300)
    fixed_com = max(float(p.max()) for p in p_tot) < 1e-5 * p_scale * np.sqrt(len(m3))
    dof = len(m3) - 3 if fixed_com else len(m3)
    warns = []
    if nyq < 3300 and np.any(runs[0].numbers == 1):
        warns.append(f"frames {dt:g} fs apart: the Nyquist wavenumber {nyq:.0f} cm-1 is below "
                     "the X-H stretches (~2900-3500 cm-1), which fold back into the velocity "
                     "spectrum; store a frame every <= 5 fs for spectra")
    return SpectraResult(
        temperature=runs[0].temperature, paths=[str(t.path) for t in runs],
        frame_interval_fs=dt, lag_ps=np.arange(max_lag + 1) * dt / 1000.0, C_vv=C_vv,
        C_vv_mw_eV=C_vv_mw, C_DD=C_DD, wavenumbers=wn, S_vv_mesa=S_vv_mesa,
        S_DD_mesa=S_DD_mesa, welch_wavenumbers=wwn, S_vv_welch=S_vv_welch,
        S_DD_welch=S_DD_welch, n_frames=[len(k) for k in keeps], n_atoms=runs[0].n_atoms,
        welch_segment=seg, mesa_orders=orders, dof=dof, warnings=warns)


def spectra_analysis(trajectories: list[Trajectory], *, skip_ps: float = 0.0,
                     max_lag_ps: float | None = None, max_wavenumber: float = 4000.0,
                     welch_segment_ps: float | None = None,
                     mesa_max_order: int | None = MESA_MAX_ORDER,
                     spacing_cm1: float = 1.0,
                     frame: str = "molecular") -> dict[str, SpectraResult]:
    """C_vv, C_DD and their MESA and Welch spectra per temperature (keys ``f"{T:g}"``).

    ``skip_ps`` discards each run's start; ``max_lag_ps`` the longest lag of the correlation
    functions (default: half the shortest run); ``max_wavenumber`` and ``spacing_cm1`` the
    MESA grid (cm-1, up to the Nyquist wavenumber 1/(2 c dt)); ``welch_segment_ps`` the Welch
    segment (default: a quarter of the shortest run; resolution 1/(c x segment));
    ``mesa_max_order`` caps the autoregressive order; ``frame`` "molecular" (default) takes
    the D_ij in each run's Eckart frame (of its first run's first frame) so that the tumbling
    of the free molecule does not enter C_DD, "lab" as stored."""
    if frame not in ("molecular", "lab"):
        raise ValueError(f"frame {frame!r}: 'molecular' or 'lab'")
    check_same_structure(trajectories)
    for name, v in (("max wavenumber", max_wavenumber), ("spacing", spacing_cm1)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} {v}: must be > 0 cm-1")
    for name, ps in (("max lag", max_lag_ps), ("Welch segment", welch_segment_ps)):
        if ps is not None and not (np.isfinite(ps) and ps > 0):
            raise ValueError(f"{name} {ps}: must be > 0 ps")
    if mesa_max_order is not None and mesa_max_order < 1:
        raise ValueError(f"MESA order cap {mesa_max_order}: must be >= 1")
    return {key: _group_spectra(runs, skip_ps, max_lag_ps, max_wavenumber, welch_segment_ps,
                                mesa_max_order, spacing_cm1, frame)
            for key, runs in group_by_temperature(trajectories).items()}


# --- harmonic frequencies ---------------------------------------------------------------
def harmonic_from_json(path) -> np.ndarray:
    """The real harmonic wavenumbers (cm-1) of a ``molmag vibrations --json`` output (or its
    ``vibrations.json``); ValueError naming the file when it is not one."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such frequencies file")
    try:
        data = json.loads(path.read_text())
        modes = data["modes"]
        wn = np.array([float(m["wavenumber_cm-1"]) for m in modes
                       if not m.get("imaginary", False)])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}: not a JSON file (expected the output of molmag vibrations "
                         "--json)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a molmag vibrations JSON (no modes[].wavenumber_cm-1: "
                         f"{exc})") from None
    return wn[wn > 0]


# --- output -----------------------------------------------------------------------------
def write_spectra(results: dict[str, SpectraResult], out_dir,
                  harmonic_cm1: np.ndarray | None = None,
                  plot_lag_ps: float = 1.0) -> list[Path]:
    """spectra.png (left: C_vv and C_DD against the lag up to ``plot_lag_ps``; right: the MESA
    and Welch spectra with the harmonic wavenumbers as grey ticks, paper Fig. 6) and
    spectra.npz (arrays per temperature: ``T<T>_lag_ps``, ``_C_vv``, ``_C_vv_mw_eV``,
    ``_C_DD``, ``_wavenumbers``, ``_S_vv_mesa``, ``_S_DD_mesa``, ``_welch_wavenumbers``,
    ``_S_vv_welch``, ``_S_DD_welch``; ``harmonic_cm-1``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for key, r in results.items():
        for name in ("lag_ps", "C_vv", "C_vv_mw_eV", "C_DD", "wavenumbers", "S_vv_mesa",
                     "S_DD_mesa", "welch_wavenumbers", "S_vv_welch", "S_DD_welch"):
            val = getattr(r, name)
            if val is not None:
                arrays[f"T{key}_{name}"] = val
    if harmonic_cm1 is not None:
        arrays["harmonic_cm-1"] = np.asarray(harmonic_cm1, dtype=float)
    npz = out / "spectra.npz"
    np.savez(npz, **arrays)

    n = len(results)
    fig, axes = plt.subplots(n, 2, figsize=(11, 3.6 * n), squeeze=False)
    for row, (key, r) in zip(axes, results.items()):
        ax = row[0]
        m = r.lag_ps <= plot_lag_ps
        ax.plot(r.lag_ps[m], r.C_vv[m], lw=1, label=r"$C_{vv}(t)$")
        if r.C_DD is not None:
            ax.plot(r.lag_ps[m], r.C_DD[m], lw=1, label=r"$C_{DD}(t)$")
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_xlabel("t (ps)")
        ax.set_ylabel("normalised ACF (eq. 15)")
        ax.set_title(f"{key} K, {len(r.paths)} run(s)", fontsize=9)
        ax.legend(fontsize=8)
        ax = row[1]
        top = max(r.S_vv_mesa.max(), r.S_vv_welch.max())
        ax.plot(r.wavenumbers, r.S_vv_mesa / top, lw=1, color="C0", label=r"$S[C_{vv}]$ MESA")
        ax.plot(r.welch_wavenumbers, r.S_vv_welch / top, lw=0.8, color="C0", alpha=0.45,
                label="Welch")
        if r.S_DD_mesa is not None:
            assert r.S_DD_welch is not None  # both or neither
            topd = max(r.S_DD_mesa.max(), r.S_DD_welch.max())
            ax.plot(r.wavenumbers, r.S_DD_mesa / topd - 1.1, lw=1, color="C1",
                    label=r"$S[C_{DD}]$ MESA (shifted)")
            ax.plot(r.welch_wavenumbers, r.S_DD_welch / topd - 1.1, lw=0.8, color="C1",
                    alpha=0.45, label="Welch")
        lo = -1.15 if r.S_DD_mesa is not None else -0.05
        if harmonic_cm1 is not None and len(harmonic_cm1):
            ax.vlines(harmonic_cm1, lo - 0.12, lo - 0.02, color="0.4", lw=0.8,
                      label="harmonic")
        ax.set_xlim(0, r.wavenumbers[-1])
        ax.set_xlabel("wavenumber (cm$^{-1}$)")
        ax.set_ylabel("power spectral density (scaled)")
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    png = out / "spectra.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png, npz]


__all__ = ["correlation_sums", "autocorrelation", "pooled_autocorrelation", "normalised_mean",
           "mesa_psd", "ar_spectrum", "welch_psd", "spectral_peaks", "SpectraResult",
           "spectra_analysis", "harmonic_from_json", "write_spectra", "WAVENUMBER_PER_INV_FS"]
