"""Workflow execution on a real Slurm cluster through snakemake-executor-plugin-slurm.

Needs a running cluster: ``bash .ci/slurm/start.sh`` (single node on localhost, as root),
``source ${SLURM_TMP:-/tmp/softdisplaced-slurm}/env.sh`` and ``SOFTDISPLACED_SLURM=1``.
Without SOFTDISPLACED_SLURM=1 the tests are skipped; with it, a cluster that does not answer
is a failure (CI asked for these tests, so they must not silently skip).

Environment:
  SOFTDISPLACED_SLURM=1                run these tests
  SOFTDISPLACED_SLURM_TARGET           target of the real-workflow test (default ``all``)
  SOFTDISPLACED_SLURM_TIMEOUT          seconds allowed for one snakemake run (default 1800)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"
TIMEOUT = int(os.environ.get("SOFTDISPLACED_SLURM_TIMEOUT", "1800"))

# Options for a cluster without accounting (the CI cluster): `sacct` does not work there, so
# job states come from `squeue` (kept for MinJobAge=300 s after the end of a job). The two
# polling options only make the test faster; they are not needed for correctness.
CI_SLURM_OPTIONS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--slurm-keep-successful-logs",
]


def slurm_snakemake(
    args: list[str],
    *,
    cwd: Path,
    profile: Path | None = PROFILE,
    timeout: int = TIMEOUT,
    extra_options: list[str] = CI_SLURM_OPTIONS,
) -> subprocess.CompletedProcess:
    """Run ``snakemake --profile <slurm profile> <CI options> <args>`` in ``cwd``.

    Uses this interpreter's snakemake (so the jobs run with the same Python) and puts its
    ``bin`` directory first on PATH (jobs inherit the environment: sbatch --export=ALL), so
    the ``softdisplaced`` CLI is found inside Slurm jobs. Returns the CompletedProcess with
    stdout and stderr merged in ``.stdout``; never raises on a non-zero exit.
    """
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("MPLBACKEND", "Agg")
    cmd = [sys.executable, "-m", "snakemake"]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    cmd += [*extra_options, *args]
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        subprocess.run(["scancel", "--user", str(os.getuid())], check=False, timeout=30)
        pytest.fail(f"snakemake did not finish within {timeout} s: {' '.join(cmd)}\n{out[-6000:]}")


def describe_failure(proc: subprocess.CompletedProcess, workdir: Path) -> str:
    """Tail of the snakemake output plus the Slurm job logs, for assertion messages."""
    parts = [f"snakemake exited with {proc.returncode}: {' '.join(map(str, proc.args))}",
             proc.stdout[-6000:]]
    for log in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))[-5:]:
        parts.append(f"----- {log} -----\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def slurm_cluster() -> str:
    """Skip unless SOFTDISPLACED_SLURM=1; then require a responding cluster with a usable node."""
    if os.environ.get("SOFTDISPLACED_SLURM") != "1":
        pytest.skip("Slurm tests need SOFTDISPLACED_SLURM=1 and a running cluster "
                    "(bash .ci/slurm/start.sh; source $SLURM_TMP/env.sh)")
    if shutil.which("sinfo") is None:
        pytest.fail("SOFTDISPLACED_SLURM=1 but `sinfo` is not on PATH (run .ci/slurm/start.sh)")
    try:
        res = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True,
                             text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("SOFTDISPLACED_SLURM=1 but `sinfo` hangs (slurmctld not reachable?)")
    states = res.stdout.split()
    if res.returncode != 0 or not any(
            s.rstrip("*~#").startswith(("idle", "mixed", "allocated", "completing")) for s in states[1::2]):
        pytest.fail(f"SOFTDISPLACED_SLURM=1 but no usable Slurm node: sinfo rc={res.returncode} "
                    f"out={res.stdout!r} err={res.stderr!r}")
    return res.stdout


def _job_state(jobid: str) -> str | None:
    res = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True, timeout=30)
    m = re.search(r"JobState=(\S+)", res.stdout)
    return m.group(1) if m else None


MINI_SNAKEFILE = r'''
CHUNKS = range(3)
ANALYSES = ["a", "b"]

localrules: all

rule all:
    input: "merged.txt"

rule generate:
    output: "events/{chunk}.txt"
    shell: "echo generate chunk={wildcards.chunk} job=${{SLURM_JOB_ID:-none}} > {output}"

rule process:
    input: "events/{chunk}.txt"
    output: expand("partials/{ana}/{{chunk}}.txt", ana=ANALYSES)
    shell: "for f in {output}; do echo process job=${{SLURM_JOB_ID:-none}} > $f; done"

rule merge:
    input: expand("partials/{ana}/{chunk}.txt", ana=ANALYSES, chunk=CHUNKS)
    output: "merged.txt"
    shell: "cat {input} > {output}; echo merge job=${{SLURM_JOB_ID:-none}} >> {output}"
'''


def test_minimal_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    """Two-stage workflow (grouped generate+process chunks, then merge) through the slurm profile."""
    (tmp_path / "Snakefile").write_text(MINI_SNAKEFILE)
    proc = slurm_snakemake(["--directory", str(tmp_path), "-s", str(tmp_path / "Snakefile")], cwd=tmp_path)
    assert proc.returncode == 0, describe_failure(proc, tmp_path)

    merged = tmp_path / "merged.txt"
    assert merged.exists(), describe_failure(proc, tmp_path)
    chunk_files = sorted((tmp_path / "events").glob("*.txt")) + sorted((tmp_path / "partials").rglob("*.txt"))
    assert len(chunk_files) == 3 + 6

    def job_of(text: str) -> str:
        m = re.search(r"job=(\S+)", text)
        assert m, text
        return m.group(1)

    # Every job ran inside a Slurm allocation (SLURM_JOB_ID set by slurmd).
    chunk_jobs = {job_of(f.read_text()) for f in chunk_files}
    merge_job = job_of(merged.read_text().splitlines()[-1])
    assert "none" not in chunk_jobs | {merge_job}, f"a job ran outside Slurm: {chunk_jobs}, {merge_job}"
    # The profile groups generate+process: 3 chunk components (<= group-components) -> one Slurm job.
    assert len(chunk_jobs) == 1, f"generate/process were not grouped into one Slurm job: {chunk_jobs}"
    assert merge_job not in chunk_jobs

    # Slurm knows those jobs, and the plugin wrote its per-job logs.
    for jobid in chunk_jobs | {merge_job}:
        logs = list((tmp_path / ".snakemake" / "slurm_logs").rglob(f"{jobid}.log"))
        assert logs, f"no Slurm log for job {jobid} under .snakemake/slurm_logs"
        state = _job_state(jobid)
        # scontrol forgets a job MinJobAge (300 s) after it ends; while it knows it, it must be COMPLETED.
        assert state in (None, "COMPLETED"), f"Slurm job {jobid} is {state}"
    assert "submitted with SLURM jobid" in proc.stdout


def test_real_workflow_tiny_config_through_slurm(slurm_cluster, tmp_path, repo_root):
    """The repository's Snakefile with tests/data/tiny.yaml, run through the slurm profile."""
    if not (repo_root / "Snakefile").exists():
        pytest.skip("no Snakefile in the repository yet")
    if not TINY_CONFIG.exists():
        pytest.skip(f"tiny configuration {TINY_CONFIG.relative_to(repo_root)} does not exist yet")
    from workflow_utils import make_workdir  # tests/workflow_utils.py (shared with the workflow tests)

    target = os.environ.get("SOFTDISPLACED_SLURM_TARGET", "all")
    reference = Path(os.environ.get("SOFTDISPLACED_REFERENCE", repo_root.parent / "shared" / "reference"))
    # Scratch copy (Snakefile, rules, workflow, config + config/tiny.yaml) in <tmp>/<repo name>.
    # tiny.yaml, with two benchmarks and one mass point: every rule of the DAG, fewer jobs
    smaller = "samples:\n  signal:\n    benchmarks: [1, 4]\n  mass_scan:\n    masses: [200]\n" \
              "nn:\n  networks:\n    bp1_vs_hf:\n      evaluate: [bp4]\n"
    work = make_workdir(tmp_path / repo_root.name, reference if reference.is_dir() else None,
                        extra_config=smaller)
    proc = slurm_snakemake(
        ["--directory", str(work), "-s", str(work / "Snakefile"),
         "--configfile", "config/tiny.yaml", "--", target],
        cwd=work,
    )
    assert proc.returncode == 0, describe_failure(proc, work)
    assert "submitted with SLURM jobid" in proc.stdout, "no job went through Slurm"
