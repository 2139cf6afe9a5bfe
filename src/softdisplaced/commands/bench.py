"""``softdisplaced bench [NAME ...]``: run benchmarks, write ``<outdir>/<name>.json``."""

from __future__ import annotations

import importlib
import json
import logging

log = logging.getLogger("softdisplaced.bench")


def register(sub):
    p = sub.add_parser("bench", help="run benchmarks, write results/benchmarks/*.json")
    p.add_argument("names", nargs="*", help="benchmark modules of softdisplaced.benchmarks (default: all)")
    p.add_argument("--outdir", default="results/benchmarks", help="output directory (default: results/benchmarks)")
    p.set_defaults(func=run)


def run(args):
    from ..benchmarks import available

    known = available()
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; available: {known}")
    for name in names:
        mod = importlib.import_module(f"softdisplaced.benchmarks.{name}")
        log.info("benchmark %s ...", name)
        res = mod.run(args.outdir)
        print(f"{name}: {args.outdir}/{name}.json")
        print(json.dumps(res, indent=1, default=str)[:4000])
    return 0
