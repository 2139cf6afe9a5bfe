"""Statistics: the study's R95, CLs upper limits (asymptotic, toys, exact Poisson), s95.

Model (one counting bin per signal region i, all SRs combined):

    n_i ~ Poisson(mu s_i(theta) + b_i(theta)),  theta_m ~ N(0, 1)
    s_i(theta) = s_i exp(sum_m A_im theta_m),   b_i(theta) = b_i exp(sum_m C_im theta_m)

with A_im = ln(1 + delta_im): the cross-section uncertainty (one parameter, all
SRs), the MC statistical uncertainty (one parameter per SR), and C for the
background (transfer factor, correlated over SRs; NN fraction). This is exactly
the pyhf model of :func:`pyhf_spec` (one single-bin channel per SR, ``normsys``
modifiers with the exponential interpolation ``code1``).

Engines (all vectorised over many points, see docs/statistics.md):

* ``q_study`` / ``r95``: the study's Q = sum_i -2 ln(L(S_i+B_i)/L(B_i)), R95 = Q/5.99.
* ``asymptotic``: the profile-likelihood ratio q~mu with the asymptotic formulae
  of Cowan et al. (as pyhf's ``AsymptoticCalculator``), nuisance parameters
  profiled by a batched Newton iteration (numpy), mu95 by bisection in log mu.
  Equal to pyhf's asymptotic CLs (tested) without its per-call overhead.
* ``toys``: hybrid (Cousins-Highland) CLs with the LEP-style statistic Q
  (nominal s, b), background-only pseudo-experiments drawn once per background
  configuration (nuisances drawn from their priors) and reweighted to the s+b
  hypothesis (importance sampling: exact in expectation, common random numbers
  over mu and over the grid so curves are smooth). For a single bin without
  uncertainties this is the exact Poisson CLs.
* ``cls_poisson`` / ``s95_exact``: closed-form single-bin Poisson CLs, with the
  background uncertainty marginalised (log-normal, Gauss-Hermite), for the
  model-independent limits.
* ``mu95_pyhf``: pyhf itself (asymptotic or toy-based), the reference.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special, stats

__all__ = [
    "Q95", "q_study", "r95", "cls_poisson", "s95_exact", "expected_counts_quantiles",
    "LimitInputs", "mu95_asymptotic", "mu95_toys", "mu95", "pyhf_spec", "mu95_pyhf", "NSIGMA", "pyhf_toys_compat",
]

#: 95 % quantile of chi^2 with 2 degrees of freedom, as rounded by the study (5.99)
Q95 = round(float(stats.chi2.ppf(0.95, df=2)), 2)
#: order of the expected band columns: -2, -1, 0 (median), +1, +2 sigma (limits ascending)
NSIGMA = (-2, -1, 0, 1, 2)


# ------------------------------------------------------------------ the study's Q
def q_study(s, b, n=None) -> np.ndarray:
    """Q = sum_i -2 ln(L(s_i + b_i)/L(b_i)) over the last axis; n defaults to b (expected)."""
    s = np.asarray(s, float)
    b = np.asarray(b, float)
    n = b if n is None else np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = 2.0 * (s - n * np.log1p(s / b))
    term = np.where(s == 0, 0.0, term)
    return np.sum(term, axis=-1)


def r95(s, b, n=None) -> np.ndarray:
    """R95 = Q / 5.99 (> 1: excluded at 95 % CL in the study's convention)."""
    return q_study(s, b, n) / Q95


# ------------------------------------------------------- single-bin exact Poisson
def cls_poisson(s, b, n) -> np.ndarray:
    """Exact single-bin CLs = P(N <= n | s + b) / P(N <= n | b) (vectorised)."""
    s, b, n = np.broadcast_arrays(np.asarray(s, float), np.asarray(b, float), np.asarray(n, float))
    return special.gammaincc(n + 1, s + b) / special.gammaincc(n + 1, b)


def _lognormal_nodes(b, b_err, n_nodes=24):
    """Nodes/weights of the log-normal prior (mean b, sd b_err) by Gauss-Hermite quadrature."""
    b = np.asarray(b, float)[..., None]
    rel = np.where(b > 0, np.asarray(b_err, float)[..., None] / np.where(b > 0, b, 1), 0.0)
    sig = np.sqrt(np.log1p(rel ** 2))
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / w.sum()
    return b * np.exp(sig * x - 0.5 * sig ** 2), np.broadcast_to(w, b.shape[:-1] + (n_nodes,))


def cls_poisson_marginal(s, b, n, b_err=0.0) -> np.ndarray:
    """Single-bin CLs with the background marginalised over a log-normal prior (Cousins-Highland)."""
    s = np.asarray(s, float)
    bn, w = _lognormal_nodes(np.broadcast_to(b, np.shape(s)), np.broadcast_to(b_err, np.shape(s)))
    n = np.broadcast_to(np.asarray(n, float), np.shape(s))[..., None]
    sb = np.sum(w * special.gammaincc(n + 1, s[..., None] + bn), axis=-1)
    bb = np.sum(w * special.gammaincc(n + 1, bn), axis=-1)
    return sb / bb


def expected_counts_quantiles(b, b_err=0.0, nsigma=NSIGMA) -> np.ndarray:
    """Background-only quantiles of n (marginal over the b prior) at Phi(-k) for k in nsigma: shape (..., 5).

    Column j is the count whose limit is the expected band edge nsigma[j] (low counts -> low limits).
    """
    b = np.atleast_1d(np.asarray(b, float))
    bn, w = _lognormal_nodes(b, np.broadcast_to(b_err, b.shape))
    nmax = int(np.max(stats.poisson.ppf(1 - 1e-9, bn.max())) + 5)
    ks = np.arange(nmax + 1)
    cdf = np.sum(w[..., None] * stats.poisson.cdf(ks, bn[..., None]), axis=-2)     # (..., nmax+1)
    out = np.empty(b.shape + (len(nsigma),))
    for j, k in enumerate(nsigma):
        p = stats.norm.cdf(k)
        out[..., j] = np.argmax(cdf >= p - 1e-12, axis=-1)
    return out


def s95_exact(b, n, b_err=0.0, cl: float = 0.95, s_max=None) -> np.ndarray:
    """Model-independent upper limit on signal events (single bin, exact CLs), vectorised by bisection."""
    b, n, b_err = np.broadcast_arrays(np.atleast_1d(np.asarray(b, float)), np.atleast_1d(np.asarray(n, float)),
                                      np.atleast_1d(np.asarray(b_err, float)))
    alpha = 1 - cl
    lo = np.zeros(b.shape)
    hi = np.full(b.shape, 10.0) + 10 * n + 10 * np.sqrt(b + b_err ** 2) if s_max is None else np.full(b.shape, s_max)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        excl = cls_poisson_marginal(mid, b, n, b_err) < alpha
        hi = np.where(excl, mid, hi)
        lo = np.where(excl, lo, mid)
    return 0.5 * (lo + hi)


# ----------------------------------------------------------- the combined model
@dataclass
class LimitInputs:
    """Many points of the combined counting model.

    s, b: (P, K) nominal signal (at mu = 1) and background per SR;
    A, C: (P, K, M) log-effects of the M nuisance parameters on signal and background;
    n_obs: (P, K) observed counts or None (expected limits only).
    """
    s: np.ndarray
    b: np.ndarray
    A: np.ndarray
    C: np.ndarray
    n_obs: np.ndarray | None = None

    @classmethod
    def build(cls, s, b, s_stat_err=None, s_rel_xsec=0.0, b_rel_syst: Sequence = (), n_obs=None) -> "LimitInputs":
        """From arrays: s, b, s_stat_err (P, K); s_rel_xsec scalar or (P,); b_rel_syst: list of (P, K) or scalars,
        each one nuisance parameter correlated over the SRs."""
        s = np.atleast_2d(np.asarray(s, float))
        P, K = s.shape
        b = np.broadcast_to(np.asarray(b, float), (P, K)).copy()
        cols_a, cols_c = [], []
        zero = np.zeros((P, K))
        xs = np.broadcast_to(np.asarray(s_rel_xsec, float), (P,))
        if np.any(xs > 0):
            cols_a.append(np.repeat(np.log1p(xs)[:, None], K, axis=1))
            cols_c.append(zero)
        if s_stat_err is not None:
            rel = np.where(s > 0, np.broadcast_to(np.asarray(s_stat_err, float), (P, K)) / np.where(s > 0, s, 1), 0.0)
            for k in range(K):
                if np.any(rel[:, k] > 0):
                    col = zero.copy()
                    col[:, k] = np.log1p(rel[:, k])
                    cols_a.append(col)
                    cols_c.append(zero)
        for r in b_rel_syst:
            r = np.broadcast_to(np.asarray(r, float), (P, K))
            if np.any(r > 0):
                cols_a.append(zero)
                cols_c.append(np.log1p(r))
        M = len(cols_a)
        A = np.stack(cols_a, axis=-1) if M else np.zeros((P, K, 0))
        C = np.stack(cols_c, axis=-1) if M else np.zeros((P, K, 0))
        return cls(s=s, b=np.clip(b, 1e-12, None), A=A, C=C,
                   n_obs=None if n_obs is None else np.broadcast_to(np.asarray(n_obs, float), (P, K)).copy())

    def take(self, idx) -> "LimitInputs":
        return LimitInputs(self.s[idx], self.b[idx], self.A[idx], self.C[idx],
                           None if self.n_obs is None else self.n_obs[idx])


def _nll(mu, theta, s, b, A, C, n):
    es = s * np.exp((A @ theta[..., None])[..., 0])
    eb = b * np.exp((C @ theta[..., None])[..., 0])
    lam = mu[:, None] * es + eb
    with np.errstate(divide="ignore", invalid="ignore"):
        t = lam - np.where(n > 0, n * np.log(lam), 0.0)
    return np.sum(t, axis=1) + 0.5 * np.sum(theta ** 2, axis=1), es, eb, lam


def _fit(s, b, A, C, n, mu=None, theta0=None, iters=40, free_mu=False, mu0=None):
    """Batched Newton minimisation of the NLL over theta (and mu >= 0 when free_mu)."""
    P, K, M = A.shape
    theta = np.zeros((P, M)) if theta0 is None else theta0.copy()
    if free_mu:
        mu = np.maximum(np.zeros(P) if mu0 is None else mu0.copy(), 0.0)
    nll, es, eb, lam = _nll(mu, theta, s, b, A, C, n)
    npar = M + (1 if free_mu else 0)
    if npar == 0:
        return mu, theta, nll
    eye = np.eye(npar)
    for _ in range(iters):
        # derivatives of lambda_k with respect to the parameters (mu first when free)
        dth = mu[:, None, None] * es[..., None] * A + eb[..., None] * C          # (P,K,M)
        if free_mu:
            D = np.concatenate([es[..., None], dth], axis=-1)                  # (P,K,1+M)
        else:
            D = dth
        resid = 1.0 - n / lam                                                  # (P,K)
        g = (resid[:, None, :] @ D)[:, 0, :]
        if M:
            g[:, npar - M:] += theta
        # Hessian: sum n/lam^2 D D^T + max(resid,0) * d2 lambda + identity on theta (PD by construction)
        Dt = np.swapaxes(D, 1, 2)
        H = Dt @ (D * (n / lam ** 2)[..., None])
        r = np.maximum(resid, 0.0)
        d2 = np.swapaxes(A, 1, 2) @ (A * (r * mu[:, None] * es)[..., None]) + \
            np.swapaxes(C, 1, 2) @ (C * (r * eb)[..., None])
        if free_mu:
            H[:, 1:, 1:] += d2
            cross = ((r * es)[:, None, :] @ A)[:, 0, :]
            H[:, 0, 1:] += cross
            H[:, 1:, 0] += cross
            H[:, 0, 0] += 1e-12
            H[:, 1:, 1:] += np.eye(M)
        else:
            H += d2 + np.eye(M)
        step = np.linalg.solve(H + 1e-12 * eye, g[..., None])[..., 0]
        t = np.ones(P)
        for _half in range(6):
            new_theta = theta - t[:, None] * step[:, npar - M:] if M else theta
            new_mu = np.maximum(mu - t * step[:, 0], 0.0) if free_mu else mu
            new_nll, nes, neb, nlam = _nll(new_mu, new_theta, s, b, A, C, n)
            ok = new_nll <= nll + 1e-10 * np.abs(nll)
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        ok = new_nll <= nll + 1e-10 * np.abs(nll)
        theta = np.where(ok[:, None], new_theta, theta)
        if free_mu:
            mu = np.where(ok, new_mu, mu)
        nll = np.where(ok, new_nll, nll)
        es = np.where(ok[:, None], nes, es)
        eb = np.where(ok[:, None], neb, eb)
        lam = np.where(ok[:, None], nlam, lam)
        if np.max(np.abs(step)) < 1e-7:
            break
    return mu, theta, nll


def _asimov_b(inp: LimitInputs, theta):
    return inp.b * np.exp(np.einsum("pkm,pm->pk", inp.C, theta))


def _cls_asymptotic(sqrtq, sqrtqa, nsig=None):
    """pyhf's q~mu asymptotic CLs; with nsig: the expected CLs at test statistic = nsig (b-only quantile)."""
    sqrtqa = np.maximum(sqrtqa, 1e-12)
    if nsig is not None:
        t = np.asarray(nsig, float)
        return stats.norm.sf(t + sqrtqa) / stats.norm.sf(t)
    q, qa = sqrtq ** 2, sqrtqa ** 2
    teststat = np.where(sqrtq <= sqrtqa, sqrtq - sqrtqa, (q - qa) / (2 * sqrtqa))
    return stats.norm.sf(teststat + sqrtqa) / stats.norm.sf(teststat)


def _bisect_log(func, lo, hi, alpha, iters=60, tol=1e-5):
    """Per point: the mu where func(mu) (CLs, decreasing in mu) crosses alpha.

    Vectorised Illinois (modified regula falsi) on f(x) = ln CLs(e^x) - ln alpha, x = ln mu,
    inside a bracket that is widened until it contains the crossing; converges in ~10 evaluations
    since ln CLs is close to linear in ln mu. ``iters`` bounds the evaluations.
    """
    la = math.log(alpha)

    def f(x):
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(func(np.exp(x)), 1e-300)) - la

    xa, xb = np.log(lo).astype(float), np.log(hi).astype(float)
    fa, fb = f(xa), f(xb)
    for _ in range(8):                         # widen until fa > 0 > fb
        bad_hi, bad_lo = fb > 0, fa < 0
        if not (bad_hi.any() or bad_lo.any()):
            break
        xb = np.where(bad_hi, xb + 3.0, xb)
        xa = np.where(bad_lo, xa - 3.0, xa)
        fa, fb = f(xa), f(xb)
    side = np.zeros(xa.shape, int)
    for _ in range(iters):
        denom = fb - fa
        xc = np.where(np.abs(denom) > 0, xb - fb * (xb - xa) / np.where(denom == 0, 1, denom), 0.5 * (xa + xb))
        xc = np.clip(xc, np.minimum(xa, xb), np.maximum(xa, xb))
        fc = f(xc)
        pos = fc > 0                           # crossing between xc and xb
        # Illinois: halve the retained end point's function value when the same side is kept twice
        fb_new = np.where(pos, fb, fc)
        xb_new = np.where(pos, xb, xc)
        fa_new = np.where(pos, fc, fa)
        xa_new = np.where(pos, xc, xa)
        fa_new = np.where(~pos & (side == -1), fa_new * 0.5, fa_new)
        fb_new = np.where(pos & (side == 1), fb_new * 0.5, fb_new)
        side = np.where(pos, 1, -1)
        xa, xb, fa, fb = xa_new, xb_new, fa_new, fb_new
        if np.all((np.abs(xb - xa) < tol) | (np.abs(fc) < 1e-7)):
            break
    with np.errstate(invalid="ignore"):
        x = np.where(np.abs(fb - fa) > 0, xb - fb * (xb - xa) / np.where(fa == fb, 1, fb - fa), 0.5 * (xa + xb))
    return np.exp(np.clip(x, np.minimum(xa, xb), np.maximum(xa, xb)))


