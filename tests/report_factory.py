"""Small synthetic inputs for the report stage, following docs/contracts.md and the CSV/JSON
contracts of issues 5 (metrics.json) and 6 (yields, limits, transfer factors, recast).

``make_results(tmp)`` writes ``tmp/results/...`` and returns ``(settings, results_dir)``; the
numbers that tests check are module constants here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

NETWORK = "bp1_vs_hf"
LUMI = 140.0
LUMIS = [2.6, 140.0, 300.0, 3000.0]
N_EVENTS = 400
N_PROCESSED = 10_000
FEATURES = ["YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj", "Sphericity", "alphaT",
            "Spherocity"]

SETTINGS = {
    "seed": 1,
    "benchmarks": [
        {"id": 1, "m_c": 324, "dm": 20, "ctau_cm": 2, "br_ll": 0.025},
        {"id": 4, "m_c": 220, "dm": 20, "ctau_cm": 1, "br_ll": 1.0},
        {"id": 7, "m_c": 220, "dm": 40, "ctau_cm": 1, "br_ll": 1.0},
    ],
    "cross_sections": {"source": "study", "study_fixed_fb": {"220": [903.0, 54.0], "324": [127.7, 9.5]},
                       "wino_table_fb": {"200": [902.57, 53.74], "225": [579.56, 36.07], "325": [138.09, 10.18]}},
    "samples": {"signal": {"generator": "fast", "events_per_chunk": 100, "n_chunks": 1},
                "hf": {"generator": "fast", "events_per_chunk": 100, "n_chunks": 1},
                "mass_scan": {"enabled": True, "dm": 20, "ctau_cm": 1.0, "br_ll": 1.0, "masses": [220]},
                "extra_signal": [], "external": []},
    "background": {"method": "own_fit", "fit_range_gev": [20, 70], "upper_gev": 70,
                   "reference_threshold_gev": {"electron": 42, "muon": 40},
                   "published_fit": {"electron": {"a1": 13.65, "b1": -0.23, "a2": 8.62, "b2": -0.10},
                                     "muon": {"a1": 13.50, "b1": -0.22, "a2": 8.73, "b2": -0.10}},
                   "published_kappa": {"20": [39.19, 1.73, 29.08, 1.45, 1139.46, 75.97],
                                       "30": [5.94, 0.28, 4.57, 0.24, 27.12, 1.92]},
                   "published_background_2p6fb": {"42,40": [3.2, 0.5, 0.019], "20,20": [4123, 644, 25]},
                   "reference_lumi_fb": 2.6, "nn_network": NETWORK},
    "limits": {"yield_lumis_fb": [LUMI], "projection_lumis_fb": LUMIS, "benchmark_point": {"m_c": 220, "dm": 20}},
    "nn": {"cut": 0.9, "networks": {"study_ntuples": {"input": "study_ntuples"},
                                    NETWORK: {"input": "skims", "analysis": "soft_emu_loose"}}},
    "report": {},
}

# yields.csv at 140 fb^-1, analysis soft_emu, source fast: (benchmark, sr) -> (pre, pre_err, post, post_err)
YIELDS = {
    ("1", "I"): (12.345, 0.512, 10.1, 0.45), ("1", "II"): (8.0, 0.4, 6.5, 0.3), ("1", "III"): (30.2, 1.1, 25.0, 1.0),
    ("4", "I"): (100.0, 3.0, 80.0, 2.5), ("4", "II"): (90.0, 2.9, 70.0, 2.4), ("4", "III"): (400.0, 6.0, 330.0, 5.0),
    ("7", "I"): (50.0, 2.0, 40.0, 1.8), ("7", "II"): (45.0, 1.9, 35.0, 1.6), ("7", "III"): (210.0, 4.0, 170.0, 3.5),
    ("hf", "I"): (222000.0, 15000.0, 2220.0, 300.0), ("hf", "II"): (34700.0, 2300.0, 347.0, 47.0),
    ("hf", "III"): (1340.0, 90.0, 13.4, 1.8),
}
TRANSFER = [  # threshold, ke, dke, km, dkm, kemu, dkemu
    (20.0, 41.5, 2.1, 30.2, 1.6, 1253.3, 90.4),
    (30.0, 6.1, 0.3, 4.7, 0.25, 28.67, 2.1),
    (42.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0),
]


def _write_skim(path: Path, rng, n: int, sample: str, signal: bool, attrs: dict, spectra: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        ev = f.create_group("events")
        for feat in FEATURES:
            ev[feat] = rng.gamma(2.0, 2.0 if signal else 1.0, n)
        ev["dRLL"][...] = rng.uniform(0.4, 5.0, n)
        for lep in ("e", "mu"):
            ev[f"pt_{lep}"] = 20 + rng.exponential(15 if signal else 8, n)
            ev[f"eta_{lep}"] = rng.uniform(-2.4, 2.4, n)
            ev[f"phi_{lep}"] = rng.uniform(-np.pi, np.pi, n)
            ev[f"d0_{lep}"] = rng.exponential(5.0 if signal else 0.1, n) * rng.choice([-1, 1], n)
        ev["sr"] = rng.choice(np.array([0, 1, 2, 3], dtype=np.int8), n)
        ev["weight_d0eff"] = rng.uniform(0.2, 0.9, n)
        ev["weight_gen"] = np.ones(n)
        ev["event_number"] = np.arange(n, dtype=np.int64)
        ev["chunk"] = np.zeros(n, dtype=np.int32)
        if spectra:
            sp = f.create_group("spectra")
            for lep, (a1, b1, a2, b2) in (("electron", (13.65, -0.23, 8.62, -0.10)), ("muon", (13.5, -0.22, 8.73, -0.10))):
                m = 3000
                slope = rng.random(m) < 0.7
                pt = 10 + np.where(slope, rng.exponential(1 / 0.23, m), rng.exponential(1 / 0.10, m))
                sp[f"{lep}_pt"] = pt
                sp[f"{lep}_weight"] = np.ones(m)
        f.attrs.update({"n_events_processed": N_PROCESSED, "sum_gen_weights": float(N_PROCESSED), "sample": sample,
                        "layout_version": 1, **attrs})


def _write_scores(path: Path, rng, n: int, signal: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["score"] = (rng.beta(5, 1.5, n) if signal else rng.beta(1.5, 5, n)).astype(np.float32)
        f.attrs["network"] = NETWORK


def make_results(tmp: Path, settings: dict | None = None) -> tuple[dict, Path]:
    settings = copy.deepcopy(settings or SETTINGS)
    res = Path(tmp) / "results"
    rng = np.random.default_rng(7)
    xs = {1: 127.7, 4: 903.0, 7: 903.0}
    br = {1: 0.025, 4: 1.0, 7: 1.0}
    for ana in ("soft_emu_loose", "soft_emu"):
        for bm in (1, 4, 7):
            attrs = {"cross_section_fb": xs[bm], "br_ll": br[bm], "analysis": ana}
            _write_skim(res / "skims" / ana / f"bp{bm}.h5", rng, N_EVENTS, f"bp{bm}", True, attrs)
            _write_scores(res / "nn" / NETWORK / "scores" / ana / f"bp{bm}.h5", rng, N_EVENTS, True)
        _write_skim(res / "skims" / ana / "hf.h5", rng, N_EVENTS, "hf", False, {"analysis": ana},
                    spectra=(ana == "soft_emu_loose"))
        _write_scores(res / "nn" / NETWORK / "scores" / ana / "hf.h5", rng, N_EVENTS, False)

    nn = res / "nn" / NETWORK
    (nn / "metrics.json").write_text(json.dumps({
        "auc": {"1": 0.93, "4": 0.91, "7": 0.95}, "hf_eff_at_cut": 0.01, "hf_eff_at_cut_err": 0.002,
        "sig_eff_at_cut": {"1": 0.8, "4": 0.78, "7": 0.82}, "cut": 0.9, "n_train": 1000, "n_test": 250,
        "input": "skims"}))
    thr = np.linspace(0, 1, 21)
    roc = [{"benchmark": b, "threshold": t, "bkg_eff": (1 - t) ** 3, "sig_eff": 1 - t ** 3} for b in (1, 4, 7) for t in thr]
    pd.DataFrame(roc).to_csv(nn / "roc.csv", index=False)

    bkg = res / "background"
    bkg.mkdir(parents=True)
    pd.DataFrame([dict(threshold=t, kappa_e=a, kappa_e_err=b, kappa_mu=c, kappa_mu_err=d, kappa_emu=e,
                       kappa_emu_err=f, method="own_fit") for t, a, b, c, d, e, f in TRANSFER]).to_csv(
        bkg / "transfer_factors.csv", index=False)
    rows = []
    for t, *_, kemu, dkemu in TRANSFER:
        for lumi in (2.6, LUMI):
            for sr, n in zip(("I", "II", "III"), (3.0, 0.5, 0.019)):
                b = kemu * n * lumi / 2.6
                rows.append(dict(threshold=t, analysis="soft_emu" if t == 20 else "", stage="pre_nn", lumi_fb=lumi,
                                 sr=sr, b=b, b_err=b * dkemu / kemu if kemu else 0.0, nn_cut=None, method="own_fit"))
    pd.DataFrame(rows).to_csv(bkg / "background.csv", index=False)
    (bkg / "hf_fit.json").write_text(json.dumps({
        "electron": {"params": {"a1": 13.2, "b1": -0.22, "a2": 8.5, "b2": -0.099}, "fit_range_gev": [20, 70]},
        "muon": {"params": {"a1": 13.1, "b1": -0.21, "a2": 8.6, "b2": -0.098}, "fit_range_gev": [20, 70]}}))

    yrows = []
    for (bm, sr), (pre, pe, post, po) in YIELDS.items():
        for stage, y, e in (("pre_nn", pre, pe), ("post_nn", post, po)):
            for lumi in (2.6, LUMI):
                s = lumi / LUMI
                yrows.append(dict(source="fast", benchmark=bm, analysis="soft_emu", sr=sr, stage=stage, lumi_fb=lumi,
                                  **{"yield": y * s, "stat_err": e * s}))
                # a second source and analysis that the report must not pick up
                yrows.append(dict(source="study_ntuples", benchmark=bm, analysis="soft_emu", sr=sr, stage=stage,
                                  lumi_fb=lumi, **{"yield": -1.0, "stat_err": 0.0}))
                yrows.append(dict(source="fast", benchmark=bm, analysis="soft_emu_pt25", sr=sr, stage=stage,
                                  lumi_fb=lumi, **{"yield": -2.0, "stat_err": 0.0}))
    (res / "yields").mkdir()
    pd.DataFrame(yrows).to_csv(res / "yields" / "yields.csv", index=False)

    lim = res / "limits"
    lim.mkdir()
    ctaus = np.logspace(-2, 3, 11)
    erows = []
    for ana, gain in (("nn", 3.0), ("cut_based", 1.0)):
        for lumi in LUMIS:
            r95 = gain * lumi / 10 * np.exp(-0.5 * np.log10(ctaus / 3.0) ** 2)
            for c, r in zip(ctaus, r95):
                erows.append(dict(source="fast", analysis=ana, m_c=220, dm=20, lumi_fb=lumi, ctau_cm=c, r95=r,
                                  mu95_exp=1 / r, mu95_obs=None))
    for c in ctaus:
        erows.append(dict(source="fast", analysis="cms_8tev_emu", m_c=220, dm=20, lumi_fb=19.7, ctau_cm=c,
                          r95=0.5 * np.exp(-0.5 * np.log10(c) ** 2), mu95_exp=2.0, mu95_obs=2.5))
    pd.DataFrame(erows).to_csv(lim / "exclusion_ctau.csv", index=False)
    (lim / "excluded_intervals.json").write_text(json.dumps([
        {"source": "fast", "analysis": "nn", "m_c": 220, "dm": 20, "lumi_fb": 140, "r95": [[0.05, 150.0]],
         "cls": [[0.06, 120.0]]},
        {"source": "fast", "analysis": "cut_based", "m_c": 220, "dm": 20, "lumi_fb": 2.6, "r95": [], "cls": []}]))
    mrows = []
    for ana in ("nn", "cut_based"):
        for lumi in (140.0, 3000.0):
            for m in (150, 220, 300, 400, 500):
                ok = m < (450 if ana == "nn" else 300) * (1.5 if lumi > 1000 else 1)
                mrows.append(dict(source="fast", analysis=ana, lumi_fb=lumi, dm=20, m_c=m,
                                  ctau_lo_cm=0.1 if ok else None, ctau_hi_cm=100.0 * 300 / m if ok else None))
    pd.DataFrame(mrows).to_csv(lim / "mass_reach.csv", index=False)

    rec = res / "recast"
    rec.mkdir()
    pd.DataFrame({"sr": ["SR1", "SR2", "SR3"], "s95_obs": [14.1, 3.0, 3.0], "s95_exp": [13.0, 3.4, 3.0]}).to_csv(
        rec / "cms_8tev_emu_s95.csv", index=False)
    return settings, res


def write_benchmark_tsv(path: Path, seconds: float, rss: float = 100.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:{int(seconds):02d}\t{rss}\t200.0\t90.0\t95.0\t0.1\t0.2\t50.0\t{seconds / 2}\n")
    return path
