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


def test_malloc_tuning_applies_on_glibc_and_can_be_switched_off():
    import os
    import platform
    import subprocess
    import sys

    code = "from softdisplaced.generation.allocator import tune; print(tune(), tune())"
    env = dict(os.environ, SOFTDISPLACED_MALLOC_TUNING="0")
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert off.stdout.split() == ["False", "False"]
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert on.stdout.split() == ["True", "True"]
