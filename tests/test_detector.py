"""Detector simulation on hand-built truth events (docs/contracts.md truth record)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from softdisplaced.config import ConfigError
from softdisplaced.generation.detector import binned_efficiency, detector_settings, simulate

FIELDS = ("pid", "status", "px", "py", "pz", "e", "mass", "x", "y", "z", "t", "m1", "m2", "d1", "d2", "charge")
PERFECT_LEPTONS = {  # efficiency 1 and no smearing, to test the geometry alone
    lep: {"tracking_efficiency": {"eta_edges": [0, 2.5], "pt_edges": [0.1, 1e9], "values": [[1.0]]},
          "identification_efficiency": {"eta_edges": [0, 2.5], "pt_edges": [0.1, 1e9], "values": [[1.0]]},
          "momentum_resolution": {"eta_edges": [0, 2.5], "a": [0.0], "b": [0.0]}}
    for lep in ("electron", "muon")}
PERFECT = {**PERFECT_LEPTONS, "energy_flow": {"enabled": False}}  # and perfect energy flow


def particle(pid, pt, eta, phi, x=0.0, y=0.0, z=0.0, status=1, mass=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    charge = {11: -1, -11: 1, 13: -1, -13: 1, 211: 1, -211: -1}.get(pid, 0)
    return dict(pid=pid, status=status, px=px, py=py, pz=pz, e=float(np.sqrt(px**2 + py**2 + pz**2 + mass**2)),
                mass=mass, x=x, y=y, z=z, t=0.0, m1=-1, m2=-1, d1=-1, d2=-1, charge=float(charge))


def events(*evs):
    return ak.Array({"particles": [list(e) for e in evs], "weight": [1.0] * len(evs)})


def test_tracker_volume_veto():
    ev = events([particle(13, 30, 0.5, 0.1, x=1200.0),           # inside: r = 1.2 m
                 particle(-13, 30, -0.5, 2.0, x=0.0, y=1300.0),   # outside: r = 1.3 m > 1.29 m
                 particle(11, 30, 1.0, -2.0, z=3100.0),           # outside: |z| = 3.1 m > 3.0 m
                 particle(-11, 30, 1.0, 1.0, x=900.0, y=900.0, z=2900.0)])  # inside: r = 1.27 m
    reco = simulate(ev, PERFECT, np.random.default_rng(1))
    assert ak.to_list(reco["Muon"].Charge) == [[-1]]
    assert ak.to_list(reco["Electron"].Charge) == [[1]]
    assert reco["Muon"].Particle[0, 0] == 0 and reco["Electron"].Particle[0, 0] == 3


def test_efficiency_tables_are_applied():
    n = 20_000
    rng = np.random.default_rng(2)
    mu = [[particle(13, 30.0, float(eta), 0.0)] for eta in rng.uniform(-1.4, 1.4, n)]
    el = [[particle(11, 30.0, float(eta), 0.0)] for eta in rng.uniform(1.6, 2.4, n)]
    cfg = detector_settings({})
    fr_mu = ak.sum(ak.num(simulate(events(*mu), cfg, np.random.default_rng(3))["Muon"])) / n
    fr_el = ak.sum(ak.num(simulate(events(*el), cfg, np.random.default_rng(4))["Electron"])) / n
    for frac, exp in ((fr_mu, 0.99 * 0.95), (fr_el, 0.83 * 0.85)):
        assert abs(frac - exp) < 4 * np.sqrt(exp * (1 - exp) / n), (frac, exp)
    # outside the tables: muon at |eta| 2.45 (> 2.4) never found
    far = simulate(events(*[[particle(13, 30.0, 2.45, 0.0)] for _ in range(200)]), cfg, np.random.default_rng(5))
    assert ak.sum(ak.num(far["Muon"])) == 0


def test_binned_efficiency_lookup():
    tab = {"eta_edges": [0, 1.5, 2.5], "pt_edges": [0.1, 1, 100, 1e9], "values": [[0.73, 0.95, 0.99], [0.5, 0.83, 0.9]]}
    got = binned_efficiency(tab, np.array([0.0, 1.0, 2.0, 2.0, 2.6, 1.0]), np.array([0.5, 50, 50, 200, 50, 0.05]))
    np.testing.assert_allclose(got, [0.73, 0.95, 0.83, 0.9, 0.0, 0.0])


def test_isolation_of_hand_built_event():
    """The study's card: cones 0.3 (e) / 0.4 (mu), particles above 3 GeV, e and mu not counted."""
    ev = events([particle(13, 20.0, 0.0, 0.0),        # the muon
                 particle(211, 4.0, 0.0, 0.1),        # Delta R(mu) = 0.1: counts
                 particle(-211, 5.0, 0.0, 0.35),      # Delta R(mu) = 0.35: inside the muon cone 0.4
                 particle(211, 6.0, 0.0, -0.45),      # Delta R(mu) = 0.45: outside
                 particle(14, 10.0, 0.05, 0.0),       # neutrino: invisible
                 particle(211, 2.5, 0.0, 0.05),       # below the 3 GeV threshold
                 particle(22, 3.5, -0.1, -0.1),       # photon at Delta R(mu) = 0.14: counts
                 particle(11, 10.0, 0.2, 0.0),        # an electron at Delta R(mu) = 0.2: a lepton, not counted
                 particle(-11, 30.0, 1.0, 1.0),       # a far electron (cone 0.3)
                 particle(130, 4.0, 1.25, 1.0),       # neutral hadron at Delta R(e) = 0.25: counts
                 particle(211, 4.0, 1.0, 1.35)])      # Delta R(e) = 0.35: outside the electron cone
    reco = simulate(ev, PERFECT, np.random.default_rng(1))
    assert reco["Muon"].IsolationVar[0, 0] == pytest.approx((4.0 + 5.0 + 3.5) / 20.0, rel=1e-5)
    # electrons by pT: the far one (the K0L at Delta R 0.25), the near one (the 4 GeV pi+ at Delta R 0.22)
    assert ak.to_list(reco["Electron"].PT[0]) == pytest.approx([30.0, 10.0])
    assert ak.to_list(reco["Electron"].IsolationVar[0]) == pytest.approx([4.0 / 30.0, 4.0 / 10.0], rel=1e-5)
    # counting leptons (the card does not): the near electron enters the muon's sum and vice versa,
    # and the near electron (IsolationVar 2.4) exceeds the card's PTRatioMax = 1.5 and is not stored
    cfg = {**PERFECT, "isolation": {"include_leptons": True, "ratio_max": 1.5}}
    reco = simulate(ev, cfg, np.random.default_rng(1))
    assert reco["Muon"].IsolationVar[0, 0] == pytest.approx((4.0 + 5.0 + 3.5 + 10.0) / 20.0, rel=1e-5)
    assert ak.to_list(ak.num(reco["Electron"])) == [1]
    cfg["isolation"]["ratio_max"] = None
    assert ak.to_list(ak.num(simulate(ev, cfg, np.random.default_rng(1))["Electron"])) == [2]
    # only charged particles counted
    cfg = {**PERFECT, "isolation": {"particles": {"photons": False, "neutral_hadrons": False}}}
    reco = simulate(ev, cfg, np.random.default_rng(1))
    assert reco["Muon"].IsolationVar[0, 0] == pytest.approx((4.0 + 5.0) / 20.0, rel=1e-5)


