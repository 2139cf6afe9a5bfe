"""Fast signal generator: q qbar -> gamma*/Z -> chi+ chi- -> (chi0 l+ nu)(chi0 l- nubar).

Steps per event (all vectorised over the chunk; see docs/generator.md):

1. pair invariant mass M and rapidity y from the parton-luminosity model of
   :mod:`.luminosity` (exponents fitted to the wino cross-section table);
2. ISR: a jet with pT from dN/dpT^2 ∝ (pT^2 + pT0^2)^-power, fragmented into a few
   visible hadrons; the chi+ chi- system recoils against their summed pT
   (exact transverse momentum balance);
3. production angle in the pair rest frame from the spin-1/2 pair distribution
   through a vector current: dN/dcos(theta) ∝ 1 + cos^2 + (1 - beta^2) sin^2;
4. proper decay lengths c*t ~ Exp(c*tau); decay vertex = (p/m) c*t from the origin;
5. chi+- -> chi0 l nu with the off-shell-W matrix element
   (:func:`.kinematics.three_body_decay`). Lepton flavours (``mediator_decay.decay_mode``):
   ``democratic`` (the study's MadGraph cards): each chargino independently to e or mu
   with 1/2 each (ee : e-mu : mu-mu = 1 : 2 : 1); ``emu``: one to e, the other to mu,
   chosen at random per event (forced e-mu; the yields then apply the factor 1/2);
6. QED final-state radiation off the two leptons (:func:`.radiation.qed_fsr`, Q = 2 E*
   of the lepton in its chargino's rest frame) and the underlying event
   (:func:`.radiation.underlying_event`): photons and soft hadrons appended to the
   record as visible particles.
"""

from __future__ import annotations

from typing import Mapping

import awkward as ak
import numpy as np

from .kinematics import boost, cos_sin, cosh_sinh, four_vector, three_body_decay
from .luminosity import sample_mass_rapidity
from .radiation import concat_extra, from_origin, qed_fsr, underlying_event
from .record import ParticleTable, build_events

__all__ = ["generate_signal", "decay_flavours", "PID_CHARGINO", "PID_NEUTRALINO", "M_E", "M_MU", "M_PI",
           "DECAY_MODES"]

#: Signal decay modes: "democratic" (each chargino to e or mu, 1/2 each) or "emu" (forced e-mu).
DECAY_MODES = ("democratic", "emu")

PID_CHARGINO = 1000024
PID_NEUTRALINO = 1000022
M_E = 0.000510999
M_MU = 0.1056584
M_PI = 0.13957
_FRAGMENT_PIDS = (211, -211, 22, 211, -211, 22, 211, -211)


def sample_isr_pt(rng, n, pt0, power, pt_max):
    """pT from dN/dpT^2 ∝ (pT^2 + pT0^2)^-power (power > 1), truncated at pt_max (inverse CDF)."""
    k = power - 1.0
    u_min = (pt0 ** 2 / (pt_max ** 2 + pt0 ** 2)) ** k
    u = rng.uniform(u_min, 1.0, n)
    return pt0 * np.sqrt(np.power(u, -1.0 / k) - 1.0)


def sample_pair_costheta(rng, beta):
    """cos(theta) with density ∝ 1 + cos^2 + (1 - beta^2) sin^2 = 2 - beta^2 sin^2 (accept-reject)."""
    n = len(beta)
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        c = rng.uniform(-1.0, 1.0, todo.size)
        b2 = beta[todo] ** 2
        ok = rng.random(todo.size) * 2.0 < 2.0 - b2 * (1.0 - c * c)
        out[todo[ok]] = c[ok]
        todo = todo[~ok]
    return out


def isr_fragments(rng, n, pt_jet, cfg):
    """Visible ISR-jet fragments: (n, F, 4) momenta and their pids/charges."""
    nf = int(cfg["n_fragments"])
    eta_j = rng.normal(0.0, cfg["jet_rapidity_sigma"], n)
    phi_j = rng.uniform(-np.pi, np.pi, n)
    frac = rng.dirichlet(np.ones(nf), n) if nf > 1 else np.ones((n, 1))
    spread = cfg["fragment_spread"]
    eta = eta_j[:, None] + rng.normal(0.0, spread, (n, nf))
    phi = phi_j[:, None] + rng.normal(0.0, spread, (n, nf))
    pt = frac * pt_jet[:, None]
    pids = np.array([_FRAGMENT_PIDS[i % len(_FRAGMENT_PIDS)] for i in range(nf)])
    mass = np.where(pids == 22, 0.0, M_PI)
    c, s = cos_sin(phi)
    ch, sh = cosh_sinh(eta)
    px, py, pz = pt * c, pt * s, pt * sh
    e = np.sqrt(np.square(pt * ch) + mass[None, :] ** 2)
    return np.stack([e, px, py, pz], axis=2), pids, mass


