"""``softdisplaced generate``: one chunk of events -> Delphes-format ROOT file.

    softdisplaced generate --settings JSON --sample NAME --chunk I --output PATH [--n-events N]
    softdisplaced generate --configfile config/config.yaml --sample bp1 --chunk 0 --output out.root

``--settings`` (what the rule passes) holds ``seed``, ``sample`` (the spec of
``build_samples(cfg)[NAME]``), ``generation`` and ``detector``; with
``--configfile`` the sample spec is built from the configuration.
"""

from __future__ import annotations

import logging
import time

from ..cli import add_settings_args
from ..config import ConfigError, settings_from_args

log = logging.getLogger("softdisplaced.generate")


def register(sub):
    p = sub.add_parser("generate", help="generate one chunk of events into a Delphes-format ROOT file")
    add_settings_args(p)
    p.add_argument("--sample", required=True, help="sample name (bp1 ... bp7, hf, m<mass>, ...)")
    p.add_argument("--chunk", type=int, default=0, help="chunk index (selects the random stream)")
    p.add_argument("--output", required=True, help="output ROOT file (written atomically)")
    p.add_argument("--n-events", type=int, default=None,
                   help="override the number of events (default: the sample's events_per_chunk)")
    p.set_defaults(func=run)


def resolve_sample(settings: dict, name: str) -> dict:
    sample = settings.get("sample")
    if sample is None:
        from ..samples import build_samples

        samples = build_samples(settings)
        if name not in samples:
            raise ConfigError(f"sample '{name}' is not defined by the configuration (known: {', '.join(samples)})")
        sample = samples[name]
    elif sample.get("name", name) != name:
        raise ValueError(f"--sample {name} does not match settings.sample.name = {sample.get('name')}")
    return sample


def generate_file(settings: dict, sample: dict, chunk: int, output: str, n_events: int | None = None) -> dict:
    """Generate, simulate and write one chunk; returns counts and timings."""
    from softdisplaced.generation import delphes_writer, detector
    from softdisplaced import generation
    from ..samples import rng_for

    if "seed" not in settings:
        raise ConfigError("settings: missing 'seed'")
    source = sample.get("source", "fast")
    n = n_events if n_events is not None else sample.get("events_per_chunk")
    extra = {}
    if source in generation.FILE_SOURCES:  # one input file per chunk; None = all its events
        extra["chunk"] = chunk
    elif n is None or int(n) <= 0:
        raise ValueError(f"sample '{sample['name']}': number of events must be positive, got {n}")
    backend = generation.backend_for(source)
    settings = generation.with_sample_settings(settings, sample)   # its own settings (hf_study, 8 TeV, Pythia 8 copies)
    t0 = time.perf_counter()
    rng = rng_for(settings["seed"], sample["name"], chunk, "generate")
    truth = backend.generate_chunk(sample, settings, rng, None if n is None else int(n), **extra)
    t1 = time.perf_counter()
    reco = detector.simulate(truth, settings.get("detector", {}),
                             rng_for(settings["seed"], sample["name"], chunk, "detector"))
    t2 = time.perf_counter()
    xs_fb = sample.get("cross_section_fb")
    delphes_writer.write(output, reco, truth, cross_section_pb=(xs_fb or 0.0) / 1000.0,
                         first_event_number=chunk * len(truth),
                         metadata={"signal_decay_mode": generation.signal_decay_mode(sample, settings)})
    t3 = time.perf_counter()
    return {"n_events": len(truth), "generate_s": t1 - t0, "detector_s": t2 - t1, "write_s": t3 - t2,
            "events_per_s": len(truth) / max(t3 - t0, 1e-9)}


def run(args):
    from softdisplaced.generation.allocator import tune

    tune()  # fewer page faults while building and writing the chunk (see softdisplaced.generation.allocator)
    settings = settings_from_args(args)
    sample = resolve_sample(settings, args.sample)
    try:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
    except ImportError:  # pragma: no cover
        progress = None
    desc = f"generate {args.sample} chunk {args.chunk} ({sample.get('source', 'fast')})"
    if progress is not None:
        with progress:
            progress.add_task(desc, total=None)
            res = generate_file(settings, sample, args.chunk, args.output, args.n_events)
    else:  # pragma: no cover
        res = generate_file(settings, sample, args.chunk, args.output, args.n_events)
    log.info("%s: %d events -> %s in %.1f s (%.0f events/s; generator %.2f s, detector %.2f s, writer %.2f s)",
             desc, res["n_events"], args.output, res["generate_s"] + res["detector_s"] + res["write_s"],
             res["events_per_s"], res["generate_s"], res["detector_s"], res["write_s"])
    return 0