def test_d0_and_dz_of_hand_built_lepton():
    # vertex (1, 2, 5) mm, momentum (10, 0, 10) GeV: d0 = |x py - y px| / pT = 2 mm, dz = z - (x px + y py) pz / pT^2 = 4 mm
    p = dict(particle(11, 10.0, np.arcsinh(1.0), 0.0), x=1.0, y=2.0, z=5.0)
    reco = simulate(events([p]), PERFECT, np.random.default_rng(1))
    assert reco["Electron"].D0[0, 0] == pytest.approx(2.0, rel=1e-6)
    assert reco["Electron"].DZ[0, 0] == pytest.approx(4.0, rel=1e-6)
    # optional Gaussian smearing of d0 (20 um)
    many = events(*[[p] for _ in range(4000)])
    sm = simulate(many, {**PERFECT, "d0_smearing_um": 20.0}, np.random.default_rng(2))
    d0 = ak.to_numpy(ak.flatten(sm["Electron"].D0))
    assert d0.std() == pytest.approx(0.020, rel=0.1)
    assert d0.mean() == pytest.approx(2.0, abs=0.002)


def test_momentum_resolution_applied():
    n = 20_000
    ev = events(*[[particle(11, 50.0, 0.2, 0.0)] for _ in range(n)])
    cfg = {**detector_settings({}), "electron": {**PERFECT["electron"],
                                                 "momentum_resolution": detector_settings({})["electron"]["momentum_resolution"]}}
    pt = ak.to_numpy(ak.flatten(simulate(ev, cfg, np.random.default_rng(3))["Electron"].PT))
    exp = np.sqrt(0.03 ** 2 + (50 * 1.3e-3) ** 2)  # relative resolution in |eta| < 0.5
    assert np.std(pt / 50.0) == pytest.approx(exp, rel=0.05)
    assert np.mean(pt) == pytest.approx(50.0, rel=0.003)


