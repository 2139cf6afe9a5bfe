"""Commands ``background``, ``yields``, ``lifetime-scan``, ``projections``, ``recast`` (physics results).

Every input file is an explicit argument (so the Snakemake rules can declare them);
settings come from ``--settings JSON`` or ``--configfile``. Sections read:
background: background (+ nn.cut when NN inputs are given); yields: benchmarks,
cross_sections, samples, background, limits, nn; lifetime-scan: the same;
projections: background, limits (only projection_lumis_fb of the luminosities), nn;
recast: benchmarks, cross_sections, samples, limits, recast.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json, write_text
from ..cli import add_settings_args
from ..config import ConfigError, settings_from_args

log = logging.getLogger("softdisplaced.physics")

TF_COLUMNS = ("threshold", "kappa_e", "kappa_e_err", "kappa_mu", "kappa_mu_err", "kappa_emu", "kappa_emu_err", "method")
BKG_COLUMNS = ("threshold", "analysis", "stage", "lumi_fb", "sr", "b", "b_err", "rel_tf", "rel_tf_stat", "rel_spread",
               "rel_nn", "nn_cut", "method")


def register(sub):
    p = sub.add_parser("background", help="HF double-exponential fit, transfer factors, background per SR")
    add_settings_args(p)
    p.add_argument("--hf-spectra", help="HF skim with group 'spectra' (results/skims/soft_emu_loose/hf.h5); own_fit")
    p.add_argument("--hf-spectra-pythia8", help="Pythia 8 HF skim with group 'spectra' (own_fit_pythia8 in "
                   "background.kappa_spread_sources)")
    p.add_argument("--hf-skim", help="HF skim of the NN analysis (results/skims/soft_emu/hf.h5) for the NN fraction")
    p.add_argument("--hf-scores", help="NN scores of --hf-skim (results/nn/<net>/scores/soft_emu/hf.h5)")
    p.add_argument("--nn-metrics", help="results/nn/<net>/metrics.json (nn_fraction_source = metrics)")
    p.add_argument("--outdir", default="results/background")
    p.set_defaults(func=run_background)

    p = sub.add_parser("yields", help="signal and background yields per SR before/after the NN cut")
    add_settings_args(p)
    p.add_argument("--skims", nargs="*", default=[], help="signal skims results/skims/<analysis>/<sample>.h5")
    p.add_argument("--scores", nargs="*", default=[], help="NN score files .../scores/<analysis>/<sample>.h5")
    p.add_argument("--background", required=True, help="results/background/background.csv")
    p.add_argument("--study-ntuples-dir", help="the study's ntuples (adds rows with source study_ntuples)")
    p.add_argument("--study-nn-metrics", help="metrics.json of the network trained on the study's ntuples")
    p.add_argument("--out", default="results/yields/yields.csv")
    p.set_defaults(func=run_yields)

    p = sub.add_parser("lifetime-scan", help="lifetime-reweighted signal per fb^-1 on the c*tau grid")
    add_settings_args(p)
    p.add_argument("--skims", nargs="*", default=[])
    p.add_argument("--scores", nargs="*", default=[])
    p.add_argument("--study-ntuples-dir")
    p.add_argument("--study-nn-metrics")
    p.add_argument("--out", default="results/limits/signal_vs_ctau.csv")
    p.set_defaults(func=run_lifetime_scan)

    p = sub.add_parser("projections", help="R95 / CLs vs c*tau, luminosity projections, mass reach")
    add_settings_args(p)
    p.add_argument("--signal", required=True, help="results/limits/signal_vs_ctau.csv")
    p.add_argument("--background", required=True, help="results/background/background.csv")
    p.add_argument("--bound-8tev", help="results/recast/cms_8tev_emu_ctau.csv (joins exclusion_ctau.csv)")
    p.add_argument("--outdir", default="results/limits")
    p.add_argument("--table", default="exclusion_ctau.csv",
                   help="file name of the table in --outdir (the workflow: projection_ctau.csv, joined with the "
                        "recast's rows into exclusion_ctau.csv afterwards)")
    p.add_argument("--no-plots", action="store_true", help=argparse.SUPPRESS)   # figures: the report
    p.set_defaults(func=run_projections)

    p = sub.add_parser("recast", help="recasts of CMS-PAS-EXO-16-022, the 8 TeV e-mu search, CMS-EXO-18-003")
    add_settings_args(p)
    p.add_argument("--skims", nargs="*", default=[], help="signal skims of the recast analyses")
    p.add_argument("--outdir", default="results/recast")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run_recast)


# ------------------------------------------------------------------- helpers
def _nn_cut(cfg) -> float:
    try:
        return float(cfg["nn"]["cut"])
    except (KeyError, TypeError):
        raise ConfigError("settings: key 'nn.cut' (the NN working point, section nn) is required here") from None


def _write_csv(path, rows, columns):
    from softdisplaced.inference.yields import write_csv

    write_csv(path, rows, columns)


def _md(rows, columns) -> str:
    from softdisplaced.inference.yields import _fmt

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(_fmt(r.get(c))) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _read_csv(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k, v in r.items():
            if k in ("source", "analysis", "sr", "method", "samples", "cls_method", "stage"):
                continue
            try:
                r[k] = float(v) if v not in ("", None) else float("nan")
            except ValueError:
                pass
    return rows


def _grid(cfg):
    from softdisplaced.inference.reweighting import ctau_grid

    return ctau_grid(cfg.get("limits", {}).get("ctau_grid_cm", {"min": 0.01, "max": 1000.0, "n_points": 41}))


# ------------------------------------------------------------------ background
def run_background(args):
    from softdisplaced.inference import background as bg

    cfg = settings_from_args(args)
    bcfg = cfg.get("background", {})
    out = Path(args.outdir)
    tf = bg.transfer_factors(bcfg, args.hf_spectra)
    alternatives = _kappa_alternatives(bcfg, tf, args)
    spread = bg.kappa_spread(tf, list(alternatives.values()))
    tf_rows = tf.rows + [{**r, "method": label} for label, alt in alternatives.items() for r in alt.rows]
    _write_csv(out / "transfer_factors.csv", tf_rows, TF_COLUMNS)
    write_text(out / "transfer_factors.md", f"Transfer factors (method {tf.method}; beside it: "
               f"{', '.join(alternatives) or 'none'})\n\n" + _md(tf_rows, TF_COLUMNS))
    nn_frac, cut, frac_src = None, None, None
    src = bcfg.get("nn_fraction_source", "skim_scores")
    if src == "skim_scores" and args.hf_skim and args.hf_scores:
        cut = _nn_cut(cfg)
        nn_frac = bg.nn_fraction_from_scores(args.hf_skim, args.hf_scores, cut)
        frac_src = {"source": "skim_scores", "skim": args.hf_skim, "scores": args.hf_scores}
    elif src == "metrics" and args.nn_metrics:
        cut = _nn_cut(cfg)
        nn_frac = bg.nn_fraction_from_metrics(args.nn_metrics)
        frac_src = {"source": "metrics", "metrics": args.nn_metrics}
    else:
        log.warning("no NN inputs for nn_fraction_source = %s: background after the NN cut not computed", src)
    ref = float(bcfg.get("reference_lumi_fb", 2.6))
    rows = bg.background_table(tf, bcfg, [ref], nn_frac, cut, spread=spread)
    _write_csv(out / "background.csv", rows, BKG_COLUMNS)
    write_text(out / "background.md", f"Background per SR at {ref:g} fb^-1 (scale linearly with L), method {tf.method}\n\n"
               + _md(rows, BKG_COLUMNS))
    write_json(out / "nn_fraction.json", {"hf_fraction": None if nn_frac is None else nn_frac[0],
                                          "hf_fraction_err": None if nn_frac is None else nn_frac[1],
                                          "cut": cut, "input": frac_src})
    comp = bg.comparison_table(bcfg, tf)
    for alt_label, alt in alternatives.items():
        comp += [{**r, "method": alt_label} for r in bg.comparison_table(bcfg, alt)]
    refs = {k: bg.reference_provenance(v) for k, v in (bcfg.get("kappa_reference_files") or {}).items()
            if k in alternatives}
    write_json(out / "kappa_spread.json", {"method": tf.method, "alternatives": list(alternatives),
                                           "references": refs,
                                           "rel_spread_kappa_emu": {f"{k:g}": v for k, v in spread.items()},
                                           "note": "added in quadrature to rel_tf in background.csv "
                                                   "(limits.background_uncertainties.transfer_factor)"})
    ccols = [c for c in ("threshold", "method", "kappa_e", "kappa_e_pubfit", "kappa_e_pub", "kappa_mu", "kappa_mu_pubfit",
                         "kappa_mu_pub", "kappa_emu", "kappa_emu_err", "kappa_emu_pubfit", "kappa_emu_pub",
                         "kappa_emu_rel_diff", "B_I", "B_I_pub", "B_II", "B_II_pub", "B_III", "B_III_pub")]
    _write_csv(out / "comparison.csv", comp, ccols)
    write_text(out / "comparison.md", f"Own ({tf.method}) vs published transfer factors and B at 2.6 fb^-1\n\n" + _md(comp, ccols))
    # the fitted shapes: the own fit of the HF sample when there is one (also beside a published method),
    # else the study's published fit; "method" is the normalisation of the results
    own = tf if tf.method == "own_fit" else alternatives.get("own_fit")
    shapes = own if own is not None else (tf if tf.fits else bg.published_fit_factors(bcfg))
    fit_info = {"method": tf.method, "fits_method": shapes.method, "fits": shapes.fits,
                "fit_range_gev": bcfg.get("fit_range_gev", [20, 70])}
    write_json(out / "hf_fit.json", fit_info)   # drawn by the report (Fig. 4)
    k20 = [r for r in tf.rows if r["threshold"] == min(r2["threshold"] for r2 in tf.rows)][0]
    print(f"background: method {tf.method}, kappa_emu({k20['threshold']:g}) = {k20['kappa_emu']:.1f} +- "
          f"{k20['kappa_emu_err']:.1f}; wrote {out}/transfer_factors.csv, background.csv, comparison.csv, hf_fit.json")
    return 0


def _kappa_alternatives(bcfg, primary, args) -> dict:
    """The project's own transfer factors shown beside ``background.method`` (background.kappa_spread_sources):
    ``own_fit`` (the HF sample of --hf-spectra), ``own_fit_pythia8`` (--hf-spectra-pythia8, when given),
    a name of ``background.kappa_reference_files`` (a committed ``softdisplaced hf-kappa`` measurement),
    ``published_fit``, ``published_table``; the primary method itself is skipped."""
    from softdisplaced.inference import background as bg

    out = {}
    for src in bcfg.get("kappa_spread_sources", []):
        if src == primary.method:
            continue
        if src == "own_fit":
            if args.hf_spectra:
                out[src] = bg.own_fit_factors(bg.read_spectra(args.hf_spectra), bcfg)
        elif src in (bcfg.get("kappa_reference_files") or {}):
            out[src] = bg.reference_factors(bcfg["kappa_reference_files"][src], src, bcfg)
        elif src == "own_fit_pythia8":
            path = getattr(args, "hf_spectra_pythia8", None)
            if path:
                out[src] = bg.own_fit_factors(bg.read_spectra(path), bcfg)
        else:
            out[src] = bg.transfer_factors({**bcfg, "method": src})
    for src in bcfg.get("kappa_spread_sources", []):
        if src not in out and src != primary.method:
            log.warning("background.kappa_spread_sources: %s has no input (HF spectra skim); not in the spread", src)
    return out


# ---------------------------------------------------------------------- yields
def run_yields(args):
    from softdisplaced.inference import yields as y

    cfg = settings_from_args(args)
    lumis = [float(x) for x in cfg.get("limits", {}).get("yield_lumis_fb", [140])]
    cut = _nn_cut(cfg) if args.scores else None
    rows = y.fast_rows(cfg, args.skims, args.scores, lumis, cut)
    bkg = y.read_background_csv(args.background)
    method = bkg[0]["method"] if bkg else ""
    analyses = {y.skim_key(s)[0] for s in args.skims} | {"soft_emu"}
    ref = float(cfg.get("background", {}).get("reference_lumi_fb", 2.6))
    if args.study_ntuples_dir:
        rows += y.study_ntuple_rows(cfg, lumis, args.study_nn_metrics, args.study_ntuples_dir)
    # the HF background (benchmark 'hf') is common to every signal source: one copy per source
    sources = sorted({r["source"] for r in rows}) or ["fast"]
    for source in sources:
        rows += y.background_rows(bkg, analyses, lumis, ref, source=source)
    y.write_csv(args.out, rows, y.YIELD_COLUMNS)
    md = [f"Background (benchmark hf): method {method} (results/background/transfer_factors.csv)\n"]
    for lumi in lumis:
        for source in sources:
            md.append(y.markdown_table(rows, lumi, source))
    write_text(Path(args.out).with_suffix(".md"), "\n".join(md))
    print(f"yields: {len(rows)} rows -> {args.out}")
    return 0


# --------------------------------------------------------------- lifetime scan
def run_lifetime_scan(args):
    from softdisplaced.inference import limits as lm

    cfg = settings_from_args(args)
    grid = _grid(cfg)
    cut = _nn_cut(cfg) if args.scores else None
    if cfg.get("limits", {}).get("reweighting", "exact") == "exact" and args.skims:
        rows = lm.signal_vs_ctau(cfg, args.skims, args.scores, cut, grid)
    else:
        rows = []
    if args.study_ntuples_dir or cfg.get("limits", {}).get("reweighting") == "interpolation":
        if not args.study_ntuples_dir:
            raise ValueError("limits.reweighting = interpolation is implemented for the study's ntuples "
                             "(separately generated lifetimes): give --study-ntuples-dir")
        rows += lm.signal_vs_ctau_study(cfg, grid, args.study_nn_metrics, args.study_ntuples_dir)
    if not rows:
        raise ValueError("lifetime-scan: no signal (give --skims and/or --study-ntuples-dir)")
    low = sum(1 for r in rows if r["low_stat"])
    if low:
        log.warning("%d of %d (point, SR) entries have fewer than limits.min_effective_events effective events",
                    low, len(rows))
    lm_cols = lm.SIGNAL_COLUMNS
    from softdisplaced.inference.yields import write_csv

    write_csv(args.out, rows, lm_cols)
    print(f"lifetime-scan: {len(rows)} rows on {len(grid)} c*tau points -> {args.out}")
    return 0


# ----------------------------------------------------------------- projections
def run_projections(args):
    from softdisplaced.inference import limits as lm

    cfg = settings_from_args(args)
    lcfg = cfg.get("limits", {})
    lumis = [float(x) for x in lcfg.get("projection_lumis_fb", [2.6, 140, 300, 3000])]
    sig = _read_csv(args.signal)
    for r in sig:
        r["sr"] = str(r["sr"])
    from softdisplaced.inference.yields import read_background_csv

    bkg = read_background_csv(args.background)
    t0 = time.perf_counter()
    rows = lm.scan(sig, bkg, lumis, cfg, seed=int(cfg.get("seed", 0)))
    dt = time.perf_counter() - t0
    out = Path(args.outdir)
    from softdisplaced.inference.yields import write_csv

    bound_rows = _read_csv(args.bound_8tev) if args.bound_8tev else []
    write_csv(out / args.table, lm.with_recast_rows(rows, bound_rows), lm.SCAN_COLUMNS)
    iv = lm.intervals_table(rows)
    write_json(out / "excluded_intervals.json", {"intervals": iv, "lumis_fb": lumis,
                                                 "note": "c*tau in cm; r95: R95 > 1; cls_*: mu95 < 1; *_open: "
                                                         "excluded up to the edge of the grid; low_stat_ctau_cm: "
                                                         "points with too few effective signal MC events, not used "
                                                         "for the interval edges"})
    dm = float(lcfg.get("mass_reach", {}).get("dm", 20))
    masses = lcfg.get("mass_reach", {}).get("masses")
    reach_iv = iv if not masses else [e for e in iv if any(abs(e["m_c"] - float(m)) < 1e-9 for m in masses)]
    reach = lm.mass_reach(reach_iv, dm)
    write_csv(out / "mass_reach.csv", reach, ("source", "analysis", "statistic", "lumi_fb", "m_c", "dm", "excluded",
                                              "ctau_lo_cm", "ctau_hi_cm"))
    write_json(out / "mass_reach_summary.json", lm.max_excluded_mass(reach))
    # figures of these tables: the report's Fig. 9 (exclusion vs c*tau) and the (m_c, c*tau) plane
    print(f"projections: {len(rows)} points in {dt:.1f} s -> {out}/{args.table}, excluded_intervals.json, "
          "mass_reach.csv")
    return 0


# ----------------------------------------------------------------------- recast
def run_recast(args):
    from softdisplaced.inference import recast_outputs
    from softdisplaced.inference import recast as rc

    cfg = settings_from_args(args)
    rcfg = cfg.get("recast", {})
    out = Path(args.outdir)
    grid = _grid(cfg)
    from softdisplaced.inference.yields import write_csv

    summary = {}
    for name, entry in (rcfg.get("analyses") or {}).items():
        rows = rc.s95_rows(name, entry, rcfg.get("s95_method", "exact"))
        write_csv(out / f"{name}_s95.csv", rows, rc.S95_COLUMNS)
        write_text(out / f"{name}_s95.md", f"{name}: model-independent 95% CL limits on signal events per region\n\n"
                   + _md(rows, rc.S95_COLUMNS))
        summary[name] = {r["region"]: {"s95_obs": r["s95_obs"], "s95_exp": r["s95_exp"]} for r in rows}
        if args.skims:
            crow = rc.recast_ctau(cfg, name, entry, args.skims, grid, seed=int(cfg.get("seed", 0)))
            if crow:
                write_csv(out / f"{name}_ctau.csv", crow, rc.RECAST_CTAU_COLUMNS)
                if not args.no_plots:
                    recast_outputs.recast_r95(crow, out / f"{name}_r95_ctau", name, float(entry["lumi_fb"]),
                                             float(entry.get("sqrt_s_tev", 13)))
    if args.skims:                              # recast.combined: several recasts in one model
        for model, members in rc.combined_models(cfg, list(rcfg.get("analyses") or {})).items():
            crow = rc.recast_ctau_combined(cfg, model, members, args.skims, grid, seed=int(cfg.get("seed", 0)))
            if crow:
                write_csv(out / f"{model}_ctau.csv", crow, rc.RECAST_CTAU_COLUMNS)
    write_json(out / "s95_summary.json", summary)
    print(f"recast: {len(summary)} analyses -> {out}")
    return 0
