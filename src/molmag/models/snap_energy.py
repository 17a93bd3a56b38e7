r"""Linear SNAP: energies and forces of molecules from the SNAP bispectrum (Thompson et al.,
J. Comput. Phys. 285, 316 (2015); the energy model of Lunghi & Sanvito, Sci. Adv. 2020, SI,
../shared/papers/lunghi-sanvito-2020-covariant-ridge-pso.md).

Model (energies in eV, distances in Angstrom)
---------------------------------------------

.. math::

    E = \sum_i \left(\beta_{s_i} \cdot \mathbf B_i + \beta^0_{s_i}\right)
      = \sum_t \left(\beta_t \cdot \mathbf X_t + \beta^0_t\, n_t\right),
    \qquad \mathbf X_t = \sum_{i:\, s_i = t} \mathbf B_i,

with B_i the bispectrum components of atom i (the descriptor's settings, bzeroflag etc.), s_i
its species, n_t the number of atoms of species t, and one coefficient vector beta_t and one
constant beta^0_t per species.  Forces are the exact gradient of the same linear model,

.. math::

    F_{j\alpha} = -\frac{\partial E}{\partial r_{j\alpha}}
               = \sum_t \beta_t \cdot \Big(-\frac{\partial \mathbf X_t}{\partial r_{j\alpha}}\Big),

with ``-dX_t/dr`` from LAMMPS ``compute snad/atom``
(:meth:`molmag.descriptors.bispectrum.SNAPDescriptor.compute_snap_design`).

Offsets.  molmag's energies are total GFN2-xTB energies (large and negative).  Per-species
reference energies e0_t come first from a least-squares fit of E on the counts n_t (the
minimum-norm solution when the compositions do not determine them, e.g. one composition:
then e0 spreads the mean energy over the species), and the ridge model fits the remainder
E - sum_t n_t e0_t; the n_t stay columns of the ridge design so that it can correct e0.

Fit (ridge, lambda on the validation set with :func:`molmag.models.ridge.fit_ridge`, no
intercept: the force rows must not get one).  As in FitSNAP, the rows of the design matrix are
weighted: for the n_E structures with energies and the n_F force components (over all
structures that have forces),

.. math::

    L(\beta) = \frac{1}{n_E} \sum_n \Big(\frac{\hat E_n - E_n}{N_n}\Big)^2
             + \frac{w_F^2}{n_F} \sum_{n, j, \alpha} (\hat F_{nj\alpha} - F_{nj\alpha})^2
             + \lambda \lVert \tilde\beta \rVert^2 ,

i.e. energy rows are per-atom energies (eV/atom) scaled by 1/sqrt(n_E), force rows
(eV/Angstrom) are scaled by ``force_weight`` w_F / sqrt(n_F) (w_F in Angstrom: w_F = 0.1 makes
an RMS force error of 0.1 eV/A weigh as much as an RMS energy error of 10 meV/atom), and
beta-tilde are the coefficients of the RMS-scaled columns.  ``force_weight=0`` or targets
without forces fit energies only.  The same weighting defines the validation RMSE that chooses
lambda.

Pair term.  With ``pair_cutoff`` r_c > 0 the model adds the learned element-pair term of
:mod:`molmag.descriptors.pair_basis`, E_pair = sum_{i<j} sum_k c_{t_i t_j, k} phi_k(r_ij)
(``pair_basis`` K radial Gaussians per pair of species, cosine cutoff at r_c), whose energy
and force columns join the design and are fitted in the same ridge: E = E_SNAP + E_pair.
Below the shortest training distance of a pair type it continues linearly and a ZBL-based
repulsive wall W joins (zero on every training structure, so not part of the fit; see
:mod:`molmag.descriptors.pair_basis`).  LAMMPS runs it as ``pair_style hybrid/overlay snap
table``.
"""

from __future__ import annotations

import time
from typing import Any, Sequence, cast

import numpy as np
from ase import Atoms

from molmag.descriptors.pair_basis import PairBasis
from molmag.models.base import Log, check_species
from molmag.models.invariant_ridge import check_descriptor, descriptor_numbers
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge

#: Default weight of the force rows (Angstrom); see the module docstring.
DEFAULT_FORCE_WEIGHT = 0.1
#: Default pair term: cutoff (Å; 0 = none: the template of ``molmag train`` ships 5 Å, the
#: campaign and ``molmag learn`` keep SNAP alone, DEVELOPERS.md "Potentials for MD") and
#: Gaussians per pair of species.
DEFAULT_PAIR_CUTOFF = 0.0
DEFAULT_PAIR_BASIS = 12
#: Designs with more elements than this (rows x columns) are fitted from the normal
#: equations streamed over the frames (:func:`fit_ridge_gram`), not one SVD of the matrix.
GRAM_ABOVE = 4e7


def fit_ridge_gram(g: dict, gv: dict | None, lambdas: Sequence[float]) -> RidgeFit:
    """Ridge fit from normal equations: the same solution as
    :func:`molmag.models.ridge.fit_ridge` with ``intercept=False`` (columns scaled by their
    RMS, lambda on the scaled coefficients, the validation RMSE of the weighted rows), from
    X^T X = V diag(w) V^T of the scaled design: a(lambda) = V diag(1/(w + lambda)) V^T X^T y.
    ``g``/``gv``: dicts of :meth:`SNAPEnergyRidge._gram`."""
    n = g["n_rows"]
    diag = np.diag(g["xtx"]).copy()
    scale = np.sqrt(np.maximum(diag, 0.0) / n)
    big = float(np.sqrt(diag.max(initial=0.0) / n))
    scale[scale < 1e-12 * max(1.0, big)] = 1.0
    gs = g["xtx"] / np.outer(scale, scale)
    bs = g["xty"] / scale
    w, v = np.linalg.eigh(gs)
    w = np.clip(w, 0.0, None)
    vtb = v.T @ bs
    curve: list[tuple[float, float]] = []
    best: tuple[float, RidgeFit] | None = None
    for lam in lambdas:
        coef = v @ (vtb / (w + lam))
        fit = RidgeFit(coef[:, None], np.zeros(1), np.zeros(len(scale)), scale, float(lam),
                       None, [])
        rmse = np.nan
        if gv is not None and gv["n_rows"]:
            c = coef / scale
            sse = float(c @ gv["xtx"] @ c - 2.0 * c @ gv["xty"] + gv["yty"])
            rmse = float(np.sqrt(max(sse, 0.0) / gv["n_rows"]))
        curve.append((float(lam), rmse))
        if best is None or (np.isfinite(rmse) and rmse < best[0]):
            best = (rmse, fit)
    if best is None:
        raise ValueError("fit_ridge_gram needs at least one lambda")
    fit = best[1]
    fit.val_rmse = best[0] if np.isfinite(best[0]) else None
    fit.curve = curve
    return fit


def shared_pair_basis(members: Sequence[SNAPEnergyRidge]) -> PairBasis | None:
    """The pair-term basis all ``members`` share (None: no member has one); a ValueError
    where they differ (a committee's pair forces are the mean over one basis)."""
    pair = members[0].pair
    want = None if pair is None else pair.as_dict()
    if any((None if m.pair is None else m.pair.as_dict()) != want for m in members):
        raise ValueError("committee members with different pair terms")
    return pair