def test_jets_met_and_ht():
    iso_mu = particle(13, 30.0, 0.0, 0.0)
    jet1 = [particle(211, 15.0, 1.0, 2.0), particle(-211, 10.0, 1.1, 2.05), particle(22, 5.0, 0.95, 1.95)]
    jet2 = [particle(211, 8.0, -1.5, -1.0), particle(-211, 8.0, -1.45, -1.05)]  # 16 GeV < 20: no jet
    nu = particle(12, 40.0, 0.0, 3.0)
    ev = events([iso_mu, *jet1, *jet2, nu], [particle(211, 5.0, 0.0, 0.0)])
    reco = simulate(ev, PERFECT, np.random.default_rng(1))
    assert ak.to_list(ak.num(reco["Jet"])) == [1, 0]
    vis = [iso_mu, *jet1, *jet2]
    pt_j = np.hypot(sum(p["px"] for p in jet1), sum(p["py"] for p in jet1))
    assert reco["Jet"].PT[0, 0] == pytest.approx(pt_j, rel=1e-5)
    mx, my = -sum(p["px"] for p in vis), -sum(p["py"] for p in vis)
    assert reco["MissingET"].MET[0, 0] == pytest.approx(np.hypot(mx, my), rel=1e-5)
    assert reco["MissingET"].Phi[0, 0] == pytest.approx(np.arctan2(my, mx), abs=1e-5)
    # HT = jets + isolated leptons (the isolated muon is not a jet input)
    assert reco["ScalarHT"].HT[0, 0] == pytest.approx(pt_j + 30.0, rel=1e-5)
    assert reco["ScalarHT"].HT[1, 0] == 0.0


def test_jet_constituent_counts():
    """Jet.NNeutrals / NCharged: the photons / charged hadrons of each jet above the 0.5 GeV
    threshold (the study card's photon PTMin); a soft photon (0.4 GeV) and a photon outside the
    jet (Delta R > R) do not count; a pi0 counts as neutral."""
    jet1 = [particle(211, 15.0, 1.0, 2.0), particle(-211, 10.0, 1.1, 2.05), particle(22, 5.0, 0.95, 1.95),
            particle(22, 0.4, 1.0, 2.1), particle(111, 2.0, 1.05, 2.0, mass=0.135)]
    jet2 = [particle(211, 25.0, -1.0, -1.0)]
    far = particle(22, 3.0, -1.0, 0.5)
    reco = simulate(events([*jet1, *jet2, far]), PERFECT, np.random.default_rng(1))
    jet = reco["Jet"][0]
    assert ak.to_list(jet.NNeutrals) == [2, 0] and ak.to_list(jet.NCharged) == [2, 1]
    assert jet.NNeutrals.type.content == ak.types.NumpyType("int32")
    # a higher threshold drops the 2 GeV pi0
    reco = simulate(events([*jet1, *jet2, far]), {**PERFECT, "jets": {"constituent_pt_min_gev": 3.0}},
                    np.random.default_rng(1))
    assert ak.to_list(reco["Jet"][0].NNeutrals) == [1, 0]


