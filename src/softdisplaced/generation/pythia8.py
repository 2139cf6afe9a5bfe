"""Pythia 8 generator backend (signal chargino pairs, b-bbar background, LHE showering).

Entry point (the CLI ``softdisplaced generate`` dispatches here for ``source: pythia8``
and, through :mod:`.lhe`, for ``source: lhe``)::

    generate_chunk(sample, settings, rng, n_events) -> awkward.Array   # truth event record

The truth event record is the one of ``docs/contracts.md``. Events are produced with
``Pythia.nextBatch`` (awkward arrays straight from C++), converted without a Python
loop over particles, and pruned to what the detector simulation needs: final-state
particles, the mediators (last copy, status 22), and decayed hadrons / leptons
(status 2: B and D hadrons, taus, intermediate lepton copies). Partons, beam remnants
and strings are dropped; mother/daughter indices are remapped (``-1`` when the
relative was dropped).

Signal (``kind: signal``): ``SUSY:qqbar2chi+chi-`` with an SLHA spectrum from
:mod:`.slha`, ``ParticleDecays:limitTau0 = off`` (displaced decays kept), full
shower + MPI + hadronisation. Pythia's ``Particle::tau()`` of the mediator's last
copy is the sampled proper lifetime in mm/c: the decay vertex is
``vProd + tau * p / m`` (checked in ``tests/test_pythia8.py``), so
``proper_ct_mm = tau``. The event weight is 1; the sample is normalised downstream
to the configured cross section. Pythia's LO ``sigmaGen`` is stored per event as
``cross_section_pb`` (information only: Delphes ``Event.CrossSection``).

Background (``kind: background``): b-bbar production (``HardQCD:hardbbbar`` or
``HardQCD:gg2bbbar, qqbar2bbbar``) above ``PhaseSpace:pTHatMin``, with the decay
tables of the weakly decaying b hadrons biased towards semi-leptonic decays to
e / mu (importance sampling, see :func:`biased_b_tables`); the event weight undoes
the bias exactly (product over b-hadron decays of physical / sampled branching
fraction), so weighted rates are physical. ``forced_fraction = 1`` is classical
forcing (only e/mu semi-leptonic decays): the weights then only reproduce events
in which every b hadron decays semi-leptonically (documented in docs/generators.md).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import awkward as ak
import numpy as np

from . import slha as slha_mod
from .defaults import with_defaults

__all__ = [
    "pythia8_settings", "B_HADRONS", "MAX_SEED", "pythia_seed", "common_commands", "pythia_settings", "make_pythia",
    "chargino_mediators",
    "biased_b_tables", "generate_chunk", "generate_events", "convert_batch", "hf_event_weights",
]

log = logging.getLogger(__name__)

#: Pythia's Random:seed must be below 900 000 000.
MAX_SEED = 900_000_000

#: Weakly decaying b hadrons whose decay tables are biased for the HF background.
B_HADRONS = (511, 521, 531, 541, 5122, 5132, 5232, 5332)
#: Weakly decaying c hadrons (biased with ``hf.charm_forced_fraction`` > 0: b -> c -> l cascades).
C_HADRONS = (411, 421, 431, 4122, 4132, 4232, 4332)

MEDIATOR_ID = 1000024
LSP_ID = 1000022

def pythia8_settings(settings: Mapping | None) -> dict:
    """``generation.pythia8`` with the defaults of config/schema.yaml filled in (the schema is
    the only place that holds them) and validated."""
    return with_defaults(((settings or {}).get("generation") or {}).get("pythia8") or {}, "generation", "pythia8")


def pythia_seed(rng: np.random.Generator) -> int:
    """A Pythia seed in [1, 9e8) drawn from the chunk's random stream."""
    return int(rng.integers(1, MAX_SEED))


