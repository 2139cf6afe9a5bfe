"""Helpers to run the real Snakefile on a tiny configuration in a scratch copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["Snakefile", "rules", "workflow", "config"]


def make_workdir(dest: Path, reference_dir: Path | None = None, extra_config: str = "") -> Path:
    """Copy the workflow into ``dest`` with tests/data/tiny.yaml as ``config/tiny.yaml``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    tiny = (REPO / "tests" / "data" / "tiny.yaml").read_text()
    ntuples = (reference_dir / "authors_ntuples") if reference_dir else dest / "no-ntuples"
    tiny = tiny.replace("@STUDY_NTUPLES@", str(ntuples))
    if extra_config:  # merged key by key (a second YAML document would replace whole sections)
        import yaml

        from softdisplaced.config import deep_merge

        tiny = yaml.safe_dump(deep_merge(yaml.safe_load(tiny), yaml.safe_load(extra_config)), sort_keys=False)
    (dest / "config" / "tiny.yaml").write_text(tiny)
    return dest


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e.setdefault("MPLBACKEND", "Agg")
    return e


def snakemake(workdir: Path, *args: str, configfiles=("config/tiny.yaml",), check=True, timeout=1500):
    # targets first: --configfile takes several values and would swallow them
    cmd = [str(BIN / "snakemake"), *args, "--cores", "2", "--configfile", *configfiles]
    proc = subprocess.run(cmd, cwd=workdir, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-6000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(workdir: Path, *args: str, configfiles=("config/tiny.yaml",)) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute (``args``: targets and options)."""
    proc = snakemake(workdir, *args, "--dry-run", "--quiet", "rules", configfiles=configfiles)
    text = proc.stdout + proc.stderr
    counts: dict[str, int] = {}
    table = re.search(r"Job stats:\n(.*?)(?:\n\s*\n|\Z)", text, re.S)
    if not table:
        if "Nothing to be done" in text:
            return {}
        raise AssertionError(f"could not parse the dry run:\n{text[-4000:]}")
    for line in table.group(1).splitlines():
        m = re.match(r"^\s*([A-Za-z_][\w]*)\s+(\d+)\s*$", line)
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts
