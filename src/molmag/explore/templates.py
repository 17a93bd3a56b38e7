"""Commented example configurations written by ``molmag template optimize`` and
``molmag template scan``."""

from __future__ import annotations

OPTIMIZE = """\
# molmag optimize configuration: particle-swarm optimisation of
#   chi(r) = E(r) - E(r0) + gamma * D(r)   (eV; D in cm-1, gamma in eV per cm-1)
# over all Cartesian coordinates (Lunghi & Sanvito 2020, eq. 6).  Axial anisotropy has D < 0,
# so gamma > 0 rewards more negative D at an energy cost; gamma = 0 only minimises E.
# Run with:  molmag optimize optimize.yaml     (re-running an interrupted run resumes)

structure:               # the start structure r0
  builder: co-pdms       # a molmag builder (molmag build --help), relaxed with GFN2-xTB
  relax: true
  # file: start.xyz      # ... or a structure file (the last frame unless index: is given)
  # charge: -2
  # multiplicity: 4

# E and D from any calculator: a trained model (molmag train), xtb, or ligand_field.
# The paper runs the swarm on ML models; the reference engines work too, but slowly (xTB
# manages about 6 chi evaluations per second on 2 cores).
energy: {model: energy/model.npz}       # or: {xtb: {}}
anisotropy: {model: tensor/model.npz}   # or: {ligand_field: {}}
reference: {ligand_field: {}}           # re-computes D at every optimum (delete to skip)

gammas: [0.0, 0.005, 0.02]   # eV per cm-1 (1.24e-4 weighs 1 cm-1 of D like 1 cm-1 of E)

pso:
  n_particles: 20        # the paper: >= 1000 evaluations in all
  n_steps: 50
  omega: 0.7             # inertia (paper SI)
  acceleration: 1.7      # Gamma (paper SI); c1, c2 ~ U[0, 1)
  max_displacement: 0.2  # Angstrom: bound on every coordinate's move from r0
  init_displacement: 0.01
  clash_factor: 0.7      # penalty when d_ij < 0.7 (R_i + R_j) ...
  clash_strength: 100.0  # ... of 100 eV * (1 - d/d0)^2
  seed: 0
  std_threshold_E: null  # eV: flag steps whose calibrated committee sigma of E exceeds this
                         # (null: the model's own calibration threshold)
  std_threshold_D: null  # cm-1: the same for D

top: 5                   # internal coordinates listed per gamma, ranked by change
output: pso              # folder: gamma_table.csv/json, paths, optima, pso_convergence.png
"""

SCAN = """\
# molmag scan configuration: a 2D scan of D and E along two internal coordinates, moved
# symmetrically: the mean metal-donor distance (every donor arm translated along its bond)
# and the mean intraligand donor-metal-donor (bite) angle (the chelate arms rotated in their
# plane) -- Lunghi & Sanvito 2020, Fig. 4.
# Run with:  molmag scan scan.yaml     (re-running an interrupted scan resumes)

structure:
  builder: co-pdms
  relax: true
  # file: start.xyz
  # charge: -2
  # multiplicity: 4

calculators:             # side by side in every plot; the names are yours
  ML: [{model: energy/model.npz}, {model: tensor/model.npz}]   # ML energy + ML D
  reference: [{xtb: {}}, {ligand_field: {}}]                  # GFN2-xTB + ligand field

offsets1: {start: -0.1, stop: 0.1, n: 21}   # distance offsets, Angstrom
offsets2: {start: -5.0, stop: 5.0, n: 21}   # angle offsets, degrees
properties: [zfs_D, energy]                 # energy is relative to the reference structure
output: scan             # folder: scan.npz/json, scan_zfs_D.png, scan_energy.png
"""

TEMPLATES = {"optimize": OPTIMIZE, "scan": SCAN}
