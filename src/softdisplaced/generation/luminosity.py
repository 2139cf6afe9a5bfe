"""Parton-luminosity model for q qbar -> gamma*/Z -> chi+ chi- (fast generator).

Model (documented in docs/generator.md)::

    d sigma / d tau d y  ∝  tau^(-a) [(1 - x1)(1 - x2)]^b  sigma_hat(tau s),
    x1,2 = sqrt(tau) exp(+-y),   tau = M^2 / s,

i.e. parton densities f(x) ∝ x^(-a) (1 - x)^b for the quark and the antiquark,
and the partonic cross section of a spin-1/2 pair through a vector current
sigma_hat(s_hat) ∝ beta (3 - beta^2) / (2 s_hat), beta = sqrt(1 - 4 m^2 / s_hat)
(the Z propagator factor is ~1 far above the Z pole and is dropped). The two
exponents (a, b) are fitted (``fit_luminosity_model``) to the *mass dependence*
of the wino cross-section table (cross_sections.wino_table_fb); the fitted
values are stored in ``generation.fast.luminosity`` and a test checks that they
still reproduce the table. The absolute normalisation is never used: the
workflow normalises with the configured cross sections.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np

from .kinematics import inverse_cdf_sampler

__all__ = ["sigma_hat", "mass_density", "relative_cross_section", "fit_luminosity_model",
           "sample_mass_rapidity"]


def sigma_hat(M, m_c):
    """Partonic cross section shape beta (3 - beta^2) / (2 M^2) (0 below threshold)."""
    M = np.asarray(M, dtype=float)
    b2 = np.clip(1.0 - 4.0 * m_c * m_c / np.square(M), 0.0, 1.0)
    return np.sqrt(b2) * (3.0 - b2) / (2.0 * np.square(M))


def _y_integral(tau, b, n_y=256):
    """int dy [(1-x1)(1-x2)]^b over the kinematic range |y| < -ln(tau)/2 (vectorised in tau)."""
    ymax = -0.5 * np.log(tau)
    t = np.linspace(-1.0, 1.0, n_y)
    y = ymax[:, None] * t[None, :]
    rt = np.sqrt(tau)[:, None]
    f = np.power(np.clip((1 - rt * np.exp(y)) * (1 - rt * np.exp(-y)), 0, None), b)
    return np.trapezoid(f, t, axis=1) * ymax


def _mass_grid(m_c, sqrt_s, n=3000):
    lo, hi = 2.0 * m_c, sqrt_s
    u = np.linspace(0.0, 1.0, n)
    return lo + (hi - lo) * u ** 3  # dense near threshold where the density ~ sqrt(M - 2m)


def mass_density(M, m_c, sqrt_s, a, b):
    """d sigma / d M (arbitrary normalisation) of the pair invariant mass."""
    tau = np.square(M) / sqrt_s ** 2
    return np.power(tau, -a) * _y_integral(np.clip(tau, 1e-300, 1.0), b) * sigma_hat(M, m_c) * (2 * M / sqrt_s ** 2)


def relative_cross_section(m_c, sqrt_s, a, b):
    """Integrated model cross section (arbitrary normalisation) for mediator mass m_c."""
    M = _mass_grid(m_c, sqrt_s)[1:-1]
    return float(np.trapezoid(mass_density(M, m_c, sqrt_s, a, b), M))


def fit_luminosity_model(table_fb: Mapping, sqrt_s: float = 13000.0, start=(1.2, 5.0)) -> dict:
    """Fit (a, b) and a normalisation to the mass dependence of ``{mass: [sigma, err]}``.

    Least squares in log(sigma); returns ``{a, b, log_norm, residuals: {mass: rel. residual}}``.
    """
    from scipy.optimize import least_squares

    masses = np.array(sorted(float(k) for k in table_fb))
    sig = np.array([float(table_fb[k][0]) for k in sorted(table_fb, key=float)])

    def resid(par):
        a, b, ln = par
        model = np.array([relative_cross_section(m, sqrt_s, a, b) for m in masses])
        return np.log(model) + ln - np.log(sig)

    a0, b0 = start
    ln0 = float(np.mean(np.log(sig) - np.log([relative_cross_section(m, sqrt_s, a0, b0) for m in masses])))
    res = least_squares(resid, [a0, b0, ln0], bounds=([0.0, 0.0, -np.inf], [3.0, 30.0, np.inf]))
    r = resid(res.x)
    return {"a": float(res.x[0]), "b": float(res.x[1]), "log_norm": float(res.x[2]),
            "residuals": {float(m): float(np.expm1(v)) for m, v in zip(masses, r)}}


@lru_cache(maxsize=64)
def _mass_sampler(m_c, sqrt_s, a, b):
    M = _mass_grid(m_c, sqrt_s)
    dens = np.zeros_like(M)
    dens[1:-1] = mass_density(M[1:-1], m_c, sqrt_s, a, b)
    return inverse_cdf_sampler(M, dens)


def sample_mass_rapidity(rng: np.random.Generator, n: int, m_c: float, sqrt_s: float,
                         a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair invariant mass M (inverse CDF of ``mass_density``) and rapidity y
    (accept-reject of [(1-x1)(1-x2)]^b, uniform y in the kinematic range, envelope the
    weight at y = 0)."""
    M = _mass_sampler(float(m_c), float(sqrt_s), float(a), float(b))(rng.random(n))
    tau = np.square(M / sqrt_s)
    ymax = -0.5 * np.log(tau)
    rt = np.sqrt(tau)
    y = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        yc = rng.uniform(-1.0, 1.0, todo.size) * ymax[todo]
        ey = np.exp(yc)
        r = rt[todo]
        # accept with probability [(1-x1)(1-x2) / (1-sqrt(tau))^2]^b (the weight is largest at y = 0),
        # compared in logs (exp and log vectorise, power does not)
        base = (1.0 - r * ey) * (1.0 - r / ey) / np.square(1.0 - r)
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = (base > 0) & (np.log(rng.random(todo.size)) < b * np.log(base))
        y[todo[ok]] = yc[ok]
        todo = todo[~ok]
    return M, y
