"""Commented example configurations written by ``molmag template label``."""

from __future__ import annotations

_CLUSTER = """\
# Where the work runs (Dask).
cluster:
  kind: local            # local: a Dask LocalCluster on this machine
                         # address: an existing scheduler, e.g. address: tcp://node01:8786
                         # slurm: a dask-jobqueue SLURMCluster, e.g.
                         #   kind: slurm
                         #   jobs: 4
                         #   slurm: {queue: compute, cores: 32, processes: 32,
                         #           memory: 64GB, walltime: "02:00:00", account: myproject}
                         # serial: no Dask, in this process (debugging)
  n_workers: null        # local: worker processes (default: one per core)
  threads_per_worker: 1  # BLAS/OpenMP threads per worker

batch_size: 8            # structures per task; each finished task is written at once
retry_failed: false      # true: try again what failed in an earlier run of this file
"""

CO_PDMS = """\
# molmag label configuration: the [Co(pdms)2]2- seed dataset (Lunghi & Sanvito 2020).
# Run with:  molmag label co-pdms.yaml
# Kill it at any time; running the same command again resumes where it stopped.

output: copdms.db        # the dataset (SQLite file, or any ASE db URL: postgresql://...)

sources:
  # Build [Co(pdms)2]2- from the ligand SMILES, relax it with GFN2-xTB, then displace
  # every Cartesian coordinate uniformly in +-delta: 500 configurations at each delta,
  # as in the Lunghi-Sanvito protocol (1500 + the relaxed structure itself).
  - builder: co-pdms
    relax: true
    fmax: 0.05           # eV/Angstrom
    sampler:
      kind: displacements  # displacements | md | normal-modes
      deltas: [0.05, 0.1, 0.2]   # Angstrom
      n: 500               # per delta
      seed: 0
      include_base: true   # also keep the relaxed structure (group "base")
  # Other sources you can add:
  # - file: more_structures.xyz    # extxyz/xyz; charge/multiplicity from the file or here
  #   charge: -2
  #   multiplicity: 4
  # - dataset: other.db            # rows of another dataset
  #   selection: "group=disp0.1"

labels:
  xtb:                   # GFN2-xTB (tblite)
    properties: [energy, forces, charges]   # also: dipole, polarizabilities (D4), atomic_dipoles
  ligand_field:          # D tensor from molmag's ligand-field engine (AOM + Racah + SOC)
    ion: null            # default: inferred (Co2+ from charge and multiplicity)
    point_charges: none  # xtb: add the field of the atoms beyond the donors (xTB charges)

""" + _CLUSTER

DY_LIGANDS = """\
# molmag label configuration: Dy(H2O)5L2 complexes for a list of axial ligands (GAUSS-II).
# Run with:  molmag label dy-ligands.yaml
# Each ligand is a work item: build, constrained then full GFN2-xTB relaxation, then labels.
# Kill it at any time; running the same command again resumes where it stopped.

output: dy-ligands.db

sources:
  # Ligand SMILES with the donor atom FIRST (the paper's convention): five equatorial
  # waters at 72 degrees, two axial ligands L.
  - builder: dy-h2o5l2
    relax: true
    fmax: 0.05           # eV/Angstrom
    ligands:
      - O=P(NC(C)C)(NC(C)C)C(C)(C)C   # tBuPO(NHiPr)2, the paper's template ligand
      - O=P(C)(C)C                    # trimethylphosphine oxide
      - O=P(N(C)C)(N(C)C)N(C)C        # HMPA
      - "[O-]c1ccccc1"                # phenolate
      - "[O-]c1c(F)c(F)c(F)c(F)c1F"   # pentafluorophenolate
      - "[O-]C(C)(C)C"                # tert-butoxide
      - O=S(C)C                       # DMSO
      - O=C(C)N(C)C                   # N,N-dimethylacetamide
      - n1ccccc1                      # pyridine
      - OC                            # methanol

labels:
  xtb:
    properties: [energy, charges]
  crystal_field:         # Kramers doublets, g values, Stevens parameters (molmag's engine)
    charges: rec         # rec (radial effective charges) | formal
    shielding: false

""" + _CLUSTER

TEMPLATES = {"co-pdms": CO_PDMS, "dy-ligands": DY_LIGANDS}
