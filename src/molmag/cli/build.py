"""`molmag build NAME --out FILE`: build a complex, relax it with GFN2-xTB and write it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from molmag.cli.common import console, fail, user_errors

_NAMES_HELP = "fecl5, fecl6, cocl4, co-pdms, dy-h2o5l2, ligand"


def _write(atoms, out: Path) -> None:
    """extxyz, the molmag way (:func:`molmag.io.extxyz.record_to_atoms`): charge,
    multiplicity and metal_index in the comment line, the GFN2-xTB energy of a relaxed
    structure as ``REF_energy`` with its provenance, plus the builder's scalar notes."""
    import ase.io

    from molmag.chem.xtb import METHOD, tblite_version, xtb_spin
    from molmag.io.extxyz import record_to_atoms
    from molmag.io.provenance import Provenance, now_iso
    from molmag.io.records import Record

    info = atoms.info
    labels, provenance = {}, {}
    if info.get("relaxed"):
        charge, uhf = xtb_spin(atoms, int(info["charge"]), int(info["multiplicity"]))
        labels["energy"] = float(info["relax_energy_eV"])
        provenance["energy"] = Provenance(
            method=METHOD, program="tblite", version=tblite_version(), date=now_iso(),
            parameters={"charge": charge, "xtb_unpaired_electrons": uhf,
                        "geometry": f"relaxed by molmag build {info['name']}",
                        "fmax_eV_A": info.get("relax_fmax_target_eV_A")})
    record = Record(atoms, charge=info["charge"], multiplicity=info["multiplicity"],
                    metal_index=info["metal_index"], labels=labels, provenance=provenance)
    frame = record_to_atoms(record)
    if info.get("donor_indices") is not None:   # the donor atoms, as indices
        frame.info["donors"] = [int(i) for i in info["donor_indices"]]
    for key in ("name", "ligand", "donor_element", "ligand_charge", "relaxed", "relax_steps",
                "relax_steps_constrained", "relax_fmax_eV_A", "arrangement",
                "prism_constrained"):
        if key in info:
            frame.info[key] = info[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(out, frame, format="extxyz")


def build(
    name: str = typer.Argument(..., help=f"What to build: {_NAMES_HELP}."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (extxyz)."),
    ligand: Optional[str] = typer.Option(
        None, "--ligand", help="Ligand SMILES for dy-h2o5l2 and ligand, its FIRST atom the donor "
        "(e.g. 'O=P(C)(C)C', '[O-]c1ccccc1', 'n1ccccc1')."),
    no_relax: bool = typer.Option(False, "--no-relax", help="Write the starting geometry "
                                  "without the GFN2-xTB relaxation."),
    fmax: float = typer.Option(0.05, "--fmax", help="Relaxation threshold: largest force "
                               "(eV/Angstrom)."),
    max_ligand_charge: int = typer.Option(3, "--max-ligand-charge", min=0,
                                          help="Refuse ligands whose formal charge lies outside "
                                               "[-N, +N] (raise it to build unusual ions)."),
    max_heavy_atoms: int = typer.Option(60, "--max-heavy-atoms", min=1,
                                        help="Refuse ligands with more heavy atoms (raise it "
                                             "for big ligands: embedding and xTB grow steeply)."),
):
    """Build a metal complex from a template, relax it with GFN2-xTB and write extxyz.

    Named structures: fecl5 ([FeCl5]2-, trigonal bipyramid), fecl6 ([FeCl6]3-, trigonal
    prism), cocl4 ([CoCl4]2-, tetrahedron), co-pdms ([Co(pdms)2]2-), dy-h2o5l2
    (Dy(H2O)5L2 with --ligand SMILES) and ligand (the free ligand --ligand SMILES alone).
    The file carries charge, multiplicity and metal_index for `molmag data import`."""
    from molmag.chem.builders import BUILDERS
    from molmag.chem.builders import build as build_structure
    from molmag.chem.features import metal_donor_distances
    from molmag.chem.xtb import RelaxationError, XTBError

    key = name.strip().lower().replace("_", "-")
    if key not in BUILDERS:
        fail(f"unknown structure {name!r}; choose one of: {', '.join(BUILDERS)}")
    if not fmax > 0:  # NaN too
        fail(f"--fmax must be positive, got {fmax}")
    options: dict[str, Any] = {"relax": not no_relax, "fmax": fmax}
    if ligand is not None:
        options["ligand"] = ligand
        options["max_ligand_charge"] = max_ligand_charge
        options["max_heavy_atoms"] = max_heavy_atoms
    start = time.perf_counter()
    with user_errors():
        try:
            atoms = build_structure(key, **options)
        except (RelaxationError, XTBError) as exc:
            raise ValueError(str(exc)) from None
        _write(atoms, out)
    seconds = time.perf_counter() - start
    info = atoms.info
    what = f"{info['name']}" + (f" (L = {info['ligand']})" if key == "dy-h2o5l2" else "")
    console.print(f"[bold]{escape(what)}[/]: {atoms.get_chemical_formula()}, {len(atoms)} atoms, "
                  f"charge {info['charge']:+d}, multiplicity {info['multiplicity']}",
                  highlight=False)
    if info.get("relaxed"):
        console.print(f"GFN2-xTB relaxation: E = {info['relax_energy_eV']:.6f} eV, "
                      f"{info['relax_steps']} steps, max force {info['relax_fmax_eV_A']:.4f} "
                      f"eV/A ({seconds:.1f} s)", highlight=False)
    else:
        console.print("not relaxed (--no-relax): starting geometry", highlight=False)
    if info.get("metal_index") is not None:
        metal = atoms[info["metal_index"]].symbol
        dist, donors = metal_donor_distances(atoms, info["metal_index"],
                                             info.get("donor_indices"))
        console.print(f"{metal}-donor distances / A: " + ", ".join(
            f"{atoms[j].symbol}{j} {d:.3f}" for j, d in zip(donors, dist)), highlight=False)
    else:
        console.print(f"donor atom: {atoms[0].symbol}0 (the free ligand)", highlight=False)
    console.print(f"wrote {out}", highlight=False)


__all__ = ["build"]
