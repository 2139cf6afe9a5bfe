"""The processing benchmark (``make bench``): keys of processing.json and their consistency."""

from __future__ import annotations

import json

from softdisplaced.benchmarks import available
from softdisplaced.benchmarks import processing as bench


def test_processing_benchmark_writes_the_documented_keys(tmp_path, monkeypatch):
    assert "processing" in available()
    monkeypatch.setattr(bench, "N_EVENTS", 4000)
    res = bench.run(tmp_path)
    data = json.loads((tmp_path / "processing.json").read_text())
    for key in ("processor_events_per_s", "uproot_raw_events_per_s", "ratio", "workers_1_events_per_s",
                "workers_2_events_per_s", "end_to_end_events_per_s", "end_to_end_ratio"):
        assert data[key] == res[key] and data[key] > 0
    s = data["seconds"]
    assert abs(data["ratio"] - s["raw_read"] / s["processor"]) < 1e-9
    # the end-to-end run does everything the processor run does, plus the skim
    assert abs(s["skim_assembly_checksums_and_hdf5"] - (s["end_to_end"] - s["processor"])) < 1e-12
    assert data["n_events"] == 4000
