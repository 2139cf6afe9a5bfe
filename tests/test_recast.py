"""Recasts: model-independent s95 per SR, error handling of the published counts, R95 vs c*tau."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from skim_factory import toy_mediator_events, write_skim

from softdisplaced.inference import recast as rc
from softdisplaced.inference import statistics as st


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
    for name, ctau in (("bp4_8tev", 1.0), ("dm25_8tev", 1.0)):   # the 8 TeV search takes the 8 TeV samples
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


def _era_skim(path, rng, channels, weights, ct, analysis):
    n = len(channels)
    return str(write_skim(path, events={"sr": np.full(n, 5, np.int8), "channel": np.asarray(channels, np.int8),
                                        "weight_gen": np.asarray(weights, float), "mediator_ct_mm": ct},
                          attrs={"sum_gen_weights": 1000.0, "ctau_cm": 1.0, "analysis": analysis,
                                 "channels": json.dumps({"emu": 0, "ee": 1, "mumu": 2})}, rng=rng))


def test_exo_18_003_channels_take_their_own_events_and_eras_add(tmp_path, default_config):
    """Synthetic skims with ee / e-mu / mu-mu events: each channel's recast counts only its events, and
    the 2016 and 2017-18 skims enter with their luminosities."""
    cfg = json.loads(json.dumps(default_config))
    rng = np.random.default_rng(5)
    ct = np.full((6, 2), 10.0)                      # c*t = c*tau_0: lifetime weight 1 at c*tau = 1 cm
    # e-mu (0) x1, ee (1) x2, mu-mu (2) x3 in 2017-18; in 2016 only e-mu, with weight 10
    sk = [_era_skim(tmp_path / "cms_exo_18_003/bp4.h5", rng, [0, 1, 1, 2, 2, 2], np.ones(6), ct, "cms_exo_18_003"),
          _era_skim(tmp_path / "cms_exo_18_003_2016/bp4.h5", rng, [0, 0, 0, 0, 0, 0], np.full(6, 10.0), ct,
                    "cms_exo_18_003_2016")]
    entries = cfg["recast"]["analyses"]
    sig = 903.0                                     # bp4: the study's fixed 220 GeV cross section
    out = {}
    for ch in ("emu", "ee", "mumu"):
        name = f"cms_exo_18_003_{ch}"
        c = rc.signal_counts(cfg, name, entries[name], sk, [1.0])
        out[ch] = c[("fast", 220.0, 20.0)]["S"][0]
    lumi = {ch: dict(rc.eras(f"cms_exo_18_003_{ch}", entries[f"cms_exo_18_003_{ch}"])) for ch in out}
    eff = 1.0 / 1000.0                             # per selected unit weight
    assert out["emu"][4] == pytest.approx(sig * eff * (lumi["emu"]["cms_exo_18_003"] * 1 + 35.9 * 60), rel=1e-9)
    assert out["ee"][4] == pytest.approx(sig * eff * lumi["ee"]["cms_exo_18_003"] * 2, rel=1e-9)
    assert out["mumu"][4] == pytest.approx(sig * eff * lumi["mumu"]["cms_exo_18_003"] * 3, rel=1e-9)
    assert all(v[:4].sum() == 0 for v in out.values())      # every event is in SR IV
    with pytest.raises(ValueError, match="no skims of"):
        rc.signal_counts(cfg, "cms_exo_18_003_ee", entries["cms_exo_18_003_ee"], sk[:1], [1.0])
    # recast.combined: the three channels' 15 SRs in one model
    members = rc.combined_models(cfg, list(entries))["cms_exo_18_003"]
    cfg["limits"]["cls"]["method"] = "asymptotic"
    comb = rc.recast_ctau_combined(cfg, "cms_exo_18_003", members, sk, [1.0])
    assert comb[0]["s_total"] == pytest.approx(sum(v.sum() for v in out.values()), rel=1e-9)
    single = {ch: rc.recast_ctau(cfg, f"cms_exo_18_003_{ch}", entries[f"cms_exo_18_003_{ch}"], sk, [1.0])[0]
              for ch in out}
    assert comb[0]["mu95_exp"] < min(r["mu95_exp"] for r in single.values())


def test_8tev_recast_uses_8tev_samples_and_cross_sections(tmp_path, default_config):
    from softdisplaced.generation.luminosity import relative_cross_section
    from softdisplaced.samples import cross_section_fb

    cfg = default_config
    s8, _, label = cross_section_fb(cfg, 220, 8)
    cfg13 = json.loads(json.dumps(cfg))
    cfg13["cross_sections"]["source"] = "wino_table"
    assert label == "wino_table_8tev_loglinear" and 0.35 < s8 / cross_section_fb(cfg13, 220)[0] < 0.45
    assert build_samples_8tev(cfg)["bp4_8tev"]["cross_section_fb"] == pytest.approx(s8)
    # the fast generator's luminosity model at 8 TeV reproduces the mass dependence of the 8 TeV table (< 5 %)
    lum = cfg["samples"]["sqrt_s_8tev"]["luminosity"]
    table = {float(k): v[0] for k, v in cfg["cross_sections"]["wino_table_8tev_fb"].items()}
    model = {m: relative_cross_section(m, 8000.0, lum["a"], lum["b"]) for m in table}
    ratio = np.array([table[m] / model[m] for m in sorted(table)])
    assert np.max(np.abs(ratio / np.exp(np.mean(np.log(ratio))) - 1)) < 0.05
    # 13 TeV skims are ignored by the 8 TeV recast, 8 TeV ones are normalised with the 8 TeV table
    rng = np.random.default_rng(1)
    ct = np.full((4, 2), 10.0)
    paths = [str(write_skim(tmp_path / f"cms_8tev_emu/{n}.h5", events={"sr": np.full(4, 1, np.int8), "mediator_ct_mm": ct},
                            attrs={"sum_gen_weights": 100.0, "ctau_cm": 1.0}, rng=rng)) for n in ("bp4", "bp4_8tev")]
    entry = cfg["recast"]["analyses"]["cms_8tev_emu"]
    c = rc.signal_counts(cfg, "cms_8tev_emu", entry, paths, [1.0])
    assert list(c) == [("fast", 220.0, 20.0)]
    assert c[("fast", 220.0, 20.0)]["S"][0, 0] == pytest.approx(s8 * 19.7 * 4 / 100.0, rel=1e-9)


def build_samples_8tev(cfg):
    from softdisplaced.samples import build_samples

    return build_samples(cfg)


def test_sample_energy_reaches_both_generators(default_config):
    """An 8 TeV copy runs the fast generator with sqrt(s) = 8 TeV and the 8 TeV luminosity fit, and Pythia 8
    with Beams:eCM = 8000."""
    from softdisplaced.generation import pythia8 as p8
    from softdisplaced.generation import with_sample_settings
    from softdisplaced.samples import build_samples

    spec = build_samples(default_config)["bp4_8tev"]
    s8 = with_sample_settings(default_config, spec)
    assert s8["generation"]["fast"]["sqrt_s_gev"] == 8000.0
    assert s8["generation"]["fast"]["luminosity"] == default_config["samples"]["sqrt_s_8tev"]["luminosity"]
    assert default_config["generation"]["fast"]["sqrt_s_gev"] == 13000.0        # the configuration is not modified
    cmds = p8.pythia_settings(dict(spec, source="pythia8"), s8, 7, slha_path="x.slha")
    assert "Beams:eCM = 8000.0" in cmds
    assert with_sample_settings(default_config, build_samples(default_config)["bp4"]) == default_config


@pytest.mark.parametrize("mode", ["democratic", "emu"])
def test_same_flavour_recasts_get_the_same_flavour_events(tmp_path, default_config, mode):
    """CMS-EXO-18-003 ee / mu-mu / e-mu read one multi-channel skim: each counts only the events of its
    channel, times the flavour factor of the recorded decay mode (democratic: 1; forced e-mu: 1/2 for
    e-mu and nothing for ee / mu-mu)."""
    cfg = json.loads(json.dumps(default_config))
    ct, sr, n = toy_mediator_events(20000, 1.0, np.random.default_rng(3), r_min_mm=0.2, r_max_mm=20,
                                    sr_edges_mm=(0.5, 1.0))
    k = len(sr)  # the same events once per channel: equal efficiencies in every channel
    # the same skim for both data-taking periods (cms_exo_18_003_2016 / cms_exo_18_003): S = sigma L eff
    skims = [str(write_skim(tmp_path / f"skims/{a}/bp4.h5",
                            events={"sr": np.tile(sr, 3), "mediator_ct_mm": np.tile(ct, (3, 1)),
                                    "channel": np.repeat(np.array([0, 1, 2], dtype=np.int8), k)},
                            attrs={"sum_gen_weights": float(n), "ctau_cm": 1.0, "analysis": a,
                                   "channels": json.dumps({"emu": 0, "ee": 1, "mumu": 2}), "signal_decay_mode": mode}))
             for a in ("cms_exo_18_003", "cms_exo_18_003_2016")]
    grid = [0.3, 1.0, 3.0]
    per_fb = {}
    for name in ("cms_exo_18_003_emu", "cms_exo_18_003_ee", "cms_exo_18_003_mumu"):
        entry = cfg["recast"]["analyses"][name]
        rows = rc.recast_ctau(cfg, name, entry, skims, grid)
        per_fb[name] = np.array([r["s_total"] for r in rows]) / entry["lumi_fb"] if rows else np.zeros(len(grid))
    one_channel = per_fb["cms_exo_18_003_emu"] / (0.5 if mode == "emu" else 1.0)
    # reference: the e-mu events alone in a single-channel skim
    ref_skims = [str(write_skim(tmp_path / f"ref/{a}/bp4.h5", events={"sr": sr, "mediator_ct_mm": ct},
                                attrs={"sum_gen_weights": float(n), "ctau_cm": 1.0, "analysis": a}))
                 for a in ("cms_exo_18_003", "cms_exo_18_003_2016")]
    entry = cfg["recast"]["analyses"]["cms_exo_18_003_emu"]
    ref = np.array([r["s_total"] for r in rc.recast_ctau(cfg, "cms_exo_18_003_emu", entry, ref_skims, grid)])
    np.testing.assert_allclose(one_channel, ref / entry["lumi_fb"], rtol=1e-9)
    if mode == "democratic":
        np.testing.assert_allclose(per_fb["cms_exo_18_003_ee"], one_channel, rtol=1e-9)
        np.testing.assert_allclose(per_fb["cms_exo_18_003_mumu"], one_channel, rtol=1e-9)
    else:
        assert not per_fb["cms_exo_18_003_ee"].any() and not per_fb["cms_exo_18_003_mumu"].any()


def _emu_with_vertices(number, e_xyz, mu_xyz, d0_e=0.6, d0_mu=0.7):
    """An e-mu event passing CMS-EXO-16-022's selection whose leptons' generator particles start at e_xyz, mu_xyz."""
    from delphes_factory import particle, simple_emu_event

    ev = simple_emu_event(number=number, pt_e=50, pt_mu=50, d0_e=d0_e, d0_mu=d0_mu, mediators_ctau=[5.0, 7.0])
    ev["particles"] += [particle(11, x=e_xyz[0], y=e_xyz[1], z=e_xyz[2]),
                        particle(-13, x=mu_xyz[0], y=mu_xyz[1], z=mu_xyz[2])]   # after the two mediators
    ev["electrons"][0]["Particle"], ev["muons"][0]["Particle"] = 2, 3
    return ev


def test_lepton_vertex_requirement_keeps_only_leptons_produced_inside_the_efficiency_volume(tmp_path, default_config,
                                                                                            caplog):
    """CMS-EXO-16-022 / 18-003 apply the 8 TeV efficiency tables only to leptons produced at rxy < 40 mm,
    |z| < 300 mm (their validity volume): weight_d0eff is the d0 product inside, 0 outside."""
    import copy

    from delphes_factory import write_delphes
    from processing_helpers import run_analyses
    from softdisplaced.processing.efficiency import load_tables

    assert default_config["analyses"]["definitions"]["cms_exo_16_022"]["lepton_vertex_max_mm"] == {"rxy": 40,
                                                                                                    "abs_z": 300}
    evs = [_emu_with_vertices(0, (10.0, -20.0, 50.0), (3.0, 4.0, -120.0)),   # both inside
           _emu_with_vertices(1, (30.0, 26.0, 0.0), (0.0, 0.0, 0.0)),        # e at rxy 39.7 mm: inside
           _emu_with_vertices(2, (30.0, 27.0, 0.0), (0.0, 0.0, 0.0)),        # e at rxy 40.4 mm: outside
           _emu_with_vertices(3, (1.0, 1.0, 0.0), (0.0, 5.0, -310.0)),       # mu at |z| 310 mm: outside
           _emu_with_vertices(4, (0.0, 0.0, 0.0), (-80.0, 0.0, 10.0), d0_e=3.0, d0_mu=9.0)]   # mu at rxy 80 mm
    f = write_delphes(tmp_path / "v.root", evs)
    ev = run_analyses(default_config, [f], tmp_path, names=("cms_exo_16_022",))[0]["cms_exo_16_022"]["events"]
    assert list(ev["event_number"]) == [0, 1, 2, 3, 4]          # the requirement is a weight, not a cut
    t = load_tables(default_config["efficiency"])
    d0 = t["electron"](np.array([0.6, 0.6, 0.6, 0.6, 3.0])) * t["muon"](np.array([0.7, 0.7, 0.7, 0.7, 9.0]))
    assert ev["weight_d0eff"] == pytest.approx(d0 * np.array([1, 1, 0, 0, 0]), rel=1e-6)

    cfg = copy.deepcopy(default_config)
    cfg["analyses"]["definitions"]["cms_exo_16_022"]["lepton_vertex_max_mm"] = None
    ev0 = run_analyses(cfg, [f], tmp_path, names=("cms_exo_16_022",), tag="off")[0]["cms_exo_16_022"]["events"]
    assert ev0["weight_d0eff"] == pytest.approx(d0, rel=1e-6)

    for tag, kw in (("novertex", dict(drop=["Particle/Particle.X"])), ("nolink", dict(drop=["Muon/Muon.Particle"]))):
        g = write_delphes(tmp_path / f"{tag}.root", evs, **kw)
        with pytest.raises(ValueError, match=f"{tag}.root.*generator record"):
            run_analyses(default_config, [g], tmp_path, names=("cms_exo_16_022",), tag=tag)
    # a user's Delphes file without the generator record: processed, the requirement not applied, with a warning
    g = write_delphes(tmp_path / "notruth.root", evs, truth=False)
    with caplog.at_level("WARNING"):
        evt = run_analyses(default_config, [g], tmp_path, names=("cms_exo_16_022",), tag="nt")[0]["cms_exo_16_022"]
    assert evt["events"]["weight_d0eff"] == pytest.approx(d0, rel=1e-6)
    assert "lepton_vertex_max_mm of cms_exo_16_022 not applied" in caplog.text
    bad = [_emu_with_vertices(0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))]
    bad[0]["muons"][0]["Particle"] = 7                               # the event has 4 particles
    h = write_delphes(tmp_path / "badindex.root", bad)
    with pytest.raises(ValueError, match="badindex.root.*1 Muon.Particle indices"):
        run_analyses(default_config, [h], tmp_path, names=("cms_exo_16_022",), tag="bad")
