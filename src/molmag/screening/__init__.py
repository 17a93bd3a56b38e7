"""Genetic-algorithm screening of ligands for Co(II) and Dy(III) magnets (Frangoulis et al.
2025): genes (:mod:`.genes`), objectives through the labelling pipeline (:mod:`.objectives`),
the random-forest pre-screen (:mod:`.prescreen`), the resumable search with random-search
and VAE comparison arms (:mod:`.loop`) and its outputs (:mod:`.report`).  ``molmag ga``."""
