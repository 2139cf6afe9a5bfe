"""Pythia 8 backend: SLHA spectrum, signal truth (displaced chargino decays), b-bbar forcing weights."""

from __future__ import annotations

import numpy as np
import pytest

from softdisplaced.generation import slha

pythia8mc = pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")

from softdisplaced.generation import pythia8 as P  # noqa: E402

B_IDS = np.array(P.B_HADRONS)


# ----------------------------------------------------------------------------- SLHA

def test_slha_width_masses_and_mixing():
    text = slha.slha_text(324, 20, 20.0, br_e=0.5, br_mu=0.5)
    d = slha.parse_slha(text)
    width, channels = d["DECAY"][1000024]
    # Gamma = hbar c / (c tau): 20 mm -> 9.866e-15 GeV
    assert width == pytest.approx(1.973269804e-13 / 20.0, rel=1e-7)
    assert slha.ctau_mm_from_width(width) == pytest.approx(20.0, rel=1e-7)
    assert sorted(ch[1] for ch in channels) == [(1000022, -13, 14), (1000022, -11, 12)]
    assert sum(ch[0] for ch in channels) == pytest.approx(1.0)
    assert d["MASS"][1000024] == 324.0 and d["MASS"][1000022] == 304.0
    # every SUSY particle has a mass; the others are decoupled at 10 TeV
    for pid in (1000001, 1000006, 2000005, 1000011, 1000016, 2000015, 1000021, 1000023, 1000025, 1000035, 1000037):
        assert d["MASS"][pid] == 10000.0
    assert d["NMIX"][(1, 2)] == 1.0 and d["NMIX"][(1, 1)] == 0.0  # chi0_1 = wino
    assert d["UMIX"][(1, 1)] == 1.0 and d["VMIX"][(1, 1)] == 1.0
    N = np.array([[d["NMIX"][(i, j)] for j in range(1, 5)] for i in range(1, 5)])
    assert np.allclose(N @ N.T, np.eye(4))
    for block in ("ALPHA", "HMIX", "STOPMIX", "SBOTMIX", "STAUMIX"):
        assert d[block], block
    # c*tau 10 cm <-> the width VERIFIED-FACTS quotes
    assert slha.width_from_ctau_mm(100.0) == pytest.approx(1.973e-15, rel=1e-3)


def test_slha_rejects_unphysical_input():
    with pytest.raises(ValueError):
        slha.slha_text(220, 230, 10.0)
    with pytest.raises(ValueError):
        slha.slha_text(220, 20, 0.0)
    with pytest.raises(ValueError):
        slha.slha_text(220, 20, 10.0, br_e=0.7, br_mu=0.7)


def test_pythia_settings_seed_and_switches():
    s = dict(name="bp1", kind="signal", source="pythia8", m_c=324, dm=20, ctau_cm=2)
    cmds = P.pythia_settings(s, {}, 123, slha_path="x.slha")
    assert "ParticleDecays:limitTau0 = off" in cmds and "Random:seed = 123" in cmds
    assert "SUSY:qqbar2chi+chi- = on" in cmds and "SLHA:file = x.slha" in cmds
    with pytest.raises(ValueError):
        P.pythia_settings(s, {}, 900_000_000, slha_path="x.slha")
    seeds = [P.pythia_seed(np.random.default_rng(i)) for i in range(200)]
    assert all(1 <= x < 900_000_000 for x in seeds) and len(set(seeds)) == 200
    hf = P.pythia_settings(dict(name="hf", kind="background", source="pythia8"),
                           {"generation": {"pythia8": {"hf": {"pthat_min_gev": 25}}}}, 5)
    assert "HardQCD:hardbbbar = on" in hf and "PhaseSpace:pTHatMin = 25.0" in hf


# ----------------------------------------------------------------------------- signal

@pytest.fixture(scope="module")
def signal_events():
    s = dict(name="bp_test", kind="signal", source="pythia8", m_c=220, dm=20, ctau_cm=1.0)
    return P.generate_chunk(s, {}, np.random.default_rng(11), N_SIGNAL)


N_SIGNAL = 400


