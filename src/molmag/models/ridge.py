"""Ridge regression with the regularisation chosen on a validation set or by leave-one-out.

Minimises ``|| y - X a ||^2 + lambda ||a||^2`` (Lunghi & Sanvito 2020, SI eq. 12) on
standardised features (the intercept is not penalised), for every lambda of a grid, and keeps
the lambda with the lowest validation RMSE (``select="validation"``) or the lowest
leave-one-out RMSE of the training rows themselves (``select="loo"``).  The solution for all
lambdas comes from one SVD of the training matrix.

Leave-one-out needs no refits: ridge is a linear smoother, yhat = H y with the hat matrix
H = 1 1^T / n + X_s (X_s^T X_s + lambda)^-1 X_s^T (the 1/n term with an intercept), whose
diagonal in the SVD X_s = U S V^T is h_ii = 1/n + sum_k U_ik^2 s_k^2 / (s_k^2 + lambda), and the
prediction of row i by the fit without it has the residual (y_i - yhat_i) / (1 - h_ii)
(Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed., Sec. 7.10.1;
scikit-learn's ``RidgeCV`` uses the same identity).  Repeated rows (a bootstrap resample) are
counted once for it, since a copy left in would predict its own left-out twin.  With few
structures and many features (434 monomial columns for ~100-200 structures in the quick
co-pdms campaign) a validation split of 10-20 structures picks lambdas orders of magnitude
apart from one committee member to the next; leave-one-out over all training rows is far
steadier (DEVELOPERS.md, "Ridge penalty by leave-one-out").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDAS = tuple(float(x) for x in np.logspace(-10, 3, 27))
#: how the penalty is chosen: on the validation rows, or by leave-one-out on the training rows
SELECTIONS = ("validation", "loo")


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


def loo_curve(x, y, lambdas=DEFAULT_LAMBDAS, intercept: bool = True
              ) -> list[tuple[float, float]]:
    """Leave-one-out RMSE over all target columns of the ridge fit of ``y`` (n, T) on ``x``
    (n, F) for each lambda, from one SVD (the closed form in the module docstring); repeated
    rows count once.  Needs at least three distinct rows."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if y.ndim == 1:
        y = y[:, None]
    _, first = np.unique(x, axis=0, return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3:
        raise ValueError(f"leave-one-out needs at least 3 distinct training rows, got {n}")
    mean, scale = _scales(x, intercept)
    u, s, _ = np.linalg.svd((x - mean) / scale, full_matrices=False)
    ymean = y.mean(axis=0) if intercept else np.zeros(y.shape[1])
    uty = u.T @ (y - ymean)
    curve = []
    for lam in lambdas:
        shrink = s**2 / (s**2 + lam)
        resid = y - ymean - u @ (shrink[:, None] * uty)
        h = (u**2) @ shrink + (1.0 / n if intercept else 0.0)
        loo = resid / np.maximum(1.0 - h, 1e-12)[:, None]
        curve.append((float(lam), float(np.sqrt(np.mean(loo**2)))))
    return curve


def fit_ridge(x_train, y_train, x_val=None, y_val=None, lambdas=DEFAULT_LAMBDAS,
              intercept: bool = True, select: str = "validation") -> RidgeFit:
    """Ridge fit of ``y_train`` (n, T) on ``x_train`` (n, F); lambda by validation RMSE over
    all target columns (or the smallest lambda of the grid without a validation set), or with
    ``select="loo"`` by the leave-one-out RMSE of the training rows (:func:`loo_curve`; the
    validation RMSE, if given, is then only reported in ``val_rmse``).

    With ``intercept=False`` the features are only scaled (by their RMS), never centred, and
    no constant is fitted: a model of the rows of an equivariant design matrix must stay
    linear, not affine, to stay equivariant."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, not {select!r}")
    x = np.asarray(x_train, float)
    y = np.asarray(y_train, float)
    if y.ndim == 1:
        y = y[:, None]
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{len(x)} feature rows for {len(y)} targets")
    if select == "loo" and len(np.unique(x, axis=0)) >= 3:
        loo = loo_curve(x, y, lambdas, intercept)
        chosen = fit_ridge(x, y, x_val, y_val, (min(loo, key=lambda c: c[1])[0],), intercept)
        chosen.curve = loo
        return chosen
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


__all__ = ["RidgeFit", "fit_ridge", "loo_curve", "DEFAULT_LAMBDAS", "SELECTIONS"]
