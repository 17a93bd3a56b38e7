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
``<name>_std``             as ``<name>``   calibrated standard deviation of a model's
                                           ``zfs_tensor``, ``zfs_D``, ``zfs_E``, ``energy``
                                           (eV), ``forces`` (eV/Å), ``kd_energies``, same unit
=========================  ==============  =======================================

``cf_parameters`` (a dict with its convention) is available through ``get_property`` only,
as ASE's output registry holds numbers.
"""

from __future__ import annotations

from ase import outputs

_PROPERTIES = [
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
]


def register() -> None:
    """Add molmag's properties to ASE's registry (idempotent)."""
    for name, dtype, shape in _PROPERTIES:
        if name not in outputs.all_outputs:
            outputs._defineprop(name, dtype, shape)


register()


class ExportRegisteredMixin:
    """For calculators whose results include values ASE cannot register (dicts such as
    ``cf_parameters``): ``atoms.get_properties`` exports only the registered ones."""

    def export_properties(self):
        return outputs.Properties({k: v for k, v in self.results.items()
                                   if k in outputs.all_outputs})