def _bracket(inp: LimitInputs):
    # mu S_tot < 0.5 is never excluded at 95 % CL; the asymptotic median limit is below
    # (1.96 + 2) sqrt(b_total (1 + syst)) / S in the most background-dominated case
    stot = np.maximum(inp.s.sum(axis=1), 1e-300)
    syst = np.exp(np.abs(inp.C).sum(axis=(1, 2)))
    hi = (10.0 + 10.0 * np.sqrt(inp.b.sum(axis=1)) * syst + 0.5 * inp.b.sum(axis=1) * (syst - 1)) / stot
    if inp.n_obs is not None:
        hi = hi + 10.0 * inp.n_obs.sum(axis=1) / stot
    return 0.2 / stot, hi * 20


def mu95_asymptotic(inp: LimitInputs, cl: float = 0.95) -> dict:
    """Asymptotic CLs (q~mu) upper limits on mu: 'exp' (P, 5) for NSIGMA, 'obs' (P,) or NaN."""
    alpha = 1 - cl
    P = inp.s.shape[0]
    lo, hi = _bracket(inp)
    # Asimov (background-only) data: nuisances at the conditional mu = 0 fit of the observed data (pyhf),
    # at nominal when there are no observations
    if inp.n_obs is not None:
        _, th0, _ = _fit(inp.s, inp.b, inp.A, inp.C, inp.n_obs, mu=np.zeros(P))
    else:
        th0 = np.zeros((P, inp.A.shape[2]))
    asimov = _asimov_b(inp, th0)
    aux_shift = th0   # Asimov auxiliary data sit at the fitted nuisance values
    # constraint with auxiliary data at th0: 0.5 theta^2 - theta.th0 (+ const)
    nll_a0 = _nll(np.zeros(P), th0, inp.s, inp.b, inp.A, inp.C, asimov)[0] - np.sum(th0 * aux_shift, 1)

    warm: dict = {}

    def q_asimov(mu, idx):
        s, b, A, C = inp.s[idx], inp.b[idx], inp.A[idx], inp.C[idx]
        n = asimov[idx]
        shift = aux_shift[idx]
        key = len(idx)
        start = warm.get(key, th0[idx])   # warm start from the previous bisection step
        # constraint centred at the Asimov auxiliary value: 0.5 (theta - shift)^2 = 0.5 theta^2 - theta shift + const
        _, th, nll = _fit_shifted(s, b, A, C, n, mu, shift, start)
        warm[key] = th
        return np.sqrt(np.maximum(2 * (nll - nll_a0[idx]), 0.0))

    # all band edges at once: point p, edge j -> row p * 5 + j
    nb = len(NSIGMA)
    rep = np.repeat(np.arange(P), nb)
    nsig = -np.tile(np.asarray(NSIGMA, float), P)
    exp = _bisect_log(lambda mu: _cls_asymptotic(None, q_asimov(mu, rep), nsig=nsig),
                      lo[rep], hi[rep], alpha).reshape(P, nb)
    obs = np.full(P, np.nan)
    if inp.n_obs is not None:
        mu_hat, th_hat, nll_hat = _fit(inp.s, inp.b, inp.A, inp.C, inp.n_obs, free_mu=True,
                                       mu0=np.zeros(P))

        def cls_obs(mu):
            _, _, nll_mu = _fit(inp.s, inp.b, inp.A, inp.C, inp.n_obs, mu=mu)
            q = np.where(mu_hat <= mu, np.maximum(2 * (nll_mu - nll_hat), 0.0), 0.0)
            return _cls_asymptotic(np.sqrt(q), q_asimov(mu, np.arange(P)))

        obs = _bisect_log(cls_obs, lo, hi, alpha)
    return {"exp": exp, "obs": obs, "method": np.array(["asymptotic"] * P)}