class SNAPEnergyRidge:
    """Linear SNAP energy/force model (module docstring).

    Hyperparameters: ``force_weight`` (Angstrom, default 0.1: weight of the force rows
    against per-atom energies), ``pair_cutoff`` (Å, default 0: no pair term) and
    ``pair_basis`` (Gaussians per pair of species, default 12) of the pair term,
    ``lambdas`` (ridge grid, default :data:`molmag.models.ridge.DEFAULT_LAMBDAS`).
    ``seed`` is accepted for the member contract; the fit is deterministic.

    ``targets``: ``{"energy": (n,) eV, "forces": list of (N_i, 3) eV/Angstrom, or None (a
    None entry skips that structure's forces)}``.  ``predict`` returns ``{"energy": (n,) eV,
    "forces": list of (N_i, 3) eV/Angstrom}``."""

    kind = "snap-energy"
    target = "energy"
    descriptor_type = "snap"

    def __init__(self, descriptor, *, seed: int = 0, force_weight: float = DEFAULT_FORCE_WEIGHT,
                 pair_cutoff: float = DEFAULT_PAIR_CUTOFF,
                 pair_basis: int = DEFAULT_PAIR_BASIS,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS):
        self.descriptor = descriptor
        self.seed = int(seed)
        self.force_weight = float(force_weight)
        if self.force_weight < 0:
            raise ValueError(f"force_weight must be >= 0, got {force_weight}")
        self.lambdas = tuple(float(x) for x in lambdas)
        self.type_numbers = descriptor_numbers(descriptor)
        self.pair_cutoff = float(pair_cutoff)
        self.pair_basis = int(pair_basis)
        if self.pair_cutoff < 0:
            raise ValueError(f"pair_cutoff must be >= 0 (0: no pair term), got {pair_cutoff}")
        self.pair: PairBasis | None = (PairBasis(self.type_numbers, self.pair_cutoff,
                                                 self.pair_basis)
                                       if self.pair_cutoff > 0 else None)
        self.species: list[int] = []
        self.atom_energies: np.ndarray | None = None     # (T,) eV, per descriptor species
        self.fit_: RidgeFit | None = None
        self.info: dict[str, Any] = {}

    # -- design -----------------------------------------------------------------------------
    def _counts(self, atoms: Atoms) -> np.ndarray:
        return np.array([np.sum(atoms.numbers == z) for z in self.type_numbers], float)

    def _energy_row(self, atoms: Atoms) -> np.ndarray:
        """[n_t (T), X_t (T*F), pair sums (P*K)] from the per-atom descriptor (no
        derivatives)."""
        b = np.asarray(self.descriptor.compute(atoms), float)
        x = np.zeros((len(self.type_numbers), b.shape[1]))
        for t, z in enumerate(self.type_numbers):
            sel = atoms.numbers == z
            if sel.any():
                x[t] = b[sel].sum(axis=0)
        row = np.concatenate([self._counts(atoms), x.ravel()])
        if self.pair is not None:
            row = np.concatenate([row, self.pair.design(atoms.numbers, atoms.positions,
                                                        forces=False)[0]])
        return row

    def _rows(self, atoms: Atoms, forces: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Energy row (T + T*F,) and, with ``forces``, force rows (3N, T + T*F) = -d(row)/dr."""
        if not forces:
            return self._energy_row(atoms), None
        er, fr = self.descriptor.compute_snap_design(atoms)
        nt = len(self.type_numbers)
        fr = fr.reshape(3 * len(atoms), -1)
        er, fr = (np.concatenate([self._counts(atoms), er]),
                  np.concatenate([np.zeros((len(fr), nt)), fr], axis=1))
        if self.pair is not None:
            pe, pf = self.pair.design(atoms.numbers, atoms.positions)
            er, fr = np.concatenate([er, pe]), np.concatenate([fr, pf], axis=1)
        return er, fr

    @staticmethod
    def _forces_list(forces, n: int) -> list | None:
        if forces is None:
            return None
        forces = list(forces)
        if len(forces) != n:
            raise ValueError(f"{len(forces)} force arrays for {n} structures")
        return forces

    def _weighted(self, frames, energies, forces):
        """Weighted design matrix and targets (module docstring) of one set; ``forces`` None
        (or force_weight 0) gives energy rows only."""
        energies = np.asarray(energies, float).reshape(-1)
        if len(energies) != len(frames):
            raise ValueError(f"{len(energies)} energies for {len(frames)} structures")
        use_f = forces is not None and self.force_weight > 0
        xe, ye, xf, yf = [], [], [], []
        for k, (a, e) in enumerate(zip(frames, energies)):
            f_k = None if not use_f else forces[k]
            er, fr = self._rows(a, f_k is not None)
            n_at = len(a)
            xe.append(er / n_at)
            ye.append((e - self._counts(a) @ self.atom_energies) / n_at)
            if f_k is not None:
                f_k = np.asarray(f_k, float)
                if f_k.shape != (n_at, 3):
                    raise ValueError(f"forces of structure {k} have shape {f_k.shape}, "
                                     f"expected ({n_at}, 3)")
                xf.append(fr)
                yf.append(f_k.reshape(-1))
        x = np.stack(xe) / np.sqrt(len(xe))
        y = np.asarray(ye) / np.sqrt(len(ye))
        n_f = 0
        if xf:
            xf_ = np.concatenate(xf)
            n_f = len(xf_)
            w = self.force_weight / np.sqrt(n_f)
            x = np.concatenate([x, w * xf_])
            y = np.concatenate([y, w * np.concatenate(yf)])
        return x, y, n_f

    def descriptor_columns(self) -> int:
        """Columns of the design row: T counts + T * F descriptor sums (+ the pair term's)."""
        t = len(self.type_numbers)
        return (t + t * int(self.descriptor.n_components())
                + (self.pair.n_columns if self.pair is not None else 0))

    def _gram(self, frames, energies, forces, chunk: int = 32) -> dict:
        """The weighted design of :meth:`_weighted` as normal equations, accumulated over
        chunks of frames without ever holding the whole matrix: ``{"xtx" (P, P), "xty" (P,),
        "yty", "n_rows", "n_f"}`` (the same weights: energy rows / sqrt(n_E), force rows
        force_weight / sqrt(n_F))."""
        energies = np.asarray(energies, float).reshape(-1)
        if len(energies) != len(frames):
            raise ValueError(f"{len(energies)} energies for {len(frames)} structures")
        use_f = forces is not None and self.force_weight > 0
        n_e = len(frames)
        n_f = 0
        if use_f:
            n_f = 3 * sum(len(a) for a, f in zip(frames, forces) if f is not None)
        p = self.descriptor_columns()
        xtx = np.zeros((p, p))
        xty = np.zeros(p)
        yty = 0.0
        we = 1.0 / np.sqrt(n_e)
        wf = self.force_weight / np.sqrt(n_f) if n_f else 0.0
        for c0 in range(0, len(frames), chunk):
            xs, ys = [], []
            for k in range(c0, min(c0 + chunk, len(frames))):
                a = frames[k]
                f_k = forces[k] if use_f else None
                er, fr = self._rows(a, f_k is not None)
                n_at = len(a)
                xs.append(we * er[None, :] / n_at)
                ys.append(np.atleast_1d(we * (energies[k] - self._counts(a) @ self.atom_energies)
                                        / n_at))
                if f_k is not None:
                    f_k = np.asarray(f_k, float)
                    if f_k.shape != (n_at, 3):
                        raise ValueError(f"forces of structure {k} have shape {f_k.shape}, "
                                         f"expected ({n_at}, 3)")
                    assert fr is not None   # _rows gives force rows when asked for them
                    xs.append(wf * fr)
                    ys.append(wf * f_k.reshape(-1))
            x = np.concatenate(xs)
            y = np.concatenate(ys)
            xtx += x.T @ x
            xty += x.T @ y
            yty += float(y @ y)
        return {"xtx": xtx, "xty": xty, "yty": yty, "n_rows": n_e + n_f, "n_f": n_f}

    # -- member contract --------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: dict[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: dict[str, Any] | None = None,
            log: Log | None = None) -> SNAPEnergyRidge:
        t0 = time.perf_counter()
        frames = list(frames)
        if not frames:
            raise ValueError("no training structures")
        check_species(frames, self.type_numbers, self.kind + " (descriptor)")
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        energies = np.asarray(targets["energy"], float).reshape(-1)
        if len(energies) != len(frames):
            raise ValueError(f"{len(energies)} energies for {len(frames)} structures")
        counts = np.stack([self._counts(a) for a in frames])
        self.atom_energies = np.linalg.lstsq(counts, energies, rcond=None)[0]
        forces = self._forces_list(targets.get("forces"), len(frames))
        val_frames = list(val_frames)
        if self.pair is not None:
            # the pair term's data range: W is zero on every structure of the fit
            self.pair.fit_range([(a.numbers, a.positions) for a in frames + val_frames])
        if val_frames:
            if val_targets is None:
                raise ValueError("val_frames given without val_targets")
            check_species(val_frames, self.species, self.kind)
        use_f = forces is not None and self.force_weight > 0
        n_rows = len(frames) * (1 + (3 * max(len(a) for a in frames) if use_f else 0))
        if n_rows * self.descriptor_columns() > GRAM_ABOVE:
            # large designs (quadratic SNAP): normal equations, streamed frame by frame
            g = self._gram(frames, energies, forces)
            n_f = g["n_f"]
            gv = None
            if val_frames:
                assert val_targets is not None   # checked above
                vf = (self._forces_list(val_targets.get("forces"), len(val_frames)) if n_f
                      else None)
                gv = self._gram(val_frames, val_targets["energy"], vf)
            self.fit_ = fit_ridge_gram(g, gv, self.lambdas)
        else:
            x, y, n_f = self._weighted(frames, energies, forces)
            xv = yv = None
            if val_frames:
                assert val_targets is not None   # checked above
                # validation forces only when the training set has them: the validation
                # RMSE is then the same weighted loss as the training one
                vf = (self._forces_list(val_targets.get("forces"), len(val_frames)) if n_f
                      else None)
                xv, yv, _ = self._weighted(val_frames, val_targets["energy"], vf)
            self.fit_ = fit_ridge(x, y, xv, yv, self.lambdas, intercept=False)
        self.info = {"n_train": len(frames), "n_force_rows": int(n_f), "lambda": self.fit_.lam,
                     "val_weighted_rmse": self.fit_.val_rmse,
                     "fit_seconds": time.perf_counter() - t0}
        if log is not None:
            log(f"{self.kind}: {len(frames)} structures, {n_f} force components, "
                f"lambda = {self.fit_.lam:.3g}, weighted validation RMSE = "
                f"{self.fit_.val_rmse if self.fit_.val_rmse is not None else float('nan'):.4g} "
                f"({self.info['fit_seconds']:.1f} s)")
        return self

    @property
    def coefficients(self) -> np.ndarray:
        """The coefficients (T + T*F [+ P*K],) of the unscaled design row: residual energy
        E - n.e0 = row @ coefficients (count columns first, then beta_t blocks, then the pair
        term's)."""
        if self.fit_ is None:
            raise RuntimeError("the model is not fitted")
        return self.fit_.coef[:, 0] / self.fit_.scale

    def pair_coefficients(self) -> np.ndarray:
        """(T, 1 + F) coefficients of the same model as a LAMMPS ``pair_style snap``
        potential (eV), one row per descriptor species: beta0_t = e0_t + c_t (the reference
        energy plus the fitted count coefficient), then beta_t (see
        :func:`molmag.descriptors.bispectrum.write_pair_snap_files`)."""
        if self.fit_ is None or self.atom_energies is None:
            raise RuntimeError("the model is not fitted")
        t = len(self.type_numbers)
        c = self.coefficients
        beta0 = np.asarray(self.atom_energies, float) + c[:t]
        nf = t * int(self.descriptor.n_components())
        return np.concatenate([beta0[:, None], c[t:t + nf].reshape(t, -1)], axis=1)

    def pair_term_coefficients(self) -> np.ndarray | None:
        """(P, K) coefficients (eV) of the pair term (:class:`PairBasis` column order), or
        None for a model without one."""
        if self.fit_ is None:
            raise RuntimeError("the model is not fitted")
        if self.pair is None:
            return None
        t = len(self.type_numbers)
        nf = t * int(self.descriptor.n_components())
        return self.coefficients[t + nf:].reshape(len(self.pair.pairs), self.pair.n_basis)

    @classmethod
    def committee_forces(cls, members: Sequence[SNAPEnergyRidge], atoms: Atoms,
                         positions: np.ndarray) -> np.ndarray:
        """Mean forces of ``members`` (n, N, 3), eV/Å, at the frames ``positions`` (n, N, 3)
        Å of the molecule ``atoms`` (its elements and atom order): the committee-mean
        ``forces`` of :meth:`molmag.models.committee.Committee.predict`, to rounding.

        The model is linear in its coefficients, so the mean of the members' forces is the
        force of the mean coefficients; that one potential runs as LAMMPS ``pair_style
        snap`` on every frame at once
        (:meth:`~molmag.descriptors.bispectrum.SNAPDescriptor.pair_snap_forces`): one LAMMPS
        run with adjoint forces instead of the full descriptor derivatives of every frame; the
        pair term's forces (also linear) are added from :class:`PairBasis`."""
        members = list(members)
        if not members:
            raise ValueError("no members")
        desc = members[0].descriptor
        settings = desc.settings
        for m in members:
            if m.descriptor is not desc and m.descriptor.settings != settings:
                raise ValueError("committee members with different descriptors")
            check_species([atoms], m.species, cls.kind)
        coef = np.mean([m.pair_coefficients() for m in members], axis=0)
        forces = desc.pair_snap_forces(atoms, positions, coef)
        pair = shared_pair_basis(members)
        if pair is not None:
            # each member's pair term has its own data range r_m: the mean of their forces
            forces = forces + np.mean(
                [cast(PairBasis, m.pair).energy_forces(
                    atoms.numbers, positions, m.pair_term_coefficients())[1]
                 for m in members], axis=0)
        return forces

    def predict(self, frames: Sequence[Atoms], forces: bool = True) -> dict[str, Any]:
        """``{"energy": (n,) eV, "forces": list of (N_i, 3) eV/Angstrom}`` (no "forces" key
        with ``forces=False``, which skips the derivatives and is faster)."""
        frames = list(frames)
        if self.fit_ is None:
            raise RuntimeError("the model is not fitted")
        check_species(frames, self.species, self.kind)
        beta = self.coefficients
        e_out = np.empty(len(frames))
        f_out = []
        for k, a in enumerate(frames):
            er, fr = self._rows(a, forces)
            e_out[k] = self._counts(a) @ self.atom_energies + er @ beta
            if forces:
                f_out.append((fr @ beta).reshape(len(a), 3))
            if self.pair is not None:   # the wall below the data (zero inside them)
                w_e, w_f = self.pair.energy_forces(a.numbers, a.positions, None)
                e_out[k] += w_e[0]
                if forces:
                    f_out[-1] = f_out[-1] + w_f[0]
        out: dict[str, Any] = {"energy": e_out}
        if forces:
            out["forces"] = f_out
        return out

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        if self.fit_ is None or self.atom_energies is None:
            raise RuntimeError("the model is not fitted")
        meta = {"kind": self.kind, "target": self.target,
                "descriptor_species": list(self.descriptor.settings.species),
                "n_components": int(self.descriptor.n_components()),
                "force_weight": self.force_weight, "lambdas": list(self.lambdas),
                "pair_cutoff": self.pair_cutoff, "pair_basis": self.pair_basis,
                "species": [int(z) for z in self.species], "seed": self.seed,
                "info": {k: v for k, v in self.info.items()}}
        arrays = {**self.fit_.as_arrays("fit_"), "atom_energies": self.atom_energies}
        if self.pair is not None:
            arrays["pair_r_min"] = self.pair.r_min
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor, meta: dict, arrays) -> SNAPEnergyRidge:
        check_descriptor(descriptor, meta, cls.kind)
        # files written before the pair term existed have none
        m = cls(descriptor, seed=meta.get("seed", 0), force_weight=meta["force_weight"],
                pair_cutoff=meta.get("pair_cutoff", 0.0),
                pair_basis=meta.get("pair_basis", DEFAULT_PAIR_BASIS), lambdas=meta["lambdas"])
        m.species = [int(z) for z in meta["species"]]
        m.fit_ = RidgeFit.from_arrays(arrays, "fit_")
        m.atom_energies = np.asarray(arrays["atom_energies"], float)
        if m.pair is not None:
            m.pair.r_min = np.asarray(arrays["pair_r_min"], float)
        m.info = dict(meta.get("info", {}))
        return m


__all__ = ["SNAPEnergyRidge", "DEFAULT_FORCE_WEIGHT", "DEFAULT_PAIR_CUTOFF", "DEFAULT_PAIR_BASIS",
           "GRAM_ABOVE", "fit_ridge_gram"]