def _lepton_flavours(ev):
    """Per event, the set of final e / mu flavours whose ancestry reaches a mediator, and the number
    of such leptons (their production vertex checked against the mediator's decay vertex)."""
    p = ev.particles
    med = ev.mediators
    out, n_match = [], 0
    for i in range(len(ev)):
        pid = ak.to_numpy(p.pid[i]); m1 = ak.to_numpy(p.m1[i]); st = ak.to_numpy(p.status[i])
        x = ak.to_numpy(p.x[i]); y = ak.to_numpy(p.y[i]); z = ak.to_numpy(p.z[i])
        flav = []
        for j in np.flatnonzero((st == 1) & np.isin(np.abs(pid), (11, 13))):
            k, root = j, j
            while m1[k] >= 0 and abs(pid[m1[k]]) in (11, 13):  # climb lepton copies (QED FSR)
                k = m1[k]
            if m1[k] >= 0 and abs(pid[m1[k]]) == 1000024:
                md = med[i][np.argmin(np.abs(ak.to_numpy(med[i].pid) - pid[m1[k]]))]
                assert np.allclose([x[root], y[root], z[root]], [md.decay_x, md.decay_y, md.decay_z], atol=1e-6)
                assert np.hypot(x[root], y[root]) > 0 or md.proper_ct_mm < 1e-3
                flav.append(abs(int(pid[k])))
                n_match += 1
        out.append(tuple(sorted(flav)))
    return out, n_match


@pytest.mark.pythia
def test_signal_two_displaced_mediators_with_exponential_ct(signal_events):
    from scipy import stats

    ev = signal_events
    assert len(ev) == N_SIGNAL
    med = ev.mediators
    assert ak.all(ak.num(med) == 2)
    assert ak.all(ak.sum(med.pid, axis=1) == 0)  # chi+ chi-
    ct = ak.to_numpy(ak.flatten(med.proper_ct_mm))
    # proper decay length ~ exponential with mean c*tau = 10 mm
    ks = stats.kstest(ct, stats.expon(scale=10.0).cdf)
    assert ks.pvalue > 1e-3, ks
    assert 10.0 * 0.8 < ct.mean() < 10.0 * 1.2
    # Pythia's tau() is the proper lifetime: |flight| * m / |p| = c*t
    flight = np.sqrt((med.decay_x - med.x) ** 2 + (med.decay_y - med.y) ** 2 + (med.decay_z - med.z) ** 2)
    p = np.sqrt(med.px ** 2 + med.py ** 2 + med.pz ** 2)
    assert np.allclose(ak.to_numpy(ak.flatten(flight * med.mass / p)), ct, rtol=1e-6, atol=1e-9)
    # beta*gamma mostly between 0.2 and 5 (published fact for m_c < 500 GeV)
    bg = ak.to_numpy(ak.flatten(p / med.mass))
    assert np.mean((bg > 0.2) & (bg < 5)) > 0.75
    assert 0.6 < np.median(bg) < 2.5
    # the W* matrix-element weights of the chargino decays (chargino_decay_weights): positive, mean 1
    w = ak.to_numpy(ev.weight)
    assert np.all(w > 0) and abs(w.mean() - 1.0) < 0.1 and w.std() > 0.05
    assert float(ev.cross_section_pb[0]) > 0


@pytest.mark.pythia
def test_signal_leptons_come_from_displaced_decay_vertices(signal_events):
    ev = signal_events
    p = ev.particles
    # the mediators are in the particle list with status 22, decaying to chi0 + lepton + neutrino
    mp = p[p.status == 22]
    assert ak.all(ak.num(mp) == 2)
    assert ak.all(mp.d1 >= 0)
    first_daughter = abs(p.pid[mp.d1])
    assert ak.all((first_daughter == 1000022) | (first_daughter == 11) | (first_daughter == 13)
                  | (first_daughter == 12) | (first_daughter == 14))
    # final electrons / muons whose ancestry reaches a mediator sit at its decay vertex;
    # the default decay mode is democratic: ee : e-mu : mu-mu = 1 : 2 : 1
    flav, n_match = _lepton_flavours(ev)
    assert n_match >= 2 * N_SIGNAL * 0.95
    counts = np.array([flav.count((11, 11)), flav.count((11, 13)), flav.count((13, 13))])
    assert counts.sum() >= 0.95 * N_SIGNAL
    from scipy import stats

    assert stats.chisquare(counts, counts.sum() * np.array([0.25, 0.5, 0.25])).pvalue > 1e-3, counts
    assert stats.chisquare(counts, counts.sum() * np.array([0.0001, 0.9998, 0.0001])).pvalue < 1e-6, counts


@pytest.mark.pythia
def test_signal_forced_emu_mode():
    s = dict(name="bp_emu", kind="signal", source="pythia8", m_c=220, dm=20, ctau_cm=1.0)
    ev = P.generate_chunk(s, {"generation": {"pythia8": {"signal": {"decay_mode": "emu"}}}},
                          np.random.default_rng(12), 100)
    flav, _ = _lepton_flavours(ev)
    assert sum(f == (11, 13) for f in flav) >= 95 and not any(f in ((11, 11), (13, 13)) for f in flav)


