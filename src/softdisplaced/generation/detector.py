"""CMS-like detector simulation shared by every generator.

``simulate(events, detector_cfg, rng)`` takes the generic truth event record of
docs/contracts.md (field ``particles`` with ``pid, status, px, py, pz, e, mass,
x, y, z, t, m1, m2, d1, d2, charge``) and returns the reconstructed Delphes
collections as awkward arrays::

    {"Electron": var * {PT, Eta, Phi, T, Charge, D0, DZ, IsolationVar, Particle},
     "Muon":     (same),
     "Jet":      var * {PT, Eta, Phi, Mass, NNeutrals, NCharged},
     "MissingET": var * {MET, Eta, Phi}   (one entry per event),
     "ScalarHT":  var * {HT, HTUnique}    (one entry per event)}

Everything is computed on the flattened particle arrays of the whole chunk
(no Python loop over events). Jets are clustered with the ``fastjet`` package
(awkward interface) by :func:`softdisplaced.generation.jets.cluster`, except for the events
whose result is fixed without clustering (exact short-cuts, proven there and
tested against fastjet: too little pT for any jet, or particles in groups that
are each narrower than R and mutually farther apart than R).

Conventions (docs/generator.md): leptons are final-state e/mu produced inside
the tracker volume, accepted with probability tracking x identification
efficiency from the binned CMS-card tables; pT smeared log-normally with the
relative resolution sqrt(a^2 + pT^2 b^2); d0 = |x py - y px| / pT and
dz = z - (x px + y py) pz / pT^2 (mm) from the production vertex in the
straight-line approximation, optional Gaussian d0 smearing; IsolationVar as the
Delphes ``Isolation`` module of the study's card computes it (``detector.isolation``):
sum pT of the visible energy-flow objects of the counted kinds (charged, photons,
neutral hadrons; e and mu excluded as by the card's EFlowFilter, the lepton itself
always) with pT > pt_min_gev and Delta R <= delta_r of the lepton (cone per
flavour), divided by the reconstructed lepton pT, no pile-up subtraction; with
``ratio_max`` set, leptons above it are dropped (the module's PTRatioMax); MissingET = minus the vector sum of all visible
energy-flow objects; ScalarHT = sum of jet pT + pT of the isolated
reconstructed leptons (the Delphes UniqueObjectFinder convention: isolated
leptons are not jet inputs); HTUnique = the study card's ScalarHT (``detector.unique_ht``): the
sum of pT of the energy-flow photons that pass its PhotonEfficiency, the Electron and Muon
collections, and the jets sharing no constituent with those (its UniqueObjectFinder). T is in
seconds (Delphes TreeWriter convention).

Energy flow (``detector.energy_flow``, the study card's ChargedHadronTrackingEfficiency,
ChargedHadronMomentumSmearing, ECal and HCal): before isolation, jets, MissingET and ScalarHT each
visible particle becomes its energy-flow object, its 4-momentum scaled by :func:`energy_flow_scale`
(tracked charged hadrons: smeared pT; photons, pi0: ECAL-smeared energy; neutral and untracked charged
hadrons: HCAL-smeared energy; deposits below the calorimeter thresholds lost; reconstructed electrons and
muons at their reconstructed pT, unreconstructed ones at their true momentum). Per particle, not per
tower: the card's towers (0.0174 ECAL, 0.087 HCAL) rarely hold two particles of these events.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Mapping

import awkward as ak
import numpy as np

from softdisplaced.config import ConfigError
from softdisplaced.generation import jets
from softdisplaced.generation.defaults import with_defaults
from softdisplaced.generation.kinematics import pt_eta_phi

__all__ = ["simulate", "detector_settings", "binned_efficiency", "relative_resolution", "calorimeter_resolution",
           "log_normal", "energy_flow_scale", "impact_parameters", "C_MM_PER_S"]

C_MM_PER_S = 299792458.0e3


def detector_settings(cfg: Mapping | None) -> dict:
    """The ``detector`` section with schema defaults, table shapes checked (a fresh copy)."""
    return copy.deepcopy(_detector_settings(json.dumps(cfg or {}, sort_keys=True)))


@functools.lru_cache(maxsize=16)
def _detector_settings(cfg_json: str) -> dict:
    """Validation is done once per distinct configuration (chunks of a sample share it)."""
    out = with_defaults(json.loads(cfg_json), "detector")
    tables = [(f"{lep}.{tab}", out[lep][tab]) for lep in ("electron", "muon")
              for tab in ("tracking_efficiency", "identification_efficiency")]
    for where, t in tables + [("unique_ht.photon_efficiency", out["unique_ht"]["photon_efficiency"])]:
        shape = (len(t["eta_edges"]) - 1, len(t["pt_edges"]) - 1)
        if np.shape(t["values"]) != shape:
            raise ConfigError(f"detector.{where}: values must have shape (len(eta_edges)-1, "
                              f"len(pt_edges)-1) = {shape}, got {np.shape(t['values'])}")
        if np.any(np.diff(t["eta_edges"]) <= 0) or np.any(np.diff(t["pt_edges"]) <= 0):
            raise ConfigError(f"detector.{where}: eta_edges and pt_edges must increase")
    for lep in ("electron", "muon"):
        r = out[lep]["momentum_resolution"]
        n = len(r["eta_edges"]) - 1
        if len(r["a"]) != n or len(r["b"]) != n:
            raise ConfigError(f"detector.{lep}.momentum_resolution: a and b need {n} values (one per |eta| bin)")
    ef = out["energy_flow"]
    r = ef["charged_hadron"]["momentum_resolution"]
    if len(r["a"]) != len(r["eta_edges"]) - 1 or len(r["b"]) != len(r["eta_edges"]) - 1:
        raise ConfigError("detector.energy_flow.charged_hadron.momentum_resolution: a and b need one value per |eta| bin")
    t = ef["charged_hadron"]["tracking_efficiency"]
    if np.shape(t["values"]) != (len(t["eta_edges"]) - 1, len(t["pt_edges"]) - 1):
        raise ConfigError("detector.energy_flow.charged_hadron.tracking_efficiency: values must have shape "
                          "(len(eta_edges)-1, len(pt_edges)-1)")
    for calo in ("ecal", "hcal"):
        c = ef[calo]
        n = len(c["eta_edges"]) - 1
        if np.any(np.diff(c["eta_edges"]) <= 0) or any(len(c[k]) != n for k in ("p0", "p1", "eta0", "c", "s", "n")):
            raise ConfigError(f"detector.energy_flow.{calo}: eta_edges must increase and p0, p1, eta0, c, s, n need "
                              f"{n} values (one per |eta| bin)")
    return out


def _bin(x, edges):
    """Bin index of x in ``edges`` (right-closed bins as in the Delphes card), -1 outside."""
    edges = np.asarray(edges, dtype=float)
    i = np.searchsorted(edges, x, side="left") - 1
    inside = (x > edges[0]) & (x <= edges[-1])
    if edges[0] == 0.0:
        inside |= x == 0.0
        i = np.where(x == 0.0, 0, i)
    return np.where(inside, i, -1)


def binned_efficiency(table: Mapping, abs_eta, pt):
    """Efficiency from an ``{eta_edges, pt_edges, values}`` table; 0 outside the bins."""
    ie = _bin(np.asarray(abs_eta, dtype=float), table["eta_edges"])
    ip = _bin(np.asarray(pt, dtype=float), table["pt_edges"])
    vals = np.asarray(table["values"], dtype=float)
    ok = (ie >= 0) & (ip >= 0)
    return np.where(ok, vals[np.clip(ie, 0, None), np.clip(ip, 0, None)], 0.0)


def relative_resolution(table: Mapping, abs_eta, pt):
    """sigma(pT)/pT = sqrt(a^2 + pT^2 b^2) of the |eta| bin (last bin beyond the edges)."""
    edges = np.asarray(table["eta_edges"], dtype=float)
    i = np.clip(np.searchsorted(edges, abs_eta, side="left") - 1, 0, len(edges) - 2)
    a = np.asarray(table["a"], dtype=float)[i]
    b = np.asarray(table["b"], dtype=float)[i]
    return np.sqrt(a * a + np.square(pt * b))


def calorimeter_resolution(table: Mapping, abs_eta, energy):
    """sigma(E) in GeV = (p0 + p1 (|eta| - eta0)^2) sqrt(c^2 E^2 + s^2 E + n^2) of the |eta| bin (last bin
    beyond the edges): the Delphes card's ECal / HCal ResolutionFormula (``detector.energy_flow``)."""
    edges = np.asarray(table["eta_edges"], dtype=float)
    i = np.clip(np.searchsorted(edges, abs_eta, side="left") - 1, 0, len(edges) - 2)
    p0, p1, eta0, c, s, n = (np.asarray(table[k], dtype=float)[i] for k in ("p0", "p1", "eta0", "c", "s", "n"))
    return (p0 + p1 * np.square(abs_eta - eta0)) * np.sqrt(np.square(c * energy) + s * s * energy + n * n)


