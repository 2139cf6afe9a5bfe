"""The nine NN input features of the study (spec section 4; exact definitions in docs/features.md).

Backend-agnostic: inputs are awkward Arrays on the ``cpu`` or the ``cuda``
backend (``ak.to_backend(x, "cuda")``); the arithmetic runs in the matching
array library, ``numpy`` or ``cupy`` (``xp`` below).  Jagged collections
(jets, all leptons) are turned into dense, zero-padded ``(n_events, max_n)``
matrices with plain ``xp`` index arithmetic on their offsets and content, and
reduced with ``xp.sum(axis=1)``; no awkward broadcasting of event-level values
against jagged lists happens, which keeps clear of awkward issue 4310 (wrong
results on CUDA when broadcasting against a jagged array whose trailing rows are
empty).  Everything is computed in float64.

Inputs (one entry per selected event; ``y`` = electron (e-mu) or leading lepton,
``x`` = muon (e-mu) or subleading lepton, as in the skims):

* flat: ``pt_y, eta_y, phi_y, pt_x, eta_x, phi_x, met, met_phi, ht`` (and ``ht_unique``, the study card's
  ScalarHT, for ``YDelpObj_photon_veto``)
* jagged: ``jet_pt, jet_eta, jet_phi`` (and ``jet_nneutrals`` for the study's jet definition);
  ``ele_pt, ele_eta, ele_phi, ele_d0``;
  ``mu_pt, mu_eta, mu_phi, mu_d0`` (all reconstructed objects of the event;
  the object cuts of ``analyses.objects`` are applied here).  Jagged inputs
  must be packed (``ak.to_packed``) ListOffsetArrays.

Jets: the physically correct definition (every jet of the ``Jet`` collection in the object
cuts) is the default. ``objects.jets.photon_veto: true`` reproduces the study's jets: its
Delphes card (``my_CMS.tcl``) lists ``PhotonIsolation/photons`` before the jets in the
``UniqueObjectFinder``, with photons = every energy-flow photon above 0.5 GeV in |eta| < 2.5
(efficiency 0.95 / 0.85, ``PTRatioMax 100``: no real isolation), so every jet that holds such a
photon is dropped from the Jet branch; its analysis code (``Analysis/VariableMaker.C``) then fills
HtJet only when a jet is left, and HtJet is 0 in ~93 % of its signal and background events. The
veto keeps the jets without neutral constituents (Delphes ``Jet.NNeutrals == 0``; the neutral
constituents of energy-flow jets are the photons and neutral hadrons), which needs ``jet_nneutrals``.

Both jet definitions from one read: the twins of the three jet sums (:data:`STUDY_JET_FEATURES`:
``HtJet_photon_veto``, ``YUserObj_photon_veto``, ``dPhiLepMETSelObj_photon_veto``) are always the same
features over the study's jets (object cuts and ``NNeutrals == 0``), whatever ``photon_veto`` says, so
that the default skims carry the physical features and the study-compatible ones side by side (issue 11:
one network on each, both in the fidelity report; :func:`study_jet_features` swaps a feature list).
``photon_veto`` keeps its meaning: it selects the jets of ``HtJet``, ``YUserObj`` and ``dPhiLepMETSelObj``;
with it on, each equals its twin. ``YDelpObj_photon_veto`` (:data:`STUDY_HT_FEATURES`) is the twin of
``YDelpObj``: MET / sqrt(HT) with the study card's HT (Delphes ScalarHT of its UniqueObjectFinder: the
energy-flow photons, the electrons and muons, and the jets sharing no constituent with them), which this
project's detector writes as ScalarHT.HTUnique (input ``ht_unique``); ``YDelpObj`` keeps the physical HT (all
jets and the isolated leptons). :data:`STUDY_FEATURES` maps every feature to its study-compatible twin.
:data:`FEATURES` stays the study's nine; :data:`SKIM_FEATURES` lists every column this module computes (the
values of ``analyses.features``).
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Mapping

import awkward as ak
import numpy as np

__all__ = ["FEATURES", "SKIM_FEATURES", "JET_FEATURES", "STUDY_JET_FEATURES", "STUDY_HT_FEATURES", "STUDY_FEATURES",
           "STUDY_HTJET", "study_jet_features", "compute_features", "array_module", "default_objects"]

FEATURES = ("YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj",
            "Sphericity", "alphaT", "Spherocity")
JET_FEATURES = ("HtJet", "YUserObj", "dPhiLepMETSelObj")   # the features that sum over jets
STUDY_JETS_SUFFIX = "_photon_veto"
STUDY_JET_FEATURES = {f: f + STUDY_JETS_SUFFIX for f in JET_FEATURES}   # feature -> its study's-jets twin
STUDY_HTJET = STUDY_JET_FEATURES["HtJet"]   # HtJet of the study's jets (photon veto), beside the physical HtJet
STUDY_HT_FEATURES = {"YDelpObj": "YDelpObj" + STUDY_JETS_SUFFIX}   # MET / sqrt(the study card's ScalarHT)
STUDY_FEATURES = {**STUDY_JET_FEATURES, **STUDY_HT_FEATURES}       # feature -> its study-compatible twin
SKIM_FEATURES = FEATURES + tuple(STUDY_JET_FEATURES.values()) + tuple(STUDY_HT_FEATURES.values())
#: alphaT: mT^2 / (sum pT)^2 at or below this is the rounding of an exact 0 (one lepton in "all leptons")
MT2_ROUNDING = 1e-12



@functools.lru_cache(maxsize=1)
def _schema_objects() -> dict:
    from softdisplaced.config import with_defaults

    return with_defaults({"analyses": {}})["analyses"]["objects"]


def default_objects() -> dict:
    """``analyses.objects`` as the schema (the one source of defaults) fills it."""
    return copy.deepcopy(_schema_objects())


def array_module(arr):
    """numpy or cupy, matching the awkward backend of ``arr``."""
    if isinstance(arr, ak.Array) and ak.backend(arr) == "cuda":
        import cupy

        return cupy
    return np


def _flat(arr, xp):
    if isinstance(arr, ak.Array):
        arr = ak.to_cupy(arr) if xp is not np else ak.to_numpy(arr)
    return xp.asarray(arr, dtype=xp.float64)


def _offsets_content(arr):
    layout = ak.to_layout(arr)
    if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(layout.content, ak.contents.NumpyArray):
        raise TypeError("features: jagged inputs must be packed ListOffsetArrays of numbers (use ak.to_packed)")
    offsets = layout.offsets.data
    content = layout.content.data
    return offsets, content


def _dense(arr, xp, n_rows):
    """(values, valid): zero-padded (n_rows, max_n) float64 matrix of a packed jagged array."""
    offsets, content = _offsets_content(arr)
    offsets = xp.asarray(offsets, dtype=xp.int64)
    start = offsets[:-1]
    counts = offsets[1:] - start
    width = max(int(counts.max()) if n_rows else 0, 1)
    out = xp.zeros((n_rows, width), dtype=xp.float64)
    n_items = int(offsets[-1] - offsets[0]) if n_rows else 0
    if n_items:
        pos = xp.arange(int(offsets[0]), int(offsets[-1]), dtype=xp.int64)
        row = xp.searchsorted(offsets[1:], pos, side="right")
        out[row, pos - start[row]] = xp.asarray(content, dtype=xp.float64)[pos]
    valid = xp.arange(width, dtype=xp.int64)[None, :] < counts[:, None]
    return out, valid


def _dphi(a, b, xp):
    return xp.remainder(a - b + math.pi, 2 * math.pi) - math.pi


def study_jet_features(features) -> list[str]:
    """``features`` with every feature that has a study-compatible twin (:data:`STUDY_FEATURES`: the jet sums
    and YDelpObj) replaced by it (``HtJet`` -> ``HtJet_photon_veto``, ``YDelpObj`` -> ``YDelpObj_photon_veto``,
    ...): the inputs of a study-compatible network."""
    return [STUDY_FEATURES.get(f, f) for f in features]


def _met_over_sqrt_ht(met, ht, xp):
    """MET / sqrt(HT), 0 where HT is 0."""
    return xp.where(ht > 0, met / xp.sqrt(xp.where(ht > 0, ht, 1.0)), 0.0)


def compute_features(inputs: Mapping[str, ak.Array], objects: Mapping | None = None,
                     names=FEATURES) -> dict:
    """``{feature: xp float64 array}`` for the requested ``names`` (of :data:`SKIM_FEATURES`; docs/features.md)."""
    objects = {**default_objects(), **(objects or {})}
    lo, jo = objects["all_leptons"], objects["jets"]
    xp = array_module(inputs["pt_y"])
    f = {k: _flat(inputs[k], xp) for k in ("pt_y", "eta_y", "phi_y", "pt_x", "eta_x", "phi_x", "met", "met_phi", "ht")}
    n = int(f["pt_y"].shape[0])
    want = set(names)

    # jets: the configured definition, and the study's (photon veto) for the *_photon_veto twins
    jpt, jvalid = _dense(inputs["jet_pt"], xp, n)
    jeta, _ = _dense(inputs["jet_eta"], xp, n)
    jphi, _ = _dense(inputs["jet_phi"], xp, n)
    jsel = jvalid & (jpt > jo["pt_min"]) & (xp.abs(jeta) < jo["abs_eta_max"])
    twins = {base: twin for base, twin in STUDY_JET_FEATURES.items() if twin in want}
    if jo.get("photon_veto") or twins:
        if "jet_nneutrals" not in inputs:
            what = ("analyses.objects.jets.photon_veto" if jo.get("photon_veto")
                    else f"the feature(s) {', '.join(twins.values())}")
            raise ValueError(f"{what} (the study's jets) needs the neutral constituents of every jet (Delphes "
                             "branch Jet.NNeutrals) in the input files; they have none")
        nneu, _ = _dense(inputs["jet_nneutrals"], xp, n)
        study_jets = jsel & (nneu == 0)
        if jo.get("photon_veto"):
            jsel = study_jets

    # "all leptons": electrons and muons with pT > pt_min, |eta| < abs_eta_max, |d0| < d0_max_mm
    lep_sum_pt = xp.zeros(n)
    lep_px = xp.zeros(n)
    lep_py = xp.zeros(n)
    for pre in ("ele", "mu"):
        pt, valid = _dense(inputs[f"{pre}_pt"], xp, n)
        eta, _ = _dense(inputs[f"{pre}_eta"], xp, n)
        phi, _ = _dense(inputs[f"{pre}_phi"], xp, n)
        d0, _ = _dense(inputs[f"{pre}_d0"], xp, n)
        sel = valid & (pt > lo["pt_min"]) & (xp.abs(eta) < lo["abs_eta_max"]) & (xp.abs(d0) < lo["d0_max_mm"])
        pts = xp.where(sel, pt, 0.0)
        lep_sum_pt = lep_sum_pt + pts.sum(axis=1)
        lep_px = lep_px + (pts * xp.cos(phi)).sum(axis=1)
        lep_py = lep_py + (pts * xp.sin(phi)).sum(axis=1)

    pt_y, pt_x = f["pt_y"], f["pt_x"]
    y_leads = pt_y >= pt_x
    pt_l1 = xp.where(y_leads, pt_y, pt_x)
    phi_l1 = xp.where(y_leads, f["phi_y"], f["phi_x"])
    pt_l2 = xp.where(y_leads, pt_x, pt_y)

    def jet_features(mask, out_names):
        """HtJet, YUserObj, dPhiLepMETSelObj over the jets ``mask``, under ``out_names`` (base -> column)."""
        jpt_s = xp.where(mask, jpt, 0.0)
        res = {}
        if out_names.get("HtJet"):
            res[out_names["HtJet"]] = jpt_s.sum(axis=1)
        vis_px = lep_px + (jpt_s * xp.cos(jphi)).sum(axis=1)
        vis_py = lep_py + (jpt_s * xp.sin(jphi)).sum(axis=1)
        if out_names.get("YUserObj"):
            res[out_names["YUserObj"]] = xp.where(
                lep_sum_pt > 0, xp.hypot(vis_px, vis_py) / xp.sqrt(xp.where(lep_sum_pt > 0, lep_sum_pt, 1.0)), 0.0)
        if out_names.get("dPhiLepMETSelObj"):
            res[out_names["dPhiLepMETSelObj"]] = xp.abs(_dphi(phi_l1, xp.arctan2(vis_py, vis_px), xp))
        return res

    out = jet_features(jsel, {b: b for b in JET_FEATURES if b in want})
    if twins:
        out.update(jet_features(study_jets, twins))
    if "YDelpObj" in want:
        out["YDelpObj"] = _met_over_sqrt_ht(f["met"], f["ht"], xp)
    twin = STUDY_HT_FEATURES["YDelpObj"]
    if twin in want:
        if "ht_unique" not in inputs:
            raise ValueError(f"the feature {twin} needs the study card's HT (branch ScalarHT.HTUnique of this "
                             "project's event files, or ScalarHT.HT of a real Delphes file); the inputs have none")
        out[twin] = _met_over_sqrt_ht(f["met"], _flat(inputs["ht_unique"], xp), xp)
    if "dRLL" in want:
        dphi = _dphi(f["phi_y"], f["phi_x"], xp)
        out["dRLL"] = xp.sqrt((f["eta_y"] - f["eta_x"]) ** 2 + dphi ** 2)
    if "MtLeadLepMET" in want:
        mt2 = 2.0 * f["met"] * pt_l1 * (1.0 - xp.cos(phi_l1 - f["met_phi"]))
        out["MtLeadLepMET"] = xp.sqrt(xp.maximum(mt2, 0.0))
    if "Sphericity" in want:
        def p3(pt, eta, phi):
            return pt * xp.cos(phi), pt * xp.sin(phi), pt * xp.sinh(eta)
        ax, ay, az = p3(pt_y, f["eta_y"], f["phi_y"])
        bx, by, bz = p3(pt_x, f["eta_x"], f["phi_x"])
        a2 = ax * ax + ay * ay + az * az
        b2 = bx * bx + by * by + bz * bz
        ab = ax * bx + ay * by + az * bz
        norm = a2 + b2
        # S = (p1 p1^T + p2 p2^T) / (|p1|^2 + |p2|^2) has rank 2: lambda3 = 0, lambda1 + lambda2 = 1,
        # lambda1 lambda2 = (|p1|^2 |p2|^2 - (p1.p2)^2) / norm^2
        det = xp.where(norm > 0, (a2 * b2 - ab * ab) / xp.where(norm > 0, norm, 1.0) ** 2, 0.0)
        lam2 = 0.5 * (1.0 - xp.sqrt(xp.clip(1.0 - 4.0 * det, 0.0, 1.0)))
        out["Sphericity"] = 1.5 * lam2
    if "alphaT" in want:
        # mT = 0 exactly when "all leptons" hold one lepton (the other beyond |d0| = 100 mm, say): computed, it is
        # rounding (mT^2 ~ 1e-16 (sum pT)^2, alphaT ~ 1e8), so mT^2 below MT2_ROUNDING (sum pT)^2 counts as 0; a
        # physical pair reaches it only below |dphi| ~ 2e-6 rad
        mt2 = lep_sum_pt ** 2 - (lep_px ** 2 + lep_py ** 2)
        exact = mt2 > MT2_ROUNDING * lep_sum_pt ** 2
        mt = xp.sqrt(xp.where(exact, mt2, 1.0))
        out["alphaT"] = xp.where(exact, pt_l2 / mt, 0.0)
    if "Spherocity" in want:
        s = pt_y + pt_x
        sin_dphi = xp.abs(xp.sin(f["phi_y"] - f["phi_x"]))
        r = xp.where(s > 0, xp.minimum(pt_y, pt_x) * sin_dphi / xp.where(s > 0, s, 1.0), 0.0)
        out["Spherocity"] = (0.5 * math.pi * r) ** 2
    return {k: out[k] for k in SKIM_FEATURES if k in out}
