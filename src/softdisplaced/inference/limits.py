"""Exclusion versus c*tau, luminosity projections and the mediator-mass reach.

* :func:`signal_vs_ctau` -- luminosity-independent signal expectation per fb^-1 on the
  c*tau grid for every (m_c, dm): all samples generated at that (m_c, dm) are pooled
  and reweighted exactly (multiple-importance-sampling weights, see docs/statistics.md);
  ``study_ntuples`` rows use the study's interpolation between generated lifetimes.
* :func:`scan` -- R95 and CLs mu95 (expected band, observed where configured) for every
  (source, analysis, m_c, dm, lumi, c*tau), S and B scaled linearly with luminosity.
* :func:`excluded_intervals` -- excluded c*tau ranges by linear interpolation in log c*tau.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from softdisplaced.inference import statistics as st
from softdisplaced.processing.analyses import SR_LABELS
from softdisplaced.inference.reweighting import effective_sample_size, interpolate_in_ctau
from softdisplaced.samples import build_samples, cross_section_fb

log = logging.getLogger(__name__)

SIGNAL_COLUMNS = ("source", "analysis", "m_c", "dm", "ctau_cm", "sr", "s_per_fb", "s_err_per_fb", "s_rel_xsec",
                  "n_eff", "n_raw", "low_stat", "method", "samples")
EXCLUSION_COLUMNS = ("source", "analysis", "m_c", "dm", "lumi_fb", "ctau_cm", "r95", "mu95_exp", "mu95_obs",
                     "mu95_exp_m2", "mu95_exp_m1", "mu95_exp_p1", "mu95_exp_p2", "cls_method", "s_total", "b_total")
# the projections' table adds the signal's effective MC event count (over all SRs) and its low-statistics flag
SCAN_COLUMNS = EXCLUSION_COLUMNS + ("signal_n_eff", "low_stat")
SRS = (1, 2, 3)


# --------------------------------------------------------------- signal vs c*tau
def _log_p(ct_sum_mm, tau_mm, n_med=2):
    """log of the proper-time density of the mediator pair, prod_j (1/tau) exp(-t_j/tau)."""
    return -n_med * np.log(tau_mm) - ct_sum_mm / tau_mm


def pooled_efficiency(samples: Sequence[Mapping], grid_cm, srs=SRS) -> dict:
    """Selected fraction per SR on the grid from samples generated at different c*tau_0.

    Each sample k: dict(ct_mm (n, 2), base (n,), sr (n,), n_gen (sum of generator weights), ctau_cm).
    Weight of a selected event at tau_1: p_tau1(t) / sum_k n_gen_k p_tau0k(t) (exact for any pooling; for a
    single sample it is the per-event lifetime weight / n_gen).
    """
    grid_mm = np.atleast_1d(np.asarray(grid_cm, float)) * 10
    n_gen = np.array([float(s["n_gen"]) for s in samples])
    tau0 = np.array([float(s["ctau_cm"]) * 10 for s in samples])
    sumw = np.zeros((len(srs), len(grid_mm)))
    sumw2 = np.zeros_like(sumw)
    n_raw = np.zeros((len(srs), 1))
    for s in samples:
        ct = np.asarray(s["ct_mm"], float)
        if ct.ndim != 2:
            raise ValueError("mediator_ct_mm must have shape (n, n_mediators)")
        tsum = ct.sum(axis=1)
        nmed = ct.shape[1]
        log_den = np.logaddexp.reduce(np.log(n_gen)[None, :] + _log_p(tsum[:, None], tau0[None, :], nmed), axis=1)
        w = np.exp(_log_p(tsum[:, None], grid_mm[None, :], nmed) - log_den[:, None]) * np.asarray(s["base"], float)[:, None]
        sr = np.asarray(s["sr"])
        for j, r in enumerate(srs):
            m = sr == r
            sumw[j] += w[m].sum(axis=0)
            sumw2[j] += (w[m] ** 2).sum(axis=0)
            n_raw[j] += m.sum()
    return {"eff": sumw, "eff_err": np.sqrt(sumw2), "n_eff": effective_sample_size(sumw, sumw2),
            "n_raw": np.repeat(n_raw, len(grid_mm), axis=1)}


def signal_vs_ctau(cfg: Mapping, skims: Sequence, scores: Sequence, cut: float | None, grid_cm,
                   source: str = "fast") -> list[dict]:
    """Rows of SIGNAL_COLUMNS for each scan label (limits.scan_analyses) and (m_c, dm) group of skims."""
    from softdisplaced.inference.yields import lifetime_entry, match_scores, skim_key

    lcfg = cfg.get("limits", {})
    labels = lcfg.get("scan_analyses", {"nn": "soft_emu", "cut_based": "soft_emu"})
    min_eff = float(lcfg.get("min_effective_events", 20))
    samples = build_samples(cfg)
    pairs = match_scores(skims, scores)
    rows = []
    for label, analysis in labels.items():
        groups: dict = defaultdict(list)
        for sk, sc in pairs.items():
            an, name = skim_key(sk)
            if an != analysis or name not in samples or samples[name]["kind"] != "signal":
                continue
            spec = samples[name]
            if label == "nn" and sc is None:
                raise ValueError(f"{sk}: scan 'nn' needs the NN scores of this skim (--scores)")
            groups[(spec.get("source", source) or source, float(spec["m_c"]), float(spec["dm"]))].append(
                lifetime_entry(sk, spec, name, sc if label == "nn" else None, cut))
        for (src, m_c, dm), group in sorted(groups.items()):
            pe = pooled_efficiency(group, grid_cm)
            sig, err, _ = cross_section_fb(cfg, m_c)
            norm = sig * float(lcfg.get("scan_br_ll", 1.0))
            names = "+".join(g["name"] for g in group)
            for j, r in enumerate(SRS):
                for i, ct in enumerate(np.atleast_1d(grid_cm)):
                    rows.append(dict(source=src, analysis=label, m_c=m_c, dm=dm, ctau_cm=float(ct), sr=SR_LABELS[r],
                                     s_per_fb=norm * pe["eff"][j, i], s_err_per_fb=norm * pe["eff_err"][j, i],
                                     s_rel_xsec=err / sig, n_eff=float(pe["n_eff"][j, i]), n_raw=int(pe["n_raw"][j, i]),
                                     low_stat=bool(pe["n_eff"][j, i] < min_eff), method="exact_reweighting",
                                     samples=names))
    return rows


def signal_vs_ctau_study(cfg: Mapping, grid_cm, metrics_path=None, directory=None) -> list[dict]:
    """The study's events: efficiencies at the generated lifetimes, interpolated in (log c*tau, log yield)."""
    import json

    from softdisplaced.validation import study_ntuples

    lcfg = cfg.get("limits", {})
    weight = lcfg.get("study_ntuples_weight", "F")
    ngen = study_ntuples.n_generated(cfg)
    files = study_ntuples.benchmark_files(cfg, directory)
    bench = {b["id"]: b for b in cfg["benchmarks"]}
    sig_eff = {}
    if metrics_path is not None:
        with open(metrics_path) as fh:
            sig_eff = {int(k): float(v) for k, v in (json.load(fh).get("sig_eff_at_cut") or {}).items()}
    groups: dict = defaultdict(list)
    for bid, path in files.items():
        b = bench[bid]
        groups[(float(b["m_c"]), float(b["dm"]))].append((bid, b["ctau_cm"], study_ntuples.sr_sums(path, weight)))
    rows = []
    for (m_c, dm), items in sorted(groups.items()):
        ctaus = [c for _, c, _ in items]
        if len(set(ctaus)) < 2:
            continue
        sig, err, _ = cross_section_fb(cfg, m_c)
        norm = sig * float(lcfg.get("scan_br_ll", 1.0)) / ngen  # democratic events: no flavour factor
        for label in ("cut_based", "nn"):
            if label == "nn" and not all(bid in sig_eff for bid, _, _ in items):
                continue
            f = [sig_eff.get(bid, 1.0) if label == "nn" else 1.0 for bid, _, _ in items]
            for j, r in enumerate(SRS):
                vals = np.array([s[r][0] * fk for (_, _, s), fk in zip(items, f)])
                errs = np.array([math.sqrt(s[r][1]) * fk for (_, _, s), fk in zip(items, f)])
                nraw = np.array([s[r][2] for _, _, s in items], float)
                v = interpolate_in_ctau(ctaus, vals, grid_cm)
                e = interpolate_in_ctau(ctaus, errs, grid_cm)
                ne = interpolate_in_ctau(ctaus, nraw, grid_cm)
                for i, ct in enumerate(np.atleast_1d(grid_cm)):
                    if not np.isfinite(v[i]):
                        continue
                    rows.append(dict(source="study_ntuples", analysis=label, m_c=m_c, dm=dm, ctau_cm=float(ct),
                                     sr=SR_LABELS[r], s_per_fb=norm * v[i], s_err_per_fb=norm * e[i],
                                     s_rel_xsec=err / sig, n_eff=float(ne[i]), n_raw=int(round(ne[i])),
                                     low_stat=False, method="interpolation",
                                     samples="+".join(f"bp{bid}" for bid, _, _ in items)))
    return rows


