"""The contract every molmag model member follows, so that committees, model files, the ASE
calculator and ``molmag train/evaluate/predict`` treat all of them alike.

A *member* is one trained model of one kind.  A kind is a class with

* ``kind``            (class attribute) its name, e.g. ``"covariant-ridge"``, ``"gmnn-tensor"``;
* ``target``          (class attribute) the dataset label it learns, one of :data:`TARGETS`
  (the specs of :mod:`molmag.models.targets`);
* ``descriptor_type`` (class attribute) ``"snap"`` (bispectrum from LAMMPS, one descriptor
  object shared by the members of a committee) or ``"gaussian-moments"`` (a trainable part of
  each network; the member receives the settings dict and builds its own module);
* ``__init__(self, descriptor, *, seed=0, **hyper)``;
* ``fit(self, frames, targets, val_frames=(), val_targets=None, log=None) -> self``;
* ``predict(self, frames, forces=...) -> dict``: members of targets with forces (energy,
  :attr:`molmag.models.targets.TargetSpec.forces`) default to ``forces=True`` and leave
  ``forces`` out of the result with ``forces=False`` (faster where the member can skip the
  derivatives); every other member defaults to ``forces=False`` and raises ``ValueError``
  (:func:`refuse_forces`) for ``forces=True``;
* ``state(self) -> (meta: dict (JSON-serialisable), arrays: dict[str, np.ndarray])`` and
  ``from_state(cls, descriptor, meta, arrays)`` (a classmethod) that rebuild it exactly.

``targets`` and the result of ``predict`` are dicts keyed by label name, with these shapes and
units (the names and units of molmag's datasets and calculators):

=================  =========================================================================
target             arrays
=================  =========================================================================
``zfs_tensor``     ``zfs_tensor`` (n, 3, 3) cm-1
``energy``         ``energy`` (n,) eV; ``forces`` list of (N_i, 3) eV/Angstrom (in targets
                   it may be ``None`` when a model trains on energies only)
``kd_energies``    ``kd_energies`` (n, n_kd) cm-1, ascending, ground = 0
``cf_parameters``  ``cf_parameters`` (n, K) cm-1, columns named by the member's ``cf_keys``
                   ("k,q") in the member's ``cf_convention``
=================  =========================================================================

Frames are ``ase.Atoms``; the metal of a structure is :func:`metal_index` (``atoms.info
["metal_index"]`` when set, else its only d/f-block atom).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol, Sequence

import numpy as np
from ase import Atoms

from molmag.models.targets import TARGETS as _SPECS
from molmag.physics.elements import find_metal_index

TARGETS = tuple(_SPECS)
DESCRIPTOR_TYPES = ("snap", "gaussian-moments")

Log = Callable[[str], None]


class ModelMember(Protocol):
    kind: ClassVar[str]
    target: ClassVar[str]
    descriptor_type: ClassVar[str]

    def fit(self, frames: Sequence[Atoms], targets: dict[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: dict[str, Any] | None = None,
            log: Log | None = None) -> ModelMember: ...

    def predict(self, frames: Sequence[Atoms], forces: bool = ...) -> dict[str, Any]: ...

    def state(self) -> tuple[dict, dict[str, np.ndarray]]: ...


def metal_index(atoms: Atoms) -> int:
    """The metal of ``atoms``: ``atoms.info['metal_index']`` or its only d/f-block atom.
    Raises ``ValueError`` naming the formula when there is none."""
    m = atoms.info.get("metal_index")
    if m is None:
        m = find_metal_index(atoms)
    if m is None:
        raise ValueError(f"{atoms.get_chemical_formula()} has no metal atom; set "
                         "atoms.info['metal_index']")
    return int(m)


def refuse_forces(member: Any, forces: bool) -> None:
    """For members that predict no forces: a ``ValueError`` naming the kind when ``forces``
    is true (the member protocol's ``predict(frames, forces=False)``)."""
    if forces:
        raise ValueError(f"a {member.kind} model predicts {member.target}, not forces; "
                         "call predict(frames, forces=False)")


def check_species(frames: Sequence[Atoms], known: Sequence[int], kind: str) -> None:
    """Refuse structures with elements the model never saw, naming them."""
    from ase.data import chemical_symbols

    seen = {int(z) for z in known}
    for k, a in enumerate(frames):
        new = {int(z) for z in a.numbers} - seen
        if new:
            raise ValueError(
                f"structure {k} ({a.get_chemical_formula()}): the {kind} model never saw "
                f"{', '.join(chemical_symbols[z] for z in sorted(new))} (it knows "
                f"{', '.join(chemical_symbols[z] for z in sorted(known))})")


__all__ = ["TARGETS", "DESCRIPTOR_TYPES", "ModelMember", "metal_index", "check_species", "Log",
           "refuse_forces"]