def _fit_shifted(s, b, A, C, n, mu, shift, theta0):
    """Conditional fit with Gaussian constraints centred at ``shift`` (Asimov auxiliary data).

    Substituting theta = shift + u turns it into the standard problem for u with modified nominal yields.
    """
    s2 = s * np.exp(np.einsum("pkm,pm->pk", A, shift))
    b2 = b * np.exp(np.einsum("pkm,pm->pk", C, shift))
    _, u, nll = _fit(s2, b2, A, C, n, mu=np.broadcast_to(mu, (s.shape[0],)).astype(float),
                     theta0=theta0 - shift)
    theta = shift + u
    # express the NLL with the original constraint convention 0.5 theta^2 - theta.shift (+const)
    nll = nll - 0.5 * np.sum(u ** 2, 1) + 0.5 * np.sum(theta ** 2, 1) - np.sum(theta * shift, 1)
    return None, theta, nll


# ------------------------------------------------------------------------ toys
def _toy_counts(b, C, n_toys, rng):
    """Background-only pseudo-experiments (hybrid): theta ~ N(0,1), n ~ Poisson(b(theta)). b (K,), C (K, M)."""
    M = C.shape[1]
    theta = rng.standard_normal((n_toys, M))
    lam = b[None, :] * np.exp(theta @ C.T)
    return rng.poisson(lam).astype(float), theta


def mu95_toys(inp: LimitInputs, cl: float = 0.95, n_toys: int = 5000, seed: int = 0, chunk: int = 64) -> dict:
    """Hybrid CLs with the statistic Q (nominal s, b) from background-only toys reweighted to s + b.

    Points sharing the same background configuration (b, C) share the toys. Returns 'exp' (P, 5), 'obs' (P,).
    """
    alpha = 1 - cl
    P, K = inp.s.shape
    exp = np.full((P, len(NSIGMA)), np.nan)
    obs = np.full(P, np.nan)
    keys = {}
    for p in range(P):
        key = (inp.b[p].tobytes(), inp.C[p].tobytes())
        keys.setdefault(key, []).append(p)
    # CLs >= exp(-mu S) for this statistic, so mu S < 0.5 is never excluded at 95 %
    stot = np.maximum(inp.s.sum(axis=1), 1e-300)
    lo_all, hi_all = 0.5 / stot, 10 * _bracket(inp)[1] / 1e3
    for gi, idx in enumerate(keys.values()):
        idx = np.asarray(idx)
        rng = np.random.default_rng([seed, gi])
        n_t, th_t = _toy_counts(inp.b[idx[0]], inp.C[idx[0]], n_toys, rng)   # (T,K), (T,M)
        b_nom = inp.b[idx[0]]
        b_t = b_nom[None, :] * np.exp(th_t @ inp.C[idx[0]].T)                 # (T,K)
        for start in range(0, len(idx), chunk):
            sel = idx[start:start + chunk]
            s = inp.s[sel]                                                      # (p,K)
            s_t = (s[:, None, :] * np.exp(np.einsum("pkm,tm->ptk", inp.A[sel], th_t))).astype(np.float32)  # (p,T,K)
            ratio_t = s_t / b_t[None].astype(np.float32)                        # (p,T,K)
            s_tot_t = s_t.sum(2)
            n_t32 = n_t.astype(np.float32)[None]

            def stat(mu):
                w = 2 * np.log1p(mu[:, None] * s / b_nom[None, :])              # (p,K)
                q_t = 2 * (mu * s.sum(1))[:, None] - (w @ n_t.T)                  # (p,T)
                mu32 = mu.astype(np.float32)
                logr = -(mu32[:, None] * s_tot_t) + np.sum(n_t32 * np.log1p(mu32[:, None, None] * ratio_t), 2)
                return q_t, np.exp(logr), w

            def cls_at(mu, q_obs_fn):
                q_t, r_t, w = stat(mu)
                q_obs = q_obs_fn(mu, q_t, w)
                ind = q_t >= q_obs[:, None] - 1e-9 * np.maximum(1, np.abs(q_obs[:, None]))
                clsb = np.mean(ind * r_t, axis=1)
                clb = np.mean(ind, axis=1)
                return np.where(clb > 0, clsb / np.maximum(clb, 1e-300), 1.0)

            lo, hi = lo_all[sel], hi_all[sel]
            for j, k in enumerate(NSIGMA):
                # b-only quantile of Q: larger Q is more background-like, so the +k (stronger) band edge
                # uses the upper quantile Phi(k) ... column k: limit ascending with k
                prob = stats.norm.cdf(k)
                exp[sel, j] = _bisect_log(
                    lambda mu, prob=prob: cls_at(mu, lambda m, q_t, w: np.quantile(q_t, 1 - prob, axis=1,
                                                                                    method="inverted_cdf")),
                    lo, hi, alpha)
            if inp.n_obs is not None:
                n_obs = inp.n_obs[sel]
                obs[sel] = _bisect_log(
                    lambda mu: cls_at(mu, lambda m, q_t, w: 2 * m * s.sum(1) - np.sum(w * n_obs, 1)),
                    lo, hi, alpha)
    return {"exp": exp, "obs": obs, "method": np.array(["toys"] * P)}


def mu95(inp: LimitInputs, method: str = "auto", asymptotic_min_b: float = 1.0, cl: float = 0.95,
         n_toys: int = 5000, seed: int = 0) -> dict:
    """Upper limits on mu for every point; 'auto' uses toys where min_i b_i < asymptotic_min_b."""
    P = inp.s.shape[0]
    if method == "asymptotic":
        use_toys = np.zeros(P, bool)
    elif method == "toys":
        use_toys = np.ones(P, bool)
    elif method == "auto":
        use_toys = inp.b.min(axis=1) < asymptotic_min_b
    else:
        raise ValueError(f"limits.cls.method: unknown method {method!r} (auto, asymptotic, toys)")
    exp = np.full((P, len(NSIGMA)), np.nan)
    obs = np.full(P, np.nan)
    meth = np.empty(P, dtype=object)
    valid = inp.s.sum(axis=1) > 0
    for flag, fn in ((False, lambda i: mu95_asymptotic(i, cl)), (True, lambda i: mu95_toys(i, cl, n_toys, seed))):
        idx = np.where((use_toys == flag) & valid)[0]
        if len(idx):
            r = fn(inp.take(idx))
            exp[idx], obs[idx], meth[idx] = r["exp"], r["obs"], r["method"]
    meth[~valid] = "no_signal"
    exp[~valid] = np.inf
    obs[~valid] = np.inf if inp.n_obs is not None else np.nan
    return {"exp": exp, "obs": obs, "method": meth}


