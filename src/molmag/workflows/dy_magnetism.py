"""The dy-ligands campaign's magnetism stage: relaxation time tau(T), U_eff, chi*T(T) and M(H)
of the best generated Dy(H2O)5L2 complex (issue 20, item 5).

The complex with the largest Delta E01 among the repopulation's labelled ligands that pass the
valence sanity filter (the labelled subset's best when the repopulation labelled none) is taken
from ``complexes.db`` (its xTB-relaxed geometry), relaxed further with GFN2-xTB (4f in core,
saddle points followed down; :func:`molmag.dynamics.vibrations.vibrations`), its normal modes
and crystal-field spin-phonon couplings computed
(:mod:`molmag.dynamics.cf_spin_phonon`), and from them the one-phonon tau(T) in a 0.1 T field
along the easy axis (Gaussian lines of 10 cm-1) with its Arrhenius fit; chi*T(T) and M(H) come
from the crystal field at the reference geometry (:mod:`molmag.physics.magnetism`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from molmag.workflows.report import plot_chi_t_and_mh
from molmag.workflows.stages import Context

#: temperatures (K) of tau(T) and the fitted (warmest) third; chi*T grid; M(H) fields
TAU_TEMPERATURES = (2.0, 100.0, 50)
FIELD_T = 0.1
LINEWIDTH_CM1 = 10.0


def best_generated(ctx: Context) -> tuple[str, str] | None:
    """(ligand, source) of the complex to study: the best sane repopulation ligand by Delta
    E01, else the best of the labelled subset; None when nothing is labelled."""
    from molmag.chem.valence import valence_problems
    from molmag.generative.labels import gap_table

    gaps = gap_table(ctx.out / "complexes.db")
    path = ctx.out / "repopulation.json"
    chosen = json.loads(path.read_text())["chosen"] if path.exists() else []
    gen = [g for g in chosen if g in gaps and not valence_problems(g)]
    if gen:
        return max(gen, key=lambda g: gaps[g]["dE01"]), "generated"
    if gaps:
        return max(gaps, key=lambda g: gaps[g]["dE01"]), "labelled subset"
    return None


def _structure(ctx: Context, ligand: str):
    from molmag.generative.labels import _records

    for rec in _records(ctx.out / "complexes.db"):
        if rec.tags.get("ligand") == ligand and rec.tags.get("builder") == "dy-h2o5l2":
            a = rec.atoms.copy()
            a.info.update({"charge": int(rec.charge), "multiplicity": int(rec.multiplicity),
                           "metal_index": int(rec.metal_index or 0)})
            return a
    raise ValueError(f"complexes.db: no Dy(H2O)5L2 record of ligand {ligand!r}")


def stage_magnetism(ctx: Context) -> dict:
    """tau(T), U_eff, chi*T(T) and M(H) of the best generated complex (module docstring)."""
    from molmag.chem.xtb import XTBCalculator
    from molmag.dynamics.cf_spin_phonon import cf_couplings, cf_relaxation_times, cf_system
    from molmag.dynamics.spin_phonon import real_modes
    from molmag.dynamics.vibrations import vibrations
    from molmag.generative.labels import gap_table
    from molmag.physics.crystal_field import CrystalFieldCalculator
    from molmag.physics.magnetism import magnetisation, powder_chi_t
    from molmag.physics.relaxation import fit_arrhenius

    pick = best_generated(ctx)
    if pick is None:
        return {"skipped": "no labelled complex"}
    ligand, source = pick
    atoms = _structure(ctx, ligand)
    ctx.log(f"normal modes, crystal-field couplings and tau(T) of Dy(H2O)5L2 with {ligand} "
            f"({source}, {len(atoms)} atoms)")
    modes = vibrations(atoms, XTBCalculator(), relax=True)
    n_imag = int(np.sum(modes.frequencies_cm1 <= 0))
    modes = real_modes(modes)
    coup = cf_couplings(modes, CrystalFieldCalculator())
    t0, t1, n = TAU_TEMPERATURES
    temps = np.linspace(t0, t1, n)
    tau, info = cf_relaxation_times(coup, temps, field_T=FIELD_T, linewidth=LINEWIDTH_CM1)
    third = max(2, len(temps) // 3)
    arr = fit_arrhenius(temps[-third:], tau[-third:])
    system, _ = cf_system(coup)
    chi_t = np.linspace(2.0, 300.0, 60)
    chi = powder_chi_t(system, chi_t)
    fields = np.linspace(0.0, 7.0, 15)
    mh = {t: magnetisation(system, fields, t) for t in (2.0, 5.0)}
    top = coup.strongest(5)
    out: dict[str, Any] = {
        "ligand": ligand, "source": source,
        "dE01_labelled": gap_table(ctx.out / "complexes.db")[ligand]["dE01"],
        "kd_energies_cm-1": coup.kd0.tolist(), "gap_cm-1": info["gap"],
        "U_eff_cm-1": arr["U_eff"], "tau0_s": arr["tau0"], "n_modes": modes.n_modes,
        "n_imaginary_excluded": n_imag,
        "saddle_escapes": int(modes.atoms.info.get("saddle_escapes", 0)),
        "tau": [[float(t), float(x)] for t, x in zip(temps, tau)],
        "strongest": [{"wavenumber_cm-1": float(coup.frequencies_cm1[k]),
                       "coupling_cm-1": float(coup.norms[k]),
                       "dE01_per_zero_point_cm-1": float(coup.kd_per_zero_point[k][1])}
                      for k in top],
        "chi_T": [[float(t), float(c)] for t, c in zip(chi_t, chi)],
        "chi_T_300K": float(chi[-1]),
        "magnetisation": {f"{t:g}": [[float(h), float(m)] for h, m in zip(fields, v)]
                          for t, v in mh.items()},
        "field_T": FIELD_T, "linewidth_cm-1": LINEWIDTH_CM1}
    out["files"] = _plots(ctx.out, out, temps, tau, chi_t, chi, fields, mh)
    return out


def _plots(root: Path, out: dict, temps, tau, chi_t, chi, fields, mh) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from molmag.physics.magnetism import K_B_CM

    folder = root / "magnetism"
    folder.mkdir(exist_ok=True)
    np.savetxt(folder / "tau.csv", np.column_stack([temps, tau]), delimiter=",",
               header="T/K,tau/s", comments="")
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    ax[0].semilogy(1 / temps, tau, "o", ms=3, label=f"one-phonon τ, U_eff "
                   f"{out['U_eff_cm-1']:.0f} cm⁻¹ (ΔE01 {out['gap_cm-1']:.0f})")
    fit = temps[-max(2, len(temps) // 3):]
    ax[0].semilogy(1 / fit, out["tau0_s"] * np.exp(out["U_eff_cm-1"] / (K_B_CM * fit)), "--",
                   lw=0.8)
    ax[0].set_xlabel("1/T (K⁻¹)")
    ax[0].set_ylabel("τ (s)")
    ax[0].legend(fontsize=7)
    plot_chi_t_and_mh(ax[1], ax[2], chi_t, chi, fields, mh)
    fig.suptitle(f"Dy(H2O)5L2, L = {out['ligand']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "magnetism.png", dpi=110)
    plt.close(fig)
    return ["magnetism/tau.csv", "magnetism/magnetism.png"]


def report_section(rep, ctx: Context) -> None:
    """The report's magnetism section (nothing when the stage did not run)."""
    m = ctx.results.get("magnetism") or {}
    if not m or "skipped" in m:
        return
    rep.heading("Magnetism of the best complex")
    rep.text(f"Dy(H2O)5L2 with L = `{m['ligand']}` ({m['source']}; labelled ΔE01 "
             f"{m['dE01_labelled']:.0f} cm⁻¹), relaxed again with GFN2-xTB and its "
             f"{m['n_modes']} normal modes taken ({m['n_imaginary_excluded']} imaginary left "
             f"out); crystal-field spin-phonon couplings by finite differences; one-phonon "
             f"(direct, Orbach) τ(T) in {m['field_T']:g} T along the easy axis, lines "
             f"{m['linewidth_cm-1']:g} cm⁻¹. **U_eff = {m['U_eff_cm-1']:.0f} cm⁻¹** "
             f"(Arrhenius, warmest third; τ₀ = {m['tau0_s']:.2e} s) against ΔE01 = "
             f"{m['gap_cm-1']:.0f} cm⁻¹ at this geometry; χT(300 K) = {m['chi_T_300K']:.2f} "
             "cm³ K mol⁻¹ (free Dy³⁺: 14.17). Quantum tunnelling and Raman processes are not "
             "included, so the low-temperature τ is the in-field direct process only.")
    rep.table(["mode (cm⁻¹)", "|V| (cm⁻¹)", "dΔE01/dQ·Q_zp (cm⁻¹)"],
              [[f"{r['wavenumber_cm-1']:.1f}", f"{r['coupling_cm-1']:.2f}",
                f"{r['dE01_per_zero_point_cm-1']:+.2f}"] for r in m["strongest"]],
              caption="the five strongest spin-phonon couplings")
    rep.figure(ctx.out / "magnetism" / "magnetism.png", "τ(T) with its Arrhenius fit, powder "
               "χT(T) and M(H) at 2 and 5 K")


__all__ = ["stage_magnetism", "best_generated", "report_section"]
