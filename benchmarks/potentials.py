"""ML potentials for MD on [Co(pdms)2]2- (issue 17, item 1): reference MD data and a comparison.

Two stages, each rerunnable:

``python benchmarks/potentials.py data --out DIR [--scale 1.0]``
    GFN2-xTB (tblite, one thread) Langevin MD of the relaxed [Co(pdms)2]2- (ASE Langevin,
    0.5 fs, friction 0.01/fs, Maxwell-Boltzmann start), one frame every ``stride`` steps after
    ``equil`` steps of equilibration, each frame stored with its xTB energy and forces:

    ==========  =====  =======  ======  =======  ========================================
    run         T (K)  steps    stride  seed     use
    ==========  =====  =======  ======  =======  ========================================
    train100    100    2600     5       101      training/validation
    train250    250    2200     5       102      training/validation (coverage)
    test100     100    1400     20      103      held-out test (independent trajectory)
    ==========  =====  =======  ======  =======  ========================================

    Every run appends to ``DIR/<run>.extxyz`` and checkpoints positions, momenta and the
    thermostat's RNG state after every stored frame (``DIR/<run>.ckpt.json``): kill -9 and
    rerun continues where it stopped.  When all runs are complete the frames go into the
    molmag dataset ``DIR/md.db`` (labels ``energy``/``forces`` with GFN2-xTB provenance;
    tags ``run``, ``temperature_K``, ``step``; split ``train`` for the training runs and
    ``test`` for test100), so every later training reads them like any other dataset.

``python benchmarks/potentials.py compare --data DIR [--n-train 900] [--models ...] [--json]``
    Trains committees on the training runs (10 % validation for calibration) and prints, per
    model: n_train, force RMSE and energy RMSE on the held-out 100 K run, the coverage of the
    calibrated force spread (fraction of |error| <= 1.96 sigma), the time to train, the MD
    steps/s of the committee as an ASE calculator (53 atoms, one energy+forces call per step)
    and, for SNAP models, of LAMMPS-native Langevin (4000 steps, a frame every 20, the
    thermostat reseeded every 1000 as ``molmag md`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from molmag.training.templates import SNAP_ENERGY_DESCRIPTOR

RUNS = {  # name: (T/K, steps, stride, seed, split)
    "train100": (100.0, 2600, 5, 101, "train"),
    "train250": (250.0, 2200, 5, 102, "train"),
    "test100": (100.0, 1400, 20, 103, "test"),
}
EQUIL_STEPS = 200
TIMESTEP_FS = 0.5
FRICTION_PER_FS = 0.01


def start_structure(out: Path):
    """The relaxed [Co(pdms)2]2- (molmag's builder, GFN2-xTB, fmax 0.01 eV/A), cached."""
    import ase.io

    path = out / "start.xyz"
    if path.exists():
        return ase.io.read(path)
    from molmag.chem.builders import build

    atoms = build("co-pdms", relax=True, fmax=0.01)
    ase.io.write(path, atoms, format="extxyz")
    return ase.io.read(path)


def run_md(out: Path, name: str, scale: float = 1.0, log=print) -> int:
    """One resumable xTB Langevin run; returns the number of stored frames."""
    import ase.io
    import ase.units as u
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin

    from molmag.chem.sampling import maxwell_boltzmann
    from molmag.chem.xtb import XTBCalculator

    temp, n_steps, stride, seed, _ = RUNS[name]
    n_steps = int(round(n_steps * scale))
    traj, ckpt = out / f"{name}.extxyz", out / f"{name}.ckpt.json"
    atoms = start_structure(out)
    info = dict(atoms.info)
    rng = np.random.default_rng(seed)
    step = 0
    if ckpt.exists():
        c = json.loads(ckpt.read_text())
        atoms.positions = np.array(c["positions"])
        atoms.set_momenta(np.array(c["momenta"]))
        rng.bit_generator.state = c["rng"]
        step = int(c["step"])
        # frames written after the checkpoint (a kill between the two writes) are dropped
        if traj.exists():
            frames = [f for f in ase.io.read(traj, ":") if f.info["step"] <= step]
            ase.io.write(traj, frames, format="extxyz")
    else:
        maxwell_boltzmann(atoms, temp, rng=rng)
        if traj.exists():
            traj.unlink()
    if step >= n_steps:
        return sum(1 for _ in ase.io.iread(traj)) if traj.exists() else 0
    atoms.calc = XTBCalculator()
    dyn = Langevin(atoms, TIMESTEP_FS * u.fs, temperature_K=temp,
                   friction=FRICTION_PER_FS / u.fs, rng=rng, fixcm=False)
    t0 = time.perf_counter()
    done0 = step
    while step < n_steps:
        dyn.run(stride)
        step += stride
        if step > EQUIL_STEPS:
            f = atoms.copy()
            f.info = {**info, "step": step, "time_fs": step * TIMESTEP_FS,
                      "run": name, "temperature_target_K": temp,
                      "temperature_K": float(atoms.get_temperature())}
            f.calc = SinglePointCalculator(f, energy=atoms.get_potential_energy(),
                                           forces=atoms.get_forces())
            ase.io.write(traj, f, format="extxyz", append=True)
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step, "positions": atoms.positions.tolist(),
                                   "momenta": atoms.get_momenta().tolist(),
                                   "rng": rng.bit_generator.state}))
        os.replace(tmp, ckpt)
        if step % 100 == 0:
            rate = (step - done0) / (time.perf_counter() - t0)
            log(f"{name}: step {step}/{n_steps}, T = {atoms.get_temperature():.0f} K, "
                f"{rate:.2f} xTB steps/s")
    return sum(1 for _ in ase.io.iread(traj))


