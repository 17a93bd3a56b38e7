"""`molmag cf`: crystal-field levels of lanthanide ions (Stevens operators, PCEM/REC)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, print_json, read_frames, user_errors
from molmag.physics.crystal_field import (
    CONVENTIONS,
    CrystalFieldLevels,
    cf_parameter_set,
    convert_cf_parameters,
    crystal_field_from_structure,
    ion_model,
    parse_kq,
    pcem_parameters,
    solve,
    values_from_vector,
)
from molmag.physics.stevens import LanthanideIon, lanthanide_ion, m_values
from molmag.physics.units import convert

app = typer.Typer(help="Crystal-field levels of trivalent lanthanides (Ce3+..Yb3+) in the "
                       "ground J multiplet.", no_args_is_help=True)

_PARAM = re.compile(r"^\s*([^=]+?)\s*=\s*(\S+)\s*$")
RADIAL_SOURCE = "Edvardsson & Klintenberg, J. Alloys Compd. 275-277, 230 (1998)"


def parse_params(items: list[str]) -> dict[str, float]:
    """['2,0=-115.4', '4,0=0.56'] -> {'2,0': -115.4, '4,0': 0.56}; ValueError on bad input."""
    if not items:
        raise ValueError("give at least one --param K,Q=VALUE (e.g. --param 2,0=-115.4)")
    out: dict[str, float] = {}
    for item in items:
        m = _PARAM.match(item)
        if not m:
            raise ValueError(f"--param {item!r}: expected K,Q=VALUE (e.g. 2,0=-115.4)")
        try:
            k, q = parse_kq(m.group(1))
        except ValueError as exc:
            raise ValueError(f"--param {item!r}: {exc}") from None
        try:
            value = float(m.group(2))
        except ValueError:
            raise ValueError(f"--param {item!r}: {m.group(2)!r} is not a number") from None
        if not np.isfinite(value):
            raise ValueError(f"--param {item!r}: the value must be finite")
        key = f"{k},{q}"
        if key in out:
            raise ValueError(f"--param {key} given twice")
        out[key] = value
    return out


def _unit(unit: str) -> str:
    """The unit as given, after checking that molmag can convert it (ValueError otherwise)."""
    convert(1.0, unit, "cm-1")
    return unit


def _levels_json(ion: LanthanideIon, lv: CrystalFieldLevels, unit: str) -> dict:
    f = convert(1.0, "cm-1", unit)
    out = {"ion": ion.name, "term": ion.term, "J": ion.J, "g_J": ion.g_J, "kramers": ion.kramers,
           "unit": unit,
           "energies": (lv.energies * f).tolist(),
           "kd_energies": (lv.kd_energies * f).tolist(),
           "g_tensors": lv.g_values.tolist()}
    if lv.groups:
        out["easy_axis"] = lv.easy_axis.tolist()
        out["mean_abs_MJ"] = lv.mean_abs_mj().tolist()
    return out


def _frac(x: float) -> str:
    tx = int(round(2 * x))
    return f"{tx}/2" if tx % 2 else f"{tx // 2}"


def _abs_mj_weights(ion: LanthanideIon, weights: np.ndarray, cut: float = 5e-4) -> dict:
    """{'15/2': 0.999, '13/2': 0.001}: weights of |M_J| (summed over +-M), largest first."""
    agg: dict[float, float] = {}
    for a, w in zip(np.abs(m_values(ion.J)), weights):
        agg[a] = agg.get(a, 0.0) + float(w)
    return {_frac(a): w for a, w in sorted(agg.items(), key=lambda kv: -kv[1]) if w > cut}


def _composition_text(ion: LanthanideIon, weights: np.ndarray, top: int = 2) -> str:
    """'99.9% ±15/2 + 0.1% ±13/2' from the M-resolved weights of a doublet."""
    items = list(_abs_mj_weights(ion, weights).items())[:top]
    return " + ".join(f"{100 * w:.1f}% ±{a}" for a, w in items)


def _print_levels(ion: LanthanideIon, lv: CrystalFieldLevels, unit: str) -> None:
    f = convert(1.0, "cm-1", unit)
    kind = "Kramers doublets" if ion.kramers else "quasi-doublets (non-Kramers ion)"
    table = Table(title=f"{kind} (energies in {unit}, ground = 0)", title_justify="left")
    for c in ("#", f"E / {unit}", "g1", "g2", "g3", "<|MJ|>", "composition (easy axis)"):
        table.add_column(c, justify="left" if c.startswith("comp") else "right")
    if lv.groups:
        comp = lv.doublet_composition()
        mj = lv.mean_abs_mj()
        for i, e in enumerate(lv.kd_energies):
            g = lv.g_values[i]
            table.add_row(str(i + 1), f"{e * f:.3f}", f"{g[0]:.4f}", f"{g[1]:.4f}", f"{g[2]:.4f}",
                          f"{mj[i]:.3f}", _composition_text(ion, comp[i]))
        console.print(table)
        ax = lv.easy_axis
        console.print(f"easy axis of the ground doublet: "
                      f"({ax[0]: .5f}, {ax[1]: .5f}, {ax[2]: .5f})")
    console.print("all states: " + ", ".join(f"{e * f:.3f}" for e in lv.energies) + f" {unit}")


@app.command("levels")
def levels(
    ion: str = typer.Option(..., "--ion", help="Trivalent lanthanide, e.g. Dy3+ (Ce3+..Yb3+)."),
    convention: str = typer.Option("stevens", "--convention",
                                   help="Parameter convention: stevens (ESO), wybourne, ito "
                                        "(SINGLE_ANISO real B/C)."),
    param: List[str] = typer.Option(None, "--param", "-p",
                                    help="Crystal-field parameter K,Q=VALUE (repeat the option)."),
    unit: str = typer.Option("cm-1", "--unit", help="Unit of the parameters and of the "
                                                    "energies printed (cm-1, meV, K, ...)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Energies, Kramers doublets and their g values from crystal-field parameters.

    H = sum_kq B_k^q O_k^q(J) in the ground multiplet (extended Stevens operators).  Wybourne
    parameters: "k,q" = Re B^k_q, "k,-q" = Im B^k_q; ITO: "k,q" = B(k,q), "k,-q" = C(k,q).
    g values: principal values of each doublet's pseudo-spin-1/2 g tensor, ascending.
    """
    with user_errors():
        the_ion = lanthanide_ion(ion)
        unit = _unit(unit)
        conv = convention.strip().lower()
        if conv not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; use {', '.join(CONVENTIONS)}")
        values = parse_params(param or [])
        factor = convert(1.0, unit, "cm-1")
        label = cf_parameter_set({k: v * factor for k, v in values.items()}, conv)
        stevens = convert_cf_parameters(label, "stevens", the_ion)
        lv = solve(the_ion, stevens)
    if json_out:
        out = _levels_json(the_ion, lv, unit)
        out["convention"] = conv
        out["parameters"] = values
        out["stevens_parameters_cm-1"] = stevens["values"]
        print_json(out)
        return
    console.print(f"{the_ion.name} ({the_ion.term}), J = {the_ion.J:g}, g_J = {the_ion.g_J:.5f}; "
                  f"{len(values)} {conv} parameter(s) in {unit}")
    _print_levels(the_ion, lv, unit)


