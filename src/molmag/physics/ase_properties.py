"""molmag's calculator property names, registered with ASE so that
``atoms.get_properties([...])`` accepts them (``calc.get_property`` works regardless).

=========================  ==============  =======================================
name                       shape           unit
=========================  ==============  =======================================
``zfs_tensor``             (3, 3)          cm-1
``zfs_tensor_pt2``         (3, 3)          cm-1 (second-order perturbation theory)
``zfs_D``, ``zfs_E``       scalar          cm-1
``g_tensor``               (3, 3)          -
``lf_energies``            (n_lf_states,)  cm-1, ground = 0, with spin-orbit coupling
``lf_energies_spin_free``  (n_lf_states,)  cm-1, ground = 0
``kd_energies``            (n_kd,)         cm-1, ground = 0
``g_tensors``              (n_kd, 3)       principal g values per Kramers doublet
``cf_energies``            (n_cf_states,)  cm-1, ground = 0, all 2J+1 states
``easy_axis``              (3,)            unit vector, ground Kramers doublet
``cf_parameters``          (27,)           cm-1, B_k^q in the order :data:`CF_PARAMETER_KEYS`
``n_members``              scalar          members of a committee
``<name>_std``             as ``<name>``   calibrated standard deviation of a model's
                                           ``zfs_tensor``, ``zfs_D``, ``zfs_E``, ``energy``
                                           (eV), ``forces`` (eV/Å), ``kd_energies``,
                                           ``cf_parameters``, same unit
``<name>_ensemble``        (n_members,     the committee members' own (raw) predictions of
                           *shape)         the same quantities, as apax and MACE give them
=========================  ==============  =======================================

``cf_parameters`` is a float array over the fixed (k, q) order :func:`cf_parameter_order`
(k = 2, 4, 6; q = -k..k; keys "k,q" in :data:`CF_PARAMETER_KEYS`), in the convention the
calculator names (``calc.cf_convention``: the crystal-field models' training convention;
Stevens for physics engines); :func:`cf_parameters_dict` gives the label dict
``{"convention", "values": {"k,q": B}}`` and :func:`cf_parameters_array` the way back.

The names are registered in ASE's output registry (``ase.outputs.all_outputs``), which
``atoms.get_properties`` checks; not in ``ase.calculators.calculator.all_properties``, which
would make ``ase.io`` read molmag's per-frame ``info`` keys (``zfs_D``, ...) of extxyz files
as calculator results.

Calculators report bad input (an invalid structure, no metal, elements a model never saw) as
:class:`CalculatorInputError` (ASE's ``InputError`` and a ``ValueError``) and failed
calculations as :class:`CalculatorFailed` (ASE's ``CalculationFailed`` and a
``ValueError``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from ase import outputs
from ase.calculators.calculator import CalculationFailed, InputError

from molmag.physics.stevens import CF_RANKS, cf_keys


def cf_parameter_order() -> tuple[tuple[int, int], ...]:
    """The (k, q) order of array-form ``cf_parameters``: k = 2, 4, 6, q = -k..k (27)."""
    return tuple(cf_keys(CF_RANKS))


#: the "k,q" keys of array-form ``cf_parameters``, in order.
CF_PARAMETER_KEYS: tuple[str, ...] = tuple(f"{k},{q}" for k, q in cf_parameter_order())


def cf_parameters_dict(values: Any, convention: str = "stevens") -> dict[str, Any]:
    """Array-form ``cf_parameters`` (27 floats, :data:`CF_PARAMETER_KEYS` order, cm-1) as
    the label dict ``{"convention": convention, "values": {"k,q": B}}``."""
    v = np.asarray(values, float).ravel()
    if v.shape != (len(CF_PARAMETER_KEYS),):
        raise ValueError(f"cf_parameters needs {len(CF_PARAMETER_KEYS)} values "
                         f"({', '.join(CF_PARAMETER_KEYS[:3])}, ...), got {v.size}")
    return {"convention": str(convention),
            "values": {k: float(x) for k, x in zip(CF_PARAMETER_KEYS, v)}}


def cf_parameters_array(label: Mapping[str, Any] | Any) -> np.ndarray:
    """A ``cf_parameters`` label dict (values keyed "k,q"; missing keys are 0) as the
    (27,) array of :data:`CF_PARAMETER_KEYS` order, in the label's own convention; an
    array passes through (checked).  Keys outside ranks 2, 4, 6 are refused."""
    if not isinstance(label, Mapping):
        return np.array(list(cf_parameters_dict(label)["values"].values()))
    values = dict(label["values"])
    extra = sorted(set(values) - set(CF_PARAMETER_KEYS))
    if extra:
        raise ValueError(f"cf_parameters keys {', '.join(extra)} are outside the array "
                         f"form's ranks {', '.join(map(str, CF_RANKS))}")
    return np.array([float(values.get(k, 0.0)) for k in CF_PARAMETER_KEYS])


class CalculatorInputError(InputError, ValueError):
    """Bad input to a molmag calculator (an invalid structure, no metal, elements a model
    never saw): ASE's ``InputError``, and a ``ValueError`` as molmag raised before."""


