"""Fast heavy-flavour generator: B lifetime, d0 peak, non-isolated leptons, e-mu yield, pT shape;
the importance sampling (biased directions, fragmentation, lifetimes, thinning) closes on the
unbiased generator."""

from __future__ import annotations

import copy

import awkward as ak
import numpy as np
import pytest
from scipy import stats

from softdisplaced.generation.detector import simulate
from softdisplaced.generation import fast_settings, generate_chunk
from softdisplaced.generation.heavyflavour import (direction_density, fragment_multiplicity_mean, fragment_pions,
                                                   generate_heavy_flavour, peterson_density,
                                                   sample_heavy_flavour_kinematics, truth_lepton_classes)
from softdisplaced.generation.kinematics import orthonormal_basis
from softdisplaced.generation.kinematics import pt_eta_phi
from softdisplaced.samples import rng_for

N = 40_000
HF = {"name": "hf", "kind": "background", "source": "fast"}


def _unbiased(config):
    cfg = copy.deepcopy(config)
    cfg["generation"]["fast"]["heavy_flavour"].setdefault("bias", {})["enabled"] = False
    return cfg


@pytest.fixture(scope="module")
def hf(default_config):
    """The physical model (importance sampling off): its distributions are tested unweighted."""
    cfg = _unbiased(default_config)
    truth = generate_chunk(HF, cfg, rng_for(11, "hf", 0), N)
    reco = simulate(truth, cfg["detector"], rng_for(11, "hf", 0, "detector"))
    return truth, reco


def test_b_hadron_proper_decay_length_is_exponential(hf):
    truth, _ = hf
    p = truth.particles
    B = p[abs(p.pid) == 521]
    dau = p[B.d1]  # first daughter carries the decay vertex
    dist = np.sqrt(dau.x ** 2 + dau.y ** 2 + dau.z ** 2)
    pmag = np.sqrt(B.px ** 2 + B.py ** 2 + B.pz ** 2)
    ct = ak.to_numpy(ak.flatten(dist * B.mass / pmag))
    assert stats.kstest(ct, "expon", args=(0.0, 0.455)).pvalue > 0.01
    assert stats.kstest(ct, "expon", args=(0.0, 0.5)).pvalue < 1e-3


def test_hf_d0_peaks_near_01_mm(hf):
    _, reco = hf
    d0 = np.concatenate([ak.to_numpy(ak.flatten(c.D0[c.PT > 10])) for c in (reco["Electron"], reco["Muon"])])
    h, edges = np.histogram(np.log10(d0[d0 > 0]), bins=30, range=(-3, 0))
    mode = 10 ** (0.5 * (edges[np.argmax(h)] + edges[np.argmax(h) + 1]))
    assert 0.03 < mode < 0.3, mode
    assert 0.05 < np.median(d0) < 0.5
    assert np.mean(d0 > 1.0) < 0.1  # few HF leptons beyond 1 mm


def _emu(reco):
    sel = [c[(c.PT > 20) & (abs(c.Eta) < 2.4)] for c in (reco["Electron"], reco["Muon"])]
    ok = (ak.num(sel[0]) == 1) & (ak.num(sel[1]) == 1)
    q = ak.fill_none(ak.firsts(sel[0].Charge) * ak.firsts(sel[1].Charge), 0)
    return ok & (q < 0), sel


def test_enough_opposite_sign_emu_events_for_nn_training(default_config):
    """The default (importance-sampled) HF sample: >= 3000 selected opposite-sign e-mu events (pT > 20 GeV,
    no isolation) expected from the default number of candidates (samples.hf: events_per_chunk x n_chunks),
    with an effective (weighted) size of at least 1000."""
    n = 100_000
    truth = generate_chunk(HF, default_config, rng_for(11, "hf", 1), n)
    reco = simulate(truth, default_config["detector"], rng_for(11, "hf", 1, "detector"))
    ok = ak.to_numpy(_emu(reco)[0])
    w = ak.to_numpy(truth.weight)[ok]
    h = default_config["samples"]["hf"]
    scale = h["events_per_chunk"] * h["n_chunks"] / n
    assert ok.sum() * scale >= 3000, ok.sum()
    assert w.sum() ** 2 / np.sum(w ** 2) * scale >= 1000


