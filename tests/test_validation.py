"""Validation report: statistics on known cases, explanation logic, end to end on the study's ntuples."""

from __future__ import annotations

import json


import numpy as np
import pytest
from scipy import stats

from softdisplaced.validation import generators as V

h5py = pytest.importorskip("h5py")


def test_ks_and_wasserstein_known_cases():
    rng = np.random.default_rng(1)
    x = rng.normal(size=4000)
    assert V.weighted_ks(x, x) == 0.0
    assert V.wasserstein(x, x) == 0.0
    # unit weights: identical to scipy's two-sample statistic
    y = rng.normal(0.3, 1.2, size=3000)
    assert V.weighted_ks(x, y) == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)
    # a pure shift by delta: Wasserstein = delta exactly (same sample shifted)
    assert V.wasserstein(x, x + 0.5) == pytest.approx(0.5, abs=1e-12)
    # shifted normals: KS -> 2 Phi(delta / 2) - 1
    a, b = rng.normal(size=200000), rng.normal(0.5, 1, size=200000)
    assert V.weighted_ks(a, b) == pytest.approx(2 * stats.norm.cdf(0.25) - 1, abs=0.01)
    # integer weights = replicated events
    z = rng.exponential(size=300)
    w = rng.integers(1, 4, size=300)
    assert V.weighted_ks(z, y, w) == pytest.approx(V.weighted_ks(np.repeat(z, w), y), abs=1e-12)
    assert V.wasserstein(z, y, w) == pytest.approx(V.wasserstein(np.repeat(z, w), y), rel=1e-9)
    r = V.compare_variable(a, b)
    assert r["wasserstein_rel"] == pytest.approx(0.5, abs=0.02)
    assert r["ks_pvalue"] < 1e-10 and r["mean_b"] - r["mean_a"] == pytest.approx(0.5, abs=0.02)


def _source(label, rng, jet_shift=0.0, n=3000):
    vals = {v: rng.normal(10, 2, n) for v in V.FEATURES}
    vals["HtJet"] = np.where(rng.random(n) < 0.5 + jet_shift, 0.0, rng.exponential(40, n))
    vals["YUserObj"] = vals["YUserObj"] + 4 * jet_shift * 2
    vals["d0_e"] = rng.exponential(5, n)
    vals["d0_mu"] = rng.exponential(5, n)
    return V.Source(label=label, values=vals, sr=rng.integers(1, 4, n), n_generated=1e5)


def test_explanations_are_data_driven():
    rng = np.random.default_rng(3)
    a, b = _source("fast", rng, jet_shift=0.3), _source("study", rng)
    rows = V.compare_sources({"fast": a, "study": b}, V.validation_settings({})["variables"], 1)
    ks = {r["variable"]: r["ks"] for r in rows}
    assert ks["HtJet"] > 0.25 and ks["YUserObj"] > 0.35 and ks["dRLL"] < 0.1
    row = next(r for r in rows if r["variable"] == "HtJet")
    text = V.explain(row, rows, V.validation_settings({}))
    za, zb = np.mean(a.values["HtJet"] == 0), np.mean(b.values["HtJet"] == 0)
    assert abs(za - 0.8) < 0.03 and abs(zb - 0.5) < 0.03
    assert f"fraction of events at exactly 0: {za:.2f} vs {zb:.2f}" in text
    assert "jets" in text and "YUserObj" in text
    # a variable whose partners all agree is reported as specific
    c = _source("pythia8", rng)
    c.values["Sphericity"] = c.values["Sphericity"] * 1.5
    rows2 = V.compare_sources({"pythia8": c, "study": b}, V.validation_settings({})["variables"], 1)
    row2 = next(r for r in rows2 if r["variable"] == "Sphericity")
    text2 = V.explain(row2, rows2, V.validation_settings({}))
    assert "width ratio pythia8/study = 1.5" in text2
    assert "specific to Sphericity" in text2


def _write_skim(path, values, sr, n_processed, weight_d0=None):
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        for k, v in values.items():
            g.create_dataset(k, data=np.asarray(v, float))
        g.create_dataset("sr", data=np.asarray(sr, np.int8))
        g.create_dataset("weight_gen", data=np.ones(len(sr)))
        g.create_dataset("weight_d0eff", data=np.ones(len(sr)) if weight_d0 is None else weight_d0)
        f.attrs["n_events_processed"] = n_processed
        f.attrs["sum_gen_weights"] = float(n_processed)