def log_normal(rng: np.random.Generator, x, sigma):
    """Log-normal smearing of ``x`` > 0 with mean ``x`` and standard deviation ``sigma`` (the Delphes
    LogNormal of MomentumSmearing and SimpleCalorimeter); one normal draw per entry."""
    rel = sigma / x
    s_ln = np.sqrt(np.log1p(rel * rel))
    return x * np.exp(rng.normal(0.0, 1.0, len(x)) * s_ln - 0.5 * s_ln * s_ln)


def energy_flow_scale(ef: Mapping, apid, charge, pt, abs_eta, e, rng: np.random.Generator):
    """Factor that turns each visible non-lepton particle into its energy-flow object (``detector.energy_flow``):
    tracked charged hadrons: smeared pT / pT; photons and pi0 (ECAL), neutral and untracked charged hadrons
    (HCAL): smeared E / E, 0 below the calorimeter threshold. Leptons get 1 (the caller sets their
    reconstructed pT). Draws: one uniform per charged hadron, one normal per particle, always."""
    scale = np.ones(len(pt))
    lepton = (apid == 11) | (apid == 13)
    charged = (charge != 0) & ~lepton
    u = rng.random(np.count_nonzero(charged))
    ich = np.nonzero(charged)[0]
    tracked = np.zeros(len(pt), dtype=bool)
    tracked[ich] = u < binned_efficiency(ef["charged_hadron"]["tracking_efficiency"], abs_eta[ich], pt[ich])
    it = np.nonzero(tracked)[0]
    sig = relative_resolution(ef["charged_hadron"]["momentum_resolution"], abs_eta[it], pt[it]) * pt[it]
    scale[it] = log_normal(rng, pt[it], sig) / pt[it]
    ecal = (apid == 22) | (apid == 111)
    for name, sel in (("ecal", ecal), ("hcal", ~lepton & ~ecal & ~tracked)):
        ic = np.nonzero(sel)[0]
        c = ef[name]
        sig = calorimeter_resolution(c, abs_eta[ic], e[ic])
        e_reco = log_normal(rng, e[ic], sig)
        lost = (e_reco < c["energy_min_gev"]) | (e_reco < c["significance_min"] * sig)
        scale[ic] = np.where(lost, 0.0, e_reco / e[ic])
    return scale


def impact_parameters(x, y, z, px, py, pz):
    """(d0, dz) in mm, straight line from the production vertex: d0 = |x py - y px| / pT,
    dz = z - (x px + y py) pz / pT^2 (z at the point of closest approach to the beam line)."""
    pt2 = px * px + py * py
    d0 = np.abs(x * py - y * px) / np.sqrt(pt2)
    dz = z - (x * px + y * py) * pz / pt2
    return d0, dz


def _unflatten(counts, **cols):
    n = len(counts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    content = ak.contents.RecordArray([ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in cols.values()],
                                      list(cols.keys()), length=int(offsets[-1]))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))


def _pairs(owner_event, ev_offsets, ev_counts):
    """For each object k (in event owner_event[k]) all particle indices of its event:
    returns (object index per pair, flat particle index per pair)."""
    c = ev_counts[owner_event]
    obj = np.repeat(np.arange(len(owner_event)), c)
    starts = np.repeat(ev_offsets[owner_event] - np.concatenate([[0], np.cumsum(c)[:-1]]), c)
    return obj, starts + np.arange(len(obj))


def order_in_events(ev, pt):
    """Permutation that sorts objects by event (``ev`` already non-decreasing) and, within
    an event, by decreasing ``pt``; only events with several objects are sorted."""
    order = np.arange(len(ev))
    if len(ev) < 2:
        return order
    same = ev[1:] == ev[:-1]
    if not same.any():
        return order
    multi = np.zeros(len(ev), dtype=bool)
    multi[1:] |= same
    multi[:-1] |= same
    idx = np.nonzero(multi)[0]
    order[idx] = idx[np.lexsort((-pt[idx], ev[idx]))]
    return order


