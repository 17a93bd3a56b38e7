"""`molmag magnetism`: powder chi*T(T), M(H) and Kramers g values of a spin Hamiltonian or a
lanthanide crystal field (a thin layer over molmag.physics.magnetism)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, print_json, user_errors


def _from_structure(path: Path, tensor: str):
    """The system of a structure: a lanthanide through molmag's crystal-field engine (REC
    point charges), a 3d ion through the ligand-field engine's D and g (``--tensor lf``) or a
    D-tensor model's D with g = 2.0 (``--tensor MODEL``); S from the multiplicity."""
    from molmag.cli.relaxation import one_structure
    from molmag.physics.crystal_field import LANTHANIDE_NUMBERS, crystal_field_from_structure
    from molmag.physics.magnetism import crystal_field_system, spin_system

    atoms = one_structure(path)
    if any(int(z) in LANTHANIDE_NUMBERS for z in atoms.numbers):
        ion, _, levels = crystal_field_from_structure(atoms)
        return crystal_field_system(ion, levels.stevens_parameters()), {
            "source": f"{path}: crystal-field engine (REC point charges)"}
    mult = atoms.info.get("multiplicity")
    if mult is None:
        raise ValueError(f"{path}: the file gives no multiplicity (2S+1); write it in the "
                         "extxyz header (multiplicity=4)")
    spin = (int(mult) - 1) / 2
    if tensor == "lf":
        from molmag.physics.ligand_field import LigandFieldCalculator

        lf = LigandFieldCalculator(charge=atoms.info.get("charge"), multiplicity=int(mult))
        d = lf.get_property("zfs_tensor", atoms)
        g = lf.get_property("g_tensor", atoms)
        src = f"{path}: ligand-field engine (D and g)"
    else:
        if not Path(tensor).is_file():
            raise ValueError(f"--tensor {tensor!r}: neither lf nor a model file")
        from molmag.models.calculator import ModelCalculator

        mc = ModelCalculator(tensor)
        if mc.model.target != "zfs_tensor":
            raise ValueError(f"--tensor {tensor}: a {mc.model.target} model, not a D-tensor "
                             "model")
        d = mc.get_property("zfs_tensor", atoms)
        g = 2.0
        src = (f"{path}: D from {tensor} (D σ {mc.get_property('zfs_D_std', atoms):.2g} "
               "cm-1, calibrated), g = 2.0")
    return spin_system(spin, d_tensor=d, g=g), {"source": src}


def _system(spin, D, E, g, ion, params, convention):
    from molmag.physics.magnetism import crystal_field_system, spin_system

    if (spin is None) == (ion is None):
        raise ValueError("give either --spin S (a spin Hamiltonian), --ion ION (a lanthanide "
                         "J multiplet) or --structure FILE")
    if spin is not None:
        if params:
            raise ValueError("--param goes with --ion (crystal-field parameters)")
        try:
            gv = [float(x) for x in str(g).split(",")]
        except ValueError:
            raise ValueError(f"--g {g!r}: expected one value or three (gx,gy,gz)") from None
        if len(gv) not in (1, 3):
            raise ValueError(f"--g {g!r}: expected one value or three (gx,gy,gz)")
        return spin_system(spin, D=D, E=E, g=gv if len(gv) == 3 else gv[0])
    if D or E:
        raise ValueError("--D/--E go with --spin; give crystal-field parameters with --param")
    from molmag.cli.cf import CONVENTIONS, parse_params
    from molmag.physics.crystal_field import cf_parameter_set

    if not params:
        return crystal_field_system(ion, None)
    conv = convention.strip().lower()
    if conv not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; use {', '.join(CONVENTIONS)}")
    return crystal_field_system(ion, cf_parameter_set(parse_params(params), conv))


