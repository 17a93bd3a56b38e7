r"""Spin-phonon couplings of a lanthanide's crystal field and the relaxation time they give.

The ground J multiplet of a lanthanide ion in a complex (Dy(III): 6H15/2, 16 states) has the
crystal-field Hamiltonian H_CF = sum_kq B_k^q O_k^q (Stevens operators O_k^q, parameters B_k^q
in cm-1; :mod:`molmag.physics.crystal_field`).  Along the normal modes Q_alpha of the complex
(mass-weighted, Angstrom sqrt(amu); :func:`molmag.chem.sampling.normal_modes`) the parameters
change, and the first-order spin-phonon operator of mode alpha is (Lunghi & Sanvito,
Sci. Adv. 5, eaax7163 (2019), eq. 2, with the crystal field in place of the ZFS tensor;
Lunghi, Sci. Adv. 8, eabn7880 (2022), eq. 2)

.. math::  V_\alpha = \sum_{kq} \frac{\partial B_k^q}{\partial Q_\alpha} Q_{zp,\alpha}\,
   O_k^q ,\qquad Q_{zp,\alpha} = \sqrt{\hbar / (2\omega_\alpha)} ,                  (1)

(cm-1), the derivatives by central differences with steps h = Q_zp / 4 exactly as for the ZFS
tensor (:mod:`molmag.dynamics.spin_phonon`, eq. 1); the second-order operators V^(2)_alpha,beta
= sum_kq d2B_k^q/dQ_alpha dQ_beta Q_zp,alpha Q_zp,beta O_k^q by eq. (2) there.  The
Kramers-doublet energies E_i(Q) (cm-1, ground 0) are differentiated the same way: dE_i/dQ Q_zp
says which modes modulate the gaps (the first excited doublet's, Delta E01, sets the Orbach
barrier).

Any calculator of ``cf_parameters`` serves (molmag's crystal-field engine, a trained
crystal-field model: parameters in the model's convention are converted to Stevens ones, a
model evaluates the displaced structures as one batch).

The size of a coupling is the root-mean-square of its operator, |V_alpha| = ||V_alpha||_F /
sqrt(2J+1) (cm-1): unitary invariance of the Frobenius norm makes it, and its sum over the
modes, exactly invariant under rotation of the molecule (B_k^q mix within each rank k as the
operators O_k^q do), the check the tests apply.

Relaxation: :func:`cf_relaxation_times` gives the master-equation tau(T) of H = H_CF(B_0) +
mu_B B.g_J J (field along the easy axis of the ground doublet) with the one-phonon rates of
:mod:`molmag.physics.relaxation` (eq. 1 there) and, for ``order=2``, the two-phonon ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms

from molmag.chem.sampling import NormalModes
from molmag.dynamics.spin_phonon import (
    check_modes,
    displaced,
    first_differences,
    second_differences,
)


@dataclass
class CFCouplings:
    """Crystal-field couplings of ``ion`` (symbol): at the reference the Stevens parameters
    b0 (27,) in :data:`molmag.physics.ase_properties.CF_PARAMETER_KEYS` order and the
    Kramers-doublet energies kd0 (nd,), cm-1; per mode: wavenumbers (cm-1), zero-point
    amplitudes Q_zp (Angstrom sqrt(amu)), dB/dQ (M, 27) and dE_KD/dQ (M, nd) in cm-1 per
    Angstrom sqrt(amu)."""

    ion: str
    b0: np.ndarray
    kd0: np.ndarray
    frequencies_cm1: np.ndarray
    zero_point: np.ndarray
    db_dq: np.ndarray
    dkd_dq: np.ndarray
    #: second-order couplings d2B/dQ_a dQ_b (m, m, 27) of the modes ``second_modes``
    second: np.ndarray | None = None
    second_modes: np.ndarray | None = None

    @property
    def per_zero_point(self) -> np.ndarray:
        """dB/dQ_alpha Q_zp,alpha (M, 27), cm-1."""
        return self.db_dq * self.zero_point[:, None]

    @property
    def kd_per_zero_point(self) -> np.ndarray:
        """dE_KD/dQ_alpha Q_zp,alpha (M, nd), cm-1."""
        return self.dkd_dq * self.zero_point[:, None]

    def operators(self) -> np.ndarray:
        """V_alpha of eq. (1), (M, 2J+1, 2J+1) complex, cm-1."""
        from molmag.physics.crystal_field import hamiltonian

        return hamiltonian(self.ion, self.per_zero_point)

    def second_operators(self) -> np.ndarray:
        """V^(2)_alpha,beta (M, M, 2J+1, 2J+1), zero outside ``second_modes``, cm-1."""
        from molmag.physics.crystal_field import hamiltonian

        m = len(self.frequencies_cm1)
        d2 = np.zeros((m, m, self.b0.shape[-1]))
        if self.second is not None:
            idx = np.asarray(self.second_modes, int)
            q = self.zero_point[idx]
            d2[np.ix_(idx, idx)] = self.second * (q[:, None] * q[None, :])[..., None]
        return hamiltonian(self.ion, d2)

    @property
    def norms(self) -> np.ndarray:
        """|V_alpha| = ||V_alpha||_F / sqrt(2J+1) per mode, cm-1 (rotation invariant)."""
        v = self.operators()
        return np.linalg.norm(v, axis=(1, 2)) / np.sqrt(v.shape[-1])

    def strongest(self, n: int = 10) -> list[int]:
        return [int(k) for k in np.argsort(-self.norms)[:n]]


def _ion_of(atoms: Atoms, ion=None):
    from molmag.physics.crystal_field import _resolve_ion, lanthanide_index

    return _resolve_ion(atoms, lanthanide_index(atoms), ion)


def cf_parameter_batch(calculator, base: Atoms, positions: list, ion) -> np.ndarray:
    """Stevens B_k^q (n, 27) cm-1 at every set of positions (``calculator``'s own convention
    converted): one batch for a crystal-field model, one call per structure otherwise."""
    from molmag.physics.ase_properties import CF_PARAMETER_KEYS, cf_parameters_array
    from molmag.physics.crystal_field import convert_cf_parameters

    frames = displaced(base, positions)
    model = getattr(calculator, "model", None)
    if model is not None and getattr(model, "target", None) == "cf_parameters":
        pred = model.predict(frames)
        keys, conv = list(pred["cf_keys"]), str(pred["cf_convention"])
        rows = [dict(zip(keys, map(float, r))) for r in np.asarray(pred["cf_parameters"])]
    else:
        conv = str(getattr(calculator, "cf_convention", None) or "stevens")
        rows = [dict(zip(CF_PARAMETER_KEYS, map(float, np.ravel(
            calculator.get_property("cf_parameters", a))))) for a in frames]
    if conv == "stevens":
        return np.array([cf_parameters_array({"values": r}) for r in rows])
    return np.array([cf_parameters_array(convert_cf_parameters(
        {"convention": conv, "values": r}, "stevens", ion)) for r in rows])


def _kd(ion, b: np.ndarray) -> np.ndarray:
    from molmag.physics.crystal_field import solve

    return np.asarray(solve(ion, b).kd_energies, float)


def cf_couplings(modes: NormalModes, calculator, *, ion=None, step_fraction: float = 0.25,
                 progress: Callable[[int, int], None] | None = None) -> CFCouplings:
    """Eq. (1) for every real mode of ``modes`` of a lanthanide complex with ``calculator``
    (``cf_parameters``, cm-1), and the derivatives of the Kramers-doublet energies.
    Imaginary modes are refused (exclude them first); a structure without a lanthanide, or
    an ion without a crystal field, raises ValueError."""
    freqs = check_modes(modes, step_fraction)
    base = modes.atoms
    lion = _ion_of(base, ion)
    from molmag.physics.crystal_field import ion_model

    ion_model(lion)  # refuses ions without a crystal field (Gd3+, Eu3+)

    def values(pos):
        b = cf_parameter_batch(calculator, base, pos, lion)
        return np.concatenate([b, _kd(lion, b)], axis=1)

    f0 = values([base.positions])[0]
    nb = 27
    d, qzp = first_differences(modes, values, step_fraction=step_fraction, progress=progress)
    return CFCouplings(lion.symbol, f0[:nb], f0[nb:], freqs, qzp, d[:, :nb], d[:, nb:])


def add_cf_second_order(couplings: CFCouplings, modes: NormalModes, calculator, *,
                        max_wavenumber: float = 300.0, step_fraction: float = 0.25
                        ) -> CFCouplings:
    """Second-order couplings d2B/dQ_a dQ_b (eq. 2 of :mod:`molmag.dynamics.spin_phonon`) of
    the modes below ``max_wavenumber`` (cm-1); returns ``couplings`` with them set."""
    from molmag.physics.crystal_field import lanthanide_ion

    base = modes.atoms
    lion = lanthanide_ion(couplings.ion)
    couplings.second, couplings.second_modes = second_differences(
        modes, lambda pos: cf_parameter_batch(calculator, base, pos, lion), couplings.b0,
        couplings.zero_point, max_wavenumber=max_wavenumber, step_fraction=step_fraction)
    return couplings


def cf_system(couplings: CFCouplings):
    """The :class:`molmag.physics.magnetism.MagneticSystem` of the reference crystal field
    (H_0 = H_CF(B_0), M = g_J J) and the easy axis (3,) of its ground doublet."""
    from molmag.physics.ase_properties import cf_parameters_dict
    from molmag.physics.crystal_field import solve
    from molmag.physics.magnetism import crystal_field_system

    params = cf_parameters_dict(couplings.b0, "stevens")
    axis = np.asarray(solve(couplings.ion, couplings.b0).easy_axis, float)
    return crystal_field_system(couplings.ion, params), axis


def cf_relaxation_times(couplings: CFCouplings, temperatures, *, field_T: float = 0.1,
                        linewidth: float = 10.0, shape: str = "gaussian", order: int = 1
                        ) -> tuple[np.ndarray, dict]:
    """tau (s) at ``temperatures`` (K) of H = H_CF(B_0) + mu_B B.g_J J, the field (tesla)
    along the easy axis of the ground doublet, with the one-phonon rates of the operators
    V_alpha of eq. (1) (:mod:`molmag.physics.relaxation`, eq. 1) and, for ``order=2``, the
    two-phonon rates (eqs. 2-3 there; with ``couplings.second`` where set).  Returns tau and a
    summary: the Kramers-doublet energies at zero field, ``gap`` (the first excited doublet,
    cm-1), the levels in the field and the field direction."""
    from molmag.physics.relaxation import tau_of_t

    system, axis = cf_system(couplings)
    h = system.hamiltonian(field_T * axis)
    v = couplings.operators()
    second = couplings.second_operators() if order == 2 and couplings.second is not None \
        else None
    tau = tau_of_t(h, v, couplings.frequencies_cm1, temperatures, linewidth, shape,
                   order=order, second=second)
    e = np.linalg.eigvalsh(h)
    kd = np.asarray(couplings.kd0, float)
    return tau, {"ion": couplings.ion, "kd_energies_cm-1": kd.tolist(),
                 "gap": float(kd[1]) if len(kd) > 1 else None,
                 "levels_cm-1": (e - e[0]).tolist(), "field_T": field_T,
                 "field_axis": axis.tolist()}


def is_lanthanide_complex(atoms: Atoms) -> bool:
    """Whether ``atoms`` holds a lanthanide (the crystal-field path) rather than a 3d ion."""
    from molmag.physics.crystal_field import LANTHANIDE_NUMBERS

    return bool(set(atoms.numbers.tolist()) & LANTHANIDE_NUMBERS)


__all__ = ["CFCouplings", "cf_couplings", "add_cf_second_order", "cf_parameter_batch",
           "cf_relaxation_times", "cf_system", "is_lanthanide_complex"]
