"""Fast heavy-flavour background: b bbar -> (B -> D l nu)(B -> D l nu | D pi pi0) + fragments.

Per event (vectorised over the chunk; docs/generator.md):

1. b and bbar with pT from dN/dpT ∝ pT^-n above pT-hat_min, independent Gaussian
   rapidities, back to back in phi up to a Gaussian acoplanarity;
2. Peterson fragmentation: B hadron with 3-momentum z p_b; the rest (1 - z) p_b
   goes to two charged pions with Gaussian kT around the b direction;
3. B decay length: proper c*t ~ Exp(c*tau_B = 0.455 mm), vertex (p_B / m_B) c*t;
4. one B (chosen at random: b or bbar) is forced to B -> D l nu with l = e or mu
   (50/50), using the V-A matrix element of b -> c l nu; the other B is forced
   to the other lepton flavour with probability f2 (``second_b_semileptonic_fraction``),
   otherwise it decays hadronically, B -> D pi pi0 (phase space);
   D -> K pi at the B decay vertex (D flight neglected);
5. event weights carry the branching ratios (BR = ``br_semileptonic`` per flavour):
   e-mu events w = 2 BR^2 / f2, single-lepton events w = 4 BR (1 - BR) / (1 - f2),
   so that sum(w)/N estimates the fraction of b bbar events with that final state.

Leptons come with the D decay products and the fragmentation pions around them,
so they are not isolated by construction; isolation is computed by the detector.
"""

from __future__ import annotations

from typing import Mapping

import awkward as ak
import numpy as np

from .kinematics import (boost, cos_sin, cosh_sinh, four_vector, orthonormal_basis, peterson_sample,
                         three_body_decay, two_body_decay)
from .record import ParticleTable, build_events
from .signal import M_E, M_MU, M_PI

__all__ = ["generate_heavy_flavour", "M_B_QUARK"]

M_B_QUARK = 4.8
M_K = 0.493677
M_PI0 = 0.134977
_SELF_CONJUGATE = (22, 111)


def _quark(pt, y, phi, m):
    mt = np.sqrt(pt * pt + m * m)
    ch, sh = cosh_sinh(y)
    c, s = cos_sin(phi)
    return np.stack([mt * ch, pt * c, pt * s, mt * sh], axis=1)


