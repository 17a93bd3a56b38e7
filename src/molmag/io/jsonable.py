"""One JSON encoder for every file molmag writes: numpy arrays and scalars, paths and
pydantic models become plain JSON values.

>>> import json, numpy as np
>>> json.dumps({"D": np.float64(-1.5), "axes": np.eye(2)}, default=json_default)
'{"D": -1.5, "axes": [[1.0, 0.0], [0.0, 1.0]]}'
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import numpy as np


def json_default(o: Any) -> Any:
    """The ``default=`` hook of :func:`json.dumps`: ``ndarray`` -> list, numpy scalar ->
    Python scalar, path -> string, pydantic model -> its ``model_dump()``; anything else is
    refused with a ``TypeError`` naming the type."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, PurePath):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def plain(obj: Any) -> Any:
    """``obj`` with numpy values replaced by plain Python ones, recursively through dicts,
    lists and tuples (keys become strings)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic, PurePath)):
        return json_default(obj)
    return obj


__all__ = ["json_default", "plain"]
