"""Bad inputs: a clear error naming the file, or (processing.skip_bad_files) a recorded skip."""

from __future__ import annotations

import json
import shutil

import pytest

from delphes_factory import simple_emu_event, write_delphes
from processing_helpers import run_analyses
from softdisplaced.cli import main


def _good(tmp_path, name="good.root", n=5):
    return write_delphes(tmp_path / name, [simple_emu_event(number=i) for i in range(n)])


def _check(default_config, tmp_path, bad, pattern):
    """Error naming the file without skipping; with skipping, a recorded skip and the good file processed."""
    with pytest.raises((ValueError, OSError)) as err:
        run_analyses(default_config, [bad], tmp_path, tag="noskip")
    assert str(bad) in str(err.value) and pytest.importorskip("re").search(pattern, str(err.value))
    good = _good(tmp_path)
    out = run_analyses(default_config, [good, bad], tmp_path, tag="skip", processing={"skip_bad_files": True})[0]
    s = out["soft_emu"]
    skipped = json.loads(s["attrs"]["skipped_files"])
    assert [x["file"] for x in skipped] == [str(bad.resolve())]
    assert pytest.importorskip("re").search(pattern, skipped[0]["reason"])
    assert s["attrs"]["n_events_processed"] == 5
    assert str(bad) not in json.loads(s["attrs"]["input_checksums"])


def test_reference_bad_delphes_file(default_config, tmp_path, reference_dir):
    bad = tmp_path / "bad_delphes.root"
    shutil.copy(reference_dir / "bad_inputs" / "bad_delphes.root", bad)
    _check(default_config, tmp_path, bad, r"no TTree 'Delphes'")


def test_truncated_root_file(default_config, tmp_path):
    full = _good(tmp_path, "full.root", n=50)
    bad = tmp_path / "truncated.root"
    bad.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _check(default_config, tmp_path, bad, r"cannot be opened as a ROOT file|truncated")


def test_file_without_delphes_tree(default_config, tmp_path):
    bad = write_delphes(tmp_path / "otherTree.root", [simple_emu_event()], treename="Events")
    _check(default_config, tmp_path, bad, r"no TTree 'Delphes'.*Events")


def test_file_missing_a_needed_branch(default_config, tmp_path):
    bad = write_delphes(tmp_path / "nod0.root", [simple_emu_event()], drop=["Muon/Muon.D0"])
    _check(default_config, tmp_path, bad, r"lacks the branch\(es\) Muon/Muon.D0")


def test_missing_file_and_cli_exit_code(default_config, tmp_path, capsys):
    missing = tmp_path / "nope.root"
    with pytest.raises(FileNotFoundError, match="nope.root"):
        run_analyses(default_config, [missing], tmp_path)
    rc = main(["process", "--sample", "bp1", "--analysis", "soft_emu", "--input", str(missing),
               "--output", str(tmp_path / "x.h5")])
    assert rc == 1
    assert "nope.root" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_isolation_branch_only_needed_when_an_analysis_uses_isolation(default_config, tmp_path):
    f = write_delphes(tmp_path / "noiso.root", [simple_emu_event(number=i) for i in range(3)],
                      drop=["Electron/Electron.IsolationVar", "Muon/Muon.IsolationVar"])
    out = run_analyses(default_config, [f], tmp_path, names=("soft_emu_loose",))[0]
    assert len(out["soft_emu_loose"]["events"]["sr"]) == 3
    with pytest.raises(ValueError, match="IsolationVar"):
        run_analyses(default_config, [f], tmp_path, names=("soft_emu",), tag="iso")
