"""`molmag relaxation`: normal modes, ZFS spin-phonon couplings and tau(T) of a 3d complex (a
thin layer over molmag.dynamics.spin_phonon and molmag.physics.relaxation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, err_console, print_json, read_frames, user_errors


def _calculator(spec: str | None, what: str, atoms):
    """The potential (``xtb`` or an energy model) or the spin-Hamiltonian source: for a 3d
    complex ``lf`` or a D-tensor model, for a lanthanide complex ``cf`` (molmag's
    crystal-field engine) or a crystal-field model; ``None`` picks the engine."""
    if what == "potential":
        if spec == "xtb":
            from molmag.chem.xtb import XTBCalculator

            return XTBCalculator()
        need = "energy"
    else:
        from molmag.dynamics.cf_spin_phonon import is_lanthanide_complex

        lanthanide = is_lanthanide_complex(atoms)
        engine = "cf" if lanthanide else "lf"
        spec = engine if spec is None else spec
        if spec in ("lf", "cf") and spec != engine:
            raise ValueError(f"--tensor {spec}: {atoms.get_chemical_formula()} is "
                             f"{'a lanthanide' if lanthanide else 'a 3d'} complex; use "
                             f"--tensor {engine} or a "
                             f"{'crystal-field' if lanthanide else 'D-tensor'} model")
        if spec == "lf":
            from molmag.physics.ligand_field import LigandFieldCalculator

            return LigandFieldCalculator(charge=atoms.info.get("charge"),
                                         multiplicity=atoms.info.get("multiplicity"))
        if spec == "cf":
            from molmag.physics.crystal_field import CrystalFieldCalculator

            return CrystalFieldCalculator()
        need = "cf_parameters" if lanthanide else "zfs_tensor"
    path = Path(str(spec))
    if spec is None or not path.is_file():
        raise ValueError(f"--{what} {spec!r}: neither "
                         f"{'xtb' if what == 'potential' else 'lf, cf'} nor a model file")
    from molmag.models.calculator import ModelCalculator

    calc = ModelCalculator(path)
    if calc.model.target != need:
        raise ValueError(f"--{what} {spec}: a {calc.model.target} model, not a {need} model")
    return calc


def _couplings(modes, ten, order: int, raman_max: float):
    """First-order (and for ``order`` 2 second-order) couplings: ZFS for a 3d complex,
    crystal field for a lanthanide one."""
    from molmag.dynamics.cf_spin_phonon import (
        CFCouplings,
        add_cf_second_order,
        cf_couplings,
        is_lanthanide_complex,
    )
    from molmag.dynamics.spin_phonon import add_second_order, zfs_couplings

    if order not in (1, 2):
        raise ValueError(f"--order {order}: 1 (first-order couplings, one-phonon rates) or 2 "
                         "(also second-order couplings, two-phonon rates)")
    lanthanide = is_lanthanide_complex(modes.atoms)
    err_console.print(f"[dim]{'crystal-field' if lanthanide else 'ZFS'} couplings of "
                      f"{modes.n_modes} modes ...[/]", highlight=False)
    first = cf_couplings(modes, ten) if lanthanide else zfs_couplings(modes, ten)
    if order == 1:
        return first
    n2 = int(np.sum(modes.frequencies_cm1 <= raman_max))
    err_console.print(f"[dim]second-order couplings of {n2} modes below {raman_max:g} "
                      f"cm-1 ({2 * n2 * n2} evaluations) ...[/]", highlight=False)
    if isinstance(first, CFCouplings):
        return add_cf_second_order(first, modes, ten, max_wavenumber=raman_max)
    return add_second_order(first, modes, ten, max_wavenumber=raman_max)


def _second_rows(coup, top: int) -> dict | None:
    """The strongest second-order couplings (pairs of modes) and the whole array, JSON-ready."""
    if coup.second is None:
        return None
    from molmag.dynamics.cf_spin_phonon import CFCouplings

    idx = np.asarray(coup.second_modes, int)
    if isinstance(coup, CFCouplings):
        full = coup.second_operators()[np.ix_(idx, idx)]
        norms = np.linalg.norm(full, axis=(-2, -1)) / np.sqrt(full.shape[-1])
        q = coup.zero_point[idx]
        per = coup.second * (q[:, None] * q[None, :])[..., None]
        key = "d2B_per_zero_point"
    else:
        per = coup.second_per_zero_point()[np.ix_(idx, idx)]
        norms = np.linalg.norm(per, axis=(-2, -1))
        key = "d2D_per_zero_point"
    iu = np.triu_indices(len(idx))
    order = np.argsort(-norms[iu])[:top]
    pairs = [{"modes": [int(idx[iu[0][k]]), int(idx[iu[1][k]])],
              "wavenumbers_cm-1": [float(coup.frequencies_cm1[idx[iu[0][k]]]),
                                   float(coup.frequencies_cm1[idx[iu[1][k]]])],
              "coupling_cm-1": float(norms[iu][k])} for k in order]
    return {"modes": idx.tolist(), "strongest_pairs": pairs, key: per.tolist()}


def one_structure(structure: Path, charge=None, multiplicity=None):
    """The single structure of a file (validated by read_frames), with the given charge and
    multiplicity written into its info."""
    frames = read_frames(structure, ":", charge=charge, multiplicity=multiplicity)
    if len(frames) != 1:
        raise ValueError(f"{structure}: {len(frames)} frames; give a file with one")
    atoms = frames[0]
    for key, v in (("charge", charge), ("multiplicity", multiplicity)):
        if v is not None:
            atoms.info[key] = v
    return atoms


def _real(modes, structure: Path, exclude_imaginary: bool):
    """The real modes; imaginary ones are refused (naming them) unless excluded on request."""
    from molmag.dynamics.spin_phonon import real_modes

    imag = modes.frequencies_cm1[modes.frequencies_cm1 <= 0]
    if imag.size and not exclude_imaginary:
        raise ValueError(f"{structure}: {imag.size} imaginary mode(s) "
                         f"({', '.join(f'{abs(f):.1f}i' for f in imag)} cm-1); relax the "
                         "structure or give --exclude-imaginary")
    return real_modes(modes), int(imag.size)


def vibrations_cmd(
    structure: Path = typer.Argument(..., help="Structure (xyz/extxyz/...)."),
    calculator: str = typer.Option("xtb", "--calculator", help="xtb or an energy model file."),
    charge: Optional[int] = typer.Option(None, "--charge", help="Total charge (default: the "
                                         "file's)."),
    multiplicity: Optional[int] = typer.Option(None, "--multiplicity",
                                               help="2S+1 (default: the file's)."),
    relax: bool = typer.Option(True, "--relax/--no-relax", help="Relax first (fmax 0.005 "
                               "eV/Å)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for modes.extxyz and "
                                       "vibrations.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the modes as JSON."),
):
    """Normal modes and wavenumbers (cm-1; imaginary ones negative and flagged): the
    mass-weighted Hessian by central differences of the forces, translations and rotations
    projected out; the modes as an extxyz trajectory to animate."""
    from molmag.dynamics.vibrations import modes_table, vibrations, write_modes

    with user_errors():
        atoms = one_structure(structure, charge, multiplicity)
        modes = vibrations(atoms, _calculator(calculator, "potential", atoms), relax=relax)
    rows = modes_table(modes)
    res = {"structure": str(structure), "formula": modes.atoms.get_chemical_formula(),
           "n_modes": modes.n_modes, "n_imaginary": int(sum(r["imaginary"] for r in rows)),
           "modes": rows, "calculator": calculator}
    if out is not None:
        import json

        out.mkdir(parents=True, exist_ok=True)
        res["files"] = [str(write_modes(out / "modes.extxyz", modes)),
                        str(out / "vibrations.json")]
        (out / "vibrations.json").write_text(json.dumps(res, indent=1))
    if as_json:
        print_json(res)
        return
    f = modes.frequencies_cm1
    console.print(f"[bold]{res['formula']}[/]: {modes.n_modes} modes, {res['n_imaginary']} "
                  "imaginary; wavenumbers in cm-1 (imaginary as 'i'):", highlight=False)
    console.print(" ".join(f"{abs(x):.1f}{'i' if x < 0 else ''}" for x in f), highlight=False)
    for p in res.get("files", []):
        console.print(f"wrote {p}", highlight=False)


def _mode_rows(coup) -> list[dict]:
    """Per mode: wavenumber, zero-point amplitude, coupling size and the derivatives (dD/dQ
    for a ZFS tensor; dB/dQ and dE_KD/dQ for a crystal field)."""
    from molmag.dynamics.cf_spin_phonon import CFCouplings

    rows = []
    for k in range(len(coup.frequencies_cm1)):
        row = {"mode": k, "wavenumber_cm-1": float(coup.frequencies_cm1[k]),
               "zero_point_amplitude": float(coup.zero_point[k]),
               "coupling_cm-1": float(coup.norms[k])}
        if isinstance(coup, CFCouplings):
            row.update({"dB_dQ": coup.db_dq[k].tolist(),
                        "dB_per_zero_point": coup.per_zero_point[k].tolist(),
                        "dKD_per_zero_point": coup.kd_per_zero_point[k].tolist()})
        else:
            row.update({"dD_dQ": coup.d_dq[k].tolist(),
                        "dD_per_zero_point": coup.per_zero_point[k].tolist()})
        rows.append(row)
    return rows


def _reference(coup) -> dict:
    """The spin Hamiltonian at the reference: D tensor, D and E (3d) or the Stevens B_k^q and
    Kramers-doublet energies (lanthanide), cm-1."""
    from molmag.dynamics.cf_spin_phonon import CFCouplings

    if isinstance(coup, CFCouplings):
        from molmag.physics.ase_properties import CF_PARAMETER_KEYS

        return {"ion": coup.ion, "B_kq_cm-1": dict(zip(CF_PARAMETER_KEYS, coup.b0.tolist())),
                "kd_energies_cm-1": coup.kd0.tolist()}
    from molmag.physics.zfs import zfs_from_tensor

    z = zfs_from_tensor(coup.d0)
    return {"D_tensor_cm-1": coup.d0.tolist(), "D_cm-1": z.D, "E_cm-1": z.E}


def spin_phonon_cmd(
    structure: Path = typer.Argument(..., help="Structure of the complex (xyz/extxyz/...)."),
    potential: str = typer.Option("xtb", "--potential", help="xtb or an energy model file."),
    tensor: Optional[str] = typer.Option(None, "--tensor", help="lf (3d ions) or cf "
                                         "(lanthanides): molmag's engines, the default; or a "
                                         "D-tensor / crystal-field model file."),
    charge: Optional[int] = typer.Option(None, "--charge", help="Total charge."),
    multiplicity: Optional[int] = typer.Option(None, "--multiplicity", help="2S+1."),
    relax: bool = typer.Option(True, "--relax/--no-relax", help="Relax first (fmax 0.005)."),
    exclude_imaginary: bool = typer.Option(False, "--exclude-imaginary",
                                           help="Leave imaginary modes out."),
    order: int = typer.Option(1, "--order", help="1: first-order couplings; 2: also the "
                              "second-order ones of the modes below --raman-max."),
    raman_max: float = typer.Option(300.0, "--raman-max", help="--order 2: modes below this "
                                    "wavenumber (cm-1)."),
    top: int = typer.Option(10, "--top", help="Modes listed in the table (JSON: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print every mode's coupling as JSON."),
):
    """Spin-phonon couplings along every normal mode, by central differences of the tensor
    calculator: for a 3d complex dD/dQ (cm-1 per Å sqrt(amu)) and per zero-point amplitude
    sqrt(hbar / 2 omega) (cm-1); for a lanthanide complex the crystal-field parameters dB_k^q/dQ
    and the Kramers-doublet energies dE_KD/dQ, the coupling size being the RMS of the operator
    sum_kq dB_k^q O_k^q.  --order 2 adds the second-order couplings of pairs of modes."""
    from molmag.dynamics.vibrations import vibrations

    with user_errors():
        atoms = one_structure(structure, charge, multiplicity)
        ten = _calculator(tensor, "tensor", atoms)
        modes = vibrations(atoms, _calculator(potential, "potential", atoms), relax=relax)
        modes, n_imag = _real(modes, structure, exclude_imaginary)
        coup = _couplings(modes, ten, order, raman_max)
    rows = _mode_rows(coup)
    res = {"structure": str(structure), "formula": modes.atoms.get_chemical_formula(),
           **_reference(coup), "n_modes": len(rows), "excluded_imaginary": n_imag,
           "units": {"dD_dQ | dB_dQ": "cm-1 / (Angstrom sqrt(amu))",
                     "dD_per_zero_point | dB_per_zero_point | dKD_per_zero_point": "cm-1",
                     "zero_point_amplitude": "Angstrom sqrt(amu)"},
           "strongest": coup.strongest(top), "modes": rows,
           "second_order": _second_rows(coup, top)}
    if as_json:
        print_json(res)
        return
    lanthanide = "ion" in res
    t = Table(title=f"{res['formula']}: the {min(top, len(rows))} strongest of {len(rows)} "
                    "modes", title_justify="left")
    cols = ("mode", "wavenumber (cm-1)") + (
        ("|V| (cm-1, RMS of sum dB O)", "dE01/dQ Q_zp (cm-1)") if lanthanide
        else ("|dD/dQ| Q_zp (cm-1)", "dD_zz/dQ Q_zp (cm-1)"))
    for c in cols:
        t.add_column(c, justify="right")
    for k in coup.strongest(top):
        last = (rows[k]["dKD_per_zero_point"][1] if lanthanide
                else rows[k]["dD_per_zero_point"][2][2])
        t.add_row(str(k), f"{coup.frequencies_cm1[k]:.1f}", f"{coup.norms[k]:.3f}",
                  f"{last:+.3f}")
    console.print(t)
    console.print(f"sum over modes of {'|V|' if lanthanide else '|dD/dQ| Q_zp'}: "
                  f"{coup.norms.sum():.2f} cm-1", highlight=False)
    sec = res["second_order"]
    if sec:
        console.print(f"second order ({len(sec['modes'])} modes below {raman_max:g} cm-1), "
                      "strongest pairs: " + ", ".join(
                          f"{a}x{b} {p['coupling_cm-1']:.3f}" for p in sec["strongest_pairs"][:5]
                          for a, b in [p["modes"]]) + " cm-1", highlight=False)


def relaxation(
    structure: Path = typer.Argument(..., help="Structure of the complex (xyz/extxyz/...)."),
    potential: str = typer.Option("xtb", "--potential", help="xtb or an energy model file "
                                  "(the vibrations)."),
    tensor: Optional[str] = typer.Option(None, "--tensor", help="The spin Hamiltonian and "
                                         "couplings: lf (molmag's ligand-field engine, 3d "
                                         "ions) or cf (its crystal-field engine, lanthanides), "
                                         "the default by the metal; or a D-tensor / "
                                         "crystal-field model file."),
    charge: Optional[int] = typer.Option(None, "--charge", help="Total charge (default: the "
                                         "file's)."),
    multiplicity: Optional[int] = typer.Option(None, "--multiplicity",
                                               help="2S+1 (default: the file's)."),
    relax: bool = typer.Option(True, "--relax/--no-relax", help="Relax with the potential "
                               "first (fmax 0.005 eV/Å): normal modes need a minimum."),
    exclude_imaginary: bool = typer.Option(False, "--exclude-imaginary",
                                           help="Leave imaginary modes out instead of "
                                           "refusing."),
    temperatures: str = typer.Option("2:100:50", "--temperatures",
                                     help="Temperatures (K): start:stop:n or a list."),
    field: float = typer.Option(0.1, "--field", help="Field (T) along the easy axis; lifts "
                                "the Kramers degeneracy."),
    linewidth: float = typer.Option(10.0, "--linewidth", help="FWHM of the phonon lines "
                                    "(cm-1)."),
    order: int = typer.Option(1, "--order", help="1: one-phonon (direct, Orbach); 2: also "
                              "two-phonon (Raman) processes."),
    raman_max: float = typer.Option(300.0, "--raman-max", help="--order 2: second-order "
                                    "couplings of the modes below this wavenumber (cm-1)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for tau.csv, modes.extxyz, "
                                       "relaxation.png and relaxation.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """Magnetic relaxation time tau(T) from one-phonon (direct and Orbach) processes and,
    with --order 2, two-phonon (Raman) processes.

    Normal modes of STRUCTURE with the potential, first-order couplings of every mode by
    central differences with the tensor calculator, and the spin Hamiltonian: for a 3d complex
    S.D.S + mu_B B.g.S (g = 2), for a lanthanide complex the ground-J crystal-field
    Hamiltonian sum B_k^q O_k^q + mu_B B.g_J J; rates by the golden rule with Bose-Einstein
    occupations and Gaussian lines, tau as the slowest rate of the master equation; Arrhenius
    fit (U_eff, tau_0) of the warmest third and power-law fit (C, n) of the coldest third of
    the temperatures. --order 2 adds the Raman rates: pairs of first-order couplings through
    virtual states and the second-order couplings of the modes below --raman-max (Lunghi,
    Sci. Adv. 2022)."""
    from molmag.dynamics.cf_spin_phonon import CFCouplings, cf_relaxation_times
    from molmag.dynamics.spin_phonon import relaxation_times, spin_of
    from molmag.dynamics.vibrations import vibrations
    from molmag.physics.magnetism import temperature_grid
    from molmag.physics.relaxation import fit_arrhenius, fit_power_law

    with user_errors():
        atoms = one_structure(structure, charge, multiplicity)
        temps = temperature_grid(temperatures)
        if not (np.isfinite(linewidth) and linewidth > 0):
            raise ValueError(f"--linewidth {linewidth}: must be a positive number of cm-1")
        if not (np.isfinite(field) and field > 0):
            raise ValueError(f"--field {field}: must be > 0 T (it lifts the Kramers "
                             "degeneracy)")
        if order not in (1, 2):
            raise ValueError(f"--order {order}: 1 (one-phonon) or 2 (one- and two-phonon)")
        ten = _calculator(tensor, "tensor", atoms)
        spin = None if _is_lanthanide(atoms) else spin_of(atoms)
        pot = _calculator(potential, "potential", atoms)
        err_console.print(f"[dim]normal modes of {atoms.get_chemical_formula()} "
                          f"({6 * len(atoms) + 1} force calls) ...[/]", highlight=False)
        modes = vibrations(atoms, pot, relax=relax)
        modes, n_imag = _real(modes, structure, exclude_imaginary)
        coup = _couplings(modes, ten, order, raman_max)
        if isinstance(coup, CFCouplings):
            tau, info = cf_relaxation_times(coup, temps, field_T=field, linewidth=linewidth,
                                            order=order)
            gap = info["gap"]
        else:
            assert spin is not None
            tau, info = relaxation_times(coup, spin, temps, field_T=field,
                                         linewidth=linewidth, order=order)
            lv = info["levels_cm-1"]
            gap = float(lv[2]) if len(lv) > 2 else None
        third = max(2, len(temps) // 3)
        arr = fit_arrhenius(temps[-third:], tau[-third:]) if len(temps) >= 2 else None
        raman = fit_power_law(temps[:third], tau[:third]) if len(temps) >= 2 else None
    top = coup.strongest(10)
    res = {"structure": str(structure), "formula": atoms.get_chemical_formula(),
           **({"spin": spin} if spin is not None else {}), **_reference(coup),
           "gap": gap, "n_modes": modes.n_modes, "excluded_imaginary": n_imag,
           "tau": [[float(t), float(x)] for t, x in zip(temps, tau)],
           "U_eff": None if arr is None else arr["U_eff"],
           "tau0": None if arr is None else arr["tau0"],
           "raman": None if raman is None else {"C": raman["C"], "n": raman["n"]},
           "strongest_modes": [{"mode": k, "wavenumber_cm-1": float(coup.frequencies_cm1[k]),
                                "coupling_cm-1": float(coup.norms[k])} for k in top],
           "field_T": field, "linewidth_cm-1": linewidth, "order": order,
           "raman_modes": None if coup.second_modes is None else len(coup.second_modes),
           "potential": potential, "tensor": tensor or ("cf" if spin is None else "lf")}
    res.pop("D_tensor_cm-1", None)
    if out is not None:
        res["files"] = [str(p) for p in _write(out, res, modes, temps, tau)]
    if as_json:
        print_json(res)
        return
    what = (f"{res['ion']}, Kramers doublets at "
            + ", ".join(f"{e:.0f}" for e in res["kd_energies_cm-1"]) + " cm-1"
            if spin is None else f"S = {spin:g}, D = {res['D_cm-1']:.2f} cm-1, E = "
            f"{res['E_cm-1']:.2f} cm-1")
    console.print(f"[bold]{res['formula']}[/]: {what}; {modes.n_modes} modes; field {field:g} "
                  f"T, lines {linewidth:g} cm-1; "
                  + ("one-phonon" if order == 1 else
                     f"one- and two-phonon ({res['raman_modes']} modes below {raman_max:g} "
                     "cm-1 with second-order couplings)"), highlight=False)
    t = Table(title="strongest spin-phonon couplings ("
              + ("RMS of sum dB_kq/dQ O_kq" if spin is None else "|dD/dQ|")
              + " x zero-point amplitude)", title_justify="left")
    for c in ("mode", "wavenumber (cm-1)", "coupling (cm-1)"):
        t.add_column(c, justify="right")
    for m in res["strongest_modes"]:
        t.add_row(str(m["mode"]), f"{m['wavenumber_cm-1']:.1f}", f"{m['coupling_cm-1']:.3f}")
    console.print(t)
    tt = Table(title="tau(T)", title_justify="left")
    tt.add_column("T (K)", justify="right")
    tt.add_column("tau (s)", justify="right")
    for k in sorted(set(np.linspace(0, len(temps) - 1, min(len(temps), 10)).round().astype(int))):
        tt.add_row(f"{temps[k]:.4g}", f"{tau[k]:.3e}")
    console.print(tt)
    if arr is not None and raman is not None:  # both fitted, or neither
        console.print(f"Arrhenius ({len(temps[-third:])} warmest points): U_eff = "
                      f"{arr['U_eff']:.1f} cm-1, tau0 = {arr['tau0']:.3e} s; "
                      f"{'first excited Kramers doublet' if spin is None else 'spin-level gap'}"
                      f" {res['gap']:.1f} cm-1", highlight=False)
        console.print(f"power law ({len(temps[:third])} coldest points): 1/tau = "
                      f"{raman['C']:.3e} T^{raman['n']:.2f}", highlight=False)
    for f in res.get("files", []):
        console.print(f"wrote {f}", highlight=False)


def _is_lanthanide(atoms) -> bool:
    from molmag.dynamics.cf_spin_phonon import is_lanthanide_complex

    return is_lanthanide_complex(atoms)


def _write(out: Path, res: dict, modes, temps, tau) -> list[Path]:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "tau.csv", out / "modes.extxyz", out / "relaxation.png",
             out / "relaxation.json"]
    np.savetxt(files[0], np.column_stack([temps, tau]), delimiter=",", header="T/K,tau/s",
               comments="")
    from molmag.dynamics.vibrations import write_modes

    write_modes(files[1], modes)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.semilogy(1.0 / temps, tau, "o", ms=3,
                label="one-phonon τ" if res.get("order", 1) == 1 else "one- + two-phonon τ")
    if res.get("U_eff") is not None:
        from molmag.physics.magnetism import K_B_CM

        fit = temps[-max(2, len(temps) // 3):]             # the fitted (warmest) third
        ax.semilogy(1.0 / fit, res["tau0"] * np.exp(res["U_eff"] / (K_B_CM * fit)), "--",
                    label=f"Arrhenius U_eff = {res['U_eff']:.0f} cm⁻¹")
    ax.set_xlabel("1/T (K⁻¹)")
    ax.set_ylabel("τ (s)")
    ax.set_title(res["formula"])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(files[2], dpi=120)
    plt.close(fig)
    files[3].write_text(json.dumps({k: v for k, v in res.items() if k != "files"}, indent=1))
    return files


__all__ = ["relaxation", "vibrations_cmd", "spin_phonon_cmd"]
