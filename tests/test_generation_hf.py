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
from softdisplaced.generation.heavyflavour import (direction_density, generate_heavy_flavour, peterson_density,
                                                   sample_heavy_flavour_kinematics, truth_lepton_classes)
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


def test_enough_opposite_sign_emu_events_for_nn_training(hf, default_config):
    """>= 3000 selected e-mu events (no isolation) expected from the default number of candidates
    (samples.hf: events_per_chunk x n_chunks) already without the importance sampling."""
    _, reco = hf
    ok, _ = _emu(reco)
    frac = float(ak.mean(ok))
    h = default_config["samples"]["hf"]
    assert frac * h["events_per_chunk"] * h["n_chunks"] >= 3000, frac


def test_hf_leptons_are_not_isolated(hf):
    _, reco = hf
    ok, (e, mu) = _emu(reco)
    iso = np.concatenate([ak.to_numpy(ak.flatten(e.IsolationVar[ok])), ak.to_numpy(ak.flatten(mu.IsolationVar[ok]))])
    assert np.median(iso) > 0.15
    assert np.mean(iso < 0.12) < 0.5


def test_hf_lepton_pt_slope_close_to_study(hf):
    """Log-slope of the lepton pT spectrum between 20 and 40 GeV within 0.04/GeV of the study's fit."""
    _, reco = hf
    pt = np.concatenate([ak.to_numpy(ak.flatten(c.PT[abs(c.Eta) < 2.4])) for c in (reco["Electron"], reco["Muon"])])
    h, edges = np.histogram(pt, bins=np.arange(20, 42.5, 2.5))
    c = 0.5 * (edges[1:] + edges[:-1])
    slope = np.polyfit(c, np.log(h), 1, w=np.sqrt(h))[0]
    f = lambda x: np.exp(13.65 - 0.23 * x) + np.exp(8.62 - 0.10 * x)  # noqa: E731
    ref = np.polyfit(c, np.log(f(c)), 1)[0]
    assert abs(slope - ref) < 0.04, (slope, ref)


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
    background has 24 % of its pairs below Delta R = 0.4)."""
    cfg = fast_settings(_unbiased(default_config)["generation"])
    kin = sample_heavy_flavour_kinematics(np.random.default_rng(9), 200_000, cfg)
    pr = kin["prods"][0]
    m = pr["sl"] & pr["d_sl"] & (pr["is_e"] != pr["d_is_e"])
    a, x = pr["a"][m], pr["x"][m]
    _, e1, f1 = pt_eta_phi(a[:, 1], a[:, 2], a[:, 3])
    _, e2, f2_ = pt_eta_phi(x[:, 1], x[:, 2], x[:, 3])
    dphi = np.mod(f1 - f2_ + np.pi, 2 * np.pi) - np.pi
    assert np.median(np.hypot(e1 - e2, dphi)) < 0.4
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
