"""Fast heavy-flavour background: b bbar -> (B -> D l nu)(B -> D l nu | D pi pi0) + fragments.

Per event (vectorised over the chunk; docs/generator.md):

1. b and bbar with pT from dN/dpT ∝ pT^-n above pT-hat_min (fitted to Pythia 8), independent Gaussian
   rapidities, back to back in phi; initial-state radiation (``isr``): a jet of pT = pT-hat r, with r from
   dN/dr^2 ∝ (r^2 + r0^2)^-power up to r_max (fitted to the ISR recoil of Pythia 8 b bbar events,
   docs/generator.md), fragmented into a few visible hadrons (:func:`.signal.isr_fragments`); the b bbar
   pair recoils against their summed pT (:func:`recoil_pair`: exact transverse momentum balance, so that
   the reconstructed MET is the neutrinos' plus the detector's, as in Pythia 8; the earlier Gaussian
   acoplanarity without a recoiling object gave the event a spurious MET of ~15 GeV, issue 11);
2. Peterson fragmentation: B hadron with 3-momentum z p_b (z: the B's share of the whole b jet,
   no gluon radiation here); the rest (1 - z) p_b goes to 2 + N pions, N ~ Poisson with a mean
   growing as ln(1 + E_rest), flat Dirichlet momentum fractions and Gaussian kT around the b
   direction, each a pi0 with probability ``fragment_neutral_fraction`` (1/3, isospin): the
   neutral and charged content of real b jets, which Jet.NNeutrals and the study's jet definition
   see (:func:`fragment_pions`; made for the events kept by the thinning only);
3. B decay length: proper c*t ~ Exp(c*tau_B = 0.455 mm), vertex (p_B / m_B) c*t;
4. one B (chosen at random: b or bbar) is forced to B -> D l nu with l = e or mu
   (50/50), using the V-A matrix element of b -> c l nu; the other B is forced
   to the other lepton flavour with probability f2 (``second_b_semileptonic_fraction``),
   otherwise it decays hadronically, B -> D pi pi0 (phase space);
   the D (at the B decay vertex, D flight neglected) decays semi-leptonically, D -> K l nu
   (l = e or mu 50/50, V-A matrix element of c -> s l+ nu), with probability q_c
   (``charm_semileptonic_fraction``), else D -> K pi pi0 (phase space): the b -> c -> l cascade,
   whose lepton has the charge opposite to the direct one of the same b (e-mu pairs inside
   one b jet);
5. event weights carry the branching ratios (BR = ``br_semileptonic`` per flavour):
   e-mu events w = 2 BR^2 / f2, single-lepton events w = 4 BR (1 - BR) / (1 - f2),
   so that sum(w)/N estimates the fraction of b bbar events with that final state; each D decay
   multiplies it by 2 BR_c / q_c (semi-leptonic) or (1 - 2 BR_c) / (1 - q_c) (BR_c =
   ``charm_br_semileptonic`` per flavour).

Importance sampling (``heavy_flavour.bias``, on by default; docs/generator.md). Isolated
HF leptons are rare (the lepton must carry most of the b momentum, the D products and
the fragmentation hadrons must be soft), so the default sample is generated with a
biased density q instead of the physical p and every event carries the exact weight
p / q (a product over the biased steps), which makes every weighted distribution an
unbiased estimate of the physical one:

* b-quark pT: dN/dpT ∝ pT^-m with a flatter power m (``bias.pthat.power``) than the physical
  ``pthat_power`` n; weight (n - 1)/(m - 1) (pT / pT-hat_min)^-(n - m) (populates the high-pT
  tail that the lepton spectra of the transfer-factor fit and the isolated pairs need);
* lepton direction in the B rest frame: the decay is isotropic for the spin-0 B, so the
  configuration (Dalitz variables from the matrix element) is kept and only its orientation
  is redrawn with cos(theta*) (lepton vs B flight direction) from
  g(c) = (1 - f)/2 + f lambda e^{lambda (c - 1)} / (1 - e^{-2 lambda}); weight (1/2) / g(c);
* fragmentation: z from the mixture (1 - h) D_eps + h D_eps' of the physical Peterson
  function and a harder one (both tabulated and normalised on the same grid); weight
  D_eps(z) / mixture(z);
* B proper decay length: c*t from (1 - l) Exp(c tau) + l Exp(s c tau); weight
  Exp(c tau)(ct) / mixture(ct) (populates the d0 tail that the SR selection keeps);
* thinning ("Russian roulette"): after the kinematics, an event without any truth lepton
  above ``keep_pt_min_gev`` within |eta| < ``keep_abs_eta_max`` is kept with probability
  ``keep_fraction_soft`` and its weight divided by it (the detector, writer and skim never
  see most of the soft events, which no selection keeps).

``bias.enabled: false`` gives the unbiased generator (unit importance weights, every
event kept). ``tests/test_generation_hf.py`` proves the closure (weighted biased sample vs
unbiased sample; weighted cos(theta*) flat).

6. soft particles (:func:`soft_particles`, made for the kept events only): the signal's underlying event
   (``generation.fast.underlying_event``) and the soft activity (``soft_activity``: ~30 soft K0L, the
   MET resolution of Pythia 8 b bbar events with multiple parton interactions), their summed pT removed.

Leptons come with the D decay products and the fragmentation pions around them,
so they are not isolated by construction; isolation is computed by the detector.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import awkward as ak
import numpy as np

from .kinematics import (boost, cos_sin, cosh_sinh, four_vector, orthonormal_basis, peterson_sample,
                         pt_eta_phi, three_body_decay, two_body_decay)
from .record import ParticleTable, build_events
from .radiation import concat_extra, from_origin, underlying_event
from .signal import M_E, M_MU, M_PI, isr_fragments, sample_isr_pt

__all__ = ["generate_heavy_flavour", "M_B_QUARK", "direction_density", "peterson_density", "fragment_pions",
           "fragment_multiplicity_mean", "recoil_pair", "soft_particles",
           "sample_heavy_flavour_kinematics"]

M_B_QUARK = 4.8
M_K = 0.493677
M_PI0 = 0.134977
M_K0L = 0.497611
_SELF_CONJUGATE = (22, 111)


def _quark(pt, y, phi, m):
    mt = np.sqrt(pt * pt + m * m)
    ch, sh = cosh_sinh(y)
    c, s = cos_sin(phi)
    return np.stack([mt * ch, pt * c, pt * s, mt * sh], axis=1)


def recoil_pair(quarks, qx, qy):
    """The two quarks with their pair given the transverse momentum (qx, qy): each is taken to the pair's
    rest frame and back with the pair 4-momentum of the same mass and rapidity and pT = (qx, qy)."""
    pair = quarks[0] + quarks[1]
    m2 = np.maximum(pair[:, 0] ** 2 - np.einsum("ij,ij->i", pair[:, 1:], pair[:, 1:]), 0.0)
    y = 0.5 * np.log((pair[:, 0] + pair[:, 3]) / (pair[:, 0] - pair[:, 3]))
    mt = np.sqrt(m2 + qx * qx + qy * qy)
    ch, sh = cosh_sinh(y)
    target = np.stack([mt * ch, qx, qy, mt * sh], axis=1)
    to_rest = np.concatenate([pair[:, :1], -pair[:, 1:]], axis=1)
    return [boost(boost(q, to_rest), target) for q in quarks]


# ------------------------------------------------------------------ biased samplers
def direction_density(c, forward_fraction: float, concentration: float):
    """g(c) = (1 - f)/2 + f lam e^{lam (c - 1)} / (1 - e^{-2 lam}) on [-1, 1] (normalised)."""
    f, lam = float(forward_fraction), float(concentration)
    c = np.asarray(c, dtype=float)
    return (1.0 - f) * 0.5 + f * lam * np.exp(lam * (c - 1.0)) / (-np.expm1(-2.0 * lam))


def _sample_direction_cos(rng, n, forward_fraction, concentration):
    f, lam = float(forward_fraction), float(concentration)
    u = rng.random(n)
    fwd = rng.random(n) < f
    # inverse CDF of the exponential component on [-1, 1]: c = 1 + ln(1 - u (1 - e^{-2 lam})) / lam
    c_fwd = 1.0 + np.log1p(u * np.expm1(-2.0 * lam)) / lam
    c = np.where(fwd, c_fwd, 2.0 * u - 1.0)
    return np.clip(c, -1.0, 1.0)


@lru_cache(maxsize=16)
def _peterson_grid(eps: float):
    """Grid, normalised piecewise-constant density and CDF of the Peterson function.

    Same grid as :func:`softdisplaced.generation.kinematics.peterson_sample` (trapezoid
    CDF, linear inverse interpolation = a piecewise-constant density on each grid cell)."""
    z = np.concatenate([np.linspace(1e-4, 0.8, 2000), np.linspace(0.8, 1 - 1e-7, 6000)[1:]])
    dens = 1.0 / (z * np.square(1.0 - 1.0 / z - eps / (1.0 - z)))
    mass = 0.5 * (dens[1:] + dens[:-1]) * np.diff(z)
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    pdf = mass / np.diff(z) / cdf[-1]
    return z, pdf, cdf / cdf[-1]


def peterson_density(z, eps: float):
    """The (normalised, tabulated) Peterson density that :func:`peterson_sample` samples."""
    grid, pdf, _ = _peterson_grid(float(eps))
    i = np.clip(np.searchsorted(grid, z, side="right") - 1, 0, len(pdf) - 1)
    return pdf[i]


def _sample_peterson(rng, n, eps):
    grid, _, cdf = _peterson_grid(float(eps))
    return np.interp(rng.random(n), cdf, grid)


def _rest_frame_decay(rng, n, mB, mD, ml, dec):
    """B -> D l nu at rest: (E_l, |p_l|, E_nu, |p_nu|, cos angle(l, nu)) from the matrix element."""
    at_rest = np.zeros((n, 4))
    at_rest[:, 0] = mB
    D, l, nu = three_body_decay(rng, at_rest, mB, mD, ml, o_l=dec["o_l_b"], o_r=dec["o_r_b"],
                                mw=dec["w_mass_gev"], gw=dec["w_width_gev"])
    pl = np.linalg.norm(l[:, 1:], axis=1)
    pnu = np.linalg.norm(nu[:, 1:], axis=1)
    cos = np.einsum("ij,ij->i", l[:, 1:], nu[:, 1:]) / np.maximum(pl * pnu, 1e-300)
    return l[:, 0], pl, nu[:, 0], pnu, np.clip(cos, -1.0, 1.0)


def _oriented_decay(rng, parent, mB, mD, ml, dec, bias):
    """Semi-leptonic decay with the lepton direction (vs the B flight direction) from g(c).

    Returns (D, l, nu) lab 4-momenta and the importance weight (1/2) / g(c) (1 when unbiased)."""
    n = len(parent)
    if n == 0:
        z = np.zeros((0, 4))
        return z, z, z, np.ones(0)
    e_l, p_l, e_nu, p_nu, cos_lnu = _rest_frame_decay(rng, n, mB, mD, ml, dec)
    axis = parent[:, 1:] / np.linalg.norm(parent[:, 1:], axis=1)[:, None]
    if bias is None:
        c = rng.uniform(-1.0, 1.0, n)
        w = np.ones(n)
    else:
        c = _sample_direction_cos(rng, n, bias["forward_fraction"], bias["concentration"])
        w = 0.5 / direction_density(c, bias["forward_fraction"], bias["concentration"])
    s = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    a1, a2 = orthonormal_basis(axis)
    cphi, sphi = cos_sin(rng.uniform(-np.pi, np.pi, n))
    nl = c[:, None] * axis + (s * cphi)[:, None] * a1 + (s * sphi)[:, None] * a2
    f1, f2 = orthonormal_basis(nl)
    cpsi, spsi = cos_sin(rng.uniform(-np.pi, np.pi, n))
    snu = np.sqrt(np.maximum(1.0 - cos_lnu ** 2, 0.0))
    nnu = cos_lnu[:, None] * nl + (snu * cpsi)[:, None] * f1 + (snu * spsi)[:, None] * f2
    l3, nu3 = p_l[:, None] * nl, p_nu[:, None] * nnu
    l4 = np.concatenate([e_l[:, None], l3], axis=1)
    D4 = four_vector(-(l3 + nu3), mD)
    l_lab, D_lab = boost(l4, parent), boost(D4, parent)
    return D_lab, l_lab, parent - l_lab - D_lab, w


# ------------------------------------------------------------------ b fragmentation
def fragment_multiplicity_mean(e_rest, h: Mapping):
    """Mean number of fragmentation pions besides the leading pair: ``fragment_multiplicity_slope``
    x ln(1 + E_rest / ``fragment_energy_scale_gev``) (the logarithmic growth of the hadron
    multiplicity with the energy left to the string by the B hadron)."""
    return h["fragment_multiplicity_slope"] * np.log1p(np.asarray(e_rest, float) / h["fragment_energy_scale_gev"])


def fragment_pions(rng, rest, e1, e2, h: Mapping):
    """The fragmentation hadrons of one b: (p4 (n, K, 4), active (n, K), neutral (n, K)), K = 2 + max.

    The momentum (1 - z) p_b left by the B hadron goes to 2 + N pions, N ~ Poisson(mean) (capped at
    ``fragment_max_extra``), shared with flat Dirichlet fractions along the b direction, each with a
    Gaussian kT (the kT sum is removed, so that the pions carry exactly (1 - z) p_b); each pion is a
    pi0 with probability ``fragment_neutral_fraction`` (isospin: 1/3). The random stream does not
    depend on the neutral fraction (the momenta are the same whatever the charges)."""
    n = len(rest)
    k = 2 + int(h["fragment_max_extra"])
    e_rest = np.linalg.norm(rest, axis=1)
    n_extra = np.minimum(rng.poisson(fragment_multiplicity_mean(e_rest, h)), k - 2)
    active = np.arange(k)[None, :] < (2 + n_extra)[:, None]
    g = np.where(active, rng.exponential(1.0, (n, k)), 0.0)
    frac = g / g.sum(axis=1, keepdims=True)
    kt = np.where(active[..., None], rng.normal(0.0, h["fragment_kt_gev"], (n, k, 2)), 0.0)
    kt -= (kt.sum(axis=1) / active.sum(axis=1)[:, None])[:, None, :] * active[..., None]
    p3 = frac[..., None] * rest[:, None, :] + kt[..., :1] * e1[:, None, :] + kt[..., 1:] * e2[:, None, :]
    neutral = (rng.random((n, k)) < h["fragment_neutral_fraction"]) & active
    mass = np.where(neutral, M_PI0, M_PI)
    e = np.sqrt(np.einsum("nki,nki->nk", p3, p3) + mass * mass)
    p4 = np.concatenate([e[..., None], p3], axis=2) * active[..., None]
    return p4, active, neutral


# ------------------------------------------------------------------ underlying event
def soft_particles(rng, n, ue_cfg: Mapping, soft_cfg: Mapping) -> dict:
    """Extra particles (record fields + ``event``) of ``n`` HF events: the signal's underlying event
    (``generation.fast.underlying_event``: isolation) and the soft activity (``heavy_flavour.soft_activity``:
    MET resolution; its neutral particles K0L with probability ``neutral_hadron_fraction``), from the origin.
    Their summed transverse momentum is removed per event, shared equally (the recoil of the beam remnants
    outside the detector): the soft particles add detector effects to the MET, not a momentum imbalance."""
    parts = []
    for c in (ue_cfg, soft_cfg):
        ue = underlying_event(rng, n, c)
        nh = (ue["pid"] == 22) & (rng.random(len(ue["pid"])) < c.get("neutral_hadron_fraction", 0.0))
        ue["pid"] = np.where(nh, 130, ue["pid"]).astype(np.int32)
        ue["mass"] = np.where(nh, M_K0L, ue["mass"])
        parts.append(ue)
    ue = {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}
    ev = ue["event"]
    k = np.bincount(ev, minlength=n)
    for f in ("px", "py"):
        ue[f] = ue[f] - (np.bincount(ev, weights=ue[f], minlength=n) / np.maximum(k, 1))[ev]
    ue["e"] = np.sqrt(ue["px"] ** 2 + ue["py"] ** 2 + ue["pz"] ** 2 + ue["mass"] ** 2)
    return from_origin(ue)


# ------------------------------------------------------------------ generator
def sample_heavy_flavour_kinematics(rng: np.random.Generator, n: int, cfg: Mapping) -> dict:
    """All particle momenta, vertices and flags of ``n`` candidate events (before thinning).

    Returns a dict of (n, ...) arrays plus ``weight`` (branching ratios x importance weights),
    ``w_importance`` and ``cos_theta`` (lepton direction in the B rest frame, per B: (n, 2),
    NaN for hadronic decays); used by :func:`generate_heavy_flavour` and by the closure tests."""
    h = cfg["heavy_flavour"]
    dec = dict(cfg["mediator_decay"])
    # b -> c l- nubar: |M|^2 ∝ (P.nubar)(p_c.l) (O_R slot); the CP conjugate for B+ (set per B below)
    mB, mD, ctau = h["b_hadron_mass_gev"], h["d_mass_gev"], h["b_ctau_mm"]
    br, f2 = h["br_semileptonic"], h["second_b_semileptonic_fraction"]
    brc, qc = h["charm_br_semileptonic"], h["charm_semileptonic_fraction"]
    bias = h["bias"] if h["bias"]["enabled"] else None
    w_imp = np.ones(n)
    w_c = np.ones(n)

    # 1. b bbar kinematics: dN/dpT ∝ pT^-n above pT-hat_min; biased: sampled with a flatter power m,
    #    weight p/q = (n - 1)/(m - 1) (pT / pT_min)^-(n - m)
    n_phys = float(h["pthat_power"])
    n_samp = float(bias["pthat"]["power"]) if bias is not None and bias["pthat"]["power"] else n_phys
    if n_samp > n_phys:
        raise ValueError(f"generation.fast.heavy_flavour.bias.pthat.power = {n_samp} must not exceed "
                         f"pthat_power = {n_phys} (the biased spectrum must be the flatter one)")
    x = np.power(1.0 - rng.random(n), -1.0 / (n_samp - 1.0))
    pt = h["pthat_min_gev"] * x
    if n_samp != n_phys:
        w_imp *= (n_phys - 1.0) / (n_samp - 1.0) * np.power(x, -(n_phys - n_samp))
    y = rng.normal(0.0, h["rapidity_sigma"], (n, 2))
    phi1 = rng.uniform(-np.pi, np.pi, n)
    quarks = [_quark(pt, y[:, 0], phi1, M_B_QUARK), _quark(pt, y[:, 1], phi1 + np.pi, M_B_QUARK)]
    # ISR: a jet of pT = pT-hat r (physical density, no importance weight); the b bbar pair recoils against
    # the jet's visible fragments (exact transverse momentum balance)
    isr = h["isr"]
    if isr["enabled"]:
        r = sample_isr_pt(rng, n, isr["r0"], isr["power"], isr["r_max"])
        isr_p4, isr_pid, isr_mass = isr_fragments(rng, n, pt * r, isr)
        quarks = recoil_pair(quarks, -isr_p4[:, :, 1].sum(axis=1), -isr_p4[:, :, 2].sum(axis=1))
    else:
        isr_p4, isr_pid, isr_mass = np.zeros((n, 0, 4)), np.zeros(0, dtype=int), np.zeros(0)

    # 2.-3. fragmentation and B flight
    hadrons, frags, verts, zs = [], [], [], []
    eps = h["peterson_epsilon"]
    for q in quarks:
        if bias is None:
            z = peterson_sample(rng, n, eps)
        else:
            fb = bias["fragmentation"]
            hard = rng.random(n) < fb["hard_fraction"]
            z = np.where(hard, _sample_peterson(rng, n, fb["hard_epsilon"]), _sample_peterson(rng, n, eps))
            mix = (1 - fb["hard_fraction"]) * peterson_density(z, eps) + fb["hard_fraction"] * peterson_density(
                z, fb["hard_epsilon"])
            w_imp *= peterson_density(z, eps) / mix
        zs.append(z)
        p3 = q[:, 1:]
        pB = four_vector(z[:, None] * p3, mB)
        rest = (1.0 - z)[:, None] * p3
        axis = p3 / np.linalg.norm(p3, axis=1)[:, None]
        frags.append(rest)   # the fragmentation pions are made for the kept events only (_generate_batch)
        if bias is None:
            ct = rng.exponential(ctau, n)
        else:
            lb = bias["lifetime"]
            long_ = rng.random(n) < lb["long_fraction"]
            ct = np.where(long_, rng.exponential(ctau * lb["long_scale"], n), rng.exponential(ctau, n))
            phys = np.exp(-ct / ctau) / ctau
            s_ct = ctau * lb["long_scale"]
            w_imp *= phys / ((1 - lb["long_fraction"]) * phys + lb["long_fraction"] * np.exp(-ct / s_ct) / s_ct)
        fac = ct / mB
        verts.append((pB[:, 1] * fac, pB[:, 2] * fac, pB[:, 3] * fac, pB[:, 0] * fac))
        hadrons.append(pB)

    # 4. decays. Slot convention before the charge flip: quark 0 = b (B-, l-), quark 1 = bbar (B+, l+).
    first_is_b = rng.random(n) < 0.5          # which B is forced semileptonic
    first_is_e = rng.random(n) < 0.5          # its lepton flavour
    second_sl = rng.random(n) < f2            # the other B: other flavour (True) or hadronic
    cos_theta = np.full((n, 2), np.nan)
    prods = []
    for iq, sign in ((0, -1), (1, +1)):        # sign = charge of the lepton
        is_first = first_is_b if iq == 0 else ~first_is_b
        sl = is_first | second_sl
        is_e = np.where(is_first, first_is_e, ~first_is_e)
        D, a, b = (np.zeros((n, 4)) for _ in range(3))
        o_l, o_r = (0.0, 1.0) if sign < 0 else (1.0, 0.0)
        d = {**dec, "o_l_b": o_l, "o_r_b": o_r}
        for mask, ml in ((sl & is_e, M_E), (sl & ~is_e, M_MU)):
            i = np.nonzero(mask)[0]
            D[i], a[i], b[i], wi = _oriented_decay(rng, hadrons[iq][i], mB, mD, ml, d, bias and bias["lepton_direction"])
            w_imp[i] *= wi
            if len(i):
                # cos(theta*) of the lepton in the B rest frame (for the closure test)
                axis = hadrons[iq][i, 1:] / np.linalg.norm(hadrons[iq][i, 1:], axis=1)[:, None]
                beta = np.linalg.norm(hadrons[iq][i, 1:], axis=1) / hadrons[iq][i, 0]
                gamma = hadrons[iq][i, 0] / mB
                pl_par = np.einsum("ij,ij->i", a[i, 1:], axis)
                pl_par_rest = gamma * (pl_par - beta * a[i, 0])
                pl_perp2 = np.einsum("ij,ij->i", a[i, 1:], a[i, 1:]) - pl_par ** 2
                cos_theta[i, iq] = pl_par_rest / np.sqrt(pl_par_rest ** 2 + np.maximum(pl_perp2, 0.0))
        i = np.nonzero(~sl)[0]
        D[i], a[i], b[i] = three_body_decay(rng, hadrons[iq][i], mB, mD, M_PI, flat=True, mnu=M_PI0)
        # c decays: D -> K l nu (forced with probability q_c, e or mu 50/50) | K pi pi0 (phase space).
        # c -> s l+ nu pairs the charged lepton with the parent: the CP mirror of the B's ME slot.
        d_sl = rng.random(n) < qc
        d_is_e = rng.random(n) < 0.5
        w_c *= np.where(d_sl, 2.0 * brc / max(qc, 1e-300), (1.0 - 2.0 * brc) / max(1.0 - qc, 1e-300))
        K, x, y = (np.zeros((n, 4)) for _ in range(3))
        for mask, ml in ((d_sl & d_is_e, M_E), (d_sl & ~d_is_e, M_MU)):
            j = np.nonzero(mask)[0]
            K[j], x[j], y[j] = three_body_decay(rng, D[j], mD, M_K, ml, o_l=o_r, o_r=o_l,
                                                mw=dec["w_mass_gev"], gw=dec["w_width_gev"])
        j = np.nonzero(~d_sl)[0]
        K[j], x[j], y[j] = three_body_decay(rng, D[j], mD, M_K, M_PI, flat=True, mnu=M_PI0)
        prods.append(dict(D=D, a=a, b=b, K=K, x=x, y=y, sl=sl, is_e=is_e, d_sl=d_sl, d_is_e=d_is_e, sign=sign))

    w_br = np.where(second_sl, 2.0 * br * br / max(f2, 1e-300), 4.0 * br * (1.0 - br) / max(1.0 - f2, 1e-300))
    return {"quarks": quarks, "hadrons": hadrons, "frag_momentum": frags, "isr": (isr_p4, isr_pid, isr_mass),
            "verts": verts, "prods": prods,
            "mB": mB, "mD": mD, "pthat": pt, "weight": w_br * w_c * w_imp, "w_importance": w_imp, "cos_theta": cos_theta,
            "z": np.stack(zs, axis=1)}


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = np.mod(phi1 - phi2 + np.pi, 2.0 * np.pi) - np.pi
    return np.sqrt((eta1 - eta2) ** 2 + dphi ** 2)


def truth_lepton_classes(kin: Mapping, t: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event: (number of hard truth leptons, both leptons hard and truth-isolated, any hard lepton).

    Hard: pT > ``keep_pt_min_gev`` and |eta| < ``keep_abs_eta_max``. Truth isolation (a cheap
    proxy of the detector's, used only to choose keep probabilities): sum pT of the visible
    particles of the same b system (D products; the fragmentation pions as one object, their summed
    momentum) above
    ``proxy_particle_pt_min_gev`` within Delta R < ``proxy_delta_r`` over the lepton pT,
    below ``proxy_isolation_max``."""
    n = len(kin["weight"])
    n_hard = np.zeros(n, dtype=np.int64)
    iso_all = np.ones(n, dtype=bool)
    for pr, rest in zip(kin["prods"], kin["frag_momentum"]):
        a = pr["a"]
        ptl, etal, phil = pt_eta_phi(a[:, 1], a[:, 2], a[:, 3])
        hard = pr["sl"] & (ptl > t["keep_pt_min_gev"]) & (np.abs(etal) < t["keep_abs_eta_max"])
        n_hard += hard
        ptc, etac, _ = pt_eta_phi(pr["x"][:, 1], pr["x"][:, 2], pr["x"][:, 3])   # cascade lepton of the D
        n_hard += pr["d_sl"] & (ptc > t["keep_pt_min_gev"]) & (np.abs(etac) < t["keep_abs_eta_max"])
        cone = np.zeros(n)
        # the fragmentation pions as one object: their summed momentum (1 - z) p_b along the b direction
        for o in (pr["K"][:, 1:], pr["x"][:, 1:], pr["y"][:, 1:], rest):
            pto, etao, phio = pt_eta_phi(o[:, 0], o[:, 1], o[:, 2])
            near = (pto > t["proxy_particle_pt_min_gev"]) & (_delta_r(etal, phil, etao, phio) < t["proxy_delta_r"])
            cone += np.where(near, pto, 0.0)
        iso_all &= hard & (cone < t["proxy_isolation_max"] * ptl)
    return n_hard, iso_all & (n_hard == 2), n_hard > 0