def test_hf_leptons_are_not_isolated(hf):
    _, reco = hf
    ok, (e, mu) = _emu(reco)
    iso = np.concatenate([ak.to_numpy(ak.flatten(e.IsolationVar[ok])), ak.to_numpy(ak.flatten(mu.IsolationVar[ok]))])
    assert np.median(iso) > 0.15
    assert np.mean(iso < 0.12) < 0.5


def test_hf_lepton_pt_slope_close_to_pythia8(hf, default_config, repo_root):
    """Log-slope of the lepton pT spectrum (detector level, no isolation) between 20 and 40 GeV within
    0.03/GeV of the own fit of the committed Pythia 8 reference (config/reference/hf_kappa_pythia8.json,
    the same detector); the study's fit (NLO b-bbar) is steeper and not the target (docs/background.md)."""
    import json

    _, reco = hf
    ref = json.loads((repo_root / default_config["background"]["kappa_reference_files"]["pythia8_reference"]).read_text())
    pt = np.concatenate([ak.to_numpy(ak.flatten(c.PT[abs(c.Eta) < 2.4])) for c in (reco["Electron"], reco["Muon"])])
    h, edges = np.histogram(pt, bins=np.arange(20, 42.5, 2.5))
    c = 0.5 * (edges[1:] + edges[:-1])
    slope = np.polyfit(c, np.log(np.maximum(h, 1)), 1, w=np.sqrt(h))[0]
    for lep in ("electron", "muon"):
        p = ref["fits"][lep]["params"]
        f = np.exp(p["a1"] + p["b1"] * c) + np.exp(p["a2"] + p["b2"] * c)
        ref_slope = np.polyfit(c, np.log(f), 1)[0]
        assert abs(slope - ref_slope) < 0.03, (lep, slope, ref_slope)


def test_weights_carry_the_branching_ratios(hf, default_config):
    """B decays: e-mu events 2 BR^2 / f2, one-lepton events 4 BR (1 - BR) / (1 - f2); each D decay:
    2 BR_c / q_c (D -> K l nu, the b -> c -> l cascade) or (1 - 2 BR_c) / (1 - q_c)."""
    truth, _ = hf
    h = default_config["generation"]["fast"]["heavy_flavour"]
    br, f2 = h["br_semileptonic"], h["second_b_semileptonic_fraction"]
    brc, qc = h["charm_br_semileptonic"], h["charm_semileptonic_fraction"]
    p = truth.particles
    mother = p.pid[ak.where(p.m1 >= 0, p.m1, 0)]
    lep = (abs(p.pid) == 11) | (abs(p.pid) == 13)
    n_b = ak.to_numpy(ak.sum(lep & (abs(mother) == 521), axis=1))
    n_c = ak.to_numpy(ak.sum(lep & (abs(mother) == 421), axis=1))
    w = ak.to_numpy(truth.weight)
    assert set(np.unique(n_b)) == {1, 2} and set(np.unique(n_c)) == {0, 1, 2}
    w_b = np.where(n_b == 2, 2 * br * br / f2, 4 * br * (1 - br) / (1 - f2))
    w_c = (2 * brc / qc) ** n_c * ((1 - 2 * brc) / (1 - qc)) ** (2 - n_c)
    np.testing.assert_allclose(w, w_b * w_c)
    assert abs(np.mean(n_b == 2) - f2) < 0.01
    assert abs(np.mean(n_c) / 2 - qc) < 0.01
    # the cascade lepton has the charge opposite to the direct lepton of the same b
    q_b = ak.to_numpy(ak.sum(ak.where(lep & (abs(mother) == 521), p.charge, 0), axis=1))
    q_c = ak.to_numpy(ak.sum(ak.where(lep & (abs(mother) == 421), p.charge, 0), axis=1))
    both = (n_b == 2) & (n_c == 2)
    assert np.all(q_b[both] == 0) and np.all(q_c[both] == 0)
    one = (n_b == 1) & (n_c == 1)
    # one B semi-leptonic, its own D and the other B's D: charges need not cancel, but every lepton is +-1
    assert np.all(np.abs(q_b[one]) == 1) and np.all(np.abs(q_c[one]) == 1)


