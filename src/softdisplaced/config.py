"""Configuration: loading, JSON-schema validation with defaults, hashing.

Every physics number of the workflow lives in the YAML configuration
(``config/config.yaml``), validated against ``config/schema.yaml`` before
anything runs.  Errors name the offending key and the schema rule it broke::

    ConfigError: config/config.yaml: key 'limits.lumis_fb[1]': -3 is less than
    the minimum of 0 (schema rule 'minimum' at properties.limits...)
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft7Validator, validators

__all__ = [
    "ConfigError",
    "REPO_ROOT",
    "DEFAULT_SCHEMA",
    "load_config",
    "validate_config",
    "with_defaults",
    "config_hash",
    "settings_from_args",
    "subset",
]


class ConfigError(ValueError):
    """Invalid configuration: the message names the file, the key and the rule."""


def _find_repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "config" / "schema.yaml").exists() and (parent / "Snakefile").exists():
            return parent
    return Path.cwd()


REPO_ROOT = _find_repo_root()
DEFAULT_SCHEMA = REPO_ROOT / "config" / "schema.yaml"


def _extend_with_default(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema and prop not in instance:
                    instance[prop] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_default(Draft7Validator)


def _key_path(error) -> str:
    out = ""
    for p in error.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _read_schema(path: str | os.PathLike | None) -> dict:
    """The parsed schema file (default: :data:`DEFAULT_SCHEMA`), read once per file version. The validators
    only read it (defaults are deep-copied into the configuration), so the cached dict is shared."""
    p = Path(path if path is not None else DEFAULT_SCHEMA).resolve()
    return _parse_schema(p, p.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parse_schema(path: Path, mtime_ns: int) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(cfg: dict, schema: Mapping | str | os.PathLike | None = None,
                    source: str = "configuration", set_defaults: bool = True) -> dict:
    """Validate ``cfg`` in place (filling defaults) and return it.

    Raises :class:`ConfigError` listing every violation as
    ``key 'a.b[2]': <message> (schema rule '<keyword>')``.
    """
    if schema is None or isinstance(schema, (str, os.PathLike)):
        schema = _read_schema(schema)
    cls = _DefaultFillingValidator if set_defaults else Draft7Validator
    validator = cls(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            rule_path = ".".join(str(p) for p in err.absolute_schema_path)
            lines.append(f"key '{_key_path(err)}': {err.message} (schema rule '{err.validator}' at {rule_path})")
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(lines))
    _semantic_checks(cfg, source)
    _check_sample_generation(cfg, schema, source)
    return cfg


def _check_sample_generation(cfg: Mapping, schema: Mapping, source: str) -> None:
    """A sample's own generator settings (``samples.<block>.generation``, merged into ``generation`` for that
    sample alone) must give valid generator settings, checked here rather than when the sample is generated."""
    gen_schema = dict((schema.get("properties") or {}).get("generation") or {},
                      definitions=schema.get("definitions", {}))
    for name, block in (cfg.get("samples") or {}).items():
        extra = block.get("generation") if isinstance(block, Mapping) else None
        if not extra:
            continue
        merged = deep_merge(cfg.get("generation") or {}, extra)
        errors = sorted(Draft7Validator(gen_schema).iter_errors(merged), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            raise ConfigError(f"{source}: key 'samples.{name}.generation': the generator settings it makes are "
                              "invalid:\n  " + "\n  ".join(f"key 'generation.{_key_path(e)}': {e.message}"
                                                           for e in errors))


def with_defaults(cfg: Mapping, schema: Mapping | str | os.PathLike | None = None) -> dict:
    """A copy of ``cfg`` with every schema default filled in, without validating it (for stages
    handed a partial configuration: the schema stays the one source of default values)."""
    if schema is None or isinstance(schema, (str, os.PathLike)):
        schema = _read_schema(schema)
    out = copy.deepcopy(dict(cfg))
    for _ in _DefaultFillingValidator(schema).iter_errors(out):   # filling happens while iterating
        pass
    return out


def _semantic_checks(cfg: dict, source: str) -> None:
    """Cross-field rules JSON schema cannot express."""
    bm = cfg.get("benchmarks", [])
    ids = [b["id"] for b in bm]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{source}: key 'benchmarks': benchmark ids must be unique, got {ids}")
    for i, b in enumerate(bm):
        if b["dm"] >= b["m_c"]:
            raise ConfigError(
                f"{source}: key 'benchmarks[{i}]': dm = {b['dm']} GeV must be smaller than m_c = {b['m_c']} GeV")
    grid = cfg.get("limits", {}).get("ctau_grid_cm")
    if grid and grid["min"] >= grid["max"]:
        raise ConfigError(f"{source}: key 'limits.ctau_grid_cm': min must be below max")
    chosen = ((cfg.get("samples") or {}).get("signal") or {}).get("benchmarks")
    unknown = sorted(set(chosen or []) - set(ids))
    if unknown:
        raise ConfigError(f"{source}: key 'samples.signal.benchmarks': unknown benchmark id(s) {unknown} "
                          f"(benchmarks: {ids})")
    from softdisplaced.processing.analyses import complete_background_thresholds

    complete_background_thresholds(cfg, source)


def load_config(path: str | os.PathLike, schema: str | os.PathLike | None = None,
                overrides: Mapping | None = None) -> dict:
    """Read a YAML configuration, apply ``overrides`` (deep merge), validate."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: configuration file does not exist")
    try:
        with open(path) as fh:
            cfg = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(cfg).__name__}")
    if overrides:
        cfg = deep_merge(cfg, overrides)
    if schema is None:
        local = path.parent / "schema.yaml"
        schema = local if local.exists() else DEFAULT_SCHEMA
    return validate_config(cfg, schema, source=str(path))


def deep_merge(base: Mapping, extra: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    return obj


def config_hash(cfg: Mapping) -> str:
    """SHA-256 (first 16 hex digits) of the canonical JSON form of ``cfg``."""
    blob = json.dumps(_canonical(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def subset(cfg: Mapping, keys) -> dict:
    """The top-level sections ``keys`` of ``cfg`` (missing ones omitted).

    Rules pass exactly these subsets as ``params`` so that Snakemake's
    params rerun-trigger sees the settings each stage depends on, and no more.
    """
    return {k: copy.deepcopy(cfg[k]) for k in keys if k in cfg}


def settings_from_args(args) -> dict:
    """Configuration for a CLI call: ``--settings JSON`` (from a rule) or ``--configfile``.

    ``--settings @path.json`` reads the JSON from a file (the report rules use the
    resolved configuration that the Snakefile writes to results/config/resolved.json).
    """
    if getattr(args, "settings", None):
        text, source = args.settings, "--settings"
        if text.startswith("@"):
            source = text[1:]
            try:
                text = Path(source).read_text()
            except OSError as exc:
                raise ConfigError(f"--settings {args.settings}: cannot read {source}: {exc}") from exc
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from exc
    if getattr(args, "configfile", None):
        return load_config(args.configfile)
    return load_config(REPO_ROOT / "config" / "config.yaml")