def _study_as_skim(reference_dir, stem, path):
    src = V.load_study(reference_dir / "authors_ntuples" / f"{stem}.root", V.validation_settings({}), 2e6)
    _write_skim(path, src.values, src.sr, 2_000_000, weight_d0=src.eff_weight)
    return src


def test_validation_report_on_the_study_ntuples(reference_dir, tmp_path):
    """Skims made from the study's own events: BP4 vs itself gives KS 0 and the study's efficiencies;
    BP5 (c*tau 10 cm) posing as BP4 differs in d0 (displacement) but not in the kinematic features."""
    same = _study_as_skim(reference_dir, "BP_200_20_2", tmp_path / "bp4.h5")
    _study_as_skim(reference_dir, "BP_200_20_20", tmp_path / "bp5_as_4.h5")
    # the study's SR trees agree with the d0 window applied to varTree
    assert not same.notes
    assert same.n == sum(int(np.sum(same.sr == i)) for i in (1, 2, 3)) == 3432 + 3163 + 6579
    out = tmp_path / "validation"
    summary = V.run_validation({"samples": {"study_ntuples": {"n_generated": 2000000}}}, out,
                               fast={4: tmp_path / "bp4.h5"}, pythia8={4: tmp_path / "bp5_as_4.h5"},
                               study_dir=reference_dir / "authors_ntuples", benchmarks=[4])
    rows = [r for r in summary["comparisons"]]
    fs = {r["variable"]: r for r in rows if (r["a"], r["b"]) == ("fast", "study")}
    assert set(fs) == set(V.validation_settings({})["variables"]) | {"sr"}
    assert all(r["ks"] == 0.0 and r["wasserstein"] == 0.0 for r in fs.values())
    ps = {r["variable"]: r for r in rows if (r["a"], r["b"]) == ("pythia8", "study")}
    assert ps["d0_e"]["ks"] > 0.2 and ps["d0_mu"]["ks"] > 0.2 and ps["sr"]["ks"] > 0.2
    assert ps["d0_e"]["median_a"] > 2 * ps["d0_e"]["median_b"]   # 10x longer lifetime
    assert ps["dRLL"]["ks"] < 0.05 and ps["Sphericity"]["ks"] < 0.05
    eff = {(r["benchmark"], r["source"]): r for r in summary["efficiencies"]}
    assert eff[(4, "fast")]["eff_all"] == pytest.approx(13174 / 2e6)
    assert eff[(4, "fast")]["eff_SR3"] == eff[(4, "study")]["eff_SR3"] == pytest.approx(6579 / 2e6)
    assert eff[(4, "fast")]["eff_all_d0w"] == pytest.approx(eff[(4, "study")]["eff_all_d0w"], rel=1e-9)
    assert eff[(4, "study")]["eff_all_d0w"] < eff[(4, "study")]["eff_all"]
    fr = {(r["benchmark"], r["source"]): r for r in summary["sr_fractions"]}
    assert fr[(4, "study")]["frac_SR3"] == pytest.approx(6579 / 13174)
    # explanations: only for pairs above threshold, naming displacement for d0
    text = (out / "explanations.md").read_text()
    assert "BP4 pythia8 vs study, d0_e" in text and "fast vs study" not in text
    d0_line = next(line for line in text.splitlines() if "pythia8 vs study, d0_e" in line)
    assert "displacement" in d0_line and "d0_mu" in d0_line
    for f in ("REPORT.md", "comparison.csv", "comparison.md", "sr_fractions.csv", "efficiencies.csv",
              "plots/bp4_overlays.pdf", "plots/bp4_overlays.png"):
        assert (out / f).stat().st_size > 0, f
    js = json.loads((out / "summary.json").read_text())
    assert js["benchmarks"] == [4]
    csv_rows = (out / "comparison.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(rows)


def test_validate_cli(reference_dir, tmp_path):
    from softdisplaced.cli import main

    _study_as_skim(reference_dir, "BP_324_20_DM", tmp_path / "bp1.h5")
    settings = json.dumps({"validation": {"ks_threshold": 0.1}, "samples": {"study_ntuples": {"n_generated": 2000000}}})
    rc = main(["validate", "--settings", settings, "--output-dir", str(tmp_path / "v"), "--fast",
               f"1={tmp_path / 'bp1.h5'}", "--study-dir", str(reference_dir / "authors_ntuples"),
               "--benchmarks", "1", "--no-plots"])
    assert rc == 0
    md = (tmp_path / "v" / "comparison.md").read_text()
    assert "| 1 | HtJet | fast | study |" in md
    assert main(["validate", "--output-dir", str(tmp_path / "w"), "--fast", "1:nope"]) == 1
    assert main(["validate", "--output-dir", str(tmp_path / "w"), "--fast", f"1={tmp_path / 'missing.h5'}",
                 "--benchmarks", "1"]) == 1


# ------------------------------------------------------------------ fidelity section (issue 11)
def _yield_rows():
    rows = []
    for src, scale in (("fast", 1.5), ("pythia8", 1.04)):
        for bm in ("1", "4"):
            for sr, y in (("I", 10.0), ("II", 4.0)):
                rows.append(dict(source=src, benchmark=bm, analysis="soft_emu", sr=sr, stage="pre_nn", lumi_fb="140",
                                 **{"yield": str(y * scale), "stat_err": "0.1"}))
    for bm in ("1", "4"):
        for sr, y in (("I", 10.0), ("II", 4.0)):
            rows.append(dict(source="study_ntuples", benchmark=bm, analysis="soft_emu", sr=sr, stage="pre_nn",
                             lumi_fb="140", **{"yield": str(y), "stat_err": "0.2"}))
    rows.append(dict(source="fast", benchmark="hf", analysis="soft_emu", sr="I", stage="pre_nn", lumi_fb="140",
                     **{"yield": "1e5", "stat_err": "1"}))
    return rows


def test_fidelity_yield_ratios_and_generated_sentences():
    rows = V.fidelity_yields(_yield_rows())
    assert {r["source"] for r in rows} == {"fast", "pythia8"} and all(r["benchmark"] != "hf" for r in rows)
    fast = [r for r in rows if r["source"] == "fast"]
    assert all(r["ratio"] == pytest.approx(1.5) for r in fast)
    r0 = fast[0]
    assert r0["ratio_err"] == pytest.approx(1.5 * np.hypot(0.1 / r0["project"], 0.2 / r0["study"]))
    fcfg = V.fidelity_settings({"validation": {"fidelity": {"causes": {"signal_yield": "MY CAUSE"}}}})
    sentences = V.fidelity_explanations(rows, fcfg)
    assert len(sentences) == len(fast)                    # pythia8 within 10 %: no sentence
    assert all("+50 %" in s and "MY CAUSE" in s and "fast" in s for s in sentences)
    tight = V.fidelity_settings({"validation": {"fidelity": {"threshold": 0.01}}})
    assert len(V.fidelity_explanations(rows, tight)) == len(rows)


def test_fidelity_nn_kappa_and_cutflow_rows():
    nn = V.fidelity_nn({"auc": {"1": 0.95, "2": 0.9}, "sig_eff_at_cut": {"1": 0.5}, "hf_eff_at_cut": 0.02,
                        "input": "skims", "auc_err": {"1": 0.003}, "hf_eff_at_cut_err": 0.006},
                       {"auc": {"1": 0.92, "2": 0.9}, "sig_eff_at_cut": {"1": 0.47}, "hf_eff_at_cut": 0.01,
                        "auc_err": {"1": 0.004}, "hf_eff_at_cut_err": 0.008})
    by = {(r["quantity"], r["benchmark"]): r for r in nn}
    assert by[("auc", "1")]["difference"] == pytest.approx(0.03)
    assert by[("hf_eff_at_cut", "hf")]["ratio"] == pytest.approx(2.0)
    # statistical errors of the two networks in quadrature; none recorded: NaN, not zero
    assert by[("auc", "1")]["difference_err"] == pytest.approx(0.005)
    assert by[("hf_eff_at_cut", "hf")]["difference_err"] == pytest.approx(0.01)
    assert np.isnan(by[("auc", "2")]["difference_err"])
    # the HF efficiency row names the HF sample the network was trained and measured on (hf_study: the
    # study's composition, the study-compatible network)
    nn = V.fidelity_nn({"hf_eff_at_cut": 0.01, "training_backgrounds": ["hf_study"]}, {"hf_eff_at_cut": 0.01})
    assert [(r["quantity"], r["benchmark"]) for r in nn] == [("hf_eff_at_cut", "hf_study")]
    kap = V.fidelity_kappa([{"threshold": "20", "kappa_emu": "570", "method": "own_fit"},
                            {"threshold": "42", "kappa_emu": "1", "method": "own_fit"}],
                           {"20": [39.19, 1.73, 29.08, 1.45, 1139.46, 75.97]})
    assert len(kap) == 1 and kap[0]["ratio"] == pytest.approx(570 / 1139.46)
    fcfg = V.fidelity_settings(None)
    (sentence,) = V.fidelity_explanations(kap, fcfg)
    assert "-50 %" in sentence and "published table" in sentence
    cf = {"cuts": [{"name": "all", "raw": 1000, "weighted": 1000.0}, {"name": "pt", "raw": 300, "weighted": 300.0},
                   {"name": "d0_window", "raw": 90, "weighted": 90.0}], "sum_gen_weights": 1000.0}
    rows = V.fidelity_cutflow({"1": {"fast": cf}}, {"1": {"all": 2e6, "preselection": 4e5, "d0_window": 1.5e5}},
                              fcfg["cutflow_steps"])
    by = {r["step"]: r for r in rows}
    assert by["pt"]["study"] == pytest.approx(0.2) and by["pt"]["ratio"] == pytest.approx(1.5)
    assert by["d0_window"]["ratio"] == pytest.approx(0.09 / 0.075)
    assert np.isnan(by["all"]["study"])


def test_validation_report_has_the_fidelity_section(tmp_path):
    import csv

    ypath = tmp_path / "yields.csv"
    rows = _yield_rows()
    with open(ypath, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    m1, m2 = tmp_path / "m1.json", tmp_path / "m2.json"
    m1.write_text(json.dumps({"auc": {"1": 0.99}, "sig_eff_at_cut": {"1": 0.9}, "hf_eff_at_cut": 0.05}))
    m2.write_text(json.dumps({"auc": {"1": 0.92}, "sig_eff_at_cut": {"1": 0.47}, "hf_eff_at_cut": 0.01}))
    tf = tmp_path / "tf.csv"
    tf.write_text("threshold,kappa_e,kappa_e_err,kappa_mu,kappa_mu_err,kappa_emu,kappa_emu_err,method\n"
                  "20,39.19,1.73,29.08,1.45,1139.46,75.97,published_table\n20,25,1,21,1,525,40,own_fit\n")
    settings = {"background": {"published_kappa": {"20": [39.19, 1.73, 29.08, 1.45, 1139.46, 75.97]}}}
    out = tmp_path / "val"
    summary = V.run_validation(settings, out, plots=False, fidelity_inputs={
        "yields": ypath, "nn_metrics": m1, "study_nn_metrics": m2, "transfer_factors": tf})
    report = (out / "REPORT.md").read_text()
    assert "## Fidelity" in report and "### Differences above the threshold" in report
    assert (out / "fidelity.csv").exists()
    text = " ".join(summary["fidelity_explanations"])
    assert "hf eff at cut" in text and "kappa emu (own_fit" in text and "published_table" not in text
    assert "auc (" in text        # AUC 0.99 vs 0.92: ratio 1.08 < 10 %, but the difference 0.07 > 0.03
    assert len([s for s in summary["fidelity_explanations"] if s.startswith("yield pre nn (fast")]) == 4


def test_fidelity_section_shows_both_jet_definitions(tmp_path):
    """Issue 11: the NN rows of the physical network and of its study-compatible twin (the three jet sums over
    the study's jets), each labelled by its jet definition, against the one study-ntuple network; only the
    difference above the AUC tolerance (0.998 vs 0.924) gets a sentence, the study-compatible network's (0.937)
    does not."""
    from softdisplaced.nn import FEATURES
    from softdisplaced.processing.features import study_jet_features

    paths = []
    for name, feats, auc in (("bp1_vs_hf", list(FEATURES), 0.998),
                             ("bp1_vs_hf_study_jets", study_jet_features(FEATURES), 0.937)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"network": name, "input": "skims", "features": feats, "auc": {"1": auc, "2": auc},
                                 "sig_eff_at_cut": {"1": 0.5, "2": 0.5}, "hf_eff_at_cut": 0.01}))
        paths.append(p)
    st = tmp_path / "study.json"
    st.write_text(json.dumps({"network": "study_ntuples", "input": "study_ntuples", "features": list(FEATURES),
                              "auc": {"1": 0.924, "2": 0.93}, "sig_eff_at_cut": {"1": 0.5, "2": 0.5},
                              "hf_eff_at_cut": 0.01}))
    out = tmp_path / "val"
    summary = V.run_validation({}, out, plots=False, fidelity_inputs={"nn_metrics": paths, "study_nn_metrics": st})
    md = (out / "fidelity.md").read_text()
    study_label = ("study's jets (YDelpObj_photon_veto, HtJet_photon_veto, YUserObj_photon_veto, "
                   "dPhiLepMETSelObj_photon_veto)")
    for name, label in (("bp1_vs_hf", "all jets (YDelpObj, HtJet, YUserObj, dPhiLepMETSelObj)"),
                        ("bp1_vs_hf_study_jets", study_label)):
        # AUC and signal efficiency for both benchmarks and the HF efficiency: 5 rows per network
        assert md.count(f"| {name} | {label} |") == 5
    assert f"| bp1_vs_hf_study_jets | {study_label} | auc | 1 | 0.937 | 0.924 |" in md
    auc = [s for s in summary["fidelity_explanations"] if s.startswith("auc (")]
    assert len(auc) == 2 and all("network bp1_vs_hf," in s for s in auc)
    # a network that swaps only some jet sums is named as the mixture it is
    mixed = V.jet_definition(["HtJet_photon_veto", "YUserObj", "dRLL"])
    assert mixed == "study's jets in HtJet_photon_veto; all jets in YUserObj"


