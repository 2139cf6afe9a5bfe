"""Delphes-format files: DelphesSchema read-back, determinism, atomic writing, CLI."""

from __future__ import annotations

import json
import time
import warnings

import awkward as ak
import numpy as np
import pytest
import uproot

from softdisplaced.cli import main
from softdisplaced.commands.generate import generate_file
from softdisplaced.generation.detector import simulate
from softdisplaced.generation.delphes_writer import write
from softdisplaced.generation import backend_for, generate_chunk
from softdisplaced.samples import build_samples, rng_for

N = 3000


@pytest.fixture(scope="module")
def settings(default_config):
    return {"seed": default_config["seed"], "sample": build_samples(default_config)["bp1"],
            "generation": default_config["generation"], "detector": default_config["detector"]}


def _arrays(path):
    with uproot.open(path) as f:
        return f["Delphes"].arrays(library="np")


def test_delphes_schema_reads_every_collection(tmp_path, settings):
    sample = settings["sample"]
    truth = generate_chunk(sample, settings, rng_for(1, "bp1", 0), N)
    reco = simulate(truth, settings["detector"], rng_for(1, "bp1", 0, "detector"))
    path = tmp_path / "bp1.root"
    write(path, reco, truth, cross_section_pb=0.1277, first_event_number=100)
    from coffea.nanoevents import DelphesSchema, NanoEventsFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = NanoEventsFactory.from_root({str(path): "Delphes"}, schemaclass=DelphesSchema, mode="eager").events()
    assert len(ev) == N
    assert ak.all(ak.flatten(ev.Electron.pt == reco["Electron"].PT))
    for f in ("PT", "Eta", "Phi", "T", "Charge", "D0", "DZ", "IsolationVar", "Particle"):
        assert ak.all(ak.flatten(ev.Muon[f] == reco["Muon"][f])), f
    assert ak.all(ak.flatten(ev.Jet.pt == reco["Jet"].PT)) and ak.all(ak.flatten(ev.Jet.mass == reco["Jet"].Mass))
    np.testing.assert_array_equal(ak.to_numpy(ev.MissingET.MET), ak.to_numpy(ak.flatten(reco["MissingET"].MET)))
    np.testing.assert_array_equal(ak.to_numpy(ev.ScalarHT.HT), ak.to_numpy(ak.flatten(reco["ScalarHT"].HT)))
    np.testing.assert_array_equal(ak.to_numpy(ev.ScalarHT.HTUnique),
                                  ak.to_numpy(ak.flatten(reco["ScalarHT"].HTUnique)))
    np.testing.assert_array_equal(ak.to_numpy(ev.Event.Number), np.arange(100, 100 + N))
    assert np.all(ak.to_numpy(ev.Event.Weight) == 1.0)
    assert np.allclose(ak.to_numpy(ev.Event.CrossSection), 0.1277)
    # Particle: the mediators with their proper decay length, the electron's Particle index points at an electron
    med = ev.Particle[abs(ev.Particle.PID) == 1000024]
    assert ak.all(med.Status == 22) and ak.all(ak.num(med) == 2)
    np.testing.assert_allclose(ak.to_numpy(med.CtauProper), ak.to_numpy(truth.mediators.proper_ct_mm), rtol=1e-5)
    pe = ev.Particle[ev.Electron.Particle]
    assert ak.all(abs(ak.flatten(pe.PID)) == 11)
    assert ak.all(ak.flatten(ev.Particle.CtauProper[abs(ev.Particle.PID) != 1000024]) == 0)
    # mediator decay vertex = production vertex of its daughters
    dau = ev.Particle[med.D1]
    np.testing.assert_allclose(ak.to_numpy(dau.X), ak.to_numpy(truth.mediators.decay_x), rtol=1e-5, atol=1e-5)


