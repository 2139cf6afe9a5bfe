"""Long-lived top squarks: CMS's Pythia 8 configuration, R-hadron proper times, cross sections, the stop recast."""

from __future__ import annotations

import copy
import json
import math

import awkward as ak
import numpy as np
import pytest
from scipy import stats

from softdisplaced.inference import recast as rc
from softdisplaced.generation import slha as slha_mod
from softdisplaced.generation import stops
from softdisplaced.samples import build_samples, stop_cross_section_fb


@pytest.fixture()
def stop_config(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["samples"]["stops"] = {"enabled": True, "masses": [700], "ctau_cm": 1.0, "events_per_chunk": 300, "n_chunks": 1}
    return cfg


def test_slha_template_gets_mass_and_width():
    text = stops.slha_text(700, 10.0)
    assert "1000006     700.00" in text and "XXX" not in text and "AAA" not in text
    width = float(text.split("DECAY   1000006")[1].split()[0])
    assert slha_mod.ctau_mm_from_width(width) == pytest.approx(10.0, rel=1e-9)
    # the three B-L decays of CMS's configuration survive: b e+, b mu+, b tau+ with 1/3 each
    assert text.count("3.33333333E-01  2  5") == 3


def test_stop_cross_sections_nlo_and_nnlo(stop_config):
    s, e, label = stop_cross_section_fb(stop_config, 700)
    assert s == pytest.approx(67.0476) and label == "stop_pair_nlo_nll"     # the issue: 0.0670 pb
    cfg = copy.deepcopy(stop_config)
    cfg["cross_sections"]["stop_pair"]["order"] = "nnlo_nnll"
    assert stop_cross_section_fb(cfg, 700)[0] == pytest.approx(78.3)
    # log-linear between table points: the geometric mean halfway
    mid = stop_cross_section_fb(stop_config, 650)[0]
    assert mid == pytest.approx(math.sqrt(174.599 * 67.0476), rel=1e-6)
    with pytest.raises(ValueError, match="outside the table range"):
        stop_cross_section_fb(cfg, 1700)                                  # NNLO+NNLL table ends at 1500 GeV
    spec = build_samples(stop_config)["stop700"]
    assert spec["source"] == "pythia8_stop" and spec["model"] == "stop" and spec["cross_section_fb"] == pytest.approx(67.0476)
    # several generated lifetimes per mass: stop<m>, stop<m>_ct<c*tau>, pooled by the recast (same m_stop)
    cfg["samples"]["stops"] = dict(stop_config["samples"]["stops"], ctau_cm=[1.0, 0.1, 10.0])
    cfg["cross_sections"]["stop_pair"]["order"] = "nlo_nll"
    specs = {n: s for n, s in build_samples(cfg).items() if s.get("model") == "stop"}
    assert {n: s["ctau_cm"] for n, s in specs.items()} == {"stop700": 1.0, "stop700_ct0p1": 0.1, "stop700_ct10": 10.0}
    assert {s["m_stop"] for s in specs.values()} == {700.0}


def test_pythia_stop_events_carry_the_stop_proper_time(stop_config):
    pytest.importorskip("pythia8mc")
    spec = build_samples(stop_config)["stop700"]
    ev = stops.generate_chunk(spec, stop_config, np.random.default_rng(3), 200)
    med = ev.mediators
    assert np.all(ak.to_numpy(ak.num(med, axis=1)) == 2)
    pid = np.abs(ak.to_numpy(ak.flatten(med.pid)))
    assert np.all(np.isin(pid, stops.STOP_RHADRON_IDS))
    ct = ak.to_numpy(ak.flatten(med.proper_ct_mm))
    # exponential with mean c*tau_0 = 10 mm (400 decays): KS test and the mean within 4 sigma
    assert stats.kstest(ct, "expon", args=(0, 10.0)).pvalue > 1e-3
    assert abs(ct.mean() - 10.0) < 4 * 10.0 / math.sqrt(len(ct))
    # the decay vertex is where the R-hadron's daughter stop (status 2) starts, at c*t = |dx| m / p
    p = ev.particles
    flat = ak.flatten(p)
    st = ak.to_numpy(flat.status)
    apid = np.abs(ak.to_numpy(flat.pid))
    dstops = (apid == stops.STOP_ID) & (st == 2) & (np.abs(ak.to_numpy(flat.x)) + np.abs(ak.to_numpy(flat.y)) > 0)
    decay_r = np.hypot(ak.to_numpy(ak.flatten(med.decay_x)), ak.to_numpy(ak.flatten(med.decay_y)))
    prod_r = np.hypot(ak.to_numpy(flat.x)[dstops], ak.to_numpy(flat.y)[dstops])
    assert np.allclose(np.sort(prod_r), np.sort(decay_r[decay_r > 0]), rtol=1e-6, atol=1e-9)


def test_generate_process_and_recast_a_tiny_stop_sample(tmp_path, stop_config):
    """A few hundred Pythia 8 stop events through the detector, the processor and the stop recast."""
    pytest.importorskip("pythia8mc")
    from softdisplaced.processing.analyses import build_analyses
    from softdisplaced.commands.generate import generate_file
    from softdisplaced.generation.delphes_writer import MEDIATOR_PIDS
    from softdisplaced.processing.skim import process_files, read_events

    cfg = stop_config
    cfg["limits"]["cls"]["method"] = "asymptotic"
    cfg["recast"]["stops"]["ctau_grid_cm"] = {"min": 0.1, "max": 10.0, "n_points": 3}
    spec = build_samples(cfg)["stop700"]
    ev = tmp_path / "stop700.root"
    generate_file(cfg, spec, 0, str(ev), 300)
    names = ["cms_exo_16_022", "cms_exo_18_003", "cms_exo_18_003_2016"]
    ana = {k: v for k, v in build_analyses(cfg, only_enabled=False).items() if k in names}
    outs = [tmp_path / "skims" / a / "stop700.h5" for a in names]
    process_files([str(ev)], [str(o) for o in outs], analyses=ana, sample=spec, efficiency=cfg["efficiency"],
                  processing=cfg["processing"], chunk=0, config_hash="t", package_versions={"t": "1"})
    e18, _ = read_events(outs[1], ["channel", "mediator_ct_mm"])
    assert set(np.unique(e18["channel"])) == {0, 1, 2}            # e-mu, ee and mu-mu from b e / b mu / b tau
    # lepton_vertex_max_mm reads each lepton's generator particle: a lepton of the same flavour and charge
    import uproot

    with uproot.open(ev) as fh:
        t = fh["Delphes"]
        pid = t["Particle/Particle.PID"].array()
        for coll, flavour in (("Electron", 11), ("Muon", 13)):
            idx = t[f"{coll}/{coll}.Particle"].array()
            assert ak.sum(ak.num(idx)) > 100
            assert ak.all(np.abs(pid[idx]) == flavour)
            assert ak.all(t[f"{coll}/{coll}.Charge"].array() == -np.sign(pid[idx]))
    assert np.all(np.isfinite(e18["mediator_ct_mm"])) and 1000612 in MEDIATOR_PIDS
    grid = np.array([0.1, 1.0, 10.0])
    counts = rc.stop_counts(cfg, [str(o) for o in outs], grid)
    for name in ("cms_exo_18_003_emu", "cms_exo_18_003_ee", "cms_exo_18_003_mumu"):
        assert counts[name][700.0]["S"].sum() > 0                  # every channel receives signal
    # the reweighted yield peaks near c*tau ~ 1 cm for the 1-100 mm d0 window
    s16 = counts["cms_exo_16_022"][700.0]["S"].sum(axis=1)
    assert s16[1] > s16[0] and s16[1] > s16[2]
    lim = rc.stop_limits(cfg, counts, grid)
    assert {r["analysis"] for r in lim} == {"cms_exo_16_022", "cms_exo_18_003_emu", "cms_exo_18_003_ee",
                                             "cms_exo_18_003_mumu", "cms_exo_18_003"}
    comb = {r["ctau_cm"]: r["mu95_exp"] for r in lim if r["analysis"] == "cms_exo_18_003"}
    emu = {r["ctau_cm"]: r["mu95_exp"] for r in lim if r["analysis"] == "cms_exo_18_003_emu"}
    assert all(comb[c] < emu[c] for c in grid)                      # combining channels strengthens the limit
    ws = rc.pyhf_workspace(cfg, counts, "cms_exo_18_003", 700.0, 1)
    assert len(ws["channels"]) == 15 and len(ws["observations"]) == 15
    json.dumps(ws)


def test_excluded_mass_interpolation_and_flags():
    m = [500, 700, 900, 1100]
    mass, flag = rc.excluded_mass(m, [0.1, 0.5, 2.0, 8.0])
    assert flag == "ok"
    # linear in log mu between 700 (0.5) and 900 (2.0): mu = 1 halfway
    assert mass == pytest.approx(800.0)
    assert rc.excluded_mass(m, [2, 3, 4, 5]) == (pytest.approx(float("nan"), nan_ok=True), "none")
    assert rc.excluded_mass(m, [0.1, 0.2, 0.3, 0.4]) == (1100.0, "above_range")
    rows = rc.mass_limit_rows([dict(analysis="a", m_stop=mm, ctau_cm=1.0, mu95_obs=mu, mu95_exp=mu * 2,
                                    mu95_exp_m1=mu, mu95_exp_p1=mu * 4) for mm, mu in zip(m, [0.1, 0.5, 2.0, 8.0])])
    r = rows[0]
    assert r["m_excl_exp_m1"] < r["m_excl_exp"] < r["m_excl_exp_p1"] and r["m_excl_obs"] == pytest.approx(800.0)


def test_mass_limit_figure_hepdata_table_and_validation_note(tmp_path, stop_config):
    from softdisplaced.inference import recast_outputs as ro
    from softdisplaced.inference.yields import write_csv

    lim = [dict(analysis=a, m_stop=m, ctau_cm=ct, mu95_obs=mu, mu95_exp=mu * 1.2, mu95_exp_m1=mu * 0.8,
                mu95_exp_p1=mu * 1.6) for a in ("cms_exo_16_022", "cms_exo_18_003") for ct in (0.1, 1.0, 10.0)
           for m, mu in zip((500, 700, 900, 1100), (0.05 * ct, 0.2, 1.5 / ct, 8.0))]
    rows = rc.mass_limit_rows(lim)
    files = ro.mass_limit_figure(rows, tmp_path / "mass_limits")
    assert [p.endswith(s) for p, s in zip(files, (".pdf", ".png"))] == [True, True]
    write_csv(tmp_path / "mass_limits.csv", rows, rc.MASS_LIMIT_COLUMNS)
    pytest.importorskip("hepdata_lib")
    t = ro.hepdata_table(tmp_path / "mass_limits.csv")
    assert [v.name for v in t.variables][0] == "CTAU" and len(t.variables) == 1 + 2 * 2
    # validation: ratio and the acceptance rule (tested only where CMS expects > min_events)
    grid = np.array([0.1, 1.0, 10.0])
    S = np.array([[3.8, 0.94, 0.16], [5.18 * 1.1, 4.15 * 0.6, 6.99], [0.76, 0.96, 5.75]])
    counts = {"cms_exo_16_022": {700.0: dict(S=S, E=0.1 * S, n_eff=np.full_like(S, 100.0))},
              "cms_exo_18_003_emu": {1500.0: dict(S=np.ones((3, 5)), E=np.zeros((3, 5)), n_eff=np.ones((3, 5)))}}
    cfg = copy.deepcopy(stop_config)
    cfg["recast"]["stops"]["validation"]["published"]["cms_exo_16_022"] = [
        p for p in cfg["recast"]["stops"]["validation"]["published"]["cms_exo_16_022"] if p["m_stop"] == 700]
    v = rc.validation_rows(cfg, counts, grid)
    by = {(r["ctau_cm"], r["region"]): r for r in v if r["analysis"] == "cms_exo_16_022"}
    assert by[(1.0, "SR1")]["ratio"] == pytest.approx(1.1) and by[(1.0, "SR1")]["within_tolerance"]
    assert by[(1.0, "SR2")]["within_tolerance"] is False          # 0.6: outside 30 %
    assert by[(0.1, "SR3")]["tested"] is False                    # CMS expects 0.16 < 0.5
    md = ro.validation_markdown(v, cfg, "cmd", "note")
    assert "| cms_exo_16_022 | 700 | 1 | SR2 | 4.15 |" in md and "NO" in md


def test_combined_exo_18_003_workspace_is_a_valid_pyhf_model(default_config):
    """The combined model (15 SRs of three channels) as a pyhf workspace: valid, with our S and B per SR."""
    pyhf = pytest.importorskip("pyhf")

    cfg = copy.deepcopy(default_config)
    names = ["cms_exo_18_003_emu", "cms_exo_18_003_ee", "cms_exo_18_003_mumu"]
    rng = np.random.default_rng(4)
    counts = {n: {700.0: dict(S=rng.uniform(0.5, 3.0, (1, 5)), E=np.full((1, 5), 0.05), xsec_rel=0.09)} for n in names}
    ws = pyhf.Workspace(rc.pyhf_workspace(cfg, counts, "cms_exo_18_003", 700.0, 0))
    model = ws.model()
    chans = [f"{n}_{r}" for n in names for r in cfg["recast"]["analyses"][n]["regions"]]
    assert sorted(model.config.channels) == sorted(chans)
    S = {c: v for c, v in zip(chans, np.concatenate([counts[n][700.0]["S"][0] for n in names]))}
    B = {c: v for c, v in zip(chans, np.concatenate([rc.region_inputs(cfg["recast"]["analyses"][n])[1] for n in names]))}
    pars = model.config.suggested_init()
    exp = model.expected_actualdata(pars)                       # mu = 1, nuisances at nominal
    got = dict(zip(model.config.channels, exp))
    assert all(got[c] == pytest.approx(S[c] + max(B[c], 1e-12), rel=1e-6) for c in chans)
    assert sorted(ws.data(model, include_auxdata=False)) == sorted(
        float(x) for n in names for x in rc.region_inputs(cfg["recast"]["analyses"][n])[0])


def test_report_and_hepdata_include_the_stop_recast(tmp_path):
    """With results/recast_stop present, REPORT.md gets the excluded-mass section and HEPData its table."""
    import yaml
    from report_factory import SETTINGS, make_results

    from softdisplaced.inference import recast_outputs as ro
    from softdisplaced.report import build_report
    from softdisplaced.inference.yields import write_csv

    settings = json.loads(json.dumps(SETTINGS))
    settings["report"] = {"png_dpi": 40}
    settings, res = make_results(tmp_path, settings)
    lim = [dict(analysis="cms_exo_18_003", m_stop=m, ctau_cm=ct, mu95_obs=mu, mu95_exp=mu, mu95_exp_m1=mu * 0.8,
                mu95_exp_p1=mu * 1.3) for ct in (1.0, 10.0) for m, mu in zip((700, 1100, 1500), (0.01, 0.3, 2.0))]
    rows = rc.mass_limit_rows(lim)
    write_csv(res / "recast_stop" / "mass_limits.csv", rows, rc.MASS_LIMIT_COLUMNS)
    ro.mass_limit_figure(rows, res / "recast_stop" / "mass_limits")
    build_report(settings, res)
    md = (res / "paper" / "REPORT.md").read_text()
    assert "## Long-lived top squarks" in md and "../recast_stop/mass_limits.png" in md
    docs = [d for d in yaml.safe_load_all((res / "paper" / "hepdata" / "submission.yaml").read_text()) if d]
    names = {d["name"]: d["data_file"] for d in docs if "name" in d}
    table = yaml.safe_load((res / "paper" / "hepdata" / names["Long-lived top squark: excluded mass"]).read_text())
    assert [v["value"] for v in table["independent_variables"][0]["values"]] == [1.0, 10.0]
    obs = table["dependent_variables"][0]["values"][0]["value"]
    assert obs == pytest.approx(rows[0]["m_excl_obs"], rel=1e-4)            # the CSV keeps 6 significant digits
