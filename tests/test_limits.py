"""Exclusion scans: intervals in log c*tau, luminosity scaling, the lifetime-scan and projections commands."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from skim_factory import toy_mediator_events, write_scores, write_skim

from softdisplaced.inference import limits as lm
from softdisplaced.inference import yields as y


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


def test_scan_gives_the_same_limits_in_worker_processes(default_config):
    """limits.scan_workers: the (analysis, luminosity) groups computed in two worker processes (toys included)
    give exactly the limits of the single-process scan."""
    one, two = json.loads(json.dumps(default_config)), json.loads(json.dumps(default_config))
    one["limits"]["scan_workers"], two["limits"]["scan_workers"] = 1, 2
    a = lm.scan(_signal_rows(), _background_rows(), [2.6, 140.0], one, seed=3)
    b = lm.scan(_signal_rows(), _background_rows(), [2.6, 140.0], two, seed=3)
    assert len(a) == len(b) and any(r["cls_method"] == "toys" for r in a)
    assert pd.DataFrame(a).equals(pd.DataFrame(b))   # NaN == NaN here, every other value bit-identical


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

    # the workflow's two steps (projections --table projection_ctau.csv, which needs no recast, then the local rule
    # exclusion_table) give the table of one step with --bound-8tev, byte for byte: the recast's rows appended as
    # their own analysis (extra recast columns dropped), outside the intervals
    from softdisplaced.inference.recast import RECAST_CTAU_COLUMNS

    bound = tmp_path / "recast/cms_8tev_emu_ctau.csv"
    y.write_csv(bound, [dict(source="fast", analysis="cms_8tev_emu", m_c=220.0, dm=20.0, lumi_fb=19.7, ctau_cm=ct,
                             r95=1.0 / ct, mu95_exp=math.nan, mu95_obs=0.123456789 * ct, mu95_exp_m2=0.1,
                             mu95_exp_m1=0.2, mu95_exp_p1=0.3, mu95_exp_p2=0.4, cls_method="toys", s_total=3.0,
                             b_total=19.06, r95_exp=0.5) for ct in (0.01, 0.1, 1.0)], RECAST_CTAU_COLUMNS)
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["projections", "--settings", json.dumps(cfg), "--signal", str(sig), "--background", str(bkg)]
    assert main([*args, "--bound-8tev", str(bound), "--outdir", str(one)]) == 0
    assert main([*args, "--table", "projection_ctau.csv", "--outdir", str(two)]) == 0
    assert not (two / "exclusion_ctau.csv").exists()
    lm.join_exclusion_table(two / "projection_ctau.csv", [bound], two / "exclusion_ctau.csv")
    joined = (two / "exclusion_ctau.csv").read_text()
    assert joined == (one / "exclusion_ctau.csv").read_text()
    assert joined.startswith((outdir / "exclusion_ctau.csv").read_text())
    assert joined.count(",cms_8tev_emu,") == 3 and "r95_exp" not in joined
    assert (two / "excluded_intervals.json").read_text() == (outdir / "excluded_intervals.json").read_text()
    with pytest.raises(ValueError, match=r"yields\.csv: not an exclusion table \(columns .*r95"):
        y.write_csv(tmp_path / "yields.csv", [{"source": "fast", "analysis": "nn"}], ["source", "analysis"])
        lm.join_exclusion_table(two / "projection_ctau.csv", [tmp_path / "yields.csv"], tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


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


def _smooth_curve(grid, peak=30.0):
    """A smooth signal versus c*tau whose share moves from SR I (short lifetimes) to SR III (long ones)."""
    x = np.log(grid)
    tot = peak * np.exp(-(x - np.log(0.5)) ** 2 / 8)
    f3 = 1 / (1 + np.exp(-(x - np.log(0.3))))
    f1 = 0.8 * (1 - f3)
    return tot[:, None] * np.stack([f1, 1 - f1 - f3, f3], axis=1)


def test_cls_curves_one_method_per_curve_and_single_intervals(default_config):
    """A smooth signal gives one excluded c*tau interval per curve and band edge, and every curve (one analysis,
    one luminosity) is computed by one engine: the asymptotic/toys choice is made per background, never per point."""
    cfg = json.loads(json.dumps(default_config))
    grid = np.geomspace(0.01, 100, 33)
    rows = []
    for an, f in (("nn", 0.6), ("cut_based", 1.0)):
        s = _smooth_curve(grid, 2.0 * f)
        for i, ct in enumerate(grid):
            for j, sr in enumerate(("I", "II", "III")):
                rows.append(dict(source="fast", analysis=an, m_c=220.0, dm=40.0, ctau_cm=float(ct), sr=sr,
                                 s_per_fb=s[i, j], s_err_per_fb=0.05 * s[i, j], s_rel_xsec=0.06))
    out = lm.scan(rows, _background_rows(), [2.6, 140.0, 3000.0], cfg, seed=5)
    methods: dict = {}
    for r in out:
        methods.setdefault((r["analysis"], r["lumi_fb"]), set()).add(r["cls_method"])
    assert all(m == {"asymptotic"} or m <= {"toys", "toys_direct"} for m in methods.values()), methods
    assert {"toys"} <= methods[("nn", 2.6)] and methods[("cut_based", 3000.0)] == {"asymptotic"}
    for e in lm.intervals_table(out):
        for key in ("r95", "cls_expected", "cls_expected_m1", "cls_expected_p1"):
            assert len(e[key]) <= 1, (e["analysis"], e["lumi_fb"], key, e[key])
        if e["lumi_fb"] >= 140:
            assert len(e["cls_expected"]) == 1


def test_toy_cls_curve_continuous_where_the_toy_estimator_switches():
    """Along one curve 'auto' toys switch from reweighted background-only toys to s+b toys at the points where the
    weights degenerate. Both estimate the same hybrid CLs, so the step between neighbours may differ from the
    smooth (asymptotic) step by the toy error only: sigma(ln mu95) ~ sqrt((1 - p) / (p T)) / |d ln CLs / d ln mu|
    with p = CLs+b ~ 0.05 CLb and |d ln CLs / d ln mu| >= 2 near a 95 % limit (3 for a pure count)."""
    from softdisplaced.inference import statistics as st

    grid = np.geomspace(0.01, 100, 25)
    s = _smooth_curve(grid)
    b = np.array([400.0, 60.0, 0.5])
    inp = st.LimitInputs.build(s, np.broadcast_to(b, s.shape), 0.03 * s, 0.06, [0.1])
    n_toys = 2000
    toys = st.mu95(inp, n_toys=n_toys, seed=3)
    asym = st.mu95(inp, method="asymptotic")["exp"]
    switch = np.flatnonzero(toys["method"][1:] != toys["method"][:-1])
    assert len(switch) > 0 and set(toys["method"]) == {"toys", "toys_direct"}      # the test is not vacuous
    for j in (1, 2, 3):                                         # the drawn edges: -1 sigma, median, +1 sigma
        p = 0.05 * stats.norm.cdf(st.NSIGMA[j])
        sigma = math.sqrt(2 * (1 - p) / (p * n_toys)) / 2
        step = np.diff(np.log(toys["exp"][:, j])) - np.diff(np.log(asym[:, j]))
        assert np.all(np.abs(step[switch]) < 3 * sigma), (j, step[switch], sigma)
    iv = lm.excluded_intervals(grid, np.log(toys["exp"][:, 2]), 0.0, False)
    assert len(iv) == 1


def _rows(grid, mu, low=None):
    low = np.zeros(len(grid), bool) if low is None else low
    return [dict(source="fast", analysis="cut_based", m_c=220.0, dm=40.0, lumi_fb=3000.0, ctau_cm=float(c),
                 r95=1.0 / m, mu95_exp=m, mu95_obs=float("nan"), mu95_exp_m1=m, mu95_exp_p1=m, low_stat=bool(lo))
            for c, m, lo in zip(grid, mu, low)]


def test_low_statistics_points_do_not_split_an_excluded_range():
    # a smooth curve excluded on [0.03, 300] cm, with one MC-noise point (mu95 = 2.8) at short c*tau: the
    # study's spurious sub-interval pattern. Flagged low_stat, the point does not cut the range in two.
    grid = np.geomspace(0.01, 1000, 41)
    mu = np.exp(0.5 * (np.log(grid / 3.0) ** 2) / np.log(100.0) ** 2 * 2 * np.log(2.0) - np.log(2.0))
    i_noise = int(np.argmin(abs(grid - 0.05)))
    mu_noisy = mu.copy()
    mu_noisy[i_noise] = 2.8
    low = grid < 0.07
    split = lm.intervals_table(_rows(grid, mu_noisy))[0]["cls_expected"]
    assert len(split) == 2  # without the flag: the spurious gap
    entry = lm.intervals_table(_rows(grid, mu_noisy, low))[0]
    assert len(entry["cls_expected"]) == 1 and len(entry["r95"]) == 1
    assert entry["low_stat_ctau_cm"] == pytest.approx(list(grid[low]))
    # the edge next to the skipped points is not 'open' (excluded to the grid edge) although it is the first
    # adequately populated point; the upper edge is the curve's own crossing
    iv = entry["cls_expected"][0]
    assert not iv["lo_open"] and iv["hi"] == pytest.approx(300.0, rel=0.05)


def test_signal_effective_events_is_the_pooled_n_eff():
    # two SRs, each of 100 unit-weight events per 1 event of signal: n_eff = 200
    s = np.array([[1.0, 1.0]])
    err = np.array([[0.1, 0.1]])
    assert lm.signal_effective_events(s, err)[0] == pytest.approx(200.0)
    assert np.isinf(lm.signal_effective_events(s, np.zeros_like(s))[0])
