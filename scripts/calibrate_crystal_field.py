"""Calibration table of the crystal-field defaults on Dy(H2O)5L2 model complexes.

Builds pentagonal-bipyramidal Dy(H2O)5(OMe)2 geometries (five waters with their H atoms in the
equatorial plane, two methoxide O donors on the axis with the methyl C and H behind them), from
the ideal D5h arrangement to bent, irregular ones, and prints for each charge scheme the first
excited Kramers-doublet energy E1, the highest doublet E7 (cm-1), the ground-doublet g values
and <|M_J|> of the ground doublet along its easy axis.

    python scripts/calibrate_crystal_field.py            # table
    python scripts/calibrate_crystal_field.py --scan     # also scan the REC parameters
    python scripts/calibrate_crystal_field.py --write DIR  # also write the geometries (xyz)

The reference range (module docstring of molmag.physics.crystal_field): CASSCF first excited
doublets of a few hundred cm-1 for this family, up to ~615 cm-1 for the best genetic-algorithm
designs (Frangoulis et al., cited in ../shared/papers/review-ml-for-smm-zh.md), ground doublets
close to |+-15/2> with g_z ~ 19.6-19.9.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from ase import Atoms

from molmag.physics.crystal_field import (
    REC_PARAMETERS,
    CrystalFieldCalculator,
    crystal_field_from_structure,
)


def _rotation_to(v: np.ndarray) -> np.ndarray:
    """A rotation matrix taking +z to the unit vector v."""
    z = np.array([0.0, 0.0, 1.0])
    c = float(np.dot(z, v))
    if c > 1 - 1e-12:
        return np.eye(3)
    if c < -1 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    axis = np.cross(z, v)
    s = np.linalg.norm(axis)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def dy_h2o5_l2(r_axial=(2.15, 2.15), r_water=(2.40,) * 5, bend=0.0, phase=(0.0,) * 5,
               dz=(0.0,) * 5, symbol="Dy") -> Atoms:
    """Dy(H2O)5(OCH3)2: Dy at the origin; axial O at r_axial (Å), the second one tilted by
    ``bend`` degrees from -z (O-Dy-O = 180 - bend); water O at r_water, azimuth 72 i + phase
    (degrees), height dz (Å); water H in the plane through Dy, O-H 0.97 Å, H-O-H 105 deg;
    methyl C 1.41 Å behind each axial O (Dy-O-C 175 deg) with three H."""
    symbols, pos = [symbol], [np.zeros(3)]
    b = np.radians(bend)
    axes = [np.array([0.0, 0.0, 1.0]), np.array([np.sin(b), 0.0, -np.cos(b)])]
    for r, u in zip(r_axial, axes):
        o = r * u
        perp = np.cross(u, [0.0, 1.0, 0.0])
        perp = perp / np.linalg.norm(perp) if np.linalg.norm(perp) > 1e-8 else np.array([1.0, 0, 0])
        cdir = np.cos(np.radians(5)) * u + np.sin(np.radians(5)) * perp
        c = o + 1.41 * cdir
        symbols += ["O", "C"]
        pos += [o, c]
        rot = _rotation_to(cdir)
        for i in range(3):
            ang = np.radians(120 * i)
            h_local = np.array([np.cos(ang) * np.sin(np.radians(70.5)),
                                np.sin(ang) * np.sin(np.radians(70.5)), np.cos(np.radians(70.5))])
            symbols.append("H")
            pos.append(c + 1.09 * rot @ h_local)
    half = np.radians(105.0 / 2)
    for i, (r, ph, h) in enumerate(zip(r_water, phase, dz)):
        a = np.radians(72.0 * i + ph)
        rho = np.sqrt(r ** 2 - h ** 2)
        o = np.array([rho * np.cos(a), rho * np.sin(a), h])
        out = o / np.linalg.norm(o)
        side = np.array([-np.sin(a), np.cos(a), 0.0])
        symbols.append("O")
        pos.append(o)
        for sgn in (1, -1):
            symbols.append("H")
            pos.append(o + 0.97 * (np.cos(half) * out + sgn * np.sin(half) * side))
    return Atoms(symbols, positions=np.array(pos))


#: The calibration cases: name -> keyword arguments of dy_h2o5_l2.
CASES = {
    "ideal D5h 2.10/2.35": dict(r_axial=(2.10, 2.10), r_water=(2.35,) * 5),
    "ideal D5h 2.15/2.40": dict(r_axial=(2.15, 2.15), r_water=(2.40,) * 5),
    "ideal D5h 2.20/2.45": dict(r_axial=(2.20, 2.20), r_water=(2.45,) * 5),
    "distorted, axis 172 deg": dict(r_axial=(2.12, 2.17), r_water=(2.34, 2.38, 2.41, 2.43, 2.46),
                                    bend=8.0, phase=(0, 3, -4, 2, -2),
                                    dz=(0.10, -0.12, 0.05, -0.08, 0.12)),
    "distorted, axis 165 deg": dict(r_axial=(2.15, 2.22), r_water=(2.33, 2.37, 2.42, 2.45, 2.48),
                                    bend=15.0, phase=(0, 5, -6, 4, -3),
                                    dz=(0.20, -0.25, 0.10, -0.15, 0.25)),
    "strongly bent, axis 155 deg": dict(r_axial=(2.16, 2.20),
                                        r_water=(2.30, 2.36, 2.41, 2.46, 2.50),
                                        bend=25.0, phase=(0, 6, -8, 5, -4),
                                        dz=(0.30, -0.35, 0.15, -0.25, 0.35)),
}

SCHEMES = {
    "rec": dict(charges="rec"),
    "formal": dict(charges="formal"),
    "formal+shielding": dict(charges="formal", shielding=True),
}


def row(atoms: Atoms, **options) -> dict:
    ion, pcm, lv = crystal_field_from_structure(atoms, **options)
    ax = [d for d, t in zip(pcm.donors, pcm.types) if t in ("O_alkoxide", "O_bare")]
    v = atoms.positions[ax] - atoms.positions[0]
    cos = np.dot(v[0], v[1]) / np.prod(np.linalg.norm(v, axis=1))
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return {"E1": lv.kd_energies[1], "E7": lv.kd_energies[-1], "g": lv.g_values[0],
            "mj": lv.mean_abs_mj()[0], "angle": angle}


def print_table(scheme_names=SCHEMES) -> None:
    print(f"{'scheme':<17}{'case':<30}{'O-Dy-O':>8}{'E1/cm-1':>10}{'E7/cm-1':>10}"
          f"{'g_x':>10}{'g_y':>10}{'g_z':>9}{'<|MJ|>':>8}")
    for sname in scheme_names:
        for cname, kw in CASES.items():
            r = row(dy_h2o5_l2(**kw), **SCHEMES[sname])
            g = r["g"]
            print(f"{sname:<17}{cname:<30}{r['angle']:8.1f}{r['E1']:10.1f}{r['E7']:10.1f}"
                  f"{g[0]:10.2e}{g[1]:10.2e}{g[2]:9.3f}{r['mj']:8.3f}")


def scan() -> None:
    """E1 of the ideal 2.15/2.40 and the 165-degree case for a grid of REC parameters."""
    ideal = dy_h2o5_l2(**CASES["ideal D5h 2.15/2.40"])
    bent = dy_h2o5_l2(**CASES["distorted, axis 165 deg"])
    print(f"\n{'Z_O-':>6}{'Dr_O-':>7}{'Z_w':>6}{'Dr_w':>6}{'E1 ideal':>10}{'E7 ideal':>10}"
          f"{'E1 bent':>9}{'g_z bent':>9}")
    for z_ax in (0.4, 0.55, 0.7):
        for d_ax in (0.8, 0.9, 1.0):
            for z_w in (0.08, 0.12, 0.2):
                for d_w in (0.6, 0.7):
                    rec = {t: (z_ax, d_ax) for t in ("O_alkoxide", "O_bare")}
                    rec["O_water"] = (z_w, d_w)
                    a = row(ideal, charges="rec", rec_parameters=rec)
                    b = row(bent, charges="rec", rec_parameters=rec)
                    print(f"{z_ax:6.2f}{d_ax:7.2f}{z_w:6.2f}{d_w:6.2f}{a['E1']:10.1f}{a['E7']:10.1f}"
                          f"{b['E1']:9.1f}{b['g'][2]:9.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scan", action="store_true", help="also scan the REC parameters")
    ap.add_argument("--write", metavar="DIR", help="write the case geometries to DIR/*.xyz")
    args = ap.parse_args(argv)
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for name, kw in CASES.items():
            slug = "dy_h2o5_ome2_" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
            dy_h2o5_l2(**kw).write(out / f"{slug}.xyz")
            print(f"wrote {out / (slug + '.xyz')}")
    print("REC defaults (Z_eff / e, D_r / Å):",
          {k: REC_PARAMETERS[k] for k in ("O_alkoxide", "O_water")})
    print_table()
    calc = CrystalFieldCalculator()
    atoms = dy_h2o5_l2(**CASES["ideal D5h 2.15/2.40"])
    atoms.calc = calc
    print("\nASE calculator, ideal 2.15/2.40: kd_energies =",
          np.round(atoms.calc.get_property("kd_energies", atoms), 1))
    if args.scan:
        scan()
    return 0


if __name__ == "__main__":
    sys.exit(main())
