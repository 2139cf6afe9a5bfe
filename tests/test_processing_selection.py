"""Selection, cutflow, signal regions, weights and truth of the processor on hand-made Delphes files."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from delphes_factory import jet, lepton, make_event, particle, simple_emu_event, write_delphes
from processing_helpers import run_analyses
from softdisplaced.processing.analyses import build_analyses, threshold_scan_name
from softdisplaced.config import ConfigError
from softdisplaced.processing.efficiency import load_tables


def _cutflow_events():
    ev = []
    w = lambda i: float(2 ** i)  # noqa: E731  distinct weights: the weighted cutflow identifies the events
    ev.append(simple_emu_event(number=0, weight=w(0), d0_e=0.6, d0_mu=0.7))                   # passes
    ev.append(make_event(electrons=[lepton(30, 0.1, 0.0, -1, 0.5)], number=1, weight=w(1)))  # no muon
    ev.append(make_event(electrons=[lepton(30, 0.1, 0.0, -1, 0.5), lepton(22, 0.5, 1.0, -1, 0.5)],
                         muons=[lepton(25, -0.5, 2.5, 1, 0.5)], number=2, weight=w(2)))        # two electrons
    ev.append(simple_emu_event(number=3, weight=w(3), iso_e=0.2))                            # e not isolated
    ev.append(simple_emu_event(number=4, weight=w(4), eta_e=2.45))                           # e outside |eta| < 2.4
    ev.append(simple_emu_event(number=5, weight=w(5), pt_e=17.0))                            # e fails pT > 20
    ev.append(simple_emu_event(number=6, weight=w(6), q_e=+1))                               # same charge
    ev.append(simple_emu_event(number=7, weight=w(7), d0_e=0.15))                            # d0 below window
    ev.append(simple_emu_event(number=8, weight=w(8), d0_mu=150.0))                          # d0 above window
    e9 = simple_emu_event(number=9, weight=w(9), d0_e=0.3, d0_mu=0.3)
    e9["electrons"].append(lepton(12.0, 0.0, 1.0, +1, 0.5))                                  # soft extra e: ignored
    ev.append(e9)
    ev.append(simple_emu_event(number=10, weight=w(10), pt_mu=20.0))                         # pT = 20 exactly: fails
    return ev


def test_each_cut_removes_exactly_its_events(default_config, tmp_path):
    f = write_delphes(tmp_path / "cutflow.root", _cutflow_events())
    out, _ = run_analyses(default_config, [f], tmp_path, names=("soft_emu", "soft_emu_loose"))
    w = lambda ids: float(sum(2 ** i for i in ids))  # noqa: E731
    cf = out["soft_emu"]["cutflow"]
    assert cf["names"] == ["all", "lepton_pair", "opposite_charge", "pt", "d0_window"]
    survivors = [list(range(11)), [0, 5, 6, 7, 8, 9, 10], [0, 5, 7, 8, 9, 10], [0, 7, 8, 9], [0, 9]]
    assert list(cf["raw"]) == [len(s) for s in survivors]
    assert list(cf["weighted"]) == [w(s) for s in survivors]
    ev = out["soft_emu"]["events"]
    assert list(ev["event_number"]) == [0, 9]
    assert list(ev["sr"]) == [2, 1]
    assert list(ev["weight_gen"]) == [1.0, 512.0]
    loose = out["soft_emu_loose"]
    assert loose["cutflow"]["names"] == ["all", "lepton_pair", "opposite_charge", "pt"]
    assert list(loose["events"]["event_number"]) == [0, 3, 7, 8, 9]
    # the loose analysis keeps the SR label of the study's definitions (0: d0_e = 0.15 mm is in no SR)
    assert list(loose["events"]["sr"]) == [2, 1, 0, 1, 1]
    assert out["soft_emu"]["attrs"]["n_events_processed"] == 11
    assert out["soft_emu"]["attrs"]["sum_gen_weights"] == w(range(11))


def test_signal_regions_at_the_d0_boundaries(default_config, tmp_path):
    pairs = [(0.2, 0.3), (0.5, 0.6), (0.5001, 0.6), (1.0, 2.0), (1.0001, 2.0), (100.0, 2.0), (99.9, 2.0),
             (0.3, 0.3), (-0.6, 0.7), (2.0, -1.5), (0.21, 100.0)]
    expect = {1: 1, 2: 2, 3: 2, 4: 3, 6: 3, 7: 1, 8: 2, 9: 3}  # event number -> SR; others not selected
    evs = [simple_emu_event(number=i, d0_e=a, d0_mu=b) for i, (a, b) in enumerate(pairs)]
    f = write_delphes(tmp_path / "sr.root", evs)
    ev = run_analyses(default_config, [f], tmp_path)[0]["soft_emu"]["events"]
    assert dict(zip(ev["event_number"].tolist(), ev["sr"].tolist())) == expect
    assert ev["sr"].dtype == np.int8
    # the skim keeps the signed d0 of the file (in mm)
    assert ev["d0_e"][list(ev["event_number"]).index(8)] == pytest.approx(-0.6)


def _leptons_from_the_origin(evs):
    """Every lepton linked to a generator particle produced at the origin (the CMS analyses' lepton_vertex_max_mm
    reads the leptons' production vertices)."""
    for e in evs:
        for lep in e["electrons"] + e["muons"]:
            lep["Particle"] = len(e["particles"])
            e["particles"].append(particle(11))
    return evs


def test_cms_8tev_jet_veto_and_delta_r(default_config, tmp_path):
    base = dict(pt_e=30.0, pt_mu=30.0, d0_e=0.3, d0_mu=0.3, eta_e=0.0, phi_e=0.0, eta_mu=0.0, phi_mu=2.0)
    evs = [
        simple_emu_event(number=0, **base),                                   # passes
        simple_emu_event(number=1, jets=[jet(15.0, 0.3, 0.0)], **base),       # jet pT > 10 within dR 0.3 of e: vetoed
        simple_emu_event(number=2, jets=[jet(9.0, 0.3, 0.0)], **base),        # soft jet: kept
        simple_emu_event(number=3, jets=[jet(50.0, 0.0, -2.0)], **base),      # far jet: kept
        simple_emu_event(number=4, jets=[jet(11.0, 0.0, 2.4)], **base),       # dR(jet, mu) = 0.4: vetoed
        simple_emu_event(number=5, **dict(base, phi_mu=0.4)),                 # dR(e, mu) = 0.4 < 0.5: fails
        simple_emu_event(number=6, **dict(base, d0_mu=25.0)),                 # d0 > 2 cm: fails
        simple_emu_event(number=7, **dict(base, pt_e=24.0)),                  # pT < 25: fails
    ]
    f = write_delphes(tmp_path / "veto.root", _leptons_from_the_origin(evs))
    out = run_analyses(default_config, [f], tmp_path, names=("cms_8tev_emu",))[0]["cms_8tev_emu"]
    assert out["cutflow"]["names"] == ["all", "lepton_pair", "opposite_charge", "pt", "delta_r", "jet_veto",
                                       "d0_window"]
    assert list(out["cutflow"]["raw"]) == [8, 8, 8, 7, 6, 4, 3]
    assert list(out["events"]["event_number"]) == [0, 2, 3]


def test_exo_18_003_channels_and_signal_regions(default_config, tmp_path):
    evs = [
        # ee: leading e (pT 450, d0 0.3) and subleading (80, 0.3) -> SR_I_high
        make_event(electrons=[lepton(80, 0.2, 0.0, -1, 0.3), lepton(450, -0.3, 2.0, 1, 0.3)], number=0),
        # mumu: leading (60, d0 0.3 = y), subleading (50, d0 0.7 = x) -> SR_II (x 0.5-100, y 0.1-0.5)
        make_event(muons=[lepton(50, 0.2, 0.0, -1, 0.7), lepton(60, -0.3, 2.0, 1, 0.3)], number=1),
        # e-mu: mu (x) d0 0.3, e (y) d0 0.7 -> SR_III
        simple_emu_event(number=2, pt_e=50, pt_mu=50, d0_e=0.7, d0_mu=0.3, eta_e=0.3, eta_mu=-0.5),
        # e-mu at |eta| = 2.0 > 1.5: not selected
        simple_emu_event(number=3, pt_e=50, pt_mu=50, eta_e=2.0),
        # ee + mu: no channel (three leptons)
        make_event(electrons=[lepton(80, 0.2, 0.0, -1, 0.3), lepton(90, -0.3, 2.0, 1, 0.3)],
                   muons=[lepton(60, 0.0, 1.0, 1, 0.3)], number=4),
        # e-mu, both d0 in 0.5-100 -> SR_IV; muon pT 150 irrelevant outside SR_I
        simple_emu_event(number=5, pt_e=50, pt_mu=150, d0_e=3.0, d0_mu=0.8, eta_e=0.3, eta_mu=-0.5),
    ]
    f = write_delphes(tmp_path / "exo18.root", _leptons_from_the_origin(evs))
    out = run_analyses(default_config, [f], tmp_path, names=("cms_exo_18_003",))[0]["cms_exo_18_003"]
    ev = out["events"]
    assert list(ev["event_number"]) == [0, 1, 2, 5]
    assert list(ev["channel"]) == [1, 2, 0, 0]
    assert list(ev["sr"]) == [2, 3, 4, 5]
    assert list(ev["pt_l1"]) == [450.0, 60.0, 50.0, 50.0]  # leading (ee, mumu) / electron (e-mu)
    assert "pt_e" not in ev


def test_d0_efficiency_weight_and_truth(default_config, tmp_path):
    evs = [simple_emu_event(number=0, d0_e=0.5, d0_mu=0.5, mediators_ctau=[3.5, 12.25]),
           simple_emu_event(number=1, d0_e=15.3, d0_mu=25.5, mediators_ctau=[0.5, 80.0])]
    f = write_delphes(tmp_path / "w.root", evs)
    ev = run_analyses(default_config, [f], tmp_path)[0]["soft_emu"]["events"]
    # table bin [0, 1 mm): e 0.8926, mu 0.9762; beyond: the study's steps (line evaluated at 16 mm / 26 mm)
    e15 = 0.6938 + (0.05 - 0.6938) * (16 - 10) / 90
    mu25 = 0.8090 + (0.5 - 0.8090) * (26 - 20) / 80
    assert ev["weight_d0eff"] == pytest.approx([0.8926 * 0.9762, e15 * mu25], rel=1e-6)
    assert ev["mediator_ct_mm"].shape == (2, 2)
    assert ev["mediator_ct_mm"].tolist() == [[3.5, 12.25], [0.5, 80.0]]
    g = write_delphes(tmp_path / "notruth.root", evs, truth=False)
    ev2 = run_analyses(default_config, [g], tmp_path, tag="nt")[0]["soft_emu"]["events"]
    assert "mediator_ct_mm" not in ev2


def test_efficiency_reproduces_the_studys_weights(default_config, reference_dir):
    import uproot

    tables = load_tables(default_config["efficiency"])
    t = uproot.open(reference_dir / "authors_ntuples" / "BP_200_20_20.root")["varTree"]
    a = t.arrays(["D0El", "D0Mu", "wtelF", "wtmuF"], library="np")
    assert np.max(np.abs(tables["electron"](a["D0El"]) - a["wtelF"])) < 1e-6
    assert np.max(np.abs(tables["muon"](a["D0Mu"]) - a["wtmuF"])) < 1e-6
    assert (a["D0El"] > 10).sum() > 100  # the extrapolated range is exercised


def test_threshold_scan_and_analysis_choice_are_configuration(default_config):
    cfg = copy.deepcopy(default_config)
    names = list(build_analyses(cfg))
    assert names[:7] == ["soft_emu", "soft_emu_loose", "soft_emu_nn_background", "cms_exo_16_022", "cms_8tev_emu",
                         "cms_exo_18_003", "cms_exo_18_003_2016"]   # CMS-EXO-18-003 with the 2016 thresholds
    assert names[7:] == ["soft_emu_pt25", "soft_emu_pt30", "soft_emu_pt35", "soft_emu_pt42_40"]
    cfg["analyses"]["threshold_scan"]["thresholds"].append([27.5, 22])
    a = build_analyses(cfg)
    assert threshold_scan_name("soft_emu", [27.5, 22]) == "soft_emu_pt27p5_22"
    assert a["soft_emu_pt27p5_22"]["pt_min"] == {"emu": [27.5, 22.0]}
    assert a["soft_emu_pt27p5_22"]["signal_regions"] == a["soft_emu"]["signal_regions"]
    cfg["processing"]["analyses"] = ["soft_emu", "cms_exo_18_003"]
    assert list(build_analyses(cfg)) == ["soft_emu", "cms_exo_18_003"]
    cfg["processing"]["analyses"] = ["nope"]
    with pytest.raises(ConfigError, match="nope"):
        build_analyses(cfg)