# ------------------------------------------------------------------------ the scan
def _background_for(bkg_rows, analysis_label: str, skim_analysis: str, lumi: float, ref_lumi: float):
    stage = "post_nn" if analysis_label == "nn" else "pre_nn"
    sel = [r for r in bkg_rows if r["analysis"] == skim_analysis and r["stage"] == stage]
    if len(sel) != 3:
        raise ValueError(f"background table: need 3 SR rows for analysis {skim_analysis!r}, stage {stage}; "
                         f"found {len(sel)} (NN fraction missing?)")
    order = {"I": 0, "II": 1, "III": 2}
    sel = sorted(sel, key=lambda r: order[r["sr"]])
    f = lumi / ref_lumi
    b = np.array([float(r["b"]) * f for r in sel])
    return b, np.array([float(r["rel_tf"]) for r in sel]), np.array([float(r["rel_nn"]) for r in sel])


def signal_effective_events(s, s_err) -> np.ndarray:
    """Effective number of MC events behind a point's total signal, (sum_i s_i)^2 / sum_i err_i^2 over its
    (disjoint) SRs: the n_eff of the pooled weights. Infinite where the signal carries no MC error."""
    s, e = np.atleast_2d(np.asarray(s, float)), np.atleast_2d(np.asarray(s_err, float))
    tot, var = s.sum(axis=-1), (e ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, tot ** 2 / np.where(var > 0, var, 1.0), np.inf)


