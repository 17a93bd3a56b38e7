"""Free-ion 3d radial expectation values <r^2>, <r^4> (bohr^k) used by the optional
point-charge term of the ligand-field engine (``RADIAL_3D`` in
``molmag/physics/ligand_field.py``).

Method: ROHF of the free ion in its high-spin ground configuration 3d^n, ANO-RCC basis
(PySCF), <r^k> of the 3d shell averaged over the five occupied 3d orbitals, integrated on a
level-6 atomic grid.  Needs ``pip install -c constraints.txt pyscf`` (not a molmag dependency);
takes about ten minutes on 2 cores.

Run:  python scripts/radial_integrals_3d.py
"""

from __future__ import annotations

import numpy as np

IONS = {"Ti3+": (22, 3, 1), "V3+": (23, 3, 2), "Cr3+": (24, 3, 3), "Cr2+": (24, 2, 4),
        "Mn3+": (25, 3, 4), "Mn2+": (25, 2, 5), "Fe3+": (26, 3, 5), "Fe2+": (26, 2, 6),
        "Co2+": (27, 2, 7), "Ni2+": (28, 2, 8), "Cu2+": (29, 2, 9)}


def radial_3d(symbol: str, charge: int, n_d: int) -> tuple[float, float]:
    from pyscf import dft, gto, scf
    from pyscf.dft import numint

    spin = n_d if n_d <= 5 else 10 - n_d
    mol = gto.M(atom=f"{symbol} 0 0 0", basis="ano-rcc", charge=charge, spin=spin, verbose=0)
    mf = scf.ROHF(mol)
    mf.max_cycle, mf.level_shift = 200, 0.3
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"ROHF of {symbol}{charge}+ did not converge")
    d_ao = [i for i, lab in enumerate(mol.ao_labels()) if lab.split()[2][1] == "d"]
    s = mol.intor("int1e_ovlp")
    c = mf.mo_coeff
    d_char = np.einsum("ai,ab,bi->i", c[d_ao], s[d_ao], c)
    sel = [i for i in range(c.shape[1]) if mf.mo_occ[i] > 0 and d_char[i] > 0.9]
    grids = dft.gen_grid.Grids(mol)
    grids.level = 6
    grids.build()
    phi = numint.eval_ao(mol, grids.coords) @ c[:, sel]
    dens = (phi**2).sum(axis=1) / len(sel)
    r = np.linalg.norm(grids.coords, axis=1)
    return tuple(float((grids.weights * dens * r**k).sum()) for k in (2, 4))


def main() -> None:
    from ase.data import chemical_symbols

    print(f"{'ion':6} {'<r^2>':>8} {'<r^4>':>8}  (bohr^k, ROHF/ANO-RCC)")
    for name, (z, q, nd) in IONS.items():
        r2, r4 = radial_3d(chemical_symbols[z], q, nd)
        print(f"{name:6} {r2:8.4f} {r4:8.4f}")


if __name__ == "__main__":
    main()
