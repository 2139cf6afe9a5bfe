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
  (nominal s, b), pseudo-experiments drawn once per background configuration
  (nuisances from their priors, counts by inverse CDF, seeded by the background)
  and reweighted to the s+b hypothesis (common random numbers over mu and over
  the grid so curves are smooth); where the weights degenerate (large counts with
  a wide prior) s+b toys are drawn instead. For a single bin without
  uncertainties this is the exact Poisson CLs.

Inputs are validated (finite, >= 0) with errors naming the argument and the value;
the limits b -> 0 and zero signal are defined (see the functions).
* ``cls_poisson`` / ``s95_exact``: closed-form single-bin Poisson CLs, with the
  background uncertainty marginalised (log-normal, Gauss-Hermite), for the
  model-independent limits.
* ``mu95_pyhf``: pyhf itself (asymptotic or toy-based), the reference.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special, stats

log = logging.getLogger(__name__)

__all__ = [
    "Q95", "q_study", "r95", "cls_poisson", "s95_exact", "expected_counts_quantiles",
    "LimitInputs", "mu95_asymptotic", "mu95_toys", "mu95", "uses_toys", "pyhf_spec", "mu95_pyhf", "NSIGMA", "pyhf_toys_compat",
]

#: 95 % quantile of chi^2 with 2 degrees of freedom, as rounded by the study (5.99)
Q95 = round(float(stats.chi2.ppf(0.95, df=2)), 2)
#: order of the expected band columns: -2, -1, 0 (median), +1, +2 sigma (limits ascending)
NSIGMA = (-2, -1, 0, 1, 2)
#: background used in place of an exact zero in the combined model (events): the likelihood needs
#: b > 0 under the background-only hypothesis; 1e-12 events change no limit (CLs differs by ~1e-12)
B_FLOOR = 1e-12
#: toy CLs: reweighted background-only toys are used while the Kish effective number of toys behind
#: CLs+b at every limit is at least this. Below it the reweighted estimate is biased low by 10-20 % and noisy
#: (b = (400, 60, 0.5) with a 10 % prior, against s+b toys); degenerate cases (b = 1e4, 10 %) give ~1.
#: Realistic projections: 10-40 at the +2 sigma edge of the shortest lifetimes, hundreds elsewhere
MIN_EFFECTIVE_TOYS = 10
MU_FLOAT32_MAX = 1e30  # signal strengths above this are evaluated as CLs+b = 0 in the float32 toy kernel
#: s+b toys: signal counts below this come from a per-toy table of Poisson thresholds (larger: exact quantile)
SIGNAL_COUNT_TABLE = 32


def _checked(name: str, value, integer: bool = False, positive: bool = False) -> np.ndarray:
    """``value`` as a float array after checking it is finite and >= 0 (> 0 when ``positive``;
    whole numbers when ``integer``); ValueError naming the argument, the entry and the value otherwise."""
    arr = np.asarray(value, float)
    bad = ~np.isfinite(arr) | (arr <= 0 if positive else arr < 0)
    what = "finite and > 0" if positive else "finite and >= 0"
    if integer:
        bad |= np.isfinite(arr) & (arr != np.round(arr))
        what += " whole numbers"
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        where = f" at index {idx if len(idx) > 1 else idx[0]}" if idx else ""
        raise ValueError(f"{name} must be {what}; got {float(arr[idx]) if idx else float(arr)!r}{where} "
                         f"({int(np.sum(bad))} bad of {arr.size})")
    return arr


def _check_cl(cl: float) -> float:
    if not 0 < cl < 1:
        raise ValueError(f"cl must be in (0, 1); got {cl!r}")
    return float(cl)


# ------------------------------------------------------------------ the study's Q
def q_study(s, b, n=None) -> np.ndarray:
    """Q = sum_i -2 ln(L(s_i + b_i)/L(b_i)) = sum_i 2 (s_i - n_i ln(1 + s_i/b_i)) over the last axis;
    n defaults to b (expected).

    s, b, n must be finite and >= 0 (ValueError otherwise). Limits at b_i = 0: with n_i = 0 (in
    particular the expected N = B = 0) the term is 2 s_i (the b -> 0 limit of b ln(1 + s/b) is 0);
    with n_i > 0 the background-only likelihood vanishes, the term is -inf (the count is impossible
    without signal: never an exclusion). A region with s_i = 0 contributes 0.
    """
    s = _checked("s (signal)", s)
    b = _checked("b (background)", b)
    n = b if n is None else _checked("n (observed counts)", n)
    s, b, n = np.broadcast_arrays(s, b, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, s / np.where(b > 0, b, 1.0), np.inf)
        term = 2.0 * (s - special.xlogy(n, 1.0 + ratio))        # xlogy: 0 when n = 0, even for b = 0
    term = np.where(s == 0, 0.0, term)
    return np.sum(term, axis=-1)


