"""Post-hoc calibration of committee uncertainties, and the numbers that say whether a spread
can be trusted.

A committee's raw spread (Zaverkin et al. 2022, eq. 12) measures how much its members
disagree, not how wrong their mean is: members trained on nearly the same data agree with each
other far better than with the reference (on [Co(pdms)2]2- the covariant ridge's raw spread of
D was 7.5x smaller than its error).  Calibration maps the raw spread sigma of every predicted
quantity to a standard deviation of the error, fitted on the validation split (never on the
test split) by minimising the Gaussian negative log-likelihood

    NLL = 1/n sum_i [ log sigma_c,i + e_i^2 / (2 sigma_c,i^2) ] + const,        (1)

with e_i = prediction - reference.  Three maps are offered (``method``):

* ``"scale"``        sigma_c = s sigma.  Eq. (1) has the closed-form minimum
  s^2 = mean(e_i^2 / sigma_i^2) (the variance scaling of apax and of Busk et al. 2022).
* ``"scale-floor"``  sigma_c = sqrt(s^2 sigma^2 + f^2), s, f >= 0: the same scale plus a
  constant floor f (in the quantity's unit) for the error the members share (their common
  bias).  Fitted by eq. (1) numerically; it reduces to ``scale`` when f = 0 is best and gives a
  constant, honest sigma even for a committee of one (what any method falls back to when
  some spreads are zero).
* ``"conformal"``    sigma_c = q sigma with q the split-conformal quantile of |e_i| / sigma_i
  at 68.27 % (so that +-1 sigma_c covers 68 % of new errors by construction, Angelopoulos &
  Bates 2021); the 2-sigma interval is then 2 q sigma.  The default: the errors of the
  networks are heavier-tailed than a Gaussian, and the NLL-fitted scales, pulled up by the
  tail, then cover 84 % within +-1 sigma on [Co(pdms)2]2- (GM-NN, benchmarks/calibration.py)
  where the conformal quantile covers 75 % and still 95 % within +-2 sigma.

One :class:`Calibration` per predicted quantity (``zfs_tensor`` elements together, ``zfs_D``,
``zfs_E``, ``energy``, ``forces`` components together, ``kd_energies`` levels together,
``cf_parameters`` together); :func:`calibration_report` gives the coverage of +-1 and +-2
sigma (expected 0.683 and 0.954 for Gaussian errors), Spearman's rank correlation of |error|
with sigma (does a larger sigma mean a larger error?) and the NLL.  Errors and sigmas are in
the quantity's own unit (cm-1, eV, eV/Angstrom).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS = ("scale", "scale-floor", "conformal")
#: Gaussian coverage of +-1 and +-2 standard deviations.
EXPECTED_1SIGMA = 0.6826894921370859
EXPECTED_2SIGMA = 0.9544997361036416
#: the smallest spread taken as information (relative to the largest): members that agree to
#: round-off carry no sigma at all.
_TINY = 1e-12


@dataclass
class Calibration:
    """The map from a raw committee spread to a calibrated standard deviation (same unit).

    ``scale`` s and ``floor`` f (unit of the quantity) define sigma_c = sqrt(s^2 sigma^2 +
    f^2) for ``scale``/``scale-floor``/``conformal`` alike (f = 0 except for ``scale-floor``).
    ``n`` is the number of validation values it was fitted on; ``fitted`` is False for the
    identity (old model files, no validation split).  ``threshold`` is the calibrated sigma
    above which a prediction is flagged as uncertain (twice the validation's 95th percentile)."""

    method: str = "scale"
    scale: float = 1.0
    floor: float = 0.0
    n: int = 0
    fitted: bool = False
    threshold: float = float("inf")
    note: str = ""

    def apply(self, sigma) -> np.ndarray:
        """Calibrated standard deviation for raw committee spreads ``sigma`` (any shape)."""
        s = np.asarray(sigma, float)
        if self.floor == 0.0:
            return self.scale * s
        return np.sqrt((self.scale * s) ** 2 + self.floor ** 2)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "scale": self.scale, "floor": self.floor, "n": self.n,
                "fitted": self.fitted,
                "threshold": None if not np.isfinite(self.threshold) else self.threshold,
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        thr = d.get("threshold")
        return cls(method=str(d.get("method", "scale")), scale=float(d.get("scale", 1.0)),
                   floor=float(d.get("floor", 0.0)), n=int(d.get("n", 0)),
                   fitted=bool(d.get("fitted", False)),
                   threshold=float("inf") if thr is None else float(thr),
                   note=str(d.get("note", "")))

    @classmethod
    def identity(cls, note: str = "") -> Calibration:
        return cls(note=note)


def _flat(errors, sigma) -> tuple[np.ndarray, np.ndarray]:
    e = np.abs(np.asarray(errors, float).ravel())
    s = np.asarray(sigma, float).ravel()
    if e.shape != s.shape:
        raise ValueError(f"errors {e.shape} and spreads {s.shape} differ in size")
    ok = np.isfinite(e) & np.isfinite(s)
    return e[ok], s[ok]


def gaussian_nll(errors, sigma) -> float:
    """Mean Gaussian negative log-likelihood of errors under N(0, sigma^2), eq. (1) with the
    constant 1/2 log(2 pi) included."""
    e, s = _flat(errors, sigma)
    s = np.maximum(s, _TINY)
    return float(np.mean(np.log(s) + 0.5 * (e / s) ** 2 + 0.5 * np.log(2 * np.pi)))


def fit_calibration(errors, sigma, method: str = "conformal") -> Calibration:
    """Fit the map of ``method`` (see the module docstring) to validation errors
    (prediction - reference) and raw committee spreads of one quantity."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of "
                         f"{', '.join(METHODS)}")
    e, s = _flat(errors, sigma)
    if e.size < 2:
        return Calibration.identity("too few validation values to calibrate")
    informative = s > _TINY * max(1.0, float(np.max(e)))
    note = ""
    if method != "scale-floor" and not informative.all():
        # members that agree exactly on some values (a committee of one, identical members):
        # a pure scale would give those a zero sigma; fit a floor as well
        note = f"{int((~informative).sum())} zero spreads: fitted scale-floor instead of {method}"
        method = "scale-floor"
    if method == "scale-floor":
        cal = _fit_scale_floor(e, s)
    elif method == "scale":
        cal = Calibration("scale", float(np.sqrt(np.mean((e / s) ** 2))), 0.0, int(e.size),
                          True)
    else:
        z = np.sort(e / s)
        # finite-sample split-conformal quantile: the ceil((n+1) p)-th smallest score
        k = min(z.size, int(np.ceil((z.size + 1) * EXPECTED_1SIGMA)))
        # (1 + 1e-12): the k-th value itself must count as covered, |e_k| <= q sigma_k, which
        # (|e_k| / sigma_k) * sigma_k can miss by one rounding
        cal = Calibration("conformal", float(z[k - 1]) * (1.0 + 1e-12), 0.0, int(e.size), True)
    cal.note = note
    sc = cal.apply(s)
    cal.threshold = float(2.0 * np.quantile(sc, 0.95)) if sc.size else float("inf")
    return cal


def _fit_scale_floor(e: np.ndarray, s: np.ndarray) -> Calibration:
    """Minimise eq. (1) over sigma_c^2 = a s^2 + b, a, b >= 0 (a = scale^2, b = floor^2).

    Parametrised by log a, log b (both free) and polished by scipy's L-BFGS-B, started from
    the closed-form pure scale and the pure floor; the best of the candidates, including the
    two limits themselves, is kept."""
    from scipy.optimize import minimize

    e2, s2 = e ** 2, s ** 2
    mse = float(np.mean(e2))
    if mse == 0.0:
        return Calibration("scale-floor", 1.0, 0.0, int(e.size), True)

    def nll(a: float, b: float) -> float:
        v = np.maximum(a * s2 + b, _TINY * mse + 1e-300)
        return float(np.mean(0.5 * np.log(v) + 0.5 * e2 / v))

    cands: list[tuple[float, float]] = [(0.0, mse)]
    pos = s2 > 0
    if pos.any():
        a0 = float(np.mean(e2[pos] / s2[pos]))
        cands.append((a0, 0.0))
        cands.append((0.5 * a0, 0.5 * mse))

        def f(x):
            return nll(np.exp(x[0]), np.exp(x[1]))

        for a_start, b_start in list(cands):
            x0 = np.log([max(a_start, 1e-6 * a0), max(b_start, 1e-6 * mse)])
            r = minimize(f, x0, method="L-BFGS-B")
            cands.append((float(np.exp(r.x[0])), float(np.exp(r.x[1]))))
    a, b = min(cands, key=lambda ab: nll(*ab))
    return Calibration("scale-floor", float(np.sqrt(a)), float(np.sqrt(b)), int(e.size), True)


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for constant input."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def calibration_report(errors, sigma, cal: Calibration | None = None) -> dict[str, Any]:
    """How well calibrated sigmas describe errors: ``coverage_1sigma`` and
    ``coverage_2sigma`` (share of |e| <= k sigma), ``spearman_abs_error_sigma``, the mean
    ``nll``, ``rmse`` and the ``rmse_sigma`` (root mean square sigma; equal to the RMSE for a
    calibrated model), and the calibration's ``scale`` (and ``floor``, ``method``).
    ``sigma`` are the calibrated sigmas."""
    e, s = _flat(errors, sigma)
    if e.size == 0:
        return {"n": 0}
    out: dict[str, Any] = {"n": int(e.size),
           "coverage_1sigma": float(np.mean(e <= s)),
           "coverage_2sigma": float(np.mean(e <= 2 * s)),
           "spearman_abs_error_sigma": spearman(e, s),
           "nll": gaussian_nll(e, s),
           "rmse": float(np.sqrt(np.mean(e ** 2))),
           "rmse_sigma": float(np.sqrt(np.mean(s ** 2)))}
    if cal is not None:
        out.update({"scale": cal.scale, "floor": cal.floor, "method": cal.method,
                    "fitted": cal.fitted})
    return out


def reliability_curve(errors, sigma, levels=None) -> tuple[np.ndarray, np.ndarray]:
    """Observed against expected coverage of central Gaussian intervals: for each expected
    probability p, the share of |e| <= z_p sigma with z_p = sqrt(2) erfinv(p).  A calibrated
    model lies on the diagonal."""
    from scipy.special import erfinv

    e, s = _flat(errors, sigma)
    p = np.linspace(0.05, 0.99, 20) if levels is None else np.asarray(levels, float)
    z = np.sqrt(2.0) * erfinv(p)
    obs = np.array([np.mean(e <= zk * s) if e.size else np.nan for zk in z])
    return p, obs


@dataclass
class CalibrationSet:
    """The calibrations of one committee, by quantity (``zfs_tensor``, ``zfs_D``, ...)."""

    by_key: dict[str, Calibration] = field(default_factory=dict)

    def get(self, key: str) -> Calibration:
        return self.by_key.get(key) or Calibration.identity()

    @property
    def fitted(self) -> bool:
        return bool(self.by_key) and all(c.fitted for c in self.by_key.values())

    def as_dict(self) -> dict[str, Any]:
        return {k: c.as_dict() for k, c in self.by_key.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CalibrationSet:
        return cls({k: Calibration.from_dict(v) for k, v in (d or {}).items()})


__all__ = ["Calibration", "CalibrationSet", "METHODS", "fit_calibration", "calibration_report",
           "reliability_curve", "gaussian_nll", "spearman", "EXPECTED_1SIGMA",
           "EXPECTED_2SIGMA"]