def common_commands(cfg: Mapping, seed: int) -> list[str]:
    """Commands shared by every Pythia run: quiet output, seed, tune and the shower/MPI/hadronisation
    switches of ``generation.pythia8`` (``cfg`` = :func:`pythia8_settings`)."""
    if not 1 <= int(seed) < MAX_SEED:
        raise ValueError(f"Pythia seed {seed} outside [1, {MAX_SEED})")
    return [
        "Print:quiet = on", "Init:showChangedSettings = off", "Init:showProcesses = off",
        "Next:numberCount = 0", "Next:numberShowEvent = 0", "Next:numberShowInfo = 0",
        "Next:numberShowProcess = 0",
        "Random:setSeed = on", f"Random:seed = {int(seed)}",
        f"Tune:pp = {int(cfg['tune'])}",
        f"PartonLevel:MPI = {'on' if cfg['mpi'] else 'off'}",
        f"PartonLevel:ISR = {'on' if cfg['isr'] else 'off'}",
        f"PartonLevel:FSR = {'on' if cfg['fsr'] else 'off'}",
        f"HadronLevel:all = {'on' if cfg['hadronisation'] else 'off'}",
    ]


def pythia_settings(sample: Mapping, settings: Mapping | None, seed: int, slha_path: str | None = None,
                    lhe_path: str | None = None) -> list[str]:
    """The list of Pythia ``readString`` commands for a sample (no side effects)."""
    cfg = pythia8_settings(settings)
    cmds = common_commands(cfg, seed)
    source = sample.get("source")
    if source == "lhe":
        if not lhe_path:
            raise ValueError(f"sample {sample.get('name')}: LHE showering needs an LHE file")
        cmds += ["Beams:frameType = 4", f"Beams:LHEF = {lhe_path}"]
        cmds += list(cfg["lhe"].get("extra", []))
    elif sample.get("kind") == "signal":
        if not slha_path:
            raise ValueError(f"sample {sample.get('name')}: signal generation needs an SLHA file")
        sig = cfg["signal"]
        cmds += [
            f"Beams:eCM = {float(cfg['ecm_gev'])}",
            "SUSY:all = off", "SUSY:qqbar2chi+chi- = on",
            f"SUSY:idA = {MEDIATOR_ID}", f"SUSY:idB = {MEDIATOR_ID}",
            f"SLHA:file = {slha_path}", "SLHA:verbose = 0",
            # the chargino decay switches below must survive the SLHA decay table
            "SLHA:allowUserOverride = on",
            "ParticleDecays:limitTau0 = off",
        ]
        if sig["decay_mode"] == "emu":
            # forced e-mu (an option; the study's cards are flavour-democratic):
            # chi+ -> chi0 e+ nu_e, chi- -> chi0 mu- nu_mu~
            cmds += [f"{MEDIATOR_ID}:onMode = off",
                     f"{MEDIATOR_ID}:onPosIfAll = {LSP_ID} 11",
                     f"{MEDIATOR_ID}:onNegIfAll = {LSP_ID} 13"]
        elif sig["decay_mode"] != "democratic":
            raise ValueError(f"generation.pythia8.signal.decay_mode: unknown mode {sig['decay_mode']!r}")
        cmds += list(sig.get("extra", []))
    elif sample.get("kind") == "background":
        hf = cfg["hf"]
        cmds += [f"Beams:eCM = {float(cfg['ecm_gev'])}"]
        if hf["process"] == "hardbbbar":
            cmds += ["HardQCD:hardbbbar = on"]
        elif hf["process"] == "gg_qqbar":
            cmds += ["HardQCD:gg2bbbar = on", "HardQCD:qqbar2bbbar = on"]
        else:
            raise ValueError(f"generation.pythia8.hf.process: unknown process {hf['process']!r}")
        cmds += [f"PhaseSpace:pTHatMin = {float(hf['pthat_min_gev'])}"]
        power = float(hf.get("pthat_bias_power", 0.0))
        if power > 0:
            # phase-space bias towards high pTHat; Pythia's event weight (info.weight) compensates it
            cmds += ["PhaseSpace:bias2Selection = on", f"PhaseSpace:bias2SelectionPow = {power:g}",
                     f"PhaseSpace:bias2SelectionRef = {max(float(hf['pthat_min_gev']), 1.0):g}"]
        cmds += list(hf.get("extra", []))
    else:
        raise ValueError(f"sample {sample.get('name')}: Pythia 8 cannot generate kind {sample.get('kind')!r} "
                         f"with source {source!r}")
    cmds += list(cfg.get("extra", []))
    return cmds


