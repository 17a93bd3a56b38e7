"""Commented example configurations of the dynamics commands (`molmag template md`)."""

MD = """\
# molmag md: Langevin NVT molecular dynamics of one complex, the D tensor of every stored
# frame from a tensor model, and the committee spreads (query by committee).
# Zaverkin et al. 2022, Sec. 4.2: 25-100 K, 2.5 ns, 0.5 fs, Maxwell-Boltzmann start.

structure:                 # built (any `molmag build` name) or read: {file: x.xyz, charge: -2, ...}
  builder: co-pdms
  relax: true              # relaxed with GFN2-xTB first

potential:                 # energy + forces (eV, eV/Angstrom)
  model: energy.npz        # an energy committee (molmag train, kind gmnn-energy / snap-energy)
  # xtb: {}                # or GFN2-xTB itself (the reference; ~3 steps/s for 53 atoms)

tensor:                    # the D tensor of every stored frame (null: none)
  model: dtensor.npz       # a D-tensor committee: D, E and their calibrated spreads
  # ligand_field: {}       # or molmag's ligand-field engine (the reference, no spread)

engine: auto               # lammps: the whole run in LAMMPS (snap-energy models, the fast
                           # path); ase: ASE's Langevin with any calculator (snap-energy:
                           # the committee mean each step, the members' spreads on stored
                           # frames); auto: lammps for snap-energy models, ase otherwise
temperatures: [25, 50, 75, 100]   # K
trajectories: 1            # independent runs per temperature (different seeds)
time_ps: 20                # or n_steps: 40000
timestep_fs: 0.5           # at most 2 fs
friction_per_fs: 0.01      # Langevin friction (fs^-1): 100 fs velocity relaxation time
stride: 20                 # steps between stored frames (10 fs)
checkpoint_every: 1000     # steps between checkpoints: a killed run loses at most these
seed: 0

stop:                      # a run stops itself (keeping every good frame) when
  max_temperature_factor: 3.0   # the kinetic temperature exceeds 3 x the target,
  max_force: 25.0               # a force component exceeds 25 eV/Angstrom,
  max_stretch: 1.6              # or an atom's nearest neighbour is 1.6 x as far as at start

cluster:                   # where the runs go: local (Dask processes), address, slurm, serial
  kind: local
  n_workers: 2

output: md                 # md/T100K_run0.extxyz + .json sidecar + checkpoint
"""

LEARN = """\
# molmag learn: active learning of an ML potential and a D-tensor model where the molecule
# goes at finite temperature. Each round: train both committees on every labelled row, run
# Langevin MD with them, pick (farthest-point) among the frames whose calibrated spread is
# above the thresholds, label those with the reference engines, repeat. Resumable.

structure:
  builder: co-pdms         # or {file: start.xyz, charge: -2, multiplicity: 4}

dataset: labels.db         # every label (relative paths: inside output); created or extended

initial:                   # round 0's labels
  kind: normal-modes       # Boltzmann samples along the xTB normal modes (or displacements)
  n: 40
  temperature: null        # K (default: the highest MD temperature)
  amplitudes: quantum      # with zero-point motion, or classical (k_B T / omega^2, as MD)

labels:                    # the reference engines (as in molmag label)
  xtb: {properties: [energy, forces]}
  ligand_field: {}

potential:                 # the energy committee (molmag train's model section)
  kind: snap-energy
  committee: 4
  hyper: {pair_cutoff: 0.0}  # 5.0 adds a learned element-pair term (better forces on MD
                             # data: 0.058 -> 0.042 eV/A; but the quick campaign's early
                             # rounds, small and displaced, ran less stable with it)

tensor:                    # the D-tensor committee (null: energy only)
  kind: covariant-ridge
  committee: 4
  resample: subsample      # members on 80 % of the labels each: bootstrap resamples (63 %
  subsample: 0.8           # distinct rows) shrink D's structural slopes at these sizes

descriptors:               # descriptor overrides per role (molmag train's descriptor section)
  potential:               # quadratic SNAP 2J = 4 with element weights: the best forces on
    twojmax: 4             # 100 K xTB MD of [Co(pdms)2]2- and ~6x faster MD in LAMMPS than
    quadraticflag: true    # the linear 2J = 8 default (DEVELOPERS.md, "Potentials for MD");
    rcutfac: 3.1           # weights for the elements of that complex: list every element of
    weights: {Co: 1.0, S: 0.8, O: 0.6, N: 0.5, C: 0.4, H: 0.2}   # yours (heavier, more)

md:
  engine: auto             # lammps for snap-energy potentials (fast), ase otherwise
  temperatures: [100]      # K
  time_ps: 5               # each round's run
  timestep_fs: 0.5
  friction_per_fs: 0.01
  stride: 10               # steps between stored frames (candidates)
  trajectories: 1          # independent runs per temperature and round; converged only when
                           # all stay below the thresholds (one surviving run is weak
                           # evidence: DEVELOPERS.md, "MD stability after active learning")

select:                    # thresholds of the calibrated spreads
  forces: calibration      # eV/Angstrom (largest per-component sigma) or 'calibration':
  zfs_D: calibration       # cm-1         2 x the 95th-percentile validation sigma (forces:
                           #              per component, strict; 'calibration-frame': per
                           #              frame's largest component, more lenient)
  batch: 10                # labels per round (farthest-point among the candidates)
  stopped_first: true      # the last frames before each stopped run are labelled ahead of
                           # the farthest-point picks (from 940 MD frames: 5 of 6 test runs
                           # whole after 90 labels, 2 of 6 with false; DEVELOPERS.md)

budget: 200                # labels the loop may add
max_rounds: 10
val_fraction: 0.15         # of the labels: validation split (calibrates the spreads)
test: null                 # {dataset: test.db}: errors on an independent reference set per round

cluster: {kind: serial}    # labelling: serial, local (Dask processes), address, slurm
output: learn
"""