def decay_flavours(rng: np.random.Generator, n: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(chi+ -> e, chi- -> e) boolean arrays for ``n`` events in decay mode ``mode`` (else mu)."""
    if mode == "democratic":
        u = rng.random((n, 2))
        return u[:, 0] < 0.5, u[:, 1] < 0.5
    if mode == "emu":
        e_on_plus = rng.random(n) < 0.5
        return e_on_plus, ~e_on_plus
    raise ValueError(f"generation.fast.mediator_decay.decay_mode: unknown mode {mode!r} (known: {DECAY_MODES})")


def generate_signal(rng: np.random.Generator, n: int, m_c: float, dm: float, ctau_cm: float,
                    cfg: Mapping) -> ak.Array:
    """``n`` signal events in the truth record format of docs/contracts.md.

    ``cfg`` is the ``generation.fast`` section (defaults filled)."""
    if not 0 < dm < m_c:
        raise ValueError(f"signal: need 0 < dm < m_c, got m_c={m_c}, dm={dm}")
    sqrt_s = float(cfg["sqrt_s_gev"])
    lum = cfg["luminosity"]
    isr = cfg["isr"]
    dcfg = cfg["mediator_decay"]
    m0 = m_c - dm
    ctau_mm = 10.0 * ctau_cm

    M, y = sample_mass_rapidity(rng, n, m_c, sqrt_s, lum["a"], lum["b"])
    # ISR jet and recoil
    pt_isr = sample_isr_pt(rng, n, isr["pt0_gev"], isr["power"], isr["pt_max_gev"])
    frag, frag_pid, frag_mass = isr_fragments(rng, n, pt_isr, isr)
    nf = frag.shape[1]
    isr_tot = frag.sum(axis=1)
    spx, spy = -isr_tot[:, 1], -isr_tot[:, 2]
    mt = np.sqrt(M * M + spx * spx + spy * spy)
    ch, sh = cosh_sinh(y)
    system = np.stack([mt * ch, spx, spy, mt * sh], axis=1)
    # pair production in the system rest frame
    beta = np.sqrt(np.clip(1.0 - 4.0 * m_c * m_c / (M * M), 0.0, 1.0))
    cos = sample_pair_costheta(rng, beta)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin = np.sqrt(1.0 - cos * cos)
    pstar = 0.5 * M * beta
    c_phi, s_phi = cos_sin(phi)
    dirv = np.stack([sin * c_phi, sin * s_phi, cos], axis=1)
    chi_p = boost(four_vector(pstar[:, None] * dirv, m_c), system)
    chi_m = system - chi_p
    # lifetimes and decay vertices
    ct = rng.exponential(ctau_mm, (n, 2))
    verts = []
    for i, chi in enumerate((chi_p, chi_m)):
        fac = ct[:, i] / m_c
        verts.append((chi[:, 1] * fac, chi[:, 2] * fac, chi[:, 3] * fac, chi[:, 0] * fac))
    # lepton flavour of each chargino's decay
    e_plus, e_minus = decay_flavours(rng, n, dcfg["decay_mode"])
    prods = {}
    for sign, chi in ((+1, chi_p), (-1, chi_m)):
        is_e = e_plus if sign > 0 else e_minus
        out = [np.empty((n, 4)) for _ in range(3)]
        for flav_mask, ml in ((is_e, M_E), (~is_e, M_MU)):
            idx = np.nonzero(flav_mask)[0]
            # CP conjugate for chi-: swap the roles of the left/right couplings
            o_l, o_r = (dcfg["o_l"], dcfg["o_r"]) if sign > 0 else (dcfg["o_r"], dcfg["o_l"])
            res = three_body_decay(rng, chi[idx], m_c, m0, ml, o_l=o_l, o_r=o_r,
                                   mw=dcfg["w_mass_gev"], gw=dcfg["w_width_gev"])
            for o, r in zip(out, res):
                o[idx] = r
        prods[sign] = (out, is_e)
    # QED FSR off each lepton (Q = 2 E* in the chargino rest frame), photons at the decay vertex
    photons = []
    for sign, chi, base, mother, vtx in ((+1, chi_p, 2, 0, verts[0]), (-1, chi_m, 5, 1, verts[1])):
        (p0, lep, nu), is_e = prods[sign]
        ml = np.where(is_e, M_E, M_MU)
        e_star = (chi[:, 0] * lep[:, 0] - np.einsum("ij,ij->i", chi[:, 1:], lep[:, 1:])) / m_c
        lep_after, ph = qed_fsr(rng, lep, e_star, ml, cfg["fsr"])
        prods[sign] = ((p0, lep_after, nu), is_e)
        i = ph["lepton"]
        zeros = np.zeros(len(i))
        photons.append({"event": i, "pid": np.full(len(i), 22), "status": np.ones(len(i), dtype=np.int64),
                        "px": ph["px"], "py": ph["py"], "pz": ph["pz"], "e": ph["e"], "mass": zeros,
                        "x": vtx[0][i], "y": vtx[1][i], "z": vtx[2][i], "t": vtx[3][i],
                        "m1": np.full(len(i), mother), "m2": np.full(len(i), -1), "d1": np.full(len(i), -1),
                        "d2": np.full(len(i), -1), "charge": zeros})
    extra = concat_extra(photons + [from_origin(underlying_event(rng, n, cfg["underlying_event"]))])

    tab = ParticleTable(n, 9 + nf)
    zero = (0.0, 0.0, 0.0, 0.0)
    tab.set(0, pid=PID_CHARGINO, status=22, p4=chi_p, mass=m_c, vertex=zero, charge=1.0, d1=2, d2=4)
    tab.set(1, pid=-PID_CHARGINO, status=22, p4=chi_m, mass=m_c, vertex=zero, charge=-1.0, d1=5, d2=7)
    for sign, base, mother, vtx in ((+1, 2, 0, verts[0]), (-1, 5, 1, verts[1])):
        (p0, lep, nu), is_e = prods[sign]
        lpid = np.where(is_e, 11, 13) * (-sign)  # l+ has negative pid
        tab.set(base, pid=PID_NEUTRALINO, status=1, p4=p0, mass=m0, vertex=vtx, m1=mother)
        tab.set(base + 1, pid=lpid, status=1, p4=lep, mass=np.where(is_e, M_E, M_MU), vertex=vtx,
                charge=float(sign), m1=mother)
        tab.set(base + 2, pid=np.where(is_e, 12, 14) * sign, status=1, p4=nu, mass=0.0, vertex=vtx, m1=mother)
    charges = {211: 1.0, -211: -1.0, 22: 0.0}
    for j in range(nf):
        tab.set(9 + j, pid=int(frag_pid[j]), status=1, p4=frag[:, j], mass=frag_mass[j], vertex=zero,
                charge=charges[int(frag_pid[j])], m1=8)
    # the ISR parton mass is whatever its fragments sum to
    tab.set(8, pid=21, status=2, p4=isr_tot, vertex=zero, d1=9, d2=8 + nf,
            mass=np.sqrt(np.maximum(isr_tot[:, 0] ** 2 - (isr_tot[:, 1:] ** 2).sum(axis=1), 0.0)))

    med = {"pid": np.tile(np.array([PID_CHARGINO, -PID_CHARGINO], dtype=np.int32), (n, 1)),
           "mass": np.full((n, 2), float(m_c)), "proper_ct_mm": ct}
    for f, i in (("e", 0), ("px", 1), ("py", 2), ("pz", 3)):
        med[f] = np.stack([chi_p[:, i], chi_m[:, i]], axis=1)
    for f in "xyzt":
        med[f] = np.zeros((n, 2))
    for f, i in (("decay_x", 0), ("decay_y", 1), ("decay_z", 2)):
        med[f] = np.stack([verts[0][i], verts[1][i]], axis=1)
    return build_events(tab, 1.0, med, extra=extra)
