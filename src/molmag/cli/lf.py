"""`molmag lf ...`: the d^n ligand-field engine from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, fail, print_json, read_frames, user_errors
from molmag.physics.aom import aom_matrix, frames_from_angles
from molmag.physics.ligand_field import LigandFieldEngine, LigandFieldModel, engine_for
from molmag.physics.zfs import zfs_from_tensor

app = typer.Typer(help="d-ion ligand field (angular overlap model + Racah + spin-orbit): "
                       "D tensor, g tensor and states.", no_args_is_help=True)


def _levels(energies: np.ndarray, tol: float = 1e-3) -> list[tuple[float, int]]:
    out: list[list] = []
    for e in energies:
        if out and abs(e - out[-1][0]) < tol:
            out[-1][1] += 1
        else:
            out.append([float(e), 1])
    return [(e, n) for e, n in out]


def _zfs_block(tensor: np.ndarray) -> dict:
    p = zfs_from_tensor(tensor)
    return {"D": p.D, "E": p.E, "E/D": p.E_over_D, "tensor": tensor,
            "axes": p.axes.T + 0.0}  # rows: x, y, z principal axes


def _print_zfs(out: dict, title: str) -> None:
    console.print(f"[bold]{title}[/]")
    if out.get("D") is None:
        console.print("no zero-field splitting (ground spin S < 1)")
    else:
        console.print(f"D   = {out['D']: .3f} cm-1\nE   = {out['E']: .3f} cm-1\n"
                      f"E/D = {out['E/D']: .4f}")
        if out.get("D_second_order") is not None:
            console.print(f"D (second order) = {out['D_second_order']: .3f} cm-1")
        axes = np.asarray(out["axes"])
        console.print("principal axes (rows x, y, z): "
                      + "; ".join(" ".join(f"{v: .4f}" for v in row) for row in axes))
    g = np.asarray(out["g_tensor"])
    gv = np.linalg.eigvalsh(0.5 * (g + g.T))
    console.print("g principal values: " + "  ".join(f"{x:.4f}" for x in gv))


def _check_charge(model, atoms, structure, frame, charge, multiplicity, ion) -> None:
    """The total charge (option, else the frame's) must make a metal ion the engine treats:
    charge minus the donors' formal charges is the oxidation state; a charge that contradicts
    the d^n count or the multiplicity, or gives an ion the engine lacks, is an error (never
    silently replaced by the most common oxidation state)."""
    from molmag.io.validation import validate_structure
    from molmag.physics.ligand_field import ION_DEFAULTS

    q = charge if charge is not None else atoms.info.get("charge")
    if q is None:
        return
    q = int(q)
    donor_q = sum(d.params.formal_charge for d in model.donors)
    ox = q - donor_q
    m = multiplicity if multiplicity is not None else atoms.info.get("multiplicity")
    el = atoms[model.metal].symbol
    where = f"{structure}, frame {frame}, field 'charge'"
    if ion is not None:
        ion_ox = int(model.ion[len(el):].rstrip("+") or 0)
        if ion_ox != ox:  # the explicit --ion wins (donor formal charges may be mistyped)
            from molmag.cli.common import err_console

            err_console.print(f"[yellow]warning:[/] {where}: charge {q:+d} minus the donors' "
                              f"formal charges ({donor_q:+d}) makes the metal {el}{ox:+d}, "
                              f"not the given {ion}; using {ion}", highlight=False)
        return
    validate_structure(atoms, source=structure, frame=frame, charge=q, multiplicity=m,
                       metal_index=model.metal, oxidation_state=ox, min_distance=0)
    if not model.ion_reason.startswith("charge") or f"{el}{ox}+" not in ION_DEFAULTS:
        raise ValueError(f"{where}: charge {q:+d} minus the donors' formal charges "
                         f"({donor_q:+d}) makes the metal {el}{ox:+d}, which the ligand-field "
                         f"engine does not treat ({', '.join(ION_DEFAULTS)}); give --ion to "
                         "override")


@app.command("zfs")
def zfs_cmd(
    structure: Path = typer.Argument(..., help="Structure file (xyz, extxyz or any ASE format)."),
    metal_index: Optional[int] = typer.Option(None, help="Index of the metal (default: the only "
                                              "d-block atom)."),
    charge: Optional[int] = typer.Option(None, help="Total charge (default: from the file); "
                                         "sets the oxidation state with the donor charges."),
    multiplicity: Optional[int] = typer.Option(None, help="Spin multiplicity 2S+1 (checked "
                                               "against the ligand field)."),
    ion: Optional[str] = typer.Option(None, help='The ion, e.g. "Co2+" (default: inferred).'),
    frame: Optional[int] = typer.Option(None, help="Frame of a multi-frame file (0-based; "
                                        "required when the file has several)."),
    outer_charges: Optional[Path] = typer.Option(
        None, help="File with one charge (e) per atom (e.g. xTB charges): adds the point-charge "
                   "field of the atoms beyond the donors."),
    outer_cutoff: Optional[float] = typer.Option(None, help="Only atoms within this distance "
                                                 "(Angstrom) of the metal carry point charges."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """D tensor, D, E, E/D, axes and g tensor (cm-1) of a 3d complex from its structure."""
    with user_errors():
        frames = read_frames(structure, ":" if frame is None else frame, numbered=True,
                             charge=charge, multiplicity=multiplicity, metal_index=metal_index)
        if len(frames) > 1:
            raise ValueError(f"{structure} has {len(frames)} frames: choose one with --frame "
                             f"(0..{len(frames) - 1}); `molmag lf zfs` treats one structure")
        frame, atoms = frames[0]
        q = None
        if outer_charges is not None:
            try:
                q = np.loadtxt(outer_charges, ndmin=1)
            except (OSError, ValueError) as exc:
                raise ValueError(f"--outer-charges {outer_charges}: {exc}") from None
        model = LigandFieldModel.from_atoms(atoms, metal_index=metal_index, ion=ion,
                                            charge=charge, multiplicity=multiplicity,
                                            outer_charges=q, outer_cutoff=outer_cutoff)
        _check_charge(model, atoms, structure, frame, charge, multiplicity, ion)
        eng = engine_for(model.ion)
        res = eng.solve(model.aom_matrix(), pt2=True)
        s = float(res.spin[0])
        mult = multiplicity if multiplicity is not None else atoms.info.get("multiplicity")
        if mult is not None and int(mult) != int(round(2 * s + 1)):
            raise ValueError(f"{structure}, frame {frame}, field 'multiplicity': the ligand "
                             f"field gives {model.ion} a ground spin S = {s:g} "
                             f"(multiplicity {int(round(2 * s + 1))}), not {mult}")
        if s < 1:
            raise ValueError(f"{model.ion} here has ground spin S = {s:g}: no zero-field splitting")
    assert res.zfs_tensor_pt2 is not None  # solve(pt2=True) fills it
    out = _zfs_block(res.zfs_tensor[0])
    out["D_second_order"] = zfs_from_tensor(res.zfs_tensor_pt2[0]).D
    out["tensor_second_order"] = res.zfs_tensor_pt2[0]
    out["g_tensor"] = res.g_tensor[0]
    out["unit"] = "cm-1"
    out["parameters"] = {**model.describe(), **eng.parameters(), "S": s,
                         "orbital_gap_cm-1": (float(res.orbital_gap[0])
                                              if np.isfinite(res.orbital_gap[0]) else None),
                         "lowest_states_cm-1": res.energies[0][: int(round(2 * s)) + 3]}
    if json_out:
        print_json(out)
        return
    _print_zfs(out, f"{structure.name}: {model.ion}, S = {s:g} ({model.ion_reason})")
    t = Table(title="donors", title_justify="left")
    for c in ("atom", "type", "r / A", "e_sigma", "e_pi_x", "e_pi_y"):
        t.add_column(c)
    for d in out["parameters"]["donors"]:
        t.add_row(f"{d['element']}{d['index']}", d["type"], f"{d['distance_A']:.3f}",
                  f"{d['e_sigma']:.0f}", f"{d['e_pi_x']:.0f}", f"{d['e_pi_y']:.0f}")
    console.print(t)
    gap = res.orbital_gap[0]
    console.print(f"B = {eng.B:.0f}, C = {eng.C:.0f}, zeta = {eng.zeta:.0f} cm-1, k = {eng.k}; "
                  + (f"first excited spin-free state of the ground spin at {gap:.0f} cm-1"
                     if np.isfinite(gap) else "no other state of the ground spin"))


def _parse_ligand(text: str) -> tuple[float, ...]:
    try:
        vals = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--ligand {text!r}: expected numbers "
                         "'e_sigma,e_pi_x,e_pi_y,theta,phi[,chi]'") from None
    if len(vals) not in (5, 6):
        raise ValueError(f"--ligand {text!r}: expected 5 or 6 numbers "
                         "'e_sigma,e_pi_x,e_pi_y,theta,phi[,chi]', got {len(vals)}")
    return tuple(vals) if len(vals) == 6 else (*vals, 0.0)


@app.command("levels")
def levels_cmd(
    ion: str = typer.Option(..., help='The ion, e.g. "Co2+", "Ni2+", "Fe3+".'),
    ligand: List[str] = typer.Option(..., "--ligand", "-l", help='One donor: '
                                     '"e_sigma,e_pi_x,e_pi_y,theta,phi[,chi]" (cm-1, degrees).'),
    B: Optional[float] = typer.Option(None, "--B", help="Racah B (cm-1; default: ion's)."),
    C: Optional[float] = typer.Option(None, "--C", help="Racah C (cm-1)."),
    zeta: Optional[float] = typer.Option(None, "--zeta", help="Spin-orbit zeta (cm-1)."),
    k: Optional[float] = typer.Option(None, "--k", help="Orbital reduction factor."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """States, D, E and g from explicit angular-overlap parameters (no structure).

    Each --ligand places a donor at polar angle theta (from z) and azimuth phi (from x),
    degrees.  Its pi frame: for chi = 0, pi_x lies along theta-hat (in the plane of z and the
    bond, pointing away from +z) and pi_y along phi-hat; chi turns both about the bond.
    """
    with user_errors():
        donors = np.array([_parse_ligand(x) for x in ligand])
        eng = LigandFieldEngine(ion, B=B, C=C, zeta=zeta, k=k)
        ang = np.radians(donors[:, 3:6])
        v = aom_matrix(frames_from_angles(ang[:, 0], ang[:, 1], ang[:, 2]),
                       donors[:, 0], donors[:, 1], donors[:, 2])
        res = eng.solve(v, pt2=True)
    s = float(res.spin[0])
    out = {"ion": eng.ion.name, "S": s, "parameters": eng.parameters(),
           "energies_spin_free": res.energies_spin_free[0], "energies": res.energies[0]}
    if s >= 1:
        assert res.zfs_tensor_pt2 is not None  # solve(pt2=True) fills it
        out.update(_zfs_block(res.zfs_tensor[0]))
        out["D_second_order"] = zfs_from_tensor(res.zfs_tensor_pt2[0]).D
    else:
        out.update({"D": None, "E": None, "E/D": None, "tensor": None})
    out["g_tensor"] = res.g_tensor[0]
    if json_out:
        print_json(out)
        return
    t = Table(title=f"{eng.ion.name}: lowest levels (cm-1, degeneracy)", title_justify="left")
    t.add_column("spin-free")
    t.add_column("with spin-orbit")
    sf, so = _levels(res.energies_spin_free[0]), _levels(res.energies[0])
    for i in range(min(10, max(len(sf), len(so)))):
        t.add_row(f"{sf[i][0]:10.1f} ({sf[i][1]})" if i < len(sf) else "",
                  f"{so[i][0]:10.2f} ({so[i][1]})" if i < len(so) else "")
    console.print(t)
    _print_zfs(out, f"spin Hamiltonian of the S = {s:g} ground multiplet")


__all__ = ["app", "fail"]
