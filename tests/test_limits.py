"""Exclusion scans: intervals in log c*tau, luminosity scaling, the lifetime-scan and projections commands."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from skim_factory import toy_mediator_events, write_scores, write_skim

from softdisplaced import limits as lm
from softdisplaced import yields as y


def test_excluded_interval_by_interpolation_in_log_ctau():
    # R95(c*tau) = 3 exp(-(ln c*tau - ln 2)^2 / 2): R95 = 1 at ln c*tau = ln 2 +- sqrt(2 ln 3)
    grid = np.geomspace(0.01, 1000, 41)
    r95 = 3 * np.exp(-(np.log(grid) - np.log(2.0)) ** 2 / 2)
    iv = lm.excluded_intervals(grid, r95, 1.0, True)
    d = np.sqrt(2 * np.log(3))
    assert len(iv) == 1 and not iv[0]["lo_open"] and not iv[0]["hi_open"]
    assert iv[0]["lo"] == pytest.approx(2.0 * np.exp(-d), rel=0.03)
    assert iv[0]["hi"] == pytest.approx(2.0 * np.exp(d), rel=0.03)
    # linear in log c*tau: a curve linear in log c*tau gives the exact crossing
    lin = 1 + 0.5 * np.log(grid / 0.3)
    iv2 = lm.excluded_intervals(grid, lin, 1.0, True)
    assert iv2[0]["lo"] == pytest.approx(0.3, rel=1e-9) and iv2[0]["hi_open"]
    # mu95 < 1 (via log mu95 < 0); nothing excluded -> empty
    assert lm.excluded_intervals(grid, np.full(41, 0.5), 1.0, True) == []
    two = lm.excluded_intervals(grid, np.where((grid > 0.1) & (grid < 1) | (grid > 10) & (grid < 100), 2.0, 0.5))
    assert len(two) == 2


def _background_rows(f_nn=0.01):
    return [dict(threshold=20.0, analysis="soft_emu", stage=st, lumi_fb=2.6, sr=sr, b=b * f, b_err=0.1 * b * f,
                 rel_tf=0.07, rel_nn=0.1 if st == "post_nn" else 0.0, nn_cut=None, method="published_fit")
            for st, f in (("pre_nn", 1.0), ("post_nn", f_nn)) for sr, b in (("I", 4000.0), ("II", 650.0), ("III", 25.0))]


def _signal_rows():
    rows = []
    for an, f in (("nn", 0.6), ("cut_based", 1.0)):
        for ct in np.geomspace(0.01, 1000, 41):
            shape = np.exp(-(np.log(ct) - np.log(3.0)) ** 2 / 4)
            for sr, frac in (("I", 0.3), ("II", 0.3), ("III", 0.4)):
                rows.append(dict(source="fast", analysis=an, m_c=220.0, dm=20.0, ctau_cm=float(ct), sr=sr,
                                 s_per_fb=5.0 * f * frac * shape, s_err_per_fb=0.02 * 5.0 * f * frac * shape,
                                 s_rel_xsec=0.06))
    return rows


def test_scan_luminosity_scaling_and_projection_order(default_config):
    cfg = json.loads(json.dumps(default_config))
    rows = lm.scan(_signal_rows(), _background_rows(), [2.6, 140.0, 3000.0], cfg)
    pick = {(r["analysis"], r["lumi_fb"], round(r["ctau_cm"], 6)): r for r in rows}
    a, b = pick[("cut_based", 2.6, 1.0)], pick[("cut_based", 140.0, 1.0)]
    # S and B scale linearly with L; with N = B, Q (hence R95) is linear in L
    assert b["s_total"] / a["s_total"] == pytest.approx(140 / 2.6)
    assert b["b_total"] / a["b_total"] == pytest.approx(140 / 2.6)
    assert b["r95"] / a["r95"] == pytest.approx(140 / 2.6, rel=1e-9)
    # background dominated with mu s << b (140 -> 3000 fb^-1): mu95 ~ 1/sqrt(L) (the correlated transfer-factor
    # uncertainty is constrained by SR I); at 2.6 fb^-1 mu s is not small against b, so the gain is larger
    c = pick[("cut_based", 3000.0, 1.0)]
    assert b["mu95_exp"] / c["mu95_exp"] == pytest.approx(np.sqrt(3000 / 140), rel=0.05)
    assert a["mu95_exp"] / b["mu95_exp"] > np.sqrt(140 / 2.6)
    iv = {(e["analysis"], e["lumi_fb"]): e for e in lm.intervals_table(rows)}
    w = lambda e: (e["cls_expected"][0]["hi"] / e["cls_expected"][0]["lo"]) if e["cls_expected"] else 0.0  # noqa: E731
    assert w(iv[("nn", 3000.0)]) > w(iv[("nn", 140.0)]) > 1.0
    # the NN (background x 0.01) beats the cut-based analysis at equal luminosity
    assert pick[("nn", 140.0, 1.0)]["mu95_exp"] < pick[("cut_based", 140.0, 1.0)]["mu95_exp"]
    # small backgrounds use the toy CLs
    assert pick[("nn", 2.6, 1.0)]["cls_method"] == "toys"


def test_lifetime_scan_and_projections_commands(tmp_path, default_config):
    from softdisplaced.cli import main

    cfg = json.loads(json.dumps(default_config))
    cfg["nn"] = {"cut": 0.9}
    cfg["limits"]["ctau_grid_cm"] = {"min": 0.01, "max": 10.0, "n_points": 13}
    rng = np.random.default_rng(1)
    skims, scores = [], []
    for name, ctau in (("bp3", 0.1), ("bp4", 1.0)):
        ct, sr, n = toy_mediator_events(20000, ctau, rng, r_min_mm=0.2, r_max_mm=100, sr_edges_mm=(0.5, 1.0))
        skims.append(str(write_skim(tmp_path / f"skims/soft_emu/{name}.h5",
                                    events={"sr": sr, "mediator_ct_mm": ct},
                                    attrs={"sum_gen_weights": float(n), "n_events_processed": n, "ctau_cm": ctau})))
        scores.append(str(write_scores(tmp_path / f"nn/study/scores/soft_emu/{name}.h5", rng.uniform(0.5, 1, len(sr)))))
    sig = tmp_path / "limits/signal_vs_ctau.csv"
    assert main(["lifetime-scan", "--settings", json.dumps(cfg), "--skims", *skims, "--scores", *scores,
                 "--out", str(sig)]) == 0
    with open(sig) as fh:
        srows = list(csv.DictReader(fh))
    assert {r["analysis"] for r in srows} == {"nn", "cut_based"}
    assert len({r["ctau_cm"] for r in srows}) == 13
    # at a generated lifetime the pooled reweighting equals the plain count of that sample within errors
    bkg = tmp_path / "background.csv"
    y.write_csv(bkg, _background_rows(), list(_background_rows()[0]))
    cfg["limits"]["projection_lumis_fb"] = [2.6, 300.0]
    outdir = tmp_path / "limits"
    assert main(["projections", "--settings", json.dumps(cfg), "--signal", str(sig), "--background", str(bkg),
                 "--outdir", str(outdir)]) == 0
    with open(outdir / "exclusion_ctau.csv") as fh:
        erows = list(csv.DictReader(fh))
    assert list(erows[0])[:9] == ["source", "analysis", "m_c", "dm", "lumi_fb", "ctau_cm", "r95", "mu95_exp", "mu95_obs"]
    assert {float(r["lumi_fb"]) for r in erows} == {2.6, 300.0}
    assert all(r["mu95_obs"] == "" for r in erows)
    ivs = json.loads((outdir / "excluded_intervals.json").read_text())["intervals"]
    assert {(e["analysis"], e["lumi_fb"]) for e in ivs} == {(a, lum) for a in ("nn", "cut_based") for lum in (2.6, 300.0)}
    assert all({"r95", "cls_expected"} <= set(e) for e in ivs)
    assert (outdir / "mass_reach.csv").exists()
    assert not list(outdir.glob("*.png"))   # the figures are the report's Figs. 9-10 (one implementation)


def test_pooled_efficiency_at_generated_lifetime_equals_plain_count():
    rng = np.random.default_rng(3)
    ct, sr, n = toy_mediator_events(50000, 1.0, rng)
    pe = lm.pooled_efficiency([dict(ct_mm=ct, base=np.ones(len(sr)), sr=sr, n_gen=n, ctau_cm=1.0)], [1.0])
    assert pe["eff"][:, 0] == pytest.approx([np.sum(sr == r) / n for r in (1, 2, 3)])
    assert pe["n_eff"][:, 0] == pytest.approx([np.sum(sr == r) for r in (1, 2, 3)])


def test_mass_reach_from_intervals():
    iv = [dict(source="fast", analysis="nn", m_c=m, dm=20.0, lumi_fb=140.0,
               r95=[{"lo": 0.1, "hi": 10.0}] if m < 400 else [],
               cls_expected=[{"lo": 0.2, "hi": 5.0}] if m < 300 else []) for m in (150.0, 250.0, 350.0, 450.0)]
    reach = lm.mass_reach(iv, 20.0)
    top = {r["statistic"]: r["max_excluded_m_c"] for r in lm.max_excluded_mass(reach)}
    assert top == {"cls_expected": 250.0, "r95": 350.0}