def generate_heavy_flavour(rng: np.random.Generator, n: int, cfg: Mapping) -> ak.Array:
    """``n`` b bbar events in the truth record format; ``cfg`` = ``generation.fast`` (defaults filled)."""
    h = cfg["heavy_flavour"]
    dec = cfg["mediator_decay"]
    mB, mD, ctau = h["b_hadron_mass_gev"], h["d_mass_gev"], h["b_ctau_mm"]
    br, f2 = h["br_semileptonic"], h["second_b_semileptonic_fraction"]

    # 1. b bbar kinematics
    pt = h["pthat_min_gev"] * np.power(1.0 - rng.random(n), -1.0 / (h["pthat_power"] - 1.0))
    y = rng.normal(0.0, h["rapidity_sigma"], (n, 2))
    phi1 = rng.uniform(-np.pi, np.pi, n)
    phi2 = phi1 + np.pi + rng.normal(0.0, h["acoplanarity_sigma"], n)
    quarks = [_quark(pt, y[:, 0], phi1, M_B_QUARK), _quark(pt, y[:, 1], phi2, M_B_QUARK)]

    # 2.-3. fragmentation and B flight
    hadrons, frags, verts = [], [], []
    for q in quarks:
        z = peterson_sample(rng, n, h["peterson_epsilon"])
        p3 = q[:, 1:]
        pB = four_vector(z[:, None] * p3, mB)
        rest = (1.0 - z)[:, None] * p3
        axis = p3 / np.linalg.norm(p3, axis=1)[:, None]
        e1, e2 = orthonormal_basis(axis)
        r = rng.uniform(0.2, 0.8, n)
        kt = rng.normal(0.0, h["fragment_kt_gev"], (n, 2))
        kperp = kt[:, :1] * e1 + kt[:, 1:] * e2
        frags.append((four_vector(r[:, None] * rest + kperp, M_PI), four_vector((1 - r)[:, None] * rest - kperp, M_PI)))
        ct = rng.exponential(ctau, n)
        fac = ct / mB
        verts.append((pB[:, 1] * fac, pB[:, 2] * fac, pB[:, 3] * fac, pB[:, 0] * fac))
        hadrons.append(pB)

    # 4. decays. Slot convention before the charge flip: quark 0 = b (B-, l-), quark 1 = bbar (B+, l+).
    first_is_b = rng.random(n) < 0.5          # which B is forced semileptonic
    first_is_e = rng.random(n) < 0.5          # its lepton flavour
    second_sl = rng.random(n) < f2            # the other B: other flavour (True) or hadronic
    prods = []
    for iq, sign in ((0, -1), (1, +1)):        # sign = charge of the lepton
        is_first = first_is_b if iq == 0 else ~first_is_b
        sl = is_first | second_sl
        is_e = np.where(is_first, first_is_e, ~first_is_e)
        D, a, b = (np.zeros((n, 4)) for _ in range(3))
        # b -> c l- nubar: |M|^2 ∝ (P.nubar)(p_c.l) (O_R slot); the CP conjugate for B+
        o_l, o_r = (0.0, 1.0) if sign < 0 else (1.0, 0.0)
        for mask, ml in ((sl & is_e, M_E), (sl & ~is_e, M_MU)):
            i = np.nonzero(mask)[0]
            res = three_body_decay(rng, hadrons[iq][i], mB, mD, ml, o_l=o_l, o_r=o_r,
                                   mw=dec["w_mass_gev"], gw=dec["w_width_gev"])
            D[i], a[i], b[i] = res
        i = np.nonzero(~sl)[0]
        D[i], a[i], b[i] = three_body_decay(rng, hadrons[iq][i], mB, mD, M_PI, flat=True, mnu=M_PI0)
        K, pi = two_body_decay(rng, D, mD, M_K, M_PI)
        prods.append((D, a, b, K, pi, sl, is_e, sign))

    tab = ParticleTable(n, 18)
    zero = (0.0, 0.0, 0.0, 0.0)
    tab.set(0, pid=5, status=2, p4=quarks[0], mass=M_B_QUARK, vertex=zero, charge=-1.0 / 3, d1=2, d2=4)
    tab.set(1, pid=-5, status=2, p4=quarks[1], mass=M_B_QUARK, vertex=zero, charge=1.0 / 3, d1=5, d2=7)
    for iq, (base, dbase, kbase) in enumerate(((2, 8, 14), (5, 11, 16))):
        D, a, b, K, pi, sl, is_e, sign = prods[iq]
        vtx = verts[iq]
        tab.set(base, pid=521 * sign, status=2, p4=hadrons[iq], mass=mB, vertex=zero, charge=float(sign),
                m1=iq, d1=dbase, d2=dbase + 2)
        tab.set(base + 1, pid=211, status=1, p4=frags[iq][0], mass=M_PI, vertex=zero, charge=1.0, m1=iq)
        tab.set(base + 2, pid=-211, status=1, p4=frags[iq][1], mass=M_PI, vertex=zero, charge=-1.0, m1=iq)
        # B- -> D0 l- nubar | D0 pi- pi0 ;  B+ -> D0bar l+ nu | D0bar pi+ pi0
        tab.set(dbase, pid=-421 * sign, status=2, p4=D, mass=mD, vertex=vtx, m1=base, d1=kbase, d2=kbase + 1)
        lpid = np.where(is_e, 11, 13) * (-sign)
        tab.set(dbase + 1, pid=np.where(sl, lpid, 211 * sign), status=1, p4=a,
                mass=np.where(sl, np.where(is_e, M_E, M_MU), M_PI), vertex=vtx, charge=float(sign), m1=base)
        tab.set(dbase + 2, pid=np.where(sl, np.where(is_e, 12, 14) * sign, 111), status=1, p4=b,
                mass=np.where(sl, 0.0, M_PI0), vertex=vtx, m1=base)
        # D0 -> K- pi+ ; D0bar -> K+ pi-
        tab.set(kbase, pid=321 * sign, status=1, p4=K, mass=M_K, vertex=vtx, charge=float(sign), m1=dbase)
        tab.set(kbase + 1, pid=-211 * sign, status=1, p4=pi, mass=M_PI, vertex=vtx, charge=-float(sign), m1=dbase)
    both = second_sl
    weight = np.where(both, 2.0 * br * br / max(f2, 1e-300), 4.0 * br * (1.0 - br) / max(1.0 - f2, 1e-300))
    return build_events(tab, weight)