def _thinning(rng, kin: Mapping, n: int, bias: Mapping | None) -> tuple[np.ndarray, np.ndarray]:
    """(kept event indices, keep probability of each kept event)."""
    if bias is None:
        return np.arange(n), np.ones(n)
    t = bias["thinning"]
    n_hard, iso_pair, any_hard = truth_lepton_classes(kin, t)
    prob = np.where(iso_pair, 1.0, np.where(n_hard == 2, t["keep_fraction_pair"],
                                            np.where(any_hard, t["keep_fraction_single"], t["keep_fraction_soft"])))
    keep = rng.random(n) < prob
    idx = np.nonzero(keep)[0]
    return idx, prob[idx]


def generate_heavy_flavour(rng: np.random.Generator, n: int, cfg: Mapping) -> ak.Array:
    """b bbar events in the truth record format; ``cfg`` = ``generation.fast`` (defaults filled).

    ``n`` candidate events are generated; with ``heavy_flavour.bias.enabled`` the thinning
    keeps a subset (weights corrected), so fewer than ``n`` events may be returned."""
    h = cfg["heavy_flavour"]
    bias = h["bias"] if h["bias"]["enabled"] else None
    batch = int(bias["batch_size"]) if bias is not None else n
    parts = []
    for start in range(0, n, max(batch, 1)):
        parts.append(_generate_batch(rng, min(batch, n - start), cfg, bias))
    return parts[0] if len(parts) == 1 else ak.concatenate(parts)


