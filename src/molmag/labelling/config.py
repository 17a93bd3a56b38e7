"""The ``molmag label`` configuration: where structures come from, which labels, which cluster.

A YAML file validated by these pydantic models (unknown keys are refused, with the key's
path in the message).  Relative paths are taken relative to the configuration file.

.. code-block:: yaml

    output: copdms.db                  # dataset written (SQLite file or any ASE db URL)
    sources:
      - builder: co-pdms               # a molmag builder (molmag build --help lists them)
        sampler: {kind: displacements, deltas: [0.05, 0.1, 0.2], n: 500, seed: 0}
      - file: extra.xyz                # or structures from a file ...
        charge: -2
        multiplicity: 4
      - dataset: old.db                # ... or from a dataset
        selection: "split=train"
    labels:
      xtb: {properties: [energy, forces, charges]}
      ligand_field: {}
    cluster: {kind: local}             # local | address | slurm | serial
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate


class SamplerConfig(_Strict):
    """How configurations are generated from a built structure.

    ``displacements``: every Cartesian coordinate moved uniformly in +-delta (Angstrom), ``n``
    per delta (Lunghi & Sanvito 2020).  ``md``: GFN2-xTB Langevin snapshots, ``n`` per
    temperature.  ``normal-modes``: Boltzmann samples along GFN2-xTB normal modes, ``n`` per
    temperature.  ``include_base`` keeps the unperturbed structure as a row too."""

    kind: Literal["displacements", "md", "normal-modes"] = "displacements"
    n: int = Field(default=500, ge=1, description="configurations per delta / per temperature")
    deltas: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2])
    temperatures: list[float] = Field(default_factory=lambda: [300.0])
    interval: int = Field(default=10, ge=1, description="MD steps between snapshots")
    timestep_fs: float = Field(default=0.5, gt=0)
    friction_per_fs: float = Field(default=0.01, gt=0)
    equilibration_steps: int = Field(default=200, ge=0)
    quantum: bool = True
    seed: int = 0
    include_base: bool = True

    @field_validator("deltas")
    @classmethod
    def _deltas(cls, v):
        if not v or any(d <= 0 or d > 1.0 for d in v):
            raise ValueError("deltas must be a non-empty list of amplitudes in (0, 1] Angstrom")
        return v

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v):
        if not v or any(t <= 0 for t in v):
            raise ValueError("temperatures must be a non-empty list of positive kelvins")
        return v

    def count(self) -> int:
        per = len(self.deltas) if self.kind == "displacements" else len(self.temperatures)
        return per * self.n + int(self.include_base)


class SourceConfig(_Strict):
    """One source of structures: exactly one of ``builder``, ``file`` or ``dataset``."""

    builder: str | None = None
    ligands: list[str] | None = Field(default=None, description="ligand SMILES (dy-h2o5l2 builder)")
    relax: bool = True
    fmax: float = Field(default=0.05, gt=0, description="relaxation threshold, eV/Angstrom")
    sampler: SamplerConfig | None = None

    file: str | None = None
    index: str = ":"
    charge: int | None = None
    multiplicity: int | None = None
    metal_index: int | None = None

    dataset: str | None = None
    selection: str | None = None

    group: str | None = Field(default=None, description="tag written on every row of this source")

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("builder", "file", "dataset") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a source needs exactly one of 'builder', 'file' or 'dataset'"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.ligands is not None and not self.builder:
            raise ValueError("'ligands' goes with a builder (dy-h2o5l2)")
        if self.sampler is not None and not self.builder:
            raise ValueError("'sampler' goes with a builder "
                             "(files and datasets are used as they are)")
        if self.ligands is not None and not self.ligands:
            raise ValueError("'ligands' is empty")
        return self

    @property
    def kind(self) -> str:
        return "builder" if self.builder else "file" if self.file else "dataset"


XTB_PROPERTIES = ("energy", "forces", "charges", "dipole", "polarizabilities", "atomic_dipoles")
XTBProperty = Literal["energy", "forces", "charges", "dipole", "polarizabilities",
                      "atomic_dipoles"]


def _default_xtb_properties() -> list[XTBProperty]:
    return ["energy", "forces", "charges"]


class XTBLabelConfig(_Strict):
    """GFN2-xTB labels (tblite): ``properties`` from energy, forces, charges, dipole,
    polarizabilities (D4), atomic_dipoles (|mu_A| of GFN2-xTB's atomic multipoles)."""

    properties: list[XTBProperty] = Field(default_factory=_default_xtb_properties)
    accuracy: float = Field(default=1.0, gt=0)
    electronic_temperature: float = Field(default=300.0, gt=0, description="K")
    max_iterations: int = Field(default=250, ge=1)


class LigandFieldLabelConfig(_Strict):
    """Ligand-field D tensor (molmag's AOM + Racah + SOC engine).  ``ion`` and the
    overrides ``B``, ``C``, ``zeta`` (cm-1), ``k`` default to the engine's tables;
    ``donors`` fixes the donor atoms (default: those the builder recorded for all samples of
    a built structure, else found by distance on each structure);
    ``point_charges: xtb`` adds the field of the atoms beyond the donors with their GFN2-xTB
    charges (needs the xtb labeller with ``charges``)."""

    ion: str | None = None
    B: float | None = None
    C: float | None = None
    zeta: float | None = None
    k: float | None = None
    point_charges: Literal["none", "xtb"] = "none"
    donors: list[int] | None = Field(default=None, description="donor atom indices (default: the "
                                     "builder's donors, else found by distance per structure)")
    outer_cutoff: float | None = Field(default=None, gt=0, description="Angstrom")


class CrystalFieldLabelConfig(_Strict):
    """Crystal-field Kramers doublets, g values and Stevens parameters (molmag's PCEM/REC
    engine) of a lanthanide complex."""

    ion: str | None = None
    charges: Literal["rec", "formal"] = "rec"
    shielding: bool = False
    cutoff: float | None = Field(default=None, gt=0, description="Angstrom")
    donors: list[int] | None = Field(default=None, description="donor atom indices (default: the "
                                     "builder's donors, else found per structure)")


class LabelsConfig(_Strict):
    xtb: XTBLabelConfig | None = None
    ligand_field: LigandFieldLabelConfig | None = None
    crystal_field: CrystalFieldLabelConfig | None = None

    @model_validator(mode="after")
    def _some(self):
        if not self.names():
            raise ValueError("ask for at least one of xtb, ligand_field, crystal_field")
        if (self.ligand_field is not None and self.ligand_field.point_charges == "xtb"
                and (self.xtb is None or "charges" not in self.xtb.properties)):
            raise ValueError("ligand_field.point_charges: xtb needs the xtb labeller with "
                             "'charges' in its properties")
        return self

    def names(self) -> list[str]:
        return [n for n in ("xtb", "ligand_field", "crystal_field") if getattr(self, n) is not None]

    def label_names(self, labeller: str) -> list[str]:
        """The dataset labels a labeller writes."""
        if labeller == "xtb":
            assert self.xtb is not None, "no xtb labeller configured"
            return list(self.xtb.properties)
        if labeller == "ligand_field":
            return ["zfs_tensor"]
        return ["kd_energies", "g_tensors", "cf_parameters"]


class SlurmSettings(_Strict):
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` (the ones a SLURM user sets; every
    key is checked when the file is read).  molmag's defaults: one core, 4GB, one hour, one
    worker process per ``threads_per_worker`` cores."""

    queue: str | None = Field(None, description="partition (sbatch -p)")
    account: str | None = Field(None, description="account to charge (sbatch -A)")
    cores: int | None = Field(None, ge=1, description="cores per batch job")
    processes: int | None = Field(None, ge=1, description="Dask worker processes per job")
    memory: str | None = Field(None, description="memory per job, e.g. 32GB")
    walltime: str | None = Field(None, description="time limit, e.g. '04:00:00'")
    job_name: str | None = Field(None, description="SLURM job name")
    job_cpu: int | None = Field(None, ge=1, description="--cpus-per-task if not cores")
    job_mem: str | None = Field(None, description="--mem if not memory")
    job_extra_directives: list[str] | None = Field(
        None, description="extra #SBATCH lines, e.g. ['--qos=long']")
    job_directives_skip: list[str] | None = Field(
        None, description="#SBATCH directives dask-jobqueue would write that to leave out")
    job_script_prologue: list[str] | None = Field(
        None, description="shell lines before the worker starts, e.g. ['module load openblas']")
    interface: str | None = Field(None, description="network interface the workers reach the "
                                  "scheduler on, e.g. ib0")
    local_directory: str | None = Field(None, description="workers' scratch folder")
    log_directory: str | None = Field(None, description="folder of the jobs' stdout/stderr")
    python: str | None = Field(None, description="the workers' Python executable")
    shebang: str | None = Field(None, description="first line of the job script")
    death_timeout: float | None = Field(None, gt=0, description="seconds a worker waits for "
                                        "the scheduler")
    worker_extra_args: list[str] | None = Field(None, description="extra dask worker "
                                                "arguments")
    scheduler_options: dict[str, Any] | None = Field(
        None, description="options of the Dask scheduler, e.g. {dashboard_address: ':0'}")

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments set in the file (dask-jobqueue's own defaults elsewhere)."""
        return self.model_dump(exclude_unset=True)


class ClusterConfig(_Strict):
    """Where the work runs.

    ``local``: a Dask LocalCluster on this machine, ``n_workers`` processes (default: one per
    core) with ``threads_per_worker`` threads each.  ``address``: an existing Dask scheduler
    (``tcp://host:8786``).  ``slurm``: a dask-jobqueue SLURMCluster; ``slurm`` holds its
    keyword arguments (queue, account, cores, memory, walltime, job_extra_directives, ...)
    and ``jobs`` how many batch jobs to start.  ``serial``: no Dask, in this process (for
    debugging)."""

    kind: Literal["local", "address", "slurm", "serial"] = "local"
    n_workers: int | None = Field(default=None, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    address: str | None = None
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    jobs: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _address(self):
        if self.kind == "address" and not self.address:
            raise ValueError("cluster.kind 'address' needs cluster.address (tcp://host:port)")
        return self


class LabelConfig(_Strict):
    output: str = Field(..., description="dataset written: a file (SQLite) or an ASE db URL")
    sources: list[SourceConfig] = Field(..., min_length=1)
    labels: LabelsConfig
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    batch_size: int = Field(default=8, ge=1, description="structures per Dask task")
    retry_failed: bool = Field(default=False,
                               description="try again what failed in an earlier run")
    lease_seconds: float = Field(default=300.0, gt=0,
                                 description="how long a run's claim on a row or "
                                 "build item lasts without renewal (renewed every third of "
                                 "it): the work of a run that dies is taken over by the other "
                                 "runs on the dataset this long after its last renewal")


def load_label_config(path: str | Path, **overrides) -> LabelConfig:
    """Read and validate a label configuration; errors name the file and the key at fault.

    ``overrides`` (from the command line) replace top-level or ``cluster`` keys:
    ``output``, ``retry_failed``, ``batch_size``, ``lease_seconds``, ``n_workers``,
    ``address``, ``kind``."""
    path = Path(path)
    raw = read_yaml(path)
    cluster = dict(raw.get("cluster") or {})
    for key in ("n_workers", "address", "kind"):
        if overrides.get(key) is not None:
            cluster[key] = overrides[key]
    if overrides.get("address") is not None and overrides.get("kind") is None:
        cluster["kind"] = "address"
    if cluster:
        raw["cluster"] = cluster
    for key in ("output", "retry_failed", "batch_size", "lease_seconds"):
        if overrides.get(key) is not None:
            raw[key] = overrides[key]
    cfg = validate(path, LabelConfig, raw)
    base = path.resolve().parent
    cfg.output = resolve(cfg.output, base)
    for s in cfg.sources:
        s.file = resolve(s.file, base)
        s.dataset = resolve(s.dataset, base)
    return cfg


__all__ = ["SamplerConfig", "SourceConfig", "XTBLabelConfig", "LigandFieldLabelConfig",
           "CrystalFieldLabelConfig", "LabelsConfig", "ClusterConfig", "LabelConfig",
           "load_label_config", "XTB_PROPERTIES"]
