"""Fault injection (issue 14): broken inputs and interrupted or concurrent runs must never give a
silently wrong number.  Small hand-made files (``delphes_factory``) and Snakemake dry runs or
one-rule runs only; kill -9 and resume of the whole workflow is in test_workflow.py.

1. provenance: a dry run or a refused run with another configuration changes nothing under results/;
2. non-finite inputs: an error naming file, branch and count, or dropped in a named cutflow step;
3. one bad-file policy: read failures (at the check or part-way) are skipped and recorded, our own
   exceptions propagate, a sample emptied by skipping stops the workflow;
5. configuration accepted then ignored: threshold pairs flow to background and yields, or are refused;
6. stale temporaries of killed writers are removed; the remote Dask scheduler path works.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from delphes_factory import simple_emu_event, write_delphes
from processing_helpers import run_analyses
from workflow_utils import BIN, env, make_workdir, planned_jobs, snakemake

from softdisplaced.processing import executors
from softdisplaced.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
NAN, INF = float("nan"), float("inf")


def _workdir(tmp_path, extra: str = "") -> Path:
    """A scratch copy of the workflow on tests/data/tiny.yaml (the study's network off without its ntuples)."""
    ref = Path(os.environ.get("SOFTDISPLACED_REFERENCE", REPO.parent / "shared" / "reference"))
    if not ref.exists():
        extra = "nn:\n  networks:\n    study_ntuples:\n      enabled: false\n" + extra
    return make_workdir(tmp_path / "wf", ref if ref.exists() else None, extra_config=extra)


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (the state a test compares)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _events(n, **kw):
    return [simple_emu_event(number=i, pt_e=25.0 + i % 20, **kw) for i in range(n)]


# ------------------------------------------------------------------ 1. provenance
def test_dry_run_and_refused_run_with_another_config_change_nothing(tmp_path):
    """Before: the Snakefile rewrote results/config/resolved.json at parse time, so a dry run with
    another configuration changed what the report and provenance of the finished run would say."""
    work = _workdir(tmp_path)
    snakemake(work, "results/config/resolved.json")  # the configuration of "the run"
    resolved = json.loads((work / "results/config/resolved.json").read_text())
    assert resolved["seed"] == 20200708 and resolved["nn"]["cut"] == 0.9
    (work / "results/skims/soft_emu").mkdir(parents=True)
    (work / "results/skims/soft_emu/bp1.h5").write_bytes(b"numbers made with the first configuration")
    before = _tree(work / "results")

    (work / "config/other.yaml").write_text("nn: {cut: 0.5}\nseed: 12345\n")
    other = ("config/tiny.yaml", "config/other.yaml")
    jobs = planned_jobs(work, "results/paper/REPORT.md", configfiles=other)
    # the new configuration would rewrite the resolved configuration, hence the report, by a job ...
    assert jobs.get("resolved_config") == 1 and jobs.get("report") == 1
    (work / "config/bad.yaml").write_text("seed: -4\n")
    refused = snakemake(work, "-n", configfiles=("config/tiny.yaml", "config/bad.yaml"), check=False)
    assert refused.returncode != 0 and "key 'seed'" in refused.stdout + refused.stderr
    # ... but neither the dry run nor the refused run touched results/
    assert _tree(work / "results") == before
    # and the original configuration still has nothing to redo for its resolved configuration
    assert planned_jobs(work, "results/config/resolved.json") == {}


def test_report_and_provenance_declare_the_resolved_configuration(tmp_path):
    """Before: the report and provenance read results/config/resolved.json without declaring it."""
    work = _workdir(tmp_path)
    # the file graph lists each rule's declared inputs (the dry run prints one line per job: rule `message:`)
    dot = snakemake(work, "--filegraph", "results/provenance.json").stdout
    for rule in ("report", "provenance"):
        node = dot[dot.index(f'<font point-size="18">{rule}</font>'):]
        node = node[:node.index("</table>")]
        inputs = node[node.index("input"):node.index("output")]
        assert "results/config/resolved.json" in inputs, rule


def test_concurrent_invocation_does_not_rewrite_a_running_workflow(tmp_path):
    """A real run in progress and a dry run with another configuration in the same directory: the
    run's resolved configuration stays its own."""
    work = _workdir(tmp_path, "samples:\n  signal:\n    events_per_chunk: 300\n")
    (work / "config/other.yaml").write_text("nn: {cut: 0.5}\nseed: 12345\n")
    cmd = [str(BIN / "snakemake"), "results/config/resolved.json", "results/events/bp1/0.root", "--cores", "1",
           "--configfile", "config/tiny.yaml"]
    run = subprocess.Popen(cmd, cwd=work, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (work / ".snakemake" / "locks").exists():
            time.sleep(0.1)
        dry = snakemake(work, "-n", "results/paper/REPORT.md", configfiles=("config/tiny.yaml", "config/other.yaml"))
        assert "resolved_config" in dry.stdout
    finally:
        out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-3000:]
    resolved = json.loads((work / "results/config/resolved.json").read_text())
    assert resolved["seed"] == 20200708 and resolved["nn"]["cut"] == 0.9
    assert planned_jobs(work, "results/config/resolved.json") == {}


# ------------------------------------------------------------ 2. non-finite inputs
@pytest.mark.parametrize("branch, event", [
    ("Electron/Electron.PT", dict(pt_e=INF)),
    ("Electron/Electron.PT", dict(pt_e=NAN)),
    ("MissingET/MissingET.MET", dict(met=(NAN, 0.3))),
    ("Event/Event.Weight", dict(weight=NAN)),
])
def test_non_finite_input_is_an_error_naming_file_branch_and_count(default_config, tmp_path, branch, event):
    """Before: inf pT passed the cuts, NaN pT was dropped, NaN MET gave NaN features, a NaN weight a
    NaN sum_gen_weights, all silently.  Not a bad file: skip_bad_files does not hide it."""
    evs = _events(10)
    evs[3] = simple_emu_event(number=3, **event)
    evs[7] = simple_emu_event(number=7, **event)
    f = write_delphes(tmp_path / "nonfinite.root", evs)
    with pytest.raises(ValueError) as err:
        run_analyses(default_config, [f], tmp_path, processing={"skip_bad_files": True})
    msg = str(err.value)
    assert str(f.resolve()) in msg and f"{branch}: 2" in msg and "2 of 10 events" in msg
    assert "processing.non_finite" in msg


def test_non_finite_events_dropped_in_a_named_cutflow_step(default_config, tmp_path):
    evs = _events(12)
    evs[2] = simple_emu_event(number=2, pt_e=INF)
    evs[5] = simple_emu_event(number=5, met=(NAN, 0.1))
    evs[9] = simple_emu_event(number=9, weight=NAN)
    f = write_delphes(tmp_path / "nonfinite.root", evs)
    clean = write_delphes(tmp_path / "clean.root", [e for i, e in enumerate(evs) if i not in (2, 5, 9)])
    out = run_analyses(default_config, [f], tmp_path, processing={"non_finite": "drop"}, tag="drop")[0]["soft_emu"]
    ref = run_analyses(default_config, [clean], tmp_path, tag="clean")[0]["soft_emu"]
    cf = out["cutflow"]
    assert cf["names"][:3] == ["all", "finite_inputs", "lepton_pair"]
    assert list(cf["raw"][:2]) == [12, 9]
    assert out["attrs"]["n_events_processed"] == 12
    # the generator weights of the events dropped for a bad pT / MET stay in the normalisation,
    # the NaN one cannot: 11 finite unit weights
    assert out["attrs"]["sum_gen_weights"] == 11.0
    assert list(cf["raw"][2:]) == list(ref["cutflow"]["raw"][1:])
    assert np.array_equal(out["events"]["event_number"], ref["events"]["event_number"])
    for name, col in out["events"].items():
        if col.dtype.kind == "f" and name != "mediator_ct_mm":
            assert np.isfinite(col).all(), name
    # the report and provenance show the step
    from softdisplaced.processing.skim import input_losses, input_losses_markdown

    partial = tmp_path / "drop" / "soft_emu" / "0.h5"
    assert input_losses(partial)["non_finite_dropped"] == 3
    assert "| test | 0 | 0 | 0 | 3 |" in "\n".join(input_losses_markdown({"test": partial}, "soft_emu"))


def test_sum_gen_weights_must_be_positive_and_finite(default_config):
    """Before: only sum_gen_weights <= 0 was refused; NaN went through to NaN yields."""
    from softdisplaced.samples import build_samples
    from softdisplaced.inference.yields import normalisation

    spec = build_samples(default_config)["bp1"]
    assert normalisation(default_config, spec, 1000.0)[0] > 0
    for bad in (NAN, INF, 0.0, -5.0):
        with pytest.raises(ValueError, match="sum_gen_weights .* positive and finite"):
            normalisation(default_config, spec, bad)


# ------------------------------------------------------------ 3. bad-file policy
def _truncated(tmp_path, fraction=0.6, n=3000):
    full = write_delphes(tmp_path / "full.root", _events(n), baskets=5)
    bad = tmp_path / "truncated60.root"
    bad.write_bytes(full.read_bytes()[: int(full.stat().st_size * fraction)])
    return bad


def _corrupted(tmp_path, n=3000, header=False):
    """A file whose first Electron.PT basket has a corrupted compressed payload (or, with ``header``,
    an unknown compression algorithm in its header: uproot raises a ValueError for it)."""
    import uproot

    good = write_delphes(tmp_path / "tocorrupt.root", _events(n))
    with uproot.open(good) as fh:
        b = fh["Delphes"]["Electron/Electron.PT"]
        seek, size = int(b.member("fBasketSeek")[0]), int(b.member("fBasketBytes")[0])
    data = bytearray(good.read_bytes())
    if header:
        k = data.index(b"ZL", seek)
        data[k:k + 2] = b"QQ"
    else:
        for k in range(seek + size // 2, seek + size // 2 + 32):  # inside the compressed payload
            data[k] ^= 0x5A
    bad = tmp_path / "corrupted_basket.root"
    bad.write_bytes(bytes(data))
    return bad


def _bad_header(tmp_path):
    return _corrupted(tmp_path, header=True)


@pytest.mark.parametrize("make_bad, pattern", [(_truncated, "OSError"), (_corrupted, "while decompressing"),
                                               (_bad_header, "unrecognized compression algorithm")])
def test_file_failing_during_processing_is_skipped_and_recorded(default_config, tmp_path, make_bad, pattern):
    """Before: a file passing the pre-check but failing part-way failed the job even with
    skip_bad_files: true ("No chunks returned results")."""
    bad = make_bad(tmp_path)
    executors.check_file(bad)  # the pre-check cannot see it
    with pytest.raises(executors.BadFileError) as err:
        run_analyses(default_config, [bad], tmp_path, tag="noskip", processing={"chunksize": 600})
    assert str(bad.resolve()) in str(err.value) and pattern in str(err.value)

    good = write_delphes(tmp_path / "good.root", _events(40))
    out = run_analyses(default_config, [good, bad], tmp_path, tag="skip",
                       processing={"skip_bad_files": True, "chunksize": 600})[0]["soft_emu"]
    skipped = json.loads(out["attrs"]["skipped_files"])
    assert [s["file"] for s in skipped] == [str(bad.resolve())]
    s = skipped[0]
    assert s["entries_processed"] + s["entries_lost"] == 3000 and s["entries_lost"] > 0
    assert pattern in s["reason"]
    assert out["attrs"]["n_events_processed"] == 40 + s["entries_processed"]
    checks = json.loads(out["attrs"]["input_checksums"])
    # a partly processed file keeps its checksum (its events are in the skim); an unread one has none
    assert (str(bad) in checks) == (s["entries_processed"] > 0)


def test_truncated_file_is_partly_processed(default_config, tmp_path):
    bad = _truncated(tmp_path)
    out = run_analyses(default_config, [bad], tmp_path, processing={"skip_bad_files": True, "chunksize": 600})[0]
    s = json.loads(out["soft_emu"]["attrs"]["skipped_files"])[0]
    assert 0 < s["entries_processed"] < 3000
    assert str(bad) in json.loads(out["soft_emu"]["attrs"]["input_checksums"])


@pytest.mark.parametrize("error", [ValueError, KeyError])
def test_processor_exception_is_never_a_bad_file(default_config, tmp_path, monkeypatch, error):
    """Before: ValueError and KeyError were in coffea's skip list: a bug in our code that raised them
    for one file dropped that file as "bad" and the job succeeded."""
    from softdisplaced.processing.processor import SoftDisplacedProcessor

    original = SoftDisplacedProcessor._analysis

    def buggy(self, spec, ev, chunk, head=None):
        if chunk == 1:  # the second file
            raise error("a bug in the processor")
        return original(self, spec, ev, chunk, head)

    monkeypatch.setattr(SoftDisplacedProcessor, "_analysis", buggy)
    files = [write_delphes(tmp_path / f"f{i}.root", _events(5)) for i in range(2)]
    with pytest.raises(error, match="a bug in the processor"):
        run_analyses(default_config, files, tmp_path, processing={"skip_bad_files": True})


def test_only_read_failures_count_as_bad_files():
    import zlib

    assert executors.is_read_failure(OSError("x")) and executors.is_read_failure(zlib.error("x"))
    assert not executors.is_read_failure(ValueError("x")) and not executors.is_read_failure(KeyError("x"))
    assert not isinstance(KeyError("x"), executors.ReadFailure) and isinstance(EOFError(), executors.ReadFailure)


def test_sample_emptied_by_skipping_stops_naming_sample_and_files(default_config, tmp_path):
    """Before: the merge wrote an empty skim; the workflow failed much later in `recast` with
    "object 'mediator_ct_mm' doesn't exist", naming no file."""
    from softdisplaced.processing.analyses import build_analyses
    from softdisplaced.processing.skim import merge_partials

    bad = _corrupted(tmp_path)
    _, outs = run_analyses(default_config, [bad], tmp_path, processing={"skip_bad_files": True})
    spec = build_analyses(default_config)["soft_emu"]
    with pytest.raises(ValueError) as err:
        merge_partials(outs, tmp_path / "s.h5", tmp_path / "c.json", tmp_path / "h.pkl", analysis="soft_emu",
                       spec=spec, sample={"name": "bp1"}, config_hash="x", package_versions={})
    assert "'bp1'" in str(err.value) and str(bad.resolve()) in str(err.value)
    assert not (tmp_path / "s.h5").exists()


def test_skipped_files_reach_yields_report_and_provenance(default_config, tmp_path):
    """Before: skipped files appeared only in a skim attribute."""
    from softdisplaced.processing.analyses import build_analyses
    from softdisplaced.report.provenance import build_provenance
    from softdisplaced.processing.skim import input_losses_markdown, merge_partials
    from softdisplaced.inference.yields import fast_rows

    good = write_delphes(tmp_path / "good.root", _events(100))
    bad = _corrupted(tmp_path)
    _, p0 = run_analyses(default_config, [good], tmp_path, tag="c0", chunk=0)
    _, p1 = run_analyses(default_config, [bad], tmp_path, tag="c1", chunk=1, processing={"skip_bad_files": True})
    skim = tmp_path / "skims" / "soft_emu" / "bp1.h5"
    merge_partials(p0 + p1, skim, tmp_path / "c.json", tmp_path / "h.pkl", analysis="soft_emu",
                   spec=build_analyses(default_config)["soft_emu"], sample={"name": "bp1"}, config_hash="x",
                   package_versions={})
    rows = fast_rows(default_config, [str(skim)], [], [140.0], None)
    assert {r["skipped_files"] for r in rows} == {1}
    assert [r["lost_fraction"] for r in rows] == pytest.approx([3000 / 3100] * len(rows))
    md = "\n".join(input_losses_markdown({"bp1": skim}, "soft_emu"))
    assert "| bp1 | 1 | 3000 | 0.968 | 0 |" in md and str(bad.resolve()) in md
    prov = build_provenance({"seed": 1}, [skim])
    assert prov["input_losses"][str(skim)]["skipped_files"][0]["file"] == str(bad.resolve())


# ----------------------------------------------- 5. configuration accepted then ignored
def test_threshold_pair_flows_to_background_and_yields(tmp_path):
    """Before: a new pair [27, 27] built an analysis that no background row, yield or table used."""
    from softdisplaced.inference.background import background_table, published_fit_factors

    cfg = load_config(REPO / "config/config.yaml",
                      overrides={"analyses": {"threshold_scan": {"thresholds": [[27, 27], [42, 40]]}}})
    bcfg = cfg["background"]
    assert bcfg["analysis_threshold_gev"]["soft_emu_pt27"] == 27
    tf = published_fit_factors(bcfg)
    rows = background_table(tf, bcfg, [2.6], None, None)
    assert {r["analysis"] for r in rows if r["threshold"] == 27} == {"soft_emu_pt27"}
    k27, k25, k30 = (tf.at(t)["kappa_emu"] for t in (27, 25, 30))
    assert k30 < k27 < k25  # a lower threshold lets more background in

    work = _workdir(tmp_path, "analyses:\n  threshold_scan:\n    thresholds: [[27, 27]]\n")
    text = snakemake(work, "-n", "-p", "results/yields/yields.csv").stdout
    cmd = next(line for line in text.splitlines() if line.startswith("Shell command: softdisplaced yields"))
    assert "results/skims/soft_emu_pt27/bp1.h5" in cmd   # the rule's input skims (its --skims)


@pytest.mark.parametrize("override, key", [
    ({"analyses": {"threshold_scan": {"thresholds": [[30, 25]]}}}, "analyses.threshold_scan.thresholds[0]"),
    ({"analyses": {"threshold_scan": {"thresholds": [[42, 42]]}}}, "analyses.threshold_scan.thresholds[0]"),
    ({"samples": {"signal": {"benchmarks": []}}}, "samples.signal.benchmarks"),
    ({"samples": {"signal": {"benchmarks": [1, 99]}}}, "samples.signal.benchmarks"),
])
def test_configuration_that_cannot_be_honoured_is_refused_at_start(override, key):
    """Before: an asymmetric pair had no background, and `benchmarks: []` silently meant "all"."""
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}'")):
        load_config(REPO / "config/config.yaml", overrides=override)


# ------------------------------------------------------ 6. advertised paths that failed
def test_stale_temporaries_of_killed_writers_are_removed_at_start(tmp_path):
    """Before: a merge killed mid-write left results/skims/<a>/.<s>.h5.<rand>.tmp.h5 behind forever."""
    work = _workdir(tmp_path)
    skims = work / "results" / "skims" / "soft_emu"
    skims.mkdir(parents=True)
    stale = [skims / ".bp1.h5.k2x_9qzt.tmp.h5", work / "results" / "events" / ".0.root.ab3_xy9z.tmp"]
    stale[1].mkdir(parents=True)
    (stale[1] / "0.root").write_bytes(b"half a ROOT file")
    stale[0].write_bytes(b"half a skim")
    keep = [skims / "bp1.h5", skims / ".hidden_but_not_ours"]
    for k in keep:
        k.write_bytes(b"keep")
    snakemake(work, "-n")  # a dry run removes nothing
    assert all(p.exists() for p in stale)
    snakemake(work, "results/config/resolved.json")
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"keep" for p in keep)


