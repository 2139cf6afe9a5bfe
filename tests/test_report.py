"""Report stage: tables in three formats with the right numbers, figures as PDF + PNG with
provenance pointers, REPORT.md completeness, HEPData content, provenance.json, and clear
errors for missing / malformed required inputs."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from report_factory import LUMI, NETWORK, SETTINGS, TRANSFER, YIELDS, make_results, write_benchmark_tsv


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The whole report built once from the synthetic inputs (PNG at low dpi to keep it fast)."""
    from softdisplaced.report import build_report

    tmp = tmp_path_factory.mktemp("report")
    settings = json.loads(json.dumps(SETTINGS))
    settings["report"] = {"png_dpi": 40}
    settings, res = make_results(tmp, settings)
    arts = build_report(settings, res)
    return settings, res, res / "paper", arts


def _fresh(tmp_path):
    settings, res = make_results(tmp_path)
    from softdisplaced.report.common import ReportContext

    return ReportContext(settings, res), res


# ------------------------------------------------------------------ tables
def test_yields_tables_three_formats(built):
    _, _, paper, _ = built
    t = paper / "tables"
    for num, stage_idx in ((4, 0), (5, 2)):
        stage = "pre_nn" if num == 4 else "post_nn"
        df = pd.read_csv(t / f"table{num}_yields_{stage}.csv", dtype={"benchmark": str})
        # rows: benchmarks in numeric order, HF last; only source 'fast', analysis soft_emu, 140 fb^-1
        assert df["benchmark"].tolist() == ["1", "4", "7", "hf"]
        for (bm, sr), vals in YIELDS.items():
            row = df[df["benchmark"] == bm].iloc[0]
            assert row[f"SR_{sr}"] == pytest.approx(vals[stage_idx])
            assert row[f"SR_{sr}_err"] == pytest.approx(vals[stage_idx + 1])
    md = (t / "table4_yields_pre_nn.md").read_text()
    tex = (t / "table4_yields_pre_nn.tex").read_text()
    # 12.345 +- 0.512 -> error to two significant digits
    assert "| 12.35 ± 0.51 |" in md
    assert r"12.35 $\pm$ 0.51" in tex and r"\begin{tabular}" in tex and r"\bottomrule" in tex
    assert "HF background" in md and "222000 ± 15000" in md
    summ = pd.read_csv(t / "table_yields_summary.csv", dtype={"benchmark": str})
    assert summ.set_index("benchmark").loc["4", "post_SR_III"] == pytest.approx(330.0)
    assert summ.set_index("benchmark").loc["4", "pre_SR_III"] == pytest.approx(400.0)


def test_yields_scaled_when_lumi_not_in_file(tmp_path):
    from softdisplaced.report.tables import yields_tables

    ctx, _ = _fresh(tmp_path)
    ctx.settings["report"]["lumi_fb"] = 280.0
    pre = yields_tables(ctx)[0].data.set_index("benchmark")
    assert pre.loc["1", "SR_I"] == pytest.approx(2 * 12.345)
    assert pre.loc["1", "SR_I_err"] == pytest.approx(2 * 0.512)


def test_benchmarks_transfer_background_tables(built):
    _, _, paper, _ = built
    t = paper / "tables"
    bm = pd.read_csv(t / "table1_benchmarks.csv")
    row = bm[bm["id"] == 4].iloc[0]
    assert row["cross_section_fb"] == pytest.approx(903.0) and row["cross_section_source"] == "study_fixed"
    assert bm[bm["id"] == 1].iloc[0]["m_0_gev"] == pytest.approx(304.0)
    assert "903 ± 54" in (t / "table1_benchmarks.md").read_text()

    tf = pd.read_csv(t / "table2_transfer_factors.csv")
    r20 = tf[tf["threshold"] == 20].iloc[0]
    assert r20["kappa_emu_own_fit"] == pytest.approx(TRANSFER[0][5])
    assert r20["kappa_emu_published"] == pytest.approx(1139.46)   # from config background.published_kappa
    md = (t / "table2_transfer_factors.md").read_text()
    assert "kappa_emu (own_fit)" in md and "kappa_emu (published)" in md and "1253 ± 90" in md

    bg = pd.read_csv(t / "table3_background.csv")
    lab = bg.columns[0]
    r = bg[bg[lab] == "(20, 20)"].iloc[0]
    assert r["B_I"] == pytest.approx(1253.3 * 3.0)          # the 2.6 fb^-1 rows of background.csv
    assert r["B_I_published"] == pytest.approx(4123)
    assert "(42, 40)" in bg[lab].tolist()
    assert r"\begin{table}" in (t / "table3_background.tex").read_text()


