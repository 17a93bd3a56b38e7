"""Which atoms are magnetic centres: d-block and f-block elements."""

from __future__ import annotations

import numpy as np
from ase import Atoms

#: Atomic numbers of the 3d, 4d and 5d transition metals (Sc..Zn, Y..Cd, Hf..Hg).
TRANSITION_METALS = frozenset(list(range(21, 31)) + list(range(39, 49)) + list(range(72, 81)))
#: Lanthanides La..Lu and actinides Ac..Lr.
F_BLOCK = frozenset(list(range(57, 72)) + list(range(89, 104)))
MAGNETIC_CENTRES = TRANSITION_METALS | F_BLOCK


def metal_indices(atoms: Atoms) -> list[int]:
    """Indices of all d- and f-block atoms of a structure."""
    return [int(i) for i in np.flatnonzero([z in MAGNETIC_CENTRES for z in atoms.numbers])]


def find_metal_index(atoms: Atoms) -> int | None:
    """Index of the single d/f-block atom, ``None`` if there is none.

    Raises ``ValueError`` when there are several (the caller must then say which one).
    """
    idx = metal_indices(atoms)
    if not idx:
        return None
    if len(idx) > 1:
        symbols = ", ".join(f"{atoms[i].symbol}{i}" for i in idx)
        raise ValueError(f"{atoms.get_chemical_formula()} has several metal atoms ({symbols}); "
                         "give the metal index explicitly")
    return idx[0]


def bonded_neighbours(atoms: Atoms, i: int, exclude=(), factor: float = 1.2) -> list[int]:
    """Atoms bonded to atom ``i``: distance < factor x (sum of ASE covalent radii), minimum
    image for periodic cells; ``exclude`` (indices) are left out."""
    from ase.data import covalent_radii

    d = atoms.get_distances(i, range(len(atoms)), mic=bool(atoms.pbc.any()))
    r = covalent_radii[atoms.numbers]
    excluded = set(int(j) for j in exclude) | {int(i)}
    return [int(j) for j in np.flatnonzero(d < factor * (r + r[i])) if int(j) not in excluded]
