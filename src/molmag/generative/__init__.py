"""Generative ligand design: ligand corpora, SMILES vocabularies, VAEs and sampling."""