def _cluster_jets(vis_idx, ev, px, py, pz, e, n_events, jcfg, tags):
    """Jets of the particles ``vis_idx`` per event (:func:`softdisplaced.generation.jets.cluster`), |eta| cut
    applied, sorted by event then pT; returns (counts, pt, eta, phi, mass, constituent tag sums)."""
    counts = np.bincount(ev[vis_idx], minlength=n_events)
    jc, jpx, jpy, jpz, je, sums = jets.cluster(px[vis_idx], py[vis_idx], pz[vis_idx], e[vis_idx], counts, jcfg,
                                               tags[vis_idx])
    jpt, jeta, jphi = pt_eta_phi(jpx, jpy, jpz)
    jm = np.sqrt(np.maximum(je * je - jpx * jpx - jpy * jpy - jpz * jpz, 0.0))
    jev = np.repeat(np.arange(n_events), jc)
    keep = np.abs(jeta) < jcfg["eta_max"]
    jev, jpt, jeta, jphi, jm, sums = jev[keep], jpt[keep], jeta[keep], jphi[keep], jm[keep], sums[keep]
    order = order_in_events(jev, jpt)  # by event, then pT descending
    return np.bincount(jev, minlength=n_events), jpt[order], jeta[order], jphi[order], jm[order], sums[order]


