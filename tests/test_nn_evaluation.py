"""ROC / AUC / efficiency / KS helpers (no TensorFlow)."""

import numpy as np
import pytest

from softdisplaced.nn import evaluation as ev


def test_auc_limits_and_ties():
    assert ev.auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert ev.auc([0.1], [0.9]) == 0.0
    assert ev.auc([0.5] * 10, [0.5] * 7) == 0.5  # all tied: mid-ranks


def test_auc_equals_roc_area():
    rng = np.random.default_rng(3)
    s, b = rng.normal(1, 1, 3000), rng.normal(0, 1, 3000)
    thr = np.sort(np.concatenate([s, b, [np.inf]]))
    _, es, eb = ev.roc_curve(s, b, thr)
    area = -np.trapezoid(es, eb)
    assert ev.auc(s, b) == pytest.approx(area, abs=1e-6)
    # binormal with unit shift: AUC = Phi(1/sqrt 2) = 0.760
    assert ev.auc(s, b) == pytest.approx(0.7602, abs=3 * ev.auc_error(0.76, 3000, 3000))


def test_hanley_mcneil_at_half_is_mann_whitney_variance():
    n1, n2 = 40, 70
    assert ev.auc_error(0.5, n1, n2) == pytest.approx(np.sqrt((n1 + n2 + 1) / (12 * n1 * n2)))


def test_auc_error_covers_toy_spread():
    rng = np.random.default_rng(5)
    aucs = [ev.auc(rng.normal(0.8, 1, 300), rng.normal(0, 1, 200)) for _ in range(300)]
    pred = ev.auc_error(float(np.mean(aucs)), 300, 200)
    assert np.std(aucs) == pytest.approx(pred, rel=0.15)


def test_efficiency_binomial():
    scores = np.array([0.95] * 3 + [0.1] * 7)
    e = ev.efficiency(scores, 0.9)
    assert (e["n"], e["n_pass"]) == (10, 3)
    assert e["eff"] == pytest.approx(0.3)
    assert e["err"] == pytest.approx(np.sqrt(0.3 * 0.7 / 10))
    lo, hi = e["interval68"]
    assert lo < 0.3 < hi
    e0 = ev.efficiency(np.zeros(50), 0.9)
    assert e0["eff"] == 0 and e0["interval68"][0] == 0 and 0 < e0["interval68"][1] < 0.05
    # the cut is inclusive
    assert ev.efficiency(np.array([0.9]), 0.9)["eff"] == 1.0


def test_weighted_efficiency_reduces_to_binomial_for_unit_weights():
    rng = np.random.default_rng(2)
    s = rng.random(500)
    a, b = ev.efficiency(s, 0.9), ev.efficiency(s, 0.9, np.ones(500))
    assert a["eff"] == pytest.approx(b["eff"]) and a["err"] == pytest.approx(b["err"])
    w = np.where(s >= 0.9, 2.0, 1.0)
    p = 2 * (s >= 0.9).sum() / w.sum()
    assert ev.efficiency(s, 0.9, w)["eff"] == pytest.approx(p)


def test_ks_detects_shift_only_when_present():
    rng = np.random.default_rng(4)
    same = ev.ks_test(rng.random(2000), rng.random(2000))
    shifted = ev.ks_test(rng.random(2000), rng.random(2000) + 0.1)
    assert same["pvalue"] > 0.001 and shifted["pvalue"] < 1e-6


def test_nan_to_none():
    assert ev.nan_to_none({"a": [1.0, float("nan")], "b": {"c": float("inf")}}) == {"a": [1.0, None], "b": {"c": None}}
