"""Exact lifetime reweighting checked against independently generated toy samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skim_factory import toy_mediator_events

from softdisplaced.inference import limits as lm
from softdisplaced.inference import reweighting as rw

N_GEN = 300_000
TRACKER = dict(r_min_mm=0.3, r_max_mm=8.0, sr_edges_mm=(0.8, 2.0))
# an acceptance that bounds the proper decay length to a few c*tau_0 (r < 0.05 mm, beta*gamma_T >= 0.13):
# only there are the weights of an upward move by more than 2x bounded (see docs/statistics.md)
SHORT = dict(r_min_mm=0.002, r_max_mm=0.05, sr_edges_mm=(0.012, 0.025))


def _independent(ctau_cm, seed, acc=TRACKER):
    ct, sr, n = toy_mediator_events(N_GEN, ctau_cm, np.random.default_rng(seed), **acc)
    counts = np.array([np.sum(sr == r) for r in (1, 2, 3)], float)
    return counts / n, np.sqrt(counts) / n


def _reweighted(ctau0, ctau1, seed, normalised=True, acc=TRACKER):
    ct, sr, n = toy_mediator_events(N_GEN, ctau0, np.random.default_rng(seed), **acc)
    w = rw.lifetime_weights(ct, ctau0, [ctau1])[:, 0]
    if not normalised:   # a wrong weight (without the tau0/tau1 factors) must fail the same test
        w = w * (ctau1 / ctau0) ** 2
    sums = rw.reweight_sums(ct, np.ones(len(w)) if normalised else (ctau1 / ctau0) ** 2 * np.ones(len(w)),
                            sr, ctau0, [ctau1])
    eff = sums["sumw"][:, 0] / n
    err = np.sqrt(sums["sumw2"][:, 0]) / n
    if normalised:
        assert eff == pytest.approx(np.array([w[sr == r].sum() for r in (1, 2, 3)]) / n)
    return eff, err, sums["n_eff"][:, 0]


def _chi2_pvalue(a, ea, b, eb):
    chi2 = float(np.sum((a - b) ** 2 / (ea ** 2 + eb ** 2)))
    return chi2, stats.chi2.sf(chi2, len(a))


# c*tau in cm: a 10x move up, a 0.1x move down and two smaller moves
@pytest.mark.parametrize("ctau0,ctau1,acc", [(0.01, 0.1, SHORT), (0.5, 0.05, TRACKER), (0.3, 0.1, TRACKER),
                                             (0.1, 0.2, TRACKER)], ids=["x10", "x0.1", "x0.33", "x2"])
def test_reweighted_sample_matches_independent_sample(ctau0, ctau1, acc):
    eff_rw, err_rw, n_eff = _reweighted(ctau0, ctau1, seed=11, acc=acc)
    eff_ind, err_ind = _independent(ctau1, seed=99, acc=acc)
    chi2, p = _chi2_pvalue(eff_rw, err_rw, eff_ind, err_ind)
    assert p > 1e-3, (chi2, eff_rw, eff_ind)
    assert np.all(n_eff > 50)


def test_wrong_weights_fail_the_same_test():
    eff_bad, err_bad, _ = _reweighted(0.5, 0.05, seed=11, normalised=False)
    eff_ind, err_ind = _independent(0.05, seed=99)
    _, p = _chi2_pvalue(eff_bad, err_bad, eff_ind, err_ind)
    assert p < 1e-6


def test_weights_average_to_one_over_generated_events():
    rng = np.random.default_rng(5)
    ct = rng.exponential(10.0, size=(400_000, 2))        # c*tau_0 = 1 cm
    for ctau1 in (0.5, 2.0):
        w = rw.lifetime_weights(ct, 1.0, [ctau1])[:, 0]
        assert w.mean() == pytest.approx(1.0, abs=5 * w.std() / np.sqrt(len(w)))
    assert rw.lifetime_weights(ct[:10], 1.0, [1.0]) == pytest.approx(np.ones((10, 1)))


def test_pooled_samples_reproduce_an_independent_sample():
    samples = []
    for ctau0, seed in ((0.03, 1), (1.0, 2)):
        ct, sr, n = toy_mediator_events(N_GEN, ctau0, np.random.default_rng(seed))
        samples.append(dict(ct_mm=ct, base=np.ones(len(sr)), sr=sr, n_gen=n, ctau_cm=ctau0))
    pe = lm.pooled_efficiency(samples, [0.2])
    eff_ind, err_ind = _independent(0.2, seed=77)
    _, p = _chi2_pvalue(pe["eff"][:, 0], pe["eff_err"][:, 0], eff_ind, err_ind)
    assert p > 1e-3
    # a single sample: pooling reduces to the plain per-event weights
    one = lm.pooled_efficiency(samples[:1], [0.2])
    w = rw.lifetime_weights(samples[0]["ct_mm"], 0.03, [0.2])[:, 0]
    assert one["eff"][2, 0] == pytest.approx(w[samples[0]["sr"] == 3].sum() / N_GEN)


def test_effective_sample_size_and_interpolation():
    assert rw.effective_sample_size([10.0], [10.0])[0] == pytest.approx(10.0)
    assert rw.effective_sample_size([4.0], [16.0])[0] == pytest.approx(1.0)
    # the study's interpolation is exact for a power law in c*tau and NaN outside the generated range
    ct = [0.1, 1.0, 10.0, 100.0]
    vals = [3.0 * c ** -0.7 for c in ct]
    out = rw.interpolate_in_ctau(ct, vals, [0.3, 5.0, 1000.0])
    assert out[:2] == pytest.approx([3.0 * 0.3 ** -0.7, 3.0 * 5.0 ** -0.7])
    assert np.isnan(out[2])


def test_grid_from_config():
    g = rw.ctau_grid({"min": 0.01, "max": 1000.0, "n_points": 41})
    assert len(g) == 41 and g[0] == pytest.approx(0.01) and g[-1] == pytest.approx(1000.0)
    assert np.allclose(np.diff(np.log(g)), np.log(10) / 8)


def test_small_effective_sample_size_is_visible_when_the_sample_does_not_cover_the_target():
    # a 10x move up with a tracker-sized acceptance far beyond c*tau_0: the weights have (nearly) infinite
    # variance, a few events dominate, and the effective number of events says so
    ct, sr, n = toy_mediator_events(N_GEN, 0.1, np.random.default_rng(4), **TRACKER)
    bad = rw.reweight_sums(ct, np.ones(len(sr)), sr, 0.1, [1.0])
    good = rw.reweight_sums(ct, np.ones(len(sr)), sr, 0.1, [0.05])
    assert np.all(bad["n_eff"][:, 0] < 0.02 * bad["n_raw"][:, 0])
    assert np.all(good["n_eff"][:, 0] > 0.2 * good["n_raw"][:, 0])
