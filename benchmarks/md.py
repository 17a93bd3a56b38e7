"""MD speed on [Co(pdms)2]2- (53 atoms; issue 17, item 5): xTB, the ML potential, LAMMPS-native
SNAP, and batched D-tensor predictions, all measured in one run (ratios are what carry over to
another machine).

    python benchmarks/md.py [--json] [--threads 2] [--data DIR] [--start start.xyz]

1. ``xtb_steps_per_s``: ASE Langevin (0.5 fs, 100 K, friction 0.01/fs) with GFN2-xTB
   (:class:`molmag.chem.xtb.XTBCalculator`); the same run (at 300 K, every 2nd step) gives
   the training data of the small models below unless ``--data DIR`` names the reference MD
   data of ``benchmarks/potentials.py`` (``DIR/md.db`` or its extxyz files).
2. ``ml_steps_per_s``: the ML potential in ``molmag md``'s ASE engine
   (:func:`molmag.dynamics.md.run_md`: ASE Langevin, a frame stored every 20 steps with its
   checkpoints and extxyz writes) with the shipped default energy model, a 3-member
   quadratic SNAP committee, as ``molmag md`` runs it with ``engine: ase``: the
   committee-mean coefficients each step (one ``pair_style snap`` evaluation,
   :class:`molmag.dynamics.lammps_snap.LammpsSNAPCalculator` with ``spread=False``) and every
   member on each stored frame, which carries the calibrated spreads of energy and forces
   (issue 17, item 2: "every stored frame gets ... the calibrated spreads").  Also reported:
   ``ml_spread_every_step_steps_per_s``, ASE Langevin with the spreads evaluated on every
   step, the faster of :class:`molmag.models.calculator.ModelCalculator` (one LAMMPS
   descriptor design shared by the members; ``model_calculator_steps_per_s``) and
   ``LammpsSNAPCalculator`` (one ``pair_style snap`` evaluation per member;
   ``ml_lammps_calculator_steps_per_s``); ``ml_mean_steps_per_s`` (the committee mean only,
   no spreads at all) and ``gmnn_energy_steps_per_s`` (a 3-member GM-NN energy committee
   through ModelCalculator: a non-linear committee evaluates every member each step).
3. ``lammps_snap_steps_per_s``: the whole Langevin run inside LAMMPS
   (:func:`molmag.dynamics.lammps_snap.run_lammps_langevin`, committee-mean coefficients,
   a frame handed to Python every 20 steps, the thermostat reseeded every 1000 steps as
   ``molmag md``'s LAMMPS engine does at its checkpoints).
4. ``d_predictions_per_s``: a 3-member GM-NN D-tensor committee with the settings
   ``molmag template train --model gmnn-tensor`` ships (labels from molmag's ligand-field
   engine, a short training: the speed does not depend on it), batched
   ``Committee.predict`` of 1000 MD frames, descriptors, D, E and calibrated spreads
   included; ``d_predictions_paper_per_s`` the same with the paper's settings (r_cut 8 Å,
   every atom in eq. 7, 2 x 512 network).  Measured in a child process with the caller's
   OpenMP wait policy (what users run with; the stages above run with idle threads set to
   sleep, see below); ``d_predictions_passive_per_s`` is the shipped settings in this
   process, with sleeping threads.

Threads: ``--threads`` (default 2) for OpenMP (xTB) and torch; LAMMPS runs on one core.
Every rate is also given per CPU second of this process (``*_per_cpu_s``: what it would do on
an idle machine; with 2 threads up to twice the wall rate): on a machine shared with other
jobs the wall-clock rates are lower by the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _threads() -> int:
    for k, a in enumerate(sys.argv):
        if a == "--threads" and k + 1 < len(sys.argv):
            return int(sys.argv[k + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 2


# OpenMP reads this when tblite is loaded: set it before anything imports it
os.environ["OMP_NUM_THREADS"] = str(_threads())
#: the caller's OpenMP wait policy (None: the runtime's default), what users run molmag with
USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
if "--d-stage" not in sys.argv:
    # idle OpenMP threads (tblite's, torch's) sleep instead of spinning: spinning threads of
    # one stage slowed the LAMMPS stage that followed it 3-4x on a loaded machine.  The
    # D-tensor stage (many small torch operations, which passive threads slow by ~15 %) runs
    # in a child process with the caller's policy instead (``--d-stage``)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

TIMESTEP_FS = 0.5
FRICTION = 0.01


def langevin_rate(atoms, calc, n_steps: int, temperature_K: float = 100.0, warm: int = 3,
                  keep_every: int = 0):
    """(steps/s of wall time, steps per CPU second of this process, kept frames with
    energy/forces) of ASE Langevin with ``calc``."""
    import ase.units as u
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin

    from molmag.chem.sampling import maxwell_boltzmann

    a = atoms.copy()
    a.calc = calc
    maxwell_boltzmann(a, temperature_K, rng=np.random.default_rng(0))
    dyn = Langevin(a, TIMESTEP_FS * u.fs, temperature_K=temperature_K,
                   friction=FRICTION / u.fs, rng=np.random.default_rng(1), fixcm=False)
    kept = []
    if keep_every:
        def keep():
            f = a.copy()
            f.calc = SinglePointCalculator(f, energy=a.get_potential_energy(),
                                           forces=a.get_forces())
            kept.append(f)
        dyn.attach(keep, interval=keep_every)
    # the molecule must stay whole: a rate from atoms flying apart (fewer neighbours, cheaper
    # steps) is not a rate of MD; `molmag md`'s stop criteria every 10 steps
    stop = _stop_check(atoms, temperature_K)

    def whole():
        why = stop(a, a.get_forces())
        if why:
            raise RuntimeError(f"the molecule did not hold together: {why}")
    dyn.attach(whole, interval=10)
    dyn.run(warm)
    t, c = time.perf_counter(), time.process_time()
    dyn.run(n_steps)
    return n_steps / (time.perf_counter() - t), n_steps / (time.process_time() - c), kept


def _stop_check(atoms, temperature_K: float):
    """``molmag md``'s blow-up criteria (:class:`molmag.dynamics.md.StopCheck`: temperature
    > 3x target, a force component > 25 eV/Å, a nearest neighbour stretched 1.6x)."""
    from molmag.dynamics.md import MDSettings, StopCheck

    return StopCheck(atoms, MDSettings(temperature_K=temperature_K, n_steps=1))


def ml_rate(start, calc, n_steps: int, frames, out: dict, key: str, log) -> None:
    """``out[key + '_per_s']``, ``out[key + '_per_cpu_s']``: steps/s of ASE Langevin with
    ``calc``; where the small benchmark potential cannot hold the molecule together (its
    MD stops with an input error), the same number of energy+forces calls on the xTB
    frames instead (the cost per step is the same), noted in ``out[key + '_from']``."""
    try:
        out[f"{key}_per_s"], out[f"{key}_per_cpu_s"], _ = langevin_rate(start, calc, n_steps)
    except Exception as exc:  # noqa: BLE001 - any failure of the ML MD: time calls instead
        why = str(exc).splitlines()[0]
        log(f"  (the ML MD stopped: {why}; timing {n_steps} calls on xTB frames instead)")
        out[f"{key}_per_s"], out[f"{key}_per_cpu_s"] = call_rate(calc, jittered(frames, n_steps))
        out[f"{key}_from"] = f"calls on xTB frames (ML MD stopped: {why})"


def md_run_rate(start, calc, n_steps: int, frames, out: dict, log, stride: int = 20) -> None:
    """``out["ml_steps_per_s"]`` (and ``_per_cpu_s``): steps/s of
    :func:`molmag.dynamics.md.run_md` with ``calc`` at 100 K, a frame every ``stride`` steps
    (spreads, extxyz, checkpoints included).  Where the small benchmark potential cannot
    hold the molecule together (the run stops before 200 steps), the cost per step is timed
    on the xTB frames instead: one mean call each, and every member on each ``stride``-th
    (noted in ``out["ml_steps_from"]``)."""
    import tempfile

    from molmag.dynamics.md import MDSettings, run_md

    n = max(stride, n_steps - n_steps % stride)
    s = MDSettings(temperature_K=100.0, n_steps=n, stride=stride, checkpoint_every=10 * stride,
                   seed=1)
    with tempfile.TemporaryDirectory() as d:
        t, c = time.perf_counter(), time.process_time()
        r = run_md(start, calc, s, Path(d) / "run", potential_label="benchmark")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    if r.steps_done >= min(n, 200):
        out["ml_steps_per_s"] = r.steps_done / wall
        out["ml_steps_per_cpu_s"] = r.steps_done / cpu
        out["ml_steps_done"] = r.steps_done
        return
    log(f"  (the ML MD stopped at step {r.steps_done}: {r.stop_reason}; timing calls on xTB "
        "frames instead)")
    out["ml_steps_per_s"], out["ml_steps_per_cpu_s"] = call_rate(calc, jittered(frames, n),
                                                                 spread_every=stride)
    out["ml_steps_from"] = f"calls on xTB frames (ML MD stopped: {r.stop_reason})"


def jittered(frames, n: int) -> list:
    """``n`` distinct structures (calculators may remember a repeated one): the xTB frames in
    turn, each jittered by 0.002 Å per coordinate."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        f = frames[i % len(frames)].copy()
        f.positions = f.positions + rng.normal(0.0, 0.002, f.positions.shape)
        out.append(f)
    return out


