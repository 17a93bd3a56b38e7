"""`molmag thermal` and `molmag spectra`: analysis of MD runs written by `molmag md` (thin
layers over molmag.dynamics.thermal and molmag.dynamics.spectra)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, err_console, print_json, to_json, user_errors


def _fmt(x, spec=".2f", none="-") -> str:
    return none if x is None else format(x, spec)


def _say_incomplete(trajs) -> None:
    """One line per run that did not run its full length: its frames up to the stop are
    analysed, and the user should know."""
    for t in trajs:
        why = t.incomplete
        if why:
            err_console.print(f"{t.path.name}: {len(t.times_fs)} frames, {why}; the analysis "
                              "uses the frames it has", highlight=False)


def thermal(
    trajectories: List[Path] = typer.Argument(..., help="MD runs: <stem>.extxyz (with its "
                                              "<stem>.json sidecar), the sidecar, or a "
                                              "folder of runs."),
    skip_ps: float = typer.Option(0.0, "--skip-ps", help="Equilibration discarded at the "
                                  "start of every run (ps)."),
    lab_frame: bool = typer.Option(False, "--lab-frame", help="Take the D_ij as stored "
                                   "(laboratory frame) instead of in the molecule's Eckart "
                                   "frame (the first frame's orientation)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for thermal.json and the "
                                       "PNGs (D_ij histograms, D/E against T, D against "
                                       "d_ML and q, D and its spread along the runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
):
    """Thermal averages of the D tensor per temperature (Zaverkin et al. 2022, Figs 4-5):
    mean +- std of the six D_ij, of D and E (cm-1), Pearson r of D with the mean metal-donor
    distance and the tetrahedral order parameter q, the calibrated committee spread of D.
    Independent runs at one temperature (the sidecar's temperature_K) are pooled."""
    from molmag.dynamics.thermal import plot_thermal, thermal_series, thermal_summary
    from molmag.dynamics.trajectory import read_trajectories

    with user_errors():
        if not (skip_ps >= 0):
            raise ValueError(f"--skip-ps {skip_ps}: must be >= 0")
        trajs = read_trajectories(trajectories)
        _say_incomplete(trajs)
        series = thermal_series(trajs, skip_ps, "lab" if lab_frame else "molecular")
        res = thermal_summary(trajs, skip_ps, series=series)
    files = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "thermal.json", *plot_thermal(series, out)]
        files[0].write_text(to_json(res) + "\n")
    if as_json:
        print_json(res)
        return
    t = Table(title=f"{trajs[0].formula}: thermal D and E (cm-1), mean ± std over the frames"
                    + (f" after {skip_ps:g} ps" if skip_ps else ""), title_justify="left")
    for c in ("T (K)", "runs", "frames", "<T_kin> (K)", "D", "E", "r(D, d_ML)", "r(D, q)",
              "<σ_D>", "<d_ML> (Å)", "<q>"):
        t.add_column(c, justify="right")
    for key, r in res.items():
        t.add_row(key, str(r["n_runs"]), str(r["n_frames"]), _fmt(r["T_kinetic_mean"], ".1f"),
                  f"{r['D_mean']:.2f} ± {r['D_std']:.2f}", f"{r['E_mean']:.2f} ± {r['E_std']:.2f}",
                  _fmt(r["r_D_dML"]), _fmt(r["r_D_q"]), _fmt(r["sigma_D_mean"], ".3f"),
                  _fmt(r["d_ML_mean"], ".3f"), _fmt(r["q_mean"], ".3f"))
    console.print(t)
    tc = Table(title="D_ij (cm-1), mean ± std, "
               + ("laboratory frame" if lab_frame else "in the molecular (Eckart) frame of "
                  f"{trajs[0].path.name}, frame 0"), title_justify="left")
    tc.add_column("T (K)", justify="right")
    from molmag.dynamics.thermal import COMPONENT_NAMES

    for n in COMPONENT_NAMES:
        tc.add_column(f"D_{n}", justify="right")
    for key, r in res.items():
        tc.add_row(key, *(f"{r['Dij_mean'][n]:.2f} ± {r['Dij_std'][n]:.2f}"
                          for n in COMPONENT_NAMES))
    console.print(tc)
    for f in files:
        console.print(f"wrote {f}", highlight=False)


def _harmonic(frequencies: Optional[Path], potential: Optional[str], trajs):
    """Harmonic wavenumbers (cm-1) from a vibrations JSON and/or computed with a potential on
    the first frame of the first run (relaxed first)."""
    import numpy as np

    from molmag.dynamics.spectra import harmonic_from_json

    if frequencies is None and potential is None:
        return None, None
    if frequencies is not None and potential is not None:
        raise ValueError("give --frequencies or --potential, not both")
    if frequencies is not None:
        return harmonic_from_json(frequencies), str(frequencies)
    from molmag.cli.relaxation import _calculator
    from molmag.dynamics.vibrations import vibrations

    assert potential is not None  # frequencies is None here, and not both are
    atoms = trajs[0].frame(0)
    calc = _calculator(potential, "potential", atoms)
    err_console.print(f"[dim]harmonic modes of {atoms.get_chemical_formula()} with "
                      f"{potential} (relaxing the first frame of {trajs[0].path.name}) ...[/]",
                      highlight=False)
    f = np.asarray(vibrations(atoms, calc, relax=True).frequencies_cm1)
    return f[f > 0], f"{potential} on {trajs[0].path.name} frame 0 (relaxed)"