def test_cascade_gives_same_jet_emu_pairs(default_config):
    """b -> c l, c -> s l' inside one b: opposite-sign e-mu pairs at small Delta R (the study's
    background has 24 % of its pairs below Delta R = 0.4), for the b quarks above 40 GeV that give
    leptons above 20 GeV."""
    cfg = fast_settings(_unbiased(default_config)["generation"])
    kin = sample_heavy_flavour_kinematics(np.random.default_rng(9), 400_000, cfg)
    pr = kin["prods"][0]
    m = pr["sl"] & pr["d_sl"] & (pr["is_e"] != pr["d_is_e"]) & (np.hypot(*kin["quarks"][0][:, 1:3].T) > 40)
    a, x = pr["a"][m], pr["x"][m]
    _, e1, f1 = pt_eta_phi(a[:, 1], a[:, 2], a[:, 3])
    _, e2, f2_ = pt_eta_phi(x[:, 1], x[:, 2], x[:, 3])
    dphi = np.mod(f1 - f2_ + np.pi, 2 * np.pi) - np.pi
    assert np.median(np.hypot(e1 - e2, dphi)) < 0.4
# ------------------------------------------------------------------ b fragmentation
def test_fragmentation_pions_carry_the_rest_momentum_with_isospin_pi0_fraction(default_config):
    """The pions of one b carry exactly (1 - z) p_b; their number is 2 + Poisson(slope ln(1 + E / E0))
    (capped); each is a pi0 with probability fragment_neutral_fraction (1/3)."""
    h = fast_settings(default_config["generation"])["heavy_flavour"]
    rng = np.random.default_rng(4)
    n = 50_000
    e_rest = rng.uniform(2.0, 30.0, n)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    rest = e_rest[:, None] * d
    e1, e2 = orthonormal_basis(d)
    p4, active, neutral = fragment_pions(rng, rest, e1, e2, h)
    np.testing.assert_allclose(p4[..., 1:].sum(axis=1), rest, atol=1e-9)
    assert not np.any(p4[~active])
    mult = active.sum(axis=1)
    cap = h["fragment_max_extra"]
    mu = fragment_multiplicity_mean(e_rest, h)
    expect = 2 + sum(stats.poisson.sf(k, mu) for k in range(cap))      # E[min(Poisson(mu), cap)] = sum_k<cap P(N > k)
    assert np.mean(mult) == pytest.approx(np.mean(expect), abs=4 * np.std(mult) / np.sqrt(n))
    assert mult.min() >= 2 and mult.max() <= 2 + h["fragment_max_extra"]
    frac = neutral.sum() / active.sum()
    f = h["fragment_neutral_fraction"]
    assert abs(frac - f) < 4 * np.sqrt(f * (1 - f) / active.sum()), frac


def test_hf_jets_hold_neutral_constituents_as_pythia8_b_jets(hf):
    """Events with a jet (pT > 20 GeV, |eta| < 2.5): the study's photon-first jet definition leaves no jet
    (HtJet_photon_veto = 0) in 0.961-0.964 of them for Pythia 8 b-bbar through the same detector
    (4 samples, 10k-47k such events; docs/generator.md). The multi-pion fragmentation gives 0.93 (40k
    unbiased events); the earlier two-pion one gave 0.73, with 17 % of its jets free of neutrals."""
    _, reco = hf
    j = reco["Jet"]
    m = (j.PT > 20) & (abs(j.Eta) < 2.5)
    has_jet = ak.to_numpy(ak.sum(m, axis=1) > 0)
    vetoed = ak.to_numpy(ak.sum(m & (j.NNeutrals == 0), axis=1) == 0)
    assert has_jet.sum() > 5000
    assert vetoed[has_jet].mean() > 0.9, vetoed[has_jet].mean()
    nneu = ak.to_numpy(ak.flatten(j.NNeutrals[m]))
    nch = ak.to_numpy(ak.flatten(j.NCharged[m]))
    assert np.mean(nneu == 0) < 0.08, np.mean(nneu == 0)      # Pythia 8: 0.027-0.030 (its ISR jets included)
    assert 4.5 < np.mean(nch) < 7.5, np.mean(nch)             # Pythia 8: 6.3 above 0.5 GeV


