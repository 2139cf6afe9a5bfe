"""The study's jet definition on fast-generator events: with ``photon_veto`` (jets holding a
card photon removed, Jet.NNeutrals == 0 kept) HtJet is 0 in most events, as in the study's
ntuples (0.933-0.940 of its NN events; issue 11), because real jets, and the fast generator's
ISR and b jets, contain photons."""

from __future__ import annotations

import awkward as ak
import numpy as np

from softdisplaced.generation import detector
from softdisplaced.processing.features import STUDY_HTJET, compute_features
from softdisplaced.generation import generate_chunk
from softdisplaced.samples import rng_for

BP1 = {"name": "bp1", "kind": "signal", "source": "fast", "m_c": 324.0, "dm": 20.0, "ctau_cm": 2.0}
HF = {"name": "hf", "kind": "background", "source": "fast"}
STUDY_JETS = {"pt_min": 20.0, "abs_eta_max": 2.5}


def _ht_jet(sample, n, generation=None, detector_cfg=None):
    """HtJet without and with the photon veto, for the events with at least one analysis jet."""
    settings = {"seed": 3, "generation": generation or {}, "detector": {}}
    truth = generate_chunk(sample, settings, rng_for(3, sample["name"], 0), n)
    jets = detector.simulate(truth, detector_cfg or {}, rng_for(3, sample["name"], 0, "detector"))["Jet"]
    m = len(jets)
    # HtJet depends on the jets alone; the lepton pair and MET are placeholders
    inp = {k: ak.Array(np.full(m, v)) for k, v in (("pt_y", 30.0), ("eta_y", 0.0), ("phi_y", 0.0), ("pt_x", 25.0),
                                                     ("eta_x", 0.5), ("phi_x", 2.0), ("met", 20.0),
                                                     ("met_phi", 1.0), ("ht", 100.0))}
    empty = ak.unflatten(np.zeros(0), np.zeros(m, dtype=np.int64))
    for pre in ("ele", "mu"):
        inp.update({f"{pre}_{f}": empty for f in ("pt", "eta", "phi", "d0")})
    for key, field in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("nneutrals", "NNeutrals")):
        inp[f"jet_{key}"] = ak.values_astype(jets[field], np.float64)
    both = compute_features(inp, {"jets": {**STUDY_JETS, "photon_veto": False}}, ("HtJet", STUDY_HTJET))
    phys = both["HtJet"]
    study = compute_features(inp, {"jets": {**STUDY_JETS, "photon_veto": True}})["HtJet"]
    # the default read's study-compatible column is the HtJet of the global switch photon_veto
    np.testing.assert_array_equal(both[STUDY_HTJET], study)
    has_jet = phys > 0
    assert has_jet.sum() > 0.1 * n, (has_jet.sum(), n)   # enough events with jets to compare
    return phys[has_jet], study[has_jet]


def test_photon_veto_empties_most_signal_jet_sums():
    """bp1: the ISR jet always holds a photon fragment; a jet survives only without any neutral above
    0.5 GeV (a UE-only or FSR-free jet). Measured 0.89 of the events with a jet (20k events);
    the study's 0.933-0.940 of all NN events, of which ~58 % have no jet at all here, corresponds
    to ~0.85 of those with one. Bound 0.8: the study's level minus the fast generator's
    crude jet content (3 ISR fragments), far above binomial noise (0.004)."""
    phys, study = _ht_jet(BP1, 10_000)
    assert np.all(study <= phys)
    assert np.mean(study == 0) > 0.8


def test_neutral_b_fragmentation_raises_the_vetoed_fraction():
    """HF: the b jets hold pi0 from B -> D pi pi0, D -> K pi pi0 and from the fragmentation pions (each a
    pi0 with probability 1/3). The same random stream with charged-only fragmentation (fraction 0)
    leaves more photon-free jets; with the isospin fraction the veto empties about 0.8 of the
    jet sums (0.92 measured on 20k events with a perfect energy flow, 0.81 with the card's calorimeter
    thresholds and resolution; bound 0.75; the two-pion fragmentation of earlier versions: 0.55).
    The jet momenta are compared with a perfect energy flow (the detector measures charged and neutral
    fragments differently)."""
    charged_only = {"fast": {"heavy_flavour": {"fragment_neutral_fraction": 0.0}}}
    perfect = {"energy_flow": {"enabled": False}}
    # the fragments' momenta do not depend on their charge; only the pion mass (in the rapidity that the
    # clustering uses) moves a soft pion across a jet boundary in a few events
    a, b = _ht_jet(HF, 5_000, None, perfect)[0], _ht_jet(HF, 5_000, charged_only, perfect)[0]
    assert len(a) == len(b) and np.mean(np.isclose(a, b, rtol=1e-6)) > 0.99
    phys, study = _ht_jet(HF, 20_000)
    phys0, study0 = _ht_jet(HF, 20_000, charged_only)
    assert np.mean(study == 0) > 0.75, np.mean(study == 0)
    assert np.mean(study == 0) > np.mean(study0 == 0) + 0.05, (np.mean(study == 0), np.mean(study0 == 0))
