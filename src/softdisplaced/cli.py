"""The ``softdisplaced`` command line: one sub-command per workflow stage.

Rules call these commands; each takes the settings it depends on either as
``--settings JSON`` (what the Snakemake rules pass, so that rerun triggers see
exactly those settings) or ``--configfile config.yaml`` (interactive use).

Sub-commands live in ``softdisplaced.commands.<name>``; each module defines
``register(subparsers)`` that adds its parser with ``set_defaults(func=...)``.
Modules are imported lazily so that ``softdisplaced generate`` never pays for
TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .config import ConfigError

COMMANDS: dict[str, tuple[str, str]] = {
    "check-config": ("softdisplaced.commands.check_config", "validate a configuration file and print its hash"),
    "generate": ("softdisplaced.commands.generate", "generate one chunk of events into a Delphes-format ROOT file"),
    "process": ("softdisplaced.commands.process", "run the coffea processor on one chunk -> partial HDF5 skim"),
    "merge": ("softdisplaced.commands.process", "merge partial skims of a sample into results/skims/<analysis>/<sample>.h5"),
    "train": ("softdisplaced.commands.nn", "train one neural network"),
    "evaluate": ("softdisplaced.commands.nn", "write NN scores of skims for one network (NumPy)"),
    "background": ("softdisplaced.commands.physics", "HF double-exponential fit and transfer factors"),
    "hf-kappa": ("softdisplaced.commands.hf_kappa", "a generator's own HF transfer factors -> reference JSON (config/reference/)"),
    "yields": ("softdisplaced.commands.physics", "signal and background yields per SR"),
    "lifetime-scan": ("softdisplaced.commands.physics", "lifetime-reweighted signal yields on the c*tau grid"),
    "projections": ("softdisplaced.commands.physics", "R95 / CLs exclusion vs c*tau, luminosity projections, mass reach"),
    "recast": ("softdisplaced.commands.physics", "recast of published CMS searches"),
    "recast-stops": ("softdisplaced.commands.recast_stop", "long-lived top-squark recast (config/recast_stop.yaml)"),
    "validate": ("softdisplaced.commands.validate", "compare generators with the study's events"),
    "report": ("softdisplaced.commands.report", "paper artifacts: tables, figures, HEPData, REPORT.md"),
    "provenance": ("softdisplaced.commands.report", "results/provenance.json"),
    "bench": ("softdisplaced.commands.bench", "run benchmarks, write results/benchmarks/*.json"),
    "workflow-times": ("softdisplaced.commands.bench", "per-rule times of the last run -> results/benchmarks/workflow.json"),
}


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """The two ways to give a command its configuration."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--settings", help="JSON with the configuration sections this stage uses (rules pass this)")
    g.add_argument("--configfile", help="YAML configuration (validated against config/schema.yaml)")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softdisplaced", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"softdisplaced {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = set()
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name != only:
            continue
        if module in registered:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # stage not installed in this build
            if exc.name != module:
                raise
            sub.add_parser(name, help=f"{help_} (unavailable: {exc})")
            continue
        mod.register(sub)
        registered.add(module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"softdisplaced {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        logging.getLogger("softdisplaced").debug("traceback", exc_info=True)
        print(f"softdisplaced {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
