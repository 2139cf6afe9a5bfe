"""Provenance: package versions, input checksums, configuration hash, machine."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from .config import REPO_ROOT, config_hash

__all__ = ["PACKAGES", "package_versions", "file_sha256", "checksums", "git_commit", "machine", "record"]

PACKAGES = (
    "softdisplaced", "numpy", "scipy", "awkward", "uproot", "coffea", "vector", "fastjet",
    "hist", "h5py", "pyhf", "iminuit", "tensorflow-cpu", "tensorflow", "keras", "snakemake",
    "pythia8mc", "pyhepmc", "matplotlib", "mplhep", "dask", "distributed", "hepdata_lib",
)


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checksums(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    return {str(p): file_sha256(p) for p in paths}


def git_commit(repo: Path = REPO_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict[str, str | int]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count() or 0,
    }


def record(settings: Mapping, inputs: Iterable[str | os.PathLike] = ()) -> dict:
    """A provenance record for one artifact: config hash, versions, input checksums.

    No timestamp is included, so that artifacts stay bit-identical across runs
    of the same configuration.
    """
    return {
        "config_hash": config_hash(settings),
        "package_versions": package_versions(),
        "input_checksums": checksums(inputs),
    }


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
