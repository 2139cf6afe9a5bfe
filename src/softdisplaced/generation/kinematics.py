"""Vectorised relativistic kinematics for the fast generator.

All functions work on numpy arrays of shape ``(n,)`` (scalars per event) or
``(n, 3)`` / ``(n, 4)`` (3- / 4-vectors, 4-vectors ordered ``(E, px, py, pz)``),
never on single events, so that a chunk of 1e5 events costs a handful of numpy
calls. Units: GeV, mm.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = [
    "kallen", "two_body_momentum", "cos_sin", "cosh_sinh", "isotropic_directions", "orthonormal_basis", "boost",
    "four_vector", "pt_eta_phi", "accept_reject", "three_body_decay", "two_body_decay",
    "peterson_sample", "inverse_cdf_sampler",
]


def kallen(a, b, c):
    """Källén function lambda(a, b, c) = a^2 + b^2 + c^2 - 2ab - 2ac - 2bc."""
    return a * a + b * b + c * c - 2.0 * (a * b + a * c + b * c)


def two_body_momentum(m, m1, m2):
    """Momentum of either daughter in the rest frame of ``m -> m1 m2``."""
    lam = kallen(np.square(m), np.square(m1), np.square(m2))
    return np.sqrt(np.maximum(lam, 0.0)) / (2.0 * m)


def cos_sin(phi) -> tuple[np.ndarray, np.ndarray]:
    """(cos phi, sin phi) with one cosine: sin = sign * sqrt(1 - cos^2) on phi wrapped to
    [-pi, pi] (numpy's float64 sin and cos are scalar libm calls; sqrt is vectorised).
    Absolute error of sin below 2e-8, far below the float32 precision of Delphes branches."""
    phi = np.asarray(phi, dtype=np.float64)
    wrapped = phi - (2.0 * np.pi) * np.round(phi * (0.5 / np.pi))
    c = np.cos(wrapped)
    return c, np.copysign(np.sqrt(np.maximum(1.0 - c * c, 0.0)), wrapped)


def cosh_sinh(y) -> tuple[np.ndarray, np.ndarray]:
    """(cosh y, sinh y) from one exponential (absolute error ~1e-16 * cosh y)."""
    x = np.exp(np.asarray(y, dtype=np.float64))
    inv = 1.0 / x
    return 0.5 * (x + inv), 0.5 * (x - inv)


def isotropic_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` unit vectors uniform on the sphere."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    c, s = cos_sin(phi)
    return np.stack([sin_t * c, sin_t * s, cos_t], axis=1)


def orthonormal_basis(nvec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to the unit vectors ``nvec`` (n, 3) and to each other.

    Branch-free construction of Duff et al., JCGT 6 (2017) 1 (no cross products,
    numerically stable for every direction)."""
    x, y, z = nvec[:, 0], nvec[:, 1], nvec[:, 2]
    s = np.copysign(1.0, z)
    a = -1.0 / (s + z)
    b = x * y * a
    e1 = np.stack([1.0 + s * x * x * a, s * b, -s * x], axis=1)
    e2 = np.stack([b, s + y * y * a, -y], axis=1)
    return e1, e2


def four_vector(p3: np.ndarray, mass) -> np.ndarray:
    """``(n, 4)`` (E, px, py, pz) from 3-momenta and mass(es)."""
    e = np.sqrt(np.einsum("ij,ij->i", p3, p3) + np.square(mass))
    return np.concatenate([e[:, None], p3], axis=1)


def boost(p4: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Boost ``p4`` (n, 4) from the rest frame of ``parent`` (n, 4, lab frame) to the lab."""
    inv_e = 1.0 / parent[:, 0]
    bx, by, bz = parent[:, 1] * inv_e, parent[:, 2] * inv_e, parent[:, 3] * inv_e
    b2 = bx * bx + by * by + bz * bz
    gamma = 1.0 / np.sqrt(np.maximum(1.0 - b2, 1e-300))
    e, px, py, pz = p4[:, 0], p4[:, 1], p4[:, 2], p4[:, 3]
    bp = bx * px + by * py + bz * pz
    with np.errstate(invalid="ignore", divide="ignore"):
        g2 = np.where(b2 > 0, (gamma - 1.0) / b2, 0.0)
    f = g2 * bp + gamma * e
    out = np.empty((len(p4), 4))
    np.multiply(gamma, e + bp, out=out[:, 0])
    np.add(px, f * bx, out=out[:, 1])
    np.add(py, f * by, out=out[:, 2])
    np.add(pz, f * bz, out=out[:, 3])
    return out


def pt_eta_phi(px, py, pz):
    """(pT, eta, phi) in the dtype of the inputs; eta = +-999.9 for pT = 0 as in Delphes.

    eta = sign(pz) ln((|p| + |pz|) / pT) (= arcsinh(pz / pT), written with sqrt and log,
    which numpy vectorises, instead of hypot and arcsinh, which it does not)."""
    pt = np.sqrt(px * px + py * py)
    p = np.sqrt(pt * pt + pz * pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.log((p + np.abs(pz)) / pt)
    np.copysign(eta, pz, out=eta)
    zero = pt == 0
    if zero.any():
        eta[zero] = np.copysign(999.9, pz[zero])
    return pt, eta, np.arctan2(py, px)


def accept_reject(rng: np.random.Generator, n: int, propose: Callable[[int], dict],
                  accept: Callable[[dict], np.ndarray], efficiency_guess: float = 0.5,
                  max_iter: int = 1000) -> dict:
    """Vectorised accept-reject: ``propose(k)`` returns a dict of arrays of length k,
    ``accept(d)`` a boolean mask; returns a dict with exactly ``n`` accepted rows."""
    if n == 0:
        return propose(0)
    out: dict[str, list] = {}
    have = 0
    eff = max(efficiency_guess, 1e-3)
    for _ in range(max_iter):
        if have >= n:
            break
        k = int((n - have) / eff * 1.1) + 16
        cand = propose(k)
        ok = accept(cand)
        n_ok = int(ok.sum())
        eff = max(n_ok / k, 1e-3)
        for key, val in cand.items():
            out.setdefault(key, []).append(val[ok])
        have += n_ok
    else:  # pragma: no cover - would need a pathological density
        raise RuntimeError("accept_reject: no convergence")
    return {k: np.concatenate(v)[:n] for k, v in out.items()}


# ----------------------------------------------------------------- 3-body decays
def _dalitz_energies(M, m0, ml, s_lnu, s_0l, mnu=0.0):
    """Rest-frame energies, momenta and l-nu opening angle for P -> p0 + l + nu."""
    s_0nu = M * M + m0 * m0 + ml * ml + mnu * mnu - s_lnu - s_0l
    e_l = (M * M + ml * ml - s_0nu) / (2.0 * M)
    e_nu = (M * M + mnu * mnu - s_0l) / (2.0 * M)
    p_l = np.sqrt(np.maximum(e_l * e_l - ml * ml, 0.0))
    p_nu = np.sqrt(np.maximum(e_nu * e_nu - mnu * mnu, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (ml * ml + mnu * mnu + 2.0 * e_l * e_nu - s_lnu) / (2.0 * p_l * p_nu)
    return e_l, e_nu, p_l, p_nu, cos


def _me_weight(M, m0, ml, e_l, e_nu, s_lnu, o_l, o_r, mw, gw):
    """|M|^2 of P -> p0 l nu through a (virtual) W in the parent rest frame.

    |M|^2 ∝ [|O_L|^2 (P.l)(p0.nu) + |O_R|^2 (P.nu)(p0.l) - O_L O_R M m0 (l.nu)]
            / ((q^2 - mW^2)^2 + mW^2 GammaW^2),   q^2 = s_lnu.
    """
    l_nu = 0.5 * (s_lnu - ml * ml)
    P_l = M * e_l
    P_nu = M * e_nu
    p0_nu = M * e_nu - l_nu
    p0_l = M * e_l - ml * ml - l_nu
    num = o_l * o_l * P_l * p0_nu + o_r * o_r * P_nu * p0_l - o_l * o_r * M * m0 * l_nu
    return num / (np.square(s_lnu - mw * mw) + (mw * gw) ** 2)


class _BoundExceeded(Exception):
    """A matrix-element weight above the accept-reject bound (the bound is raised and the
    sampling restarted, so the sampled density stays exact)."""

    def __init__(self, w):
        super().__init__(w)
        self.w = float(w)


@lru_cache(maxsize=256)
def _me_max(M, m0, ml, o_l, o_r, mw, gw, flat):
    """Upper bound of ``_me_weight`` over the Dalitz region: maximum on a 401 x 401 grid,
    refined twice on a finer grid around the best point, times 1.02 (the sampler checks it)."""
    if flat:
        return 1.0
    lo1, hi1 = ml * ml, (M - m0) ** 2
    lo2, hi2 = (m0 + ml) ** 2, M * M
    c1, c2, h1, h2 = 0.5 * (lo1 + hi1), 0.5 * (lo2 + hi2), 0.5 * (hi1 - lo1), 0.5 * (hi2 - lo2)
    best = 0.0
    for npts in (401, 101, 101):
        s1 = np.linspace(max(lo1, c1 - h1), min(hi1, c1 + h1), npts)
        s2 = np.linspace(max(lo2, c2 - h2), min(hi2, c2 + h2), npts)
        S1, S2 = np.meshgrid(s1, s2, indexing="ij")
        e_l, e_nu, _, _, cos = _dalitz_energies(M, m0, ml, S1, S2)
        w = np.where(np.abs(cos) <= 1.0, _me_weight(M, m0, ml, e_l, e_nu, S1, o_l, o_r, mw, gw), 0.0)
        i, j = np.unravel_index(np.argmax(w), w.shape)
        best = max(best, float(w[i, j]))
        c1, c2 = s1[i], s2[j]
        h1, h2 = 2.0 * (s1[1] - s1[0]), 2.0 * (s2[1] - s2[0])
    return 1.02 * best


def three_body_decay(rng: np.random.Generator, parent: np.ndarray, M: float, m0: float, ml: float,
                     o_l: float = 1.0, o_r: float = 1.0, mw: float = 80.379, gw: float = 2.085,
                     flat: bool = False, mnu: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decay ``parent`` (n, 4 lab momenta, mass M) to (heavy p0, lepton l, neutrino nu).

    Dalitz variables (s_lnu, s_0l) are drawn uniformly (= flat phase space) and
    accepted with probability |M|^2 / max|M|^2 (``_me_weight``), unless ``flat``.
    The decay is isotropic in the parent rest frame (unpolarised parent). ``mnu``
    (mass of the third particle) may be non-zero only with ``flat`` (hadronic decays).
    Returns the three lab-frame 4-momenta (n, 4) in the order (p0, l, nu).
    """
    n = len(parent)
    if mnu and not flat:
        raise ValueError("three_body_decay: the W matrix element assumes a massless neutrino")
    bound = [_me_max(float(M), float(m0), float(ml), float(o_l), float(o_r), float(mw), float(gw), bool(flat))]

    def propose(k):
        return {"s_lnu": rng.uniform((ml + mnu) ** 2, (M - m0) ** 2, k),
                "s_0l": rng.uniform((m0 + ml) ** 2, (M - mnu) ** 2, k),
                "u": rng.random(k)}

    def accept(c):
        e_l, e_nu, _, _, cos = _dalitz_energies(M, m0, ml, c["s_lnu"], c["s_0l"], mnu)
        ok = (np.abs(cos) <= 1.0) & (e_nu > mnu) & (e_l > ml)
        if flat:
            return ok
        w = _me_weight(M, m0, ml, e_l, e_nu, c["s_lnu"], o_l, o_r, mw, gw)
        w_max_seen = np.max(w, where=ok, initial=0.0)
        if w_max_seen > bound[0]:
            raise _BoundExceeded(w_max_seen)
        return ok & (c["u"] * bound[0] < w)

    while True:
        try:
            d = accept_reject(rng, n, propose, accept, efficiency_guess=0.3)
            break
        except _BoundExceeded as exc:  # pragma: no cover - the refined bound holds for the shipped models
            bound[0] = 1.1 * exc.w
    e_l, e_nu, p_l, p_nu, cos = _dalitz_energies(M, m0, ml, d["s_lnu"], d["s_0l"], mnu)
    cos = np.clip(cos, -1.0, 1.0)
    sin = np.sqrt(1.0 - cos * cos)
    nl = isotropic_directions(rng, n)
    e1, e2 = orthonormal_basis(nl)
    az = rng.uniform(-np.pi, np.pi, n)
    c_az, s_az = cos_sin(az)
    nnu = cos[:, None] * nl + (sin * c_az)[:, None] * e1 + (sin * s_az)[:, None] * e2
    pl3 = p_l[:, None] * nl
    pnu3 = p_nu[:, None] * nnu
    p03 = -(pl3 + pnu3)
    l4 = np.concatenate([e_l[:, None], pl3], axis=1)
    p04 = four_vector(p03, m0)
    p0_lab, l_lab = boost(p04, parent), boost(l4, parent)
    if mnu:
        nu_lab = boost(np.concatenate([e_nu[:, None], pnu3], axis=1), parent)
    else:  # massless third particle: momentum conservation instead of a third boost
        nu_lab = parent - p0_lab - l_lab
    return p0_lab, l_lab, nu_lab


def two_body_decay(rng: np.random.Generator, parent: np.ndarray, M, m1: float, m2: float):
    """Isotropic ``parent -> 1 + 2`` (lab 4-momenta (n, 4) of the two daughters)."""
    n = len(parent)
    p = two_body_momentum(M, m1, m2)
    d = isotropic_directions(rng, n)
    p3 = d * np.broadcast_to(p, (n,))[:, None]
    return boost(four_vector(p3, m1), parent), boost(four_vector(-p3, m2), parent)


# ----------------------------------------------------------------- 1-d samplers
def inverse_cdf_sampler(x: np.ndarray, density: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Sampler ``u -> x`` for a tabulated density (piecewise linear, trapezoid CDF)."""
    density = np.maximum(np.asarray(density, dtype=float), 0.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    cdf /= cdf[-1]
    return lambda u: np.interp(u, cdf, x)


@lru_cache(maxsize=32)
def _peterson_table(eps: float):
    z = np.concatenate([np.linspace(1e-4, 0.8, 2000), np.linspace(0.8, 1 - 1e-7, 6000)[1:]])
    dens = 1.0 / (z * np.square(1.0 - 1.0 / z - eps / (1.0 - z)))
    return inverse_cdf_sampler(z, dens)


def peterson_sample(rng: np.random.Generator, n: int, eps: float) -> np.ndarray:
    """Momentum fractions z from the Peterson fragmentation function
    D(z) ∝ 1 / [z (1 - 1/z - eps/(1-z))^2]."""
    return _peterson_table(float(eps))(rng.random(n))
