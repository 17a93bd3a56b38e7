"""The commented example configurations written by ``molmag template ga``."""

from __future__ import annotations

_COMMON = """\
library: default             # ligand library: 'default' (molmag's donor-first corpus) or a
                             # `molmag corpus` file (.csv/.smi); ligands the builder refuses
                             # are left out
max_heavy_atoms: 8           # library ligands (and new dynamic-gene ligands) up to this size
genes: static                # static: ligands from the library | dynamic: SELFIES/Graph-GA edits,
                             # new ligands appear (kept only if valid, sane and donor-first)
population: 12               # individuals kept per generation (at least 2)
offspring: 12                # children evaluated per generation (one batch on Dask)
budget: 120                  # evaluations per search arm (GA, random, VAE), generation 0 included
mutation_rate: 0.5           # share of children from mutation; the rest from crossover
tournament: 3                # tournament size of parent selection
neighbours: 8                # static mutation: one of the k most similar library ligands
prescreen:                   # random forest on Morgan fingerprints, trained on all evaluated so far
  enabled: true
  oversample: 3              # children bred per child evaluated
  positive_quantile: 0.5     # 'worth evaluating' = fitness at or above this quantile so far
  explore: 0.25              # share of evaluations on rejected children (measures recall)
  min_train: 8               # evaluations needed before the classifier decides
diversity:                   # keeping the population diverse (defaults measured on the Co(II) D
                             # objective, DEVELOPERS.md; all off: the plain GA)
  niching: clearing          # none | clearing (the best of each niche survive first) | crowding
                             # (a child replaces its most similar member if at least as good)
  niche_on: donor            # niche fingerprint: donor (the donor atom and its neighbours:
                             # individuals with the same donor set share a niche) | molecule
                             # (Morgan radius 2 of the whole ligands); sites summed
  niche_radius: 0.7          # Tanimoto distance within one niche (0.7 on donor fingerprints: the
                             # same donor elements/charges); equal objective values always share
  niche_capacity: 2          # clearing: winners per niche
  immigrants: 0.2            # share of each generation's evaluations on new random individuals
  random_ligand: 0.1         # static mutation: share that takes a random library ligand
                             # instead of one of the `neighbours` most similar
  adaptive: false            # raise mutation_rate and random_ligand towards 1 as the
                             # population's fingerprint diversity falls below generation 0's
  restart_after: 0           # generations without a better best before a restart (0: never):
                             # a generation of random individuals, the restart_keep best kept
  restart_keep: 2
compare:                     # the same budget spent by other searches, from the same generation 0
  random: true               # random individuals of the library
  vae: true                  # LP sampling of the VAE around the best individuals so far
vae:
  model: gauss-ii-qm9        # the pretrained GAUSS-II model shipped with molmag (QM9 ligands:
                             # C, N, O, F; seeds it cannot encode are skipped), or a trained
                             # molmag VAE (.npz, e.g. a dy-ligands campaign's models/vae.npz);
                             # null: train one on the library (vae.npz, resumable)
  max_epochs: 40             # training epochs when model is null
  top_seeds: 4               # seeds of each LP round: the best individuals so far
  sigmas: [0.1, 0.2, 0.3]    # LP widths, tried in order
  draws_per_sigma: 500
relax: true                  # GFN2-xTB relaxation of every complex (false: the builder's start
                             # geometry; much cheaper and much cruder)
fmax: 0.05                   # relaxation threshold, eV/Angstrom
workers: null                # labelling processes (null: one per core; 1: serial)
seed: 0
"""

DY_AXIAL = """\
# molmag ga configuration: Dy(III) with two axial ligands L, Dy(H2O)5L2 (GAUSS-II template),
# maximising Delta E01 (crystal-field engine on the GFN2-xTB relaxed complex; the
# dy-ligands labeller).  Run with:  molmag ga ga.yaml   (re-running continues a killed run)

metal: Dy                    # Dy: Delta E01 of Dy(H2O)5L2 | Co: D of tetrahedral Co(II)L2L'2
objective: dE01              # dE01 (Dy, maximised) | D (Co, minimised)
""" + _COMMON

CO_CHELATE = """\
# molmag ga configuration: tetrahedral Co(II)L2L'2 with two monodentate donor ligands per
# individual (builder co-l4; chelating bidentate ligands are not built yet), minimising D
# (ligand-field engine, AOM + Racah + SOC, on the GFN2-xTB relaxed complex).
# Run with:  molmag ga ga.yaml   (re-running continues a killed run)

metal: Co
objective: D
""" + _COMMON

GA_TEMPLATES = {"dy-axial": DY_AXIAL, "co-chelate": CO_CHELATE}

__all__ = ["GA_TEMPLATES", "DY_AXIAL", "CO_CHELATE"]