def r95(s, b, n=None) -> np.ndarray:
    """R95 = Q / 5.99 (> 1: excluded at 95 % CL in the study's convention); limits as in :func:`q_study`."""
    return q_study(s, b, n) / Q95


# ------------------------------------------------------- single-bin exact Poisson
def cls_poisson(s, b, n) -> np.ndarray:
    """Exact single-bin CLs = P(N <= n | s + b) / P(N <= n | b) (vectorised).

    s, b finite and >= 0, n a whole number >= 0 (ValueError otherwise); b = 0 is allowed (CLs = P(N <= n | s)).
    """
    s, b, n = np.broadcast_arrays(_checked("s (signal)", s), _checked("b (background)", b),
                                  _checked("n (observed count)", n, integer=True))
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
    """Single-bin CLs with the background marginalised over a log-normal prior (Cousins-Highland).

    s, b, b_err finite and >= 0, n a whole number >= 0 (ValueError otherwise)."""
    s = _checked("s (signal)", s)
    b, b_err = _checked("b (background)", b), _checked("b_err (background uncertainty)", b_err)
    n = _checked("n (observed count)", n, integer=True)
    bn, w = _lognormal_nodes(np.broadcast_to(b, np.shape(s)), np.broadcast_to(b_err, np.shape(s)))
    n = np.broadcast_to(np.asarray(n, float), np.shape(s))[..., None]
    sb = np.sum(w * special.gammaincc(n + 1, s[..., None] + bn), axis=-1)
    bb = np.sum(w * special.gammaincc(n + 1, bn), axis=-1)
    return sb / bb


def expected_counts_quantiles(b, b_err=0.0, nsigma=NSIGMA) -> np.ndarray:
    """Background-only quantiles of n (marginal over the b prior) at Phi(-k) for k in nsigma: shape (..., 5).

    Column j is the count whose limit is the expected band edge nsigma[j] (low counts -> low limits).
    """
    b = np.atleast_1d(_checked("b (background)", b))
    bn, w = _lognormal_nodes(b, np.broadcast_to(_checked("b_err (background uncertainty)", b_err), b.shape))
    nmax = int(np.max(stats.poisson.ppf(1 - 1e-9, bn.max())) + 5)
    ks = np.arange(nmax + 1)
    cdf = np.sum(w[..., None] * stats.poisson.cdf(ks, bn[..., None]), axis=-2)     # (..., nmax+1)
    out = np.empty(b.shape + (len(nsigma),))
    for j, k in enumerate(nsigma):
        p = stats.norm.cdf(k)
        out[..., j] = np.argmax(cdf >= p - 1e-12, axis=-1)
    return out


def s95_exact(b, n, b_err=0.0, cl: float = 0.95, s_max=None) -> np.ndarray:
    """Model-independent upper limit on signal events (single bin, exact CLs), vectorised by bisection.

    b, b_err finite and >= 0, n a whole number >= 0, 0 < cl < 1 (ValueError otherwise)."""
    b, n, b_err = np.broadcast_arrays(np.atleast_1d(_checked("b (background)", b)),
                                      np.atleast_1d(_checked("n (observed count)", n, integer=True)),
                                      np.atleast_1d(_checked("b_err (background uncertainty)", b_err)))
    alpha = 1 - _check_cl(cl)
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

    :meth:`build` checks the inputs (finite, s, b, uncertainties and counts >= 0); a background of
    exactly 0 becomes ``B_FLOOR`` (the likelihood needs b > 0), a negative one is an error.
    """
    s: np.ndarray
    b: np.ndarray
    A: np.ndarray
    C: np.ndarray
    n_obs: np.ndarray | None = None

    @classmethod
    def build(cls, s, b, s_stat_err=None, s_rel_xsec=0.0, b_rel_syst: Sequence = (), n_obs=None) -> "LimitInputs":
        """From arrays: s, b, s_stat_err (P, K); s_rel_xsec scalar or (P,); b_rel_syst: list of (P, K) or scalars,
        each one nuisance parameter correlated over the SRs. Relative uncertainties are fractions (0.1 = 10 %)."""
        s = np.atleast_2d(_checked("s (signal)", s))
        P, K = s.shape
        b = np.broadcast_to(_checked("b (background)", b), (P, K)).copy()
        if s_stat_err is not None:
            s_stat_err = _checked("s_stat_err (signal MC statistical error)", s_stat_err)
        s_rel_xsec = _checked("s_rel_xsec (relative cross-section uncertainty)", s_rel_xsec)
        b_rel_syst = [_checked(f"b_rel_syst[{j}] (relative background uncertainty)", r)
                      for j, r in enumerate(b_rel_syst)]
        if n_obs is not None:
            n_obs = _checked("n_obs (observed counts)", n_obs)
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
        return cls(s=s, b=np.where(b > 0, b, B_FLOOR), A=A, C=C,
                   n_obs=None if n_obs is None else np.broadcast_to(n_obs, (P, K)).copy())

    def validate(self) -> "LimitInputs":
        """Check shapes and values (also for instances made without :meth:`build`); returns self."""
        P, K = self.s.shape
        M = self.A.shape[-1]
        if self.b.shape != (P, K) or self.A.shape != (P, K, M) or self.C.shape != (P, K, M) or \
                (self.n_obs is not None and self.n_obs.shape != (P, K)):
            raise ValueError(f"LimitInputs: inconsistent shapes s {self.s.shape}, b {self.b.shape}, A {self.A.shape}, "
                             f"C {self.C.shape}, n_obs {None if self.n_obs is None else self.n_obs.shape}")
        _checked("s (signal)", self.s)
        _checked("b (background)", self.b, positive=True)
        for name, arr in (("A (signal nuisance effects)", self.A), ("C (background nuisance effects)", self.C)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite; got {arr[~np.isfinite(arr)][0]!r}")
        if self.n_obs is not None:
            _checked("n_obs (observed counts)", self.n_obs)
        return self

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
def _background_groups(inp: LimitInputs) -> list[np.ndarray]:
    """Indices of the points sharing one background configuration (b, C): a curve versus c*tau or a mass
    scan at fixed luminosity. Toys and the choice of method are made once per group."""
    keys: dict = {}
    for p in range(inp.s.shape[0]):
        keys.setdefault((inp.b[p].tobytes(), inp.C[p].tobytes()), []).append(p)
    return [np.asarray(v) for v in keys.values()]


def _group_seed(seed: int, b: np.ndarray, C: np.ndarray) -> np.random.Generator:
    """Random numbers fixed by the seed and the background configuration alone, so a point gets the same
    toys in any batch (one point alone, a curve, a whole scan)."""
    return np.random.default_rng([int(seed), zlib.crc32(np.ascontiguousarray(b).tobytes() +
                                                         np.ascontiguousarray(C).tobytes())])


def _poisson_quantile(u, lam) -> np.ndarray:
    """Smallest n with P(N <= n | lam) >= u, elementwise (scipy.stats.poisson.ppf to double precision,
    10-50x faster): lam <= 25 by summing the probabilities, larger lam from a Cornish-Fisher start corrected
    in unit steps with the regularised gamma function. Inverse-CDF draws with fixed u are common random
    numbers: n grows monotonically with lam."""
    u, lam = np.broadcast_arrays(np.clip(np.asarray(u, float), 1e-300, 1 - 1e-16), np.asarray(lam, float))
    n = np.zeros(u.shape)
    small = lam <= 25.0
    if small.any():
        uu, ll = u[small], lam[small]
        pmf = np.exp(-ll)
        cdf = pmf.copy()
        k = np.zeros(uu.shape)
        for m in range(1, 200):
            below = cdf < uu
            if not below.any():
                break
            k += below
            pmf *= ll / m
            cdf += pmf
        n[small] = k
        small[small] = ~below                # not reached by the sum (rounding for u within ~1e-15 of 1)
    big = ~small
    if big.any():
        ub, lb = u[big], lam[big]
        z = special.ndtri(ub)
        nb = np.maximum(np.floor(lb + np.sqrt(lb) * z + (z * z - 1) / 6), 0.0)
        todo = np.arange(nb.size)
        for _ in range(10_000):
            nn, uu, ll = nb[todo], ub[todo], lb[todo]
            up = special.pdtr(nn, ll) < uu
            down = ~up & (nn > 0) & (special.pdtr(nn - 1, ll) >= uu)
            nb[todo] = nn + up - down
            todo = todo[up | down]
            if not len(todo):
                break
        n[big] = nb
    return n


def _toy_counts(b, C, n_toys, rng):
    """Background-only pseudo-experiments (hybrid): theta ~ N(0,1), n ~ Poisson(b(theta)) drawn by inverse
    CDF. b (K,), C (K, M). Returns n (T, K), theta (T, M), b(theta) (T, K) and the uniforms v (T, K) of the
    signal counts of s+b toys (n + Poisson(mu s(theta)) is Poisson(mu s(theta) + b(theta)))."""
    theta = rng.standard_normal((n_toys, C.shape[1]))
    u = rng.random((n_toys, len(b)))
    v = rng.random((n_toys, len(b)))
    lam = b[None, :] * np.exp(theta @ C.T)
    return _poisson_quantile(u, lam), theta, lam, v


class _BackgroundToys:
    """The pseudo-experiments of one background configuration (:func:`_toy_counts`, read-only): counts n (T, K),
    nuisances theta (T, M), b(theta) (T, K), the uniforms v (T, K) of the s+b signal counts, and their table."""

    def __init__(self, n, theta, lam, v):
        for arr in (n, theta, lam, v):
            arr.setflags(write=False)
        self.n, self.theta, self.lam, self.v = n, theta, lam, v

    @functools.cached_property
    def count_table(self) -> np.ndarray:
        """Thresholds L_m(v) (T, K, ``SIGNAL_COUNT_TABLE``), the lam at which P(N <= m - 1 | lam) = v, increasing in
        m: the signal count of an s+b toy is n_s = #{m : lam > L_m(v)}."""
        table = special.gammainccinv(np.arange(1, SIGNAL_COUNT_TABLE + 1)[None, None, :], self.v[..., None])
        table.setflags(write=False)
        return table


