"""Iterative, futures (2 workers) and Dask LocalCluster executors give bit-identical skims."""

from __future__ import annotations

import pytest

from delphes_factory import simple_emu_event, write_delphes
from processing_helpers import run_analyses


@pytest.mark.slow  # ~20-70 s: process-pool and dask LocalCluster start-up on 2 shared cores
def test_executors_give_identical_skims(default_config, tmp_path):
    evs = [simple_emu_event(number=i, d0_e=0.25 + 0.01 * i, d0_mu=0.3 + 0.02 * i, pt_e=20.5 + i % 7,
                            weight=1.0 + 0.1 * i) for i in range(90)]
    files = [write_delphes(tmp_path / "a.root", evs[:50]), write_delphes(tmp_path / "b.root", evs[50:])]
    outs = {}
    for ex in ("iterative", "futures", "dask"):
        # small chunks: several work items per file, returned in executor-dependent order
        _, (p,) = run_analyses(default_config, files, tmp_path, tag=ex,
                               processing={"executor": ex, "workers": 2, "chunksize": 20})
        outs[ex] = p.read_bytes()
    assert outs["iterative"] == outs["futures"] == outs["dask"]