def _is_semileptonic(products) -> bool:
    return any(abs(int(p)) in (11, 13) for p in products)


def biased_b_tables(pythia, forced_fraction: float, pids=B_HADRONS) -> dict[int, dict]:
    """Bias the b-hadron decay tables of ``pythia`` (before ``init``) towards e/mu semi-leptonic decays.

    For each species, with physical semi-leptonic fraction ``f`` (channels with an e or mu
    among the direct products, over the channels open for the particle: Pythia's ``onMode``
    1 or 2; the antiparticle uses 1 or 3), the semi-leptonic channels' branching ratios are
    multiplied by ``q / f`` and the others by ``(1 - q) / (1 - f)`` so that a decay is
    semi-leptonic with probability ``q = forced_fraction``. Returns, per pid, the exact
    per-decay weights (physical / sampled probability of the decay class) for the particle
    (``w_sl_pos``, ``w_had_pos``) and the antiparticle (``w_sl_neg``, ``w_had_neg``), plus ``f``.
    """
    q = float(forced_fraction)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"generation.pythia8.hf.forced_fraction must be in (0, 1], got {q}")
    pd = pythia.particleData
    out: dict[int, dict] = {}
    for pid in pids:
        entry = pd.particleDataEntryPtr(pid)
        n = entry.sizeChannels()
        brs, sl, mode = [], [], []
        for i in range(n):
            ch = entry.channel(i)
            prods = [ch.product(j) for j in range(ch.multiplicity())]
            brs.append(ch.bRatio())
            sl.append(_is_semileptonic(prods))
            mode.append(ch.onMode())
        brs, sl, mode = np.asarray(brs, float), np.asarray(sl, bool), np.asarray(mode)
        pos, neg = np.isin(mode, (1, 2)), np.isin(mode, (1, 3))
        S_pos, T_pos = brs[pos & sl].sum(), brs[pos].sum()
        S_neg, T_neg = brs[neg & sl].sum(), brs[neg].sum()
        if T_pos <= 0 or T_neg <= 0:
            continue
        f = S_pos / T_pos
        if S_pos <= 0 or S_neg <= 0:
            raise ValueError(f"hadron {pid}: no semi-leptonic e/mu channel in Pythia's decay table")
        k_sl = q / f
        k_had = (1 - q) / (1 - f) if f < 1 else 0.0
        for i in range(n):
            if brs[i] <= 0 or mode[i] == 0:
                continue
            new = brs[i] * (k_sl if sl[i] else k_had)
            if not pythia.readString(f"{pid}:{i}:bRatio = {new:.12g}"):
                raise RuntimeError(f"Pythia refused to set the branching ratio of {pid} channel {i}")
            if new == 0.0:
                pythia.readString(f"{pid}:{i}:onMode = off")
        tab = {"f": float(f), "q": q}
        for sign, S, T in (("pos", S_pos, T_pos), ("neg", S_neg, T_neg)):
            H = T - S
            denom = k_sl * S + k_had * H
            p_sl = k_sl * S / denom            # sampled probability of a semi-leptonic decay
            tab[f"w_sl_{sign}"] = float((S / T) / p_sl)
            tab[f"w_had_{sign}"] = float((H / T) / (1 - p_sl)) if p_sl < 1 else 0.0
        out[pid] = tab
    return out