def read_point_charges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Lines 'q x y z' (e, Å, ion at the origin); '#' starts a comment."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read point charges: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            raise ValueError(f"{path}, line {n}: expected 'q x y z' numbers, "
                             f"got {line!r}") from None
        if len(vals) != 4:
            raise ValueError(f"{path}, line {n}: expected 4 numbers 'q x y z', got {len(vals)}")
        if not np.all(np.isfinite(vals)) or max(abs(v) for v in vals) > 1e5:
            raise ValueError(f"{path}, line {n}: non-finite or absurd value in {line!r}")
        if np.linalg.norm(vals[1:]) < 0.5:
            raise ValueError(f"{path}, line {n}: a point charge {np.linalg.norm(vals[1:]):.3f} Å "
                             "from the ion (at the origin), closer than 0.5 Å")
        rows.append(vals)
    if not rows:
        raise ValueError(f"{path}: no point charges (lines 'q x y z')")
    arr = np.array(rows)
    return arr[:, 1:], arr[:, 0]


def _read_structure(path: Path, frame: int | None, metal_index: int | None):
    """The one frame the crystal field is computed for: a multi-frame file needs --frame."""
    frames = read_frames(path, ":" if frame is None else frame, numbered=True,
                         metal_index=metal_index)
    if len(frames) > 1:
        raise ValueError(f"{path} has {len(frames)} frames: choose one with --frame "
                         f"(0..{len(frames) - 1}); `molmag cf spectrum` treats one structure")
    frame, atoms = frames[0]
    from molmag.io.validation import validate_structure

    lns = [i for i, z in enumerate(atoms.numbers) if 57 <= z <= 71]
    ln = metal_index if metal_index is not None else (lns[0] if len(lns) == 1 else None)
    if (ln is not None and 57 <= atoms.numbers[ln] <= 71
            and atoms.info.get("multiplicity") is not None):
        # the engine treats trivalent ions: the file's multiplicity must fit Ln3+ (4f^n)
        validate_structure(atoms, source=path, frame=frame, charge=atoms.info.get("charge"),
                           multiplicity=atoms.info.get("multiplicity"), metal_index=ln,
                           oxidation_state=3, min_distance=0)
    return atoms


