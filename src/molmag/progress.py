"""How long-running library functions report progress: a callback, drawn by whoever calls.

Library code (the PSO, 2D scans, campaigns) never draws bars itself: it calls
``progress(done, total, label)`` after each unit of work (a PSO step, a scan point) when a
callback is given, and the CLI turns the calls into rich progress bars
(:func:`molmag.cli.common.progress_bars`).  Notebooks can pass ``tqdm``-driving callbacks or
nothing at all.

>>> seen = []
>>> def progress(done, total, label):
...     seen.append((done, total, label))
"""

from __future__ import annotations

from typing import Callable

#: ``progress(done, total, label)``: ``done`` of ``total`` units of the task ``label``
ProgressFn = Callable[[int, int, str], None]

__all__ = ["ProgressFn"]