def to_dataset(out: Path) -> Path:
    """All stored frames into the molmag dataset ``out/md.db`` (idempotent)."""
    import ase.io

    from molmag.chem.xtb import METHOD, XTBCalculator, tblite_version
    from molmag.io.dataset import Dataset
    from molmag.io.provenance import Provenance
    from molmag.io.records import Record

    prov = Provenance(method=METHOD, program="tblite", version=tblite_version(),
                      parameters=XTBCalculator().settings())
    db = Dataset(str(out / "md.db"))
    records = []
    for name, (_, _, _, _, split) in RUNS.items():
        for f in ase.io.iread(out / f"{name}.extxyz"):
            e, forces = f.get_potential_energy(), f.get_forces()
            a = f.copy()
            a.calc = None
            records.append(Record(a, charge=int(f.info["charge"]),
                                  multiplicity=int(f.info["multiplicity"]), metal_index=0,
                                  split=split, labels={"energy": e, "forces": forces},
                                  provenance={"energy": prov, "forces": prov},
                                  tags={"run": name, "step": int(f.info["step"]),
                                        "temperature_K": float(f.info["temperature_target_K"])}))
    s = db.add_many(records)
    print(f"{out / 'md.db'}: {s.new} new rows, {len(db)} in all")
    return out / "md.db"


