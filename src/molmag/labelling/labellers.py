"""The work a Dask worker does: label a batch of structures, never raising for one of them.

Each structure travels as a plain dict (``id``, ``numbers``, ``positions``, ``charge``,
``multiplicity``, ``metal_index``, ``need``: the labellers still missing) and comes back as
``{"id", "labels", "provenance", "failures": {labeller: reason}, "seconds"}``.  A labeller that
fails for one structure is recorded as a failure of that structure and that labeller; the
other labellers and structures go on.

Labellers (order matters: ``ligand_field`` may use the xTB charges of the same structure):

``xtb``            GFN2-xTB (tblite): energy (eV), forces (eV/Angstrom), charges (e),
                   dipole (e*Angstrom), polarisabilities (D4, Angstrom^3)
``ligand_field``   D tensor (cm-1) from molmag's AOM + Racah + SOC engine
``crystal_field``  Kramers doublets (cm-1), g values and Stevens parameters (cm-1) from
                   molmag's PCEM/REC engine
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ase import Atoms

import molmag
from molmag.io.provenance import now_iso

ORDER = ("xtb", "ligand_field", "crystal_field")


def _atoms(item: dict) -> Atoms:
    a = Atoms(numbers=item["numbers"], positions=item["positions"])
    a.info.update(charge=int(item["charge"]), multiplicity=int(item["multiplicity"]))
    return a


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, (ValueError, RuntimeError)) \
        else text


def label_xtb(atoms: Atoms, opts: dict, cache: dict) -> tuple[dict, dict]:
    from molmag.chem.xtb import METHOD, XTBCalculator, dftd4_version, tblite_version

    props = list(opts.get("properties", ["energy", "forces", "charges"]))
    calc = XTBCalculator(accuracy=opts.get("accuracy", 1.0),
                         electronic_temperature=opts.get("electronic_temperature", 300.0),
                         max_iterations=opts.get("max_iterations", 250))
    calc.calculate(atoms, props)
    labels = {p: calc.results[p] for p in props}
    cache["xtb_charges"] = calc.results["charges"]
    params = calc.settings()
    params.update(charge=int(atoms.info["charge"]), multiplicity_xtb=1 + _uhf(atoms))
    prov = {"method": METHOD, "parameters": params, "program": "tblite",
            "version": tblite_version(), "date": now_iso()}
    out = {p: dict(prov) for p in props}
    if "polarizabilities" in props:
        out["polarizabilities"] = {**prov, "method": "D4 atomic polarisabilities",
                                   "program": "dftd4", "version": dftd4_version()}
    return labels, out


def _uhf(atoms: Atoms) -> int:
    from molmag.chem.xtb import xtb_spin
    return xtb_spin(atoms, int(atoms.info["charge"]), int(atoms.info["multiplicity"]))[1]


def label_ligand_field(atoms: Atoms, opts: dict, cache: dict, metal_index,
                       donors: list[int] | None = None) -> tuple[dict, dict]:
    from molmag.physics.ligand_field import LigandFieldCalculator

    kw = {k: opts.get(k) for k in ("ion", "B", "C", "zeta", "k")}
    if opts.get("point_charges", "none") == "xtb":
        if "xtb_charges" not in cache:
            raise ValueError("point_charges: xtb needs the xTB charges, and xTB failed or "
                             "did not run for this structure")
        kw["outer_charges"] = cache["xtb_charges"]
        kw["outer_cutoff"] = opts.get("outer_cutoff")
    calc = LigandFieldCalculator(metal_index=metal_index, charge=atoms.info["charge"],
                                 multiplicity=atoms.info["multiplicity"],
                                 donors=opts.get("donors") or donors, **kw)
    t = calc.get_property("zfs_tensor", atoms)
    info = calc.info
    params = {"ion": info.get("ion"), "ion_from": info.get("ion_from"),
              "B": info.get("B"), "C": info.get("C"), "zeta": info.get("zeta"),
              "k": info.get("k"), "source": info.get("source"),
              "point_charges": opts.get("point_charges", "none"),
              "donors": [{"index": d["index"], "type": d.get("type")}
                         for d in info.get("donors", [])]}
    prov = {"method": "ligand-field AOM + Racah + SOC", "parameters": params,
            "program": "molmag", "version": molmag.__version__, "date": now_iso()}
    return {"zfs_tensor": np.asarray(t)}, {"zfs_tensor": prov}


def label_crystal_field(atoms: Atoms, opts: dict, cache: dict, metal_index,
                        donors: list[int] | None = None) -> tuple[dict, dict]:
    from molmag.physics.crystal_field import CrystalFieldCalculator

    calc = CrystalFieldCalculator(ion=opts.get("ion"), charges=opts.get("charges", "rec"),
                                  shielding=bool(opts.get("shielding", False)),
                                  cutoff=opts.get("cutoff"), metal_index=metal_index,
                                  donors=opts.get("donors") or donors)
    kd = calc.get_property("kd_energies", atoms)
    g = calc.get_property("g_tensors", atoms)
    cf = calc.cf_parameters_dict(atoms)
    params = {"ion": opts.get("ion"), "charges": opts.get("charges", "rec"),
              "shielding": bool(opts.get("shielding", False)), "cutoff": opts.get("cutoff"),
              "donors": [int(i) for i in calc.point_charges.donors]}
    prov = {"method": "crystal-field point charges (PCEM/REC)", "parameters": params,
            "program": "molmag", "version": molmag.__version__, "date": now_iso()}
    return ({"kd_energies": np.asarray(kd), "g_tensors": np.asarray(g), "cf_parameters": cf},
            {k: dict(prov) for k in ("kd_energies", "g_tensors", "cf_parameters")})


def label_one(item: dict, spec: dict[str, dict]) -> dict:
    """Run the labellers ``item["need"]`` (in :data:`ORDER`) on one structure."""
    t0 = time.perf_counter()
    labels: dict[str, Any] = {}
    provenance: dict[str, dict] = {}
    failures: dict[str, str] = {}
    cache: dict = {}
    try:
        atoms = _atoms(item)
    except Exception as exc:  # malformed row: every labeller fails with the same reason
        return {"id": item.get("id"), "labels": {}, "provenance": {},
                "failures": {n: _short(exc) for n in item.get("need", [])}, "seconds": 0.0}
    for name in ORDER:
        if name not in item["need"]:
            continue
        try:
            if name == "xtb":
                lab, prov = label_xtb(atoms, spec[name], cache)
            elif name == "ligand_field":
                lab, prov = label_ligand_field(atoms, spec[name], cache, item.get("metal_index"),
                                               item.get("donors"))
            else:
                lab, prov = label_crystal_field(atoms, spec[name], cache, item.get("metal_index"),
                                                item.get("donors"))
        except Exception as exc:  # recorded per structure and labeller, never fatal
            failures[name] = _short(exc)
            continue
        labels.update(lab)
        provenance.update(prov)
    return {"id": item["id"], "labels": labels, "provenance": provenance,
            "failures": failures, "seconds": time.perf_counter() - t0}


def label_batch(items: list[dict], spec: dict[str, dict], threads: int | None = 1) -> list[dict]:
    """:func:`label_one` over a batch (the unit of work sent to a Dask worker), with BLAS and
    OpenMP limited to ``threads`` per worker (None: no limit)."""
    from threadpoolctl import threadpool_limits

    if "xtb" in spec:
        import tblite.interface  # noqa: F401  (load its OpenMP runtime before limiting it)
    if threads is None:
        return [label_one(it, spec) for it in items]
    with threadpool_limits(limits=threads):
        return [label_one(it, spec) for it in items]


__all__ = ["ORDER", "label_one", "label_batch", "label_xtb", "label_ligand_field",
           "label_crystal_field"]