def test_hf_events_balance_transverse_momentum(hf):
    """Every HF event sums to zero transverse momentum over its final-state particles, neutrinos included:
    the b bbar pair recoils against the ISR jet (issue 11: the earlier Gaussian acoplanarity without a
    recoiling object left ~15 GeV of spurious MET in the selected events). The ISR jet is present: the b
    quarks do not balance each other."""
    truth, _ = hf
    p = truth.particles
    fs = p.status == 1
    sx, sy = ak.to_numpy(ak.sum(p.px[fs], axis=1)), ak.to_numpy(ak.sum(p.py[fs], axis=1))
    assert np.max(np.hypot(sx, sy)) < 1e-6
    b = p[abs(p.pid) == 5]
    pair = np.hypot(ak.to_numpy(ak.sum(b.px, axis=1)), ak.to_numpy(ak.sum(b.py, axis=1)))
    assert np.median(pair) > 5.0


def test_hf_isr_recoil_follows_pythia8(default_config):
    """r = (b bbar pair pT) / pT-hat of the fast generator against Pythia 8 (HardQCD:hardbbbar, pTHatMin 30 GeV,
    ISR only; docs/generator_scripts/hf_isr_tune.py, 8000 events): quantiles 10/25/50/75/90 % of r
    0.134 / 0.244 / 0.432 / 0.682 / 0.928. Without ISR the pair pT is 0."""
    kin = sample_heavy_flavour_kinematics(np.random.default_rng(5), 40_000, _unbiased(default_config)["generation"]["fast"])
    q = kin["quarks"]
    r = np.hypot(*(q[0][:, i] + q[1][:, i] for i in (1, 2))) / kin["pthat"]
    np.testing.assert_allclose(np.quantile(r, [0.1, 0.25, 0.5, 0.75, 0.9]), [0.134, 0.244, 0.432, 0.682, 0.928],
                               atol=0.04)
    cfg = _unbiased(default_config)["generation"]["fast"]
    cfg["heavy_flavour"]["isr"]["enabled"] = False
    q = sample_heavy_flavour_kinematics(np.random.default_rng(5), 1000, cfg)["quarks"]
    assert np.max(np.hypot(*(q[0][:, i] + q[1][:, i] for i in (1, 2)))) < 1e-9


def test_hf_met_resolution_follows_pythia8(default_config):
    """Reconstructed MET minus the generator-level MET of the visible particles (|eta| < 5) in the default
    (biased) HF sample: median 8.3 GeV in the project's Pythia 8 HF sample with MPI (12 000 events, the same
    detector; 5.4 without MPI); the fast generator's soft activity (generation.fast.heavy_flavour.soft_activity)
    brings it there from 4.4 GeV."""
    res = {}
    for on in (True, False):
        cfg = copy.deepcopy(default_config)
        cfg["generation"]["fast"]["heavy_flavour"]["soft_activity"]["enabled"] = on
        truth = generate_chunk(HF, cfg, rng_for(11, "hf", 2), 30_000)
        reco = simulate(truth, cfg["detector"], rng_for(11, "hf", 2, "detector"))
        p = truth.particles
        ap = abs(p.pid)
        pt = np.hypot(p.px, p.py)
        vis = (p.status == 1) & (ap != 12) & (ap != 14) & (ap != 16) & (abs(np.arcsinh(p.pz / pt)) < 5)
        gx, gy = -ak.to_numpy(ak.sum(p.px[vis], axis=1)), -ak.to_numpy(ak.sum(p.py[vis], axis=1))
        met, phi = ak.to_numpy(ak.firsts(reco["MissingET"].MET)), ak.to_numpy(ak.firsts(reco["MissingET"].Phi))
        res[on] = np.median(np.hypot(met * np.cos(phi) - gx, met * np.sin(phi) - gy))
    assert 7.3 < res[True] < 9.3, res
    assert res[False] < 5.5, res