def test_non_isolated_lepton_is_a_jet_input():
    mu = particle(13, 22.0, 0.0, 0.0)
    ev = events([mu, particle(211, 10.0, 0.05, 0.05)])
    reco = simulate(ev, PERFECT, np.random.default_rng(1))
    assert reco["Muon"].IsolationVar[0, 0] > 0.15
    assert reco["Jet"].PT[0, 0] == pytest.approx(32.0, rel=0.01)
    assert reco["ScalarHT"].HT[0, 0] == pytest.approx(reco["Jet"].PT[0, 0], rel=1e-6)


ALL_PHOTONS = {"unique_ht": {"photon_efficiency": {"eta_edges": [0, 1.5, 2.5], "pt_edges": [0.5, 1e9],
                                                    "values": [[1.0], [1.0]]}}}


def test_unique_ht_of_hand_built_event():
    """ScalarHT.HTUnique, the study card's ScalarHT (UniqueObjectFinder): photons above 0.5 GeV in |eta| < 2.5,
    the stored electrons and muons, and the jets sharing no constituent with those; HT stays all jets +
    isolated leptons."""
    ele = particle(11, 25.0, 0.0, 0.0)                                   # isolated electron
    lone_photon = particle(22, 3.0, -1.5, 2.6)                           # in no jet
    soft_photon = particle(22, 0.4, 2.0, -2.6)                           # below the card's 0.5 GeV
    far_photon = particle(22, 4.0, 2.7, -0.5)                            # beyond |eta| 2.5
    jet_photon = [particle(211, 15.0, 1.0, 2.0), particle(-211, 10.0, 1.1, 2.05), particle(22, 5.0, 0.95, 1.95)]
    jet_charged = [particle(211, 25.0, -1.0, -1.0)]
    jet_neutral_hadron = [particle(211, 20.0, 0.5, -2.2), particle(130, 6.0, 0.55, -2.15)]  # NNeutrals 1, kept
    # second event: a non-isolated muon inside a jet: the jet shares it and leaves HTUnique, the muon enters
    mu_jet = [particle(13, 22.0, 0.0, 0.0), particle(211, 10.0, 0.05, 0.05)]
    ev = events([ele, lone_photon, soft_photon, far_photon, *jet_photon, *jet_charged, *jet_neutral_hadron], mu_jet)
    reco = simulate(ev, {**PERFECT, **ALL_PHOTONS}, np.random.default_rng(1))

    def pt_of(parts):
        return float(np.hypot(sum(p["px"] for p in parts), sum(p["py"] for p in parts)))

    jets = reco["Jet"]
    assert ak.to_list(jets.NNeutrals[0]) == [1, 1, 0]  # by pT: 30.0 (photon), 25.9 (K0L), 25 (charged)
    pt_a, pt_b, pt_c = pt_of(jet_photon), pt_of(jet_charged), pt_of(jet_neutral_hadron)
    assert sorted(ak.to_list(jets.PT[0])) == pytest.approx(sorted([pt_a, pt_b, pt_c]), rel=1e-5)
    ht_unique = 25.0 + 3.0 + 5.0 + pt_b + pt_c
    assert reco["ScalarHT"].HTUnique[0, 0] == pytest.approx(ht_unique, rel=1e-5)
    assert reco["ScalarHT"].HT[0, 0] == pytest.approx(pt_a + pt_b + pt_c + 25.0, rel=1e-5)
    assert reco["Muon"].IsolationVar[1, 0] > 0.15 and ak.num(reco["Jet"])[1] == 1
    assert reco["ScalarHT"].HTUnique[1, 0] == pytest.approx(22.0, rel=1e-6)
    assert reco["ScalarHT"].HT[1, 0] == pytest.approx(32.0, rel=0.01)


