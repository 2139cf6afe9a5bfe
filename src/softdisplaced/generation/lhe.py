"""LHE files (MadGraph, POWHEG, ...) showered and hadronised by Pythia 8.

``Beams:frameType = 4`` reads beams, process and events from the Les Houches file;
gzip-compressed files are read directly by the Pythia wheel (if a Pythia build
cannot, the file is decompressed into a temporary directory and retried). One LHE
file is one chunk of the sample (``samples.external[].files``); the event weight is
Pythia's ``info.weight()`` of the LHE event (sign and LHE-strategy units kept; the
sample is normalised downstream to ``cross_section_fb`` of the sample, or to Pythia's
``sigmaGen`` stored per event as ``cross_section_pb`` when none is configured).

Matched samples (MLM / FxFx) need the matching commands of the user's setup
(``JetMatching:*``): give them in ``generation.pythia8.lhe.extra``. Without them the
jet multiplicities of a merged sample are double counted; the lepton kinematics of
the hard process (e.g. the Z peak) are not affected.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Mapping

import awkward as ak
import numpy as np

from . import pythia8 as p8

__all__ = ["lhe_file_for_chunk", "shower_lhe", "generate_chunk"]

log = logging.getLogger(__name__)


def lhe_file_for_chunk(sample: Mapping, chunk: int) -> Path:
    files = list(sample.get("files") or [])
    if not files:
        raise ValueError(f"sample {sample.get('name')}: no LHE files configured (samples.external[].files)")
    if not 0 <= int(chunk) < len(files):
        raise ValueError(f"sample {sample.get('name')}: chunk {chunk} out of range (one chunk per file, "
                         f"{len(files)} files)")
    path = Path(files[int(chunk)])
    if not path.exists():
        raise FileNotFoundError(f"{path}: LHE file of sample {sample.get('name')} does not exist")
    with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as fh:
        head = fh.read(4096)
    if "<LesHouchesEvents" not in head:
        raise ValueError(f"{path}: not a Les Houches event file (no <LesHouchesEvents> tag in the first 4 kB)")
    return path


def shower_lhe(path: str | os.PathLike, settings: Mapping | None, seed: int, n_events: int | None = None,
               sample: Mapping | None = None) -> ak.Array:
    """Shower the events of one LHE file -> truth event record (all events when ``n_events`` is None)."""
    sample = dict(sample or {"name": Path(path).name})
    sample["source"] = "lhe"
    cfg = p8.pythia8_settings(settings)
    n = int(n_events) if n_events and n_events > 0 else 2**31 - 1
    with tempfile.TemporaryDirectory(prefix="sd_lhe_") as tmp:
        try:
            pythia, _ = p8.make_pythia(sample, settings, seed, tmp, lhe_path=str(path))
        except RuntimeError:
            if not str(path).endswith(".gz"):
                raise
            plain = Path(tmp) / Path(path).name[:-3]
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            pythia, _ = p8.make_pythia(sample, settings, seed, tmp, lhe_path=str(plain))
        t0 = time.perf_counter()
        events = p8.generate_events(pythia, n, batch_size=int(cfg["batch_size"]))
    log.info("lhe %s: %d events showered, %.2f ms/event", path, len(events),
             1e3 * (time.perf_counter() - t0) / max(len(events), 1))
    return events


def generate_chunk(sample: Mapping, settings: Mapping | None, rng: np.random.Generator, n_events: int | None,
                   chunk: int = 0) -> ak.Array:
    """Chunk ``chunk`` of an LHE sample = its ``files[chunk]`` showered by Pythia 8.

    ``n_events`` <= 0 or None: every event of the file.
    """
    path = lhe_file_for_chunk(sample, chunk)
    return shower_lhe(path, settings, p8.pythia_seed(rng), n_events, sample=sample)