def test_validation_copies_are_forced_emu_and_record_it(default_config):
    """The Pythia 8 validation copies bp<id>_pythia8 get validation.pythia8_decay_mode (forced e-mu by default)
    as their own generator setting: Pythia's commands force e-mu for them alone, and the mode recorded in the
    event file (the yields' flavour factor 1/2) is theirs, while the physics samples stay democratic."""
    from softdisplaced.generation import signal_decay_mode, with_sample_settings
    from softdisplaced.samples import build_samples

    samples = build_samples(default_config)
    copy_ = samples["bp1_pythia8"]
    s_copy = with_sample_settings(default_config, copy_)
    forced = [f"{P.MEDIATOR_ID}:onPosIfAll = {P.LSP_ID} 11", f"{P.MEDIATOR_ID}:onNegIfAll = {P.LSP_ID} 13"]
    cmds = P.pythia_settings(copy_, s_copy, 1, slha_path="x.slha")
    assert all(c in cmds for c in forced)
    assert signal_decay_mode(copy_, s_copy) == "emu"
    physics = dict(samples["bp1"], source="pythia8")
    s_phys = with_sample_settings(default_config, physics)
    assert not any(c in P.pythia_settings(physics, s_phys, 1, slha_path="x.slha") for c in forced)
    assert signal_decay_mode(physics, s_phys) == "democratic"
    cfg = dict(default_config, validation=dict(default_config["validation"], pythia8_decay_mode="democratic"))
    assert signal_decay_mode(build_samples(cfg)["bp1_pythia8"], cfg) == "democratic"


def test_pythia8_defaults_come_from_the_schema():
    from softdisplaced.generation.defaults import section_schema

    cfg = P.pythia8_settings({})
    assert not hasattr(P, "DEFAULTS")
    sch = section_schema("generation", "pythia8")
    for key, sub in sch["properties"].items():
        if "properties" in sub:
            for k2, s2 in sub["properties"].items():
                assert cfg[key][k2] == s2["default"], (key, k2)
        else:
            assert cfg[key] == sub["default"], key
    assert cfg["signal"]["decay_mode"] == "democratic"


@pytest.mark.pythia
def test_signal_truth_record_structure(signal_events):
    p = signal_events.particles
    for f in ("pid", "status", "px", "py", "pz", "e", "mass", "x", "y", "z", "t", "m1", "m2", "d1", "d2", "charge"):
        assert f in p.fields
    n = ak.num(p)
    assert ak.all((p.m1 >= -1) & (p.m1 < n)) and ak.all((p.d2 < n) & (p.d1 <= p.d2))
    st = set(np.unique(ak.to_numpy(ak.flatten(p.status))).tolist())
    assert st <= {1, 2, 22}
    # final-state charge is conserved in pp -> X: sum = +2
    fin = p[p.status == 1]
    assert ak.all(ak.sum(fin.charge, axis=1) == 2)
    # energy-momentum of final state: total pz within beams, E <= 13 TeV
    assert ak.all(ak.sum(fin.e, axis=1) < 13000.5)


@pytest.mark.pythia
def test_same_seed_same_events():
    s = dict(name="bp_seed", kind="signal", source="pythia8", m_c=220, dm=20, ctau_cm=1.0)
    cfg = {"generation": {"pythia8": {"mpi": False, "hadronisation": False}}}
    a = P.generate_chunk(s, cfg, np.random.default_rng(5), 10)
    b = P.generate_chunk(s, cfg, np.random.default_rng(5), 10)
    c = P.generate_chunk(s, cfg, np.random.default_rng(6), 10)
    assert ak.all(ak.flatten(a.mediators.proper_ct_mm) == ak.flatten(b.mediators.proper_ct_mm))
    assert not ak.all(ak.flatten(a.mediators.proper_ct_mm) == ak.flatten(c.mediators.proper_ct_mm))


# ----------------------------------------------------------------------------- HF forcing

def _direct_b_leptons(ev):
    p = ev.particles
    mother = p.pid[ak.where(p.m1 >= 0, p.m1, 0)]
    from_b = np.isin(np.abs(ak.to_numpy(ak.flatten(mother))), B_IDS)
    is_lep = np.isin(np.abs(ak.to_numpy(ak.flatten(p.pid))), (11, 13)) & (ak.to_numpy(ak.flatten(p.m1)) >= 0)
    flags = ak.unflatten(from_b & is_lep, ak.num(p))
    return ak.to_numpy(ak.sum(flags, axis=1))


