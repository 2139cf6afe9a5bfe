"""``results/provenance.json``: git commit, the full resolved configuration and its hash,
package versions, input checksums, per-rule run times (Snakemake ``benchmark:`` files) and
the machine. Every table and figure of the report points to this file.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

from .. import provenance as prov
from ..atomic import write_json
from ..config import config_hash

log = logging.getLogger("softdisplaced.report")

__all__ = ["parse_benchmark_file", "rule_runtimes", "expand_inputs", "build_provenance", "write_provenance"]

REQUIRED_KEYS = ("git_commit", "config", "config_hash", "package_versions", "input_checksums", "rule_runtimes",
                 "machine")


def _rule_from_path(path: Path) -> tuple[str, str]:
    """results/benchmarks/rules/<rule>/<job...>.tsv -> (rule, job); rules/<rule>.tsv (a rule without
    wildcards) -> (rule, rule); else (parent name, stem)."""
    parts = path.parts
    if "rules" in parts:
        i = len(parts) - 1 - parts[::-1].index("rules")
        if i + 1 < len(parts) - 1:
            return parts[i + 1], "/".join(parts[i + 2:])[: -len(path.suffix) or None]
        if i + 1 == len(parts) - 1:
            return path.stem, path.stem
    return path.parent.name, path.stem


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def parse_benchmark_file(path: str | os.PathLike) -> dict:
    """One Snakemake benchmark TSV (header ``s  h:m:s  max_rss ...``; one row per repeat)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark file does not exist")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark file (needs a tab-separated header with column 's')")
    secs = [_float(r.get("s")) for r in rows]
    if any(s is None for s in secs):
        raise ValueError(f"{path}: column 's' has non-numeric values")
    rule, job = _rule_from_path(path)
    if rows[0].get("rule"):
        rule = rows[0]["rule"]
    rss = [x for x in (_float(r.get("max_rss")) for r in rows) if x is not None]
    cpu = [x for x in (_float(r.get("cpu_time")) for r in rows) if x is not None]
    return {"rule": rule, "job": job, "file": str(path), "s": sum(secs) / len(secs), "repeats": len(rows),
            "max_rss_mb": max(rss) if rss else None, "cpu_time_s": sum(cpu) / len(cpu) if cpu else None}


def rule_runtimes(files: Iterable[str | os.PathLike]) -> dict:
    """Per rule: number of jobs, total / mean / max wall seconds, max RSS, and each job's seconds."""
    out: dict[str, dict] = {}
    for f in expand_inputs(files, suffixes=(".tsv", ".txt")):
        b = parse_benchmark_file(f)
        r = out.setdefault(b["rule"], {"n_jobs": 0, "total_s": 0.0, "max_s": 0.0, "max_rss_mb": None, "jobs": {}})
        r["n_jobs"] += 1
        r["total_s"] += b["s"]
        r["max_s"] = max(r["max_s"], b["s"])
        if b["max_rss_mb"] is not None:
            r["max_rss_mb"] = max(r["max_rss_mb"] or 0.0, b["max_rss_mb"])
        r["jobs"][b["job"]] = b["s"]
    for r in out.values():
        r["mean_s"] = r["total_s"] / r["n_jobs"]
    return dict(sorted(out.items()))


def expand_inputs(paths: Iterable[str | os.PathLike], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files and directories (recursively, hidden and temporary files skipped) -> sorted files."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += [q for q in p.rglob("*") if q.is_file() and not any(part.startswith(".") for part in q.relative_to(p).parts)
                    and (suffixes is None or q.suffix in suffixes)]
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: provenance input does not exist")
    return sorted(set(out))


def _input_losses(files) -> dict:
    """Skim -> its skipped input files and events dropped for non-finite inputs (skims with any)."""
    from softdisplaced.processing.skim import input_losses

    out = {}
    for f in files:
        if f.suffix == ".h5" and "skims" in f.parts:
            loss = input_losses(f)
            if loss["skipped_files"] or loss["non_finite_dropped"]:
                out[str(f)] = loss
    return out


def build_provenance(settings: Mapping, inputs: Iterable[str | os.PathLike] = (),
                     benchmarks: Iterable[str | os.PathLike] = ()) -> dict:
    files = expand_inputs(inputs)
    return {
        "git_commit": prov.git_commit(),
        "config": dict(settings),
        "config_hash": config_hash(settings),
        "package_versions": prov.package_versions(),
        "input_checksums": {str(f): prov.file_sha256(f) for f in files},
        "input_losses": _input_losses(files),
        "rule_runtimes": rule_runtimes(benchmarks),
        "machine": prov.machine(),
        "created_utc": prov.now_utc(),
    }


def write_provenance(path: str | os.PathLike, settings: Mapping, inputs: Iterable = (), benchmarks: Iterable = ()) -> dict:
    record = build_provenance(settings, inputs, benchmarks)
    write_json(path, record, default=str)
    log.info("%s: provenance of %d inputs, %d rules (config %s)", path, len(record["input_checksums"]),
             len(record["rule_runtimes"]), record["config_hash"])
    return record
