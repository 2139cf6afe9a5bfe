"""The real Snakefile end to end on a tiny configuration, and incremental reprocessing.

One session-scoped run of the whole DAG (tests/data/tiny.yaml merged on top of
config/config.yaml) in a scratch copy of the workflow; the incremental tests then
ask Snakemake (dry run) what a configuration change would rerun.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from workflow_utils import BIN, env, make_workdir, planned_jobs, snakemake

REPO = Path(__file__).resolve().parents[1]
STAGE_RULES = {"generate", "process", "merge"}


def _reference():
    ref = Path(os.environ.get("SOFTDISPLACED_REFERENCE", REPO.parent / "shared" / "reference"))
    return ref if ref.exists() else None


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("tiny") / "wf", _reference())
    t0 = time.perf_counter()
    snakemake(work)
    return work, time.perf_counter() - t0


def _extra(work: Path, name: str, text: str) -> tuple[str, str]:
    (work / "config" / name).write_text(text)
    return ("config/tiny.yaml", f"config/{name}")


def test_dry_run_lists_generate_jobs(tmp_path):
    work = make_workdir(tmp_path / "wf", _reference())
    jobs = planned_jobs(work)
    # tiny.yaml: benchmarks 1, 4, 7 + hf + hf_study (the study-compatible network's background) + 2 mass points
    # + the Pythia 8 copy of bp1 + the 8 TeV copies of bp4 and bp7 (samples.sqrt_s_8tev), one chunk each
    assert jobs["generate"] == 10
    assert jobs["process"] == 10 and jobs["merge"] == 10
    for rule in ("train", "evaluate", "background", "yields", "lifetime_scan", "projections", "recast", "report"):
        assert jobs.get(rule, 0) >= 1, rule
    # scoring: per skim-input network (bp1_vs_hf and its study-jets twin bp1_vs_hf_study_jets), one job for the
    # signals and one for its background (not one per sample)
    assert jobs["evaluate"] == 2 and jobs["evaluate_background"] == 2


def test_user_delphes_file_enters_at_processing(tmp_path):
    """A user's Delphes-format file (samples.external, type delphes) is processed, never regenerated."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from delphes_factory import simple_emu_event, write_delphes  # hand-built Delphes-format files

    user = tmp_path / "user_events.root"
    write_delphes(user, [simple_emu_event(number=i, d0_e=0.3 + 0.1 * i, d0_mu=0.4 + 0.1 * i) for i in range(20)],
                  truth=False)
    extra = ("samples:\n  external:\n    - {name: my_delphes, type: delphes, kind: signal, m_c: 220, dm: 20,"
             f" ctau_cm: 1.0, br_ll: 1.0, cross_section_fb: 633.0, files: [{user}]}}\n")
    work = make_workdir(tmp_path / "wf", _reference(), extra_config=extra)
    jobs = planned_jobs(work)
    assert jobs["generate"] == 10  # the same generated samples as without it
    assert jobs["process"] == 11 and jobs["merge"] == 11  # plus the user's file
    proc = snakemake(work, "results/skims/soft_emu/my_delphes.h5")
    assert (work / "results" / "skims" / "soft_emu" / "my_delphes.h5").is_file(), proc.stdout[-2000:]
    assert not (work / "results" / "events" / "my_delphes").exists()


def test_invalid_config_fails_at_start_naming_the_key(tmp_path):
    work = make_workdir(tmp_path / "wf", _reference(), extra_config="seed: -4\n")
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "key 'seed'" in text and "minimum" in text
    assert not (work / "results" / "events").exists()


