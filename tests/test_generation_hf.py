"""Fast heavy-flavour generator: B lifetime, d0 peak, non-isolated leptons, e-mu yield, pT shape."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from scipy import stats

from softdisplaced.detector import simulate
from softdisplaced.generation import generate_chunk
from softdisplaced.samples import rng_for

N = 40_000
HF = {"name": "hf", "kind": "background", "source": "fast"}


@pytest.fixture(scope="module")
def hf(default_config):
    truth = generate_chunk(HF, default_config, rng_for(11, "hf", 0), N)
    reco = simulate(truth, default_config["detector"], rng_for(11, "hf", 0, "detector"))
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


def test_enough_opposite_sign_emu_events_for_nn_training(hf):
    """>= 3000 selected e-mu events in the default 2 x 200k HF events, i.e. a fraction >= 0.75 %."""
    _, reco = hf
    ok, _ = _emu(reco)
    frac = float(ak.mean(ok))
    assert frac * 400_000 >= 3000, frac


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
    truth, _ = hf
    h = default_config["generation"]["fast"]["heavy_flavour"]
    br, f2 = h["br_semileptonic"], h["second_b_semileptonic_fraction"]
    p = truth.particles
    nlep = ak.to_numpy(ak.sum((abs(p.pid) == 11) | (abs(p.pid) == 13), axis=1))
    w = ak.to_numpy(truth.weight)
    assert set(np.unique(nlep)) == {1, 2}
    np.testing.assert_allclose(w[nlep == 2], 2 * br * br / f2)
    np.testing.assert_allclose(w[nlep == 1], 4 * br * (1 - br) / (1 - f2))
    assert abs(np.mean(nlep == 2) - f2) < 0.01