def _hf(q, n, seed, unforced=False):
    cfg = {"generation": {"pythia8": {"mpi": False, "hf": {"pthat_min_gev": 10.0, "forced_fraction": q}}}}
    s = dict(name="hf", kind="background", source="pythia8")
    if not unforced:
        return P.generate_chunk(s, cfg, np.random.default_rng(seed), n)
    pythia = pythia8mc.Pythia("", False)
    for c in P.pythia_settings(s, cfg, seed):
        assert pythia.readString(c)
    assert pythia.init()
    return P.generate_events(pythia, n)


@pytest.mark.pythia
def test_hf_forced_weights_restore_unforced_rates():
    """Weighted forced sample (q = 0.9) vs unforced sample: same rate of direct b -> e/mu leptons and of
    events with two of them (the e-mu signature)."""
    un = _hf(1.0, 800, 21, unforced=True)
    fo = _hf(0.9, 800, 22)
    n_un, n_fo = _direct_b_leptons(un), _direct_b_leptons(fo)
    w = ak.to_numpy(fo.weight)
    assert np.all(ak.to_numpy(un.weight) == 1.0)
    # forcing works: far more leptons per unweighted event
    assert n_fo.mean() > 3 * n_un.mean()
    r_un, e_un = n_un.mean(), n_un.std() / np.sqrt(len(n_un))
    r_fo = np.sum(w * n_fo) / len(w)
    e_fo = np.sqrt(np.sum((w * n_fo - r_fo) ** 2)) / len(w)
    assert abs(r_fo - r_un) < 3.5 * np.hypot(e_un, e_fo), (r_fo, e_fo, r_un, e_un)
    two_un = (n_un >= 2).mean()
    two_fo = np.sum(w * (n_fo >= 2)) / len(w)
    e2 = np.hypot(np.sqrt(two_un * (1 - two_un) / len(n_un)), np.sqrt(np.sum((w * (n_fo >= 2)) ** 2)) / len(w))
    assert abs(two_fo - two_un) < 3.5 * e2, (two_fo, two_un, e2)
    # the mean weight per event estimates 1 (unbiased importance sampling)
    assert abs(w.mean() - 1) < 4 * w.std() / np.sqrt(len(w))


@pytest.mark.pythia
def test_hf_full_forcing_bias_is_the_documented_one():
    """q = 1: only e/mu semi-leptonic b decays; weights = product of physical semi-leptonic fractions.
    The weighted rate of events with two direct leptons is physical, single-lepton rates are not
    (they miss the events where the other b decays hadronically)."""
    fo = _hf(1.0, 400, 23)
    n = _direct_b_leptons(fo)
    assert np.mean(n >= 1) > 0.95
    w = ak.to_numpy(fo.weight)
    # each weakly decaying b hadron contributes its semi-leptonic fraction f ~ 0.1-0.25
    assert 0.005 < np.median(w) < 0.08
    pythia = pythia8mc.Pythia("", False)
    tables = P.biased_b_tables(pythia, 1.0)
    for pid in (511, 521, 531):
        assert 0.15 < tables[pid]["f"] < 0.3
        assert tables[pid]["w_sl_pos"] == pytest.approx(tables[pid]["f"], rel=1e-9)
        assert tables[pid]["w_had_pos"] == 0.0


def _leading_b_pt(ev):
    p = ev.particles
    counts = ak.to_numpy(ak.num(p))
    pid = ak.to_numpy(ak.flatten(p.pid))
    pt = np.hypot(ak.to_numpy(ak.flatten(p.px)), ak.to_numpy(ak.flatten(p.py)))
    pt = np.where(np.isin(np.abs(pid), B_IDS), pt, 0.0)
    out = np.zeros(len(counts))
    np.maximum.at(out, np.repeat(np.arange(len(counts)), counts), pt)
    return out