def make_pythia(sample: Mapping, settings: Mapping | None, seed: int, workdir: str | os.PathLike,
                lhe_path: str | None = None):
    """An initialised ``pythia8mc.Pythia`` for ``sample``; returns ``(pythia, info)``.

    ``info`` holds what the conversion needs: ``b_tables`` (HF bias) and ``commands``.
    """
    import pythia8mc

    cfg = pythia8_settings(settings)
    slha_path = None
    if sample.get("kind") == "signal" and sample.get("source") != "lhe":
        sig = cfg["signal"]
        br_e, br_mu = (0.5, 0.5)
        slha_path = str(Path(workdir) / f"{sample.get('name', 'signal')}.slha")
        slha_mod.write_slha(slha_path, sample["m_c"], sample["dm"], 10.0 * float(sample["ctau_cm"]),
                            decoupled_mass=float(sig["decoupled_mass_gev"]), br_e=br_e, br_mu=br_mu)
    cmds = pythia_settings(sample, settings, seed, slha_path=slha_path, lhe_path=lhe_path)
    pythia = pythia8mc.Pythia("", False)
    for c in cmds:
        if not pythia.readString(c):
            raise ValueError(f"sample {sample.get('name')}: Pythia rejected the command {c!r}")
    b_tables: dict = {}
    if sample.get("kind") == "background" and sample.get("source") == "pythia8":
        b_tables = biased_b_tables(pythia, cfg["hf"]["forced_fraction"])
        qc = float(cfg["hf"].get("charm_forced_fraction", 0.0))
        if qc > 0:
            b_tables.update(biased_b_tables(pythia, qc, C_HADRONS))
    if not pythia.init():
        raise RuntimeError(f"sample {sample.get('name')}: Pythia initialisation failed (commands: {cmds})")
    if slha_path is not None:
        tau0 = pythia.particleData.tau0(MEDIATOR_ID)
        want = 10.0 * float(sample["ctau_cm"])
        if not np.isclose(tau0, want, rtol=1e-6):
            raise RuntimeError(f"Pythia's chargino c*tau = {tau0} mm differs from the requested {want} mm")
    return pythia, {"b_tables": b_tables, "commands": cmds, "slha": slha_path}


# ------------------------------------------------------------------ conversion

_LEPTONS = np.array([11, 13, 15])


