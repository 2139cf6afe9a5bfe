"""The nine NN features equal hand computations (spec section 4, docs/features.md)."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from softdisplaced.processing.features import (FEATURES, SKIM_FEATURES, STUDY_FEATURES, STUDY_JET_FEATURES,
                                              compute_features, study_jet_features)


def _inputs(events):
    flat = {k: ak.Array(np.array([e[k] for e in events], dtype=np.float64))
            for k in ("pt_y", "eta_y", "phi_y", "pt_x", "eta_x", "phi_x", "met", "met_phi", "ht")}
    for coll, fields in (("jet", ("pt", "eta", "phi")), ("ele", ("pt", "eta", "phi", "d0")),
                         ("mu", ("pt", "eta", "phi", "d0"))):
        counts = np.array([len(e[coll]) for e in events], dtype=np.int64)
        for i, f in enumerate(fields):
            values = np.array([o[i] for e in events for o in e[coll]], dtype=np.float64)
            flat[f"{coll}_{f}"] = ak.unflatten(values, counts)
    return flat


def _hand(e):
    """Independent, loop-based evaluation of the definitions."""
    def wrap(x):
        while x > math.pi:
            x -= 2 * math.pi
        while x < -math.pi:
            x += 2 * math.pi
        return x

    jets = [j for j in e["jet"] if j[0] > 20 and abs(j[1]) < 2.5]
    leps = [l for l in e["ele"] + e["mu"] if l[0] > 20 and abs(l[1]) < 2.4 and abs(l[3]) < 100]
    lead = (e["pt_y"], e["phi_y"]) if e["pt_y"] >= e["pt_x"] else (e["pt_x"], e["phi_x"])
    sub_pt = min(e["pt_y"], e["pt_x"])
    vx = sum(o[0] * math.cos(o[2]) for o in leps + jets)
    vy = sum(o[0] * math.sin(o[2]) for o in leps + jets)
    slep = sum(l[0] for l in leps)
    lx = sum(l[0] * math.cos(l[2]) for l in leps)
    ly = sum(l[0] * math.sin(l[2]) for l in leps)
    p = [np.array([pt * math.cos(ph), pt * math.sin(ph), pt * math.sinh(eta)])
         for pt, eta, ph in ((e["pt_y"], e["eta_y"], e["phi_y"]), (e["pt_x"], e["eta_x"], e["phi_x"]))]
    S = sum(np.outer(v, v) for v in p) / sum(v @ v for v in p)
    lam = sorted(np.linalg.eigvalsh(S), reverse=True)
    # transverse spherocity with candidate axes along each lepton
    pts = [(e["pt_y"], e["phi_y"]), (e["pt_x"], e["phi_x"])]
    best = min(sum(pt * abs(math.sin(ph - ax)) for pt, ph in pts) for _, ax in pts) / sum(pt for pt, _ in pts)
    # mT over "all leptons": exactly 0 for a single lepton (where the float difference leaves rounding)
    mt = math.sqrt(max(slep ** 2 - (lx ** 2 + ly ** 2), 0)) if len(leps) > 1 else 0.0
    return {
        "YDelpObj": e["met"] / math.sqrt(e["ht"]),
        "HtJet": sum(j[0] for j in jets),
        "dRLL": math.hypot(e["eta_y"] - e["eta_x"], wrap(e["phi_y"] - e["phi_x"])),
        "MtLeadLepMET": math.sqrt(2 * e["met"] * lead[0] * (1 - math.cos(lead[1] - e["met_phi"]))),
        "YUserObj": math.hypot(vx, vy) / math.sqrt(slep) if slep > 0 else 0.0,
        "dPhiLepMETSelObj": abs(wrap(lead[1] - math.atan2(vy, vx))),
        "Sphericity": 1.5 * (lam[1] + lam[2]),
        "alphaT": sub_pt / mt if mt > 0 else 0.0,
        "Spherocity": (math.pi / 2 * best) ** 2,
    }


EVENTS = [
    # e (y) and mu (x) of the pair, plus the event's full collections (pt, eta, phi[, d0])
    dict(pt_y=32.0, eta_y=0.4, phi_y=0.3, pt_x=25.0, eta_x=-1.1, phi_x=2.9, met=45.0, met_phi=-2.0, ht=140.0,
         jet=[(60.0, 1.2, -1.4), (15.0, 0.0, 0.0), (30.0, 3.0, 1.0)],
         ele=[(32.0, 0.4, 0.3, 0.5), (12.0, 0.1, 1.0, 0.1)], mu=[(25.0, -1.1, 2.9, 2.0)]),
    dict(pt_y=21.0, eta_y=-2.0, phi_y=-3.0, pt_x=55.0, eta_x=1.9, phi_x=3.1, met=10.0, met_phi=0.5, ht=80.0,
         jet=[], ele=[(21.0, -2.0, -3.0, 0.3)], mu=[(55.0, 1.9, 3.1, 150.0), (40.0, 0.2, 0.0, 1.0)]),
    dict(pt_y=70.0, eta_y=0.0, phi_y=1.0, pt_x=22.0, eta_x=0.5, phi_x=-1.5, met=120.0, met_phi=2.2, ht=300.0,
         jet=[(25.0, -2.4, 2.0), (100.0, 0.3, -0.2)], ele=[(70.0, 0.0, 1.0, 0.4)], mu=[(22.0, 0.5, -1.5, 3.0)]),
]


def test_nine_features_equal_hand_computation():
    got = compute_features(_inputs(EVENTS))
    assert list(got) == list(FEATURES)
    for i, e in enumerate(EVENTS):
        want = _hand(e)
        for k in FEATURES:
            assert got[k][i] == pytest.approx(want[k], rel=1e-12, abs=1e-12), (k, i)


def test_feature_values_of_a_simple_event():
    # back-to-back leptons in the transverse plane, both at eta = 0: dR = pi, Sphericity = 0
    # (collinear momentum axis), Spherocity = 0 (sin dphi = 0), no jet -> HtJet = 0
    e = dict(pt_y=30.0, eta_y=0.0, phi_y=0.0, pt_x=30.0, eta_x=0.0, phi_x=math.pi, met=20.0, met_phi=0.0,
             ht=100.0, jet=[], ele=[(30.0, 0.0, 0.0, 1.0)], mu=[(30.0, 0.0, math.pi, 1.0)])
    f = compute_features(_inputs([e]))
    assert f["dRLL"][0] == pytest.approx(math.pi)
    assert f["Sphericity"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["Spherocity"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["HtJet"][0] == 0.0
    assert f["YDelpObj"][0] == pytest.approx(2.0)
    assert f["MtLeadLepMET"][0] == pytest.approx(0.0, abs=1e-9)  # MET along the leading lepton
    # perpendicular leptons of equal pT: Spherocity = (pi/2 * 1/2)^2, Sphericity = 3/2 * 1/2
    e2 = dict(e, phi_x=math.pi / 2, mu=[(30.0, 0.0, math.pi / 2, 1.0)])
    f2 = compute_features(_inputs([e2]))
    assert f2["Spherocity"][0] == pytest.approx((math.pi / 4) ** 2)
    assert f2["Sphericity"][0] == pytest.approx(0.75)


def test_alphat_is_zero_when_all_leptons_hold_one_lepton():
    """The pair muon beyond |d0| = 100 mm is not among "all leptons": the one lepton left has mT = 0 exactly, so
    alphaT = 0 (docs/features.md), not pT / (the rounding of mT) ~ 1e8; a pair 1e-3 rad apart keeps its value."""
    rng = np.random.default_rng(3)
    events = [dict(pt_y=pt, eta_y=0.3, phi_y=phi, pt_x=25.0, eta_x=-0.7, phi_x=phi + 2.0, met=30.0, met_phi=0.0,
                   ht=100.0, jet=[], ele=[(pt, 0.3, phi, 0.5)], mu=[(25.0, -0.7, phi + 2.0, 150.0)])
              for pt, phi in zip(rng.uniform(20, 200, 200), rng.uniform(-3, 3, 200))]
    assert np.all(compute_features(_inputs(events))["alphaT"] == 0.0)
    close = dict(events[0], phi_x=events[0]["phi_y"] + 1e-3,
                 mu=[(25.0, -0.7, events[0]["phi_y"] + 1e-3, 1.0)])
    assert compute_features(_inputs([close]))["alphaT"][0] == pytest.approx(_hand(close)["alphaT"], rel=1e-6)
    assert _hand(close)["alphaT"] > 100


def test_features_in_plausible_ranges_on_random_events():
    rng = np.random.default_rng(1)
    n = 2000
    evs = []
    for _ in range(n):
        nj, ne, nm = rng.integers(0, 5), rng.integers(1, 3), rng.integers(1, 3)
        ele = [(float(rng.exponential(20) + 5), float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-np.pi, np.pi)),
                float(rng.exponential(5))) for _ in range(ne)]
        mu = [(float(rng.exponential(20) + 5), float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-np.pi, np.pi)),
               float(rng.exponential(5))) for _ in range(nm)]
        jet = [(float(rng.exponential(40) + 10), float(rng.uniform(-4, 4)), float(rng.uniform(-np.pi, np.pi)))
               for _ in range(nj)]
        evs.append(dict(pt_y=ele[0][0], eta_y=ele[0][1], phi_y=ele[0][2], pt_x=mu[0][0], eta_x=mu[0][1],
                        phi_x=mu[0][2], met=float(rng.exponential(30)), met_phi=float(rng.uniform(-np.pi, np.pi)),
                        ht=float(sum(o[0] for o in ele + mu + jet)), jet=jet, ele=ele, mu=mu))
    f = compute_features(_inputs(evs))
    assert np.all((f["Sphericity"] >= 0) & (f["Sphericity"] <= 1))
    assert np.all((f["Spherocity"] >= 0) & (f["Spherocity"] <= 1))
    assert np.all((f["dPhiLepMETSelObj"] >= 0) & (f["dPhiLepMETSelObj"] <= np.pi))
    assert np.all(f["dRLL"] >= 0) and np.all(f["HtJet"] >= 0) and np.all(f["YDelpObj"] >= 0)
    assert np.all(np.isfinite(np.stack(list(f.values()))))
    # the spot check: a random subset agrees with the loop evaluation
    for i in rng.choice(n, 25, replace=False):
        want = _hand(evs[i])
        for k in FEATURES:
            assert f[k][i] == pytest.approx(want[k], rel=1e-9, abs=1e-9), (k, i)


def test_study_jet_definition_drops_jets_with_neutral_constituents():
    """photon_veto (the study's card: jets holding a photon leave the Jet branch): HtJet and the
    visible-sum features use only jets without neutral constituents; the default uses every jet."""
    e = dict(pt_y=30.0, eta_y=0.0, phi_y=0.0, pt_x=25.0, eta_x=0.5, phi_x=2.0, met=20.0, met_phi=1.0, ht=150.0,
             jet=[(60.0, 0.1, 3.0), (40.0, -1.0, -1.0), (25.0, 2.0, 0.5)],
             ele=[(30.0, 0.0, 0.0, 1.0)], mu=[(25.0, 0.5, 2.0, 1.0)])
    inp = _inputs([e, dict(e, jet=[])])
    inp["jet_nneutrals"] = ak.unflatten(np.array([3, 0, 1], dtype=np.int64), np.array([3, 0]))
    phys = compute_features(inp)
    study = compute_features(inp, {"jets": {"pt_min": 20.0, "abs_eta_max": 2.5, "photon_veto": True}})
    assert phys["HtJet"][0] == pytest.approx(125.0) and study["HtJet"][0] == pytest.approx(40.0)
    only_second = compute_features(_inputs([dict(e, jet=[(40.0, -1.0, -1.0)])]))
    for k in ("YUserObj", "dPhiLepMETSelObj"):
        assert study[k][0] == pytest.approx(only_second[k][0])
        assert phys[k][0] != pytest.approx(only_second[k][0])
    assert study["HtJet"][1] == 0.0 and phys["HtJet"][1] == 0.0
    # the twins of the three jet sums: the study's jets whatever photon_veto says, beside the physical features
    both = compute_features(inp, None, FEATURES + tuple(STUDY_JET_FEATURES.values()))
    for base, twin in STUDY_JET_FEATURES.items():
        np.testing.assert_array_equal(both[twin], study[base])
        np.testing.assert_array_equal(both[base], phys[base])
    assert study_jet_features(FEATURES) == ["YDelpObj_photon_veto", "HtJet_photon_veto", "dRLL", "MtLeadLepMET",
                                            "YUserObj_photon_veto", "dPhiLepMETSelObj_photon_veto",
                                            "Sphericity", "alphaT", "Spherocity"]
    del inp["jet_nneutrals"]
    with pytest.raises(ValueError, match="Jet.NNeutrals"):
        compute_features(inp, {"jets": {"pt_min": 20.0, "abs_eta_max": 2.5, "photon_veto": True}})
    with pytest.raises(ValueError, match="YUserObj_photon_veto.*Jet.NNeutrals"):
        compute_features(inp, None, ["YUserObj_photon_veto"])


def test_ydelpobj_twin_uses_the_study_cards_ht():
    """YDelpObj_photon_veto = MET / sqrt(HTUnique) (the study card's ScalarHT), beside YDelpObj = MET / sqrt(HT);
    0 where HTUnique is 0; a clear error without the column."""
    e = dict(pt_y=30.0, eta_y=0.0, phi_y=0.0, pt_x=25.0, eta_x=0.5, phi_x=2.0, met=40.0, met_phi=1.0, ht=150.0,
             jet=[(60.0, 0.1, 3.0)], ele=[(30.0, 0.0, 0.0, 1.0)], mu=[(25.0, 0.5, 2.0, 1.0)])
    inp = _inputs([e, dict(e, met=12.0), dict(e, met=5.0)])
    inp["ht_unique"] = ak.Array(np.array([62.5, 81.0, 0.0]))
    twin = STUDY_FEATURES["YDelpObj"]
    f = compute_features(inp, None, ["YDelpObj", twin])
    np.testing.assert_allclose(f[twin], [40.0 / math.sqrt(62.5), 12.0 / math.sqrt(81.0), 0.0], rtol=1e-12)
    np.testing.assert_allclose(f["YDelpObj"], [40.0, 12.0, 5.0] / np.sqrt(150.0), rtol=1e-12)
    assert list(f) == ["YDelpObj", twin] and twin in SKIM_FEATURES
    del inp["ht_unique"]
    assert list(compute_features(inp, None, ["YDelpObj"])) == ["YDelpObj"]
    with pytest.raises(ValueError, match="YDelpObj_photon_veto.*ScalarHT.HTUnique"):
        compute_features(inp, None, [twin])