def _generate_batch(rng: np.random.Generator, n: int, cfg: Mapping, bias: Mapping | None) -> ak.Array:
    kin = sample_heavy_flavour_kinematics(rng, n, cfg)
    idx, prob = _thinning(rng, kin, n, bias)
    mB, mD = kin["mB"], kin["mD"]
    m = len(idx)
    quarks = [q[idx] for q in kin["quarks"]]
    hadrons = [x[idx] for x in kin["hadrons"]]
    frags, frag_neutral = [], []
    for rest in kin["frag_momentum"]:
        rest = rest[idx]
        e1, e2 = orthonormal_basis(rest / np.maximum(np.linalg.norm(rest, axis=1), 1e-300)[:, None])
        p4, active, neutral = fragment_pions(rng, rest, e1, e2, cfg["heavy_flavour"])
        frags.append((p4, active))
        frag_neutral.append(neutral)
    verts = [tuple(v[idx] for v in vt) for vt in kin["verts"]]

    tab = ParticleTable(m, 20)
    zero = (0.0, 0.0, 0.0, 0.0)
    tab.set(0, pid=5, status=2, p4=quarks[0], mass=M_B_QUARK, vertex=zero, charge=-1.0 / 3, d1=2, d2=4)
    tab.set(1, pid=-5, status=2, p4=quarks[1], mass=M_B_QUARK, vertex=zero, charge=1.0 / 3, d1=5, d2=7)
    extra_parts = []
    for iq, (base, dbase, kbase) in enumerate(((2, 8, 14), (5, 11, 17))):
        pr = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in kin["prods"][iq].items()}
        D, a, b, K, x, y, sl, is_e, sign = (pr[k] for k in ("D", "a", "b", "K", "x", "y", "sl", "is_e", "sign"))
        d_sl, d_is_e = pr["d_sl"], pr["d_is_e"]
        vtx = verts[iq]
        tab.set(base, pid=521 * sign, status=2, p4=hadrons[iq], mass=mB, vertex=zero, charge=float(sign),
                m1=iq, d1=dbase, d2=dbase + 2)
        fp4, fact = frags[iq]
        neu = frag_neutral[iq]
        # charged pions alternate +, -, +, ... in momentum-fraction order (charge conserved up to one unit)
        q = np.where(neu, 0.0, np.where(np.cumsum(~neu & fact, axis=1) % 2 == 1, 1.0, -1.0))
        pid_f = np.where(neu, 111, np.where(q > 0, 211, -211))
        for j, slot in enumerate((base + 1, base + 2)):   # the leading pair: fixed slots
            tab.set(slot, pid=pid_f[:, j], status=1, p4=fp4[:, j], mass=np.where(neu[:, j], M_PI0, M_PI),
                    vertex=zero, charge=q[:, j], m1=iq)
        ev_i, k_i = np.nonzero(fact[:, 2:])                  # the others: extra particles of the event
        k_i = k_i + 2
        extra_parts.append(dict(event=ev_i, pid=pid_f[ev_i, k_i], status=np.ones(len(ev_i), np.int32),
                                e=fp4[ev_i, k_i, 0], px=fp4[ev_i, k_i, 1], py=fp4[ev_i, k_i, 2],
                                pz=fp4[ev_i, k_i, 3], mass=np.where(neu[ev_i, k_i], M_PI0, M_PI),
                                x=np.zeros(len(ev_i)), y=np.zeros(len(ev_i)), z=np.zeros(len(ev_i)),
                                t=np.zeros(len(ev_i)), m1=np.full(len(ev_i), iq, np.int32),
                                m2=np.full(len(ev_i), -1, np.int32), d1=np.full(len(ev_i), -1, np.int32),
                                d2=np.full(len(ev_i), -1, np.int32), charge=q[ev_i, k_i]))
        # B- -> D0 l- nubar | D0 pi- pi0 ;  B+ -> D0bar l+ nu | D0bar pi+ pi0
        tab.set(dbase, pid=-421 * sign, status=2, p4=D, mass=mD, vertex=vtx, m1=base, d1=kbase, d2=kbase + 2)
        lpid = np.where(is_e, 11, 13) * (-sign)
        tab.set(dbase + 1, pid=np.where(sl, lpid, 211 * sign), status=1, p4=a,
                mass=np.where(sl, np.where(is_e, M_E, M_MU), M_PI), vertex=vtx, charge=float(sign), m1=base)
        tab.set(dbase + 2, pid=np.where(sl, np.where(is_e, 12, 14) * sign, 111), status=1, p4=b,
                mass=np.where(sl, 0.0, M_PI0), vertex=vtx, m1=base)
        # D0 -> K- l+ nu | K- pi+ pi0 ;  D0bar -> K+ l- nubar | K+ pi- pi0
        tab.set(kbase, pid=321 * sign, status=1, p4=K, mass=M_K, vertex=vtx, charge=float(sign), m1=dbase)
        dl = np.where(d_is_e, 11, 13) * sign
        tab.set(kbase + 1, pid=np.where(d_sl, dl, -211 * sign), status=1, p4=x,
                mass=np.where(d_sl, np.where(d_is_e, M_E, M_MU), M_PI), vertex=vtx, charge=-float(sign), m1=dbase)
        tab.set(kbase + 2, pid=np.where(d_sl, -np.where(d_is_e, 12, 14) * sign, 111), status=1, p4=y,
                mass=np.where(d_sl, 0.0, M_PI0), vertex=vtx, m1=dbase)
    isr_p4, isr_pid, isr_mass = kin["isr"]
    if isr_p4.shape[1]:
        # ISR-jet fragments: visible particles from the origin, no mother in the record
        p4 = isr_p4[idx].reshape(-1, 4)
        pid = np.tile(isr_pid, m)
        extra_parts.append(from_origin(dict(event=np.repeat(np.arange(m), isr_p4.shape[1]), pid=pid, e=p4[:, 0],
                                            px=p4[:, 1], py=p4[:, 2], pz=p4[:, 3], mass=np.tile(isr_mass, m),
                                            charge=np.sign(pid).astype(float) * (np.abs(pid) == 211))))
    extra_parts.append(soft_particles(rng, m, cfg["underlying_event"], cfg["heavy_flavour"]["soft_activity"]))
    return build_events(tab, kin["weight"][idx] / prob, extra=concat_extra(extra_parts))