def _score_file(path, scores, network, skim):
    with h5py.File(path, "w") as f:
        f.create_dataset("score", data=np.asarray(scores, np.float32))
        f.attrs["network"] = network
        f.attrs["skim"] = str(skim)
    return path


def test_post_nn_yields_of_the_study_compatible_network(tmp_path):
    """Issue 11: the study-compatible network's post-NN yields are the pre-NN yields (yields.csv) times the
    weighted fraction of each SR's events with score >= cut on the same skims, against the study's post-NN
    yields; the physical network's rows (yields.csv) stay beside them, each named by its network."""
    import csv

    w = np.array([1.0, 2.0, 1.0, 1.0, 3.0, 1.0])
    sr = np.array([1, 1, 1, 2, 2, 2])
    skim = tmp_path / "bp1.h5"
    _write_skim(skim, {}, sr, 100, weight_d0=w)
    scores = _score_file(tmp_path / "s.h5", [0.95, 0.2, 0.91, 0.1, 0.99, 0.5], "bp1_vs_hf_study_jets", skim)
    rows = _yield_rows()
    for sr_label, y in (("I", 5.0), ("II", 2.0)):
        rows.append(dict(source="study_ntuples", benchmark="1", analysis="soft_emu", sr=sr_label, stage="post_nn",
                         lumi_fb="140", **{"yield": str(y), "stat_err": "0.1"}))
        rows.append(dict(source="fast", benchmark="1", analysis="soft_emu", sr=sr_label, stage="post_nn",
                         lumi_fb="140", **{"yield": str(2 * y), "stat_err": "0.1"}))
    post = V.fidelity_post_nn(rows, [scores], {1: str(skim)}, cut=0.9)
    by = {r["sr"]: r for r in post}
    # SR I: pre 15 (fast), passing weights (1 + 1) / 4; SR II: pre 6, passing 3 / 5
    assert by["I"]["project"] == pytest.approx(15.0 * 2 / 4) and by["I"]["ratio"] == pytest.approx(7.5 / 5.0)
    assert by["II"]["project"] == pytest.approx(6.0 * 3 / 5) and by["II"]["study"] == pytest.approx(2.0)
    assert all(r["network"] == "bp1_vs_hf_study_jets" and r["quantity"] == "yield_post_nn" for r in post)
    with pytest.raises(ValueError, match="not a fast skim"):
        V.fidelity_post_nn(rows, [scores], {1: str(tmp_path / "other.h5")}, cut=0.9)
    # through the report: both networks' post-NN rows, named
    ypath = tmp_path / "yields.csv"
    with open(ypath, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    out = tmp_path / "val"
    settings = {"background": {"nn_network": "bp1_vs_hf"}, "nn": {"cut": 0.9}}
    V.run_validation(settings, out, fast={1: str(skim)}, plots=False,
                     fidelity_inputs={"yields": ypath, "post_nn_scores": [scores]})
    md = (out / "fidelity.md").read_text()
    assert "| yield_post_nn | fast | bp1_vs_hf | 1 | I | 10 | 5 | 2 |" in md
    assert "| yield_post_nn | fast | bp1_vs_hf_study_jets | 1 | I | 7.5 | 5 | 1.5 |" in md


def test_benchmark_samples_are_the_13_tev_ones():
    """The 8 TeV copies (bp4_8tev ...) keep their benchmark id and generator: they must not stand in for the
    13 TeV sample in validation and fidelity (they did: the fidelity cutflow of bp4-7 was the 8 TeV one)."""
    from softdisplaced.config import load_config
    from softdisplaced.samples import build_samples

    cfg = load_config("config/config.yaml")
    cfg["validation"]["pythia8_benchmarks"] = [1, 4]
    samples = build_samples(cfg)
    assert "bp4_8tev" in samples and samples["bp4_8tev"]["benchmark"] == 4       # the trap exists
    names = V.benchmark_samples(samples)
    assert not [n for n in names if n.endswith("_8tev")]
    keys = [(samples[n]["benchmark"], samples[n]["source"], bool(samples[n].get("validation_only"))) for n in names]
    assert len(keys) == len(set(keys))                                          # one sample per benchmark and source
    assert {"bp1", "bp4", "bp7", "bp1_pythia8", "bp4_pythia8"} <= set(names)
    assert all(samples[n]["m_c"] == next(b["m_c"] for b in cfg["benchmarks"] if b["id"] == samples[n]["benchmark"])
               for n in names)


def _reference_csv(path, rows):
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(V.REFERENCE_COLUMNS))
        w.writeheader()
        for bm, sr, proj, study in rows:
            w.writerow(dict(quantity="yield_pre_nn", source="pythia8", benchmark=bm, sr=sr, project=proj, study=study,
                            ratio=proj / study, ratio_err=0.05, n_generated=100000, n_selected=321, decay_mode="emu",
                            seed=12345, config="config/config.yaml config/pythia8_fidelity.yaml", commit="abc1234",
                            command="python docs/fidelity_scripts/pythia8_fidelity.py"))


