"""Recasts: model-independent s95 per SR, error handling of the published counts, R95 vs c*tau."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from skim_factory import toy_mediator_events, write_skim

from softdisplaced import recast as rc
from softdisplaced import statistics as st


def test_region_inputs_quadrature_and_symmetrised_errors(default_config):
    e8 = default_config["recast"]["analyses"]["cms_8tev_emu"]
    obs, b, err = rc.region_inputs(e8)
    assert list(obs) == [19, 0, 0]
    assert err[0] == pytest.approx(math.hypot(0.5, 3.8))
    e18 = default_config["recast"]["analyses"]["cms_exo_18_003_emu"]
    _, _, err18 = rc.region_inputs(e18)
    assert err18[0] == pytest.approx((13.9 + 13.5) / 2)
    with pytest.raises(ValueError, match="regions"):
        rc.region_inputs(dict(e8, observed=[1, 2]))


def test_s95_exo_16_022(default_config):
    rows = {r["region"]: r for r in rc.s95_rows("cms_exo_16_022", default_config["recast"]["analyses"]["cms_exo_16_022"])}
    # n = 0 with a tiny background: s95 = -ln 0.05 = 3.0 whatever the background uncertainty
    assert rows["SR3"]["s95_obs"] == pytest.approx(-math.log(0.05), rel=1e-4)
    # the limit is where the marginalised CLs equals 0.05, and it grows with the observed count
    r1 = rows["SR1"]
    assert st.cls_poisson_marginal(r1["s95_obs"], 3.2, 1, 0.3) == pytest.approx(0.05, abs=1e-6)
    assert rows["SR1"]["s95_obs"] > rows["SR2"]["s95_obs"]
    assert r1["s95_exp_m1"] <= r1["s95_exp"] <= r1["s95_exp_p1"]


def test_s95_exact_against_pyhf_where_asymptotics_hold():
    # SR1 of the 8 TeV search: n = 19, b = 18 +- 3.8: exact and asymptotic pyhf agree to ~10 %
    exact = st.s95_exact(18.0, 19, 3.83)[0]
    spec = st.pyhf_spec([1.0], [18.0], None, 0.0, [3.83 / 18.0])
    ref = st.mu95_pyhf(spec, [19], calctype="asymptotics", scan=np.linspace(0, 40, 81))
    assert exact == pytest.approx(ref["obs"], rel=0.12)


def test_recast_command_s95_files_and_r95_vs_ctau(tmp_path, default_config):
    from softdisplaced.cli import main

    cfg = json.loads(json.dumps(default_config))
    cfg["limits"]["ctau_grid_cm"] = {"min": 0.1, "max": 100.0, "n_points": 7}
    cfg["recast"]["analyses"] = {k: v for k, v in cfg["recast"]["analyses"].items()
                                 if k in ("cms_exo_16_022", "cms_8tev_emu")}
    rng = np.random.default_rng(2)
    skims = []
    for name, ctau in (("bp4", 1.0), ("dm25", 1.0)):
        ct, sr, n = toy_mediator_events(20000, ctau, rng, r_min_mm=0.2, r_max_mm=20, sr_edges_mm=(0.5, 1.0))
        skims.append(str(write_skim(tmp_path / f"skims/cms_8tev_emu/{name}.h5", events={"sr": sr, "mediator_ct_mm": ct},
                                    attrs={"sum_gen_weights": float(n), "ctau_cm": ctau, "analysis": "cms_8tev_emu"})))
    out = tmp_path / "recast"
    assert main(["recast", "--settings", json.dumps(cfg), "--skims", *skims, "--outdir", str(out)]) == 0
    with open(out / "cms_exo_16_022_s95.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["region"] for r in rows] == ["SR1", "SR2", "SR3"]
    assert {"s95_obs", "s95_exp"} <= set(rows[0])
    with open(out / "cms_8tev_emu_ctau.csv") as fh:
        crows = list(csv.DictReader(fh))
    assert {(float(r["m_c"]), float(r["dm"])) for r in crows} == {(220.0, 20.0), (220.0, 25.0)}
    assert all(r["mu95_obs"] != "" for r in crows)          # observed counts are configured for recasts
    assert not (out / "cms_exo_16_022_ctau.csv").exists()   # no skims of that analysis were given
    summary = json.loads((out / "s95_summary.json").read_text())
    assert summary["cms_exo_16_022"]["SR3"]["s95_obs"] == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("mode", ["democratic", "emu"])
def test_same_flavour_recasts_get_the_same_flavour_events(tmp_path, default_config, mode):
    """CMS-EXO-18-003 ee / mu-mu / e-mu read one multi-channel skim: each counts only the events of its
    channel, times the flavour factor of the recorded decay mode (democratic: 1; forced e-mu: 1/2 for
    e-mu and nothing for ee / mu-mu)."""
    cfg = json.loads(json.dumps(default_config))
    ct, sr, n = toy_mediator_events(20000, 1.0, np.random.default_rng(3), r_min_mm=0.2, r_max_mm=20,
                                    sr_edges_mm=(0.5, 1.0))
    k = len(sr)  # the same events once per channel: equal efficiencies in every channel
    skim = write_skim(tmp_path / "skims/cms_exo_18_003/bp4.h5",
                      events={"sr": np.tile(sr, 3), "mediator_ct_mm": np.tile(ct, (3, 1)),
                              "channel": np.repeat(np.array([0, 1, 2], dtype=np.int8), k)},
                      attrs={"sum_gen_weights": float(n), "ctau_cm": 1.0, "analysis": "cms_exo_18_003",
                             "channels": json.dumps({"emu": 0, "ee": 1, "mumu": 2}), "signal_decay_mode": mode})
    grid = [0.3, 1.0, 3.0]
    per_fb = {}
    for name in ("cms_exo_18_003_emu", "cms_exo_18_003_ee", "cms_exo_18_003_mumu"):
        entry = cfg["recast"]["analyses"][name]
        rows = rc.recast_ctau(cfg, name, entry, [str(skim)], grid)
        per_fb[name] = np.array([r["s_total"] for r in rows]) / entry["lumi_fb"] if rows else np.zeros(len(grid))
    one_channel = per_fb["cms_exo_18_003_emu"] / (0.5 if mode == "emu" else 1.0)
    # reference: the e-mu events alone in a single-channel skim
    ref_skim = write_skim(tmp_path / "ref/cms_exo_18_003/bp4.h5", events={"sr": sr, "mediator_ct_mm": ct},
                          attrs={"sum_gen_weights": float(n), "ctau_cm": 1.0, "analysis": "cms_exo_18_003"})
    entry = cfg["recast"]["analyses"]["cms_exo_18_003_emu"]
    ref = np.array([r["s_total"] for r in rc.recast_ctau(cfg, "cms_exo_18_003_emu", entry, [str(ref_skim)], grid)])
    np.testing.assert_allclose(one_channel, ref / entry["lumi_fb"], rtol=1e-9)
    if mode == "democratic":
        np.testing.assert_allclose(per_fb["cms_exo_18_003_ee"], one_channel, rtol=1e-9)
        np.testing.assert_allclose(per_fb["cms_exo_18_003_mumu"], one_channel, rtol=1e-9)
    else:
        assert not per_fb["cms_exo_18_003_ee"].any() and not per_fb["cms_exo_18_003_mumu"].any()
