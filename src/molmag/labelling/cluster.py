"""Where labelling work runs: Dask (local processes, a scheduler address, SLURM) or serially.

:func:`open_executor` turns a :class:`~molmag.labelling.config.ClusterConfig` into an
:class:`Executor` whose one method that matters, :meth:`Executor.map_unordered`, submits
tasks (keeping a bounded number in flight), and hands each result, or its exception, to a
callback in the calling process as soon as it arrives — so the caller can write it at once.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from molmag.labelling.config import ClusterConfig


class Executor:
    kind = "serial"

    def n_workers(self) -> int:
        return 1

    def dashboard(self) -> str | None:
        return None

    def map_unordered(self, fn: Callable, tasks: Iterable[tuple[Any, tuple]],
                      done: Callable[[Any, Any], None],
                      failed: Callable[[Any, BaseException], None]) -> None:
        """Run ``fn(*args)`` for each ``(meta, args)``; call ``done(meta, result)`` or
        ``failed(meta, exception)`` in this process as each finishes."""
        for meta, args in tasks:
            try:
                result = fn(*args)
            except Exception as exc:  # recorded by the caller, never fatal
                failed(meta, exc)
            else:
                done(meta, result)

    def close(self) -> None:
        pass


class DaskExecutor(Executor):
    kind = "dask"

    def __init__(self, client, cluster=None, window_per_worker: int = 3):
        self.client, self.cluster = client, cluster
        self.window_per_worker = window_per_worker

    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:  # no dashboard (bokeh missing, disabled)
            return None

    def map_unordered(self, fn, tasks, done, failed) -> None:
        from distributed import as_completed

        it = iter(tasks)
        pending: dict[str, Any] = {}
        ac = as_completed()

        def submit_next() -> bool:
            try:
                meta, args = next(it)
            except StopIteration:
                return False
            fut = self.client.submit(fn, *args, pure=False)
            pending[fut.key] = meta
            ac.add(fut)
            return True

        window = max(2, self.window_per_worker * self.n_workers())
        for _ in range(window):
            if not submit_next():
                break
        for fut in ac:
            meta = pending.pop(fut.key)
            try:
                result = fut.result()
            except Exception as exc:  # a task's error, or a worker that died under it
                failed(meta, exc)
            else:
                done(meta, result)
            fut.release()
            submit_next()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def slurm_cluster(cfg: ClusterConfig):
    """The dask-jobqueue SLURMCluster of ``cfg.slurm`` (no jobs submitted yet; its
    ``job_script()`` shows what ``sbatch`` will get).  Defaults: one core, 4 GB, one hour,
    one worker process per core, ``OMP_NUM_THREADS`` set to ``threads_per_worker``."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ValueError("cluster.kind slurm needs dask-jobqueue: pip install dask-jobqueue") \
            from None
    kw = {"cores": 1, "memory": "4GB", "walltime": "01:00:00",
          "scheduler_options": {"dashboard_address": ":0"}, **cfg.slurm.kwargs()}
    kw.setdefault("processes", max(1, int(kw["cores"]) // cfg.threads_per_worker))
    prologue = list(kw.pop("job_script_prologue", []))
    prologue.append(f"export OMP_NUM_THREADS={cfg.threads_per_worker}")
    try:
        return SLURMCluster(job_script_prologue=prologue, **kw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cluster.slurm: {exc}") from None


def open_executor(cfg: ClusterConfig) -> Executor:
    """An executor for ``cfg``: ``serial``, a Dask LocalCluster (``local``, one worker process
    per core by default, BLAS/OpenMP limited to ``threads_per_worker``), an existing
    scheduler (``address``) or a dask-jobqueue SLURMCluster (``slurm``)."""
    if cfg.kind == "serial":
        return Executor()
    import dask
    from distributed import Client

    if cfg.kind == "address":
        try:
            client = Client(cfg.address, timeout="30s")
        except OSError as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {cfg.address}: {exc}") from None
        return DaskExecutor(client)
    if cfg.kind == "slurm":
        cluster = slurm_cluster(cfg)
        cluster.scale(jobs=cfg.jobs)
        return DaskExecutor(Client(cluster), cluster)
    from distributed import LocalCluster

    n = cfg.n_workers or os.cpu_count() or 1
    threads = str(cfg.threads_per_worker)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env,
                          "distributed.worker.daemon": False,
                          "distributed.logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=cfg.threads_per_worker,
                               processes=True, dashboard_address=":0", silence_logs=50)
        client = Client(cluster)
    return DaskExecutor(client, cluster)


__all__ = ["Executor", "DaskExecutor", "open_executor", "slurm_cluster"]