def _background_toys(seed: int, n_toys: int, b: np.ndarray, C: np.ndarray) -> _BackgroundToys:
    """The toys of the background (b (K,), C (K, M)), seeded by :func:`_group_seed`: kept for the next calls with
    the same background (a recast's mass points come one call each)."""
    return _cached_toys(seed, n_toys, b.dtype.str, b.tobytes(), C.dtype.str, C.tobytes(), C.shape)


@functools.lru_cache(maxsize=4)
def _cached_toys(seed, n_toys, b_dtype, b, C_dtype, C, shape) -> _BackgroundToys:
    b_arr, C_arr = np.frombuffer(b, b_dtype), np.frombuffer(C, C_dtype).reshape(shape)
    return _BackgroundToys(*_toy_counts(b_arr, C_arr, n_toys, _group_seed(seed, b_arr, C_arr)))


def _q_lep(mu, s, b_nom, n):
    """The LEP statistic Q(mu) = 2 mu S - sum_k n_k 2 ln(1 + mu s_k / b_k) (nominal s, b): points (p,) x toys.

    mu (p,), s (p, K), b_nom (K,), n (T, K) or (p, T, K). Returns Q (p, T) and the weights 2 ln(1 + mu s/b) (p, K)."""
    w = 2 * np.log1p(mu[:, None] * s / b_nom[None, :])
    # (a contiguous (K, T) copy: matmul with the transposed view is ~200x slower for K = 3)
    lin = (w @ np.ascontiguousarray(n.T)) if n.ndim == 2 else np.einsum("pk,ptk->pt", w, n)
    return 2 * (mu * s.sum(1))[:, None] - lin, w


def _fraction(mask) -> np.ndarray:
    """Fraction of True per row of a (p, T) mask: ``np.mean(mask, axis=1)`` to the bit (an exact integer count over T),
    3x faster."""
    return np.count_nonzero(mask, axis=1) / mask.shape[1]


def _q_threshold(q_b, prob=None, q_obs=None):
    """Observed Q, or the b-only quantile 1 - prob of Q for an expected band edge; with the tolerance
    that counts equal statistics (ties of discrete counts) as at least as background-like."""
    q = np.quantile(q_b, 1 - prob, axis=1, method="inverted_cdf") if q_obs is None else q_obs
    return q - 1e-9 * np.maximum(1, np.abs(q))