def test_end_to_end_produces_every_artifact(tiny_run):
    work, seconds = tiny_run
    res = work / "results"
    for path in ["paper/REPORT.md", "provenance.json", "yields/yields.csv", "limits/exclusion_ctau.csv",
                 "limits/excluded_intervals.json", "background/transfer_factors.csv", "recast/cms_exo_16_022_s95.csv",
                 "recast/cms_8tev_emu_s95.csv", "nn/bp1_vs_hf/metrics.json", "validation/REPORT.md",
                 "paper/hepdata/submission.yaml", "paper/hepdata.tar.gz"]:
        assert (res / path).is_file(), path
    for fig in ["fig2_lepton_pt", "fig4_hf_pt_fit", "fig5_d0", "fig6_kinematics", "fig7_nn_discriminant_roc",
                "fig8_nn_sr3", "fig9_exclusion_ctau", "fig10_mass_ctau_plane"]:
        for ext in ("pdf", "png"):
            assert (res / "paper" / "figures" / f"{fig}.{ext}").stat().st_size > 1000, fig
    # machine-readable contracts
    with open(res / "yields" / "yields.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) >= {"source", "benchmark", "analysis", "sr", "stage", "lumi_fb", "yield", "stat_err"}
    assert {r["stage"] for r in rows} == {"pre_nn", "post_nn"}
    assert any(r["benchmark"] == "hf" for r in rows)
    # the Pythia 8 copy bp1_pythia8 (validation.pythia8_benchmarks) enters the yields as source pythia8, pre-NN only
    py8 = [r for r in rows if r["source"] == "pythia8" and r["benchmark"] != "hf"]   # (tiny.yaml's HF is Pythia 8's)
    assert {(r["benchmark"], r["stage"]) for r in py8} == {("1", "pre_nn")}
    assert {r["sr"] for r in py8} == {"I", "II", "III"}
    with open(res / "limits" / "exclusion_ctau.csv") as fh:
        ex = list(csv.DictReader(fh))
    assert {float(r["lumi_fb"]) for r in ex if r["analysis"] in ("nn", "cut_based")} == {2.6, 140.0, 300.0, 3000.0}
    # the 8 TeV recast curve (R95 vs c*tau at its own luminosity) is part of the table
    assert {"nn", "cut_based", "cms_8tev_emu"} <= {r["analysis"] for r in ex}
    metrics = json.loads((res / "nn" / "bp1_vs_hf" / "metrics.json").read_text())
    assert metrics["cut"] == 0.9 and metrics["input"] == "skims" and 0.5 < metrics["auc"]["1"] <= 1.0
    # issue 11: the twin network on the study's jets and HT (the *_photon_veto skim columns beside the physical ones)
    twin = json.loads((res / "nn" / "bp1_vs_hf_study_jets" / "metrics.json").read_text())
    study_jets = ["YDelpObj_photon_veto", "HtJet_photon_veto", "YUserObj_photon_veto", "dPhiLepMETSelObj_photon_veto"]
    assert set(study_jets) <= set(twin["features"]) and not {"YDelpObj", "HtJet", "YUserObj"} & set(twin["features"])
    assert set(twin["auc"]) == set(metrics["auc"]) and twin["network"] == "bp1_vs_hf_study_jets"
    # ... trained on the study's HF composition (both B semi-leptonic), the physical network on the physical mixture
    assert twin["training_backgrounds"] == ["hf_study"] and metrics["training_backgrounds"] == ["hf"]
    if (res / "nn" / "study_ntuples" / "metrics.json").exists():
        fidelity = (res / "validation" / "fidelity.md").read_text()
        assert "| bp1_vs_hf | all jets (YDelpObj, HtJet, YUserObj, dPhiLepMETSelObj) | auc |" in fidelity
        assert f"| bp1_vs_hf_study_jets | study's jets ({', '.join(study_jets)}) | auc |" in fidelity
        assert f"| bp1_vs_hf_study_jets | study's jets ({', '.join(study_jets)}) | hf_eff_at_cut | hf_study |" in fidelity
        # the study-compatible network's post-NN yields beside the physical one's
        assert "| yield_post_nn | fast | bp1_vs_hf_study_jets | 1 |" in fidelity
        assert "| yield_post_nn | fast | bp1_vs_hf | 1 |" in fidelity
    prov = json.loads((res / "provenance.json").read_text())
    assert prov["config_hash"] and prov["package_versions"]["snakemake"]
    assert any(k.endswith(".h5") for k in prov["input_checksums"])
    with h5py.File(res / "skims" / "soft_emu" / "bp1.h5") as f:
        for key in ("n_events_processed", "sum_gen_weights", "cross_section_fb", "analysis", "config_hash",
                    "skipped_files"):
            assert key in f.attrs, key
        assert f.attrs["n_events_processed"] == 20000
        for twin in study_jets:
            assert f["events"][twin].shape == f["events"]["HtJet"].shape


def test_nothing_to_do_after_a_complete_run(tiny_run):
    work, _ = tiny_run
    assert planned_jobs(work) == {}


def test_snakemake_report_builds_on_the_finished_run(tiny_run):
    """`snakemake --report` (README) failed: the caption paths resolved relative to rules/."""
    work, _ = tiny_run
    out = work / "results" / "report.html"
    snakemake(work, "--report", str(out))
    html = out.read_text(errors="replace")
    assert out.stat().st_size > 10000 and "fig9_exclusion_ctau.png" in html and "REPORT.md" in html


def test_dry_run_with_another_config_leaves_the_finished_run_untouched(tiny_run):
    """Issue 14: a second invocation with another configuration rewrote results/config/resolved.json,
    so the report and provenance described numbers made with other settings."""
    work, _ = tiny_run
    res = work / "results"
    before = {p: p.read_bytes() for p in sorted(res.rglob("*")) if p.is_file() and "logs" not in p.parts}
    cfg = _extra(work, "other.yaml", "nn:\n  cut: 0.5\nseed: 12345\n")
    jobs = planned_jobs(work, configfiles=cfg)
    assert {"resolved_config", "report", "provenance"} <= set(jobs)
    after = {p: p.read_bytes() for p in sorted(res.rglob("*")) if p.is_file() and "logs" not in p.parts}
    assert after == before
    assert planned_jobs(work) == {}
    prov = json.loads((res / "provenance.json").read_text())
    assert prov["config"]["seed"] == 20200708 and prov["config"]["nn"]["cut"] == 0.9
    assert "cut NN >= 0.9" in (res / "paper" / "REPORT.md").read_text()


def test_same_config_gives_bit_identical_skims_and_tables(tiny_run, tmp_path):
    """Regenerating the HF chain in a second directory gives byte-identical skims and tables."""
    work, _ = tiny_run
    other = make_workdir(tmp_path / "wf2", _reference())
    snakemake(other, "results/skims/soft_emu_loose/hf.h5", "results/background/transfer_factors.csv")
    for rel in ["results/skims/soft_emu_loose/hf.h5", "results/skims/soft_emu/hf.h5",
                "results/background/transfer_factors.csv", "results/background/background.csv"]:
        assert (work / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_changing_luminosities_reruns_only_projections_and_report(tiny_run):
    work, _ = tiny_run
    cfg = _extra(work, "lumi.yaml", "limits:\n  projection_lumis_fb: [2.6, 140, 300, 1000, 3000]\n")
    jobs = planned_jobs(work, configfiles=cfg)
    # resolved_config: the report and provenance read the whole configuration from its output
    assert set(jobs) == {"resolved_config", "projections", "exclusion_table", "report", "provenance", "all"}


def test_changing_nn_settings_reruns_training_not_generation(tiny_run):
    work, _ = tiny_run
    cfg = _extra(work, "nn.yaml", "nn:\n  training:\n    epochs: 4\n")
    jobs = planned_jobs(work, configfiles=cfg)
    assert jobs.get("train", 0) >= 1 and jobs.get("evaluate", 0) >= 1
    assert not STAGE_RULES & set(jobs)
    assert "projections" in jobs and "report" in jobs


def test_adding_a_benchmark_adds_only_its_chain(tiny_run):
    work, _ = tiny_run
    cfg = _extra(work, "bm.yaml", "samples:\n  signal:\n    benchmarks: [1, 4, 7, 5]\n")
    jobs = planned_jobs(work, configfiles=cfg)
    # bp5 and its 8 TeV copy bp5_8tev (samples.sqrt_s_8tev)
    assert jobs["generate"] == 2 and jobs["process"] == 2 and jobs["merge"] == 2
    assert "train" not in jobs and "background" not in jobs
    # the scores (one evaluate job per skim-based network, NumPy: seconds), and the rules that combine benchmarks
    assert jobs["evaluate"] == 2
    assert {"yields", "lifetime_scan", "projections", "recast", "report"} <= set(jobs)


def test_adding_a_chunk_processes_only_the_new_chunk(tiny_run):
    work, _ = tiny_run
    cfg = _extra(work, "chunk.yaml", "samples:\n  hf:\n    n_chunks: 2\n")
    jobs = planned_jobs(work, configfiles=cfg)
    assert jobs["generate"] == 1 and jobs["process"] == 1 and jobs["merge"] == 1


def test_interrupted_run_resumes_without_redoing_finished_jobs(tmp_path):
    work = make_workdir(tmp_path / "wf", _reference())
    total = planned_jobs(work)["generate"]
    cmd = [str(BIN / "snakemake"), "--cores", "2", "--configfile", "config/tiny.yaml"]
    proc = subprocess.Popen(cmd, cwd=work, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    events = work / "results" / "events"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(events.glob("*/*.root"))) < 3:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a clean stop
    proc.wait()
    done = len(list(events.glob("*/*.root")))
    assert done >= 3, "the run did not get far enough before the deadline"
    jobs = planned_jobs(work, "--rerun-incomplete")
    # finished chunks are not regenerated; at most the ones in flight when killed
    assert jobs.get("generate", 0) <= total - done + 2
    assert jobs.get("generate", 0) < total