def test_unique_ht_photon_efficiency_of_the_card():
    """The card's PhotonEfficiency (0.95 for |eta| <= 1.5, 0.85 up to 2.5) as the pass fraction of single
    10 GeV photons; its draws come last, so every other collection is the same at any efficiency."""
    n = 20_000
    rng = np.random.default_rng(7)
    for lo, hi, exp in ((0.1, 1.4, 0.95), (1.6, 2.4, 0.85)):
        ev = events(*[[particle(22, 10.0, float(eta), 0.3)] for eta in rng.uniform(lo, hi, n)])
        reco = simulate(ev, {}, np.random.default_rng(8))
        frac = float(np.mean(ak.to_numpy(ak.flatten(reco["ScalarHT"].HTUnique)) > 0))
        assert abs(frac - exp) < 4 * np.sqrt(exp * (1 - exp) / n), (lo, hi, frac, exp)
    every = simulate(ev, ALL_PHOTONS, np.random.default_rng(8))
    assert np.all(ak.to_numpy(ak.flatten(every["ScalarHT"].HTUnique)) > 0)
    for name, field in (("MissingET", "MET"), ("ScalarHT", "HT")):
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(every[name][field])),
                                      ak.to_numpy(ak.flatten(reco[name][field])))


def test_bad_table_shape_is_a_config_error():
    bad = {"muon": {"identification_efficiency": {"eta_edges": [0, 1, 2.4], "pt_edges": [0.5, 1e9], "values": [[0.9]]}}}
    with pytest.raises(ConfigError, match="detector.muon.identification_efficiency"):
        detector_settings(bad)


def _single_particle_met(pid, energy, eta, n, cfg=None, seed=5):
    """MET of n events holding one particle each: its smeared energy-flow pT (its E / cosh(eta))."""
    ev = events(*[[particle(pid, energy / np.cosh(eta), eta, 0.3, mass=0.0)] for _ in range(n)])
    reco = simulate(ev, cfg or {}, np.random.default_rng(seed))
    return ak.to_numpy(ak.flatten(reco["MissingET"].MET)).astype(float) * np.cosh(eta)


@pytest.mark.parametrize("pid, energy, eta, calo", [(22, 10.0, 0.0, "ecal"), (22, 200.0, 0.0, "ecal"),
                                                    (22, 50.0, 1.0, "ecal"), (130, 50.0, 0.0, "hcal"),
                                                    (130, 200.0, 2.0, "hcal")])
def test_calorimeter_energy_resolution_follows_the_card(pid, energy, eta, calo):
    """Photons: the card's ECAL sigma(E) = (1 + 0.64 eta^2) sqrt(0.008^2 E^2 + 0.11^2 E + 0.4^2); neutral
    hadrons: HCAL sqrt(0.05^2 E^2 + 1.5^2 E); mean energy unbiased (log-normal). Computed by hand here,
    not with the module's function."""
    n = 8000
    e_reco = _single_particle_met(pid, energy, eta, n)
    if calo == "ecal":
        sigma = (1 + 0.64 * eta**2) * np.sqrt((0.008 * energy) ** 2 + 0.11**2 * energy + 0.4**2)
    else:
        sigma = np.sqrt((0.05 * energy) ** 2 + 1.5**2 * energy)
    assert np.std(e_reco) / energy == pytest.approx(sigma / energy, rel=0.05)
    assert np.mean(e_reco) == pytest.approx(energy, abs=4 * sigma / np.sqrt(n))
    # without the energy flow the deposit is exact
    exact = _single_particle_met(pid, energy, eta, 50, {"energy_flow": {"enabled": False}})
    np.testing.assert_allclose(exact, energy, rtol=1e-5)


