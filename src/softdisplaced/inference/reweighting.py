"""Exact lifetime reweighting (spec section 6) and the study's interpolation approach.

A sample generated with proper decay length c*tau_0 becomes a sample at c*tau_1 with
the per-event weight (product over the two mediators, t = proper c*t of each)

    w = prod_j (tau_0 / tau_1) exp(-t_j (1/tau_1 - 1/tau_0)),

the ratio of the exponential proper-time densities. The weight applies to every
*generated* event; the selection depends on the lifetime only through the event
itself (its decay positions), so the selected yield at tau_1 is

    N_sel(tau_1) / N_gen = (1 / N_gen) sum_{selected i} w_i(tau_1),

which needs only the selected events (the skim) and the generated count
(``n_events_processed``): events not selected at tau_0 have no weight in the sum
because they are not selected at any lifetime either. The effective number of
events (sum w)^2 / sum w^2 measures how well the generated sample covers tau_1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["lifetime_weights", "ctau_grid", "reweight_sums", "effective_sample_size", "interpolate_in_ctau"]


def ctau_grid(grid_cfg) -> np.ndarray:
    """Log-spaced c*tau grid (cm) from ``limits.ctau_grid_cm`` {min, max, n_points}."""
    return np.geomspace(float(grid_cfg["min"]), float(grid_cfg["max"]), int(grid_cfg["n_points"]))


def lifetime_weights(ct_mm, ctau0_cm: float, ctau1_cm) -> np.ndarray:
    """Weights (n_events, n_targets) moving events with proper c*t ``ct_mm`` (n, n_mediators) from c*tau_0 to c*tau_1."""
    ct = np.atleast_2d(np.asarray(ct_mm, float))
    if ct.ndim != 2:
        raise ValueError(f"lifetime_weights: expected (n_events, n_mediators) proper decay lengths, got shape {ct.shape}")
    if np.any(ct < 0) or not np.all(np.isfinite(ct)):
        raise ValueError("lifetime_weights: proper decay lengths must be finite and >= 0")
    tau0 = float(ctau0_cm) * 10.0
    tau1 = np.atleast_1d(np.asarray(ctau1_cm, float)) * 10.0
    if tau0 <= 0 or np.any(tau1 <= 0):
        raise ValueError("lifetime_weights: c*tau must be positive")
    nmed = ct.shape[1]
    tsum = ct.sum(axis=1)[:, None]
    logw = nmed * np.log(tau0 / tau1)[None, :] - tsum * (1.0 / tau1 - 1.0 / tau0)[None, :]
    return np.exp(logw)


def reweight_sums(ct_mm, base_weight, sr, ctau0_cm: float, grid_cm, srs: Sequence[int] = (1, 2, 3),
                  chunk: int = 200000) -> dict:
    """Per SR and grid point: sum of w x base_weight, sum of squares and the effective number of events.

    Returns arrays of shape (len(srs), len(grid)): 'sumw', 'sumw2', 'n_eff', 'n_raw' (unweighted selected count).
    """
    grid = np.atleast_1d(np.asarray(grid_cm, float))
    base = np.asarray(base_weight, float)
    sr = np.asarray(sr)
    out = {k: np.zeros((len(srs), len(grid))) for k in ("sumw", "sumw2")}
    ct = np.asarray(ct_mm, float)
    for start in range(0, len(base), chunk):
        sl = slice(start, start + chunk)
        w = lifetime_weights(ct[sl], ctau0_cm, grid) * base[sl, None]
        for j, r in enumerate(srs):
            m = sr[sl] == r
            out["sumw"][j] += w[m].sum(axis=0)
            out["sumw2"][j] += (w[m] ** 2).sum(axis=0)
    out["n_eff"] = effective_sample_size(out["sumw"], out["sumw2"])
    out["n_raw"] = np.array([[np.sum(sr == r)] * len(grid) for r in srs], dtype=float)
    return out


def effective_sample_size(sumw, sumw2) -> np.ndarray:
    sumw, sumw2 = np.asarray(sumw, float), np.asarray(sumw2, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sumw2 > 0, sumw ** 2 / sumw2, 0.0)


def interpolate_in_ctau(ctau_known, values, grid_cm, floor: float = 1e-300) -> np.ndarray:
    """The study's approach: yields known at separately generated lifetimes, interpolated linearly in
    (log c*tau, log yield) along the last axis of ``values``; NaN outside the generated range."""
    x = np.log(np.asarray(ctau_known, float))
    order = np.argsort(x)
    x = x[order]
    v = np.asarray(values, float)[..., order]
    g = np.log(np.atleast_1d(np.asarray(grid_cm, float)))
    logv = np.log(np.maximum(v, floor))
    flat = logv.reshape(-1, logv.shape[-1])
    res = np.stack([np.interp(g, x, row) for row in flat]).reshape(v.shape[:-1] + (len(g),))
    res = np.exp(res)
    res[..., (g < x[0] - 1e-12) | (g > x[-1] + 1e-12)] = np.nan
    res[res <= floor * 10] = 0.0
    return res
