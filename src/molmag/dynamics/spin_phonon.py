r"""Spin-phonon couplings of the zero-field-splitting tensor and the relaxation time they give.

For the harmonic normal modes of a structure (:func:`molmag.chem.sampling.normal_modes`:
mass-weighted coordinates Q_alpha in Angstrom sqrt(amu), wavenumbers nu_alpha in cm-1) and any
ASE calculator of ``zfs_tensor`` (molmag's ligand-field engine, a trained tensor model), the
first-order couplings are central finite differences along each mode,

.. math::  \frac{\partial D}{\partial Q_\alpha} \approx
   \frac{D(Q_\alpha = +h_\alpha) - D(Q_\alpha = -h_\alpha)}{2 h_\alpha} ,            (1)

with the step a quarter of the mode's zero-point amplitude, h_alpha = Q_zp / 4,
Q_zp = sqrt(hbar / (2 omega_alpha)) (Lunghi & Sanvito, Sci. Adv. 2019, eq. 2: the coupling
"per zero-point amplitude" is dD/dQ Q_zp, in cm-1).  The spin-phonon operator of mode alpha in
the spin Hamiltonian H_s = S.D.S + mu_B B.g.S is V_alpha = S.(dD/dQ_alpha Q_zp).S (cm-1), which
:mod:`molmag.physics.relaxation` turns into one-phonon rates and tau(T).

Second-order couplings (for two-phonon, Raman, rates; :class:`molmag.physics.relaxation.RamanModel`)
by central differences along pairs of modes,

.. math::  \frac{\partial^2 D}{\partial Q_\alpha \partial Q_\beta} \approx
   \frac{D(+h_\alpha, +h_\beta) - D(+h_\alpha, -h_\beta) - D(-h_\alpha, +h_\beta)
         + D(-h_\alpha, -h_\beta)}{4 h_\alpha h_\beta} ,
   \qquad \frac{\partial^2 D}{\partial Q_\alpha^2} \approx
   \frac{D(+h_\alpha) - 2 D_0 + D(-h_\alpha)}{h_\alpha^2} ,                      (2)

for the modes below a wavenumber cut-off (2 m^2 tensor evaluations for m modes; the
low-energy modes are the ones populated where Raman relaxation matters).  A tensor model is
evaluated on all displaced structures in one batch.

The Frobenius norm of a coupling tensor is invariant under rotation of the molecule (D
rotates as R D R^T), so the sum over modes of |dD/dQ Q_zp| is an exact check of the
implementation's equivariance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms

from molmag.chem.sampling import NormalModes, mode_variance


@dataclass
class ZFSCouplings:
    """D at the reference (3x3, cm-1) and per mode: wavenumbers (cm-1), zero-point amplitudes
    Q_zp (Angstrom sqrt(amu)) and dD/dQ (M, 3, 3) in cm-1 per Angstrom sqrt(amu)."""

    d0: np.ndarray
    frequencies_cm1: np.ndarray
    zero_point: np.ndarray
    d_dq: np.ndarray
    #: second-order couplings d2D/dQ_a dQ_b (m, m, 3, 3) of the modes ``second_modes``
    second: np.ndarray | None = None
    second_modes: np.ndarray | None = None

    def second_per_zero_point(self) -> np.ndarray:
        """d2D/dQ_a dQ_b Q_zp,a Q_zp,b (M, M, 3, 3) over all modes (zero outside
        ``second_modes``), cm-1."""
        m = len(self.frequencies_cm1)
        out = np.zeros((m, m, 3, 3))
        if self.second is not None:
            idx = np.asarray(self.second_modes, int)
            q = self.zero_point[idx]
            out[np.ix_(idx, idx)] = self.second * (q[:, None] * q[None, :])[..., None, None]
        return out

    @property
    def per_zero_point(self) -> np.ndarray:
        """dD/dQ_alpha Q_zp,alpha (M, 3, 3), cm-1."""
        return self.d_dq * self.zero_point[:, None, None]

    @property
    def norms(self) -> np.ndarray:
        """Frobenius norm of each mode's coupling per zero-point amplitude, cm-1."""
        return np.linalg.norm(self.per_zero_point, axis=(1, 2))

    def strongest(self, n: int = 10) -> list[int]:
        return [int(k) for k in np.argsort(-self.norms)[:n]]


def check_modes(modes: NormalModes, step_fraction: float) -> np.ndarray:
    """The wavenumbers of ``modes`` (cm-1), all real; imaginary modes and steps outside (0, 1]
    are refused (imaginary modes have no zero-point amplitude: exclude them first)."""
    freqs = np.asarray(modes.frequencies_cm1, float)
    if np.any(freqs <= 0):
        bad = ", ".join(f"{abs(f):.1f}{'i' if f < 0 else ''}" for f in freqs[freqs <= 0])
        raise ValueError(f"imaginary or zero modes ({bad} cm-1): relax the structure with the "
                         "potential first, or exclude them explicitly")
    if not 0 < step_fraction <= 1:
        raise ValueError(f"step_fraction must be in (0, 1], got {step_fraction}")
    return freqs


