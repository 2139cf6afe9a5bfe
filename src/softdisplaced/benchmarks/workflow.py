"""Where the time of a workflow run went: ``results/benchmarks/workflow.json``.

Read from the Snakemake ``benchmark:`` files of every rule
(``results/benchmarks/rules/<rule>[/<job>].tsv``, one per job, written when the job
ends) and, for the wall time, the run's Snakemake log (``.snakemake/log/<start
time>.snakemake.log``: its name is the start of the run, its last change the end).

Content::

    {"wall_time_s": 287.4, "wall_time_source": "snakemake log .snakemake/log/...",
     "run_start_utc": ..., "run_end_utc": ..., "n_jobs": 61, "sum_job_s": 412.0,
     "rules": {"<rule>": {"n_jobs", "total_s", "mean_s", "max_s", "cpu_time_s", "max_rss_mb"}},  # slowest first
     "slowest_jobs": [{"rule", "job", "s", "cpu_time_s", "max_rss_mb"}, ...],
     "n_jobs_earlier_runs": 0}

Only the jobs of that run count (benchmark files last written between its start and
end); the benchmark files of jobs that an incremental run did not redo are counted in
``n_jobs_earlier_runs``.  Without a log matching the benchmark files, the wall time is
the span from the earliest job start (file time minus its seconds) to the last job end
(``wall_time_source: "benchmark files"``; it misses the DAG building before the first job).

``softdisplaced bench workflow`` (part of ``make bench``) writes it for ``results/``;
after any run: ``softdisplaced workflow-times --rules-dir results/benchmarks/rules
--output results/benchmarks/workflow.json``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import write_json
from ..report.provenance import expand_inputs, parse_benchmark_file

NAME = "workflow"
N_SLOWEST = 10
_LOG_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{6})(?:\.(\d+))?\.snakemake\.log$")
_SLACK_S = 2.0   # file-time resolution and the gap between a job's end and its benchmark file


def _log_window(path: Path) -> tuple[float, float] | None:
    """(start, end) in epoch seconds of a Snakemake log named after its start (local time)."""
    m = _LOG_TIME.search(path.name)
    if not m:
        return None
    start = datetime.strptime(m.group(1), "%Y-%m-%dT%H%M%S").timestamp()
    if m.group(2):
        start += float(f"0.{m.group(2)}")
    return start, path.stat().st_mtime


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds")


def workflow_times(rules_dir: str | Path, log_dir: str | Path | None = ".snakemake/log",
                   n_slowest: int = N_SLOWEST) -> dict:
    """Total wall time, per-rule totals and the slowest jobs of the last run (see the module doc)."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise FileNotFoundError(f"{rules_dir}: no benchmark directory (run the workflow first)")
    jobs = []
    for f in expand_inputs([rules_dir], suffixes=(".tsv",)):
        b = parse_benchmark_file(f)
        b["end"] = f.stat().st_mtime
        jobs.append(b)
    if not jobs:
        raise ValueError(f"{rules_dir}: no benchmark files (*.tsv)")
    last_end = max(j["end"] for j in jobs)

    window, source = None, "benchmark files"
    logs = sorted(Path(log_dir).glob("*.snakemake.log")) if log_dir and Path(log_dir).is_dir() else []
    for log in reversed(logs):  # the latest run whose window holds the last job end
        w = _log_window(log)
        if w and w[0] - _SLACK_S <= last_end <= w[1] + _SLACK_S:
            window, source = w, f"snakemake log {log}"
            break
    if window is not None:
        this_run = [j for j in jobs if window[0] - _SLACK_S <= j["end"] <= window[1] + _SLACK_S]
        start, end = window
    else:
        this_run = jobs
        start, end = min(j["end"] - j["s"] for j in jobs), last_end

    rules: dict[str, dict] = {}
    for j in this_run:
        r = rules.setdefault(j["rule"], {"n_jobs": 0, "total_s": 0.0, "max_s": 0.0, "cpu_time_s": 0.0,
                                         "max_rss_mb": None})
        r["n_jobs"] += 1
        r["total_s"] += j["s"]
        r["max_s"] = max(r["max_s"], j["s"])
        r["cpu_time_s"] += j["cpu_time_s"] or 0.0
        if j["max_rss_mb"] is not None:
            r["max_rss_mb"] = max(r["max_rss_mb"] or 0.0, j["max_rss_mb"])
    for r in rules.values():
        r["mean_s"] = r["total_s"] / r["n_jobs"]
        for k in ("total_s", "max_s", "cpu_time_s", "mean_s"):
            r[k] = round(r[k], 3)
    slowest = sorted(this_run, key=lambda j: -j["s"])[:n_slowest]
    return {
        "wall_time_s": round(end - start, 3),
        "wall_time_source": source,
        "run_start_utc": _utc(start),
        "run_end_utc": _utc(end),
        "n_jobs": len(this_run),
        "sum_job_s": round(sum(j["s"] for j in this_run), 3),
        "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1]["total_s"])),
        "slowest_jobs": [{"rule": j["rule"], "job": j["job"], "s": round(j["s"], 3),
                          "cpu_time_s": j["cpu_time_s"], "max_rss_mb": j["max_rss_mb"]} for j in slowest],
        "n_jobs_earlier_runs": len(jobs) - len(this_run),
        "rules_dir": str(rules_dir),
    }


def write(rules_dir: str | Path, output: str | Path, log_dir: str | Path | None = ".snakemake/log") -> dict:
    result = workflow_times(rules_dir, log_dir)
    write_json(output, result)
    return result


def run(outdir: str | Path = "results/benchmarks") -> dict:
    """``softdisplaced bench workflow``: ``<outdir>/workflow.json`` from ``<outdir>/rules``."""
    rules_dir = Path(outdir) / "rules"
    if not rules_dir.is_dir():
        result = {"status": f"skipped: {rules_dir} does not exist; run the workflow (make run) first"}
        write_json(Path(outdir) / f"{NAME}.json", result)
        return result
    return write(rules_dir, Path(outdir) / f"{NAME}.json")
