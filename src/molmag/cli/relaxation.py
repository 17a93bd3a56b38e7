"""`molmag relaxation`: normal modes, ZFS spin-phonon couplings and tau(T) of a 3d complex (a
thin layer over molmag.dynamics.spin_phonon and molmag.physics.relaxation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, err_console, print_json, read_frames, user_errors


def _calculator(spec: str, what: str, atoms):
    if spec == "xtb" and what == "potential":
        from molmag.chem.xtb import XTBCalculator

        return XTBCalculator()
    if spec == "lf" and what == "tensor":
        from molmag.physics.ligand_field import LigandFieldCalculator

        return LigandFieldCalculator(charge=atoms.info.get("charge"),
                                     multiplicity=atoms.info.get("multiplicity"))
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--{what} {spec!r}: neither "
                         f"{'xtb' if what == 'potential' else 'lf'} nor a model file")
    from molmag.models.calculator import ModelCalculator

    calc = ModelCalculator(path)
    need = "energy" if what == "potential" else "zfs_tensor"
    if calc.model.target != need:
        raise ValueError(f"--{what} {spec}: a {calc.model.target} model, not a {need} model")
    return calc


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


def spin_phonon_cmd(
    structure: Path = typer.Argument(..., help="Structure of the complex (xyz/extxyz/...)."),
    potential: str = typer.Option("xtb", "--potential", help="xtb or an energy model file."),
    tensor: str = typer.Option("lf", "--tensor", help="lf or a D-tensor model file."),
    charge: Optional[int] = typer.Option(None, "--charge", help="Total charge."),
    multiplicity: Optional[int] = typer.Option(None, "--multiplicity", help="2S+1."),
    relax: bool = typer.Option(True, "--relax/--no-relax", help="Relax first (fmax 0.005)."),
    exclude_imaginary: bool = typer.Option(False, "--exclude-imaginary",
                                           help="Leave imaginary modes out."),
    top: int = typer.Option(10, "--top", help="Modes listed in the table (JSON: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print every mode's coupling as JSON."),
):
    """First-order spin-phonon couplings of the D tensor: dD/dQ along every normal mode
    (cm-1 per Å sqrt(amu)) and per zero-point amplitude sqrt(hbar / 2 omega) (cm-1), by
    central differences of the tensor calculator."""
    from molmag.dynamics.spin_phonon import zfs_couplings
    from molmag.dynamics.vibrations import vibrations

    with user_errors():
        atoms = one_structure(structure, charge, multiplicity)
        modes = vibrations(atoms, _calculator(potential, "potential", atoms), relax=relax)
        modes, n_imag = _real(modes, structure, exclude_imaginary)
        coup = zfs_couplings(modes, _calculator(tensor, "tensor", modes.atoms))
    rows = [{"mode": k, "wavenumber_cm-1": float(coup.frequencies_cm1[k]),
             "zero_point_amplitude": float(coup.zero_point[k]),
             "coupling_cm-1": float(coup.norms[k]),
             "dD_dQ": coup.d_dq[k].tolist(), "dD_per_zero_point": coup.per_zero_point[k].tolist()}
            for k in range(len(coup.norms))]
    res = {"structure": str(structure), "formula": modes.atoms.get_chemical_formula(),
           "D_tensor_cm-1": coup.d0.tolist(), "n_modes": len(rows),
           "units": {"dD_dQ": "cm-1 / (Angstrom sqrt(amu))", "dD_per_zero_point": "cm-1",
                     "zero_point_amplitude": "Angstrom sqrt(amu)"},
           "strongest": coup.strongest(top), "modes": rows}
    if as_json:
        print_json(res)
        return
    t = Table(title=f"{res['formula']}: the {min(top, len(rows))} strongest of {len(rows)} "
                    "modes", title_justify="left")
    for c in ("mode", "wavenumber (cm-1)", "|dD/dQ| Q_zp (cm-1)", "dD_zz/dQ Q_zp (cm-1)"):
        t.add_column(c, justify="right")
    for k in coup.strongest(top):
        t.add_row(str(k), f"{coup.frequencies_cm1[k]:.1f}", f"{coup.norms[k]:.3f}",
                  f"{coup.per_zero_point[k][2, 2]:+.3f}")
    console.print(t)
    console.print(f"sum over modes of |dD/dQ| Q_zp: {coup.norms.sum():.2f} cm-1",
                  highlight=False)


def relaxation(
    structure: Path = typer.Argument(..., help="Structure of the complex (xyz/extxyz/...)."),
    potential: str = typer.Option("xtb", "--potential", help="xtb or an energy model file "
                                  "(the vibrations)."),
    tensor: str = typer.Option("lf", "--tensor", help="lf (molmag's ligand-field engine) or a "
                               "D-tensor model file (the spin Hamiltonian and couplings)."),
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

    Normal modes of STRUCTURE with the potential, first-order couplings dD/dQ of every mode by
    central differences with the tensor calculator, the spin Hamiltonian S.D.S + mu_B B.g.S
    (g = 2), rates by the golden rule with Bose-Einstein occupations and Gaussian lines, tau as
    the slowest rate of the master equation; Arrhenius fit (U_eff, tau_0) of the warmest third
    and power-law fit (C, n) of the coldest third of the temperatures. --order 2 adds the
    Raman rates: pairs of first-order couplings through virtual spin states and the
    second-order couplings d2D/dQa dQb of the modes below --raman-max (Lunghi, Sci. Adv. 2022)."""
    from molmag.dynamics.spin_phonon import (
        add_second_order,
        relaxation_times,
        spin_of,
        zfs_couplings,
    )
    from molmag.dynamics.vibrations import vibrations
    from molmag.physics.magnetism import temperature_grid
    from molmag.physics.relaxation import fit_arrhenius, fit_power_law

    with user_errors():
        atoms = one_structure(structure, charge, multiplicity)
        spin = spin_of(atoms)
        temps = temperature_grid(temperatures)
        if not (np.isfinite(linewidth) and linewidth > 0):
            raise ValueError(f"--linewidth {linewidth}: must be a positive number of cm-1")
        if not (np.isfinite(field) and field > 0):
            raise ValueError(f"--field {field}: must be > 0 T (it lifts the Kramers "
                             "degeneracy)")
        pot = _calculator(potential, "potential", atoms)
        ten = _calculator(tensor, "tensor", atoms)
        err_console.print(f"[dim]normal modes of {atoms.get_chemical_formula()} "
                          f"({6 * len(atoms) + 1} force calls) ...[/]", highlight=False)
        modes = vibrations(atoms, pot, relax=relax)
        modes, n_imag = _real(modes, structure, exclude_imaginary)
        err_console.print(f"[dim]couplings of {modes.n_modes} modes ...[/]", highlight=False)
        if order not in (1, 2):
            raise ValueError(f"--order {order}: 1 (one-phonon) or 2 (one- and two-phonon)")
        coup = zfs_couplings(modes, ten)
        if order == 2:
            n2 = int(np.sum(modes.frequencies_cm1 <= raman_max))
            err_console.print(f"[dim]second-order couplings of {n2} modes below "
                              f"{raman_max:g} cm-1 ({2 * n2 * n2} tensors) ...[/]",
                              highlight=False)
            coup = add_second_order(coup, modes, ten, max_wavenumber=raman_max)
        tau, info = relaxation_times(coup, spin, temps, field_T=field, linewidth=linewidth,
                                     order=order)
        third = max(2, len(temps) // 3)
        arr = fit_arrhenius(temps[-third:], tau[-third:]) if len(temps) >= 2 else None
        raman = fit_power_law(temps[:third], tau[:third]) if len(temps) >= 2 else None
    from molmag.physics.zfs import zfs_from_tensor

    z = zfs_from_tensor(coup.d0)
    top = coup.strongest(10)
    res = {"structure": str(structure), "formula": atoms.get_chemical_formula(),
           "spin": spin, "D_cm-1": z.D, "E_cm-1": z.E,
           "gap": float(info["levels_cm-1"][2]) if len(info["levels_cm-1"]) > 2 else None,
           "n_modes": modes.n_modes, "excluded_imaginary": n_imag,
           "tau": [[float(t), float(x)] for t, x in zip(temps, tau)],
           "U_eff": None if arr is None else arr["U_eff"],
           "tau0": None if arr is None else arr["tau0"],
           "raman": None if raman is None else {"C": raman["C"], "n": raman["n"]},
           "strongest_modes": [{"mode": k, "wavenumber_cm-1": float(coup.frequencies_cm1[k]),
                                "coupling_cm-1": float(coup.norms[k])} for k in top],
           "field_T": field, "linewidth_cm-1": linewidth, "order": order,
           "raman_modes": None if coup.second_modes is None else len(coup.second_modes),
           "potential": potential, "tensor": tensor}
    if out is not None:
        res["files"] = [str(p) for p in _write(out, res, modes, temps, tau)]
    if as_json:
        print_json(res)
        return
    console.print(f"[bold]{res['formula']}[/]: S = {spin:g}, D = {z.D:.2f} cm-1, E = {z.E:.2f} "
                  f"cm-1; {modes.n_modes} modes; field {field:g} T, lines {linewidth:g} cm-1; "
                  + ("one-phonon" if order == 1 else
                     f"one- and two-phonon ({res['raman_modes']} modes below {raman_max:g} "
                     "cm-1 with second-order couplings)"), highlight=False)
    t = Table(title="strongest spin-phonon couplings (|dD/dQ| x zero-point amplitude)",
              title_justify="left")
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
                      f"{arr['U_eff']:.1f} cm-1, tau0 = {arr['tau0']:.3e} s; spin-level gap "
                      f"{res['gap']:.1f} cm-1", highlight=False)
        console.print(f"power law ({len(temps[:third])} coldest points): 1/tau = "
                      f"{raman['C']:.3e} T^{raman['n']:.2f}", highlight=False)
    for f in res.get("files", []):
        console.print(f"wrote {f}", highlight=False)


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

        x = 1.0 / temps
        ax.semilogy(x, res["tau0"] * np.exp(res["U_eff"] / (K_B_CM * temps)), "--",
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
