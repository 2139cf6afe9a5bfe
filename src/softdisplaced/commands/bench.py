"""``softdisplaced bench [NAME ...]``: run benchmarks, write ``<outdir>/<name>.json``.

``softdisplaced workflow-times [--rules-dir D] [--output F]``: per-rule and total times of the
last workflow run from Snakemake's benchmark files (see softdisplaced.benchmarks.workflow).
"""

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

    w = sub.add_parser("workflow-times", help="per-rule times of the last run -> results/benchmarks/workflow.json")
    w.add_argument("--rules-dir", default="results/benchmarks/rules", help="the rules' benchmark: TSV files")
    w.add_argument("--output", default="results/benchmarks/workflow.json")
    w.add_argument("--log-dir", default=".snakemake/log", help="Snakemake's run logs (wall time of the run)")
    w.set_defaults(func=run_workflow_times)


def run_workflow_times(args):
    from ..benchmarks.workflow import write

    r = write(args.rules_dir, args.output, args.log_dir)
    top = ", ".join(f"{k} {v['total_s']:.0f} s ({v['n_jobs']})" for k, v in list(r["rules"].items())[:6])
    print(f"workflow: {r['wall_time_s']:.0f} s wall, {r['n_jobs']} jobs ({r['sum_job_s']:.0f} s); {top} "
          f"-> {args.output}")
    return 0


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
