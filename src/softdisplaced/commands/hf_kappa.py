"""Command ``hf-kappa``: a generator's own HF transfer factors, written as a reference file.

The default run cannot afford a Pythia 8 HF sample large enough for a precise own fit, so the
Pythia 8 kappa is measured once with this command and committed (``config/reference/``); the
``background`` command reads it (``background.kappa_references``) and puts it beside the
published table and the fast generator's own fit, and into the kappa spread::

    softdisplaced hf-kappa --configfile config/config.yaml --overrides config/hf_kappa_pythia8.yaml \\
        --source pythia8 --events 100000 --batch 5000 --seed 20261128 \\
        --out config/reference/hf_kappa_pythia8.json

Events: ``generate_chunk`` of the source (its ``generation`` settings, importance weights
included) -> the detector simulation -> every electron / muon in ``processing.spectra``'s
acceptance (no isolation: spec section 5, as the HF skim's group ``spectra``) -> the
double-exponential own fit (:func:`softdisplaced.inference.background.own_fit_factors`).
"""

from __future__ import annotations

import datetime
import logging
import subprocess
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..cli import add_settings_args
from ..config import REPO_ROOT, ConfigError, deep_merge, settings_from_args, validate_config

log = logging.getLogger("softdisplaced.hf_kappa")


def register(sub):
    p = sub.add_parser("hf-kappa", help="a generator's own HF transfer factors -> reference JSON")
    add_settings_args(p)
    p.add_argument("--overrides", help="YAML deep-merged onto the configuration (e.g. config/hf_kappa_pythia8.yaml)")
    p.add_argument("--source", choices=("fast", "pythia8"), default="pythia8")
    p.add_argument("--events", type=int, required=True, help="events to generate (candidates for the fast generator)")
    p.add_argument("--batch", type=int, default=5000, help="events per generate_chunk call")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop after the batch that passes this wall time (the file records the events used)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run_hf_kappa)


def lepton_spectra(reco, weight, acceptance) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{electron|muon: (pt, weight)}``: every lepton with |eta| < abs_eta_max and pT > pt_min."""
    import awkward as ak

    out = {}
    for name, coll in (("electron", "Electron"), ("muon", "Muon")):
        c = reco[coll]
        m = (abs(c.Eta) < acceptance["abs_eta_max"]) & (c.PT > acceptance["pt_min"])
        out[name] = (ak.to_numpy(ak.flatten(c.PT[m])).astype(np.float64),
                     np.repeat(np.asarray(weight, np.float64), ak.to_numpy(ak.num(c.PT[m]))))
    return out


def _git_commit() -> str:
    """HEAD of the checkout, with ``+dirty`` when tracked files differ from it ("unknown" outside git)."""
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_hf_kappa(args):
    import yaml

    from softdisplaced.generation import backend_for
    from softdisplaced.generation.detector import simulate
    from softdisplaced.inference import background as bg

    cfg = settings_from_args(args)
    overrides = None
    if args.overrides:
        try:
            with open(args.overrides) as fh:
                overrides = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--overrides {args.overrides}: cannot read it as YAML: {exc}") from exc
        if not isinstance(overrides, dict):
            raise ConfigError(f"--overrides {args.overrides}: top level must be a mapping")
        cfg = validate_config(deep_merge(cfg, overrides), source=f"{args.configfile or 'configuration'} + {args.overrides}")
    acceptance = (cfg.get("processing") or {}).get("spectra") or {"abs_eta_max": 2.4, "pt_min": 10.0}
    mod = backend_for(args.source)
    sample = {"name": "hf", "kind": "background", "source": args.source}
    rng = np.random.default_rng(args.seed)
    commit = _git_commit()   # the code that makes the measurement (read before any later change)
    parts = {"electron": [], "muon": []}
    t0, done, generated = time.perf_counter(), 0, 0
    while done < args.events:
        n = min(args.batch, args.events - done)
        ev = mod.generate_chunk(sample, cfg, rng, n)
        reco = simulate(ev, cfg.get("detector"), rng)
        for k, v in lepton_spectra(reco, np.asarray(ev.weight), acceptance).items():
            parts[k].append(v)
        done += n
        generated += len(ev)
        log.info("hf-kappa %s: %d / %d events, %.0f s", args.source, done, args.events, time.perf_counter() - t0)
        if args.max_seconds is not None and time.perf_counter() - t0 > args.max_seconds:
            break
    spectra = {k: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v])) for k, v in parts.items()}
    tf = bg.own_fit_factors(spectra, cfg["background"])
    lo, hi = map(float, cfg["background"].get("fit_range_gev", [20, 70]))
    stats = {}
    for k, (pt, w) in spectra.items():
        s = (pt >= lo) & (pt <= hi)
        stats[k] = {"entries_in_fit_range": int(s.sum()),
                    "effective_entries": float(w[s].sum() ** 2 / max((w[s] ** 2).sum(), 1e-300))}
    gen = cfg["generation"]["pythia8"] if args.source == "pythia8" else cfg["generation"]["fast"]
    record = {
        "method": f"own_fit_{args.source}",
        "source": args.source,
        "measured": {"command": "softdisplaced hf-kappa " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in (("configfile", args.configfile), ("overrides", args.overrides),
                                                      ("source", args.source), ("events", args.events),
                                                      ("batch", args.batch), ("seed", args.seed),
                                                      ("max_seconds", args.max_seconds), ("out", args.out))
            if v is not None),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "git_commit": commit, "wall_time_s": round(time.perf_counter() - t0, 1)},
        "seed": args.seed, "events_requested": args.events, "events_used": done, "events_kept": generated,
        "overrides": overrides, "generator_settings": gen, "detector": cfg.get("detector"),
        "spectra_acceptance": acceptance, "fit_range_gev": [lo, hi], "spectra": stats,
        "rows": tf.rows, "fits": tf.fits,
    }
    write_json(Path(args.out), record)
    r = tf.at(min(r["threshold"] for r in tf.rows))
    print(f"hf-kappa {args.source}: {done} events; kappa_e({r['threshold']:g}) = {r['kappa_e']:.2f} +- "
          f"{r['kappa_e_err']:.2f}, kappa_mu = {r['kappa_mu']:.2f} +- {r['kappa_mu_err']:.2f}, kappa_emu = "
          f"{r['kappa_emu']:.1f} +- {r['kappa_emu_err']:.1f}; wrote {args.out}")
    return 0