def test_fidelity_reference_is_shown_with_its_provenance(tmp_path):
    """A committed measurement (Pythia 8 at 1e5 events per benchmark) gets its own block in the fidelity section,
    with events, seed, configuration, commit and command; its differences above the threshold get sentences
    labelled as the reference."""
    ref = tmp_path / "pythia8_fidelity.csv"
    _reference_csv(ref, [("1", "III", 1.30, 1.24), ("4", "I", 200.0, 174.0)])
    out = tmp_path / "val"
    summary = V.run_validation({}, out, plots=False, fidelity_inputs={"references": [ref]})
    md = (out / "fidelity.md").read_text()
    assert f"committed: `{ref}`" in md and "seed 12345" in md and "commit abc1234" in md
    assert "| yield_pre_nn | pythia8, reference | 4 | I | 200 | 174 | 1.15 | 0.050 | 100000 | 321 | emu |" in md
    (sentence,) = summary["fidelity_explanations"]                     # 1.30 / 1.24 is within 10 %
    assert sentence.startswith("yield pre nn (pythia8, reference; benchmark 4, sr I)") and "+15 %" in sentence
    assert V.fidelity_section()[0].count("reference measurement") == 0  # no committed table: no block


def test_a_run_difference_cites_the_committed_reference_of_the_same_row(tmp_path):
    """A default-run yield ratio beyond the threshold is shown beside the larger committed measurement of the
    same generator, benchmark and SR (is it statistics or the generator?); rows without a reference get none."""
    ref = tmp_path / "pythia8_fidelity.csv"
    _reference_csv(ref, [("4", "I", 200.0, 174.0)])
    run = [dict(quantity="yield_pre_nn", source="pythia8", benchmark="4", sr=sr, project=1.5, study=1.0, ratio=1.5,
                ratio_err=0.1) for sr in ("I", "II")]
    _, _, sentences = V.fidelity_section(yields=run, references={str(ref): V.fidelity_reference(ref)})
    by_sr = {s.split("sr ")[1][:2].strip(")"): s for s in sentences if s.startswith("yield pre nn (pythia8;")}
    assert by_sr["I"].endswith("The committed reference (100000 events) gives 1.15 +- 0.050 for this row.")
    assert "gives" not in by_sr["II"] and "for this row" not in by_sr["II"]
    # the reference's own sentence does not cite itself
    (own,) = [s for s in sentences if s.startswith("yield pre nn (pythia8, reference;")]
    assert "for this row" not in own