def test_background_table_falls_back_to_yields(tmp_path):
    from softdisplaced.report.tables import background_table

    ctx, res = _fresh(tmp_path)
    (res / "background" / "background.csv").unlink()
    art = background_table(ctx)
    d = art.data.set_index("analysis")
    assert d.loc["soft_emu", "B_III"] == pytest.approx(1340.0 * 2.6 / LUMI)


# ----------------------------------------------------------------- figures
FIGS = ["fig2_lepton_pt", "fig4_hf_pt_fit", "fig5_d0", "fig6_kinematics", "fig7_nn_discriminant_roc",
        "fig8_nn_sr3", "fig9_exclusion_ctau", "fig10_mass_ctau_plane"]


@pytest.mark.parametrize("name", FIGS)
def test_figures_pdf_png_and_provenance(built, name):
    settings, res, paper, _ = built
    from softdisplaced.config import config_hash

    f = paper / "figures"
    pdf, png, side = (f / f"{name}.{ext}" for ext in ("pdf", "png", "json"))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads(side.read_text())
    assert meta["config_hash"] == config_hash(settings)
    assert (side.parent / meta["provenance"]).resolve() == (res / "provenance.json").resolve()
    assert meta["inputs"] and all(len(v) == 64 for v in meta["inputs"].values())
    assert config_hash(settings).encode() in png.read_bytes()     # PNG text chunk
    assert b"config_hash=" in pdf.read_bytes()                     # PDF Keywords


def test_fig8_signal_weights():
    import numpy as np

    from softdisplaced.report.common import ReportContext
    from softdisplaced.report.figures import signal_weights

    ctx = ReportContext({}, "results")
    d = {"sr": np.array([3, 3]), "weight_d0eff": np.array([0.5, 1.0]), "weight_gen": np.array([1.0, 2.0]),
         "_attrs": {"cross_section_fb": 903.0, "br_ll": 1.0, "n_events_processed": 1000, "sum_gen_weights": 2000.0,
                    "signal_decay_mode": "emu"}}   # forced e-mu events: flavour factor 1/2
    w = signal_weights(ctx, d, None, 140.0, "x.h5")
    assert w == pytest.approx(903.0 * 140.0 * 0.5 * np.array([0.5, 2.0]) / 2000.0)
    del d["_attrs"]["cross_section_fb"]
    with pytest.raises(ValueError, match="x.h5.*cross_section_fb"):
        signal_weights(ctx, d, None, 140.0, "x.h5")


def test_optional_inputs_left_out_with_warning(tmp_path, caplog):
    from softdisplaced.report.figures import fig_exclusion_ctau, fig_nn

    ctx, res = _fresh(tmp_path)
    ctx.settings["report"]["png_dpi"] = 30
    (res / "nn" / NETWORK / "roc.csv").unlink()
    (res / "nn" / NETWORK / "scores" / "soft_emu_loose" / "bp7.h5").unlink()
    ex = pd.read_csv(res / "limits" / "exclusion_ctau.csv")
    ex[ex["analysis"] != "cms_8tev_emu"].to_csv(res / "limits" / "exclusion_ctau.csv", index=False)
    with caplog.at_level("WARNING", logger="softdisplaced.report"):
        a = fig_nn(ctx)
        b = fig_exclusion_ctau(ctx)
    assert all(p.exists() for p in a.files + b.files)
    text = caplog.text
    assert "roc.csv not found" in text and "bp7.h5" in text and "8 TeV bound is left out" in text


