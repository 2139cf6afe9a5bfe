"""The original study's ntuples as a sample type (``../shared/reference/authors_ntuples``).

Each ``BP_<m0>_<dm>_<tag>.root`` holds trees ``varTree_SR1/2/3`` with the selected
events of each signal region: ``D0El_SRn``, ``D0Mu_SRn`` (mm), the nine NN features
suffixed ``_SRn`` and per-lepton d0-efficiency weights ``wtel<X>_SRn``,
``wtmu<X>_SRn`` (X = CMS: the HEPData tables, 0 beyond 20 mm; F: the tables with the
study's linear extension, i.e. the spec's efficiency model). The number of generated
events (2e6) is configuration (``samples.study_ntuples.n_generated``); the file for
each benchmark is ``limits.study_ntuples_files`` (default: ``nn.study_ntuples.files``). There is no truth record, so the
lifetime dependence of these samples is only available by interpolation between the
generated lifetimes (the study's approach).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

FEATURES = ("YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj",
            "Sphericity", "alphaT", "Spherocity")
SRS = (1, 2, 3)


def _filled(cfg: Mapping) -> dict:
    """The sections read here with the schema's defaults filled in (the schema is their one source)."""
    from softdisplaced.config import with_defaults

    return with_defaults({k: cfg.get(k) or {} for k in ("samples", "nn", "limits")})


def ntuple_dir(cfg: Mapping) -> Path:
    return Path(_filled(cfg)["samples"]["study_ntuples"]["dir"])


def n_generated(cfg: Mapping) -> int:
    return int(_filled(cfg)["samples"]["study_ntuples"]["n_generated"])


def file_map(cfg: Mapping) -> dict[int, str]:
    """benchmark id -> file name of its ntuple: ``limits.study_ntuples_files``, else ``nn.study_ntuples.files``."""
    return _file_map(_filled(cfg))


def _file_map(full: Mapping) -> dict[int, str]:
    mapping = full["limits"].get("study_ntuples_files") or full["nn"]["study_ntuples"]["files"]
    return {int(bid): stem if str(stem).endswith(".root") else f"{stem}.root" for bid, stem in mapping.items()}


def benchmark_files(cfg: Mapping, directory=None) -> dict[int, Path]:
    """benchmark id -> path of its ntuple (only those that exist)."""
    full = _filled(cfg)   # once: the directory and the file names
    d = Path(directory) if directory is not None else Path(full["samples"]["study_ntuples"]["dir"])
    return {bid: d / name for bid, name in _file_map(full).items() if (d / name).exists()}


def read(path, weight: str = "F") -> dict[int, dict[str, np.ndarray]]:
    """{sr: {'d0_e', 'd0_mu', 'weight_d0eff', 'weight_gen', <features>}} from one study ntuple."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: study ntuple not found")
    out = {}
    with uproot.open(path) as f:
        for sr in SRS:
            tname = f"varTree_SR{sr}"
            if tname not in f:
                raise ValueError(f"{path}: tree {tname} missing")
            t = f[tname]
            need = [f"D0El_SR{sr}", f"D0Mu_SR{sr}", f"wtel{weight}_SR{sr}", f"wtmu{weight}_SR{sr}"] + \
                [f"{x}_SR{sr}" for x in FEATURES]
            missing = [b for b in need if b not in t.keys()]
            if missing:
                raise ValueError(f"{path}: tree {tname} lacks branches {missing}")
            a = t.arrays(need, library="np")
            d = {x: np.asarray(a[f"{x}_SR{sr}"], float) for x in FEATURES}
            d["d0_e"] = np.asarray(a[f"D0El_SR{sr}"], float)
            d["d0_mu"] = np.asarray(a[f"D0Mu_SR{sr}"], float)
            d["weight_d0eff"] = np.asarray(a[f"wtel{weight}_SR{sr}"], float) * np.asarray(a[f"wtmu{weight}_SR{sr}"], float)
            d["weight_gen"] = np.ones_like(d["d0_e"])
            out[sr] = d
    return out


def sr_sums(path, weight: str = "F") -> dict[int, tuple[float, float, int]]:
    """{sr: (sum w, sum w^2, n_raw)} of the d0-efficiency weights."""
    out = {}
    for sr, d in read(path, weight).items():
        w = d["weight_d0eff"] * d["weight_gen"]
        out[sr] = (float(w.sum()), float((w ** 2).sum()), int(len(w)))
    return out
