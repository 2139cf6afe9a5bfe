"""Speed of the full limit scan: luminosities x c*tau x masses, NN and cut-based, R95 + CLs.

Uses the workflow's own tables when they exist (``results/limits/signal_vs_ctau.csv`` and
``results/background/background.csv``); otherwise builds a table of the same shape from toy
mediator decays (exact reweighting of one sample per mass onto the c*tau grid) and the
published-fit background, so the benchmark runs without the rest of the DAG. Also times one
pyhf ``upper_limit`` call on a point of the scan to show what a per-point pyhf loop would cost.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..config import REPO_ROOT, load_config

NAME = "limits"


def _toy_signal(cfg, grid, masses, n_gen=50_000, seed=1):
    from softdisplaced.inference import limits as lm
    from ..samples import cross_section_fb

    rng = np.random.default_rng(seed)
    rows = []
    for m in masses:
        ct = rng.exponential(10.0, size=(n_gen, 2))                        # c*tau_0 = 1 cm
        bg = np.clip(rng.lognormal(0.0, 0.6, size=(n_gen, 2)) * (220.0 / m) ** 0.3, 0.2, 5.0)
        r = bg * ct * np.sqrt(1 - rng.uniform(-0.9, 0.9, size=(n_gen, 2)) ** 2)
        sel = np.all((r > 0.2) & (r < 1000), axis=1)
        rmin = r.min(axis=1)
        sr = np.where(rmin > 1, 3, np.where(rmin > 0.5, 2, 1))[sel]
        base = 0.05 * np.ones(sel.sum())                                   # d0/pT acceptance of soft leptons
        nn_keep = rng.uniform(size=sel.sum()) < 0.6
        sig, err, _ = cross_section_fb(cfg, m)
        for label, keep in (("cut_based", np.ones(sel.sum(), bool)), ("nn", nn_keep)):
            pe = lm.pooled_efficiency([dict(ct_mm=ct[sel][keep], base=base[keep], sr=sr[keep], n_gen=n_gen,
                                            ctau_cm=1.0)], grid)
            for j, name in enumerate(("I", "II", "III")):
                for i, c in enumerate(grid):
                    rows.append(dict(source="fast", analysis=label, m_c=float(m), dm=20.0, ctau_cm=float(c), sr=name,
                                     s_per_fb=sig * pe["eff"][j, i], s_err_per_fb=sig * pe["eff_err"][j, i],
                                     s_rel_xsec=err / sig))
    return rows


def _published_background(cfg, f_nn=0.01):
    from softdisplaced.inference import background as bg

    bcfg = dict(cfg["background"], method="published_fit")
    tf = bg.published_fit_factors(bcfg)
    rows = bg.background_table(tf, bcfg, [float(bcfg.get("reference_lumi_fb", 2.6))], (f_nn, 0.1 * f_nn), 0.9)
    for r in rows:
        k = tf.at(r["threshold"])
        r["rel_tf"] = k["kappa_emu_err"] / k["kappa_emu"] if k["kappa_emu"] > 0 and np.isfinite(k["kappa_emu_err"]) else 0.0
        r["rel_nn"] = 0.1 if r["stage"] == "post_nn" else 0.0
    return rows


def run(outdir: str | Path = "results/benchmarks", configfile: str | Path | None = None) -> dict:
    from softdisplaced.inference import limits as lm
    from softdisplaced.inference import statistics as st
    from softdisplaced.inference.reweighting import ctau_grid
    from softdisplaced.inference.yields import read_background_csv

    cfg = load_config(configfile or REPO_ROOT / "config" / "config.yaml")
    lcfg = cfg["limits"]
    lumis = [float(x) for x in lcfg.get("projection_lumis_fb", [2.6, 140, 300, 3000])]
    grid = ctau_grid(lcfg["ctau_grid_cm"])
    sig_path = REPO_ROOT / "results/limits/signal_vs_ctau.csv"
    bkg_path = REPO_ROOT / "results/background/background.csv"
    t0 = time.perf_counter()
    if sig_path.exists() and bkg_path.exists():
        with open(sig_path) as fh:
            signal = [dict(r, m_c=float(r["m_c"]), dm=float(r["dm"]), ctau_cm=float(r["ctau_cm"]),
                           s_per_fb=float(r["s_per_fb"]), s_err_per_fb=float(r["s_err_per_fb"]),
                           s_rel_xsec=float(r["s_rel_xsec"])) for r in csv.DictReader(fh)]
        background = read_background_csv(bkg_path)
        source = "results"
    else:
        masses = cfg["samples"].get("mass_scan", {}).get("masses") or [150, 200, 250, 300, 350, 400, 450, 500, 600, 700]
        signal = _toy_signal(cfg, grid, masses)
        background = _published_background(cfg)
        source = "synthetic (toy mediator decays + published-fit background)"
    t_signal = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = lm.scan(signal, background, lumis, cfg, seed=int(cfg.get("seed", 0)))
    intervals = lm.intervals_table(rows)
    t_scan = time.perf_counter() - t0
    methods = {}
    for r in rows:
        methods[r["cls_method"]] = methods.get(r["cls_method"], 0) + 1
    # one pyhf upper limit on a representative (asymptotic) point, for comparison
    cut_based = [r for r in signal if r["analysis"] == "cut_based"]
    # the grid point nearest the middle of the grid (values read back from CSV are rounded)
    ct_mid = min({r["ctau_cm"] for r in cut_based}, key=lambda c: abs(np.log(c / grid[len(grid) // 2])))
    mid = [r for r in cut_based if r["ctau_cm"] == ct_mid]
    s = [r["s_per_fb"] * 140 for r in mid[:3]]
    bkg = [r for r in background if r["stage"] == "pre_nn" and r["analysis"] == "soft_emu"]
    b = [float(r["b"]) * 140 / 2.6 for r in sorted(bkg, key=lambda r: ("I", "II", "III").index(r["sr"]))]
    t0 = time.perf_counter()
    st.mu95_pyhf(st.pyhf_spec(s, b, None, 0.06, [0.07]), None)
    t_pyhf = time.perf_counter() - t0
    result = {
        "scan_time_s": round(t_scan, 3),
        "signal_table_time_s": round(t_signal, 3),
        "n_points": len(rows),
        "n_lumis": len(lumis),
        "n_ctau": len(grid),
        "n_mass_dm_points": len({(r["m_c"], r["dm"]) for r in rows}),
        "analyses": sorted({r["analysis"] for r in rows}),
        "cls_methods": methods,
        "n_intervals": len(intervals),
        "pyhf_upper_limit_one_point_s": round(t_pyhf, 3),
        "pyhf_loop_estimate_s": round(t_pyhf * len(rows), 1),
        "input": source,
        "cpus": os.cpu_count(),
        "target_s": 60,
    }
    write_json(Path(outdir) / f"{NAME}.json", result)
    return result


if __name__ == "__main__":  # pragma: no cover
    print(run())