@pytest.mark.pythia
def test_hf_pthat_bias_and_charm_forcing_weights_restore_physical_rates():
    """pTHat bias (bias2Selection, Pythia's weight) x b and c decay forcing: the weighted fraction of
    events with a b hadron above 40 GeV agrees with the unbiased sample."""
    base = {"mpi": False, "hadronisation": True}
    s = dict(name="hf", kind="background", source="pythia8")
    biased = {"generation": {"pythia8": {**base, "hf": {"pthat_min_gev": 10.0, "forced_fraction": 0.9,
                                                        "charm_forced_fraction": 0.5, "pthat_bias_power": 4.0}}}}
    un = _hf(1.0, 1500, 31, unforced=True)
    bi = P.generate_chunk(s, biased, np.random.default_rng(32), 1500)
    w = ak.to_numpy(bi.weight)
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    hard_un, hard_bi = _leading_b_pt(un) > 40, _leading_b_pt(bi) > 40
    assert hard_bi.mean() > 3 * hard_un.mean()          # the bias populates high pT
    r_un = hard_un.mean()
    e_un = np.sqrt(max(r_un * (1 - r_un), 1e-4) / len(hard_un))
    # Pythia's bias weight is normalised to sigmaGen, not to 1: rates are weighted fractions
    r_bi = np.sum(w * hard_bi) / np.sum(w)
    e_bi = np.sqrt(np.sum((w * (hard_bi - r_bi)) ** 2)) / np.sum(w)
    assert abs(r_bi - r_un) < 3.5 * np.hypot(e_un, e_bi), (r_bi, e_bi, r_un, e_un)
    assert e_bi < 0.5 * r_un                              # and the weighted estimate is informative


def _flat_decays(n, M, m0, ml, flat, rng):
    """Chargino decays at rest in the flat particle arrays of convert_batch: (chi+, chi0, l, nu) per event."""
    from softdisplaced.generation.kinematics import three_body_decay

    parent = np.tile([M, 0.0, 0.0, 0.0], (n, 1))
    p0, l, nu = three_body_decay(rng, parent, M, m0, ml, flat=flat)
    p4 = np.stack([parent, p0, l, nu], axis=1).reshape(-1, 4)
    pid = np.tile([1000024, 1000022, -11, 12], n)
    idx = np.arange(4 * n)
    d1 = np.where(pid == 1000024, idx + 1, -1)
    d2 = np.where(pid == 1000024, idx + 3, -1)
    mass = np.tile([M, m0, ml, 0.0], n)
    return pid, d1, d2, p4, mass, l[:, 0]


def test_chargino_decay_weights_turn_phase_space_into_the_matrix_element():
    """Pythia decays the SLHA table's chi+ -> chi0 e nu in flat phase space: the weights of
    chargino_decay_weights make the lepton's rest-frame energy spectrum of flat decays that of decays sampled
    with the W* matrix element (kinematics.three_body_decay), with mean weight 1 (the rate is unchanged)."""
    from scipy import stats

    from softdisplaced.generation import fast_settings

    rng = np.random.default_rng(5)
    M, m0, ml, n = 220.0, 200.0, 0.000511, 100_000
    couplings = fast_settings({})["mediator_decay"]
    pid, d1, d2, p4, mass, e_flat = _flat_decays(n, M, m0, ml, True, rng)
    w = P.chargino_decay_weights(pid, d1, d2, p4[:, 1], p4[:, 2], p4[:, 3], p4[:, 0], mass, pid == 1000024,
                                 np.repeat(np.arange(n), 4), n, couplings)
    assert abs(w.mean() - 1.0) < 0.01
    *_, e_me = _flat_decays(n, M, m0, ml, False, rng)
    edges = np.linspace(0.0, (M * M - m0 * m0) / (2 * M), 21)
    h_w, _ = np.histogram(e_flat, edges, weights=w)
    h_w2, _ = np.histogram(e_flat, edges, weights=w * w)
    h_me, _ = np.histogram(e_me, edges)
    h_flat, _ = np.histogram(e_flat, edges)
    ok = h_me > 0
    chi2 = np.sum((h_w[ok] - h_me[ok]) ** 2 / (h_w2[ok] + h_me[ok]))
    assert stats.chi2.sf(chi2, ok.sum() - 1) > 1e-3, chi2
    # the flat spectrum is clearly different (harder at the endpoint): the weights matter
    chi2_flat = np.sum((h_flat[ok] - h_me[ok]) ** 2 / (h_flat[ok] + h_me[ok]))
    assert chi2_flat > 10 * ok.sum()
    # a mediator whose daughters are not chi0 + l + nu keeps weight 1
    pid_bad = np.where(pid == 12, 22, pid)
    assert np.all(P.chargino_decay_weights(pid_bad, d1, d2, p4[:, 1], p4[:, 2], p4[:, 3], p4[:, 0], mass,
                                           pid == 1000024, np.repeat(np.arange(n), 4), n, couplings) == 1.0)
