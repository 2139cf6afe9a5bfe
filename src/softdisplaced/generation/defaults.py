"""Fill a configuration section with the defaults of config/schema.yaml.

Rules pass the stages only the sections they need (``--settings JSON``); those
are validated by the Snakefile, but a hand-written settings dict (tests,
notebooks, the Pythia 8 backend) may omit keys. The schema is the single
source of the default values, so they are read from it instead of being
repeated in code.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Mapping

import yaml

from ..config import DEFAULT_SCHEMA, ConfigError, validate_config

__all__ = ["section_schema", "with_defaults"]


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(DEFAULT_SCHEMA) as fh:
        return yaml.safe_load(fh)


def section_schema(*path: str) -> dict:
    """Sub-schema at ``properties.<p0>.properties.<p1>...``."""
    node = _schema()
    for p in path:
        try:
            node = node["properties"][p]
        except KeyError as exc:
            raise ConfigError(f"{DEFAULT_SCHEMA}: no schema block for '{'.'.join(path)}'") from exc
    return node


def with_defaults(cfg: Mapping | None, *path: str) -> dict:
    """Validated deep copy of ``cfg`` (the section at ``path``) with schema defaults filled in."""
    out = copy.deepcopy(dict(cfg or {}))
    sub = dict(section_schema(*path))
    sub.pop("default", None)
    return validate_config(out, sub, source=f"section '{'.'.join(path)}'")
