"""Generation benchmark: events/s per core of the fast generator, the detector
simulation and the Delphes writer, measured in the same (single) process.

Rates use the process CPU time (one core: numpy and fastjet run single-threaded
here) and, for reference, the wall time. Result: ``<outdir>/generation.json``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..provenance import package_versions

SAMPLES = {
    "signal_bp1": {"name": "bp1", "kind": "signal", "source": "fast", "m_c": 324.0, "dm": 20.0, "ctau_cm": 2.0,
                   "cross_section_fb": 127.7},
    "hf": {"name": "hf", "kind": "background", "source": "fast"},
}


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def measure(sample: dict, n_events: int, repeats: int = 3, seed: int = 1) -> dict:
    from .. import delphes_writer, detector
    from ..generation import generate_chunk
    from ..samples import rng_for

    settings = {"seed": seed, "generation": {}, "detector": {}}
    # warm-up (imports, cached tables, fastjet start-up)
    small = generate_chunk(sample, settings, rng_for(seed, sample["name"], 999), 1000)
    with tempfile.TemporaryDirectory() as tmp:
        delphes_writer.write(Path(tmp) / "w.root", detector.simulate(small, {}, rng_for(seed, "w", 0, "det")), small)
        best = None
        for r in range(repeats):
            truth, cg, wg = _timed(lambda: generate_chunk(sample, settings, rng_for(seed, sample["name"], r), n_events))
            reco, cd, wd = _timed(lambda: detector.simulate(truth, {}, rng_for(seed, sample["name"], r, "detector")))
            path = Path(tmp) / f"bench_{r}.root"
            _, cw, ww = _timed(lambda: delphes_writer.write(path, reco, truth, cross_section_pb=0.1))
            size = os.path.getsize(path)
            path.unlink()
            res = {"cpu_s": {"generator": cg, "detector": cd, "writer": cw},
                   "wall_s": {"generator": wg, "detector": wd, "writer": ww}, "file_bytes": size}
            if best is None or sum(res["cpu_s"].values()) < sum(best["cpu_s"].values()):
                best = res
    rate = {k: n_events / v for k, v in best["cpu_s"].items()}
    rate["combined"] = n_events / sum(best["cpu_s"].values())
    wall = {k: n_events / v for k, v in best["wall_s"].items()}
    wall["combined"] = n_events / sum(best["wall_s"].values())
    return {"n_events": n_events, "repeats": repeats, "events_per_s_per_core": rate, "events_per_s_wall": wall,
            "cpu_s": best["cpu_s"], "file_mb_per_1e5_events": best["file_bytes"] / n_events * 1e5 / 1e6}


def run(outdir="results/benchmarks", n_events: int = 100_000, repeats: int = 3) -> dict:
    out = {"benchmark": "generation",
           "description": "fast generator + detector simulation + Delphes writer, single process; "
                          "rates = events / process CPU seconds (best of the repeats)",
           "target_signal_events_per_s_per_core": 1.0e5,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
           "package_versions": {k: v for k, v in package_versions().items()
                                if k in ("numpy", "awkward", "uproot", "fastjet", "softdisplaced")},
           "samples": {}}
    for key, sample in SAMPLES.items():
        out["samples"][key] = measure(sample, n_events if key.startswith("signal") else n_events // 2, repeats)
    sig = out["samples"]["signal_bp1"]["events_per_s_per_core"]["combined"]
    out["signal_combined_events_per_s_per_core"] = sig
    out["meets_target"] = bool(sig >= out["target_signal_events_per_s_per_core"])
    write_json(Path(outdir) / "generation.json", out)
    return out