def cmd_data(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.runs or list(RUNS)
    for name in names:
        n = run_md(out, name, args.scale)
        print(f"{name}: {n} frames")
    if set(names) == set(RUNS):
        to_dataset(out)


# ---------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------
def load_split(data: Path, n_train: int | None, seed: int = 0):
    """(train, val, test) frame lists with their targets from ``data/md.db``."""
    if (data / "md.db").exists():
        from molmag.io.dataset import Dataset
        from molmag.training.data import frame_of

        rows = list(Dataset(str(data / "md.db")).select())
        pairs = [(r.split, frame_of(r), r.labels["energy"], r.labels["forces"]) for r in rows]
    else:  # runs still going: their frames so far
        import ase.io

        pairs = []
        for name, (_, _, _, _, split) in RUNS.items():
            for f in ase.io.iread(data / f"{name}.extxyz"):
                e, fr = f.get_potential_energy(), f.get_forces()
                f.calc = None
                pairs.append((split, f, e, fr))
    train = [p for p in pairs if p[0] == "train"]
    test = [p for p in pairs if p[0] == "test"]
    rng = np.random.default_rng(seed)
    train = [train[i] for i in rng.permutation(len(train))]
    n_val = max(10, len(train) // 10)
    val, train = train[:n_val], train[n_val:]
    if n_train is not None:
        train = train[:n_train]
    return [([p[1] for p in ps], {"energy": np.array([p[2] for p in ps], float),
                                  "forces": [np.asarray(p[3], float) for p in ps]})
            for ps in (train, val, test)]


def md_steps_per_s(calc, atoms, n_steps: int = 100) -> float:
    """ASE Langevin steps/s with ``calc`` (0.5 fs, 100 K), after 5 warm-up steps."""
    import ase.units as u
    from ase.md.langevin import Langevin

    a = atoms.copy()
    a.calc = calc
    dyn = Langevin(a, TIMESTEP_FS * u.fs, temperature_K=100.0, friction=FRICTION_PER_FS / u.fs,
                   rng=np.random.default_rng(0), fixcm=False)
    dyn.run(5)
    t = time.perf_counter()
    dyn.run(n_steps)
    return n_steps / (time.perf_counter() - t)


#: the element weights of the shipped SNAP energy descriptor (molmag template train)
WEIGHTS = dict(SNAP_ENERGY_DESCRIPTOR["weights"])

MODELS = {
    # name: (kind, descriptor overrides, hyper, n_members)
    "snap-linear": ("snap-energy", {}, {}, 3),
    "snap-linear-rc3.5": ("snap-energy", {"rcutfac": 3.5}, {}, 3),
    "snap-linear-rc4.0": ("snap-energy", {"rcutfac": 4.0}, {}, 3),
    "snap-2j6-rc3.5": ("snap-energy", {"rcutfac": 3.5, "twojmax": 6}, {}, 3),
    "snap-2j4-quadratic": ("snap-energy", {"twojmax": 4, "quadraticflag": True}, {}, 3),
    "snap-2j4-quadratic-rc3.5": ("snap-energy", {"twojmax": 4, "quadraticflag": True,
                                                  "rcutfac": 3.5}, {}, 3),
    "snap-2j4-quadratic-rc2.8": ("snap-energy", {"twojmax": 4, "quadraticflag": True,
                                                  "rcutfac": 2.8}, {}, 3),
    "snap-2j4-quadratic-rc2.6": ("snap-energy", {"twojmax": 4, "quadraticflag": True,
                                                  "rcutfac": 2.6}, {}, 3),
    "snap-2j4-quadratic-fw1": ("snap-energy", {"twojmax": 4, "quadraticflag": True},
                               {"force_weight": 1.0}, 3),
    "snap-2j4-quadratic-weights": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "weights": WEIGHTS}, {}, 3),
    "snap-2j4-quadratic-wZ": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 0.59, "O": 0.30, "N": 0.26, "C": 0.22, "H": 0.037}}, {}, 3),
    "snap-2j4-quadratic-weights-rc3.5": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True, "rcutfac": 3.5,
        "weights": WEIGHTS}, {}, 3),
    "snap-2j6-weights": ("snap-energy", {
        "twojmax": 6,
        "weights": WEIGHTS}, {}, 3),
    "snap-2j4-quadratic-weights-radii": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "weights": WEIGHTS,
        "radii": {"Co": 0.65, "S": 0.55, "O": 0.5, "N": 0.5, "C": 0.5, "H": 0.4}}, {}, 3),
    "snap-2j4-quadratic-weights2": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 0.7, "O": 0.5, "N": 0.6, "C": 0.35, "H": 0.1}}, {}, 3),
    "snap-2j4-quadratic-weights3": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 0.8, "N": 0.8, "C": 0.6, "H": 0.3}}, {}, 3),
    "snap-2j4-quadratic-radii": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True,
        "radii": {"Co": 0.65, "S": 0.55, "O": 0.5, "N": 0.5, "C": 0.5, "H": 0.4}}, {}, 3),
    "snap-2j6-quadratic": ("snap-energy", {"twojmax": 6, "quadraticflag": True}, {}, 3),
    "snap-2j5-quadratic-weights": ("snap-energy", {
        "twojmax": 5, "quadraticflag": True,
        "weights": WEIGHTS}, {}, 3),
    "snap-2j6-quadratic-weights": ("snap-energy", {
        "twojmax": 6, "quadraticflag": True,
        "weights": WEIGHTS}, {}, 3),
    "gmnn": ("gmnn-energy", {}, {}, 3),
    "gmnn-1x60": ("gmnn-energy", {}, {"max_epochs": 60}, 1),
}
# the rows above were measured before SNAP models had a pair term: without it they reproduce
for _name, (_kind, _desc, _hyper, _n) in list(MODELS.items()):
    if _kind == "snap-energy":
        MODELS[_name] = (_kind, _desc, {"pair_cutoff": 0.0, **_hyper}, _n)
