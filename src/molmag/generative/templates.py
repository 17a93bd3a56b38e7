"""The commented example configuration written by ``molmag template vae``."""

from __future__ import annotations

VAE_TRAIN = """\
# molmag vae train configuration: the GAUSS VAE (Khatibi et al. 2026) on a donor-first
# ligand corpus, semi-supervised on labels computed for a random subset of it.
# Run with:  molmag vae train vae.yaml     (re-running an interrupted run resumes)

corpus: default              # a `molmag corpus` file (.csv or .smi), or molmag's built-in one
max_heavy_atoms: 12          # keep ligands up to this many heavy atoms (null: all)
n_train: null                # at most this many training ligands (random subset; null: all)
validation_fraction: 0.05    # held out for reconstruction accuracy and the head's R^2
representation: smiles       # smiles | selfies
# The decoder: autoregressive (GRU language model conditioned on z, teacher-forced in
# training, greedy/multinomial in generation; KL annealed over kl_anneal_epochs, free bits)
# | gauss (the paper's non-autoregressive decoder: z repeated into bidirectional GRUs)
decoder: autoregressive
kl_anneal_epochs: 1.0        # autoregressive: KL weight 0 -> alpha over this many epochs
augment: 0                   # randomised donor-first SMILES per ligand (encoder input)

# The property head: proxies (GAUSS-II: latent -> 32 -> 4 donor proxies of the free ligand,
# GFN2-xTB charge, atomic dipole, D4 polarisability and Z) | gaps (GAUSS-I: latent +
# MPP/SDP/axial angle/donor Z of the relaxed Dy(H2O)5L2 -> 32 -> 8 -> 7 Kramers gaps from the
# crystal-field engine) | none (a plain VAE).
head: proxies
labels:
  n: 1000                    # ligands labelled (random); all others train unlabelled
  dataset: vae-labels.db     # stored labels: a rerun labels only what is missing
  workers: null              # labelling processes (null: one per core)
  fmax: 0.05                 # GFN2-xTB relaxation threshold, eV/Angstrom

max_epochs: 200              # the paper's stopping rule ends training earlier
batch_size: 100
seed: 0
output: vae.npz              # the model; vae.npz.ckpt lets an interrupted run resume
"""