# ------------------------------------------------------------------ importance sampling
def test_bias_densities_are_normalised():
    c = np.linspace(-1, 1, 200001)
    assert np.trapezoid(direction_density(c, 0.75, 3.0), c) == pytest.approx(1.0, abs=1e-6)
    z = np.linspace(1e-4, 1 - 1e-7, 400001)
    for eps in (0.006, 0.002):
        assert np.trapezoid(peterson_density(z, eps), z) == pytest.approx(1.0, abs=2e-3)


def test_weighted_lepton_direction_in_b_frame_is_isotropic(default_config):
    """cos(theta*) is drawn from a forward-peaked g; the importance weights restore the flat
    (isotropic) distribution of the spin-0 B decay."""
    cfg = fast_settings(default_config["generation"])
    kin = sample_heavy_flavour_kinematics(np.random.default_rng(5), 100_000, cfg)
    c, w = kin["cos_theta"].ravel(), np.repeat(kin["w_importance"], 2)
    ok = np.isfinite(c)
    h, _ = np.histogram(c[ok], bins=10, range=(-1, 1), weights=w[ok])
    h2, _ = np.histogram(c[ok], bins=10, range=(-1, 1), weights=w[ok] ** 2)
    raw, _ = np.histogram(c[ok], bins=10, range=(-1, 1))
    assert raw[-1] > 3 * raw[0]                              # the proposal is biased ...
    mean = h.sum() / 10
    chi2 = np.sum((h - mean) ** 2 / h2)
    assert stats.chi2.sf(chi2, 9) > 1e-3, (h / mean, chi2)   # ... the weighted one is flat


def _truth_leptons(truth):
    p = truth.particles
    lep = p[((abs(p.pid) == 11) | (abs(p.pid) == 13)) & (p.status == 1)]
    counts = ak.num(lep)
    flat = [ak.to_numpy(ak.flatten(lep[f])) for f in ("px", "py", "pz")]
    pt, eta, _ = pt_eta_phi(*flat)
    return ak.unflatten(pt, counts), ak.unflatten(eta, counts)


def _summaries(truth, n_candidates):
    """Per generated candidate: weighted lepton pT histogram (20-60 GeV, |eta| < 2.4) and the
    rate of events with two leptons above 20 GeV; with sum(w^2) for the errors."""
    pt, eta = _truth_leptons(truth)
    w = ak.to_numpy(truth.weight)
    wl = ak.to_numpy(ak.flatten(ak.broadcast_arrays(truth.weight, pt)[0]))
    sel = ak.to_numpy(ak.flatten((abs(eta) < 2.4)))
    ptf = ak.to_numpy(ak.flatten(pt))
    edges = np.array([20, 25, 30, 40, 60])
    h, _ = np.histogram(ptf[sel], bins=edges, weights=wl[sel])
    h2, _ = np.histogram(ptf[sel], bins=edges, weights=wl[sel] ** 2)
    two = ak.to_numpy(ak.sum((pt > 20) & (abs(eta) < 2.4), axis=1) == 2)
    return (np.append(h, w[two].sum()) / n_candidates, np.append(h2, (w[two] ** 2).sum()) / n_candidates ** 2)


