"""Finite-temperature behaviour of a complex: vibrations, spin-phonon couplings and magnetic
relaxation (molecular dynamics and active learning come here next).  Uses models, chem and
physics; workflows and the CLI use it."""
