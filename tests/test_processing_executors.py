"""Iterative, futures (2 workers) and Dask LocalCluster executors give bit-identical skims."""

from __future__ import annotations

import pytest

from delphes_factory import jet, particle, simple_emu_event, write_delphes
from processing_helpers import run_analyses


@pytest.mark.slow  # ~20-70 s: process-pool and dask LocalCluster start-up on 2 shared cores
def test_executors_give_identical_skims(default_config, tmp_path):
    evs = [simple_emu_event(number=i, d0_e=0.25 + 0.01 * i, d0_mu=0.3 + 0.02 * i, pt_e=20.5 + i % 7,
                            weight=1.0 + 0.1 * i) for i in range(90)]
    files = [write_delphes(tmp_path / "a.root", evs[:50]), write_delphes(tmp_path / "b.root", evs[50:])]
    outs = {}
    for ex in ("iterative", "futures", "dask"):
        # small chunks: several work items per file, returned in executor-dependent order
        _, (p,) = run_analyses(default_config, files, tmp_path, tag=ex,
                               processing={"executor": ex, "workers": 2, "chunksize": 20})
        outs[ex] = p.read_bytes()
    assert outs["iterative"] == outs["futures"] == outs["dask"]


@pytest.mark.parametrize("names, isolation, truth", [(("soft_emu", "cms_8tev_emu", "cms_exo_18_003"), True, True),
                                                     (("soft_emu_loose",), False, False)])
def test_processor_reads_exactly_the_preloaded_branches(default_config, tmp_path, names, isolation, truth):
    """What the processor materialises is ``preload_branches``: the bulk preload wastes no read, and the
    processing benchmark's raw-uproot reference (which reads that list) reads what the processor reads."""
    import uproot
    from coffea.nanoevents import DelphesSchema, NanoEventsFactory

    from softdisplaced.processing.analyses import build_analyses
    from softdisplaced.processing.executors import TREE, preload_branches
    from softdisplaced.processing.processor import SoftDisplacedProcessor

    evs = [simple_emu_event(number=i, jets=[jet(40.0, 0.5, 1.0)], mediators_ctau=[1.0, 2.0]) for i in range(5)]
    for ev in evs:   # the leptons' generator particles (read for cms_exo_18_003's lepton_vertex_max_mm)
        ev["particles"] += [particle(11, x=1.0), particle(-13, y=2.0)]
        ev["electrons"][0]["Particle"], ev["muons"][0]["Particle"] = 2, 3
    f = write_delphes(tmp_path / "a.root", evs, truth=truth)
    analyses = {n: a for n, a in build_analyses(default_config, only_enabled=False).items() if n in names}
    proc = SoftDisplacedProcessor(analyses, default_config["efficiency"],
                                  spectra=default_config["processing"]["spectra"])
    assert proc.needs_isolation() is isolation
    log = []
    with uproot.open(f) as fh:
        events = NanoEventsFactory.from_root(file=fh, treepath=TREE, schemaclass=DelphesSchema, mode="virtual",
                                             access_log=log).events()
        proc.process(events)
    assert proc.needs_lepton_vertex() is truth
    assert {a.branch for a in log} == set(preload_branches(isolation, truth, proc.needs_jet_neutrals(),
                                                           proc.needs_lepton_vertex(), proc.needs_ht_unique()))
