"""``softdisplaced report`` (tables, figures, HEPData, REPORT.md) and ``softdisplaced provenance``."""

from __future__ import annotations

from ..cli import add_settings_args
from ..config import settings_from_args


def register(sub):
    p = sub.add_parser("report", help="paper artifacts: tables, figures, HEPData, REPORT.md")
    add_settings_args(p)
    p.add_argument("--results-dir", default="results", help="directory holding the stages' outputs (default: results)")
    p.add_argument("--output-dir", default=None, help="where the artifacts go (default: <results-dir>/paper)")
    p.add_argument("--provenance", default=None,
                   help="provenance file the artifacts point to (default: <results-dir>/provenance.json)")
    p.add_argument("--only", nargs="+", default=None, metavar="ARTIFACT",
                   help="build only these artifacts (names: see docs/report.md)")
    p.add_argument("--skip", nargs="+", default=[], metavar="ARTIFACT", help="leave these artifacts out")
    p.set_defaults(func=run_report)

    q = sub.add_parser("provenance", help="results/provenance.json")
    add_settings_args(q)
    q.add_argument("--inputs", nargs="*", default=[], help="files or directories whose SHA-256 is recorded")
    q.add_argument("--benchmarks", nargs="*", default=[],
                   help="Snakemake benchmark TSV files (or directories of them) for per-rule run times")
    q.add_argument("--output", default="results/provenance.json")
    q.set_defaults(func=run_provenance)


def run_report(args):
    from ..report import build_report

    settings = settings_from_args(args)
    arts = build_report(settings, args.results_dir, args.output_dir, args.provenance, only=args.only, skip=args.skip)
    print(f"report: {len(arts)} artifacts written")
    return 0


def run_provenance(args):
    from ..report.provenance import write_provenance

    settings = settings_from_args(args)
    rec = write_provenance(args.output, settings, args.inputs, args.benchmarks)
    print(f"{args.output}: config {rec['config_hash']}, {len(rec['input_checksums'])} inputs, "
          f"{len(rec['rule_runtimes'])} rules")
    return 0