def test_snakemake_report_resolves_its_captions(tmp_path):
    """`snakemake --report` failed: "Error loading caption file rules/workflow/report/report_md.rst".
    Placeholder artifacts here; test_workflow.py builds the report of a finished run."""
    import matplotlib.pyplot as plt
    import yaml

    from softdisplaced.report import expected_outputs

    work = _workdir(tmp_path)
    cfg = load_config(work / "config/config.yaml", overrides=yaml.safe_load((work / "config/tiny.yaml").read_text()))
    fig = plt.figure(figsize=(1, 1))
    for path in expected_outputs(cfg, work / "results/paper") + [work / "results/provenance.json"]:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".png", ".pdf"):
            fig.savefig(path)
        else:
            path.write_text("a,b\n1,2\n" if path.suffix == ".csv" else "{}\n")
    plt.close(fig)
    out = work / "results/report.html"
    snakemake(work, "--report", str(out))
    html = out.read_text(errors="replace")
    assert "fig9_exclusion_ctau.png" in html and "REPORT.md" in html


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and `dask worker` as separate processes on 127.0.0.1."""
    pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    dask = shutil.which("dask", path=str(BIN)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    e = env()
    e["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), e.get("PYTHONPATH", "")])
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=e, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "dask scheduler did not start"
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], env=e, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_remote_dask_scheduler_gives_the_iterative_result(default_config, tmp_path, dask_cluster):
    """processing.dask_scheduler (README, docs/hpc.md) had never run: a real scheduler and worker."""
    files = [write_delphes(tmp_path / f"f{i}.root", _events(30 + i, d0_e=0.2 + 0.1 * i)) for i in range(2)]
    ref = run_analyses(default_config, files, tmp_path, tag="iter")[0]["soft_emu"]
    out = run_analyses(default_config, files, tmp_path, tag="dask",
                       processing={"executor": "dask", "dask_scheduler": dask_cluster, "chunksize": 20})[0]["soft_emu"]
    assert out["attrs"]["n_events_processed"] == 61
    for name, col in ref["events"].items():
        assert np.array_equal(col, out["events"][name], equal_nan=col.dtype.kind == "f"), name
