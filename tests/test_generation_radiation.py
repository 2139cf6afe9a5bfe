"""QED FSR and underlying event of the fast generator against their analytic expectations;
isolation pass rates of (220, 20) against the study's; the flavour normalisation end to end."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from scipy import stats

from softdisplaced.generation import fast_settings, generate_chunk
from softdisplaced.generation.radiation import fsr_integrals, qed_fsr, underlying_event
from softdisplaced.generation.signal import M_E, M_MU
from softdisplaced.samples import rng_for

N = 200_000


@pytest.fixture(scope="module")
def fsr_cfg(default_config):
    return fast_settings(default_config["generation"])["fsr"]


def _leptons(n, e, mass):
    """``n`` leptons of energy ``e`` along +z, and their log L = ln(Q^2/m^2) for e* = e (Q = 2e)."""
    p = np.sqrt(e * e - mass * mass)
    lep = np.tile([e, 0.0, 0.0, p], (n, 1))
    return lep, np.full(n, e), np.full(n, mass), np.log((2.0 * e / mass) ** 2)


@pytest.mark.parametrize("mass", [M_E, M_MU])
def test_fsr_photon_spectrum_is_the_splitting_function(fsr_cfg, mass):
    """First emissions (max_photons = 1): photon energy fraction x ~ (1 + (1-x)^2)/x on [x_min, 1]
    (chi2 in log bins), emission probability 1 - exp(-lambda), lambda = alpha/2pi L I(x_min)."""
    cfg = {**fsr_cfg, "max_photons": 1}
    lep, e_star, m, big_l = _leptons(N, 10.0, mass)
    after, ph = qed_fsr(np.random.default_rng(1), lep, e_star, m, cfg)
    x = ph["e"] / 10.0
    i_rate, _ = fsr_integrals(cfg["x_min"])
    lam = cfg["alpha_em"] / (2 * np.pi) * big_l * i_rate
    p_emit = 1.0 - np.exp(-lam)
    assert abs(len(x) / N - p_emit) < 4 * np.sqrt(p_emit * (1 - p_emit) / N), (len(x) / N, p_emit)
    edges = np.geomspace(cfg["x_min"], 1.0, 16)
    h, _ = np.histogram(x, edges)

    def prim(t):  # antiderivative of (1 + (1-t)^2)/t
        return 2.0 * np.log(t) - 2.0 * t + 0.5 * t * t

    expected = len(x) * np.diff(prim(edges)) / i_rate
    chi2 = np.sum((h - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, len(h) - 1) > 1e-3, (h, expected)
    # not the flat-in-log spectrum 1/x (the (1 + (1-x)^2)/2 factor is visible)
    flat = len(x) * np.diff(np.log(edges)) / np.log(1.0 / cfg["x_min"])
    assert stats.chi2.sf(np.sum((h - flat) ** 2 / flat), len(h) - 1) < 1e-6


@pytest.mark.parametrize("mass", [M_E, M_MU])
def test_fsr_lepton_energy_loss_and_angles(fsr_cfg, mass):
    """Mean fractional energy loss <1 - E'/E> = 1 - exp(-(alpha/2pi) L J(x_min)) (J -> 4/3); photons
    inside the dead cone theta < m/E make up ln 2 / L of the emissions; energy is conserved."""
    lep, e_star, m, big_l = _leptons(N, 10.0, mass)
    cfg = {**fsr_cfg, "max_photons": 8}
    after, ph = qed_fsr(np.random.default_rng(2), lep, e_star, m, cfg)
    loss = 1.0 - after[:, 0] / lep[:, 0]
    _, j = fsr_integrals(cfg["x_min"])
    expected = 1.0 - np.exp(-cfg["alpha_em"] / (2 * np.pi) * big_l * j)
    assert abs(loss.mean() - expected) < 4 * loss.std() / np.sqrt(N), (loss.mean(), expected)
    # energy conservation lepton + photons
    e_ph = np.bincount(ph["lepton"], weights=ph["e"], minlength=N)
    np.testing.assert_allclose(after[:, 0] + e_ph, lep[:, 0], rtol=1e-12)
    # angle to the +z lepton direction (first emissions are exactly relative to +z)
    first = np.r_[True, np.diff(ph["lepton"]) > 0]
    theta = np.arccos(np.clip(ph["pz"][first] / ph["e"][first], -1, 1))
    f_dead = np.mean(theta < mass / 10.0)
    assert abs(f_dead - np.log(2.0) / big_l) < 4 * np.sqrt(f_dead / first.sum()) + 1e-3, f_dead
    # electrons radiate more than muons: the collinear log
    assert expected > 0.01 if mass == M_E else expected < 0.02


def test_fsr_off_is_the_identity(fsr_cfg):
    lep, e_star, m, _ = _leptons(100, 10.0, M_E)
    after, ph = qed_fsr(np.random.default_rng(3), lep, e_star, m, {**fsr_cfg, "enabled": False})
    np.testing.assert_array_equal(after, lep)
    assert len(ph["e"]) == 0


def test_underlying_event_multiplicity_and_spectrum(default_config):
    cfg = fast_settings(default_config["generation"])["underlying_event"]
    n = 50_000
    ue = underlying_event(np.random.default_rng(4), n, cfg)
    counts = np.bincount(ue["event"], minlength=n)
    assert abs(counts.mean() - cfg["mean_multiplicity"]) < 4 * np.sqrt(cfg["mean_multiplicity"] / n)
    assert np.all(np.diff(ue["event"]) >= 0)
    pt = np.hypot(ue["px"], ue["py"])
    assert pt.min() >= cfg["pt_min_gev"] * (1 - 1e-9)
    charged = ue["charge"] != 0
    assert abs(charged.mean() - cfg["charged_fraction"]) < 0.01
    assert np.all(np.abs(ue["pid"][charged]) == 211) and np.all(ue["pid"][~charged] == 22)
    # pT follows the Tsallis tail: KS against the normalised density above pt_min
    p0, nn, lo = cfg["p0_gev"], cfg["n"], cfg["pt_min_gev"]
    grid = np.linspace(lo, lo + 200 * p0 * nn, 200_001)
    dens = grid * (1 + grid / (nn * p0)) ** -nn
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    assert stats.kstest(pt[:20_000], lambda t: np.interp(t, grid, cdf)).pvalue > 1e-3


def test_isolation_pass_rates_near_the_study():
    """(220, 20), default configuration (the study's card cones and threshold, FSR, underlying event):
    per-lepton pass rates of Iso(e) < 0.12 / Iso(mu) < 0.15 for reconstructed leptons with pT > 15 GeV,
    |eta| < 2.4 within 0.015 of the study's ~0.94 (e) / ~0.95 (mu) (statistical error ~0.003)."""
    from softdisplaced.generation import detector

    s = {"name": "iso", "kind": "signal", "source": "fast", "m_c": 220.0, "dm": 20.0, "ctau_cm": 1.0}
    ev = generate_chunk(s, {"generation": {}}, rng_for(5, "iso", 0), 60_000)
    reco = detector.simulate(ev, {}, rng_for(5, "iso", 0, "detector"))
    for lep, cut, study in (("Electron", 0.12, 0.94), ("Muon", 0.15, 0.95)):
        pt, eta, iso = (ak.to_numpy(ak.flatten(reco[lep][f])) for f in ("PT", "Eta", "IsolationVar"))
        m = (pt > 15) & (np.abs(eta) < 2.4)
        rate = np.mean(iso[m] < cut)
        assert m.sum() > 5000
        assert abs(rate - study) < 0.015, (lep, rate)