MODELS.update({
    # the learned element-pair term (molmag.descriptors.pair_basis); the first is the default
    "snap-2j4-quadratic-weights-pair": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j4-quadratic-weights-pair6": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 6.0, "pair_basis": 14}, 3),
    "snap-2j4-quadratic-weights-pair4": ("snap-energy", {
        "twojmax": 4, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 4.0, "pair_basis": 10}, 3),
    "snap-2j5-quadratic-weights-pair": ("snap-energy", {
        "twojmax": 5, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    # 2J = 3 (8 components per atom, LAMMPS ~2x faster than 2J = 4 quadratic)
    "snap-2j3-quadratic-weights": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS}, {"pair_cutoff": 0.0}, 3),
    "snap-2j3-quadratic-weights-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights-rc3.5-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS, "rcutfac": 3.5},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights-rc2.8-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS, "rcutfac": 2.8},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights-pair6": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 6.0, "pair_basis": 16}, 3),
    # 2J = 3 with other element weights / radii / pair bases (stop 39)
    "snap-2j3-quadratic-weights2-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 0.7, "O": 0.5, "N": 0.6, "C": 0.35, "H": 0.1}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights3-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 0.8, "N": 0.8, "C": 0.6, "H": 0.3}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-wZ-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 0.59, "O": 0.30, "N": 0.26, "C": 0.22, "H": 0.037}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights-radii-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS,
        "radii": {"Co": 0.65, "S": 0.55, "O": 0.5, "N": 0.5, "C": 0.5, "H": 0.4}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights-pair5x20": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 20}, 3),
    "snap-2j3-quadratic-weights4-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 0.8, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-unitweights-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights3-pair5x20": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 0.8, "N": 0.8, "C": 0.6, "H": 0.3}},
        {"pair_cutoff": 5.0, "pair_basis": 20}, 3),
    "snap-2j3-quadratic-weights3-pair6x24": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 0.8, "N": 0.8, "C": 0.6, "H": 0.3}},
        {"pair_cutoff": 6.0, "pair_basis": 24}, 3),
    "snap-2j3-quadratic-weights4-pair5x20": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 0.8, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 20}, 3),
    "snap-2j3-quadratic-weights5-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.0, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights6-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 0.8, "S": 1.0, "O": 1.0, "N": 1.0, "C": 0.8, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights5-pair5x20": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.0, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 20}, 3),
    "snap-2j3-quadratic-weights9-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.2, "O": 1.2, "N": 1.2, "C": 1.2, "H": 0.6}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights10-pair": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.5, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.0, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
    "snap-2j3-quadratic-weights5-pair5x28": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.0, "H": 0.5}},
        {"pair_cutoff": 5.0, "pair_basis": 28}, 3),
    "snap-2j3-quadratic-weights5-pair6x24": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.0, "H": 0.5}},
        {"pair_cutoff": 6.0, "pair_basis": 24}, 3),
    "snap-2j3-quadratic-weights11-pair5x20": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True,
        "weights": {"Co": 1.0, "S": 1.0, "O": 1.0, "N": 1.0, "C": 1.2, "H": 0.6}},
        {"pair_cutoff": 5.0, "pair_basis": 20}, 3),
    "snap-2j3-quadratic-weights-pair-fw1": ("snap-energy", {
        "twojmax": 3, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 12, "force_weight": 1.0}, 3),
    "snap-2j2-quadratic-weights-pair": ("snap-energy", {
        "twojmax": 2, "quadraticflag": True, "weights": WEIGHTS},
        {"pair_cutoff": 5.0, "pair_basis": 12}, 3),
})


def calculator_of(com):
    """The fastest ASE calculator of a committee: LAMMPS pair_style snap for SNAP models,
    :class:`molmag.models.calculator.ModelCalculator` otherwise."""
    if com.kind == "snap-energy":
        from molmag.dynamics.lammps_snap import LammpsSNAPCalculator

        return LammpsSNAPCalculator(com)
    from molmag.models.calculator import ModelCalculator

    return ModelCalculator(com)


