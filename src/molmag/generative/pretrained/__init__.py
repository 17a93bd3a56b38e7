"""VAE models shipped inside the molmag package (no download at run time).

``gauss-ii-qm9``: the GAUSS-II model (autoregressive GRU decoder, SMILES, latent 32, head
z -> 32 -> 4 donor proxies) trained on the QM9 ligand corpus by
``scripts/train_pretrained_vae.py``; its training time, epochs, labels and metrics are in
the file's header (``molmag vae evaluate gauss-ii-qm9``).

``gauss-ii-qm9-selfies``: the same model, settings, corpus and labels on SELFIES strings
(``scripts/train_pretrained_vae.py ... --representation selfies``): every string it decodes is
a molecule (``molmag vae evaluate gauss-ii-qm9-selfies``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: name -> file in this package
MODELS = {"gauss-ii-qm9": "gauss-ii-qm9.npz",
          "gauss-ii-qm9-selfies": "gauss-ii-qm9-selfies.npz"}
DEFAULT = "gauss-ii-qm9"


def pretrained_path(name: str = DEFAULT) -> Path:
    """The file of a shipped model; ValueError naming the known ones otherwise."""
    if name not in MODELS:
        raise ValueError(f"no pretrained VAE called {name!r}; shipped: {', '.join(MODELS)}")
    path = Path(str(resources.files(__name__).joinpath(MODELS[name])))
    if not path.is_file():
        raise FileNotFoundError(f"pretrained VAE {name!r}: {path.name} is not in this "
                                "installation (its training has not finished: "
                                "scripts/train_pretrained_vae.py train, then ship); give a "
                                "model file from `molmag vae train` instead")
    return path


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A model argument of the CLI: a shipped model's name (None = the default,
    ``gauss-ii-qm9``) or a path to a model file."""
    if name_or_path is None:
        return pretrained_path(DEFAULT)
    p = Path(name_or_path)
    if str(name_or_path) in MODELS and not p.exists():
        return pretrained_path(str(name_or_path))
    return p


__all__ = ["MODELS", "DEFAULT", "pretrained_path", "resolve_model"]