def test_charged_hadron_tracks_and_untracked_hadrons():
    """Tracked pi+: the card's track resolution sqrt(0.06^2 + pT^2 1.3e-3^2) at |eta| < 0.5; with tracking
    efficiency 0 the pion deposits in the HCAL and gets its (much wider) resolution."""
    n, pt = 8000, 50.0
    always = {"tracking_efficiency": {"eta_edges": [0, 2.5], "pt_edges": [0.1, 1e9], "values": [[1.0]]}}
    never = {"tracking_efficiency": {"eta_edges": [0, 2.5], "pt_edges": [0.1, 1e9], "values": [[0.0]]}}
    tracked = _single_particle_met(211, pt, 0.0, n, {"energy_flow": {"charged_hadron": always}})
    assert np.std(tracked) / pt == pytest.approx(np.hypot(0.06, pt * 1.3e-3), rel=0.05)
    calo = _single_particle_met(211, pt, 0.0, n, {"energy_flow": {"charged_hadron": never}})
    assert np.std(calo) / pt == pytest.approx(np.sqrt(0.05**2 + 1.5**2 / pt), rel=0.05)
    # the card's efficiency (0.95 above 1 GeV, |eta| < 1.5): 5 % of the pions are HCAL-measured, a mixture
    default = _single_particle_met(211, pt, 0.0, n)
    mixture = np.sqrt(0.95 * (0.06**2 + (pt * 1.3e-3) ** 2) + 0.05 * (0.05**2 + 1.5**2 / pt))
    assert np.std(default) / pt == pytest.approx(mixture, rel=0.04)


def test_calorimeter_threshold_loses_soft_photons():
    """A 0.6 GeV photon (ECAL sigma = 0.409 GeV) is kept only when its smeared energy passes the card's
    EnergySignificanceMin 2 sigma = 0.818 GeV: the log-normal tail probability; lost deposits leave no MET.
    A 5 GeV photon is always kept."""
    from math import erfc, log, sqrt

    e, n = 0.6, 4000
    sigma = np.sqrt((0.008 * e) ** 2 + 0.11**2 * e + 0.4**2)
    s_ln = sqrt(log(1 + (sigma / e) ** 2))
    z = (log(2 * sigma) - (log(e) - 0.5 * s_ln**2)) / s_ln
    soft = _single_particle_met(22, e, 0.0, n)
    assert np.all((soft == 0.0) | (soft > 2 * sigma * 0.999))
    assert np.mean(soft > 0) == pytest.approx(0.5 * erfc(z / sqrt(2)), abs=0.025)
    assert np.all(_single_particle_met(22, 5.0, 0.0, 200) > 0)


def test_met_resolution_grows_with_ht():
    """Balanced events (true MET 0) of charged hadrons, photons and neutral hadrons: the energy-flow MET
    grows with the event's HT; without the energy-flow smearing it is 0; same seed -> identical MET."""
    def balanced(pt, n=1500):
        one = []
        for phi in (0.0, np.pi):
            one += [particle(211, 0.6 * pt, 0.5, phi), particle(22, 0.25 * pt, 0.52, phi + 0.02),
                    particle(130, 0.15 * pt, 0.48, phi - 0.02)]
        return events(*[one] * n)

    mean_met, ht = [], []
    for pt in (20.0, 80.0, 320.0):
        ev = balanced(pt)
        reco = simulate(ev, {}, np.random.default_rng(7))
        met = ak.to_numpy(ak.flatten(reco["MissingET"].MET))
        np.testing.assert_array_equal(met, ak.to_numpy(ak.flatten(
            simulate(ev, {}, np.random.default_rng(7))["MissingET"].MET)))
        mean_met.append(met.mean())
        ht.append(np.mean(ak.to_numpy(ak.flatten(reco["ScalarHT"].HT))))
        assert np.all(ak.to_numpy(ak.flatten(simulate(balanced(pt, 20), {"energy_flow": {"enabled": False}},
                                                      np.random.default_rng(7))["MissingET"].MET)) < 1e-3 * pt)
    assert ht[0] < ht[1] < ht[2]
    assert 0 < mean_met[0] < mean_met[1] < mean_met[2]
    assert mean_met[2] / mean_met[0] > 3  # HCAL stochastic + constant terms: ~ sqrt(HT) to HT


def test_bad_energy_flow_table_is_a_config_error():
    bad = {"energy_flow": {"hcal": {**detector_settings({})["energy_flow"]["hcal"], "c": [0.05]}}}
    with pytest.raises(ConfigError, match="detector.energy_flow.hcal"):
        detector_settings(bad)