# ------------------------------------------------------- required inputs
@pytest.mark.parametrize("builder,relpath", [
    ("tables.yields_tables", "yields/yields.csv"),
    ("tables.transfer_factors_table", "background/transfer_factors.csv"),
    ("figures.fig_hf_fit", "background/hf_fit.json"),
    ("figures.fig_exclusion_ctau", "limits/exclusion_ctau.csv"),
    ("figures.fig_mass_plane", "limits/mass_reach.csv"),
    ("figures.fig_d0", "skims/soft_emu_loose/hf.h5"),
])
def test_missing_required_input_names_file(tmp_path, builder, relpath):
    import importlib

    ctx, res = _fresh(tmp_path)
    mod, fn = builder.split(".")
    func = getattr(importlib.import_module(f"softdisplaced.report.{mod}"), fn)
    (res / relpath).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(res / relpath))):
        func(ctx)


def test_malformed_inputs_name_file(tmp_path):
    from softdisplaced.report.figures import fig_hf_fit
    from softdisplaced.report.tables import yields_tables

    ctx, res = _fresh(tmp_path)
    y = res / "yields" / "yields.csv"
    pd.read_csv(y).drop(columns=["stat_err"]).to_csv(y, index=False)
    with pytest.raises(ValueError, match=re.escape(str(y)) + r".*stat_err"):
        yields_tables(ctx)
    fit = res / "background" / "hf_fit.json"
    fit.write_text(json.dumps({"electron": {"params": {"a1": 1.0}}, "muon": {}}))
    with pytest.raises(ValueError, match=re.escape(str(fit)) + r".*a1, b1, a2, b2"):
        fig_hf_fit(ctx)
    fit.write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(str(fit)) + ".*malformed JSON"):
        fig_hf_fit(ctx)


def test_cli_report_error_exit_code(tmp_path, capsys):
    from softdisplaced.cli import main

    settings, res = make_results(tmp_path)
    (res / "yields" / "yields.csv").unlink()
    rc = main(["report", "--settings", json.dumps(settings), "--results-dir", str(res), "--only", "yields"])
    assert rc == 1
    assert str(res / "yields" / "yields.csv") in capsys.readouterr().err


# -------------------------------------------------------------- REPORT.md
def test_report_md_references_every_file_with_caption(built):
    _, _, paper, arts = built
    md = (paper / "REPORT.md").read_text()
    links = set(re.findall(r"\]\(([^)]+)\)", md))
    for p in [*(paper / "figures").glob("*.png"), *(paper / "figures").glob("*.pdf"),
              *(paper / "tables").glob("*.csv"), *(paper / "tables").glob("*.tex")]:
        assert p.relative_to(paper).as_posix() in links, p
    for link in links - {"../provenance.json"}:     # provenance.json is the provenance rule's output
        assert (paper / link).exists(), link
    for png in (paper / "figures").glob("*.png"):
        assert f"![" in md and f"]({png.relative_to(paper).as_posix()})" in md
    for a in arts:
        if a.kind in ("table", "figure"):
            block = md.split(f"### {a.title}", 1)[1].split("###", 1)[0]
            assert a.caption in block and "*Configuration:* hash" in block
    assert "../provenance.json" in md


# ----------------------------------------------------------------- HEPData
def test_hepdata_submission(built):
    _, _, paper, _ = built
    hd = paper / "hepdata"
    docs = [d for d in yaml.safe_load_all((hd / "submission.yaml").read_text()) if d]
    names = {d["name"]: d["data_file"] for d in docs if "name" in d}
    assert {"Yields before the NN cut", "Yields after the NN cut", "Exclusion vs ctau nn",
            "Exclusion vs ctau cut_based", "Mass reach"} <= set(names)
    pre = yaml.safe_load((hd / names["Yields before the NN cut"]).read_text())
    assert [v["value"] for v in pre["independent_variables"][0]["values"]] == ["SR I", "SR II", "SR III"]
    bp1 = next(v for v in pre["dependent_variables"]
               if {"name": "Process", "value": "benchmark 1"} in v["qualifiers"])
    assert bp1["values"][0]["value"] == pytest.approx(12.345)
    assert bp1["values"][0]["errors"][0]["symerror"] == pytest.approx(0.512)
    nn = yaml.safe_load((hd / names["Exclusion vs ctau nn"]).read_text())
    r95 = [v for v in nn["dependent_variables"] if v["header"]["name"] == "R95"]
    assert len(r95) == 4                                              # one per luminosity
    with tarfile.open(paper / "hepdata.tar.gz") as tar:
        assert {"submission.yaml", names["Yields after the NN cut"]} <= set(tar.getnames())


