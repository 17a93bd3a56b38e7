"""`molmag zfs`: D, E, E/D and principal axes of a D tensor."""

from __future__ import annotations

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, fail, print_json, user_errors
from molmag.physics.zfs import zfs_from_tensor


def parse_tensor(text: str) -> np.ndarray:
    """'xx xy xz; yx yy yz; zx zy zz' (rows separated by ';', numbers by spaces or commas),
    or nine numbers in row order."""
    rows = [r for r in text.replace(",", " ").split(";") if r.strip()]
    try:
        values = [[float(x) for x in r.split()] for r in rows]
    except ValueError as exc:
        raise ValueError(f"--tensor: {exc}") from None
    flat = [x for r in values for x in r]
    if len(flat) != 9 or (len(values) > 1 and any(len(r) != 3 for r in values)):
        raise ValueError(f"--tensor needs 3 rows of 3 numbers ('xx xy xz; yx yy yz; zx zy zz'), "
                         f"got {[len(r) for r in values]}")
    return np.array(flat).reshape(3, 3)


def zfs(
    tensor: str = typer.Option(..., "--tensor", "-t",
                               help='D tensor in cm-1: "xx xy xz; yx yy yz; zx zy zz".'),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """D, E (cm-1), E/D and principal axes of a zero-field-splitting tensor.

    D = 3/2 Z and E = (X - Y)/2 with Z the eigenvalue (of the traceless part) of largest
    magnitude, in the standard frame 0 <= E/D <= 1/3.
    """
    with user_errors():
        t = parse_tensor(tensor)
        p = zfs_from_tensor(t)
    asym = float(np.abs(t - t.T).max())
    out = {"D": p.D, "E": p.E, "E/D": p.E_over_D, "unit": "cm-1",
           "axes": {k: (p.axes[:, i] + 0.0).tolist() for i, k in enumerate("xyz")},
           "eigenvalues": {"X": p.eigenvalues[0], "Y": p.eigenvalues[1], "Z": p.eigenvalues[2]},
           "isotropic": p.iso, "antisymmetric_part_max": asym}
    if json_out:
        print_json(out)
        return
    console.print(f"D   = {p.D: .4f} cm-1\nE   = {p.E: .4f} cm-1\nE/D = {p.E_over_D: .4f}")
    table = Table(title="principal axes (laboratory frame)", title_justify="left")
    for c in ("axis", "eigenvalue / cm-1", "x", "y", "z"):
        table.add_column(c, justify="right")
    for i, name in enumerate("XYZ"):
        table.add_row(name.lower(), f"{p.eigenvalues[i]:.4f}",
                      *(f"{v + 0.0: .5f}" for v in p.axes[:, i]))
    console.print(table)
    if abs(p.iso) > 1e-9 * max(1.0, abs(p.D)):
        console.print(f"isotropic part Tr/3 = {p.iso:.4f} cm-1 (not part of D, E)")
    if asym > 1e-9 * max(1.0, float(np.abs(t).max())):
        console.print(f"[yellow]note:[/] the tensor is not symmetric (max |T - T^T| = {asym:.3g}); "
                      "its symmetric part was used")


__all__ = ["zfs", "parse_tensor", "fail"]