def magnetism(
    spin: Optional[str] = typer.Option(None, "--spin", help="Spin S (e.g. 3/2) of a spin "
                                       "Hamiltonian D[Sz^2 - S(S+1)/3] + E(Sx^2 - Sy^2) + "
                                       "mu_B B.g.S."),
    D: float = typer.Option(0.0, "--D", help="Axial ZFS parameter D (cm-1)."),
    E: float = typer.Option(0.0, "--E", help="Rhombic ZFS parameter E (cm-1)."),
    g: str = typer.Option("2.0", "--g", help="g: one value or gx,gy,gz along the D axes."),
    ion: Optional[str] = typer.Option(None, "--ion", help="Lanthanide ion (e.g. Dy3+): its "
                                      "ground J multiplet, free or with --param."),
    param: List[str] = typer.Option(None, "--param", "-p", help="Crystal-field parameter "
                                    "K,Q=VALUE in cm-1 (repeat), as `molmag cf levels`."),
    convention: str = typer.Option("stevens", "--convention",
                                   help="stevens (ESO), wybourne or ito."),
    temperatures: str = typer.Option("2:300:60", "--temperatures",
                                     help="chi*T temperatures (K): start:stop:n or a list."),
    fields: str = typer.Option("0:7:29", "--fields", help="M(H) fields (T): start:stop:n or "
                               "a list."),
    mh_temperatures: str = typer.Option("2,5", "--mh-temperatures",
                                        help="Temperatures (K) of the M(H) curves."),
    order: int = typer.Option(17, "--order", help="Lebedev grid order of the powder average "
                              "of M(H) (17: 110 directions)."),
    structure: Optional[Path] = typer.Option(None, "--structure", help="A complex: its "
                                             "lanthanide crystal field, or its 3d ion's D and g "
                                             "(with --tensor)."),
    tensor: str = typer.Option("lf", "--tensor", help="With --structure of a 3d complex: lf "
                               "(the ligand-field engine) or a D-tensor model file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for chi_T.csv, "
                                       "magnetisation.csv, magnetism.png and magnetism.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """Powder chi*T(T) (cm3 K mol-1, CGS-emu), M(H) (mu_B per molecule) and the effective g
    of each Kramers doublet.

    chi*T is the zero-field Van Vleck susceptibility (exact powder average, Tr chi / 3); M(H)
    is averaged over field directions on a Lebedev grid."""
    from molmag.physics.magnetism import (
        field_grid,
        kramers_g,
        magnetisation,
        powder_chi_t,
        temperature_grid,
    )

    with user_errors():
        extra = {}
        if structure is not None:
            if spin is not None or ion is not None or param:
                raise ValueError("--structure replaces --spin/--ion/--param; give one source")
            system, extra = _from_structure(structure, tensor)
        else:
            system = _system(spin, D, E, g, ion, param or [], convention)
        temps = temperature_grid(temperatures)
        hs = field_grid(fields)
        mh_t = temperature_grid(mh_temperatures)
        if not 3 <= order <= 131:
            raise ValueError(f"--order {order}: the Lebedev orders scipy has run from 3 to 131")
        chi = powder_chi_t(system, temps)
        mh = {f"{t:g}": magnetisation(system, hs, t, order=order) for t in mh_t}
        energies, gvals = (kramers_g(system) if system.kramers else (None, None))
    res = {"system": system.name, **extra, "chi_T_unit": "cm3 K mol-1",
           "magnetisation_unit": "mu_B",
           "chi_T": [[float(t), float(c)] for t, c in zip(temps, chi)],
           "magnetisation": {t: [[float(h), float(m)] for h, m in zip(hs, v)]
                             for t, v in mh.items()},
           "kramers_g": None if energies is None or gvals is None else
           [{"energy_cm-1": float(e), "g": [float(x) for x in gv]}
            for e, gv in zip(energies, gvals)],
           "powder_grid": f"Lebedev order {order}"}
    if out is not None:
        res["files"] = [str(p) for p in _write(out, res, temps, chi, hs, mh)]
    if as_json:
        print_json(res)
        return
    console.print(f"[bold]{system.name}[/]: chi*T in cm3 K mol-1, M in mu_B per molecule "
                  f"(powder)" + (f"; {extra['source']}" if extra else ""), highlight=False)
    t = Table(title="chi*T", title_justify="left")
    t.add_column("T (K)", justify="right")
    t.add_column("chi*T (cm3 K mol-1)", justify="right")
    for k in _sample(len(temps), 10):
        t.add_row(f"{temps[k]:g}", f"{chi[k]:.4f}")
    console.print(t)
    m = Table(title="M(H)", title_justify="left")
    m.add_column("H (T)", justify="right")
    for tk in mh:
        m.add_column(f"M at {tk} K (mu_B)", justify="right")
    for k in _sample(len(hs), 8):
        m.add_row(f"{hs[k]:g}", *(f"{mh[tk][k]:.4f}" for tk in mh))
    console.print(m)
    if energies is not None and gvals is not None:
        kt = Table(title="Kramers doublets", title_justify="left")
        for c in ("#", "E (cm-1)", "g1", "g2", "g3"):
            kt.add_column(c, justify="right")
        for k, (e, gv) in enumerate(zip(energies, gvals)):
            kt.add_row(str(k), f"{e:.2f}", *(f"{x:.4f}" for x in gv))
        console.print(kt)
    for f in res.get("files", []):
        console.print(f"wrote {f}", highlight=False)


def _sample(n: int, k: int) -> list[int]:
    """At most k indices spread over range(n), first and last included."""
    return sorted(set(np.linspace(0, n - 1, min(n, k)).round().astype(int).tolist()))


def _write(out: Path, res: dict, temps, chi, hs, mh) -> list[Path]:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "chi_T.csv", out / "magnetisation.csv", out / "magnetism.png",
             out / "magnetism.json"]
    np.savetxt(files[0], np.column_stack([temps, chi]), delimiter=",",
               header="T/K,chiT/cm3 K mol-1", comments="")
    cols = [hs] + [mh[t] for t in mh]
    np.savetxt(files[1], np.column_stack(cols), delimiter=",",
               header="H/T," + ",".join(f"M({t} K)/muB" for t in mh), comments="")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(temps, chi, "o-", ms=3)
    a1.set_xlabel("T (K)")
    a1.set_ylabel("χT (cm³ K mol⁻¹)")
    a1.set_title(f"{res['system']}: powder χT")
    for t in mh:
        a2.plot(hs, mh[t], "o-", ms=3, label=f"{t} K")
    a2.set_xlabel("H (T)")
    a2.set_ylabel("M (μB per molecule)")
    a2.set_title("powder M(H)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(files[2], dpi=120)
    plt.close(fig)
    files[3].write_text(json.dumps({k: v for k, v in res.items() if k != "files"}, indent=1))
    return files


__all__ = ["magnetism"]