# -------------------------------------------------------------------------- pyhf
def pyhf_spec(s, b, s_stat_err=None, s_rel_xsec=0.0, b_rel_syst=(), names=None) -> dict:
    """pyhf workspace-free model spec equivalent to :class:`LimitInputs` for one point (lists of length K)."""
    s = list(map(float, s))
    K = len(s)
    names = names or [f"SR{k + 1}" for k in range(K)]
    channels = []
    for k in range(K):
        smods = [{"name": "mu", "type": "normfactor", "data": None}]
        if s_rel_xsec > 0:
            smods.append({"name": "xsec", "type": "normsys", "data": {"hi": 1 + s_rel_xsec, "lo": 1 / (1 + s_rel_xsec)}})
        if s_stat_err is not None and s[k] > 0 and s_stat_err[k] > 0:
            r = s_stat_err[k] / s[k]
            smods.append({"name": f"mcstat_{names[k]}", "type": "normsys", "data": {"hi": 1 + r, "lo": 1 / (1 + r)}})
        bmods = []
        for j, rel in enumerate(b_rel_syst):
            rk = float(np.broadcast_to(rel, (K,))[k])
            if rk > 0:
                bmods.append({"name": f"bkg_syst{j}", "type": "normsys", "data": {"hi": 1 + rk, "lo": 1 / (1 + rk)}})
        channels.append({"name": names[k], "samples": [
            {"name": "signal", "data": [s[k]], "modifiers": smods},
            {"name": "background", "data": [max(float(b[k]), 1e-12)], "modifiers": bmods},
        ]})
    return {"channels": channels}


