"""results/benchmarks/workflow.json from Snakemake benchmark files (synthetic TSVs and run logs)."""

import json
import os
from datetime import datetime

import pytest
from report_factory import write_benchmark_tsv

from softdisplaced.benchmarks.workflow import run, workflow_times
from softdisplaced.cli import main

T0 = datetime(2026, 5, 4, 12, 0, 0).timestamp()   # local time, as Snakemake names its logs

# (rule/job path, seconds, end time after T0)
JOBS = [("generate/bp1_0", 30.0, 40.0), ("generate/hf_0", 50.0, 60.0), ("process/hf_0", 12.0, 75.0),
        ("train/bp1_vs_hf", 40.0, 120.0), ("evaluate/bp1_vs_hf", 2.0, 125.0), ("report", 9.0, 150.0)]


def _rules(tmp_path, jobs=JOBS):
    d = tmp_path / "results" / "benchmarks" / "rules"
    for path, s, end in jobs:
        f = write_benchmark_tsv(d / f"{path}.tsv", s, rss=10 * s)
        os.utime(f, (T0 + end, T0 + end))
    return d


def _log(tmp_path, start, end):
    d = tmp_path / ".snakemake" / "log"
    d.mkdir(parents=True, exist_ok=True)
    f = d / (datetime.fromtimestamp(T0 + start).strftime("%Y-%m-%dT%H%M%S") + ".123456.snakemake.log")
    f.write_text("...")
    os.utime(f, (T0 + end, T0 + end))
    return d


def test_per_rule_totals_slowest_jobs_and_wall_time_from_the_log(tmp_path):
    rules = _rules(tmp_path)
    logs = _log(tmp_path, start=-5.0, end=152.0)
    _log(tmp_path, start=-1000.0, end=-900.0)        # an older run: not this one
    r = workflow_times(rules, logs)
    assert r["wall_time_s"] == pytest.approx(157.0 - 0.123456, abs=1e-3)
    assert r["wall_time_source"].startswith("snakemake log")
    assert r["n_jobs"] == 6 and r["n_jobs_earlier_runs"] == 0
    assert r["sum_job_s"] == pytest.approx(sum(s for _, s, _ in JOBS))
    gen = r["rules"]["generate"]
    assert gen["n_jobs"] == 2 and gen["total_s"] == 80.0 and gen["max_s"] == 50.0 and gen["mean_s"] == 40.0
    assert gen["cpu_time_s"] == 40.0 and gen["max_rss_mb"] == 500.0
    assert list(r["rules"]) == ["generate", "train", "process", "report", "evaluate"]   # by total time
    assert [(j["rule"], j["job"]) for j in r["slowest_jobs"][:3]] == [
        ("generate", "hf_0"), ("train", "bp1_vs_hf"), ("generate", "bp1_0")]
    assert r["rules"]["report"]["n_jobs"] == 1


def test_incremental_run_counts_only_its_own_jobs(tmp_path):
    # the second run redid train and evaluate only; the older benchmark files stay on disk
    later = [("train/bp1_vs_hf", 41.0, 5000.0), ("evaluate/bp1_vs_hf", 2.5, 5004.0)]
    rules = _rules(tmp_path, [j for j in JOBS if not j[0].startswith(("train", "evaluate"))] + later)
    logs = _log(tmp_path, start=4950.0, end=5006.0)
    r = workflow_times(rules, logs)
    assert r["n_jobs"] == 2 and r["n_jobs_earlier_runs"] == 4
    assert set(r["rules"]) == {"train", "evaluate"}
    assert r["wall_time_s"] == pytest.approx(56.0 - 0.123456, abs=1e-3)


def test_without_a_log_the_wall_time_spans_the_jobs(tmp_path):
    r = workflow_times(_rules(tmp_path), tmp_path / "no_logs")
    # first job starts at 40 - 30 = 10 s, the last ends at 150 s
    assert r["wall_time_s"] == pytest.approx(140.0, abs=1e-3) and r["wall_time_source"] == "benchmark files"


def test_command_and_bench_write_the_json(tmp_path, monkeypatch):
    rules = _rules(tmp_path)
    out = tmp_path / "wf.json"
    assert main(["workflow-times", "--rules-dir", str(rules), "--output", str(out),
                 "--log-dir", str(tmp_path / "none")]) == 0
    assert json.loads(out.read_text())["rules"]["train"]["total_s"] == 40.0
    monkeypatch.chdir(tmp_path)
    assert run(tmp_path / "results" / "benchmarks")["n_jobs"] == 6
    assert (tmp_path / "results" / "benchmarks" / "workflow.json").is_file()
    assert "skipped" in run(tmp_path / "empty")["status"]


def test_bad_benchmark_file_is_named(tmp_path):
    d = tmp_path / "rules"
    (d / "x").mkdir(parents=True)
    (d / "x" / "a.tsv").write_text("not a benchmark\n")
    with pytest.raises(ValueError, match="a.tsv: not a Snakemake benchmark file"):
        workflow_times(d, None)
