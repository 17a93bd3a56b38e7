"""Ridge regression with the regularisation chosen on a validation set.

Minimises ``|| y - X a ||^2 + lambda ||a||^2`` (Lunghi & Sanvito 2020, SI eq. 12) on
standardised features (the intercept is not penalised), for every lambda of a grid, and keeps
the lambda with the lowest validation RMSE.  The solution for all lambdas comes from one SVD
of the training matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDAS = tuple(float(x) for x in np.logspace(-10, 3, 27))


@dataclass
class RidgeFit:
    """Coefficients of y = ((x - mean) / scale) @ coef + intercept, per target column."""

    coef: np.ndarray          # (F, T)
    intercept: np.ndarray     # (T,)
    mean: np.ndarray          # (F,)
    scale: np.ndarray         # (F,)
    lam: float
    val_rmse: float | None
    curve: list[tuple[float, float]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, float) - self.mean) / self.scale) @ self.coef + self.intercept

    def as_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}coef": self.coef, f"{prefix}intercept": self.intercept,
                f"{prefix}mean": self.mean, f"{prefix}scale": self.scale,
                f"{prefix}lam": np.array(self.lam)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> RidgeFit:
        return cls(arrays[f"{prefix}coef"], arrays[f"{prefix}intercept"],
                   arrays[f"{prefix}mean"], arrays[f"{prefix}scale"],
                   float(arrays[f"{prefix}lam"]), None, [])


def _scales(x: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0) if center else np.zeros(x.shape[1])
    scale = np.sqrt(((x - mean) ** 2).mean(axis=0))
    scale[scale < 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))] = 1.0
    return mean, scale


def fit_ridge(x_train, y_train, x_val=None, y_val=None, lambdas=DEFAULT_LAMBDAS,
              intercept: bool = True) -> RidgeFit:
    """Ridge fit of ``y_train`` (n, T) on ``x_train`` (n, F); lambda by validation RMSE over
    all target columns (or the smallest lambda of the grid without a validation set).

    With ``intercept=False`` the features are only scaled (by their RMS), never centred, and
    no constant is fitted: a model of the rows of an equivariant design matrix must stay
    linear, not affine, to stay equivariant."""
    x = np.asarray(x_train, float)
    y = np.asarray(y_train, float)
    if y.ndim == 1:
        y = y[:, None]
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{len(x)} feature rows for {len(y)} targets")
    mean, scale = _scales(x, intercept)
    xs = (x - mean) / scale
    ymean = y.mean(axis=0) if intercept else np.zeros(y.shape[1])
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
    uty = u.T @ (y - ymean)
    curve: list[tuple[float, float]] = []
    best: tuple[float, RidgeFit] | None = None
    for lam in lambdas:
        coef = vt.T @ ((s / (s**2 + lam))[:, None] * uty)
        fit = RidgeFit(coef, ymean.copy(), mean, scale, float(lam), None, [])
        if x_val is not None and len(x_val):
            pred = fit.predict(x_val)
            yv = np.asarray(y_val, float).reshape(pred.shape)
            rmse = float(np.sqrt(np.mean((pred - yv) ** 2)))
        else:
            rmse = np.nan
        curve.append((float(lam), rmse))
        if best is None or (np.isfinite(rmse) and rmse < best[0]):
            best = (rmse, fit)
    if best is None:
        raise ValueError("fit_ridge needs at least one lambda")
    fit = best[1]
    fit.val_rmse = best[0] if np.isfinite(best[0]) else None
    fit.curve = curve
    return fit


__all__ = ["RidgeFit", "fit_ridge", "DEFAULT_LAMBDAS"]
