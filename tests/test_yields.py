"""Yields: normalisation, MC statistical errors, NN cut, luminosity scaling, the study's ntuples."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from skim_factory import write_scores, write_skim

from softdisplaced.inference import yields as y


def _cfg(default_config, **limits):
    cfg = json.loads(json.dumps(default_config))
    cfg.setdefault("nn", {})["cut"] = 0.9
    cfg["limits"].update(limits)
    return cfg


def _bkg_csv(path):
    rows = [dict(threshold=20, analysis="soft_emu", stage=st, lumi_fb=2.6, sr=sr, b=b * f, b_err=0.1 * b * f,
                 rel_tf=0.1, rel_nn=0.0, nn_cut="", method="published_fit")
            for st, f in (("pre_nn", 1.0), ("post_nn", 0.01)) for sr, b in (("I", 3000.0), ("II", 500.0), ("III", 19.0))]
    y.write_csv(path, rows, list(rows[0]))
    return path


def test_signal_yield_formula_and_stat_error(tmp_path, default_config):
    cfg = _cfg(default_config)
    w = np.array([0.5, 0.8, 1.0, 0.9, 0.7, 0.6])
    sr = np.array([1, 1, 2, 3, 3, 0])
    skim = write_skim(tmp_path / "skims/soft_emu/bp4.h5", events={"sr": sr, "weight_d0eff": w},
                      attrs={"n_events_processed": 1000, "sum_gen_weights": 1000.0})
    scores = write_scores(tmp_path / "nn/study/scores/soft_emu/bp4.h5", [0.95, 0.1, 0.99, 0.2, 0.91, 0.99])
    rows = y.fast_rows(cfg, [skim], [scores], [140.0], 0.9)
    norm = 903.0 * 140 * 1.0 / 1000.0                # sigma(220, study) x L x B(ll) / N_gen (no decay mode recorded: factor 1)
    got = {(r["stage"], r["sr"]): r for r in rows}
    assert got[("pre_nn", "I")]["yield"] == pytest.approx(norm * 1.3)
    assert got[("pre_nn", "I")]["stat_err"] == pytest.approx(norm * np.sqrt(0.25 + 0.64))
    assert got[("pre_nn", "III")]["yield"] == pytest.approx(norm * 1.6)
    assert got[("post_nn", "I")]["yield"] == pytest.approx(norm * 0.5)
    assert got[("post_nn", "III")]["yield"] == pytest.approx(norm * 0.7)
    # luminosity scaling: linear in yield and error
    rows2 = y.fast_rows(cfg, [skim], [scores], [280.0], 0.9)
    assert [r["yield"] for r in rows2] == pytest.approx([2 * r["yield"] for r in rows])
    assert [r["stat_err"] for r in rows2] == pytest.approx([2 * r["stat_err"] for r in rows])


def test_decay_mode_and_cross_section_source_enter(tmp_path, default_config):
    """The flavour factor comes from the skim's recorded decay mode: forced e-mu events count 1/2 in the
    e-mu channel, democratic ones 1; the cross-section source enters through the configuration."""
    cfg = _cfg(default_config)
    skims = {mode: write_skim(tmp_path / f"{mode}/skims/soft_emu/bp4.h5", events={"sr": np.array([3, 3])},
                              attrs={"sum_gen_weights": 100.0, "signal_decay_mode": mode})
             for mode in ("democratic", "emu")}
    base = y.fast_rows(cfg, [skims["democratic"]], [], [1.0], None)[2]["yield"]
    forced = y.fast_rows(cfg, [skims["emu"]], [], [1.0], None)[2]["yield"]
    assert forced / base == pytest.approx(0.5)
    cfg["cross_sections"]["source"] = "wino_table"
    other = y.fast_rows(cfg, [skims["democratic"]], [], [1.0], None)[2]["yield"]
    from softdisplaced.samples import cross_section_fb

    assert other / base == pytest.approx(cross_section_fb(cfg, 220)[0] / 903.0)


def test_flavour_factor():
    assert y.flavour_factor("democratic", "ee") == 1.0
    assert y.flavour_factor("", "emu") == 1.0
    assert y.flavour_factor("emu", "emu") == 0.5
    assert y.flavour_factor("emu", "mumu") == 0.0
    with pytest.raises(ValueError, match="unknown signal decay mode"):
        y.flavour_factor("tau", "emu")
    # multi-channel skims: per event, by the channel column
    attrs = {"signal_decay_mode": "emu", "channels": json.dumps({"emu": 0, "ee": 1, "mumu": 2})}
    w = y.flavour_weights(attrs, {"sr": np.zeros(3), "channel": np.array([0, 1, 2])})
    assert list(w) == [0.5, 0.0, 0.0]


def test_yields_command_writes_the_contract_columns(tmp_path, default_config):
    from softdisplaced.cli import main

    cfg = _cfg(default_config)
    skims, scores = [], []
    for name in ("bp3", "bp4"):
        skims.append(str(write_skim(tmp_path / f"skims/soft_emu/{name}.h5", n=40, attrs={"sum_gen_weights": 1e4})))
        scores.append(str(write_scores(tmp_path / f"nn/study/scores/soft_emu/{name}.h5", np.linspace(0, 1, 40))))
    out = tmp_path / "yields/yields.csv"
    rc = main(["yields", "--settings", json.dumps(cfg), "--skims", *skims, "--scores", *scores,
               "--background", str(_bkg_csv(tmp_path / "background.csv")), "--out", str(out)])
    assert rc == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["source", "benchmark", "analysis", "sr", "stage", "lumi_fb", "yield", "stat_err",
                             "skipped_files", "lost_fraction"]
    assert {r["skipped_files"] for r in rows if r["benchmark"] != "hf"} == {"0"}
    hf = [r for r in rows if r["benchmark"] == "hf" and r["stage"] == "pre_nn" and r["sr"] == "I"]
    assert float(hf[0]["yield"]) == pytest.approx(3000.0 * 140 / 2.6, rel=1e-5)
    assert {r["benchmark"] for r in rows} == {"3", "4", "hf"}
    assert {r["stage"] for r in rows} == {"pre_nn", "post_nn"}
    assert (tmp_path / "yields/yields.md").read_text().count("| 4 |") == 1


def test_missing_attribute_is_a_clear_error(tmp_path):
    import h5py

    p = write_skim(tmp_path / "skims/soft_emu/bp4.h5", n=3)
    with h5py.File(p, "a") as f:
        del f.attrs["sum_gen_weights"]
    with pytest.raises(ValueError, match="sum_gen_weights"):
        y.read_skim(p)


def test_study_ntuples_yields(reference_dir, default_config):
    cfg = _cfg(default_config)
    rows = y.study_ntuple_rows(cfg, [140.0], None, reference_dir / "authors_ntuples")
    by = {(r["benchmark"], r["sr"]): r for r in rows if r["stage"] == "pre_nn"}
    assert set(b for b, _ in by) == {"1", "2", "3", "4", "5", "6"}
    # lifetime ordering of the study's own events: SR III grows from c*tau = 0.1 cm (bp3) to 10 cm (bp5)
    assert by[("3", "III")]["yield"] < by[("4", "III")]["yield"] < by[("5", "III")]["yield"]
    # yield = sigma L B(ll) sum(w) / 2e6 with the relative MC error ~ 1/sqrt(n)
    assert 0 < by[("4", "III")]["stat_err"] / by[("4", "III")]["yield"] < 0.05


def test_study_ntuple_weights_F_are_the_spec_extrapolated_tables(reference_dir):
    import yaml

    from softdisplaced.validation import study_ntuples as sn

    pub = yaml.safe_load((reference_dir / "published.yaml").read_text())["displaced_lepton_efficiency_vs_d0"]
    edges = np.array(pub["bin_edges_mm"], float)
    ele = np.array(pub["electron"])
    ext = pub["study_extrapolation"]["electron"]

    def eff_e(d0):
        # the study's extension in 1 mm steps: linear from the table value of the bin starting at 10 mm
        # to 0.05 at 100 mm, evaluated at the upper edge of each 1 mm bin
        start = ele[int(ext["from_mm"])]
        x = np.ceil(np.abs(d0))
        return start + (ext["value_at_to"] - start) * (x - ext["from_mm"]) / (ext["to_mm"] - ext["from_mm"])

    import uproot

    with uproot.open(reference_dir / "authors_ntuples/BP_200_20_20.root") as f:
        a = f["varTree_SR3"].arrays(["D0El_SR3", "wtelF_SR3"], library="np")
    sel = (a["D0El_SR3"] > 25) & (a["D0El_SR3"] < 95)
    assert sel.sum() > 50
    assert a["wtelF_SR3"][sel] == pytest.approx(eff_e(a["D0El_SR3"][sel]), abs=2e-3)
    sums = sn.sr_sums(reference_dir / "authors_ntuples/BP_200_20_20.root", "F")
    assert sums[3][2] == 12265