def _read_charges(spec: str, natoms: int):
    if spec.strip().lower() in ("formal", "rec"):
        return spec.strip().lower()
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--charges: {spec!r} is neither 'formal', 'rec' nor a file")
    nums = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0]
        try:
            nums += [float(x) for x in line.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"--charges {spec}: not a list of numbers "
                             f"({line.strip()!r})") from None
    if len(nums) != natoms:
        raise ValueError(f"--charges {spec}: {len(nums)} charges for {natoms} atoms")
    return np.array(nums)


@app.command("spectrum")
def spectrum(
    structure: Optional[Path] = typer.Argument(None, help="Lanthanide complex (any format ASE "
                                                          "reads; see --frame)."),
    frame: Optional[int] = typer.Option(None, "--frame", help="Frame of a multi-frame "
                                        "structure file (0-based; required when it has several)."),
    ion: Optional[str] = typer.Option(None, "--ion", help="Trivalent lanthanide, e.g. Dy3+ "
                                      "(default: the lanthanide of STRUCTURE; another ion is "
                                      "placed in the same geometry)."),
    point_charges: Optional[Path] = typer.Option(None, "--point-charges",
                                                 help="File of lines 'q x y z' (e, Å, ion at "
                                                      "the origin) instead of a structure."),
    charges: str = typer.Option("rec", "--charges", help="Donor charges: rec (radial effective "
                                "charges, default), formal, or a file of per-atom charges (e)."),
    shielding: bool = typer.Option(False, "--shielding", help="Apply Sternheimer shielding "
                                   "(1 - sigma_k)."),
    cutoff: Optional[float] = typer.Option(None, "--cutoff", help="Donor cutoff in Å (default: "
                                           "1.15 x sum of covalent radii)."),
    metal_index: Optional[int] = typer.Option(None, "--metal-index",
                                              help="Index of the ion (default: the lanthanide)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Crystal-field parameters, levels and g values of a complex or of point charges.

    Point-charge electrostatics (PCEM) with formal or radial-effective (REC) charges, or your
    own per-atom charges, and the Edvardsson-Klintenberg <r^k>.  Semi-quantitative: see the
    calibration in molmag.physics.crystal_field.
    """
    with user_errors():
        if (structure is None) == (point_charges is None):
            raise ValueError("give either STRUCTURE or --point-charges FILE")
        if point_charges is not None:
            if ion is None:
                raise ValueError("--point-charges needs --ion (e.g. --ion Dy3+)")
            the_ion = lanthanide_ion(ion)
            pos, q = read_point_charges(point_charges)
            b = pcem_parameters(the_ion, pos, q, shielding=shielding,
                                ranks=ion_model(the_ion).ranks)
            lv = solve(the_ion, b)
            source = {"point_charges": str(point_charges)}
            donors = [{"charge": float(c), "position": p.tolist(),
                       "distance": float(np.linalg.norm(p))} for c, p in zip(q, pos)]
            scheme = "point charges"
        else:
            assert structure is not None  # exactly one of the two was given (checked above)
            atoms = _read_structure(structure, frame, metal_index)
            spec = _read_charges(charges, len(atoms))
            the_ion, pcm, lv = crystal_field_from_structure(
                atoms, ion, charges=spec, shielding=shielding, cutoff=cutoff,
                metal_index=metal_index)
            source = {"structure": str(structure), "formula": atoms.get_chemical_formula()}
            donors = [{"index": int(i), "symbol": atoms[int(i)].symbol, "type": t,
                       "distance": float(d), "charge": float(c), "shift": float(s)}
                      for i, t, d, c, s in zip(pcm.donors, pcm.types, pcm.distances,
                                               pcm.charges, pcm.displacements)]
            scheme = pcm.scheme if isinstance(spec, str) else f"per-atom charges from {charges}"
    params = values_from_vector(lv.parameters, lv.model.ranks)
    radial = {f"<r^{k}>": the_ion.radial[k] for k in (2, 4, 6)}
    options = {"charges": scheme, "shielding": shielding,
               "sternheimer_sigma": ({str(k): the_ion.sigma[k] for k in (2, 4, 6)}
                                     if shielding else None),
               "cutoff_angstrom": cutoff}
    if json_out:
        out = {**source, **_levels_json(the_ion, lv, "cm-1")}
        out.update({"radial_integrals_a0": radial, "radial_source": RADIAL_SOURCE,
                    "stevens_factors": {str(k): the_ion.theta[k] for k in (2, 4, 6)},
                    "options": options, "donors": donors,
                    "cf_parameters": {"convention": "stevens", "values": params}})
        if lv.groups:
            out["ground_doublet_composition"] = _abs_mj_weights(the_ion,
                                                                lv.doublet_composition()[0])
        print_json(out)
        return
    console.print(f"{the_ion.name} ({the_ion.term}), J = {the_ion.J:g}, g_J = {the_ion.g_J:.5f}; "
                  + ", ".join(f"{k} = {v:g}" for k, v in radial.items())
                  + f" a0^k ({RADIAL_SOURCE})")
    shield_txt = ("Sternheimer shielding sigma_k = "
                  + ", ".join(f"{the_ion.sigma[k]:g}" for k in (2, 4, 6)) if shielding
                  else "no Sternheimer shielding")
    console.print(f"charges: {scheme}; {shield_txt}")
    dt = Table(title="point charges", title_justify="left")
    if point_charges is None:
        for c in ("atom", "type", "d / Å", "charge / e", "shift / Å"):
            dt.add_column(c, justify="right" if c != "type" else "left")
        for d in donors:
            dt.add_row(f"{d['symbol']}{d['index']}", d["type"], f"{d['distance']:.3f}",
                       f"{d['charge']:+.3f}", f"{d['shift']:.2f}")
    else:
        for c in ("charge / e", "x / Å", "y / Å", "z / Å", "d / Å"):
            dt.add_column(c, justify="right")
        for d in donors:
            dt.add_row(f"{d['charge']:+.3f}", *(f"{x:.4f}" for x in d["position"]),
                       f"{d['distance']:.4f}")
    console.print(dt)
    pt = Table(title="crystal-field parameters (Stevens/ESO, cm-1)", title_justify="left")
    for c in ("k", "q", "B_k^q"):
        pt.add_column(c, justify="right")
    scale = max(abs(v) for v in params.values()) if params else 0.0
    for key, v in params.items():
        if abs(v) > 1e-12 * max(scale, 1e-300):
            k, q = key.split(",")
            pt.add_row(k, q, f"{v: .6e}")
    console.print(pt)
    _print_levels(the_ion, lv, "cm-1")


__all__ = ["app", "levels", "spectrum", "parse_params", "read_point_charges"]