# -------------------------------------------------------------- provenance
def test_provenance_json(tmp_path):
    from softdisplaced.cli import main
    from softdisplaced.config import config_hash

    settings, res = make_results(tmp_path)
    b1 = write_benchmark_tsv(res / "benchmarks" / "rules" / "generate" / "bp1" / "0.tsv", 12.5, 300.0)
    b2 = write_benchmark_tsv(res / "benchmarks" / "rules" / "generate" / "bp1" / "1.tsv", 7.5, 500.0)
    b3 = write_benchmark_tsv(res / "benchmarks" / "rules" / "report" / "report.tsv", 3.0)
    out = res / "provenance.json"
    rc = main(["provenance", "--settings", json.dumps(settings), "--inputs", str(res / "yields"),
               str(res / "limits" / "exclusion_ctau.csv"), "--benchmarks", str(b1), str(b2), str(b3),
               "--output", str(out)])
    assert rc == 0
    p = json.loads(out.read_text())
    for key in ("git_commit", "config", "config_hash", "package_versions", "input_checksums", "rule_runtimes", "machine"):
        assert key in p
    assert p["config"] == settings and p["config_hash"] == config_hash(settings)
    assert str(res / "yields" / "yields.csv") in p["input_checksums"]
    from softdisplaced.provenance import file_sha256

    assert p["input_checksums"][str(res / "limits" / "exclusion_ctau.csv")] == file_sha256(res / "limits" / "exclusion_ctau.csv")
    gen = p["rule_runtimes"]["generate"]
    assert gen["n_jobs"] == 2 and gen["total_s"] == pytest.approx(20.0) and gen["max_rss_mb"] == pytest.approx(500.0)
    assert gen["jobs"]["bp1/0"] == pytest.approx(12.5)
    assert p["rule_runtimes"]["report"]["mean_s"] == pytest.approx(3.0)
    assert "numpy" in p["package_versions"] and p["machine"]["cpus"] >= 1


def test_provenance_bad_benchmark_file(tmp_path):
    from softdisplaced.report.provenance import parse_benchmark_file

    bad = tmp_path / "rules" / "x" / "y.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("not a benchmark\n1\n")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        parse_benchmark_file(bad)
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        parse_benchmark_file(tmp_path / "nope.tsv")


def test_expected_outputs_match_written_files(built):
    from softdisplaced.report import expected_outputs

    settings, _, paper, _ = built
    files = expected_outputs(settings, paper)
    assert all(Path(f).exists() for f in files)
    off = json.loads(json.dumps(settings))
    off["samples"]["mass_scan"]["enabled"] = False
    assert not any("fig10" in f for f in expected_outputs(off, paper))


