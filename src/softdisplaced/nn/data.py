"""Training and evaluation data: HDF5 skims of this workflow or the study's own ntuples.

Every sample becomes a :class:`SampleData` with the nine features (in the order of
``nn.features``), the signal region (``sr``: 1, 2, 3, 0 = none), the d0-efficiency
weight and the model parameters (``m_c``, ``dm``) of a signal sample.

Study ntuples (``../shared/reference/authors_ntuples``): tree ``varTree`` holds every
selected event; ``varTree_SR<i>`` the events of SR i with ``_SR<i>``-suffixed branch
names and no event number.  The SR of a ``varTree`` row is found by matching the
nine feature values exactly (they are copies of the same numbers; every SR row has
exactly one partner, checked here).  The d0-efficiency weight is
``wtelCMS * wtmuCMS`` (the study's CMS-table weights); background.root has no
weights and no SR trees (weight 1, sr 0).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import FEATURES


@dataclasses.dataclass
class SampleData:
    name: str                  # sample name (skim attribute 'sample', or file stem)
    key: str                   # key in metrics.json: benchmark id ("1") or sample name
    kind: str                  # 'signal' | 'background'
    X: np.ndarray              # (n, n_features) float64
    sr: np.ndarray             # (n,) int8
    weight: np.ndarray         # (n,) d0-efficiency weight (1 where unknown)
    m_c: float | None = None
    dm: float | None = None
    source: str = ""
    gen_weight: np.ndarray | None = None   # (n,) generator weight (importance-sampled HF); None = unit

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, idx: np.ndarray) -> "SampleData":
        gw = None if self.gen_weight is None else self.gen_weight[idx]
        return dataclasses.replace(self, X=self.X[idx], sr=self.sr[idx], weight=self.weight[idx], gen_weight=gw)


def benchmark_of(name: str) -> int | None:
    """Benchmark id of a sample named ``bp<id>`` (the naming contract of softdisplaced.samples)."""
    m = re.fullmatch(r"bp(\d+)", name)
    return int(m.group(1)) if m else None


def metric_key(name: str) -> str:
    b = benchmark_of(name)
    return str(b) if b is not None else name


def _attr(attrs, key, default=None):
    if key not in attrs:
        return default
    v = attrs[key]
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def read_skim(path: str | Path, kind: str, features: Sequence[str] = FEATURES) -> SampleData:
    """Features, SR and weights of one skim ``results/skims/<analysis>/<sample>.h5``."""
    from softdisplaced.processing.skim import read_events

    path = Path(path)
    ev, attrs = read_events(path, list(features), optional=("sr", "weight_d0eff", "weight_gen"))
    X = np.stack([np.asarray(ev[f], dtype="float64") for f in features], axis=1) \
        if features else np.zeros((0, 0))
    n = len(X)
    sr = np.asarray(ev["sr"], dtype="int8") if "sr" in ev else np.zeros(n, "int8")
    w = np.asarray(ev["weight_d0eff"], dtype="float64") if "weight_d0eff" in ev else np.ones(n)
    gw = np.asarray(ev["weight_gen"], dtype="float64") if "weight_gen" in ev else None
    name = str(_attr(attrs, "sample", path.stem))
    m_c = _attr(attrs, "m_c")
    dm = _attr(attrs, "dm")
    X = X.reshape(n, len(features))
    return SampleData(name=name, key=metric_key(name), kind=kind, X=X, sr=sr, weight=w,
                      m_c=None if m_c is None else float(m_c), dm=None if dm is None else float(dm),
                      source=str(path), gen_weight=gw)


def read_skim_features(path: str | Path, features: Sequence[str] = FEATURES) -> tuple[np.ndarray, dict]:
    """(X, file attributes) of a skim, for scoring; X has one row per skim row."""
    d = read_skim(path, kind="other", features=features)
    return d.X, {"sample": d.name, "m_c": d.m_c, "dm": d.dm}


def read_study_ntuple(path: str | Path, kind: str, name: str, key: str,
                      features: Sequence[str] = FEATURES, m_c: float | None = None,
                      dm: float | None = None) -> SampleData:
    """One file of the study's ntuples (tree ``varTree``; SR from ``varTree_SR1/2/3``)."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: study ntuple not found")
    with uproot.open(path) as fh:
        if "varTree" not in fh:
            raise ValueError(f"{path}: no tree 'varTree'")
        tree = fh["varTree"]
        missing = [f for f in features if f not in tree.keys()]
        if missing:
            raise ValueError(f"{path}: varTree lacks branch(es) {missing}")
        arr = tree.arrays(list(features) + [b for b in ("wtelCMS", "wtmuCMS") if b in tree.keys()],
                          library="np")
        X = np.stack([np.asarray(arr[f], dtype="float64") for f in features], axis=1)
        n = len(X)
        w = (np.asarray(arr["wtelCMS"], "float64") * np.asarray(arr["wtmuCMS"], "float64")
             if "wtelCMS" in arr else np.ones(n))
        sr = np.zeros(n, dtype="int8")
        index = None
        for i in (1, 2, 3):
            tname = f"varTree_SR{i}"
            if tname not in fh:
                continue
            if index is None:
                index = {}
                for row, vals in enumerate(map(tuple, X)):
                    index.setdefault(vals, []).append(row)
            t = fh[tname]
            sa = t.arrays([f"{f}_SR{i}" for f in features], library="np")
            S = np.stack([np.asarray(sa[f"{f}_SR{i}"], dtype="float64") for f in features], axis=1)
            for vals in map(tuple, S):
                rows = index.get(vals)
                if not rows:
                    raise ValueError(f"{path}: an event of {tname} has no partner in varTree")
                for r in rows:
                    if sr[r] == 0:
                        sr[r] = i
                        break
                else:
                    raise ValueError(f"{path}: more {tname} events than identical varTree rows")
    return SampleData(name=name, key=key, kind=kind, X=X, sr=sr, weight=w, m_c=m_c, dm=dm, source=str(path))


