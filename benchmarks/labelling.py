"""Labelling throughput: [Co(pdms)2]2- configurations per minute (GFN2-xTB + ligand field)
with 1 and 2 Dask workers, and the cost of one Dy(H2O)5L2 build + relaxation + crystal-field
label.

Run:  python benchmarks/labelling.py [--configs 120] [--ligands "O=P(C)(C)C,[O-]c1ccccc1"]

The [Co(pdms)2]2- complex is built and relaxed by molmag (`molmag build co-pdms`), then
``--configs`` configurations displaced by +-0.1 Angstrom are labelled by `molmag label`'s
pipeline on a Dask LocalCluster.  Rates exclude the cluster's start-up (printed separately)
and include writing every result to the dataset.  Prints a table; compare ratios across
machines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ase.io import write

from molmag.chem.builders import build
from molmag.chem.sampling import random_displacements
from molmag.labelling import LabelRun, Reporter, load_label_config


class Clock(Reporter):
    def __init__(self):
        self.t_label = None

    def start(self, stage, total, done=0):
        if stage == "label":
            self.t_label = time.perf_counter()


def label_rate(xyz: Path, workdir: Path, workers: int | None,
               name: str) -> tuple[float, float, int]:
    cfg_path = workdir / f"{name}.yaml"
    cluster = ({"kind": "serial"} if workers is None
               else {"kind": "local", "n_workers": workers})
    import yaml
    cfg_path.write_text(yaml.safe_dump({
        "output": f"{name}.db", "sources": [{"file": str(xyz)}],
        "labels": {"xtb": {"properties": ["energy", "forces", "charges"]}, "ligand_field": {}},
        "cluster": cluster, "batch_size": 4}))
    cfg = load_label_config(cfg_path)
    clock = Clock()
    t0 = time.perf_counter()
    s = LabelRun(cfg, clock).run()
    t1 = time.perf_counter()
    assert s.labelled == s.rows_in_run and not s.failures_new, s.failures_new
    startup = clock.t_label - t0
    return s.labelled / ((t1 - clock.t_label) / 60.0), startup, s.labelled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=120)
    ap.add_argument("--ligands", default="O=P(C)(C)C,[O-]c1ccccc1")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        base = build("co-pdms")
        t_build = time.perf_counter() - t
        frames = random_displacements(base, args.configs, 0.1, seed=0)
        xyz = tmp / "copdms.xyz"
        write(xyz, frames, format="extxyz")
        rows.append(("[Co(pdms)2]2- build + xTB relaxation", f"{t_build:.1f} s", ""))
        rates = {}
        for label, workers in (("serial (this process)", None), ("1 Dask worker", 1),
                               ("2 Dask workers", 2)):
            rate, startup, n = label_rate(xyz, tmp, workers, label.split()[0])
            rates[workers] = rate
            rows.append((f"labelled configs/min, {label}", f"{rate:.0f}",
                         f"{n} configs; start-up {startup:.1f} s"))
        rows.append(("speed-up 2 vs 1 worker", f"{rates[2] / rates[1]:.2f}x",
                     f"{os.cpu_count()} cores"))
        from molmag.physics.crystal_field import CrystalFieldCalculator
        for lig in args.ligands.split(","):
            t = time.perf_counter()
            dy = build("dy-h2o5l2", ligand=lig)
            t_b = time.perf_counter() - t
            t = time.perf_counter()
            kd = CrystalFieldCalculator().get_property("kd_energies", dy)
            t_cf = time.perf_counter() - t
            rows.append((f"Dy(H2O)5L2, L = {lig}: build + relax / CF label",
                         f"{t_b:.1f} s / {1000 * t_cf:.0f} ms",
                         f"{len(dy)} atoms; dE01 = {kd[1]:.0f} cm-1"))
    w = max(len(r[0]) for r in rows)
    print(f"{'quantity':<{w}}  {'value':>18}  note")
    print("-" * (w + 40))
    for name, value, note in rows:
        print(f"{name:<{w}}  {value:>18}  {note}")


if __name__ == "__main__":
    main()