def test_fidelity_reference_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        V.fidelity_reference(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("quantity,source,benchmark\nyield_pre_nn,pythia8,1\n")
    with pytest.raises(ValueError, match=r"bad.csv.*missing columns"):
        V.fidelity_reference(bad)
    ref = tmp_path / "ref.csv"
    _reference_csv(ref, [("1", "I", 1.0, 1.0)])
    ref.write_text(ref.read_text().replace(",100000,", ",many,"))
    with pytest.raises(ValueError, match=r"ref.csv: line 2"):
        V.fidelity_reference(ref)


def test_pooled_yields_are_exact_and_more_precise(tmp_path):
    """Benchmarks 2, 4, 5 share (m_c, dm) = (220, 20): the pre-NN yield of each from the three samples pooled by
    exact lifetime reweighting equals a direct estimate from ten times more events of its own c*tau (within
    3 sigma), with a smaller error than its own sample gives, and carries the usual normalisation."""
    from skim_factory import toy_mediator_events, write_skim

    from softdisplaced.config import load_config
    from softdisplaced.inference.yields import fast_rows
    from softdisplaced.samples import cross_section_fb

    cfg = load_config("config/config.yaml")
    bench = {b["id"]: b for b in cfg["benchmarks"]}
    rng = np.random.default_rng(9)

    def skim(name, ctau, n):
        ct, sr, n = toy_mediator_events(n, ctau, rng, r_min_mm=0.2, r_max_mm=100.0, sr_edges_mm=(1.0, 5.0))
        return str(write_skim(tmp_path / name / "soft_emu" / f"{name.split('_')[0]}.h5", rng=rng,
                              events={"sr": sr, "mediator_ct_mm": ct},
                              attrs={"sum_gen_weights": float(n), "n_events_processed": n, "ctau_cm": ctau}))

    paths = {bid: skim(f"bp{bid}", bench[bid]["ctau_cm"], 20000) for bid in (2, 4, 5)}
    rows = V.pooled_yields(cfg, {"fast": paths}, 140.0)
    assert {r["stage"] for r in rows} == {"pre_nn_pooled"} and len(rows) == 9
    assert all(r["samples"] == "bp2+bp4+bp5" for r in rows)
    big = skim("bp2_big", bench[2]["ctau_cm"], 200000)
    direct = {r["sr"]: r for r in fast_rows(cfg, [big], [], [140.0], None) if r["stage"] == "pre_nn"}
    own = {r["sr"]: r for r in fast_rows(cfg, [paths[2]], [], [140.0], None) if r["stage"] == "pre_nn"}
    sig = cross_section_fb(cfg, 220.0)[0]
    for r in (r for r in rows if r["benchmark"] == "2"):
        d = direct[r["sr"]]
        assert abs(r["yield"] - d["yield"]) < 3 * np.hypot(r["stat_err"], d["stat_err"]), r
        assert r["stat_err"] < own[r["sr"]]["stat_err"], r
        assert r["yield"] / (sig * bench[2]["br_ll"] * 140.0) < 1.0              # an efficiency times L sigma B
    # a generator with one sample per (m_c, dm) has nothing to pool
    assert V.pooled_yields(cfg, {"fast": {2: paths[2]}}, 140.0) == []
    # the pooled rows enter the fidelity ratios against the study's pre-NN yields
    study = [dict(source="study_ntuples", benchmark="2", analysis="soft_emu", sr=s, stage="pre_nn", lumi_fb=140.0,
                  **{"yield": direct[s]["yield"], "stat_err": direct[s]["stat_err"]}) for s in ("I", "II", "III")]
    fid = [r for r in V.fidelity_yields(rows + study) if r["quantity"] == "yield_pre_nn_pooled"]
    assert len(fid) == 3 and all(abs(r["ratio"] - 1) < 3 * r["ratio_err"] for r in fid)
    # post-NN: the same pooling over the events with score >= cut; every event passing gives the pre-NN rows,
    # a score that passes half the events at random about half of them, within the errors
    from skim_factory import write_scores

    def scores(name, value):
        bid = int(name[2:-1])
        with h5py.File(paths[bid]) as f:
            n = len(f["events/sr"])
        return str(write_scores(tmp_path / "scores" / f"{name}.h5", value(n), network="toy"))

    ones = {bid: scores(f"bp{bid}a", np.ones) for bid in paths}
    same = V.pooled_yields(cfg, {"fast": paths}, 140.0, scores=ones, cut=0.9, network="toy")
    assert {r["stage"] for r in same} == {"post_nn_pooled"} and {r["network"] for r in same} == {"toy"}
    assert [r["yield"] for r in same] == pytest.approx([r["yield"] for r in rows], rel=1e-12)
    half = {bid: scores(f"bp{bid}b", lambda n: rng.random(n)) for bid in paths}
    post = V.pooled_yields(cfg, {"fast": paths}, 140.0, scores=half, cut=0.5, network="toy")
    for p, r in zip(post, rows):
        assert abs(p["yield"] - 0.5 * r["yield"]) < 4 * p["stat_err"], (p, r)
    study_post = [dict(r, stage="post_nn", **{"yield": 0.5 * r["yield"]}) for r in study]
    fid = [r for r in V.fidelity_yields(post + study_post) if r["quantity"] == "yield_post_nn_pooled"]
    assert len(fid) == 3 and {r["network"] for r in fid} == {"toy"}
    with pytest.raises(ValueError, match="post-NN pooling needs the cut"):
        V.pooled_yields(cfg, {"fast": paths}, 140.0, scores=half)


def test_ratio_within_statistics_is_explained_as_statistics():
    rows = [dict(quantity="yield_pre_nn", source="fast", benchmark="6", sr="II", project=4.03, study=2.19,
                 ratio=1.84, ratio_err=0.64),
            dict(quantity="yield_pre_nn", source="fast", benchmark="2", sr="I", project=1.56, study=1.23,
                 ratio=1.26, ratio_err=0.03)]
    rows.append(dict(rows[0], quantity="yield_post_nn"))        # post-NN: the NN's systematic difference, not statistics
    s6, s2, post = V.fidelity_explanations(rows, V.fidelity_settings(None))
    assert "Why: statistics: the ratio is 1.3 standard deviations" in s6
    assert "Why: statistics" not in s2 and "detector model" in s2
    assert "Why: statistics" not in post and "NN signal efficiency" in post


def test_pythia8_fidelity_profile():
    """config/pythia8_fidelity.yaml (issue 11: Pythia 8 with >= 1e5 events per benchmark) validates on top of
    config/config.yaml and asks for the Pythia 8 copies of benchmarks 1-6 only, 1e5 events each, forced e-mu."""
    import yaml

    from softdisplaced.config import load_config
    from softdisplaced.generation import signal_decay_mode
    from softdisplaced.samples import build_samples

    cfg = load_config("config/config.yaml", overrides=yaml.safe_load(open("config/pythia8_fidelity.yaml")))
    samples = build_samples(cfg)
    copies = {n: s for n, s in samples.items() if s.get("validation_only")}
    assert sorted(copies) == [f"bp{i}_pythia8" for i in range(1, 7)]
    for s in copies.values():
        assert s["source"] == "pythia8" and s["n_chunks"] * s["events_per_chunk"] >= 100_000
        assert signal_decay_mode(s, cfg) == "emu"
    assert all(s["source"] == "fast" for n, s in samples.items() if n not in copies and s["kind"] == "signal"
               and s.get("model", "chargino") == "chargino")


def test_cutflow_of_a_forced_emu_sample_is_flavour_democratic(tmp_path):
    """A forced e-mu sample passes each e-mu step twice as often as a democratic one: the fidelity cutflow
    applies its flavour factor 1/2 (from the skim's signal_decay_mode) after the first step, as the yields do."""
    from skim_factory import write_skim

    cf = {"cuts": [{"name": "all", "raw": 1000, "weighted": 1000.0}, {"name": "pt", "raw": 300, "weighted": 300.0}],
          "sum_gen_weights": 1000.0}
    cfp = tmp_path / "cf.json"
    cfp.write_text(json.dumps(cf))
    skims = {}
    for mode in ("emu", "democratic"):
        skims[mode] = str(write_skim(tmp_path / f"{mode}.h5", n=5, attrs={"signal_decay_mode": mode}))
    assert V._flavour_factors({"pythia8": {1: skims["emu"]}, "fast": {1: skims["democratic"]}}) == \
        {("1", "pythia8"): 0.5, ("1", "fast"): 1.0}
    rows = V.fidelity_cutflow({"1": {"pythia8": cf, "fast": cf}}, {}, {"preselection": "pt"},
                              {("1", "pythia8"): 0.5, ("1", "fast"): 1.0})
    by = {(r["source"], r["step"]): r["project"] for r in rows}
    assert by["pythia8", "all"] == by["fast", "all"] == 1.0
    assert by["pythia8", "pt"] == pytest.approx(0.15) and by["fast", "pt"] == pytest.approx(0.3)