@contextlib.contextmanager
def pyhf_toys_compat():
    """pyhf 0.7.6's numpy backend calls ``np.percentile(..., interpolation=...)``, which numpy >= 2.4 no
    longer accepts, so every toy-based hypotest fails with a TypeError. Inside this context the backend's
    percentile uses ``method=`` instead (same result); the original is restored on exit."""
    import importlib
    import inspect

    cls = importlib.import_module("pyhf.tensor.numpy_backend").numpy_backend
    if "interpolation" in inspect.signature(np.percentile).parameters:
        yield
        return
    original = cls.percentile

    def percentile(self, tensor_in, q, axis=None, interpolation="linear"):
        return np.percentile(tensor_in, q, axis=axis, method=interpolation)

    cls.percentile = percentile
    try:
        yield
    finally:
        cls.percentile = original


def mu95_pyhf(spec: dict, n_obs=None, calctype: str = "asymptotics", ntoys: int = 2000, scan=None) -> dict:
    """pyhf upper limit (CLs, q~mu): {'obs', 'exp' (5, ascending)}; n_obs None -> Asimov b-only data."""
    import pyhf

    pyhf.set_backend("numpy")
    model = pyhf.Model(spec, poi_name="mu", modifier_settings={"normsys": {"interpcode": "code1"},
                                                                 "histosys": {"interpcode": "code0"}})
    bkg = model.expected_data(model.config.suggested_init(), include_auxdata=False)
    if n_obs is None:
        init = model.config.suggested_init()
        init[model.config.poi_index] = 0.0
        main = list(model.expected_data(init, include_auxdata=False))
    else:
        main = list(map(float, n_obs))
    data = main + list(model.config.auxdata)
    if scan is None:
        stot = sum(sum(s["data"]) for c in spec["channels"] for s in c["samples"] if s["name"] == "signal")
        hi = 3 * (3 + 2 * math.sqrt(sum(bkg) / 2)) / stot
        scan = np.linspace(0, hi, 61)
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, max(float(np.max(scan)) * 2, 2.0))   # contains the init value 1
    kwargs = {"calctype": calctype, "test_stat": "qtilde", "par_bounds": bounds}
    if calctype == "toybased":
        kwargs["ntoys"] = ntoys
    with pyhf_toys_compat():
        obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=scan, level=0.05, **kwargs)
    return {"obs": float(obs), "exp": [float(x) for x in exp]}
