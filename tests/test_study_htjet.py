"""Both jet definitions in one skim (issue 11): the physical ``HtJet``, ``YUserObj`` and ``dPhiLepMETSelObj``
(every jet in the object cuts) and their twins ``*_photon_veto`` over the study's jets (no neutral constituent:
its Delphes card's UniqueObjectFinder removes every jet holding a photon), computed from the same event read."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from delphes_factory import jet, simple_emu_event, write_delphes
from processing_helpers import run_analyses
from softdisplaced.processing.executors import BadFileError
from softdisplaced.processing.features import STUDY_FEATURES, STUDY_HTJET, STUDY_JET_FEATURES

# (pt, eta, nneutrals) of the jets of each event; object cuts pT > 20 GeV, |eta| < 2.5
JETS = [
    [(60.0, 0.5, 0), (45.0, -1.0, 3)],      # one photon-free jet: study 60, physical 105
    [(80.0, 0.2, 2)],                       # its only jet holds photons: study 0
    [(30.0, 1.0, 0), (25.0, 2.7, 0)],       # the second jet is outside |eta| < 2.5 in both definitions
    [(15.0, 0.0, 0), (50.0, -0.3, 0)],      # the first is below 20 GeV in both
    [],
]


def _events():
    return [simple_emu_event(number=i, jets=[jet(pt, eta, 1.0 + 0.7 * k, nneutrals=nn)
                                             for k, (pt, eta, nn) in enumerate(js)])
            for i, js in enumerate(JETS)]


def test_skim_carries_both_jet_definitions(default_config, tmp_path):
    f = write_delphes(tmp_path / "jets.root", _events())
    phys = run_analyses(default_config, [f], tmp_path, tag="phys")[0]["soft_emu"]["events"]
    veto_cfg = copy.deepcopy(default_config)
    veto_cfg["analyses"]["objects"]["jets"]["photon_veto"] = True
    veto = run_analyses(veto_cfg, [f], tmp_path, tag="veto")[0]["soft_emu"]["events"]
    assert list(phys["event_number"]) == list(range(len(JETS)))
    # the study's column equals HtJet recomputed with the global switch photon_veto on ...
    np.testing.assert_array_equal(phys[STUDY_HTJET], veto["HtJet"])
    # ... does not depend on the switch, and is the sum over the photon-free jets in the object cuts
    np.testing.assert_array_equal(veto[STUDY_HTJET], phys[STUDY_HTJET])
    expect_study = [sum(pt for pt, eta, nn in js if pt > 20 and abs(eta) < 2.5 and nn == 0) for js in JETS]
    expect_phys = [sum(pt for pt, eta, nn in js if pt > 20 and abs(eta) < 2.5) for js in JETS]
    assert phys[STUDY_HTJET].tolist() == pytest.approx(expect_study)
    assert phys["HtJet"].tolist() == pytest.approx(expect_phys)
    # the other jet-dependent features follow the switch only where a vetoed jet is in the object cuts,
    # and their twins are them over the study's jets, whatever the switch says
    assert phys["YUserObj"][0] != pytest.approx(veto["YUserObj"][0])
    assert phys["YUserObj"][2] == pytest.approx(veto["YUserObj"][2])
    for base, twin in STUDY_JET_FEATURES.items():
        np.testing.assert_array_equal(phys[twin], veto[base])
        np.testing.assert_array_equal(veto[twin], phys[twin])


def test_study_htjet_needs_the_neutral_constituents(default_config, tmp_path):
    """A file without Jet.NNeutrals cannot give the study's jets: an error naming the file and the branch,
    not a silent zero; without the study's column in analyses.features the branch is not needed."""
    f = write_delphes(tmp_path / "no_nneutrals.root", _events(), drop=["Jet/Jet.NNeutrals"])
    with pytest.raises(BadFileError, match=r"no_nneutrals\.root.*lacks the branch\(es\) Jet/Jet\.NNeutrals"):
        run_analyses(default_config, [f], tmp_path)
    cfg = copy.deepcopy(default_config)
    cfg["analyses"]["features"] = [x for x in cfg["analyses"]["features"] if x not in STUDY_JET_FEATURES.values()]
    ev = run_analyses(cfg, [f], tmp_path, tag="nine")[0]["soft_emu"]["events"]
    assert STUDY_HTJET not in ev and len(ev["HtJet"]) == len(JETS)


def test_ydelpobj_twin_reads_the_study_cards_ht(default_config, tmp_path):
    """YDelpObj_photon_veto = MET / sqrt(ScalarHT.HTUnique) in this project's files, beside YDelpObj = MET /
    sqrt(ScalarHT.HT); a real Delphes file (no HTUnique, no Particle.CtauProper) has the study card's sum in
    ScalarHT.HT, which the twin then takes; a file of this project without HTUnique is an error naming it."""
    twin = STUDY_FEATURES["YDelpObj"]
    ht_unique = [64.0, 100.0, 0.0]
    evs = [dict(simple_emu_event(number=i, met=(40.0, 1.0)), ht=200.0, ht_unique=h) for i, h in enumerate(ht_unique)]
    ev = run_analyses(default_config, [write_delphes(tmp_path / "own.root", evs)], tmp_path)[0]["soft_emu"]["events"]
    assert ev[twin].tolist() == pytest.approx([40.0 / 8.0, 4.0, 0.0], rel=1e-6)
    assert ev["YDelpObj"].tolist() == pytest.approx([40.0 / np.sqrt(200.0)] * 3, rel=1e-6)
    real = write_delphes(tmp_path / "delphes.root", evs, truth=False, drop=["ScalarHT/ScalarHT.HTUnique"])
    ev = run_analyses(default_config, [real], tmp_path, tag="real")[0]["soft_emu"]["events"]
    np.testing.assert_array_equal(ev[twin], ev["YDelpObj"])
    old = write_delphes(tmp_path / "old.root", evs, drop=["ScalarHT/ScalarHT.HTUnique"])
    with pytest.raises(ValueError, match=r"old\.root.*YDelpObj_photon_veto.*ScalarHT/ScalarHT\.HTUnique"):
        run_analyses(default_config, [old], tmp_path, tag="old")