def blow_up_stop(start, temperature_K: float):
    """(on_frame, reasons) for :func:`molmag.dynamics.lammps_snap.run_lammps_langevin`:
    ``molmag md``'s blow-up criteria (:class:`molmag.dynamics.md.StopCheck`: temperature >
    3x target, a force component > 25 eV/Å, a nearest neighbour stretched 1.6x) on every
    frame; the first failure stops the run and its reason is appended to ``reasons``."""
    from molmag.dynamics.md import MDSettings, StopCheck

    check = StopCheck(start, MDSettings(temperature_K=temperature_K, n_steps=1))
    probe, reasons = start.copy(), []

    def on_frame(step, pos, vel, energy, forces):
        probe.positions = pos
        probe.set_velocities(vel)
        why = check(probe, forces)
        if why:
            reasons.append(f"step {step}: {why}")
            return False
        return None
    return on_frame, reasons


def compare_one(name, train, val, test, log=print) -> dict:
    from molmag.models.committee import Committee, default_descriptor_settings

    kind, desc, hyper, n_members = MODELS[name]
    frames, targets = train
    species = list(dict.fromkeys(frames[0].get_chemical_symbols()))
    settings = {**default_descriptor_settings(kind, species), **desc}
    t0 = time.perf_counter()
    com = Committee(kind, settings, n_members=n_members, **hyper)
    com.fit(frames, targets, val[0], val[1], log=log)
    com.calibrate(val[0], val[1])
    t_fit = time.perf_counter() - t0
    pred = com.predict(test[0])
    ef = np.concatenate([np.ravel(p - np.asarray(r)) for p, r in
                         zip(pred["forces"], test[1]["forces"])])
    sf = np.concatenate([np.ravel(s) for s in pred["forces_std"]])
    ee = pred["energy"] - test[1]["energy"]
    row = {"model": name, "kind": kind, "n_train": len(frames),
           "force_rmse": float(np.sqrt(np.mean(ef**2))),
           "energy_rmse": float(np.sqrt(np.mean(ee**2))),
           "force_coverage95": float(np.mean(np.abs(ef) <= 1.96 * sf)),
           "fit_s": t_fit,
           "md_steps_per_s": md_steps_per_s(calculator_of(com), test[0][0])}
    if kind == "snap-energy":   # the fast path: LAMMPS-native Langevin (as benchmarks/md.py)
        from molmag.dynamics.lammps_snap import run_lammps_langevin

        # molmag md's blow-up criteria on every frame: a molecule that flies apart runs
        # faster (fewer neighbours), so a stopped run's rate is not the potential's
        start = test[0][0]
        on_frame, why = blow_up_stop(start, 100.0)
        r = run_lammps_langevin(start, com, 100.0, 0.5, 0.01, 4000, 20, seed=1,
                                on_frame=on_frame, reseed_every=1000)
        row["lammps_md_steps_per_s"] = r.steps_per_s
        row["lammps_md_steps"] = r.steps_done
        if why:
            row["lammps_md_stopped"] = why[0]
    log(json.dumps(row))
    return row


def cmd_compare(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    train, val, test = load_split(data, args.n_train)
    print(f"train {len(train[0])}, val {len(val[0])}, test {len(test[0])}", file=sys.stderr)
    rows = [compare_one(m, train, val, test, log=lambda s: print(s, file=sys.stderr))
            for m in args.models]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'model':22s} {'n_train':>7s} {'F RMSE eV/A':>12s} {'E RMSE eV':>10s} "
          f"{'cov95 F':>8s} {'fit s':>7s} {'MD steps/s':>10s} {'LAMMPS MD':>10s}")
    for r in rows:
        print(f"{r['model']:22s} {r['n_train']:7d} {r['force_rmse']:12.4f} "
              f"{r['energy_rmse']:10.4f} {r['force_coverage95']:8.3f} {r['fit_s']:7.0f} "
              f"{r['md_steps_per_s']:10.1f} {r.get('lammps_md_steps_per_s', float('nan')):10.0f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="xTB Langevin MD reference data (resumable)")
    d.add_argument("--out", required=True)
    d.add_argument("--runs", nargs="*", choices=list(RUNS))
    d.add_argument("--scale", type=float, default=1.0, help="multiply every run's length")
    c = sub.add_parser("compare", help="train the candidate potentials and compare them")
    c.add_argument("--data", required=True)
    c.add_argument("--n-train", type=int, default=None)
    c.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    {"data": cmd_data, "compare": cmd_compare}[args.cmd](args)


if __name__ == "__main__":
    main()
