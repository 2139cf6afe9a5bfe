"""``softdisplaced process`` and ``softdisplaced merge`` (thin wrappers over softdisplaced.processing.skim).

process: events file(s) of one chunk -> one partial skim per analysis::

    softdisplaced process --settings JSON --sample NAME --analysis A [B ...] \\
        --input FILE [FILE ...] --output PARTIAL_A.h5 [PARTIAL_B.h5 ...] [--chunk N]

merge: a sample's partial skims -> skim, cutflow (.json + .md), histograms (.pkl)::

    softdisplaced merge --settings JSON --sample NAME --analysis A \\
        --inputs P0.h5 P1.h5 ... --skim OUT.h5 --cutflow OUT.json --hists OUT.pkl
    softdisplaced merge --settings JSON --sample NAME --analysis A [B ...] --partials-dir results/partials \\
        --skim A.h5 [B.h5 ...] --cutflow A.json [B.json ...] --hists A.pkl [B.pkl ...]

Settings (JSON or --configfile): ``sample`` (spec from build_samples; with --configfile it is
looked up by --sample), ``analysis`` (one spec + ``name``) or ``analyses`` ({name: spec});
with --configfile both come from build_analyses; ``efficiency``; ``processing``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..config import ConfigError, config_hash, settings_from_args

log = logging.getLogger("softdisplaced.process")


def register(sub):
    from ..cli import add_settings_args

    p = sub.add_parser("process", help="run the coffea processor on one chunk -> partial HDF5 skim(s)")
    add_settings_args(p)
    p.add_argument("--sample", required=True)
    p.add_argument("--analysis", nargs="+", required=True, help="analysis name(s); one --output per analysis")
    p.add_argument("--input", nargs="+", required=True, help="Delphes-format ROOT file(s) of the chunk")
    p.add_argument("--output", nargs="+", required=True, help="partial skim(s), one per analysis, same order")
    p.add_argument("--chunk", type=int, default=None,
                   help="workflow chunk number (default: the output file's stem when it is an integer, else 0)")
    p.set_defaults(func=run_process)

    m = sub.add_parser("merge", help="merge partial skims of a sample into results/skims/<analysis>/<sample>.h5")
    add_settings_args(m)
    m.add_argument("--sample", required=True)
    m.add_argument("--analysis", nargs="+", required=True)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--inputs", nargs="+", help="partial skims (one analysis)")
    g.add_argument("--partials-dir", help="directory holding <analysis>/<sample>/<chunk>.h5")
    m.add_argument("--skim", nargs="+", required=True)
    m.add_argument("--cutflow", nargs="+", required=True)
    m.add_argument("--hists", nargs="+", required=True)
    m.set_defaults(func=run_merge)


def _analyses(settings, names):
    if "analyses" in settings and isinstance(settings["analyses"], dict) and "definitions" not in settings["analyses"]:
        pool = dict(settings["analyses"])
    elif "analysis" in settings:
        spec = dict(settings["analysis"])
        pool = {spec.pop("name", names[0]): spec}
    else:  # a full configuration (--configfile)
        from softdisplaced.processing.analyses import build_analyses

        pool = build_analyses(settings, only_enabled=False)
    missing = [n for n in names if n not in pool]
    if missing:
        raise ConfigError(f"settings: analysis {missing} not defined (have: {', '.join(pool)})")
    from softdisplaced.processing.analyses import normalise_spec

    return {n: normalise_spec(n, {k: v for k, v in pool[n].items() if k != "name"}) for n in names}


def _sample(settings, name):
    s = settings.get("sample")
    if isinstance(s, dict):
        if s.get("name", name) != name:
            raise ConfigError(f"settings.sample is '{s.get('name')}' but --sample {name}")
        return dict(s, name=name)
    if "samples" in settings and "benchmarks" in settings:
        from ..samples import build_samples

        samples = build_samples(settings)
        if name not in samples:
            raise ConfigError(f"--sample {name}: not a sample of this configuration ({', '.join(samples)})")
        return samples[name]
    return {"name": name}


def _sections(settings):
    for key in ("efficiency", "processing"):
        if key not in settings:
            raise ConfigError(f"settings: section '{key}' missing")
    return settings["efficiency"], settings["processing"]


def run_process(args):
    from softdisplaced.processing.skim import process_files

    settings = settings_from_args(args)
    analyses = _analyses(settings, args.analysis)
    sample = _sample(settings, args.sample)
    efficiency, processing = _sections(settings)
    chunk = args.chunk
    if chunk is None:
        stem = Path(args.output[0]).stem
        chunk = int(stem) if re.fullmatch(r"\d+", stem) else 0
    res = process_files(args.input, args.output, analyses=analyses, sample=sample, efficiency=efficiency,
                        processing=processing, chunk=chunk, config_hash=config_hash(settings))
    for name, a in res.items():
        log.info("%s/%s chunk %d: %d events processed, %d selected", name, args.sample, chunk,
                 a["n_events_processed"], len(a["events"]["sr"]))
    return 0


def _partials(directory, analysis, sample):
    d = Path(directory) / analysis / sample
    files = sorted((p for p in d.glob("*.h5") if re.fullmatch(r"\d+", p.stem)), key=lambda p: int(p.stem))
    if not files:
        raise FileNotFoundError(f"{d}: no partial skims <chunk>.h5")
    return files


def run_merge(args):
    from ..provenance import package_versions
    from softdisplaced.processing.skim import merge_partials

    settings = settings_from_args(args)
    analyses = _analyses(settings, args.analysis)
    sample = _sample(settings, args.sample)
    processing = settings.get("processing", {})
    n = len(analyses)
    for opt in ("skim", "cutflow", "hists"):
        if len(getattr(args, opt)) != n:
            raise ValueError(f"merge: {n} analyses but {len(getattr(args, opt))} --{opt} paths")
    if args.inputs and n != 1:
        raise ValueError("merge: --inputs takes the partials of exactly one analysis; use --partials-dir for several")
    versions = package_versions()
    for i, (name, spec) in enumerate(analyses.items()):
        partials = args.inputs if args.inputs else _partials(args.partials_dir, name, args.sample)
        cf = merge_partials(partials, args.skim[i], args.cutflow[i], args.hists[i], analysis=name, spec=spec,
                            sample=sample, config_hash=config_hash(settings), package_versions=versions,
                            gzip_level=int(processing.get("gzip_level", 1)),
                            hist_overrides=processing.get("histograms"))
        log.info("merged %d partials -> %s (%d selected of %d)", len(partials), args.skim[i],
                 cf["cuts"][-1]["raw"], cf["n_events_processed"])
    return 0
