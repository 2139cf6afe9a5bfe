"""HDF5 skims: layout of docs/contracts.md, determinism, merging of chunks, empty selections."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np

from delphes_factory import jet, simple_emu_event, write_delphes
from processing_helpers import run_analyses
from softdisplaced.processing.analyses import build_analyses
from softdisplaced.processing.skim import merge_partials, read_skim

FEATURES = ["YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj", "Sphericity", "alphaT",
            "Spherocity"]


def _events(n, start=0, seed=0):
    rng = np.random.default_rng(seed)
    return [simple_emu_event(number=start + i, pt_e=float(rng.uniform(15, 60)), pt_mu=float(rng.uniform(15, 60)),
                             d0_e=float(rng.uniform(0.05, 3)), d0_mu=float(rng.uniform(0.05, 3)),
                             weight=float(rng.uniform(0.5, 2)), jets=[jet(float(rng.uniform(10, 80)), 0.5, 1.0)],
                             mediators_ctau=[float(rng.exponential(10)), float(rng.exponential(10))])
            for i in range(n)]


def test_skim_layout_and_attributes(default_config, tmp_path):
    f = write_delphes(tmp_path / "0.root", _events(40))
    _, (partial,) = run_analyses(default_config, [f], tmp_path)
    with h5py.File(partial, "r") as fh:
        ev = fh["events"]
        n = len(ev["sr"])
        assert n > 0
        for k in FEATURES + ["pt_e", "eta_e", "phi_e", "d0_e", "pt_mu", "eta_mu", "phi_mu", "d0_mu",
                             "weight_d0eff", "weight_gen"]:
            assert ev[k].dtype == np.float64 and ev[k].shape == (n,), k
            assert ev[k].compression == "gzip"
        assert ev["sr"].dtype == np.int8 and ev["event_number"].dtype == np.int64 and ev["chunk"].dtype == np.int32
        assert ev["mediator_ct_mm"].shape == (n, 2)
        for k in ("electron_pt", "electron_weight", "muon_pt", "muon_weight"):
            assert k in fh["spectra"]
        # spectra: every lepton with |eta| < 2.4 and pT > 10 (no isolation, no pairing): here one e and one mu each
        assert len(fh["spectra/electron_pt"]) == 40 and len(fh["spectra/muon_pt"]) == 40
        a = fh.attrs
        assert a["n_events_processed"] == 40 and a["analysis"] == "soft_emu" and a["sample"] == "test"
        assert a["cross_section_fb"] == 100.0 and a["config_hash"] == "test" and a["layout_version"] == 1
        assert json.loads(a["skipped_files"]) == []
        assert list(json.loads(a["input_checksums"]).values())[0] != ""
        assert abs(a["sum_gen_weights"] - sum(e["weight"] for e in _events(40))) < 1e-4
        for k in ("package_versions", "ctau_cm", "m_c", "dm", "br_ll"):
            assert k in a


def test_same_input_gives_bit_identical_skims(default_config, tmp_path):
    f = write_delphes(tmp_path / "0.root", _events(60))
    _, (a,) = run_analyses(default_config, [f], tmp_path, tag="a", processing={"chunksize": 7})
    _, (b,) = run_analyses(default_config, [f], tmp_path, tag="b", processing={"chunksize": 7})
    assert a.read_bytes() == b.read_bytes()


def test_merge_concatenates_chunks_in_order_and_sums_counts(default_config, tmp_path):
    files = [write_delphes(tmp_path / f"{c}.root", _events(30, start=100 * c, seed=c)) for c in range(3)]
    partials = []
    for c, f in enumerate(files):
        partials.append(run_analyses(default_config, [f], tmp_path, chunk=c)[1][0])
    spec = build_analyses(default_config)["soft_emu"]
    outs = []
    for tag, order in (("fwd", partials), ("rev", partials[::-1])):
        merge_partials(order, tmp_path / tag / "s.h5", tmp_path / tag / "c.json", tmp_path / tag / "h.pkl",
                       analysis="soft_emu", spec=spec, sample={"name": "test"}, config_hash="x",
                       package_versions={"t": "1"})
        outs.append(tmp_path / tag / "s.h5")
    assert outs[0].read_bytes() == outs[1].read_bytes()
    m = read_skim(outs[0])
    parts = [read_skim(p) for p in partials]
    assert m["attrs"]["n_events_processed"] == 90
    assert list(m["events"]["chunk"]) == sorted(m["events"]["chunk"])
    assert np.array_equal(m["events"]["event_number"], np.concatenate([p["events"]["event_number"] for p in parts]))
    assert np.array_equal(m["cutflow"]["raw"], sum(p["cutflow"]["raw"] for p in parts))
    cf = json.loads((tmp_path / "fwd" / "c.json").read_text())
    assert cf["cuts"][-1]["raw"] == len(m["events"]["sr"])
    assert sum(r["raw"] for r in cf["signal_regions"]) == len(m["events"]["sr"])
    assert (tmp_path / "fwd" / "c.md").read_text().startswith("# Cutflow: soft_emu / test")
    hists = pickle.loads((tmp_path / "fwd" / "h.pkl").read_bytes())
    assert set(FEATURES + ["pt_e", "pt_mu", "d0_e", "d0_mu"]) <= set(hists)
    w = m["events"]["weight_gen"] * m["events"]["weight_d0eff"]
    assert abs(hists["dRLL"].sum(flow=True).value - w.sum()) < 1e-9


def test_empty_selection_gives_a_valid_empty_skim(default_config, tmp_path):
    # every event fails the d0 window (d0 = 0.1 mm)
    evs = [simple_emu_event(number=i, d0_e=0.1, d0_mu=0.1) for i in range(5)]
    f = write_delphes(tmp_path / "0.root", evs)
    out, (partial,) = run_analyses(default_config, [f], tmp_path)
    s = out["soft_emu"]
    assert s["attrs"]["n_events_processed"] == 5
    assert list(s["cutflow"]["raw"]) == [5, 5, 5, 5, 0]
    for k in FEATURES + ["sr", "pt_e", "d0_mu", "weight_d0eff", "event_number"]:
        assert s["events"][k].shape == (0,), k
    assert s["events"]["mediator_ct_mm"].shape == (0, 2)
    spec = build_analyses(default_config)["soft_emu"]
    merge_partials([partial], tmp_path / "s.h5", tmp_path / "c.json", tmp_path / "h.pkl", analysis="soft_emu",
                   spec=spec, sample={"name": "test"}, config_hash="x", package_versions={})
    with h5py.File(tmp_path / "s.h5", "r") as fh:
        assert fh["events/sr"].shape == (0,) and fh.attrs["n_events_processed"] == 5


def test_file_with_zero_events_gives_empty_skim(default_config, tmp_path):
    f = write_delphes(tmp_path / "0.root", [])
    s = run_analyses(default_config, [f], tmp_path)[0]["soft_emu"]
    assert s["attrs"]["n_events_processed"] == 0 and s["events"]["sr"].shape == (0,)
    assert s["cutflow"]["names"][0] == "all"
