"""The generation benchmark and the ``softdisplaced bench`` command."""

from __future__ import annotations

import json

from softdisplaced.benchmarks import available
from softdisplaced.benchmarks import generation as bench


def test_generation_benchmark_writes_json(tmp_path):
    assert "generation" in available()
    res = bench.run(tmp_path, n_events=4000, repeats=1)
    data = json.loads((tmp_path / "generation.json").read_text())
    assert data["signal_combined_events_per_s_per_core"] == res["signal_combined_events_per_s_per_core"]
    rates = data["samples"]["signal_bp1"]["events_per_s_per_core"]
    assert set(rates) == {"generator", "detector", "writer", "combined"}
    # combined rate is the harmonic combination of the three stages
    inv = sum(1 / rates[k] for k in ("generator", "detector", "writer"))
    assert abs(1 / inv - rates["combined"]) < 1e-6 * rates["combined"]
    assert all(v > 0 for v in rates.values())
