"""Generation benchmark: events/s per core of the fast generator, the detector
simulation and the Delphes writer, measured in the same (single) process.

Rates use the process CPU time (one core: numpy and fastjet run single-threaded
here) and, for reference, the wall time. The process uses the malloc settings of
the ``generate`` command (:mod:`softdisplaced.generation.allocator`). Result:
``<outdir>/generation.json``.
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


def measure(sample: dict, n_events: int, repeats: int = 5, seed: int = 1) -> dict:
    """Per-stage CPU seconds of ``repeats`` full chunks after one warm-up chunk of the same size.

    Rates use the minimum over the repeats of each stage (the timeit convention: on a
    shared machine the larger values measure interference, not the code); the medians
    and the warm-up chunk (the first-touch memory cost of a fresh process) are reported too."""
    from softdisplaced.generation import delphes_writer, detector
    from ..generation import generate_chunk
    from ..samples import rng_for

    settings = {"seed": seed, "generation": {}, "detector": {}}
    stages = ("generator", "detector", "writer")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats + 1):  # r = 0: warm-up (imports, cached tables, first-touch memory)
            truth, cg, wg = _timed(lambda: generate_chunk(sample, settings, rng_for(seed, sample["name"], r), n_events))
            reco, cd, wd = _timed(lambda: detector.simulate(truth, {}, rng_for(seed, sample["name"], r, "detector")))
            path = Path(tmp) / f"bench_{r}.root"
            _, cw, ww = _timed(lambda: delphes_writer.write(path, reco, truth, cross_section_pb=0.1))
            size = os.path.getsize(path)
            path.unlink()
            del truth, reco
            runs.append({"cpu": dict(zip(stages, (cg, cd, cw))), "wall": dict(zip(stages, (wg, wd, ww)))})
    warm, runs = runs[0], runs[1:] or runs[:1]
    best = {k: min(x["cpu"][k] for x in runs) for k in stages}
    median = {k: float(np.median([x["cpu"][k] for x in runs])) for k in stages}
    wall = {k: min(x["wall"][k] for x in runs) for k in stages}

    def rates(sec):
        out = {k: n_events / v for k, v in sec.items()}
        out["combined"] = n_events / sum(sec.values())
        return out

    return {"n_events": n_events, "repeats": repeats, "events_per_s_per_core": rates(best),
            "events_per_s_per_core_median": rates(median), "events_per_s_wall": rates(wall),
            "cpu_s": best, "cpu_s_median": median, "cpu_s_warm_up_chunk": warm["cpu"],
            "file_mb_per_1e5_events": size / n_events * 1e5 / 1e6}


def run(outdir="results/benchmarks", n_events: int = 100_000, repeats: int = 5) -> dict:
    from softdisplaced.generation.allocator import tune

    malloc_tuned = tune()  # as the generate command does
    out = {"benchmark": "generation",
           "description": "fast generator + detector simulation + Delphes writer, single process; "
                          "rates = events / process CPU seconds, minimum of each stage over the repeats "
                          "after a warm-up chunk (medians and the warm-up chunk reported beside)",
           "target_signal_events_per_s_per_core": 1.0e5,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
           "package_versions": {k: v for k, v in package_versions().items()
                                if k in ("numpy", "awkward", "uproot", "fastjet", "softdisplaced")},
           "malloc_tuned": malloc_tuned,
           "samples": {}}
    for key, sample in SAMPLES.items():
        out["samples"][key] = measure(sample, n_events if key.startswith("signal") else n_events // 2, repeats)
    sig = out["samples"]["signal_bp1"]["events_per_s_per_core"]["combined"]
    out["signal_combined_events_per_s_per_core"] = sig
    out["signal_combined_events_per_s_per_core_median"] = out["samples"]["signal_bp1"]["events_per_s_per_core_median"]["combined"]
    out["meets_target"] = bool(sig >= out["target_signal_events_per_s_per_core"])
    write_json(Path(outdir) / "generation.json", out)
    return out
