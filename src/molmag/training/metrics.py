"""Error metrics of a model's predictions against dataset labels, per target.

All errors are prediction - reference; MAE = mean |error|, RMSE = sqrt(mean error^2), in the
units of the label (cm-1 for D tensors, Kramers doublets and crystal-field parameters, eV and
eV/Angstrom for energies and forces; energies are also given in meV/atom).

D tensors: per unique Cartesian component (xx, yy, zz, xy, xz, yz), over all nine elements
(``D_ij``), of D and E (from :func:`molmag.physics.zfs.zfs_from_tensor`), and the easy-axis
angle error: the angle between the predicted and reference principal z axes (the axis of the
eigenvalue of largest magnitude), folded into [0, 90] degrees since an axis has no sign.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from molmag.models.targets import reference_values, resolve, target_spec
from molmag.physics.zfs import zfs_from_tensor

COMPONENTS = {"xx": (0, 0), "yy": (1, 1), "zz": (2, 2), "xy": (0, 1), "xz": (0, 2),
              "yz": (1, 2)}


def errors(pred, ref) -> dict[str, float]:
    """MAE, RMSE and max |error| of two arrays of the same shape (and the reference std)."""
    p, r = np.asarray(pred, float), np.asarray(ref, float)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} != reference shape {r.shape}")
    e = (p - r).ravel()
    if e.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "max": float("nan"),
                "ref_std": float("nan"), "n": 0}
    return {"mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(np.mean(e ** 2))),
            "max": float(np.max(np.abs(e))), "ref_std": float(np.std(r.ravel())),
            "n": int(p.shape[0]) if p.ndim else 1}


def axis_angle_deg(t_pred: np.ndarray, t_ref: np.ndarray) -> np.ndarray:
    """Angle (degrees, 0..90) between the principal z axes of pairs of D tensors."""
    out = []
    for a, b in zip(t_pred, t_ref):
        za, zb = zfs_from_tensor(a).axes[:, 2], zfs_from_tensor(b).axes[:, 2]
        out.append(np.degrees(np.arccos(min(1.0, abs(float(za @ zb))))))
    return np.array(out)


def zfs_metrics(pred: dict[str, Any], refs: dict[str, Any], frames: Sequence = ()
                ) -> dict[str, Any]:
    """D-tensor metrics; ``refs`` from :func:`molmag.models.targets.reference_values`
    (``zfs_tensor``, ``zfs_D``, ``zfs_E``)."""
    t_p, t_r = np.asarray(pred["zfs_tensor"], float), np.asarray(refs["zfs_tensor"], float)
    ang = axis_angle_deg(t_p, t_r)
    out = {"D_ij": errors(t_p, t_r),
           "components": {k: errors(t_p[:, i, j], t_r[:, i, j])
                          for k, (i, j) in COMPONENTS.items()},
           "D": errors(pred["zfs_D"], refs["zfs_D"]), "E": errors(pred["zfs_E"], refs["zfs_E"]),
           "easy_axis_angle_deg": {"mean": float(ang.mean()), "median": float(np.median(ang)),
                                   "max": float(ang.max())}}
    if "zfs_D_std" in pred:
        out["committee_D_std_mean"] = float(np.mean(pred["zfs_D_std"]))
    return out


def energy_metrics(pred: dict[str, Any], refs: dict[str, Any], frames: Sequence
                   ) -> dict[str, Any]:
    """Energy (eV and meV/atom, ``frames`` give the atom counts) and force metrics."""
    e_p, e_r = np.asarray(pred["energy"], float), np.asarray(refs["energy"], float)
    n = np.asarray([len(a) for a in frames], float)
    out: dict[str, Any] = {"energy_eV": errors(e_p, e_r),
                           "energy_meV_per_atom": errors(1000 * e_p / n, 1000 * e_r / n)}
    if refs.get("forces") is not None:
        out["forces_eV_per_A"] = errors(np.concatenate([np.ravel(f) for f in pred["forces"]]),
                                        np.concatenate([np.ravel(f) for f in refs["forces"]]))
    if "energy_std" in pred:
        out["committee_energy_std_mean_eV"] = float(np.mean(pred["energy_std"]))
    return out


def kd_metrics(pred: dict[str, Any], refs: dict[str, Any], frames: Sequence = ()
               ) -> dict[str, Any]:
    """Kramers-doublet level metrics (the ground level, 0 by definition, left out)."""
    p, r = np.asarray(pred["kd_energies"], float), np.asarray(refs["kd_energies"], float)
    levels = {f"E{i}": errors(p[:, i], r[:, i]) for i in range(1, r.shape[1])}
    out: dict[str, Any] = {"all_levels": errors(p[:, 1:], r[:, 1:]), "levels": levels}
    out["gap_E01"] = levels["E1"]
    return out


def cf_vector(labels: Sequence[dict], keys: Sequence[str], convention: str,
              frames: Sequence | None = None) -> np.ndarray:
    """Reference crystal-field parameters as an (n, K) array in ``keys`` order; a row in
    another convention is converted (with the ion of the structure in ``frames``, which
    Wybourne parameters need)."""
    from molmag.physics.crystal_field import convert_cf_parameters

    rows = []
    for n, lab in enumerate(labels):
        vals = lab["values"]
        if lab["convention"] != convention:
            ion = None
            if frames:
                from molmag.models.cf_ridge import _ion_of

                ion = _ion_of(frames[n])
            vals = convert_cf_parameters(lab, convention, ion)["values"]
        rows.append([float(vals.get(k, 0.0)) for k in keys])
    return np.array(rows)


def cf_metrics(pred: dict[str, Any], refs: dict[str, Any], frames: Sequence = ()
               ) -> dict[str, Any]:
    """Crystal-field parameter metrics, all and per rank k; ``refs["cf_parameters"]`` is
    the (n, K) reference array in the prediction's columns and convention."""
    keys, conv = pred["cf_keys"], pred["cf_convention"]
    r = np.asarray(refs["cf_parameters"], float)
    p = np.asarray(pred["cf_parameters"], float)
    ranks = sorted({int(k.split(",")[0]) for k in keys})
    return {"all": errors(p, r), "convention": conv,
            "ranks": {f"k={k}": errors(p[:, [i for i, key in enumerate(keys)
                                             if int(key.split(",")[0]) == k]],
                                       r[:, [i for i, key in enumerate(keys)
                                             if int(key.split(",")[0]) == k]])
                      for k in ranks}}


def metrics(target: str, pred: dict[str, Any], ref: dict[str, Any], frames) -> dict[str, Any]:
    """Metrics of ``pred`` (a committee prediction) against ``ref`` (a targets dict): the
    function the target's spec names (:attr:`molmag.models.targets.TargetSpec.metrics`)."""
    frames = list(frames)
    refs = reference_values(target, pred, ref, frames)
    return resolve(target_spec(target).metrics)(pred, refs, frames)


def headline(target: str, m: dict[str, Any]) -> dict[str, float]:
    """The few numbers a table shows for a target
    (:attr:`molmag.models.targets.TargetSpec.headline`; absent metrics are left out)."""
    out = {}
    for column, path in target_spec(target).headline:
        v: Any = m
        for part in path.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is not None:
            out[column] = v
    return out


__all__ = ["errors", "axis_angle_deg", "metrics", "headline", "zfs_metrics", "energy_metrics",
           "kd_metrics", "cf_metrics", "cf_vector", "COMPONENTS"]
