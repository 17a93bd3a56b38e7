r"""The random-forest pre-screen of the GA's children (Frangoulis et al. 2025: a classifier
trained on the individuals evaluated so far that cut the cost about 3x).

Each generation breeds ``oversample`` times more valid, new children than it evaluates.  A
scikit-learn :class:`~sklearn.ensemble.RandomForestClassifier` on Morgan fingerprints
(radius 2, 2048 bits; an individual's fingerprint is the sum over its sites) learns
"worth evaluating" = fitness at or above the ``positive_quantile`` of the fitnesses so far
(a failed evaluation is "not worth"); the children with the highest predicted probability
are evaluated.  A fraction ``explore`` of the evaluated slots goes to children drawn at
random among the rejected, so that the classifier's recall can be measured without bias:

* precision = TP / (children it chose that were evaluated), over the chosen children;
* recall = TP / (TP + FN), with FN estimated from the audited rejected children scaled by
  the number rejected (inverse-probability weighting, Horvitz-Thompson).

Until ``min_train`` evaluations with both classes exist, children are taken at random
(metrics then ``None``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .genes import FP_BITS, morgan_bits


def features(keys: Sequence[str]) -> np.ndarray:
    """``(n, FP_BITS)`` fingerprint counts of individual keys (sites summed)."""
    out = np.zeros((len(keys), FP_BITS), np.float32)
    for i, k in enumerate(keys):
        for lig in k.split("."):
            out[i] += morgan_bits(lig)
    return out


@dataclass
class Selection:
    """The children chosen for evaluation: ``chosen`` (predicted worth it), ``audit``
    (rejected, drawn at random), how many were rejected in all, and the classifier's
    probability for each chosen/audited child (None before the classifier is trained)."""

    chosen: list[str]
    audit: list[str]
    n_rejected: int
    proba: dict[str, float] | None


class Prescreen:
    def __init__(self, *, positive_quantile: float = 0.5, explore: float = 0.25,
                 min_train: int = 8, n_estimators: int = 200, seed: int = 0):
        self.q = positive_quantile
        self.explore = explore
        self.min_train = min_train
        self.n_estimators = n_estimators
        self.seed = seed
        self.model: Any = None  # a fitted RandomForestClassifier
        self.threshold: float | None = None

    def fit(self, fitness: dict[str, float | None]) -> bool:
        """Train on ``{key: fitness or None (failed)}``; False if too few or one class."""
        from sklearn.ensemble import RandomForestClassifier

        keys = list(fitness)
        ok = [v for v in fitness.values() if v is not None]
        if len(keys) < self.min_train or not ok:
            self.model = None
            return False
        self.threshold = float(np.quantile(ok, self.q))
        y = np.array([v is not None and v >= self.threshold for v in fitness.values()])
        if y.all() or not y.any():
            self.model = None
            return False
        self.model = RandomForestClassifier(n_estimators=self.n_estimators, random_state=self.seed,
                                            n_jobs=1, class_weight="balanced")
        self.model.fit(features(keys), y)
        return True

    def positive(self, fitness: float | None) -> bool:
        return fitness is not None and self.threshold is not None and fitness >= self.threshold

    def select(self, children: Sequence[str], n: int, rng: random.Random) -> Selection:
        """``n`` of ``children`` to evaluate (all of them if there are at most ``n``)."""
        children = list(children)
        if len(children) <= n or self.model is None:
            pick = children if len(children) <= n else rng.sample(children, n)
            return Selection(pick, [], 0, None)
        p = self.model.predict_proba(features(children))[:, 1]
        order = np.argsort(-p, kind="stable")
        n_audit = int(round(self.explore * n))
        chosen = [children[i] for i in order[:n - n_audit]]
        rejected = [children[i] for i in order[n - n_audit:]]
        audit = rng.sample(rejected, min(n_audit, len(rejected)))
        proba = {children[i]: float(p[i]) for i in range(len(children))}
        return Selection(chosen, audit, len(rejected),
                         {k: proba[k] for k in chosen + audit})


def selection_metrics(sel: Selection, fitness: dict[str, float | None],
                      screen: Prescreen) -> dict:
    """Precision and (estimated) recall of one generation's pre-screen, with the counts."""
    if sel.proba is None:
        return {"trained": False}
    tp = sum(screen.positive(fitness.get(k)) for k in sel.chosen)
    fp = len(sel.chosen) - tp
    audit_pos = sum(screen.positive(fitness.get(k)) for k in sel.audit)
    fn_est = audit_pos / len(sel.audit) * sel.n_rejected if sel.audit else 0.0
    return {"trained": True, "threshold": screen.threshold, "chosen": len(sel.chosen),
            "audited": len(sel.audit), "rejected": sel.n_rejected, "tp": tp, "fp": fp,
            "audit_positive": audit_pos,
            "precision": tp / len(sel.chosen) if sel.chosen else None,
            "recall": tp / (tp + fn_est) if tp + fn_est > 0 else None,
            "audit_positive_rate": audit_pos / len(sel.audit) if sel.audit else None}


__all__ = ["features", "Prescreen", "Selection", "selection_metrics"]