def study_benchmark_files(nn_cfg: Mapping) -> dict[int, str]:
    """benchmark id -> file of the study's ntuple (``nn.study_ntuples.files``, schema default)."""
    from softdisplaced.validation.study_ntuples import file_map

    return file_map({"nn": nn_cfg})


def benchmark_params(settings: Mapping, bid: int) -> tuple[float | None, float | None]:
    for b in settings.get("benchmarks", []) or []:
        if int(b["id"]) == int(bid):
            return float(b["m_c"]), float(b["dm"])
    return None, None


def load_study(settings: Mapping, ncfg: Mapping, features: Sequence[str]) -> tuple[list, list, list]:
    """(training signals, backgrounds, evaluation-only signals) from the study's ntuples."""
    nn_cfg = settings.get("nn", {})
    sdir = Path(settings.get("samples", {}).get("study_ntuples", {}).get(
        "dir", "../shared/reference/authors_ntuples"))
    files = study_benchmark_files(nn_cfg)
    bkg_file = nn_cfg.get("study_ntuples", {}).get("background_file", "background.root")
    train_ids = [int(b) for b in ncfg.get("signal", [1])]
    eval_ids = [int(b) for b in ncfg.get("evaluate") or sorted(files)]
    sig, ev = [], []
    for bid in dict.fromkeys(train_ids + eval_ids):
        if bid not in files:
            raise ValueError(f"nn.study_ntuples.files: no study ntuple for benchmark {bid} "
                             f"(known: {sorted(files)})")
        m_c, dm = benchmark_params(settings, bid)
        d = read_study_ntuple(sdir / files[bid], "signal", name=f"bp{bid}", key=str(bid),
                              features=features, m_c=m_c, dm=dm)
        (sig if bid in train_ids else ev).append(d)
    bkg = [read_study_ntuple(sdir / bkg_file, "background", name="hf", key="hf", features=features)]
    return sig, bkg, ev


def study_input_files(settings: Mapping, ncfg: Mapping) -> list[Path]:
    """The ntuple files a study_ntuples network reads (for provenance / rule inputs)."""
    nn_cfg = settings.get("nn", {})
    sdir = Path(settings.get("samples", {}).get("study_ntuples", {}).get(
        "dir", "../shared/reference/authors_ntuples"))
    files = study_benchmark_files(nn_cfg)
    ids = [int(b) for b in list(ncfg.get("signal", [1])) + list(ncfg.get("evaluate") or sorted(files))]
    out = [sdir / files[b] for b in dict.fromkeys(ids)]
    out.append(sdir / nn_cfg.get("study_ntuples", {}).get("background_file", "background.root"))
    return out