def scan(signal_rows: Sequence[Mapping], bkg_rows: Sequence[Mapping], lumis: Sequence[float], cfg: Mapping,
         seed: int = 0) -> list[dict]:
    """R95 and CLs mu95 for every (source, analysis, m_c, dm, lumi, c*tau) of the signal table."""
    lcfg = cfg.get("limits", {})
    labels = lcfg.get("scan_analyses", {"nn": "soft_emu", "cut_based": "soft_emu"})
    ref_lumi = float(cfg.get("background", {}).get("reference_lumi_fb", 2.6))
    cls_cfg = lcfg.get("cls", {})
    su = lcfg.get("signal_uncertainties", {"mc_stat": True, "cross_section": True})
    bu = lcfg.get("background_uncertainties", {"transfer_factor": True, "nn_fraction": True})
    observed = lcfg.get("observed_counts", {}) or {}
    min_eff = float(lcfg.get("min_effective_events", 20))
    # points: (source, label, m_c, dm, ctau) -> per-SR arrays
    pts: dict = {}
    for r in signal_rows:
        key = (r["source"], r["analysis"], float(r["m_c"]), float(r["dm"]), float(r["ctau_cm"]))
        d = pts.setdefault(key, {"s": np.zeros(3), "e": np.zeros(3), "xs": float(r["s_rel_xsec"])})
        j = {"I": 0, "II": 1, "III": 2}[r["sr"]]
        d["s"][j], d["e"][j] = float(r["s_per_fb"]), float(r["s_err_per_fb"])
    by_label: dict = defaultdict(list)
    for key in pts:
        by_label[key[1]].append(key)
    groups = []
    for label, keys in by_label.items():
        if label not in labels:
            raise ValueError(f"signal table: analysis label {label!r} not in limits.scan_analyses")
        for lumi in lumis:
            b, rel_tf, rel_nn = _background_for(bkg_rows, label, labels[label], float(lumi), ref_lumi)
            S = np.array([pts[k]["s"] for k in keys]) * lumi
            E = np.array([pts[k]["e"] for k in keys]) * lumi
            XS = np.array([pts[k]["xs"] for k in keys])
            n_obs = observed.get(label)
            inp = st.LimitInputs.build(
                S, np.broadcast_to(b, S.shape), E if su.get("mc_stat", True) else None,
                XS if su.get("cross_section", True) else 0.0,
                [rel_tf if bu.get("transfer_factor", True) else 0.0,
                 rel_nn if bu.get("nn_fraction", True) else 0.0],
                n_obs=None if n_obs is None else np.broadcast_to(np.asarray(n_obs, float), S.shape))
            groups.append((label, keys, float(lumi), b, S, E, n_obs, inp))
    mu95_kw = dict(method=cls_cfg.get("method", "auto"), asymptotic_min_b=float(cls_cfg.get("asymptotic_min_b", 1.0)),
                   cl=float(cls_cfg.get("cl", 0.95)), n_toys=int(cls_cfg.get("n_toys", 5000)), seed=seed)
    # the (analysis, luminosity) groups are independent and seeded by their background alone: the same limits in
    # any process (limits.scan_workers)
    workers = min(int(lcfg.get("scan_workers", 1)), len(groups))
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        # the groups with toys first (one costs several asymptotic ones), so that the workers finish together
        order = sorted(range(len(groups)), key=lambda i: not st.uses_toys(groups[i][-1].b, mu95_kw["method"],
                                                                       mu95_kw["asymptotic_min_b"]))
        with ProcessPoolExecutor(workers) as pool:
            done = dict(zip(order, pool.map(_group_mu95, [groups[i][-1] for i in order], [mu95_kw] * len(order))))
        lims = [done[i] for i in range(len(groups))]
    else:
        lims = [_group_mu95(g[-1], mu95_kw) for g in groups]
    out = []
    for (label, keys, lumi, b, S, E, n_obs, _), lim in zip(groups, lims):
        r95 = st.r95(S, np.broadcast_to(b, S.shape), None if n_obs is None else np.broadcast_to(n_obs, S.shape))
        n_eff = signal_effective_events(S, E)
        for i, k in enumerate(keys):
            ex = lim["exp"][i]
            out.append(dict(source=k[0], analysis=label, m_c=k[2], dm=k[3], lumi_fb=lumi, ctau_cm=k[4],
                            r95=float(r95[i]), mu95_exp=float(ex[2]), mu95_obs=float(lim["obs"][i]),
                            mu95_exp_m2=float(ex[0]), mu95_exp_m1=float(ex[1]), mu95_exp_p1=float(ex[3]),
                            mu95_exp_p2=float(ex[4]), cls_method=str(lim["method"][i]),
                            s_total=float(S[i].sum()), b_total=float(b.sum()),
                            signal_n_eff=float(n_eff[i]), low_stat=bool(n_eff[i] < min_eff)))
    out.sort(key=lambda r: (r["source"], r["analysis"], r["m_c"], r["dm"], r["lumi_fb"], r["ctau_cm"]))
    return out


