"""Vibrations of a structure with any ASE potential: relax, normal modes (the mass-weighted
Hessian by central differences, translations and rotations projected out exactly, see
:func:`molmag.chem.sampling.normal_modes`), and the modes as an extxyz trajectory ASE, Jmol
and OVITO animate (one frame per mode, its Cartesian displacement per unit mass-weighted
amplitude in the per-atom array ``mode``, 1/sqrt(amu))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from molmag.chem.sampling import NormalModes, normal_modes


def vibrations(atoms: Atoms, potential, *, relax: bool = True, fmax: float = 0.005,
               delta: float = 0.005, follow_imaginary: int = 3,
               imaginary_threshold: float = 20.0) -> NormalModes:
    """Normal modes of ``atoms`` (relaxed first with ``potential`` to max |F| < ``fmax`` eV/Å
    when ``relax``); imaginary modes are kept (negative wavenumbers) for the caller to judge.

    A relaxation that stops on a saddle point (a symmetric start, e.g. a builder's ideal
    D5h or Td geometry, has zero forces by symmetry and BFGS keeps the symmetry) is followed
    down the imaginary modes: with ``relax``, while modes below -``imaginary_threshold`` cm-1
    remain, the structure is displaced along them (their sum, 0.1 Å for the most displaced
    atom) and relaxed again, at most ``follow_imaginary`` times; ``modes.atoms.info``
    records ``saddle_escapes``, the number of such steps."""
    modes = _relaxed_modes(atoms, potential, relax, fmax, delta)
    escapes = 0
    while relax and escapes < follow_imaginary:
        down = modes.frequencies_cm1 < -abs(imaginary_threshold)
        if not down.any():
            break
        step = modes.cartesian_vectors[down].sum(axis=0)
        step *= 0.1 / np.linalg.norm(step, axis=1).max()
        start = modes.atoms.copy()
        start.info = dict(modes.atoms.info)
        start.positions = start.positions + step
        escapes += 1
        modes = _relaxed_modes(start, potential, True, fmax, delta)
    if escapes:
        modes.atoms.info["saddle_escapes"] = escapes
    return modes


def _relaxed_modes(atoms: Atoms, potential, relax: bool, fmax: float, delta: float
                   ) -> NormalModes:
    if relax:
        from molmag.chem.xtb import relax as run_relax

        info = dict(atoms.info)
        atoms = run_relax(atoms, calculator=potential, fmax=fmax, steps=2000).atoms
        atoms.info = info
    return normal_modes(atoms, potential, delta=delta, imaginary="ignore")


def write_modes(path: str | Path, modes: NormalModes) -> Path:
    """The modes as an extxyz trajectory (see the module docstring)."""
    import ase.io

    frames = []
    for k in range(modes.n_modes):
        a = modes.atoms.copy()
        a.arrays["mode"] = modes.cartesian_vectors[k]
        a.info = {"mode": k, "wavenumber_cm-1": float(modes.frequencies_cm1[k])}
        frames.append(a)
    path = Path(path)
    ase.io.write(str(path), frames, format="extxyz")
    return path


def modes_table(modes: NormalModes) -> list[dict]:
    """Per mode: index, wavenumber (cm-1, negative = imaginary) and whether it is imaginary."""
    return [{"mode": k, "wavenumber_cm-1": float(f), "imaginary": bool(f < 0)}
            for k, f in enumerate(np.asarray(modes.frequencies_cm1))]


__all__ = ["vibrations", "write_modes", "modes_table"]
