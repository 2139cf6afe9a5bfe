"""``softdisplaced recast-stops``: the long-lived top-squark model recast (config/recast_stop.yaml).

    softdisplaced recast-stops --settings JSON --skims results/skims/<analysis>/stop<m>.h5 ... \\
        --outdir results/recast_stop [--validation-dir results/validation]

Writes ``<recast>_yields.csv`` (signal per SR on the c*tau grid), ``limits.csv`` (CLs mu95 per model,
mass and c*tau: each recast alone and the combinations of ``recast.combined``),
``mass_limits.csv`` + figure ``mass_limits.{pdf,png}`` (largest excluded mass vs c*tau), the pyhf
workspace of the combined EXO-18-003 model at ``recast.stops.workspace_point``, and, with
``--validation-dir``, RECAST.md / RECAST.csv (our yields vs the published CMS ones).
Sections read: cross_sections, samples, limits (cls), recast.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..cli import add_settings_args
from ..config import settings_from_args

log = logging.getLogger("softdisplaced.recast_stop")


def register(sub):
    p = sub.add_parser("recast-stops", help="long-lived top-squark recast of CMS-PAS-EXO-16-022 and CMS-EXO-18-003")
    add_settings_args(p)
    p.add_argument("--skims", nargs="+", required=True, help="skims of the stop samples (results/skims/<analysis>/stop<m>.h5)")
    p.add_argument("--outdir", default="results/recast_stop")
    p.add_argument("--validation-dir", help="also write RECAST.md / RECAST.csv there (results/validation)")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from softdisplaced.inference import recast as rc
    from softdisplaced.inference import recast_outputs as ro
    from softdisplaced.inference.reweighting import ctau_grid
    from softdisplaced.inference.yields import write_csv

    t0 = time.perf_counter()
    cfg = settings_from_args(args)
    sc = cfg["recast"].get("stops") or {}
    grid = ctau_grid(sc.get("ctau_grid_cm", {"min": 0.01, "max": 1000.0, "n_points": 21}))
    out = Path(args.outdir)
    counts = rc.stop_counts(cfg, args.skims, grid)
    if not any(counts.values()):
        raise ValueError("recast-stops: no stop signal among the skims (samples.stops, recast.stops.analyses)")
    for name in counts:
        write_csv(out / f"{name}_yields.csv", rc.stop_yield_rows({name: counts[name]}, cfg, grid), rc.STOP_YIELD_COLUMNS)
    lim = rc.stop_limits(cfg, counts, grid, seed=int(cfg.get("seed", 0)))
    write_csv(out / "limits.csv", lim, rc.STOP_LIMIT_COLUMNS)
    ml = rc.mass_limit_rows(lim)
    write_csv(out / "mass_limits.csv", ml, rc.MASS_LIMIT_COLUMNS)
    wp = sc.get("workspace_point")
    if wp:
        i = int(np.argmin(np.abs(np.log(grid / float(wp["ctau_cm"])))))
        write_json(out / f"{wp['model']}_workspace.json",
                   rc.pyhf_workspace(cfg, counts, wp["model"], float(wp["m_stop"]), i))
    if not args.no_plots:
        ro.mass_limit_figure(ml, out / "mass_limits", sc.get("figure_models"))
    if args.validation_dir:
        no_eff = copy.deepcopy(cfg)
        for e in no_eff["recast"]["analyses"].values():
            e["d0_efficiency"] = False
        rows = rc.validation_rows(cfg, counts, grid, rc.stop_counts(no_eff, args.skims, grid))
        note = ("Samples: Pythia 8 stop pairs (generation.stops), reweighted exactly to every c*tau (samples of one "
                "mass generated at several c*tau_0 are pooled); generated events: "
                + ", ".join(f"{n} ({m:g} GeV, c*tau_0 = {ct:g} cm): {k}" for n, m, ct, k in _sample_events(cfg, args.skims))
                + ". `ours_err` is the MC statistical error (square root of the sum of squared weights).")
        ro.write_validation(rows, cfg, args.validation_dir, "snakemake --profile workflow/profiles/default "
                            "--configfile config/recast_stop.yaml -- recast_stop (rule recast_stop: "
                            "softdisplaced recast-stops --validation-dir results/validation)", note)
    log.info("recast-stops: %d models, %d limit points in %.1f s -> %s", len(rc.stop_models(cfg)), len(lim),
             time.perf_counter() - t0, out)
    print(f"recast-stops: {len(ml)} excluded-mass rows -> {out}/mass_limits.csv")
    return 0


def _sample_events(cfg, skims) -> list[tuple]:
    """(name, m_stop, c*tau_0, generated events) of the stop samples among ``skims``."""
    from ..samples import build_samples
    from softdisplaced.processing.skim import read_events
    from softdisplaced.inference.yields import skim_key

    specs = build_samples(cfg)
    out = {}
    for sk in skims:
        name = skim_key(sk)[1]
        spec = specs.get(name)
        if spec is not None and spec.get("model") == "stop" and name not in out:
            _, attrs = read_events(sk, [])
            out[name] = (name, spec["m_stop"], spec["ctau_cm"], int(attrs["n_events_processed"]))
    return sorted(out.values(), key=lambda t: (t[1], t[2]))