def with_recast_rows(scan_rows: Sequence[Mapping], recast_rows: Sequence[Mapping] = ()) -> list[dict]:
    """The exclusion table: the rows of :func:`scan`, then a recast's R95 / CLs versus c*tau (e.g. the 8 TeV search,
    ``results/recast/cms_8tev_emu_ctau.csv``) as its own analysis (contract: analysis = nn | cut_based | <recast
    name>). The recast rows do not enter the intervals of the projections."""
    return [dict(r) for r in scan_rows] + [{c: r.get(c) for c in EXCLUSION_COLUMNS} for r in recast_rows]


def join_exclusion_table(scan_csv, recast_csvs: Sequence, out) -> None:
    """``exclusion_ctau.csv`` from the scan table of ``projections --table`` and recasts' c*tau tables (the workflow
    joins them after both jobs, so that the scan need not wait for the recast). Values are copied as written."""
    import csv
    from pathlib import Path

    from softdisplaced.inference.yields import write_csv

    def read(path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found")
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
        missing = [c for c in EXCLUSION_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: not an exclusion table (columns {', '.join(missing)} missing)")
        return rows

    write_csv(out, with_recast_rows(read(scan_csv), [r for p in recast_csvs for r in read(p)]), SCAN_COLUMNS)


def _group_mu95(inp, kw):
    """CLs limits of one (analysis, luminosity) group of :func:`scan` (module level: runs in a worker process)."""
    return st.mu95(inp, **kw)


# ------------------------------------------------------------ excluded intervals
def excluded_intervals(ctau, value, threshold: float = 1.0, excluded_above: bool = True) -> list[dict]:
    """Ranges of c*tau where ``value`` is beyond ``threshold`` (above when excluded_above), end points found
    by linear interpolation of the value in log c*tau (log of the value for mu95).

    Each interval: {'lo', 'hi', 'lo_open', 'hi_open'} (open = excluded up to the grid edge).
    """
    x = np.log(np.asarray(ctau, float))
    v = np.asarray(value, float)
    order = np.argsort(x)
    x, v = x[order], v[order]
    ok = np.isfinite(v) | np.isinf(v)
    x, v = x[ok], v[ok]
    if len(x) == 0:
        return []
    d = (v - threshold) if excluded_above else (threshold - v)
    excl = d > 0
    out = []
    i = 0
    n = len(x)
    while i < n:
        if not excl[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and excl[j + 1]:
            j += 1
        lo = _cross(x[i - 1], x[i], d[i - 1], d[i]) if i > 0 else x[0]
        hi = _cross(x[j], x[j + 1], d[j], d[j + 1]) if j < n - 1 else x[-1]
        out.append(dict(lo=float(np.exp(lo)), hi=float(np.exp(hi)), lo_open=i == 0, hi_open=j == n - 1))
        i = j + 1
    return out


def _cross(x0, x1, d0, d1):
    if not (np.isfinite(d0) and np.isfinite(d1)):
        return x1 if np.isfinite(d1) else x0
    return x0 + (x1 - x0) * d0 / (d0 - d1)


def intervals_table(exclusion_rows: Sequence[Mapping]) -> list[dict]:
    """Excluded c*tau intervals per (source, analysis, m_c, dm, lumi).

    Grid points flagged ``low_stat`` (reweighted signal with fewer than ``limits.min_effective_events``
    effective MC events) do not define interval edges: their limits are dominated by MC noise and
    create spurious gaps (e.g. a [0.039, 0.045] + [0.060, 233] cm split of one excluded range). Edges are
    interpolated between the adequately populated neighbours; the skipped points are listed in
    ``low_stat_ctau_cm`` and an edge next to them is never reported as open (excluded to the grid edge).
    """
    groups: dict = defaultdict(list)
    for r in exclusion_rows:
        groups[(r["source"], r["analysis"], r["m_c"], r["dm"], r["lumi_fb"])].append(r)
    out = []
    for (src, an, m_c, dm, lumi), all_rows in sorted(groups.items()):
        all_ct = [float(r["ctau_cm"]) for r in all_rows]
        rows = [r for r in all_rows if not _truthy(r.get("low_stat", False))]
        low = sorted(float(r["ctau_cm"]) for r in all_rows if _truthy(r.get("low_stat", False)))
        entry = dict(source=src, analysis=an, m_c=m_c, dm=dm, lumi_fb=lumi, ctau_grid_cm=[min(all_ct), max(all_ct)],
                     low_stat_ctau_cm=low)
        ct = [float(r["ctau_cm"]) for r in rows]
        edges = (min(ct), max(ct)) if ct else (None, None)

        def iv(values, threshold, above):
            found = excluded_intervals(ct, values, threshold, above) if ct else []
            for i in found:  # open only where the adequately populated grid reaches the grid edge
                i["lo_open"] = i["lo_open"] and edges[0] == entry["ctau_grid_cm"][0]
                i["hi_open"] = i["hi_open"] and edges[1] == entry["ctau_grid_cm"][1]
            return found

        def log_col(col):
            with np.errstate(divide="ignore"):
                return np.log(np.array([float(r[col]) for r in rows], float))

        entry["r95"] = iv([float(r["r95"]) for r in rows], 1.0, True)
        entry["cls_expected"] = iv(log_col("mu95_exp"), 0.0, False)
        mu_obs = log_col("mu95_obs")
        if np.any(np.isfinite(mu_obs)):
            entry["cls_observed"] = iv(mu_obs, 0.0, False)
        for band, col in (("cls_expected_m1", "mu95_exp_m1"), ("cls_expected_p1", "mu95_exp_p1")):
            entry[band] = iv(log_col(col), 0.0, False)
        out.append(entry)
    return out


def _truthy(v) -> bool:
    """A flag from a row (bool, or its CSV text)."""
    return v is True or str(v).strip().lower() in ("true", "1")


def mass_reach(intervals: Sequence[Mapping], dm: float) -> list[dict]:
    """Per (source, analysis, lumi): the excluded c*tau range at every mass of the dm slice and the largest
    excluded mass (CLs expected and R95)."""
    rows = []
    for e in intervals:
        if abs(e["dm"] - dm) > 1e-9:
            continue
        for stat in ("cls_expected", "r95"):
            iv = e[stat]
            rows.append(dict(source=e["source"], analysis=e["analysis"], lumi_fb=e["lumi_fb"], m_c=e["m_c"], dm=e["dm"],
                             statistic=stat, excluded=bool(iv), ctau_lo_cm=min((i["lo"] for i in iv), default=None),
                             ctau_hi_cm=max((i["hi"] for i in iv), default=None)))
    rows.sort(key=lambda r: (r["source"], r["analysis"], r["statistic"], r["lumi_fb"], r["m_c"]))
    return rows


def max_excluded_mass(reach_rows: Sequence[Mapping]) -> list[dict]:
    groups: dict = defaultdict(list)
    for r in reach_rows:
        groups[(r["source"], r["analysis"], r["statistic"], r["lumi_fb"])].append(r)
    out = []
    for (src, an, stat, lumi), rows in sorted(groups.items()):
        ex = [r["m_c"] for r in rows if r["excluded"]]
        out.append(dict(source=src, analysis=an, statistic=stat, lumi_fb=lumi,
                        max_excluded_m_c=max(ex) if ex else None, masses=[r["m_c"] for r in rows]))
    return out