def test_importance_sampling_closes_on_the_unbiased_generator(default_config):
    """Weighted biased sample (all bias steps and the thinning) vs the unbiased generator:
    the lepton pT spectrum and the rate of two hard leptons agree within statistics, while the
    biased sample holds several times more hard-lepton events from the same number of candidates."""
    n = 250_000
    biased = fast_settings(default_config["generation"])
    plain = fast_settings(_unbiased(default_config)["generation"])
    tb = generate_heavy_flavour(np.random.default_rng(21), n, biased)
    tu = generate_heavy_flavour(np.random.default_rng(22), n, plain)
    assert len(tb) < 0.3 * n and len(tu) == n                # thinning drops most soft events
    vb, eb = _summaries(tb, n)
    vu, eu = _summaries(tu, n)
    pull = (vb - vu) / np.sqrt(eb + eu)
    assert np.all(np.abs(pull) < 4), pull
    assert stats.chi2.sf(np.sum(pull ** 2), len(pull)) > 1e-3, pull
    # the point of the bias: many more candidates with two hard, truth-isolated leptons
    t = biased["heavy_flavour"]["bias"]["thinning"]
    n_iso = [truth_lepton_classes(sample_heavy_flavour_kinematics(np.random.default_rng(7), 100_000, c), t)[1].sum()
             for c in (biased, plain)]
    assert n_iso[0] > 3 * max(n_iso[1], 1), n_iso


def test_biased_sample_is_reproducible(default_config):
    cfg = fast_settings(default_config["generation"])
    a = generate_heavy_flavour(np.random.default_rng(3), 20_000, cfg)
    b = generate_heavy_flavour(np.random.default_rng(3), 20_000, cfg)
    assert len(a) == len(b) and np.array_equal(ak.to_numpy(a.weight), ak.to_numpy(b.weight))


# ------------------------------------------------------------------ the study's composition (hf_study)
def test_hf_study_has_both_b_hadrons_semileptonic_with_the_physical_charm(default_config):
    """samples.hf_study is hf with its own generator settings (with_sample_settings): every event has two
    B -> l nu X decays (the study's forced decays), while hf has the physical mixture (one or two); the D decays
    keep the configured forced fraction and their weights; events with fewer than two hard leptons are thinned
    harder, with their weights raised by the same factor (their sum over candidates is unchanged)."""
    from softdisplaced.generation import with_sample_settings
    from softdisplaced.samples import build_samples

    samples = build_samples(default_config)
    study = samples["hf_study"]
    cfg = with_sample_settings(default_config, study)
    assert default_config["generation"]["fast"]["heavy_flavour"]["second_b_semileptonic_fraction"] < 1  # not modified
    h = fast_settings(cfg["generation"])["heavy_flavour"]
    assert h["second_b_semileptonic_fraction"] == 1.0

    def count(truth):
        p = truth.particles
        mother = p.pid[ak.where(p.m1 >= 0, p.m1, 0)]
        lep = (abs(p.pid) == 11) | (abs(p.pid) == 13)
        return (ak.to_numpy(ak.sum(lep & (abs(mother) == 521), axis=1)),
                ak.to_numpy(ak.sum(lep & (abs(mother) == 421), axis=1)))

    truth = generate_chunk(study, cfg, rng_for(3, "hf_study", 0), 20_000)
    n_b, n_c = count(truth)
    assert np.all(n_b == 2)
    assert 0 < np.mean(n_c) / 2 < 1
    physical = generate_chunk(HF, default_config, rng_for(3, "hf", 0), 20_000)
    assert set(np.unique(count(physical)[0])) == {1, 2}
    # biased generation: per candidate, the same weighted rate of events with two truth leptons above 20 GeV
    # (both generated here with both B semi-leptonic; only the thinning differs)
    both = with_sample_settings(default_config, {"generation": {"fast": {"heavy_flavour": {
        "second_b_semileptonic_fraction": 1.0}}}})
    a, a2 = _summaries(generate_chunk(study, cfg, rng_for(4, "hf_study", 0), 200_000), 200_000)
    b, b2 = _summaries(generate_chunk(HF, both, rng_for(5, "hf", 0), 200_000), 200_000)
    pull = (a[-1] - b[-1]) / np.sqrt(a2[-1] + b2[-1])
    assert abs(pull) < 3.5, (a[-1], b[-1], pull)