def test_branch_names_follow_delphes(tmp_path, settings):
    path = tmp_path / "x.root"
    generate_file(settings, settings["sample"], 0, str(path), 500)
    with uproot.open(path) as f:
        keys = set(f["Delphes"].keys())
    for need in ("Electron_size", "Electron/Electron.PT", "Electron/Electron.IsolationVar", "Muon/Muon.D0",
                 "Jet/Jet.Mass", "MissingET/MissingET.MET", "ScalarHT/ScalarHT.HT",
                 "ScalarHT/ScalarHT.HTUnique", "Particle/Particle.CtauProper",
                 "Particle/Particle.PID", "Particle/Particle.M1", "Particle/Particle.D2", "Event/Event.Weight",
                 "Event/Event.CrossSection", "Event/Event.Number"):
        assert need in keys, need
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_same_seed_identical_different_chunks_differ(tmp_path, settings):
    a, b, c = (tmp_path / n for n in ("a.root", "b.root", "c.root"))
    generate_file(settings, settings["sample"], 0, str(a), 2000)
    generate_file(settings, settings["sample"], 0, str(b), 2000)
    generate_file(settings, settings["sample"], 1, str(c), 2000)
    A, B, C = _arrays(a), _arrays(b), _arrays(c)
    assert A.keys() == B.keys()
    for k in A:
        assert all(np.array_equal(x, y) for x, y in zip(A[k], B[k])) if A[k].dtype == object \
            else np.array_equal(A[k], B[k]), k
    ma, mc = np.concatenate(A["MissingET/MissingET.MET"]), np.concatenate(C["MissingET/MissingET.MET"])
    assert not np.array_equal(ma, mc)
    assert C["Event/Event.Number"][0][0] == 2000  # chunk 1 numbers continue after chunk 0


def test_same_seed_gives_byte_identical_root_files(tmp_path, settings):
    """Reproducible ROOT output: no wall-clock stamps, UUIDs or temporary names in the bytes."""
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = tmp_path / "x" / "0.root", tmp_path / "y" / "0.root"
    generate_file(settings, settings["sample"], 0, str(a), 1000)
    time.sleep(1.1)  # a different second on the clock
    generate_file(settings, settings["sample"], 0, str(b), 1000)
    assert a.read_bytes() == b.read_bytes()
    assert not list((tmp_path / "x").glob(".*"))  # no temporary left behind


def test_cli_generate_with_settings_json(tmp_path, settings):
    out = tmp_path / "events" / "bp1" / "0.root"
    rc = main(["generate", "--settings", json.dumps(settings), "--sample", "bp1", "--chunk", "0",
               "--output", str(out), "--n-events", "1000"])
    assert rc == 0 and out.exists()
    assert len(_arrays(out)["Event/Event.Number"]) == 1000


def test_cli_generate_hf_with_configfile(tmp_path, repo_root):
    out = tmp_path / "hf.root"
    rc = main(["generate", "--configfile", str(repo_root / "config" / "config.yaml"), "--sample", "hf",
               "--chunk", "1", "--output", str(out), "--n-events", "1000"])
    assert rc == 0
    w = np.concatenate(_arrays(out)["Event/Event.Weight"])
    # 1000 candidates, thinned by truth class (docs/generator.md): the kept events carry importance
    # weights (forced decays, biased fragmentation and lepton direction, 1/keep probability)
    assert 0 < len(w) < 1000
    assert np.all(np.isfinite(w)) and np.all(w > 0) and len(np.unique(w)) > 10


def test_cli_unknown_sample_fails(tmp_path, repo_root, capsys):
    rc = main(["generate", "--configfile", str(repo_root / "config" / "config.yaml"), "--sample", "nope",
               "--output", str(tmp_path / "x.root"), "--n-events", "10"])
    assert rc != 0 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "x.root").exists()


def test_missing_backend_gives_clear_error(monkeypatch):
    import softdisplaced.generation as gen

    monkeypatch.setitem(gen.BACKENDS, "pythia8", "softdisplaced.generation.does_not_exist")
    with pytest.raises(ValueError, match="does_not_exist.*generate_chunk"):
        backend_for("pythia8")
    with pytest.raises(ValueError, match="no generator for sample source 'delphes'"):
        backend_for("delphes")
