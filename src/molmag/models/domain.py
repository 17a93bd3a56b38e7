"""The training domain of a model, and whether a structure lies in it.

A model interpolates between the environments it was trained on; a structure with an atom in
an environment it never saw (a ligand moved 50 Angstrom away, an atom torn off, two atoms
pushed together) gets a number anyway.  :class:`TrainingDomain` records, per element, the
range of two per-atom distances over the training structures:

* ``nn``     the distance to the nearest other atom (Angstrom): an isolated or a squeezed atom;
* ``metal``  the distance to the metal (Angstrom; structures with a metal only): an atom or a
  ligand that left the complex.

A structure is *outside* when any atom's distance leaves its element's range by more than a
tolerance (``nn``: 25 % of the range's bound and at least 0.3 Angstrom; ``metal``: 1.5
Angstrom beyond the farthest seen).  This is a simple, model-independent check of the
descriptor's input, meant to catch gross extrapolation; the calibrated committee spread
(:mod:`molmag.models.calibration`) catches the subtler kind.  Both are reported per structure
by ``molmag predict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from molmag.physics.elements import find_metal_index

NN_REL_TOL = 0.25
NN_ABS_TOL = 0.3
METAL_TOL = 1.5


def _features(atoms: Atoms) -> tuple[np.ndarray, np.ndarray | None]:
    """Per atom: nearest-neighbour distance and distance to the metal (None without one)."""
    pos = np.asarray(atoms.positions, float)
    if len(pos) < 2:
        nn = np.full(len(pos), np.nan)
    else:
        d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        np.fill_diagonal(d, np.inf)
        nn = d.min(axis=1)
    m = atoms.info.get("metal_index")
    if m is None:
        try:
            m = find_metal_index(atoms)
        except ValueError:  # several metals and none named: no metal-distance check
            m = None
    metal = None if m is None else np.linalg.norm(pos - pos[int(m)], axis=1)
    return nn, metal


@dataclass
class TrainingDomain:
    """Per-element ranges (Angstrom) of the nearest-neighbour and metal distances seen in
    training: ``ranges[symbol] = {"nn": [min, max], "metal": [min, max] or None}``."""

    ranges: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_structures: int = 0

    @classmethod
    def fit(cls, frames: Sequence[Atoms]) -> TrainingDomain:
        acc: dict[str, dict[str, list]] = {}
        n = 0
        for a in frames:
            nn, metal = _features(a)
            n += 1
            for i, z in enumerate(a.numbers):
                r = acc.setdefault(chemical_symbols[int(z)], {"nn": [], "metal": []})
                if np.isfinite(nn[i]):
                    r["nn"].append(nn[i])
                if metal is not None and metal[i] > 0:
                    r["metal"].append(metal[i])
        ranges = {}
        for sym, r in acc.items():
            ranges[sym] = {k: ([float(np.min(v)), float(np.max(v))] if v else None)
                           for k, v in r.items()}
        return cls(ranges, n)

    def problems(self, atoms: Atoms, limit: int = 3) -> list[str]:
        """Why ``atoms`` lies outside the training domain (empty when inside): at most
        ``limit`` reasons, each naming the atom, its element, the distance and the range."""
        nn, metal = _features(atoms)
        out = []
        for i, z in enumerate(atoms.numbers):
            sym = chemical_symbols[int(z)]
            r = self.ranges.get(sym)
            if r is None:
                out.append(f"atom {i} ({sym}): element never seen in training")
                continue
            if r.get("nn") and np.isfinite(nn[i]):
                lo, hi = r["nn"]
                if nn[i] > hi + max(NN_ABS_TOL, NN_REL_TOL * hi):
                    out.append(f"atom {i} ({sym}) is {nn[i]:.2f} Å from its nearest atom "
                               f"(training: at most {hi:.2f} Å)")
                elif nn[i] < lo - max(NN_ABS_TOL, NN_REL_TOL * lo):
                    out.append(f"atom {i} ({sym}) is {nn[i]:.2f} Å from its nearest atom "
                               f"(training: at least {lo:.2f} Å)")
            if metal is not None and r.get("metal") and metal[i] > 0:
                hi = r["metal"][1]
                if metal[i] > hi + METAL_TOL:
                    out.append(f"atom {i} ({sym}) is {metal[i]:.2f} Å from the metal "
                               f"(training: at most {hi:.2f} Å)")
            if len(out) >= limit:
                break
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ranges": self.ranges, "n_structures": self.n_structures}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainingDomain | None:
        if not d:
            return None
        return cls(dict(d.get("ranges", {})), int(d.get("n_structures", 0)))


__all__ = ["TrainingDomain"]