@functools.cache
def _count_below_kernel():
    """The compiled kernel ``count_below(table (T, K, M), lam (P, T, K)) -> n (P, T, K)``: n = #{m : table[t, k, m] <
    lam[p, t, k]} for a table increasing in m, as floats. It is ``np.sum(table[None] < lam[..., None], axis=-1)``
    (the same comparisons, so the same counts) at the cost of the counts rather than of the table size: the s+b
    toys spend most of their time here. numba (a dependency of coffea) compiles it once per process (cached)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def count_below(table, lam):
        P, T, K = lam.shape
        M = table.shape[2]
        out = np.empty((P, T, K), np.float64)
        for p in range(P):
            for t in range(T):
                for k in range(K):
                    x = lam[p, t, k]
                    n = 0
                    while n < M and table[t, k, n] < x:
                        n += 1
                    out[p, t, k] = n
        return out

    return count_below


def _toys_group(s, A, b_nom, C, n_obs, toys: _BackgroundToys, alpha, sampling, chunk=64):
    """Limits of the points (s (p, K), A (p, K, M)) sharing one background and its toys.

    sampling 'reweight': CLs+b from the background-only toys weighted by the likelihood ratio
    P(n | mu s(theta) + b(theta)) / P(n | b(theta)) (smooth in mu); 'direct': s+b toys, the background-only
    counts plus signal counts drawn with fixed uniforms at every mu (n grows monotonically with mu).
    Returns exp (p, 5), obs (p,), and per point whether the weighted estimate of CLs+b rests on at least
    ``MIN_EFFECTIVE_TOYS`` effective toys at every limit (False: the weights degenerate, as when mu s >> sqrt(b) at a large b with a
    background prior much wider than sqrt(b): 10 % at b = 1e9 gives one toy of weight ~1, the others ~0).
    """
    P = s.shape[0]
    n_t, th_t, b_t, v_t = toys.n, toys.theta, toys.lam, toys.v
    exp = np.full((P, len(NSIGMA)), np.nan)
    obs = np.full(P, np.nan)
    healthy = np.ones(P, bool)
    stot = np.maximum(s.sum(axis=1), 1e-300)
    # CLs >= exp(-mu S) for this statistic, so mu S < 0.5 is never excluded at 95 %
    lo_all = 0.5 / stot
    # s+b toys make CLs a step function of mu: stop at 0.1 % in mu (the toy error is a few %)
    tol = 1e-3 if sampling == "direct" else 1e-5
    hi_all = 10 * _bracket(LimitInputs(s, np.broadcast_to(b_nom, s.shape), A, np.broadcast_to(C, A.shape)))[1] / 1e3
    if sampling == "direct":
        # signal counts n_s = #{m : lam > L_m(v)}: one table per background, then each mu costs comparisons only
        # (counts beyond the table: _poisson_quantile, for the toys where they matter)
        thresholds = toys.count_table
        count_below = _count_below_kernel()
    for start in range(0, P, chunk):
        sl = slice(start, start + chunk)
        sc, Ac = s[sl], A[sl]
        s_t = sc[:, None, :] * np.exp(np.einsum("pkm,tm->ptk", Ac, th_t))              # (p, T, K)
        if sampling != "direct":     # float32 for the weights: ~2x faster, CLs+b to ~1e-6 relative
            ratio_t = (s_t / b_t[None]).astype(np.float32)
            s_tot_t = s_t.sum(2).astype(np.float32)
            n_t32 = n_t.astype(np.float32)[None]
        # s+b toys: the first two evaluations of a chunk are the bracket ends, the same for every band edge: kept
        ends: list = []

        def sb_statistic(mu):
            """Q (p, T) of the s+b toys with the signal counts beyond the table set to the table size, a lower bound
            of the count (so Q is an upper bound: it falls as any count grows), the counts, and where they are."""
            n_s = count_below(thresholds, np.ascontiguousarray(mu[:, None, None] * s_t))
            beyond = n_s >= SIGNAL_COUNT_TABLE
            return _q_lep(mu, sc, b_nom, n_t[None] + n_s)[0], n_s, beyond

        def cls_at(mu, prob=None, n_o=None, diagnose=False):
            q_b, w = _q_lep(mu, sc, b_nom, n_t)
            thr = _q_threshold(q_b, prob, None if n_o is None else 2 * mu * sc.sum(1) - np.sum(w * n_o, 1))
            ind_b = q_b >= thr[:, None]
            clb = _fraction(ind_b)
            if sampling == "direct":
                kept = next((stat for m, stat in ends if np.array_equal(m, mu)), None)
                q_sb, n_s, beyond = kept or sb_statistic(mu)
                if kept is None and len(ends) < 2:
                    ends.append((mu.copy(), (q_sb, n_s, beyond)))
                passed = q_sb >= thr[:, None]
                # a toy with counts beyond the table that passes with their lower bound: the exact counts decide
                pp, tt = np.nonzero(passed & beyond.any(axis=2))
                if len(pp):
                    over = beyond[pp, tt]
                    n_x = n_s[pp, tt]
                    n_x[over] = _poisson_quantile(v_t[tt][over], (mu[pp, None] * s_t[pp, tt])[over])
                    w_x = 2 * np.log1p(mu[pp, None] * sc[pp] / b_nom[None, :])            # as _q_lep
                    q_x = 2 * (mu[pp] * sc[pp].sum(1)) - np.einsum("mk,mk->m", w_x, n_t[tt] + n_x)
                    passed[pp, tt] = q_x >= thr[pp]
                clsb = _fraction(passed)
            else:
                # mu beyond float32's range (the bisection's open upper bracket): the signal is then
                # infinitely larger than any toy count, CLs+b = 0 exactly (points with no signal never get here)
                huge = ~(mu < MU_FLOAT32_MAX)
                mu32 = np.where(huge, 0.0, mu).astype(np.float32)
                logr = -(mu32[:, None] * s_tot_t) + np.sum(n_t32 * np.log1p(mu32[:, None, None] * ratio_t), 2)
                x = ind_b * np.exp(logr)
                x[huge] = 0.0
                clsb = np.mean(x, axis=1)
                if diagnose:     # Kish effective number of toys behind the estimate of CLs+b
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ess = np.sum(x, axis=1) ** 2 / np.sum(x * x, axis=1)
                    return np.isfinite(ess) & (ess >= MIN_EFFECTIVE_TOYS)
            return np.where(clb > 0, clsb / np.maximum(clb, 1e-300), 1.0)

        lo, hi = lo_all[sl], hi_all[sl]
        for j, k in enumerate(NSIGMA):
            prob = stats.norm.cdf(k)
            exp[sl, j] = _bisect_log(lambda mu, prob=prob: cls_at(mu, prob), lo, hi, alpha, tol=tol)
            if sampling != "direct":
                healthy[sl] &= cls_at(exp[sl, j], prob, diagnose=True)
        if n_obs is not None:
            n_o = n_obs[sl]
            obs[sl] = _bisect_log(lambda mu: cls_at(mu, n_o=n_o), lo, hi, alpha, tol=tol)
            if sampling != "direct":
                healthy[sl] &= cls_at(obs[sl], n_o=n_o, diagnose=True)
    return exp, obs, healthy


def mu95_toys(inp: LimitInputs, cl: float = 0.95, n_toys: int = 5000, seed: int = 0, chunk: int = 64,
              sampling: str = "auto") -> dict:
    """Hybrid CLs with the statistic Q (nominal s, b), nuisances drawn from their priors in every toy.

    Points sharing a background configuration (b, C) share the toys (seeded by ``seed`` and that
    background, see :func:`_group_seed`), so limits along a curve carry correlated, not independent,
    toy noise. ``sampling``: 'reweight' (background-only toys reweighted to s + b: smooth in mu, fast),
    'direct' (s + b toys at every mu: robust, ~50x slower), or 'auto': reweight, and direct for the points
    where the weights degenerate (fewer than ``MIN_EFFECTIVE_TOYS`` effective toys behind CLs+b at a
    limit). Both are unbiased estimates of the same hybrid CLs from the same nuisance draws and uniforms,
    so they differ by toy noise only (where the weights degenerate, the reweighted one is the noisier and
    biased low). Returns 'exp' (P, 5), 'obs' (P,), 'method' ('toys' or 'toys_direct').
    """
    inp.validate()
    alpha = 1 - _check_cl(cl)
    if sampling not in ("auto", "reweight", "direct"):
        raise ValueError(f"mu95_toys: unknown sampling {sampling!r} (auto, reweight, direct)")
    if int(n_toys) < 1:
        raise ValueError(f"n_toys must be >= 1; got {n_toys!r}")
    P = inp.s.shape[0]
    exp = np.full((P, len(NSIGMA)), np.nan)
    obs = np.full(P, np.nan)
    meth = np.empty(P, dtype=object)
    for idx in _background_groups(inp):
        b_nom, C = inp.b[idx[0]], inp.C[idx[0]]
        toys = _background_toys(int(seed), int(n_toys), b_nom, C)
        n_obs = None if inp.n_obs is None else inp.n_obs[idx]
        mode = "direct" if sampling == "direct" else "reweight"
        e, o, healthy = _toys_group(inp.s[idx], inp.A[idx], b_nom, C, n_obs, toys, alpha, mode, chunk)
        meth[idx] = "toys" if mode == "reweight" else "toys_direct"
        if sampling == "auto" and not healthy.all():
            bad = np.flatnonzero(~healthy)
            log.info("toy CLs: reweighted toys degenerate for %d of %d points of a background group (b = %s); "
                     "s+b toys there", len(bad), len(idx), b_nom)
            e[bad], o[bad], _ = _toys_group(inp.s[idx[bad]], inp.A[idx[bad]], b_nom, C,
                                            None if n_obs is None else n_obs[bad], toys, alpha, "direct", chunk)
            meth[idx[bad]] = "toys_direct"
        exp[idx], obs[idx] = e, o
    return {"exp": exp, "obs": obs, "method": meth}


def uses_toys(b, method: str = "auto", asymptotic_min_b: float = 1.0) -> bool:
    """Whether :func:`mu95` takes toys for a background configuration ``b`` (one per SR): always with 'toys',
    never with 'asymptotic', and with 'auto' where the smallest background of any region is below
    ``asymptotic_min_b``."""
    return method == "toys" or (method == "auto" and float(np.min(b)) < asymptotic_min_b)


def mu95(inp: LimitInputs, method: str = "auto", asymptotic_min_b: float = 1.0, cl: float = 0.95,
         n_toys: int = 5000, seed: int = 0) -> dict:
    """Upper limits on mu for every point.

    'auto' chooses once per background configuration (a whole curve versus c*tau, never per grid
    point): toys where the smallest background of any region is below ``asymptotic_min_b``, else the
    asymptotic formulae. A point with zero total signal is never excluded: mu95 = inf, method 'no_signal'.
    Inputs are validated (:meth:`LimitInputs.validate`): NaN, inf or negative entries are errors.
    """
    inp.validate()
    _check_cl(cl)
    if method not in ("auto", "asymptotic", "toys"):
        raise ValueError(f"limits.cls.method: unknown method {method!r} (auto, asymptotic, toys)")
    P = inp.s.shape[0]
    use_toys = np.zeros(P, bool)
    for idx in _background_groups(inp):
        use_toys[idx] = uses_toys(inp.b[idx[0]], method, asymptotic_min_b)
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
    """pyhf workspace-free model spec equivalent to :class:`LimitInputs` for one point (lists of length K).

    Inputs are checked as in :meth:`LimitInputs.build`; a zero background becomes ``B_FLOOR``."""
    s = [float(x) for x in np.atleast_1d(_checked("s (signal)", s))]
    K = len(s)
    b = np.broadcast_to(_checked("b (background)", b), (K,))
    if s_stat_err is not None:
        s_stat_err = np.broadcast_to(_checked("s_stat_err (signal MC statistical error)", s_stat_err), (K,))
    s_rel_xsec = float(_checked("s_rel_xsec (relative cross-section uncertainty)", s_rel_xsec))
    b_rel_syst = [_checked(f"b_rel_syst[{j}] (relative background uncertainty)", r) for j, r in enumerate(b_rel_syst)]
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
            {"name": "background", "data": [max(float(b[k]), B_FLOOR)], "modifiers": bmods},
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
    """pyhf upper limit (CLs, q~mu): {'obs', 'exp' (5, ascending)}; n_obs None -> Asimov b-only data.

    Zero total signal is never excluded: every limit is inf (as ``mu95``'s 'no_signal'), without calling pyhf.
    """
    import pyhf

    stot = sum(sum(smp["data"]) for c in spec["channels"] for smp in c["samples"] if smp["name"] == "signal")
    if not (math.isfinite(stot) and stot >= 0):
        raise ValueError(f"mu95_pyhf: total signal must be finite and >= 0; got {stot!r}")
    if n_obs is not None:
        n_obs = _checked("n_obs (observed counts)", n_obs)
    if stot == 0:
        return {"obs": math.inf, "exp": [math.inf] * len(NSIGMA)}

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