class CalculatorFailed(CalculationFailed, ValueError):
    """A calculation that failed (non-finite results, a failed reference engine): ASE's
    ``CalculationFailed``, and a ``ValueError`` like the numerical errors it wraps."""


_PROPERTIES: list[tuple[str, type, tuple[str | int, ...]]] = [
    ("n_lf_states", int, ()),
    ("n_kd", int, ()),
    ("n_cf_states", int, ()),
    ("zfs_tensor", float, (3, 3)),
    ("zfs_tensor_pt2", float, (3, 3)),
    ("zfs_D", float, ()),
    ("zfs_E", float, ()),
    ("g_tensor", float, (3, 3)),
    ("lf_energies", float, ("n_lf_states",)),
    ("lf_energies_spin_free", float, ("n_lf_states",)),
    ("kd_energies", float, ("n_kd",)),
    ("g_tensors", float, ("n_kd", 3)),
    ("cf_energies", float, ("n_cf_states",)),
    ("easy_axis", float, (3,)),
    ("zfs_tensor_std", float, (3, 3)),
    ("zfs_D_std", float, ()),
    ("zfs_E_std", float, ()),
    ("energy_std", float, ()),
    ("forces_std", float, ("natoms", 3)),
    ("kd_energies_std", float, ("n_kd",)),
    ("cf_parameters", float, (27,)),
    ("cf_parameters_std", float, (27,)),
    ("n_members", int, ()),
    ("zfs_tensor_ensemble", float, ("n_members", 3, 3)),
    ("zfs_D_ensemble", float, ("n_members",)),
    ("zfs_E_ensemble", float, ("n_members",)),
    ("energy_ensemble", float, ("n_members",)),
    ("forces_ensemble", float, ("n_members", "natoms", 3)),
    ("kd_energies_ensemble", float, ("n_members", "n_kd")),
    ("cf_parameters_ensemble", float, ("n_members", 27)),
]


def register() -> None:
    """Add molmag's properties to ASE's registry (idempotent)."""
    for name, dtype, shape in _PROPERTIES:
        if name not in outputs.all_outputs:
            outputs._defineprop(name, dtype, shape)


register()


class ExportRegisteredMixin:
    """For calculators whose results include values ASE cannot register (dicts, such as
    the label-form ``cf_parameters`` of older calculators): ``atoms.get_properties`` exports
    only the registered, non-dict ones."""

    results: dict[str, Any]

    def export_properties(self):
        return outputs.Properties({k: v for k, v in self.results.items()
                                   if k in outputs.all_outputs and not isinstance(v, Mapping)})


__all__ = ["register", "ExportRegisteredMixin", "CF_PARAMETER_KEYS", "cf_parameter_order",
           "cf_parameters_dict", "cf_parameters_array", "CalculatorInputError",
           "CalculatorFailed"]
