"""Labels of the generative campaign, computed through molmag's labelling pipeline.

Two kinds (Khatibi et al. 2026, GAUSS-I and GAUSS-II):

**Proxies of the free ligand** (GAUSS-II; the paper's LoProp properties of the connecting
atom, computed here with GFN2-xTB and D4 on the xTB-relaxed free ligand, builder
``ligand``):

=========================  ============  ====================================================
``donor_Z``                (none)        atomic number of the donor (atom 0 of the SMILES)
``donor_charge``           e             GFN2-xTB Mulliken charge of the donor
``donor_dipole``           e*Angstrom    |mu_A| of the donor's GFN2-xTB atomic dipole
``donor_polarizability``   Angstrom^3    D4 static dipole polarisability of the donor
=========================  ============  ====================================================

**Kramers gaps of Dy(H2O)5L2** (builder ``dy-h2o5l2``, xTB-relaxed; the crystal-field
engine's PCEM/REC doublets of the Dy(III) ^6H_15/2 multiplet): ``dE01`` ... ``dE07`` (cm-1),
``dE0i = E_i - E_0`` over the eight Kramers doublets, with GAUSS-I's structural features of
the relaxed complex (:func:`molmag.chem.features.pentagonal_bipyramid_features`):
``donor_Z``, ``MPP_eq_A``, ``SDP_eq_A``, ``angle_LML_axial_deg``.

Both go through :class:`molmag.labelling.pipeline.LabelRun` into an ASE database, so a
rerun skips every ligand already built and labelled (and, unless ``retry_failed``, every one
that failed), and a crash loses nothing already stored.  The tables are read back from the
database with :func:`proxy_table` and :func:`gap_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from molmag.labelling.config import LabelConfig

PROXY_NAMES = ("donor_Z", "donor_charge", "donor_dipole", "donor_polarizability")
PROXY_UNITS = {"donor_Z": "", "donor_charge": "e", "donor_dipole": "e*Angstrom",
               "donor_polarizability": "Angstrom^3"}
GAP_NAMES = tuple(f"dE0{i}" for i in range(1, 8))
STRUCTURE_FEATURES = ("donor_Z", "MPP_eq_A", "SDP_eq_A", "angle_LML_axial_deg")
XTB_PROXY_PROPERTIES = ["energy", "charges", "atomic_dipoles", "polarizabilities"]


def _cluster(workers: int | None) -> dict:
    if workers is not None and workers <= 1:
        return {"kind": "serial"}
    return {"kind": "local", **({"n_workers": int(workers)} if workers else {})}


def proxy_label_config(ligands: Sequence[str], output: str | Path, *, workers: int | None = None,
                       fmax: float = 0.05, batch_size: int = 16,
                       retry_failed: bool = False) -> LabelConfig:
    """The labelling run of the free-ligand proxies: builder ``ligand`` (RDKit + GFN2-xTB
    relaxation) and the xTB labeller with charges, atomic dipoles and D4 polarisabilities."""
    if not ligands:
        raise ValueError("no ligands to label")
    return LabelConfig.model_validate({
        "output": str(output),
        "sources": [{"builder": "ligand", "ligands": list(dict.fromkeys(ligands)),
                     "relax": True, "fmax": fmax, "group": "free-ligand"}],
        "labels": {"xtb": {"properties": XTB_PROXY_PROPERTIES}},
        "cluster": _cluster(workers), "batch_size": batch_size, "retry_failed": retry_failed})


def gap_label_config(ligands: Sequence[str], output: str | Path, *, workers: int | None = None,
                     fmax: float = 0.05, batch_size: int = 4,
                     retry_failed: bool = False) -> LabelConfig:
    """The labelling run of the Kramers gaps: builder ``dy-h2o5l2`` (assembled with L in
    both axial sites and GFN2-xTB relaxed) and the crystal-field labeller (REC charges)."""
    if not ligands:
        raise ValueError("no ligands to label")
    return LabelConfig.model_validate({
        "output": str(output),
        "sources": [{"builder": "dy-h2o5l2", "ligands": list(dict.fromkeys(ligands)),
                     "relax": True, "fmax": fmax, "group": "dy-h2o5l2"}],
        "labels": {"crystal_field": {"ion": "Dy3+"}},
        "cluster": _cluster(workers), "batch_size": batch_size, "retry_failed": retry_failed})


def run_label_config(cfg: LabelConfig, executor=None, reporter=None):
    """Run a labelling configuration (resumable), returning its :class:`RunSummary`."""
    from molmag.labelling.pipeline import LabelRun

    return LabelRun(cfg, reporter=reporter, executor=executor).run()


# -- tables read back from the datasets ---------------------------------------------------
def _records(path: str | Path):
    from molmag.io.dataset import Dataset

    if not Path(path).is_file():
        return iter(())
    return Dataset(str(path)).select()


def proxies_of(atoms, labels: dict) -> dict:
    """The four proxies of a labelled free ligand (donor = atom 0)."""
    for name in ("charges", "atomic_dipoles", "polarizabilities"):
        if name not in labels:
            ligand = atoms.info.get('ligand', atoms.get_chemical_formula())
            raise ValueError(f"free ligand {ligand}: label {name!r} missing")
    return {"donor_Z": float(atoms.numbers[0]),
            "donor_charge": float(labels["charges"][0]),
            "donor_dipole": float(labels["atomic_dipoles"][0]),
            "donor_polarizability": float(labels["polarizabilities"][0])}


def proxy_table(path: str | Path) -> dict[str, dict]:
    """``{ligand SMILES: {proxy: value}}`` of every labelled free ligand in the dataset."""
    out: dict[str, dict] = {}
    for rec in _records(path):
        lig = rec.tags.get("ligand")
        if lig is None or rec.tags.get("builder") != "ligand":
            continue
        if all(k in rec.labels for k in ("charges", "atomic_dipoles", "polarizabilities")):
            out[str(lig)] = proxies_of(rec.atoms, rec.labels)
    return out


def gaps_of(atoms, kd_energies, metal_index: int | None, donors: Sequence[int] | None) -> dict:
    """``dE01..dE07`` (cm-1) and the GAUSS-I structural features of one labelled complex."""
    from molmag.chem.features import pentagonal_bipyramid_features

    kd = np.sort(np.asarray(kd_energies, dtype=float))
    if kd.size < 8:
        raise ValueError(f"{atoms.get_chemical_formula()}: {kd.size} Kramers doublets, need 8 "
                         "(Dy(III) 6H15/2)")
    row = {name: float(kd[i + 1] - kd[0]) for i, name in enumerate(GAP_NAMES)}
    f = pentagonal_bipyramid_features(atoms, metal_index, donors=donors)
    row.update(donor_Z=float(f["Z_axial_1"]), MPP_eq_A=float(f["MPP_eq_A"]),
               SDP_eq_A=float(f["SDP_eq_A"]), angle_LML_axial_deg=float(f["angle_LML_axial_deg"]),
               d_ML_axial_mean_A=float(f["d_ML_axial_mean_A"]))
    return row


def gap_table(path: str | Path) -> dict[str, dict]:
    """``{ligand SMILES: {dE01..dE07, structural features}}`` of every labelled Dy(H2O)5L2."""
    out: dict[str, dict] = {}
    for rec in _records(path):
        lig = rec.tags.get("ligand")
        if lig is None or rec.tags.get("builder") != "dy-h2o5l2" or "kd_energies" not in rec.labels:
            continue
        donors = [int(x) for x in str(rec.tags["donors"]).split(",") if x.strip()] \
            if rec.tags.get("donors") else None
        try:
            out[str(lig)] = gaps_of(rec.atoms, rec.labels["kd_energies"], rec.metal_index, donors)
        except ValueError:
            continue  # a complex whose geometry is no longer a pentagonal bipyramid
    return out


def failed_ligands(path: str | Path) -> dict[str, str]:
    """``{ligand SMILES: reason}`` of the ligands whose build or labels failed."""
    from molmag.io.dataset import Dataset

    if not Path(path).is_file():
        return {}
    out = {}
    for key, f in Dataset(str(path)).failures().items():
        item = str(f.get("item", key))
        if item.startswith("build:"):
            out[item.split(":", 2)[2]] = str(f.get("reason", ""))
    return out


def matrix(table: dict[str, dict], smiles: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """``(len(smiles), len(names))`` values of ``table``; NaN where a ligand has no row."""
    out = np.full((len(smiles), len(names)), np.nan)
    for i, s in enumerate(smiles):
        row = table.get(s)
        if row is not None:
            out[i] = [row[n] for n in names]
    return out


__all__ = ["PROXY_NAMES", "PROXY_UNITS", "GAP_NAMES", "STRUCTURE_FEATURES",
           "proxy_label_config", "gap_label_config", "run_label_config", "proxy_table",
           "gap_table", "proxies_of", "gaps_of", "failed_ligands", "matrix"]
