"""QED final-state radiation off leptons and soft underlying-event activity (fast generator).

Both act on any event record (not only signal): they return *extra particles*
(flat arrays sorted by event, the ``extra`` argument of
:func:`softdisplaced.generation.record.build_events`), and :func:`qed_fsr` the
leptons' momenta after radiation.

QED FSR (collinear, leading-log; docs/generator.md). Per lepton of lab energy E,
mass m and hard scale Q, emissions are independent with multiplicity
``k ~ Poisson(lambda)``,

    lambda = (alpha / 2 pi) L I(x_min),   L = ln(Q^2 / m^2),
    I(x_min) = int_{x_min}^1 P(x) dx,     P(x) = (1 + (1 - x)^2) / x,

where x = 1 - z is the photon's energy fraction and P the e -> e gamma splitting
function. Each emission takes the fraction x of the lepton's current energy
(energy conserved: the lepton keeps (1 - x) E along its momentum minus the
photon's). The photon's angle to the lepton follows dN/d theta^2 ∝
1 / (theta^2 + theta_0^2), theta_0 = m / E (dead cone), up to theta_max with
ln(1 + theta_max^2 / theta_0^2) = L, so that the angular integral is the same
collinear logarithm. Consequences used by the tests: the mean energy fraction
kept by the lepton is exp(-(alpha / 2 pi) L J(x_min)), J = int x P(x) dx
= (1 - x_min) + (1 - x_min)^3 / 3 (-> 4/3), and the photon x spectrum is P(x).

Underlying event: per event Poisson(mean) particles above pt_min, uniform in eta
and phi, pT from the tail of the Tsallis spectrum dN/dpT ∝ pT (1 + pT/(n p0))^-n,
a fraction of them pi+- and the rest photons.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np

from .kinematics import cos_sin, cosh_sinh, inverse_cdf_sampler, orthonormal_basis

__all__ = ["qed_fsr", "underlying_event", "fsr_integrals", "concat_extra", "from_origin", "EMPTY_EXTRA_FIELDS"]

M_PI = 0.13957
EMPTY_EXTRA_FIELDS = ("event", "pid", "status", "px", "py", "pz", "e", "mass", "x", "y", "z", "t",
                      "m1", "m2", "d1", "d2", "charge")


def fsr_integrals(x_min: float) -> tuple[float, float]:
    """(I, J): I = int_{x_min}^1 P(x) dx (emission rate), J = int_{x_min}^1 x P(x) dx (energy loss),
    P(x) = (1 + (1 - x)^2) / x."""
    x = float(x_min)
    i = -2.0 * np.log(x) - 1.5 + 2.0 * x - 0.5 * x * x
    j = (1.0 - x) + (1.0 - x) ** 3 / 3.0
    return float(i), float(j)


def _sample_x(rng: np.random.Generator, m: int, x_min: float) -> np.ndarray:
    """``m`` photon energy fractions from P(x) ∝ (1 + (1-x)^2)/x on [x_min, 1]: proposal 1/x
    (log-uniform), accepted with probability (1 + (1-x)^2) / 2 (>= 1/2)."""
    out = np.empty(m)
    todo = np.arange(m)
    log_min = np.log(x_min)
    while todo.size:
        x = np.exp(log_min * (1.0 - rng.random(todo.size)))
        ok = 2.0 * rng.random(todo.size) < 1.0 + np.square(1.0 - x)
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def qed_fsr(rng: np.random.Generator, lep: np.ndarray, e_star: np.ndarray, mass: np.ndarray,
            cfg: Mapping) -> tuple[np.ndarray, dict]:
    """Radiate photons off leptons.

    ``lep`` (n, 4) lab (E, px, py, pz); ``e_star`` (n,) lepton energy in the rest frame of the
    decaying parent (Q = scale_factor x 2 e_star); ``mass`` (n,) lepton masses; ``cfg`` the
    ``generation.fast.fsr`` section. Returns the leptons after radiation (n, 4) and the photons
    ``{lepton: index (sorted), px, py, pz, e}``.
    """
    n = len(lep)
    lep = np.array(lep, dtype=np.float64, copy=True)
    empty = {k: np.zeros(0) for k in ("px", "py", "pz", "e")}
    empty["lepton"] = np.zeros(0, dtype=np.int64)
    if not cfg["enabled"] or n == 0:
        return lep, empty
    alpha, x_min, kmax = float(cfg["alpha_em"]), float(cfg["x_min"]), int(cfg["max_photons"])
    q = 2.0 * float(cfg["scale_factor"]) * np.asarray(e_star, dtype=np.float64)
    mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), (n,))
    big_l = np.log(np.maximum(np.square(q / mass), 1.0))
    rate, _ = fsr_integrals(x_min)
    k = np.minimum(rng.poisson(alpha / (2.0 * np.pi) * big_l * rate), kmax)
    lep_idx, pieces = [], []
    for j in range(kmax):
        act = np.nonzero(k > j)[0]
        if act.size == 0:
            break
        x = _sample_x(rng, act.size, x_min)
        u = rng.random(act.size)
        az = rng.uniform(-np.pi, np.pi, act.size)
        e, p3 = lep[act, 0], lep[act, 1:]
        pmag = np.sqrt(np.einsum("ij,ij->i", p3, p3))
        nvec = p3 / np.where(pmag > 0, pmag, 1.0)[:, None]
        theta0_2 = np.square(mass[act] / e)
        # theta^2 = theta0^2 (exp(u L) - 1), capped at pi^2
        theta = np.sqrt(np.minimum(theta0_2 * np.expm1(u * big_l[act]), np.pi ** 2))
        ct, st = np.cos(theta), np.sin(theta)
        e1, e2 = orthonormal_basis(nvec)
        ca, sa = cos_sin(az)
        gdir = ct[:, None] * nvec + (st * ca)[:, None] * e1 + (st * sa)[:, None] * e2
        eg = x * e
        pg = eg[:, None] * gdir
        rest = p3 - pg
        e_new = (1.0 - x) * e
        p_new = np.sqrt(np.maximum(e_new * e_new - mass[act] ** 2, 0.0))
        rmag = np.sqrt(np.einsum("ij,ij->i", rest, rest))
        lep[act, 0] = e_new
        lep[act, 1:] = rest * (p_new / np.where(rmag > 0, rmag, 1.0))[:, None]
        lep_idx.append(act)
        pieces.append(np.concatenate([eg[:, None], pg], axis=1))
    if not lep_idx:
        return lep, empty
    idx = np.concatenate(lep_idx)
    p4 = np.concatenate(pieces)
    order = np.argsort(idx, kind="stable")
    idx, p4 = idx[order], p4[order]
    return lep, {"lepton": idx, "e": p4[:, 0], "px": p4[:, 1], "py": p4[:, 2], "pz": p4[:, 3]}


@lru_cache(maxsize=16)
def _tsallis_table(pt_min: float, p0: float, power: float):
    """Inverse-CDF sampler of dN/dpT ∝ pT (1 + pT/(n p0))^-n above pt_min (tail to 200 x p0 n)."""
    hi = pt_min + 200.0 * p0 * power
    pt = np.concatenate([np.linspace(pt_min, pt_min + 20 * p0, 2000), np.geomspace(pt_min + 20 * p0, hi, 2000)[1:]])
    dens = pt * np.power(1.0 + pt / (power * p0), -power)
    return inverse_cdf_sampler(pt, dens)


def underlying_event(rng: np.random.Generator, n: int, cfg: Mapping) -> dict:
    """Soft particles of ``n`` events (``generation.fast.underlying_event``): flat arrays
    ``{event (sorted), pid, charge, mass, e, px, py, pz}``."""
    if not cfg["enabled"] or n == 0 or cfg["mean_multiplicity"] <= 0:
        z = np.zeros(0)
        return {"event": np.zeros(0, dtype=np.int64), "pid": np.zeros(0, dtype=np.int32), "charge": z,
                "mass": z, "e": z, "px": z, "py": z, "pz": z}
    counts = np.minimum(rng.poisson(float(cfg["mean_multiplicity"]), n), int(cfg["max_particles"]))
    ev = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(ev)
    pt = _tsallis_table(float(cfg["pt_min_gev"]), float(cfg["p0_gev"]), float(cfg["n"]))(rng.random(m))
    eta = rng.uniform(-cfg["eta_max"], cfg["eta_max"], m)
    phi = rng.uniform(-np.pi, np.pi, m)
    charged = rng.random(m) < cfg["charged_fraction"]
    sign = np.where(rng.random(m) < 0.5, 1, -1)
    pid = np.where(charged, 211 * sign, 22).astype(np.int32)
    mass = np.where(charged, M_PI, 0.0)
    c, s = cos_sin(phi)
    ch, sh = cosh_sinh(eta)
    px, py, pz = pt * c, pt * s, pt * sh
    e = np.sqrt(np.square(pt * ch) + mass * mass)
    return {"event": ev, "pid": pid, "charge": np.where(charged, sign, 0).astype(float), "mass": mass,
            "e": e, "px": px, "py": py, "pz": pz}


def from_origin(particles: dict) -> dict:
    """``particles`` (``event``, pid, momenta, mass, charge) completed to extra-particle records of final-state
    particles made at the origin without mother or daughters (underlying event, ISR fragments)."""
    k = len(particles["event"])
    minus1 = np.full(k, -1, np.int32)
    zeros = np.zeros(k)
    return {**particles, "status": np.ones(k, np.int32), "x": zeros, "y": zeros, "z": zeros, "t": zeros,
            "m1": minus1, "m2": minus1, "d1": minus1, "d2": minus1}


def concat_extra(parts) -> dict:
    """Concatenate extra-particle dicts (each with every record field and ``event``), sorted by event."""
    parts = [p for p in parts if len(p["event"])]
    if not parts:
        return {f: np.zeros(0, dtype=np.int64 if f in ("event", "pid", "status", "m1", "m2", "d1", "d2")
                            else np.float64) for f in EMPTY_EXTRA_FIELDS}
    out = {f: np.concatenate([np.asarray(p[f]) for p in parts]) for f in EMPTY_EXTRA_FIELDS}
    order = np.argsort(out["event"], kind="stable")
    return {f: v[order] for f, v in out.items()}
