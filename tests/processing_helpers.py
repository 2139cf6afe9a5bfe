"""Shared helpers of the processing tests: run the processor on hand-made files."""

from __future__ import annotations

import copy
from pathlib import Path

from softdisplaced.processing.analyses import build_analyses
from softdisplaced.processing.skim import process_files, read_skim


def run_analyses(cfg, files, tmp_path, names=("soft_emu",), processing=None, sample=None, chunk=0, tag="p"):
    """Process ``files`` with the analyses ``names`` of ``cfg``; return ``{name: read_skim(partial)}``."""
    analyses = build_analyses(cfg, only_enabled=False)
    analyses = {n: analyses[n] for n in names}
    pcfg = copy.deepcopy(cfg["processing"])
    pcfg.update(processing or {})
    outs = [Path(tmp_path) / tag / n / f"{chunk}.h5" for n in names]
    process_files([str(f) for f in files], [str(o) for o in outs], analyses=analyses,
                  sample=sample or {"name": "test", "cross_section_fb": 100.0},
                  efficiency=cfg["efficiency"], processing=pcfg, chunk=chunk, config_hash="test",
                  package_versions={"test": "1"})
    return {n: read_skim(o) for n, o in zip(names, outs)}, outs