# ------------------------------------------------------- figure style (issue 12)
def _drawn(monkeypatch, builder, ctx):
    """The matplotlib figure a builder draws (instead of writing it)."""
    from softdisplaced.report import figures

    captured = {}

    def keep(ctx_, fig, art):
        captured["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts]
        captured["axes"] = fig.axes
        return art

    monkeypatch.setattr(figures, "save_figure", keep)
    builder(ctx)
    return captured


def test_roc_has_log_background_axis_and_the_working_point(tmp_path, monkeypatch):
    from softdisplaced.report.figures import fig_nn

    ctx, _ = _fresh(tmp_path)
    roc = _drawn(monkeypatch, fig_nn, ctx)["axes"][1]
    assert roc.get_xscale() == "log" and roc.get_yscale() == "linear"
    assert roc.get_xlim()[0] < 1e-2 and roc.get_xlim()[1] == 1
    # the working point of every benchmark: the roc.csv row at threshold = nn.cut = 0.9
    points = [tuple(ln.get_xydata()[0]) for ln in roc.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    assert len(points) == 3
    assert points[0] == pytest.approx(((1 - 0.9) ** 3, 1 - 0.9 ** 3))
    assert any("working point" in t.get_text() for t in roc.get_legend().get_texts())


@pytest.mark.parametrize("builder", ["fig_nn", "fig_exclusion_ctau", "fig_nn_sr3"])
def test_figures_are_labelled_as_a_phenomenology_study_not_cms(tmp_path, monkeypatch, builder):
    from softdisplaced.report import figures

    ctx, _ = _fresh(tmp_path)
    texts = _drawn(monkeypatch, getattr(figures, builder), ctx)["texts"]
    assert "Phenomenology study" in texts                      # default of report.label (schema)
    assert not [t for t in texts if "CMS" in t or "Simulation" in t]
    ctx.report_cfg["label"] = "Private work"                   # configurable
    assert "Private work" in _drawn(monkeypatch, getattr(figures, builder), ctx)["texts"]


def test_no_experiment_label_in_the_code(repo_root):
    """No figure of the package is drawn with an experiment's label (hep.cms / atlas / lhcb ...)."""
    offenders = [str(p) for p in (repo_root / "src").rglob("*.py")
                 if re.search(r"hep\.(cms|atlas|lhcb|alice)\.(label|text)", p.read_text())]
    assert offenders == []


def test_report_defaults_come_from_the_schema(tmp_path):
    """A report section left empty gets the schema's values; nulls take the named configuration."""
    ctx, _ = _fresh(tmp_path)
    assert ctx.report_cfg["label"] == "Phenomenology study" and ctx.report_cfg["png_dpi"] == 100
    assert ctx.lumi_fb == LUMI                                   # null -> limits.yield_lumis_fb[0]
    assert ctx.nn_cut == 0.9 and ctx.network == NETWORK          # nn.cut; background.nn_network
    assert ctx.exclusion_point == (220.0, 20.0)                  # limits.benchmark_point
    ctx.settings["limits"]["yield_lumis_fb"] = [300.0]
    ctx.settings["nn"]["cut"] = 0.8
    assert ctx.lumi_fb == 300.0 and ctx.nn_cut == 0.8            # no constant hides a changed setting
    from softdisplaced.config import ConfigError

    del ctx.settings["nn"]["cut"]
    with pytest.raises(ConfigError, match="nn.cut"):
        ctx.nn_cut


def test_report_names_the_generators_and_points_to_the_fidelity_section(tmp_path):
    from softdisplaced.report.markdown import render_report

    settings, res = make_results(tmp_path)
    settings = {**settings, "samples": {**settings.get("samples", {}), "signal": {"generator": "pythia8"},
                                        "hf": {"generator": "pythia8"}}}
    from softdisplaced.report.common import ReportContext

    ctx = ReportContext(settings, res)
    text = render_report(ctx, [])
    assert "signal `pythia8`" in text and "heavy flavour `pythia8`" in text and "source `pythia8`" in text
    assert "fidelity.md" not in text
    (res / "validation").mkdir(parents=True, exist_ok=True)
    (res / "validation" / "fidelity.md").write_text("## Fidelity\n\n- a (fast; BP 1): 2 vs 1. Why: x.\n"
                                                     "- b (fast; BP 4): 3 vs 1. Why: y.\n")
    text = render_report(ReportContext(settings, res), [])
    assert "2 difference(s) above the threshold" in text and "validation/fidelity.md" in text


def test_transfer_factor_table_names_how_the_committed_reference_was_measured(tmp_path):
    """A kappa from background.kappa_reference_files (softdisplaced hf-kappa) stands in Table 2 beside the others,
    its caption saying which command made it and when."""
    import json

    from softdisplaced.report.tables import transfer_factors_table

    ctx, res = _fresh(tmp_path)
    path = res / "background" / "transfer_factors.csv"
    tf = pd.read_csv(path)
    ref = tf.assign(method="pythia8_reference", kappa_emu=tf["kappa_emu"] * 0.4)
    pd.concat([tf, ref]).to_csv(path, index=False)
    rec = tmp_path / "hf_kappa_pythia8.json"
    rec.write_text(json.dumps({"source": "pythia8", "seed": 3, "events_used": 120000,
                               "measured": {"command": "softdisplaced hf-kappa --seed 3", "date": "2026-11-28",
                                            "git_commit": "0123456789abcdef"}}))
    ctx.settings["background"]["kappa_reference_files"] = {"pythia8_reference": str(rec)}
    art = transfer_factors_table(ctx)
    assert "kappa_emu_pythia8_reference" in art.data.columns
    assert ("pythia8_reference: measured by `softdisplaced hf-kappa --seed 3` on 2026-11-28 (120000 pythia8 events, "
            "seed 3, commit 0123456789)") in art.caption
