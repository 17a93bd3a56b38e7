"""GFN2-xTB through tblite: energies, forces, charges, dipoles, D4 polarisabilities, relaxation.

:class:`XTBCalculator` is an ASE calculator over ``tblite.ase.TBLite`` (the tblite project's
own ASE interface) that adds what a labelling run needs:

* charge and multiplicity from the calculator parameters or ``atoms.info["charge"]`` /
  ``atoms.info["multiplicity"]`` (what molmag's builders and datasets set);
* lanthanides: GFN2-xTB keeps the 4f shell in the core, so the unpaired 4f electrons are not
  part of the xTB wavefunction.  A complex with a lanthanide runs with the lowest multiplicity
  of its valence electrons (1 for a Dy(III) complex with closed-shell ligands), whatever its
  true multiplicity (6 for Dy(III), S = 5/2); see :func:`xtb_spin`;
* one retry of a failed SCF with other settings (:data:`RETRY_SETTINGS`: EEQ guess, stronger
  damping, more iterations; same Hamiltonian and electronic temperature); if that fails too,
  :class:`XTBError` says why, with both attempts' messages;
* ``polarizabilities``: static atomic dipole polarisabilities of the D4 model (dftd4), with the
  xTB charge state, in Angstrom^3 (1 bohr^3 = 0.148185 Angstrom^3).
* ``atomic_dipoles``: magnitudes |mu_A| of GFN2-xTB's atomic dipole moments (the cumulative
  atomic multipoles of its anisotropic electrostatics, read from tblite's ``xtbml``
  post-processing, ``dipm_A``), e*Angstrom; one extra single point at the same geometry.

Units are ASE's: energy eV, forces eV/Angstrom, dipole e*Angstrom, charges e (Mulliken charges of
GFN2-xTB).

:func:`relax` optimises a structure with an ASE optimiser and optional constraints, and raises
:class:`RelaxationError` (naming the structure) when the SCF fails or it does not converge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.units import Bohr

METHOD = "GFN2-xTB"
#: Settings of the second attempt when the first SCF fails (tblite.ase.TBLite keywords).  The
#: Hamiltonian and electronic temperature stay the same, so a retried result is the same
#: quantity as a first-time one: only the SCF path changes (EEQ guess, stronger damping,
#: more iterations).
RETRY_SETTINGS: dict[str, Any] = {"mixer_damping": 0.1, "max_iterations": 1000, "guess": "eeq"}
LANTHANIDES = frozenset(range(57, 72))


class XTBError(RuntimeError):
    """A GFN2-xTB calculation that failed (after the retry)."""


class RelaxationError(RuntimeError):
    """A geometry optimisation that failed or did not converge."""


def tblite_version() -> str:
    try:
        from importlib.metadata import version
        return version("tblite")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


def xtb_spin(atoms: Atoms, charge: int, multiplicity: int | None) -> tuple[int, int]:
    """(charge, number of unpaired electrons ``uhf``) for tblite.

    Without lanthanides, ``uhf = multiplicity - 1`` (default: the lowest the electron count
    allows).  With lanthanides, GFN2-xTB treats 4f as core, so the unpaired f electrons are not
    xTB electrons: ``uhf`` is the parity of the valence electrons left after removing them,
    i.e. 0 for Ln(III) complexes with closed-shell ligands (Dy(III): multiplicity 1 in xTB)."""
    nelec = int(np.sum(atoms.numbers)) - int(charge)
    has_ln = any(int(z) in LANTHANIDES for z in atoms.numbers)
    if multiplicity is None or has_ln:
        if has_ln:
            # f-in-core: the f electrons leave with the core; the parity that remains is what
            # xTB sees.  Ln(III) 4f^n: n = Z - 57 (La = 4f^0) -> removes n electrons.
            n_f = sum(int(z) - 57 for z in atoms.numbers if int(z) in LANTHANIDES)
            return int(charge), (nelec - n_f) % 2
        return int(charge), nelec % 2
    uhf = int(multiplicity) - 1
    if uhf < 0 or uhf % 2 != nelec % 2:
        raise XTBError(f"{atoms.get_chemical_formula()}: multiplicity {multiplicity} is "
                       f"impossible with {nelec} electrons (charge {charge:+d})")
    return int(charge), uhf


class XTBCalculator(Calculator):
    """ASE calculator for GFN2-xTB (tblite) with a retry, D4 polarisabilities and f-in-core spin.

    Properties: ``energy``/``free_energy`` (eV), ``forces`` (eV/Angstrom), ``charges`` (e),
    ``dipole`` (e*Angstrom), ``polarizabilities`` (Angstrom^3, D4), ``atomic_dipoles``
    (e*Angstrom, |mu_A| of the GFN2-xTB atomic dipoles).  Parameters: ``charge``,
    ``multiplicity`` (default from ``atoms.info``), ``method`` ("GFN2-xTB"), ``accuracy``,
    ``electronic_temperature`` (K), ``max_iterations``, ``retry`` (True).

    After a calculation ``self.attempts`` lists the settings tried and the error of each
    failure; ``self.retried`` tells whether the result came from the second attempt.
    """

    implemented_properties = ["energy", "free_energy", "forces", "charges", "dipole",
                              "polarizabilities", "atomic_dipoles"]
    default_parameters = {"method": METHOD, "charge": None, "multiplicity": None,
                          "accuracy": 1.0, "electronic_temperature": 300.0,
                          "max_iterations": 250, "retry": True}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tb: Any = None
        self._tb_key: Any = None
        self._work: Atoms | None = None
        self.attempts: list[dict] = []
        self.retried = False

    def _charge_spin(self, atoms: Atoms) -> tuple[int, int]:
        p = self.parameters
        charge = p.charge if p.charge is not None else atoms.info.get("charge", 0)
        mult = p.multiplicity if p.multiplicity is not None else atoms.info.get("multiplicity")
        return xtb_spin(atoms, int(charge), None if mult is None else int(mult))

    def _tblite(self, settings: dict, charge: int, uhf: int):
        from tblite.ase import TBLite

        key = (tuple(sorted(settings.items())), charge, uhf)
        if self._tb is None or self._tb_key != key:
            p = self.parameters
            base = {"method": p.method, "accuracy": p.accuracy,
                    "electronic_temperature": p.electronic_temperature,
                    "max_iterations": p.max_iterations}
            self._tb = TBLite(**{**base, **settings}, charge=charge,
                              multiplicity=uhf + 1, verbosity=0)
            self._tb_key = key
            self._work = None
        return self._tb

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        charge, uhf = self._charge_spin(atoms)
        tries = [{}] + ([RETRY_SETTINGS] if self.parameters.retry else [])
        self.attempts, self.retried, errors = [], False, []
        for k, settings in enumerate(tries):
            tb = self._tblite(settings, charge, uhf)
            # Same atoms as the previous call (a relaxation or MD step): only the positions
            # changed, so tblite restarts the SCF from the previous wavefunction.
            same = (self._work is not None and tb.atoms is not None
                    and np.array_equal(self._work.numbers, atoms.numbers))
            if same:
                self._work.positions = atoms.positions
                changes = ["positions"]
            else:
                self._work = Atoms(numbers=atoms.numbers, positions=atoms.positions)
                changes = list(all_changes)
            try:
                tb.calculate(self._work, ["energy", "forces", "charges", "dipole"], changes)
                res = tb.results
                if not np.isfinite(res["energy"]) or not np.all(np.isfinite(res["forces"])):
                    raise CalculationFailed("non-finite energy or forces")
            except (CalculationFailed, RuntimeError, ValueError) as exc:
                msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                errors.append(msg)
                self.attempts.append({"settings": settings, "error": msg})
                self._tb = None  # a failed tblite object is not reused
                self._work = None
                continue
            self.attempts.append({"settings": settings, "error": None})
            self.retried = k > 0
            self.results = {"energy": float(res["energy"]), "free_energy": float(res["energy"]),
                            "forces": np.array(res["forces"]), "charges": np.array(res["charges"]),
                            "dipole": np.array(res["dipole"])}
            break
        else:
            raise XTBError(f"GFN2-xTB failed for {atoms.get_chemical_formula()} (charge "
                           f"{charge:+d}, {uhf} unpaired): " + " | ".join(
                               f"attempt {i + 1}: {e}" for i, e in enumerate(errors)))
        if "polarizabilities" in properties:
            self.results["polarizabilities"] = d4_polarizabilities(atoms, charge)
        if "atomic_dipoles" in properties:
            used = tries[-1] if self.retried else {}
            self.results["atomic_dipoles"] = xtb_atomic_dipoles(
                atoms, charge, uhf, accuracy=self.parameters.accuracy,
                electronic_temperature=self.parameters.electronic_temperature,
                max_iterations=int(used.get("max_iterations", self.parameters.max_iterations)))

    def settings(self) -> dict:
        """What a provenance record needs to repeat the calculation."""
        p = self.parameters
        out = {"method": p.method, "accuracy": p.accuracy,
               "electronic_temperature_K": p.electronic_temperature,
               "max_iterations": p.max_iterations}
        if self.retried:
            out["retry_settings"] = dict(RETRY_SETTINGS)
        return out


def xtb_atomic_dipoles(atoms: Atoms, charge: int = 0, uhf: int = 0, *, accuracy: float = 1.0,
                       electronic_temperature: float = 300.0,
                       max_iterations: int = 250) -> np.ndarray:
    """|mu_A| (e*Angstrom) of the GFN2-xTB atomic dipole moments of each atom.

    GFN2-xTB expands the density in atomic multipoles (charges, dipoles, quadrupoles) for its
    anisotropic electrostatics; tblite's ``xtbml`` post-processing returns the magnitude of
    each atom's dipole, ``dipm_A`` (e*bohr), converted here with 1 bohr = 0.529177 Angstrom.
    The closest thing GFN2-xTB has to a LoProp atomic dipole."""
    from tblite.interface import Calculator as TBCalculator

    try:
        calc = TBCalculator(METHOD, atoms.numbers, atoms.positions / Bohr, charge=float(charge),
                            uhf=int(uhf))
        calc.set("verbosity", 0)
        calc.set("accuracy", float(accuracy))
        calc.set("temperature", float(electronic_temperature) * 3.166808578545117e-06)
        calc.set("max-iter", int(max_iterations))
        calc.add("xtbml")
        res = calc.singlepoint()
        dip = np.asarray(res.get("post-processing-dict")["dipm_A"], dtype=float)
    except Exception as exc:
        raise XTBError(f"GFN2-xTB atomic dipoles failed for {atoms.get_chemical_formula()}: "
                       f"{str(exc).strip() or type(exc).__name__}") from None
    if dip.shape != (len(atoms),):
        raise XTBError(f"GFN2-xTB atomic dipoles for {atoms.get_chemical_formula()}: expected "
                       f"{len(atoms)} values, tblite gave shape {dip.shape}")
    return dip * Bohr


def d4_polarizabilities(atoms: Atoms, charge: int = 0) -> np.ndarray:
    """Static atomic dipole polarisabilities alpha_i(0) of the D4 model (dftd4), Angstrom^3.

    D4 scales its reference polarisabilities by the atom's coordination number and EEQ
    charge in the molecule with total ``charge``; dftd4 returns bohr^3."""
    from dftd4.interface import DispersionModel

    try:
        model = DispersionModel(atoms.numbers, atoms.positions / Bohr, charge=float(charge))
        alpha = np.asarray(model.get_properties()["polarizabilities"], dtype=float)
    except Exception as exc:
        raise XTBError(f"D4 polarisabilities failed for {atoms.get_chemical_formula()}: "
                       f"{exc}") from None
    return alpha * Bohr**3


def dftd4_version() -> str:
    try:
        from importlib.metadata import version
        return version("dftd4")
    except Exception:  # pragma: no cover
        return "unknown"


def singlepoint(atoms: Atoms, properties: Sequence[str] = ("energy", "forces"), *,
                charge: int | None = None, multiplicity: int | None = None, **settings) -> dict:
    """GFN2-xTB results of one structure as a dict (see :class:`XTBCalculator`)."""
    calc = XTBCalculator(charge=charge, multiplicity=multiplicity, **settings)
    calc.calculate(atoms, list(properties))
    out = {k: calc.results[k] for k in properties}
    out["_settings"] = calc.settings()
    return out


@dataclass
class RelaxResult:
    atoms: Atoms
    energy: float          # eV
    fmax: float            # eV/Angstrom, largest residual force on the free atoms
    steps: int
    converged: bool
    energies: list[float] = field(default_factory=list)


_OPTIMIZERS = ("BFGS", "LBFGS", "FIRE", "BFGSLineSearch")


def relax(atoms: Atoms, *, calculator: Calculator | None = None, fmax: float = 0.05,
          steps: int = 500, optimizer: str = "BFGS", constraints=None,
          name: str | None = None, require_convergence: bool = True) -> RelaxResult:
    """Optimise ``atoms`` (a copy is relaxed; ``info`` is kept) with an ASE optimiser.

    ``calculator`` defaults to :class:`XTBCalculator` (charge/multiplicity from ``atoms.info``);
    ``constraints`` are ASE constraints (e.g. ``FixAtoms(indices=...)``) applied during the
    optimisation only.  Converged means max |F| < ``fmax`` (eV/Angstrom) within ``steps``.
    Raises :class:`RelaxationError` naming the structure if the SCF fails, the geometry falls
    apart into non-finite numbers, or (with ``require_convergence``) it does not converge."""
    import ase.optimize as opt

    label = name or atoms.get_chemical_formula()
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(_OPTIMIZERS)}")
    work = atoms.copy()
    work.info = dict(atoms.info)
    work.set_constraint(constraints)
    work.calc = calculator if calculator is not None else XTBCalculator()
    energies: list[float] = []
    dyn = getattr(opt, optimizer)(work, logfile=None)
    dyn.attach(lambda: energies.append(float(work.get_potential_energy())), interval=1)
    try:
        converged = bool(dyn.run(fmax=fmax, steps=steps))
    except (XTBError, CalculationFailed) as exc:
        raise RelaxationError(f"relaxation of {label} failed at step {dyn.nsteps}: {exc}") from None
    f = work.get_forces()
    fm = float(np.sqrt((f**2).sum(axis=1)).max()) if len(work) else 0.0
    if not np.all(np.isfinite(work.positions)):
        raise RelaxationError(f"relaxation of {label} produced non-finite coordinates")
    if require_convergence and not converged:
        raise RelaxationError(f"relaxation of {label} did not converge in {steps} steps "
                              f"(max force {fm:.3f} eV/A > {fmax} eV/A)")
    e = float(work.get_potential_energy())
    out = Atoms(numbers=work.numbers, positions=work.positions, info=dict(atoms.info))
    return RelaxResult(out, e, fm, int(dyn.nsteps), converged, energies)


__all__ = ["METHOD", "RETRY_SETTINGS", "XTBError", "RelaxationError", "XTBCalculator",
           "xtb_spin", "d4_polarizabilities", "singlepoint", "relax", "RelaxResult",
           "tblite_version", "dftd4_version"]
