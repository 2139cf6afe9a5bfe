"""HF background: transfer factors, double-exponential fit, B per SR, the background command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import integrate

from softdisplaced.inference import background as bg

PUB = {"electron": {"a1": 13.65, "b1": -0.23, "a2": 8.62, "b2": -0.10},
       "muon": {"a1": 13.50, "b1": -0.22, "a2": 8.73, "b2": -0.10}}


def _bcfg(**kw):
    cfg = {"method": "published_fit", "fit_range_gev": [20, 70], "upper_gev": 70,
           "reference_threshold_gev": {"electron": 42, "muon": 40}, "thresholds_gev": [20, 25, 30, 35],
           "analysis_threshold_gev": {"soft_emu": 20, "soft_emu_pt42_40": 42}, "reference_lumi_fb": 2.6,
           "cms_upper_limits_2p6fb": [3.0, 0.5, 0.019], "published_fit": PUB,
           "published_kappa": {"20": [39.19, 1.73, 29.08, 1.45, 1139.46, 75.97],
                               "25": [14.55, 0.66, 11.04, 0.55, 160.65, 10.83],
                               "30": [5.94, 0.28, 4.57, 0.24, 27.12, 1.92],
                               "35": [2.67, 0.14, 2.06, 0.12, 5.51, 0.42]},
           "published_background_2p6fb": {"42,40": [3.2, 0.5, 0.019], "20,20": [4123, 644, 25]}}
    cfg.update(kw)
    return cfg


@pytest.mark.parametrize("lepton,ref", [("electron", 42.0), ("muon", 40.0)])
@pytest.mark.parametrize("threshold", [20.0, 25.0, 30.0, 35.0])
def test_transfer_factor_equals_numerical_integration(lepton, ref, threshold):
    p = PUB[lepton]
    f = lambda x: bg.double_exp(x, p)  # noqa: E731
    num = integrate.quad(f, threshold, 70)[0] / integrate.quad(f, ref, 70)[0]
    kappa, _ = bg.transfer_factor(p, threshold, ref, 70)
    assert kappa == pytest.approx(num, rel=1e-9)


def test_spec_caution_numbers_from_rounded_published_fit():
    tf = bg.published_fit_factors(_bcfg())
    r = tf.at(20)
    assert round(r["kappa_e"], 1) == 43.8
    assert round(r["kappa_mu"], 1) == 31.1
    assert round(r["kappa_emu"]) == 1363
    # and they differ from the published table by the quoted 6-20 %
    assert 0.06 < r["kappa_mu"] / 29.08 - 1 < 0.2 and 0.1 < r["kappa_emu"] / 1139.46 - 1 < 0.25
    assert tf.at(42)["kappa_emu"] == 1.0


def test_published_table_method_and_missing_threshold():
    tf = bg.published_table_factors(_bcfg())
    assert tf.at(25)["kappa_emu"] == 160.65 and tf.at(25)["kappa_emu_err"] == 10.83
    with pytest.raises(ValueError, match="no entry for threshold 22"):
        bg.published_table_factors(_bcfg(thresholds_gev=[22]))


def test_kappa_error_propagation_matches_finite_differences():
    p = np.array([13.65, -0.23, 8.62, -0.10])
    cov = np.diag([0.05, 0.002, 0.08, 0.001]) ** 2
    k, dk = bg.transfer_factor(p, 20, 42, 70, cov)
    grad = np.zeros(4)
    for i in range(4):
        h = np.zeros(4)
        h[i] = 1e-6
        grad[i] = (bg.transfer_factor(p + h, 20, 42, 70)[0] - bg.transfer_factor(p - h, 20, 42, 70)[0]) / 2e-6
    assert dk == pytest.approx(np.sqrt(grad @ cov @ grad), rel=1e-5)


def _sample_double_exp(p, n, lo, hi, rng):
    x = np.linspace(lo, hi, 20001)
    cdf = np.cumsum(bg.double_exp(x, p))
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    return np.interp(rng.uniform(size=n), cdf, x)


def test_fit_recovers_known_parameters_of_a_toy():
    rng = np.random.default_rng(7)
    true = np.array([9.0, -0.25, 5.5, -0.09])
    lo, hi = 20.0, 70.0
    n_exp = bg.integral(true, lo, hi)[0]
    pt = _sample_double_exp(true, rng.poisson(n_exp), lo, hi, rng)
    fit = bg.fit_double_exponential(pt, None, (lo, hi))
    err = np.sqrt(np.diag(fit.cov))
    pulls = (fit.params - true) / err
    assert fit.valid
    assert np.all(np.abs(pulls) < 4), pulls
    # the fitted kappa agrees with the true one within its propagated error (x4)
    k_true = bg.transfer_factor(true, 20, 42, 70)[0]
    k_fit, dk = bg.transfer_factor(fit.params, 20, 42, 70, fit.cov)
    assert abs(k_fit - k_true) < 4 * dk
    # the extended likelihood reproduces the number of events
    assert bg.integral(fit.params, lo, hi)[0] == pytest.approx(len(pt), rel=1e-3)


def test_background_per_sr_scales_with_luminosity_and_nn_fraction():
    b26 = bg.background_per_sr(1000.0, 50.0, _bcfg(), 2.6)
    b140 = bg.background_per_sr(1000.0, 50.0, _bcfg(), 140.0, (0.01, 0.002))
    assert [r["b"] for r in b26] == pytest.approx([3000.0, 500.0, 19.0])
    assert [r["b"] for r in b140] == pytest.approx([x * 140 / 2.6 * 0.01 for x in (3000.0, 500.0, 19.0)])
    assert b140[0]["b_err"] / b140[0]["b"] == pytest.approx(np.hypot(0.05, 0.2))


def test_weighted_nn_fraction():
    passed = np.array([True, False, True, False])
    w = np.array([1.0, 1.0, 3.0, 1.0])
    f, df = bg.weighted_fraction(passed, w)
    assert f == pytest.approx(4 / 6)
    assert 0 < df < 0.5


def _toy_spectra_skim(tmp_path, seed):
    """HF skim whose spectra follow known double exponentials (e: [9.0, -0.25, 5.5, -0.09], mu: [8.8, ...])."""
    from skim_factory import write_skim

    rng = np.random.default_rng(seed)
    pe = _sample_double_exp([9.0, -0.25, 5.5, -0.09], 4000, 15, 70, rng)
    pm = _sample_double_exp([8.8, -0.22, 5.6, -0.10], 4000, 15, 70, rng)
    return write_skim(tmp_path / "skims/soft_emu_loose/hf.h5", n=50,
                      spectra={"electron_pt": pe, "muon_pt": pm}, attrs={"sample": "hf"})


def test_background_command_own_fit(tmp_path):
    from skim_factory import write_scores, write_skim

    from softdisplaced.cli import main

    spectra = _toy_spectra_skim(tmp_path, 3)
    skim = write_skim(tmp_path / "skims/soft_emu/hf.h5", n=200, attrs={"sample": "hf"})
    scores = write_scores(tmp_path / "nn/study/scores/soft_emu/hf.h5", np.r_[np.full(20, 0.95), np.full(180, 0.1)])
    settings = {"background": _bcfg(method="own_fit", nn_fraction_source="skim_scores"), "nn": {"cut": 0.9}}
    out = tmp_path / "background"
    rc = main(["background", "--settings", json.dumps(settings), "--hf-spectra", str(spectra), "--hf-skim", str(skim),
               "--hf-scores", str(scores), "--outdir", str(out)])
    assert rc == 0
    with open(out / "transfer_factors.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["threshold", "kappa_e", "kappa_e_err", "kappa_mu", "kappa_mu_err", "kappa_emu",
                             "kappa_emu_err", "method"]
    r20 = [r for r in rows if float(r["threshold"]) == 20][0]
    assert r20["method"] == "own_fit" and float(r20["kappa_emu_err"]) > 0
    true = bg.transfer_factor([9.0, -0.25, 5.5, -0.09], 20, 42)[0] * bg.transfer_factor([8.8, -0.22, 5.6, -0.10], 20, 40)[0]
    assert abs(float(r20["kappa_emu"]) - true) < 4 * float(r20["kappa_emu_err"])
    with open(out / "background.csv") as fh:
        brows = [r for r in csv.DictReader(fh) if r["analysis"] == "soft_emu"]
    pre = {r["sr"]: float(r["b"]) for r in brows if r["stage"] == "pre_nn"}
    post = {r["sr"]: float(r["b"]) for r in brows if r["stage"] == "post_nn"}
    assert post["III"] / pre["III"] == pytest.approx(0.1, rel=1e-6)
    assert pre["I"] == pytest.approx(float(r20["kappa_emu"]) * 3.0, rel=1e-5)
    assert json.loads((out / "hf_fit.json").read_text())["fits"]["electron"]["valid"]
    assert not list(out.glob("*.png"))   # the figure of the fit is the report's Fig. 4 (one implementation)


def test_own_fit_without_spectra_is_an_error():
    with pytest.raises(ValueError, match="own_fit needs the HF skim"):
        bg.transfer_factors(_bcfg(method="own_fit"), None)


def test_kappa_spread_enters_the_transfer_factor_uncertainty():
    """published_table for the results, published_fit beside it: the relative difference of
    kappa_emu (1363/1139 - 1 at 20 GeV, spec section 5) is added in quadrature to rel_tf."""
    bcfg = _bcfg(method="published_table")
    tf = bg.transfer_factors(bcfg)
    alt = bg.transfer_factors({**bcfg, "method": "published_fit"})
    spread = bg.kappa_spread(tf, [alt])
    expect = alt.at(20)["kappa_emu"] / 1139.46 - 1
    assert spread[20.0] == pytest.approx(expect) and 0.15 < expect < 0.25
    assert spread[42.0] == pytest.approx(0.0)
    rows = [r for r in bg.background_table(tf, bcfg, [2.6], None, None, spread=spread)
            if r["threshold"] == 20 and r["sr"] == "I"]
    (r,) = rows
    stat = 75.97 / 1139.46
    assert r["rel_tf_stat"] == pytest.approx(stat) and r["rel_spread"] == pytest.approx(expect)
    assert r["rel_tf"] == pytest.approx(np.hypot(stat, expect))
    assert r["b_err"] == pytest.approx(r["b"] * r["rel_tf"])
    plain = [r for r in bg.background_table(tf, bcfg, [2.6], None, None) if r["threshold"] == 20 and r["sr"] == "I"]
    assert plain[0]["rel_tf"] == pytest.approx(stat) and plain[0]["b"] == pytest.approx(r["b"])


def test_background_command_published_table_with_own_fit_beside(tmp_path):
    from softdisplaced.cli import main

    spectra = _toy_spectra_skim(tmp_path, 4)
    settings = {"background": _bcfg(method="published_table", kappa_spread_sources=["own_fit"]), "nn": {"cut": 0.9}}
    out = tmp_path / "background"
    assert main(["background", "--settings", json.dumps(settings), "--hf-spectra", str(spectra),
                 "--outdir", str(out)]) == 0
    with open(out / "transfer_factors.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"published_table", "own_fit"}
    own20 = [float(r["kappa_emu"]) for r in rows if r["method"] == "own_fit" and float(r["threshold"]) == 20][0]
    spread = json.loads((out / "kappa_spread.json").read_text())["rel_spread_kappa_emu"]["20"]
    assert spread == pytest.approx(abs(own20 / 1139.46 - 1), rel=1e-6)
    with open(out / "background.csv") as fh:
        b = [r for r in csv.DictReader(fh) if r["analysis"] == "soft_emu" and r["sr"] == "I"][0]
    assert b["method"] == "published_table"
    assert float(b["b"]) == pytest.approx(1139.46 * 3.0, rel=1e-6)
    assert float(b["rel_tf"]) == pytest.approx(np.hypot(75.97 / 1139.46, spread), rel=1e-6)
    with open(out / "comparison.csv") as fh:
        assert {r["method"] for r in csv.DictReader(fh)} == {"published_table", "own_fit"}
    fit = json.loads((out / "hf_fit.json").read_text())     # the report draws the own fit's shape
    assert fit["method"] == "published_table" and fit["fits_method"] == "own_fit"
    assert set(fit["fits"]) == {"electron", "muon"} and fit["fits"]["electron"]["valid"]


def _reference_file(path, kemu20):
    """A kappa reference file as softdisplaced hf-kappa writes it (rows at every threshold of _bcfg)."""
    rows = [dict(threshold=th, kappa_e=k ** 0.5, kappa_e_err=0.1, kappa_mu=k ** 0.5, kappa_mu_err=0.1,
                 kappa_emu=k, kappa_emu_err=0.05 * k, method="own_fit_pythia8")
            for th, k in ((20, kemu20), (25, 100.0), (30, 20.0), (35, 5.0), (42, 1.0))]
    path.write_text(json.dumps({"method": "own_fit_pythia8", "source": "pythia8", "seed": 7, "events_used": 1000,
                                "measured": {"command": "softdisplaced hf-kappa --seed 7", "date": "2026-11-28",
                                             "git_commit": "abc"}, "rows": rows, "fits": {}}))
    return path


def test_committed_pythia8_reference_enters_the_kappa_spread(tmp_path):
    """background.kappa_reference_files: the committed Pythia 8 kappa is written beside the published table and
    the fast own fit, and the largest of their relative differences is the spread in rel_tf."""
    from softdisplaced.cli import main

    spectra = _toy_spectra_skim(tmp_path, 4)
    ref = _reference_file(tmp_path / "hf_kappa_pythia8.json", 600.0)
    settings = {"background": _bcfg(method="published_table", kappa_spread_sources=["own_fit", "pythia8_reference"],
                                    kappa_reference_files={"pythia8_reference": str(ref)}), "nn": {"cut": 0.9}}
    out = tmp_path / "background"
    assert main(["background", "--settings", json.dumps(settings), "--hf-spectra", str(spectra),
                 "--outdir", str(out)]) == 0
    with open(out / "transfer_factors.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"published_table", "own_fit", "pythia8_reference"}
    k = {r["method"]: float(r["kappa_emu"]) for r in rows if float(r["threshold"]) == 20}
    assert k["pythia8_reference"] == 600.0
    spread = json.loads((out / "kappa_spread.json").read_text())["rel_spread_kappa_emu"]["20"]
    assert spread == pytest.approx(max(abs(k["own_fit"] / 1139.46 - 1), abs(600.0 / 1139.46 - 1)), rel=1e-6)
    with open(out / "comparison.csv") as fh:
        assert "pythia8_reference" in {r["method"] for r in csv.DictReader(fh)}
    refs = json.loads((out / "kappa_spread.json").read_text())["references"]
    assert refs["pythia8_reference"].startswith("measured by `softdisplaced hf-kappa --seed 7` on 2026-11-28")


def test_kappa_reference_file_problems_name_the_file(tmp_path):
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps({"rows": [{"threshold": 20, "kappa_emu": 1.0}]}))
    with pytest.raises(ValueError, match="ref.json.*rows"):
        bg.reference_factors(bad, "pythia8_reference")
    with pytest.raises(ValueError, match="missing.json"):
        bg.reference_factors(tmp_path / "missing.json", "pythia8_reference")
    partial = _reference_file(tmp_path / "partial.json", 500.0)
    rec = json.loads(partial.read_text())
    rec["rows"] = rec["rows"][1:]                                # no 20 GeV row and no fits: the rows as they stand
    partial.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="threshold 20"):
        bg.reference_factors(partial, "pythia8_reference", _bcfg()).at(20)


def test_kappa_reference_with_fits_gives_any_threshold(tmp_path):
    """A reference file with its fits (as hf-kappa writes it) yields kappa at a threshold it was not measured at
    (a threshold scan's 27 GeV), equal to integrating its fit, and its own rows back at the measured ones."""
    rec = {"rows": [], "fits": {}}
    params = {"electron": [9.0, -0.25, 5.5, -0.09], "muon": [8.8, -0.22, 5.6, -0.10]}
    cov = (np.eye(4) * 1e-4).tolist()
    for lep, p in params.items():
        rec["fits"][lep] = {"params": dict(zip(bg.PARAMS, p)), "covariance": cov}
    rec["rows"] = bg.transfer_factors_from_params(params, _bcfg(), "own_fit_pythia8", {k: np.asarray(cov) for k in params}).rows
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(rec))
    bcfg = _bcfg(thresholds_gev=[20, 25, 27, 30, 35])
    tf = bg.reference_factors(path, "pythia8_reference", bcfg)
    k27 = tf.at(27)["kappa_emu"]
    ke, _ = bg.transfer_factor(params["electron"], 27, 42, 70)
    km, _ = bg.transfer_factor(params["muon"], 27, 40, 70)
    assert k27 == pytest.approx(ke * km, rel=1e-12)
    assert tf.at(20)["kappa_emu"] == pytest.approx(rec["rows"][0]["kappa_emu"], rel=1e-12)
    assert tf.at(27)["method"] == "pythia8_reference" and tf.at(27)["kappa_emu_err"] > 0


def test_hf_kappa_command_measures_a_generator_and_records_provenance(tmp_path, repo_root):
    """softdisplaced hf-kappa on a small fast-generator sample: the JSON holds the own-fit rows (kappa = 1 at the
    CMS thresholds, falling with the threshold), the statistics and the provenance, and reads back as a reference."""
    from softdisplaced.cli import main

    out = tmp_path / "hf_kappa_fast.json"
    assert main(["hf-kappa", "--configfile", str(repo_root / "config" / "config.yaml"), "--source", "fast",
                 "--events", "150000", "--batch", "150000", "--seed", "5", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["source"] == "fast" and rec["seed"] == 5 and rec["events_used"] == 150000
    assert {"command", "date", "git_commit"} <= set(rec["measured"])
    assert rec["spectra"]["electron"]["effective_entries"] > 50
    tf = bg.reference_factors(out, "fast_reference")
    k = [tf.at(th)["kappa_emu"] for th in (20, 25, 30, 35, 42)]
    assert k[-1] == 1.0 and all(a > b for a, b in zip(k, k[1:]))
    assert all(np.isfinite(tf.at(th)["kappa_emu_err"]) and tf.at(th)["kappa_emu_err"] > 0 for th in (20, 25, 30, 35))
