"""Figures of merit of a classifier: ROC, AUC (with error), efficiencies at a cut, KS test.

* AUC: Mann-Whitney statistic with mid-ranks for ties (= area under the ROC curve);
  background events may carry weights (the importance-sampled HF sample): then
  AUC = sum_j w_j P(s > b_j) / sum_j w_j; error: Hanley & McNeil (Radiology 143 (1982) 29),
  eq. 2, with the effective background count (sum w)^2 / sum w^2.
* Efficiency at ``score >= cut``: k/n with the binomial error sqrt(p(1-p)/n) and the
  Clopper-Pearson central 68.27 % interval (meaningful also for k = 0 or k = n).
  Weighted efficiencies (d0-efficiency weights) use
  var = (sum_pass w^2 (1-p)^2 + sum_fail w^2 p^2) / (sum w)^2.
* Over-training: two-sample Kolmogorov-Smirnov test of the training-set scores
  against the held-out scores, separately for signal and background.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CL68 = 0.682689492137086


def auc(sig: np.ndarray, bkg: np.ndarray, w_bkg: np.ndarray | None = None) -> float:
    sig = np.asarray(sig, float)
    bkg = np.asarray(bkg, float)
    if len(sig) == 0 or len(bkg) == 0:
        return float("nan")
    if w_bkg is not None:
        w = np.asarray(w_bkg, float)
        s = np.sort(sig)
        lo, hi = np.searchsorted(s, bkg, side="left"), np.searchsorted(s, bkg, side="right")
        above = (len(s) - hi) + 0.5 * (hi - lo)          # signal scores above b_j (ties count 1/2)
        return float(np.sum(w * above) / (len(s) * np.sum(w)))
    ranks = stats.rankdata(np.concatenate([sig, bkg]))
    r_sig = ranks[: len(sig)].sum()
    return float((r_sig - len(sig) * (len(sig) + 1) / 2) / (len(sig) * len(bkg)))


def auc_error(a: float, n_sig: int, n_bkg: int) -> float:
    """Hanley-McNeil standard error of an AUC from n_sig signal and n_bkg background events."""
    if not n_sig or not n_bkg or not np.isfinite(a):
        return float("nan")
    q1 = a / (2 - a)
    q2 = 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_sig - 1) * (q1 - a * a) + (n_bkg - 1) * (q2 - a * a)) / (n_sig * n_bkg)
    return float(np.sqrt(max(var, 0.0)))


def clopper_pearson(k: int, n: int, cl: float = CL68) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    alpha = 1 - cl
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def efficiency(scores: np.ndarray, cut: float, weights: np.ndarray | None = None) -> dict:
    """Fraction of events with score >= cut, binomial error, Clopper-Pearson interval."""
    scores = np.asarray(scores, float)
    passed = scores >= cut
    n = int(len(scores))
    k = int(passed.sum())
    out: dict = {"n": n, "n_pass": k}
    if weights is None:
        p = k / n if n else float("nan")
        out["eff"] = float(p)
        out["err"] = float(np.sqrt(p * (1 - p) / n)) if n else float("nan")
        out["interval68"] = list(clopper_pearson(k, n))
        return out
    w = np.asarray(weights, float)
    sw = w.sum()
    if n == 0 or sw <= 0:
        out.update(eff=float("nan"), err=float("nan"))
        return out
    p = w[passed].sum() / sw
    var = ((w[passed] ** 2).sum() * (1 - p) ** 2 + (w[~passed] ** 2).sum() * p**2) / sw**2
    n_eff = n_effective(w, n)
    # Clopper-Pearson on the effective counts (k_eff = p n_eff out of n_eff), rounded to integers
    out.update(eff=float(p), err=float(np.sqrt(var)), sum_w=float(sw), n_eff=n_eff,
               interval68=list(clopper_pearson(int(round(p * n_eff)), int(round(n_eff)))))
    return out


def ks_test(train: np.ndarray, test: np.ndarray) -> dict:
    if len(train) == 0 or len(test) == 0:
        return {"statistic": float("nan"), "pvalue": float("nan")}
    r = stats.ks_2samp(np.asarray(train, float), np.asarray(test, float))
    return {"statistic": float(r.statistic), "pvalue": float(r.pvalue)}


def n_effective(w: np.ndarray | None, n: int) -> float:
    """(sum w)^2 / sum w^2, or n without weights."""
    if w is None:
        return float(n)
    w = np.asarray(w, float)
    return float(w.sum() ** 2 / np.sum(w ** 2)) if np.any(w) else 0.0


def roc_curve(sig: np.ndarray, bkg: np.ndarray, thresholds: np.ndarray | None = None,
              w_bkg: np.ndarray | None = None):
    """(thresholds, signal efficiency, background efficiency) for score >= threshold (weighted background
    efficiency with ``w_bkg``)."""
    if thresholds is None:
        thresholds = np.round(np.linspace(0.0, 1.0, 1001), 6)
    sig = np.sort(np.asarray(sig, float))
    bkg = np.asarray(bkg, float)

    def frac(s):
        if len(s) == 0:
            return np.full(len(thresholds), np.nan)
        return 1.0 - np.searchsorted(s, thresholds, side="left") / len(s)

    if w_bkg is None or len(bkg) == 0:
        return thresholds, frac(sig), frac(np.sort(bkg))
    order = np.argsort(bkg)
    b, w = bkg[order], np.asarray(w_bkg, float)[order]
    cum = np.concatenate([[0.0], np.cumsum(w)])                 # weight below index i
    i = np.searchsorted(b, thresholds, side="left")
    return thresholds, frac(sig), 1.0 - cum[i] / cum[-1]


def nan_to_none(obj):
    """JSON-safe copy: NaN / inf -> None (softdisplaced.atomic.jsonable)."""
    from ..atomic import jsonable

    return jsonable(obj)