def simulate(events: ak.Array, detector_cfg: Mapping | None, rng: np.random.Generator) -> dict[str, ak.Array]:
    """Reconstructed Delphes collections (see module docstring) for a chunk of truth events."""
    cfg = detector_settings(detector_cfg)
    parts = events["particles"]
    n_events = len(parts)
    counts = ak.to_numpy(ak.num(parts, axis=1)).astype(np.int64)
    flat = ak.flatten(parts, axis=1)

    def col(name, dtype=np.float64):
        return np.asarray(ak.to_numpy(flat[name]), dtype=dtype)

    pid, status = col("pid", np.int32), col("status", np.int32)
    ev_all = np.repeat(np.arange(n_events), counts)
    # work only on the final-state particles that leave a signal or are leptons
    apid = np.abs(pid)
    fs = status == 1
    for invisible in cfg["invisible_pids"]:  # a handful of codes: comparisons beat np.isin
        fs &= apid != invisible
    idx = np.nonzero(fs)[0]
    px, py, pz, e = (col(f)[idx] for f in ("px", "py", "pz", "e"))
    ev, apid = ev_all[idx], apid[idx]
    local = idx - (np.cumsum(counts) - counts)[ev]  # index in the event's particle list
    pt, eta, phi = pt_eta_phi(px, py, pz)
    visible = np.abs(eta) < cfg["visible_eta_max"]
    charge_fs = col("charge")[idx]
    # energy flow: every visible particle becomes its smeared energy-flow object (factor on its 4-momentum)
    ef = cfg["energy_flow"]
    scale = np.ones(len(idx))
    if ef["enabled"]:
        iv = np.nonzero(visible)[0]
        scale[iv] = energy_flow_scale(ef, apid[iv], charge_fs[iv], pt[iv], np.abs(eta[iv]), e[iv], rng)
    pt_ef = pt * scale

    # ------------------------------------------------------------ leptons
    is_lep = (apid == 11) | (apid == 13)
    ilep = idx[is_lep]
    lx, ly, lz, lt, lq = (col(f)[ilep] for f in ("x", "y", "z", "t", "charge"))
    in_tracker = np.zeros(len(idx), dtype=bool)
    in_tracker[is_lep] = (lx * lx + ly * ly < cfg["tracker"]["radius_mm"] ** 2) & (np.abs(lz) < cfg["tracker"]["half_length_mm"])
    vert = {}
    for f, v in (("x", lx), ("y", ly), ("z", lz), ("t", lt), ("q", lq)):
        full = np.zeros(len(idx))
        full[is_lep] = v
        vert[f] = full
    iso_cfg = cfg["isolation"]
    counted = iso_cfg["particles"]
    neutral = charge_fs == 0
    photon = apid == 22
    kind_ok = ((~neutral & counted["charged"]) | (photon & counted["photons"])
               | (neutral & ~photon & counted["neutral_hadrons"]))
    if not iso_cfg["include_leptons"]:
        kind_ok &= ~is_lep
    iso_src = visible & (pt_ef > iso_cfg["pt_min_gev"]) & kind_ok
    # compact list of isolation sources per event
    isrc = np.nonzero(iso_src)[0]
    src_counts = np.bincount(ev[isrc], minlength=n_events)
    src_offsets = np.cumsum(src_counts) - src_counts
    out: dict[str, ak.Array] = {}
    isolated = np.zeros(len(idx), dtype=bool)
    lep_ht = np.zeros(n_events)
    collection_ht = np.zeros(n_events)  # every stored lepton (HTUnique)
    in_collection = np.zeros(len(idx), dtype=bool)
    for name, code in (("Electron", 11), ("Muon", 13)):
        lcfg = cfg[name.lower()]
        cand = np.nonzero(apid == code)[0]
        aeta = np.abs(eta[cand])
        eff = (binned_efficiency(lcfg["tracking_efficiency"], aeta, pt[cand])
               * binned_efficiency(lcfg["identification_efficiency"], aeta, pt[cand]))
        u = rng.random(len(cand))  # always drawn: the random stream does not depend on the outcome
        sel = cand[in_tracker[cand] & (u < eff)]
        pt_reco = log_normal(rng, pt[sel], relative_resolution(lcfg["momentum_resolution"], np.abs(eta[sel]), pt[sel])
                             * pt[sel])
        x, y, z = vert["x"][sel], vert["y"][sel], vert["z"][sel]
        d0, dz = impact_parameters(x, y, z, px[sel], py[sel], pz[sel])
        if cfg["d0_smearing_um"] > 0:
            signed = (x * py[sel] - y * px[sel]) / pt[sel]
            d0 = np.abs(signed + rng.normal(0.0, cfg["d0_smearing_um"] * 1e-3, len(sel)))
        # isolation: visible particles of the lepton's event within Delta R, excluding the lepton
        obj, k = _pairs(ev[sel], src_offsets, src_counts)
        pidx = isrc[k]
        deta = eta[pidx] - eta[sel][obj]
        dphi = np.abs(phi[pidx] - phi[sel][obj])
        dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
        near = (pidx != sel[obj]) & (deta * deta + dphi * dphi <= iso_cfg[name.lower()]["delta_r"] ** 2)
        iso = np.bincount(obj[near], weights=pt_ef[pidx[near]], minlength=len(sel)) / pt_reco
        if ef["enabled"]:  # the lepton's track enters the energy flow with its reconstructed pT
            scale[sel] = pt_reco / pt[sel]
        if iso_cfg["ratio_max"] is not None:  # Delphes PTRatioMax: such leptons leave the collection
            keep = iso <= iso_cfg["ratio_max"]
            sel, pt_reco, d0, dz, iso = sel[keep], pt_reco[keep], d0[keep], dz[keep], iso[keep]
        in_collection[sel] = True
        collection_ht += np.bincount(ev[sel], weights=pt_reco, minlength=n_events)
        is_iso = iso < lcfg["jet_overlap_isolation_max"]
        isolated[sel[is_iso]] = True
        lep_ht += np.bincount(ev[sel][is_iso], weights=pt_reco[is_iso], minlength=n_events)
        order = order_in_events(ev[sel], pt_reco)
        sel_o = sel[order]
        out[name] = _unflatten(
            np.bincount(ev[sel], minlength=n_events),
            PT=pt_reco[order].astype(np.float32), Eta=eta[sel_o].astype(np.float32),
            Phi=phi[sel_o].astype(np.float32), T=(vert["t"][sel_o] / C_MM_PER_S).astype(np.float32),
            Charge=vert["q"][sel_o].astype(np.int32), D0=d0[order].astype(np.float32),
            DZ=dz[order].astype(np.float32), IsolationVar=iso[order].astype(np.float32),
            Particle=local[sel_o].astype(np.int32))

    # ------------------------------------------------------------ jets, MET, HT
    # constituent counts (Delphes Jet.NNeutrals / NCharged): neutral = photons, pi0 (its two
    # collinear photons) and neutral hadrons, counted above the energy-flow threshold
    px, py, pz, e = px * scale, py * scale, pz * scale, e * scale
    visible &= scale > 0  # deposits below the calorimeter thresholds are lost
    above = pt * scale > cfg["jets"]["constituent_pt_min_gev"]
    # the study card's UniqueObjectFinder photons (HTUnique): energy-flow photons and pi0 passing its
    # PhotonEfficiency; one draw per photon and pi0 of the record, always (the last draws of the chunk)
    iph = np.nonzero((apid == 22) | (apid == 111))[0]
    u = rng.random(len(iph))
    unique_photon = np.zeros(len(idx), dtype=bool)
    unique_photon[iph] = visible[iph] & (u < binned_efficiency(cfg["unique_ht"]["photon_efficiency"],
                                                               np.abs(eta[iph]), pt[iph] * scale[iph]))
    # constituent tags: neutral, charged (NNeutrals, NCharged), and shared with a photon or stored lepton
    tags = np.stack([neutral & above, ~neutral & above, unique_photon | in_collection], axis=1)
    jc, jpt, jeta, jphi, jm, nconst = _cluster_jets(np.nonzero(visible & ~isolated)[0], ev, px, py, pz, e,
                                                    n_events, cfg["jets"], tags)
    out["Jet"] = _unflatten(jc, PT=jpt.astype(np.float32), Eta=jeta.astype(np.float32),
                            Phi=jphi.astype(np.float32), Mass=jm.astype(np.float32),
                            NNeutrals=nconst[:, 0].astype(np.int32), NCharged=nconst[:, 1].astype(np.int32))
    vis_ev = ev[visible]
    mx = -np.bincount(vis_ev, weights=px[visible], minlength=n_events)
    my = -np.bincount(vis_ev, weights=py[visible], minlength=n_events)
    mz = -np.bincount(vis_ev, weights=pz[visible], minlength=n_events)
    met, met_eta, met_phi = pt_eta_phi(mx, my, mz)
    met_eta[met == 0] = 0.0
    ones = np.ones(n_events, dtype=np.int64)
    out["MissingET"] = _unflatten(ones, MET=met.astype(np.float32), Eta=met_eta.astype(np.float32),
                                  Phi=met_phi.astype(np.float32))
    jev = np.repeat(np.arange(n_events), jc)
    ht = np.bincount(jev, weights=jpt, minlength=n_events) + lep_ht
    unique_jet = nconst[:, 2] == 0
    ht_unique = (np.bincount(ev[unique_photon], weights=(pt * scale)[unique_photon], minlength=n_events)
                 + collection_ht + np.bincount(jev[unique_jet], weights=jpt[unique_jet], minlength=n_events))
    out["ScalarHT"] = _unflatten(ones, HT=ht.astype(np.float32), HTUnique=ht_unique.astype(np.float32))
    return out