#: ``values(positions)``: a property (n, ...) at every set of positions (n, N, 3)
ValuesFn = Callable[[list], np.ndarray]


def first_differences(modes: NormalModes, values: ValuesFn, *, step_fraction: float = 0.25,
                      chunk: int = 8, progress: Callable[[int, int], None] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (1) for any property: (its derivative along every mode, (M, ...) per Angstrom
    sqrt(amu), and the zero-point amplitudes Q_zp (M,)), with steps h = ``step_fraction`` Q_zp;
    ``values`` is called on ``2 chunk`` displaced structures at a time (a model evaluates
    them as one batch)."""
    freqs = check_modes(modes, step_fraction)
    qzp = np.sqrt(mode_variance(freqs, 0.0))
    h = step_fraction * qzp
    vecs = modes.cartesian_vectors
    p0 = modes.atoms.positions
    parts = []
    for s in range(0, len(freqs), chunk):
        ks = range(s, min(s + chunk, len(freqs)))
        pos = [p0 + sign * h[k] * vecs[k] for k in ks for sign in (1.0, -1.0)]
        y = np.asarray(values(pos), float)
        parts.append((y[0::2] - y[1::2]) / (2.0 * h[list(ks)]).reshape((-1,) + (1,) * (y.ndim - 1)))
        if progress:
            progress(ks[-1] + 1, len(freqs))
    return np.concatenate(parts), qzp


def second_differences(modes: NormalModes, values: ValuesFn, f0: np.ndarray,
                       zero_point: np.ndarray, *, max_wavenumber: float = 300.0,
                       step_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (2) for any property with value ``f0`` at the reference: (d2f/dQ_a dQ_b (m, m,
    ...) for the m modes below ``max_wavenumber`` (cm-1), their indices)."""
    freqs = np.asarray(modes.frequencies_cm1, float)
    idx = np.flatnonzero((freqs > 0) & (freqs <= max_wavenumber))
    if not len(idx):
        raise ValueError(f"no mode below {max_wavenumber:g} cm-1 for the second-order "
                         "couplings; raise the cut-off")
    h = step_fraction * np.asarray(zero_point)[idx]
    v = modes.cartesian_vectors[idx] * h[:, None, None]
    p0 = modes.atoms.positions
    pos, keys = [], []
    for i in range(len(idx)):
        for si in (1, -1):
            pos.append(p0 + si * v[i])
            keys.append((i, si, i, 0))
        for j in range(i + 1, len(idx)):
            for si in (1, -1):
                for sj in (1, -1):
                    pos.append(p0 + si * v[i] + sj * v[j])
                    keys.append((i, si, j, sj))
    d = dict(zip(keys, np.asarray(values(pos), float)))
    m = len(idx)
    f0 = np.asarray(f0, float)
    out = np.empty((m, m) + f0.shape)
    for i in range(m):
        out[i, i] = (d[(i, 1, i, 0)] - 2.0 * f0 + d[(i, -1, i, 0)]) / h[i] ** 2
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = (d[(i, 1, j, 1)] - d[(i, 1, j, -1)] - d[(i, -1, j, 1)]
                                     + d[(i, -1, j, -1)]) / (4.0 * h[i] * h[j])
    return out, idx


def displaced(base: Atoms, positions: list) -> list[Atoms]:
    """Copies of ``base`` (its info kept) at every set of positions."""
    frames = []
    for pos in positions:
        a = base.copy()
        a.info = dict(base.info)
        a.positions = pos
        frames.append(a)
    return frames


def _tensors(tensor_calculator, base: Atoms, positions: list) -> np.ndarray:
    """D (n, 3, 3) at every set of positions: one batch for a tensor model, one call per
    structure otherwise."""
    frames = displaced(base, positions)
    model = getattr(tensor_calculator, "model", None)
    if model is not None and getattr(model, "target", None) == "zfs_tensor":
        return np.asarray(model.predict(frames)["zfs_tensor"], float)
    return np.array([np.asarray(tensor_calculator.get_property("zfs_tensor", a), float)
                     for a in frames])


def zfs_couplings(modes: NormalModes, tensor_calculator, *, step_fraction: float = 0.25,
                  progress: Callable[[int, int], None] | None = None) -> ZFSCouplings:
    """Eq. (1) for every real mode of ``modes`` with ``tensor_calculator`` (``zfs_tensor``,
    cm-1; a tensor model evaluates the displaced structures in batches).  Imaginary modes are
    refused: exclude them from ``modes`` first (they have no zero-point amplitude)."""
    freqs = check_modes(modes, step_fraction)
    base = modes.atoms
    d0 = _tensors(tensor_calculator, base, [base.positions])[0]
    d_dq, qzp = first_differences(modes, lambda pos: _tensors(tensor_calculator, base, pos),
                                  step_fraction=step_fraction, progress=progress)
    return ZFSCouplings(d0, freqs, qzp, d_dq)


def add_second_order(couplings: ZFSCouplings, modes: NormalModes, tensor_calculator, *,
                     max_wavenumber: float = 300.0, step_fraction: float = 0.25) -> ZFSCouplings:
    """Eq. (2) for every pair of the modes below ``max_wavenumber`` (cm-1); returns
    ``couplings`` with ``second`` and ``second_modes`` set."""
    base = modes.atoms
    couplings.second, couplings.second_modes = second_differences(
        modes, lambda pos: _tensors(tensor_calculator, base, pos), couplings.d0,
        couplings.zero_point, max_wavenumber=max_wavenumber, step_fraction=step_fraction)
    return couplings


def real_modes(modes: NormalModes) -> NormalModes:
    """``modes`` without its imaginary (and zero) modes."""
    keep = modes.frequencies_cm1 > 0
    return NormalModes(modes.atoms, modes.masses, modes.hessian, modes.force_constants[keep],
                       modes.vectors[keep], modes.frequencies_cm1[keep], modes.linear,
                       modes.delta_A)


def spin_operators(spin: float) -> np.ndarray:
    from molmag.physics.angular_momentum import spin_matrices

    return np.stack([np.asarray(x, complex) for x in spin_matrices(spin)])


def relaxation_times(couplings: ZFSCouplings, spin: float, temperatures, *,
                     field_T: float = 0.1, g=2.0, linewidth: float = 10.0,
                     shape: str = "gaussian", order: int = 1) -> tuple[np.ndarray, dict]:
    """tau (s) at ``temperatures`` (K) of H_s = S.D0.S + mu_B B.g.S with one-phonon rates from
    V_alpha = S.(dD/dQ_alpha Q_zp).S (:mod:`molmag.physics.relaxation`); the field (tesla)
    points along the easy axis of D0.  ``order=2`` adds the two-phonon (Raman) rates: pairs
    of first-order couplings through virtual states and, where ``couplings.second`` is set,
    V^(2) = S.(d2D/dQ_a dQ_b Q_zp,a Q_zp,b).S.  Returns tau and a summary (spin, gap of the
    spin levels, field direction)."""
    from molmag.physics.magnetism import MU_B_CM, g_matrix
    from molmag.physics.relaxation import tau_of_t
    from molmag.physics.zfs import zfs_from_tensor

    s = spin_operators(spin)
    d0 = 0.5 * (couplings.d0 + couplings.d0.T)
    axis = zfs_from_tensor(d0).axes[:, 2]
    h = np.einsum("ab,aij,bjk->ik", d0, s, s)
    h = h + MU_B_CM * field_T * np.einsum("a,ab,bij->ij", axis, g_matrix(g), s)
    v = np.einsum("kab,aij,bjl->kil", 0.5 * (couplings.per_zero_point
                                             + couplings.per_zero_point.transpose(0, 2, 1)),
                  s, s)
    second = None
    if order == 2 and couplings.second is not None:
        d2 = couplings.second_per_zero_point()
        second = np.einsum("pqab,aij,bjl->pqil",
                           0.5 * (d2 + d2.transpose(0, 1, 3, 2)), s, s)
    tau = tau_of_t(h, v, couplings.frequencies_cm1, temperatures, linewidth, shape,
                   order=order, second=second)
    e = np.linalg.eigvalsh(h)
    return tau, {"spin": spin, "levels_cm-1": (e - e[0]).tolist(),
                 "field_T": field_T, "field_axis": axis.tolist()}


def spin_of(atoms: Atoms) -> float:
    """S from ``atoms.info['multiplicity']`` (2S + 1)."""
    m = atoms.info.get("multiplicity")
    if m is None:
        raise ValueError(f"{atoms.get_chemical_formula()}: give the multiplicity (2S+1) of the "
                         "complex (extxyz info 'multiplicity=' or --multiplicity)")
    s = (int(m) - 1) / 2
    if s < 1:
        raise ValueError(f"multiplicity {m}: S = {s:g} has no zero-field splitting (S >= 1)")
    return s


__all__ = ["ZFSCouplings", "zfs_couplings", "add_second_order", "real_modes", "relaxation_times",
           "spin_of", "check_modes", "first_differences", "second_differences", "displaced"]
