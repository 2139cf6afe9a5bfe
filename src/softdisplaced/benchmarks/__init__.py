"""Benchmarks of the workflow: ``softdisplaced.benchmarks.<name>.run(outdir) -> dict``.

Each module measures one stage and writes ``<outdir>/<name>.json``;
``softdisplaced bench [names...]`` (``make bench``) runs them.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["available"]


def available() -> list[str]:
    """Names of the benchmark modules that define ``run``."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(mod, "run", None)):
            names.append(info.name)
    return sorted(names)