def spectra(
    trajectories: List[Path] = typer.Argument(..., help="MD runs: <stem>.extxyz (with its "
                                              "<stem>.json sidecar), the sidecar, or a "
                                              "folder of runs."),
    skip_ps: float = typer.Option(0.0, "--skip-ps", help="Equilibration discarded at the "
                                  "start of every run (ps)."),
    max_lag_ps: Optional[float] = typer.Option(None, "--max-lag-ps", help="Longest lag of "
                                               "the correlation functions (ps; default half "
                                               "the shortest run)."),
    max_wavenumber: float = typer.Option(4000.0, "--max-wavenumber", help="Upper end of the "
                                         "spectra (cm-1; at most the Nyquist wavenumber)."),
    welch_segment_ps: Optional[float] = typer.Option(None, "--welch-segment-ps",
                                                     help="Welch segment length (ps; "
                                                     "default a quarter of the shortest "
                                                     "run)."),
    mesa_max_order: int = typer.Option(1500, "--mesa-max-order", help="Cap on the "
                                       "maximum-entropy (autoregressive) order."),
    frequencies: Optional[Path] = typer.Option(None, "--frequencies", help="Harmonic "
                                               "frequencies to draw: the JSON of molmag "
                                               "vibrations --json (or its vibrations.json)."),
    potential: Optional[str] = typer.Option(None, "--potential", help="Compute the harmonic "
                                            "frequencies instead: xtb or an energy model "
                                            "file, on the first frame (relaxed)."),
    lab_frame: bool = typer.Option(False, "--lab-frame", help="Take the D_ij as stored "
                                   "(laboratory frame) instead of in the molecule's Eckart "
                                   "frame (the first frame's orientation)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for spectra.json, "
                                       "spectra.npz and spectra.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """Velocity and D-tensor autocorrelation functions C_vv(t), C_DD(t) (Zaverkin et al. 2022,
    eq. 15: unbiased FFT estimates, each component normalised at t = 0, D_ij about its mean)
    averaged over the runs at each temperature, and their power spectra by maximum entropy
    (memspectrum) and Welch, with the harmonic wavenumbers of the potential (Fig. 6)."""
    import numpy as np

    from molmag.dynamics.spectra import spectra_analysis, write_spectra
    from molmag.dynamics.trajectory import read_trajectories

    with user_errors():
        if not (skip_ps >= 0):
            raise ValueError(f"--skip-ps {skip_ps}: must be >= 0")
        if frequencies is not None and not frequencies.is_file():
            raise FileNotFoundError(f"--frequencies {frequencies}: no such file")
        trajs = read_trajectories(trajectories)
        _say_incomplete(trajs)
        harmonic, source = _harmonic(frequencies, potential, trajs)
        results = spectra_analysis(trajs, skip_ps=skip_ps, max_lag_ps=max_lag_ps,
                                   max_wavenumber=max_wavenumber,
                                   welch_segment_ps=welch_segment_ps,
                                   mesa_max_order=mesa_max_order,
                                   frame="lab" if lab_frame else "molecular")
    res = {"formula": trajs[0].formula,
           "normalisation": "eq. 15: unbiased time-origin averages by zero-padded FFT, pooled "
                            "over runs; each velocity component and each D_ij - <D_ij> "
                            "normalised by its t = 0 value, then averaged; spectra: one-sided "
                            "PSD per cm-1 of the unit-variance components, averaged",
           "tensor_frame": "lab" if lab_frame else "molecular (Eckart frame of the first run's "
                                                   "first frame)",
           "temperatures": {k: r.summary() for k, r in results.items()},
           "harmonic_source": source,
           "harmonic_cm-1": None if harmonic is None else [round(float(x), 2) for x in harmonic]}
    if out is not None:
        files = write_spectra(results, out, harmonic)
        res["files"] = [str(out / "spectra.json"), *map(str, files)]
        (out / "spectra.json").write_text(to_json(res) + "\n")
    if as_json:
        print_json(res)
        return
    for key, r in res["temperatures"].items():
        console.print(f"[bold]{res['formula']} at {key} K[/]: {r['n_runs']} run(s), "
                      f"{sum(r['n_frames'])} frames {r['frame_interval_fs']:g} fs apart; "
                      f"lags to {r['max_lag_ps']:.3g} ps; Nyquist {r['nyquist_cm-1']:.0f} "
                      f"cm-1; Welch resolution {r['welch_resolution_cm-1']:.1f} cm-1; "
                      f"MESA order {r['mesa_order']['vv']['median']:.0f} (median)",
                      highlight=False)
        f = r["degrees_of_freedom"]
        console.print(f"  sum_i m_i <v_i.v_i> = {r['C_vv_mw_0_eV']:.4f} eV against f k_B T = "
                      f"{r['equipartition_fkT_eV']:.4f} eV (f = {f} degrees of freedom)",
                      highlight=False)
        for w in r["warnings"]:
            err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
        t = Table(title="spectral peaks (cm-1, highest first; relative height)",
                  title_justify="left")
        t.add_column("spectrum")
        t.add_column("peaks")
        for name, peaks in r["peaks"].items():
            t.add_row(name, "  ".join(f"{p['wavenumber_cm-1']:.0f} ({p['height']:.2f})"
                                      for p in peaks[:8]))
        console.print(t)
    if harmonic is not None:
        console.print(f"harmonic wavenumbers drawn: {len(harmonic)} modes, "
                      f"{np.min(harmonic):.0f}-{np.max(harmonic):.0f} cm-1 ({source})",
                      highlight=False)
    for f in res.get("files", []):
        console.print(f"wrote {f}", highlight=False)


__all__ = ["thermal", "spectra"]