def _charge_lookup(pythia, ids: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(ids, return_inverse=True)
    pd = pythia.particleData
    ch = np.array([pd.charge(int(i)) if i != 90 else 0.0 for i in uniq], dtype=float)
    return np.rint(ch[inv]).astype(np.int32)


def hf_event_weights(pid, status, m1, d1, counts, b_tables: Mapping[int, Mapping]) -> np.ndarray:
    """Per-event weights undoing the b-hadron decay bias (flat arrays over all events' particles).

    ``m1``/``d1`` are flat *global* indices (-1 if none). A b hadron counts as one decay when it
    decayed (status < 0 in Pythia's convention) and its first daughter is not a b hadron of the
    biased list (which would be a B0-B0bar oscillation copy). It is semi-leptonic when a direct
    daughter is an e or mu.
    """
    n_ev = len(counts)
    w_log = np.zeros(n_ev)
    if not b_tables:
        return np.ones(n_ev)
    ev_of = np.repeat(np.arange(n_ev), counts)
    apid = np.abs(pid)
    isb = np.isin(apid, list(b_tables))
    decayed = isb & (status < 0) & (d1 >= 0)
    first_d = np.where(d1 >= 0, apid[np.clip(d1, 0, None)], 0)
    decayed &= ~np.isin(first_d, list(b_tables))
    sl = np.zeros(len(pid), bool)
    lep = np.isin(apid, (11, 13)) & (m1 >= 0)
    sl[m1[lep]] = True
    for b, tab in b_tables.items():
        for sign, sgn_sel in (("pos", pid > 0), ("neg", pid < 0)):
            sel = decayed & (apid == b) & sgn_sel
            w_sl, w_had = tab[f"w_sl_{sign}"], tab[f"w_had_{sign}"]
            contrib = np.where(sl[sel], np.log(w_sl), np.log(w_had) if w_had > 0 else -np.inf)
            np.add.at(w_log, ev_of[sel], contrib)
    return np.exp(w_log)


def chargino_mediators(pid, status, first_daughter_id) -> np.ndarray:
    """The last copy of each chargino: decayed (status < 0), first daughter not a chargino copy."""
    apid = np.abs(pid)
    return (apid == MEDIATOR_ID) & (status < 0) & (first_daughter_id != MEDIATOR_ID)


@lru_cache(maxsize=64)
def decay_me_mean(M: float, m0: float, ml: float, o_l: float, o_r: float, mw: float, gw: float,
                  n_grid: int = 1000) -> float:
    """Average of the W* matrix element (:func:`softdisplaced.generation.kinematics._me_weight`) over the flat
    Dalitz plot of P -> p0 l nu (midpoints of an ``n_grid`` x ``n_grid`` grid inside the region): the
    normalisation that keeps the mean matrix-element weight of flat-phase-space decays at 1 (deterministic)."""
    from .kinematics import _dalitz_energies, _me_weight

    lo1, hi1, lo2, hi2 = ml * ml, (M - m0) ** 2, (m0 + ml) ** 2, M * M
    s1 = lo1 + (np.arange(n_grid) + 0.5) * (hi1 - lo1) / n_grid
    s2 = lo2 + (np.arange(n_grid) + 0.5) * (hi2 - lo2) / n_grid
    S1, S2 = np.meshgrid(s1, s2, indexing="ij")
    e_l, e_nu, _, _, cos = _dalitz_energies(M, m0, ml, S1, S2)
    inside = (np.abs(cos) <= 1.0) & (e_l > ml) & (e_nu > 0)
    return float(np.mean(_me_weight(M, m0, ml, e_l[inside], e_nu[inside], S1[inside], o_l, o_r, mw, gw)))


def chargino_decay_weights(pid, d1, d2, px, py, pz, e, mass, mediator, ev_of, n_ev: int,
                           couplings: Mapping) -> np.ndarray:
    """Per-event weight that gives Pythia's chargino decays chi+- -> chi0 l nu the W*-mediated matrix element.

    Pythia decays the SLHA decay table's three-body channels in flat phase space (``SLHA:meMode`` 100), while the
    study's MadGraph decays (and the fast generator, softdisplaced.generation.kinematics.three_body_decay) follow
    the matrix element: the lepton's rest-frame energy spectrum is ~x(1-x) instead of ~x^2(1-x)^2, harder at the
    endpoint, so more leptons leave at large angles (large d0 at short c*tau) and above the pT threshold. Each
    decay of a mediator (``mediator`` mask over the flat particle arrays, daughters ``d1``..``d2`` = chi0, charged
    lepton, neutrino) gets w = |M|^2 / <|M|^2>_phase space (:func:`decay_me_mean`), exact importance weights of
    mean 1 (the branching fractions are unchanged); the event weight is their product. ``couplings``: ``o_l``,
    ``o_r``, ``w_mass_gev``, ``w_width_gev`` (generation.fast.mediator_decay)."""
    from .kinematics import _dalitz_energies, _me_weight

    w = np.ones(n_ev)
    j = np.flatnonzero(np.asarray(mediator, bool) & (d1 >= 0) & (d2 - d1 == 2))
    if not len(j):
        return w
    k = d1[j][:, None] + np.arange(3)[None, :]
    apid = np.abs(pid[k])
    ok = (np.sort(apid, axis=1) == np.array([11, 12, LSP_ID])).all(axis=1) | \
         (np.sort(apid, axis=1) == np.array([13, 14, LSP_ID])).all(axis=1)
    j, k, apid = j[ok], k[ok], apid[ok]
    col = np.arange(len(j))
    k0 = k[col, np.argmax(apid == LSP_ID, axis=1)]
    kl = k[col, np.argmax(np.isin(apid, (11, 13)), axis=1)]
    kn = k[col, np.argmax(np.isin(apid, (12, 14)), axis=1)]

    def m2(a, b):
        return (e[a] + e[b]) ** 2 - (px[a] + px[b]) ** 2 - (py[a] + py[b]) ** 2 - (pz[a] + pz[b]) ** 2

    M, m0, ml = mass[j], mass[k0], mass[kl]
    s_lnu, s_0l = m2(kl, kn), m2(k0, kl)
    e_l, e_nu, _, _, _ = _dalitz_energies(M, m0, ml, s_lnu, s_0l)     # rest-frame energies from the invariants
    c = (float(couplings["o_l"]), float(couplings["o_r"]), float(couplings["w_mass_gev"]),
         float(couplings["w_width_gev"]))
    me = _me_weight(M, m0, ml, e_l, e_nu, s_lnu, *c)
    norm = np.array([decay_me_mean(round(float(a), 6), round(float(b), 6), round(float(d), 9), *c)
                     for a, b, d in zip(M, m0, ml)])
    np.multiply.at(w, ev_of[j], me / norm)
    return w


def convert_batch(batch, pythia, b_tables: Mapping | None = None, prune: bool = True,
                  cross_section_pb: float | None = None, mediators=chargino_mediators,
                  decay_couplings: Mapping | None = None) -> ak.Array:
    """Pythia ``nextBatch`` output -> truth event record (docs/contracts.md). No per-particle Python loop.

    ``mediators(pid, status, first_daughter_id) -> bool mask`` picks the long-lived particles whose
    proper decay length ``tau`` enters the record (status 22; default: the charginos); ``decay_couplings``
    (not None) weights their three-body decays to the W* matrix element (:func:`chargino_decay_weights`)."""
    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
    n_ev = len(counts)
    offsets = np.zeros(n_ev + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    ev_of = np.repeat(np.arange(n_ev), counts)
    base = offsets[:-1][ev_of]

    def flat(x, dtype=float):
        return ak.to_numpy(ak.flatten(x, axis=1)).astype(dtype)

    pid = flat(prt.id, np.int32)
    st = flat(prt.status, np.int32)
    m1l, m2l = flat(prt.mother1, np.int64), flat(prt.mother2, np.int64)
    d1l, d2l = flat(prt.daughter1, np.int64), flat(prt.daughter2, np.int64)
    px, py, pz, e = flat(prt.p.px), flat(prt.p.py), flat(prt.p.pz), flat(prt.p.e)
    mass = flat(prt.m)
    tau = flat(prt.tau)
    vprod = ak.flatten(prt.vProd, axis=1)
    has_v = ~ak.to_numpy(ak.is_none(vprod, axis=0))
    vx = ak.to_numpy(ak.fill_none(vprod.px, 0.0)).astype(float)
    vy = ak.to_numpy(ak.fill_none(vprod.py, 0.0)).astype(float)
    vz = ak.to_numpy(ak.fill_none(vprod.pz, 0.0)).astype(float)
    vt = ak.to_numpy(ak.fill_none(vprod.e, 0.0)).astype(float)
    vx[~has_v] = vy[~has_v] = vz[~has_v] = vt[~has_v] = 0.0

    # Pythia: index 0 is the event-as-a-whole entry; mother/daughter 0 means "none".
    def glob(idx):
        return np.where(idx > 0, idx + base, -1)

    m1, m2, d1, d2 = glob(m1l), glob(m2l), glob(d1l), glob(d2l)
    # daughter2 == 0 with daughter1 > 0: single daughter; daughter2 < daughter1: two separate ones
    d2 = np.where((d2 < 0) & (d1 >= 0), d1, d2)
    d1, d2 = np.where(d2 < d1, d2, d1), np.where(d2 < d1, d1, d2)

    apid = np.abs(pid)
    final = st > 0
    first_d_id = np.where(d1 >= 0, apid[np.clip(d1, 0, None)], 0)
    med_last = np.asarray(mediators(pid, st, first_d_id), bool)
    is_med = (apid == MEDIATOR_ID) | med_last
    is_parton = (apid <= 8) | (apid == 21) | ((apid >= 81) & (apid <= 100)) | \
                ((apid > 1000) & (apid < 10000) & ((apid // 10) % 10 == 0))  # diquarks xx0x
    decayed_keep = (st < 0) & ~is_parton & ~is_med & ((np.abs(st) >= 81) | np.isin(apid, _LEPTONS))
    if prune:
        keep = (final & (apid != 90)) | med_last | decayed_keep
    else:
        keep = apid != 90

    weights = hf_event_weights(pid, st, m1, d1, counts, b_tables or {}) if b_tables else None
    if decay_couplings is not None:
        w_me = chargino_decay_weights(pid, d1, d2, px, py, pz, e, mass, med_last, ev_of, n_ev, decay_couplings)
        weights = w_me if weights is None else weights * w_me
    wl = batch.info.weights
    nw = ak.to_numpy(ak.num(wl, axis=1))
    w_pythia = np.where(nw > 0, ak.to_numpy(ak.fill_none(ak.firsts(wl, axis=1), 1.0)), 1.0).astype(float)

    # index remapping: new local index of kept particles
    kept_before = np.cumsum(keep) - keep                    # kept particles before i (global)
    ev_kept_start = kept_before[offsets[:-1]] if len(keep) else np.zeros(n_ev, np.int64)
    ev_kept_start = np.where(counts > 0, ev_kept_start, 0)
    new_local = kept_before - ev_kept_start[ev_of]          # valid only where keep

    def remap_one(g):
        ok = g >= 0
        gc = np.clip(g, 0, None)
        return np.where(ok & keep[gc], new_local[gc], -1)

    def remap_range(a, b):
        ok = (a >= 0) & (b >= a)
        ac, bc = np.clip(a, 0, None), np.clip(b, 0, None)
        lo = kept_before[ac] - ev_kept_start[ev_of]                  # first kept at or after a
        hi = kept_before[bc] + keep[bc] - 1 - ev_kept_start[ev_of]   # last kept at or before b
        good = ok & (hi >= lo)
        return np.where(good, lo, -1), np.where(good, hi, -1)

    nm1, nm2 = remap_one(m1), remap_one(m2)
    nd1, nd2 = remap_range(d1, d2)
    truth_status = np.where(med_last, 22, np.where(final, 1, 2)).astype(np.int32)
    charge = _charge_lookup(pythia, pid)

    k = keep
    kcounts = np.bincount(ev_of[k], minlength=n_ev)
    fields = {
        "pid": pid[k], "status": truth_status[k],
        "px": px[k], "py": py[k], "pz": pz[k], "e": e[k], "mass": mass[k],
        "x": vx[k], "y": vy[k], "z": vz[k], "t": vt[k],
        "m1": nm1[k].astype(np.int32), "m2": nm2[k].astype(np.int32),
        "d1": nd1[k].astype(np.int32), "d2": nd2[k].astype(np.int32),
        "charge": charge[k],
    }
    particles = ak.unflatten(ak.zip({n: v for n, v in fields.items()}), kcounts)

    # mediators: last copies, decay vertex = vProd + tau * p / m
    sel = med_last
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(mass[sel] > 0, tau[sel] / mass[sel], 0.0)
    med = {
        "pid": pid[sel], "px": px[sel], "py": py[sel], "pz": pz[sel], "e": e[sel], "mass": mass[sel],
        "x": vx[sel], "y": vy[sel], "z": vz[sel], "t": vt[sel],
        "decay_x": vx[sel] + scale * px[sel], "decay_y": vy[sel] + scale * py[sel],
        "decay_z": vz[sel] + scale * pz[sel], "proper_ct_mm": tau[sel],
    }
    mcounts = np.bincount(ev_of[sel], minlength=n_ev)
    mediators = ak.unflatten(ak.zip(med), mcounts)

    # Pythia's own event weight (1, or the compensation of a phase-space bias) times the decay-bias weight
    weights = w_pythia if weights is None else weights * w_pythia
    out = {"particles": particles, "weight": weights.astype(np.float64), "mediators": mediators}
    if cross_section_pb is not None:
        out["cross_section_pb"] = np.full(n_ev, float(cross_section_pb))
    return ak.zip(out, depth_limit=1)


def generate_events(pythia, n_events: int, batch_size: int = 500, b_tables: Mapping | None = None,
                    prune: bool = True, stop_at_eof: bool = False, mediators=chargino_mediators,
                    decay_couplings: Mapping | None = None) -> ak.Array:
    """Run ``pythia`` for ``n_events`` (fewer at the end of an LHE file) and convert."""
    parts = []
    done = 0
    failures = 0
    while done < n_events:
        want = min(batch_size, n_events - done)
        batch = pythia.nextBatch(want)
        got = len(batch)
        if got:
            parts.append((batch, got))
            done += got
        if got < want:
            info = pythia.infoPython()
            if info.atEndOfFile():
                break
            failures += want - got
            if failures > max(10, n_events // 10):
                raise RuntimeError(f"Pythia failed on {failures} events (of {done + failures} tried)")
    info = pythia.infoPython()
    sigma_pb = float(info.sigmaGen()) * 1e9  # mb -> pb
    arrays = [convert_batch(b, pythia, b_tables=b_tables, prune=prune, cross_section_pb=sigma_pb,
                            mediators=mediators, decay_couplings=decay_couplings) for b, _ in parts]
    if not arrays:
        raise RuntimeError("Pythia produced no events")
    out = ak.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    # the final sigmaGen (more statistics) for all events
    return ak.with_field(out, np.full(len(out), sigma_pb), "cross_section_pb")


def generate_chunk(sample: Mapping, settings: Mapping | None, rng: np.random.Generator,
                   n_events: int) -> ak.Array:
    """Generate ``n_events`` Pythia 8 events for ``sample`` -> truth event record.

    ``sample`` is a spec of :func:`softdisplaced.samples.build_samples` with ``source: pythia8``
    (``kind`` signal: needs ``m_c``, ``dm``, ``ctau_cm``; ``kind`` background: b-bbar);
    ``settings`` the configuration (section ``generation.pythia8`` is used); the Pythia seed
    is drawn from ``rng``.
    """
    if sample.get("source") not in (None, "pythia8"):
        raise ValueError(f"sample {sample.get('name')}: source {sample.get('source')!r} is not pythia8")
    sample = {**sample, "source": "pythia8"}
    n_events = int(n_events)
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, got {n_events}")
    cfg = pythia8_settings(settings)
    seed = pythia_seed(rng)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sd_pythia8_") as tmp:
        pythia, info = make_pythia(sample, settings, seed, tmp)
    t1 = time.perf_counter()
    couplings = None
    if sample.get("kind") == "signal" and cfg["signal"]["decay_matrix_element"]:
        from . import fast_settings   # the chargino decay's couplings live in one place: generation.fast

        couplings = fast_settings((settings or {}).get("generation"))["mediator_decay"]
    events = generate_events(pythia, n_events, batch_size=int(cfg["batch_size"]), b_tables=info["b_tables"],
                             decay_couplings=couplings)
    t2 = time.perf_counter()
    log.info("pythia8 %s: %d events, seed %d, init %.1f s, %.2f ms/event, sigmaGen %.4g pb",
             sample.get("name"), len(events), seed, t1 - t0, 1e3 * (t2 - t1) / max(len(events), 1),
             float(events.cross_section_pb[0]) if len(events) else float("nan"))
    return events
