"""Labelled datasets at scale: structures from builders, samplers, files or datasets; GFN2-xTB,
ligand-field and crystal-field labels; resumable runs on Dask (``molmag label``)."""

from molmag.labelling.config import LabelConfig, load_label_config
from molmag.labelling.pipeline import LabelRun, Reporter, RunSummary, run_labelling

__all__ = ["LabelConfig", "load_label_config", "LabelRun", "Reporter", "RunSummary",
           "run_labelling"]