def call_rate(calc, frames, spread_every: int = 0) -> tuple[float, float]:
    """(calls/s of wall time, per CPU second) of energy+forces on ``frames``, one each; with
    ``spread_every`` also the committee's ``forces_std`` on every such frame (as ``molmag
    md`` asks for it on stored frames)."""
    a = frames[0].copy()
    a.calc = calc
    a.get_forces()
    t, c = time.perf_counter(), time.process_time()
    for i, f in enumerate(frames):
        a.positions = f.positions
        a.get_forces()
        a.get_potential_energy()
        if spread_every and i % spread_every == 0:
            calc.get_property("forces_std", a)
    return len(frames) / (time.perf_counter() - t), len(frames) / (time.process_time() - c)


def reference_data(data: Path):
    sys.path.insert(0, str(Path(__file__).parent))
    from potentials import load_split

    train, val, test = load_split(data, None)
    return train, val, test


def split_kept(kept):
    frames, e, f = [], [], []
    for a in kept:
        e.append(a.get_potential_energy())
        f.append(a.get_forces())
        b = a.copy()
        b.calc = None
        frames.append(b)
    n_val = max(5, len(frames) // 10)
    idx = np.random.default_rng(0).permutation(len(frames))

    def part(ix):
        return [frames[i] for i in ix], {"energy": np.array([e[i] for i in ix]),
                                         "forces": [f[i] for i in ix]}
    return part(idx[n_val:]), part(idx[:n_val])


def shipped_gmnn_tensor(species) -> tuple[dict, dict]:
    """Descriptor settings and hyperparameters of ``molmag template train --model
    gmnn-tensor`` (what molmag ships: metal-centred environment of 3.6 Å, r_cut 5 Å,
    2 x 128 network) for these elements."""
    import yaml

    from molmag.models.committee import default_descriptor_settings
    from molmag.training.templates import train_template

    t = yaml.safe_load(train_template("gmnn-tensor"))
    desc = {**default_descriptor_settings("gmnn-tensor", species), **(t["descriptor"] or {})}
    return desc, dict(t["model"]["hyper"] or {})


def d_prediction_rates(lf_frames, pool, species, threads: int, n_predict: int,
                       settings=("", "_paper")) -> dict:
    """``d_predictions{tag}_per_s`` (and ``_per_cpu_s``): a 3-member GM-NN tensor committee
    trained briefly on ``lf_frames`` (their ``info["zfs_tensor"]``) predicts ``n_predict``
    frames of ``pool`` in one batched ``Committee.predict`` (descriptors, D, E and spreads
    included); tag "" the shipped settings, "_paper" the paper's."""
    import torch

    from molmag.models.committee import Committee, default_descriptor_settings

    torch.set_num_threads(threads)
    tensors = np.stack([np.asarray(a.info["zfs_tensor"], float).reshape(3, 3)
                        for a in lf_frames])
    frames = [pool[i % len(pool)] for i in range(n_predict)]
    choices = {"": shipped_gmnn_tensor(species),
               "_paper": (default_descriptor_settings("gmnn-tensor", species), {})}
    out = {}
    for tag in settings:
        desc, hyper = choices[tag]
        dcom = Committee("gmnn-tensor", desc, n_members=3, **{**hyper, "max_epochs": 2})
        dcom.fit(lf_frames, {"zfs_tensor": tensors})
        dcom.predict(frames[:10])
        t, c = time.perf_counter(), time.process_time()
        dcom.predict(frames)
        out[f"d_predictions{tag}_per_s"] = n_predict / (time.perf_counter() - t)
        out[f"d_predictions{tag}_per_cpu_s"] = n_predict / (time.process_time() - c)
    return out


def _d_stage(folder: str, threads: int, n_predict: int) -> None:
    """The child process of stage 4: frames from ``folder``, rates as JSON on stdout."""
    import ase.io

    lf = ase.io.read(f"{folder}/labelled.extxyz", ":")
    pool = ase.io.read(f"{folder}/pool.extxyz", ":")
    species = list(dict.fromkeys(lf[0].get_chemical_symbols()))
    print(json.dumps(d_prediction_rates(lf, pool, species, threads, n_predict)))


def main(argv=None) -> dict:
    if "--d-stage" in (sys.argv[1:] if argv is None else argv):
        ds = argparse.ArgumentParser()
        ds.add_argument("--d-stage")
        ds.add_argument("--threads", type=int, default=2)
        ds.add_argument("--n-predict", type=int, default=1000)
        a = ds.parse_args(argv)
        _d_stage(a.d_stage, a.threads, a.n_predict)
        return {}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="reference MD data (benchmarks/potentials.py)")
    ap.add_argument("--start", default=None, help="relaxed structure (default: build it)")
    ap.add_argument("--xtb-steps", type=int, default=200)
    ap.add_argument("--ml-steps", type=int, default=1000)
    ap.add_argument("--lammps-steps", type=int, default=4000)
    ap.add_argument("--n-predict", type=int, default=1000)
    ap.add_argument("--pair-cutoff", type=float, default=5.0,
                    help="the SNAP committee's pair term, Å (default: what molmag template "
                         "train ships; 0: SNAP alone, the library default)")
    ap.add_argument("--twojmax", type=int, default=None,
                    help="the SNAP committee's 2J (default: what molmag template train ships, "
                         "4; 3 runs ~2x faster in LAMMPS, forces ~1.3x worse: DEVELOPERS.md)")
    ap.add_argument("--weights", default=None,
                    help="the SNAP neighbour weights, YAML, e.g. '{Co: 1, S: 1, O: 1, N: 1, C: 1, "
                         "H: 0.5}' (default: the template's)")
    ap.add_argument("--pair-basis", type=int, default=12,
                    help="Gaussians per pair of elements of the pair term (template: 12)")
    args = ap.parse_args(argv)

    import ase.io
    import torch

    torch.set_num_threads(args.threads)
    from molmag.chem.xtb import XTBCalculator
    from molmag.dynamics.lammps_snap import LammpsSNAPCalculator, run_lammps_langevin
    from molmag.models.calculator import ModelCalculator
    from molmag.models.committee import Committee, default_descriptor_settings
    from molmag.training.templates import SNAP_ENERGY_DESCRIPTOR

    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    t_all = time.perf_counter()
    if args.start:
        start = ase.io.read(args.start)
    else:
        from molmag.chem.builders import build

        start = build("co-pdms", relax=True, fmax=0.05)
    species = list(dict.fromkeys(start.get_chemical_symbols()))
    out: dict = {"n_atoms": len(start), "threads": args.threads}

    # 1. xTB
    keep = 0 if args.data else 2
    rate, out["xtb_steps_per_cpu_s"], kept = langevin_rate(
        start, XTBCalculator(), args.xtb_steps, warm=3,
        temperature_K=100.0 if args.data else 300.0, keep_every=keep)
    out["xtb_steps_per_s"] = rate
    log(f"xTB MD: {rate:.2f} steps/s")
    if args.data:
        train, val, _ = reference_data(Path(args.data))
    else:
        train, val = split_kept(kept)

    # 2. ML potential: the template's energy committee (SNAP + pair term) through LAMMPS
    t0 = time.perf_counter()
    settings = {**default_descriptor_settings("snap-energy", species),
                **SNAP_ENERGY_DESCRIPTOR}
    if args.twojmax is not None:
        settings["twojmax"] = args.twojmax
    if args.weights:
        import yaml

        settings["weights"] = {str(k): float(v) for k, v in yaml.safe_load(args.weights).items()}
    com = Committee("snap-energy", settings, n_members=3, pair_cutoff=args.pair_cutoff,
                    pair_basis=args.pair_basis)
    out["snap_pair_cutoff"] = args.pair_cutoff
    out["snap_pair_basis"] = args.pair_basis
    out["snap_twojmax"] = settings["twojmax"]
    out["snap_weights"] = settings.get("weights")
    com.fit(*train, *val)
    com.calibrate(*val)
    out["snap_fit_s"] = time.perf_counter() - t0
    out["snap_n_train"] = len(train[0])
    log(f"SNAP committee ({settings.get('twojmax')}, rcut {settings['rcutfac']}): "
        f"{len(train[0])} structures, {out['snap_fit_s']:.0f} s")
    frames = train[0] + val[0]
    ml_rate(start, LammpsSNAPCalculator(com), args.ml_steps, frames, out,
            "ml_lammps_calculator_steps", log)
    log(f"ML MD (SNAP committee, LAMMPS calculator): "
        f"{out['ml_lammps_calculator_steps_per_s']:.1f} steps/s")
    ml_rate(start, LammpsSNAPCalculator(com, spread=False), args.ml_steps, frames, out,
            "ml_mean_steps", log)
    log(f"ML MD (committee mean only): {out['ml_mean_steps_per_s']:.1f} steps/s")
    ml_rate(start, ModelCalculator(com), args.ml_steps, frames, out,
            "model_calculator_steps", log)
    log(f"ML MD (ModelCalculator, descriptor design): "
        f"{out['model_calculator_steps_per_s']:.1f} steps/s")
    # the ML potential with its spread every step: the faster of the two calculators
    out["ml_spread_every_step_steps_per_s"] = max(out["model_calculator_steps_per_s"],
                                                  out["ml_lammps_calculator_steps_per_s"])
    # as `molmag md` (engine: ase) runs it: the mean each step, spreads on stored frames
    md_run_rate(start, LammpsSNAPCalculator(com, spread=False), args.ml_steps, frames, out,
                log)
    log(f"ML MD (molmag md, ASE engine: mean each step, spreads every 20th): "
        f"{out['ml_steps_per_s']:.1f} steps/s")

    # 3. LAMMPS-native SNAP
    c = time.process_time()
    # a frame to Python every 20 steps, the thermostat reseeded every 1000 (`molmag md`'s
    # default checkpoint interval, as its LAMMPS engine does)
    from potentials import blow_up_stop

    # the molecule must stay whole (molmag md's criteria on every frame)
    on_frame, why_stopped = blow_up_stop(start, 100.0)

    r = run_lammps_langevin(start, com, 100.0, TIMESTEP_FS, FRICTION, args.lammps_steps, 20,
                            seed=1, on_frame=on_frame, reseed_every=1000)
    out["lammps_snap_steps_per_s"] = r.steps_per_s
    out["lammps_snap_steps_done"] = r.steps_done
    out["lammps_snap_steps_per_cpu_s"] = r.steps_done / (time.process_time() - c)
    if why_stopped:
        out["lammps_snap_stopped"] = why_stopped[0]
    log(f"LAMMPS SNAP MD: {r.steps_per_s:.0f} steps/s ({r.steps_done} steps"
        + (f"; stopped, {why_stopped[0]}" if why_stopped else ", the molecule whole") + ")")

    # GM-NN energy committee (speed only: a one-epoch fit, whose forces would not hold a
    # molecule together, so the calls are timed on MD frames instead of driving the MD)
    gm = Committee("gmnn-energy", default_descriptor_settings("gmnn-energy", species),
                   n_members=3, max_epochs=1)
    gm.fit(train[0][:32], {"energy": train[1]["energy"][:32],
                           "forces": train[1]["forces"][:32]})
    out["gmnn_energy_steps_per_s"], out["gmnn_energy_steps_per_cpu_s"] = call_rate(
        ModelCalculator(gm), train[0][:30])
    log(f"GM-NN energy committee (ModelCalculator, energy+forces calls): "
        f"{out['gmnn_energy_steps_per_s']:.1f} /s")

    # 4. D-tensor predictions, GM-NN committee, batched: in a child process with the caller's
    # OpenMP wait policy (as users run it), and here under PASSIVE for comparison
    from molmag.physics.ligand_field import LigandFieldCalculator

    lf_frames = [a.copy() for a in train[0][:40]]
    donors = start.info.get("donor_indices")
    for a in lf_frames:
        calc = LigandFieldCalculator(metal_index=0, charge=int(start.info.get("charge", -2)),
                                     multiplicity=int(start.info.get("multiplicity", 4)),
                                     donors=None if donors is None else
                                     [int(i) for i in donors])
        a.info["zfs_tensor"] = np.asarray(calc.get_property("zfs_tensor", a)).ravel()
        a.calc = None
    pool = [a.copy() for a in train[0] + val[0]]
    for a in pool:
        a.calc = None
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ase.io.write(f"{tmp}/labelled.extxyz", lf_frames, format="extxyz")
        ase.io.write(f"{tmp}/pool.extxyz", pool, format="extxyz")
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if USER_WAIT_POLICY is not None:
            env["OMP_WAIT_POLICY"] = USER_WAIT_POLICY
        child = subprocess.run([sys.executable, __file__, "--d-stage", tmp, "--threads",
                                str(args.threads), "--n-predict", str(args.n_predict)],
                               env=env, capture_output=True, text=True, check=False)
        if child.returncode != 0:
            raise RuntimeError(f"the D-tensor stage failed:\n{child.stderr[-2000:]}")
        rates = json.loads(child.stdout)
    out.update(rates)
    passive = d_prediction_rates(lf_frames, pool, species, args.threads, args.n_predict,
                                 settings=("",))
    out["d_predictions_passive_per_s"] = passive["d_predictions_per_s"]
    log(f"D tensors (GM-NN committee of 3, shipped settings, batched; OpenMP wait policy "
        f"{USER_WAIT_POLICY or 'default'}): {out['d_predictions_per_s']:.0f} /s "
        f"(PASSIVE: {out['d_predictions_passive_per_s']:.0f} /s); paper settings: "
        f"{out['d_predictions_paper_per_s']:.0f} /s")
    out["ratio_ml_to_xtb"] = out["ml_steps_per_s"] / out["xtb_steps_per_s"]
    out["ratio_lammps_to_xtb"] = out["lammps_snap_steps_per_s"] / out["xtb_steps_per_s"]
    out["wall_s"] = time.perf_counter() - t_all
    try:
        out["load_average"] = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        pass
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    return out


if __name__ == "__main__":
    main()
