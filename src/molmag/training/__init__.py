"""Training workflow of molmag's models: configuration, data splits, metrics, plots, and the
``train`` / ``evaluate`` / ``predict`` / ``learning_curve`` functions behind the CLI."""

from molmag.training.config import TrainConfig, load_train_config
from molmag.training.run import TrainResult, evaluate, learning_curve, predict, train
from molmag.training.templates import train_template

__all__ = ["TrainConfig", "load_train_config", "TrainResult", "train", "evaluate", "predict",
           "learning_curve", "train_template"]
