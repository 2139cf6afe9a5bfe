"""Flavour normalisation end to end: a forced e-mu sample and a flavour-democratic one give the same
e-mu yield (generate -> Delphes file with the recorded decay mode -> skim attribute -> yields)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from softdisplaced.inference import yields as y
from softdisplaced.processing.analyses import build_analyses
from softdisplaced.commands.generate import generate_file
from softdisplaced.generation.delphes_writer import read_metadata
from softdisplaced.samples import build_samples
from softdisplaced.processing.skim import process_files, read_skim


def _skim(cfg, mode, n, tmp_path: Path):
    cfg = {**cfg, "generation": {**cfg["generation"], "fast": {**cfg["generation"]["fast"],
           "mediator_decay": {**cfg["generation"]["fast"]["mediator_decay"], "decay_mode": mode}}}}
    spec = build_samples(cfg)["bp4"]
    ev = tmp_path / mode / "bp4.root"
    ev.parent.mkdir(parents=True)
    generate_file(cfg, spec, 0, str(ev), n)
    assert read_metadata(ev) == {"signal_decay_mode": mode}
    out = tmp_path / mode / "soft_emu" / "bp4.h5"
    analyses = {"soft_emu": build_analyses(cfg)["soft_emu"]}
    process_files([str(ev)], [str(out)], analyses=analyses, sample=spec, efficiency=cfg["efficiency"],
                  processing=cfg["processing"], chunk=0, config_hash="test", package_versions={"test": "1"})
    assert read_skim(out)["attrs"]["signal_decay_mode"] == mode
    return out


def test_forced_emu_and_democratic_give_the_same_emu_yield(tmp_path, default_config):
    skims = {"democratic": _skim(default_config, "democratic", 60_000, tmp_path),
             "emu": _skim(default_config, "emu", 30_000, tmp_path)}
    tot = {}
    for mode, sk in skims.items():
        rows = [r for r in y.fast_rows(default_config, [sk], [], [140.0], None) if r["stage"] == "pre_nn"]
        tot[mode] = (sum(r["yield"] for r in rows), math.sqrt(sum(r["stat_err"] ** 2 for r in rows)))
    (a, ea), (b, eb) = tot["democratic"], tot["emu"]
    assert a > 0 and b > 0
    assert abs(a - b) < 3.5 * math.hypot(ea, eb), tot
    # without the flavour factor the forced sample would be twice as large: excluded
    assert abs(a - 2 * b) > 3.5 * math.hypot(ea, 2 * eb), tot
