"""No-op speed of the workflow: a second ``snakemake`` with nothing changed.

Measures, in the repository root and on its current ``results/``, the wall time
of (a) parsing the workflow and building the DAG with nothing to do (what a
second ``make run`` costs) and, as the reference measured in the same run, (b)
starting a bare ``snakemake --version``. Skipped (and said so in the JSON) when
the results are not complete, since the measurement would then run the workflow.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..atomic import write_json
from ..config import REPO_ROOT

NAME = "workflow_noop"


def _time(cmd, cwd, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(outdir: str | Path = "results/benchmarks", configfile: str = "config/config.yaml") -> dict:
    snakemake = str(Path(sys.executable).parent / "snakemake")
    dry = subprocess.run([snakemake, "-n", "--cores", "2", "--configfile", configfile],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    result: dict = {"configfile": configfile}
    if "Nothing to be done" not in dry.stdout + dry.stderr:
        result["status"] = "skipped: the workflow has pending jobs; run `make run` first"
    else:
        t_noop, out = _time([snakemake, "--cores", "2", "--configfile", configfile], REPO_ROOT)
        t_bare, _ = _time([snakemake, "--version"], REPO_ROOT)
        result.update(status="ok", noop_run_s=round(t_noop, 3), snakemake_startup_s=round(t_bare, 3),
                      ratio_noop_over_startup=round(t_noop / t_bare, 2),
                      nothing_done="Nothing to be done" in out.stdout + out.stderr)
    write_json(Path(outdir) / f"{NAME}.json", result)
    return result
