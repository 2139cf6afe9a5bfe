"""``softdisplaced evaluate``: NN scores of skims into companion files, with NumPy.

The network is evaluated from its exported weights (``mlp.json``, :mod:`.mlp`), so
scoring needs no TensorFlow: one ``softdisplaced evaluate`` call scores every sample
of a network in well under a second per skim.

Output ``results/nn/<network>/scores/<analysis>/<sample>.h5``: dataset ``score``
(float32, one entry per skim row, same order), attributes ``network``,
``config_hash``, ``sample``, ``skim`` (path), ``skim_sha256``, ``n_nonfinite``.
The skim itself is only read.  Events with a non-finite feature get score NaN
(they fail any ``score >= cut``) and are counted in ``n_nonfinite``.

Parameterised networks: ``score`` is evaluated at the sample's own parameters
(signal skims with ``m_c``/``dm`` attributes, or ``sample_params`` in the settings),
else at the network's nominal point (attribute ``parameter_point``); group
``score_at`` holds one dataset per configured parameter point (keys of
``model_info.json: points``), for scoring background at every benchmark hypothesis.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import atomic
from ..config import config_hash
from ..provenance import file_sha256
from . import parameterised as par
from . import mlp
from .data import read_skim_features

log = logging.getLogger(__name__)


def _scores(model: mlp.MLP, X, point=None):
    out = np.full(len(X), np.nan, dtype="float32")
    ok = np.isfinite(X).all(axis=1)
    Xin = X[ok] if point is None else par.append(X[ok], point)
    out[ok] = model.predict(Xin)
    return out, int((~ok).sum())


def read_scores(path: str | Path, n: int | None = None) -> np.ndarray:
    """The ``score`` dataset of a score file (float64), the one reader every stage uses; ``n``: the
    number of rows of the skim it belongs to (checked: scores are row-aligned with their skim)."""
    import h5py

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: score file not found")
    try:
        with h5py.File(path, "r") as fh:
            s = np.asarray(fh["score"][...], dtype=float) if "score" in fh else None
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 score file ({exc})") from exc
    if s is None:
        raise ValueError(f"{path}: no dataset 'score'")
    if n is not None and len(s) != n:
        raise ValueError(f"{path}: {len(s)} scores for {n} skim events (not row-aligned with its skim)")
    return s


def read_score_attributes(path: str | Path) -> dict:
    """The attributes of a score file (``network``, ``sample``, ``skim``, ...), strings decoded."""
    import h5py

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: score file not found")
    try:
        with h5py.File(path, "r") as fh:
            attrs = dict(fh.attrs)
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 score file ({exc})") from exc
    return {k: v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
            for k, v in attrs.items()}


def load_network(network: str, model_dir: str | Path) -> tuple[mlp.MLP, dict]:
    """(the exported network, model_info.json) of a trained network."""
    model_dir = Path(model_dir)
    info_path = model_dir / "model_info.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{info_path}: missing (train network {network} first)")
    info = json.loads(info_path.read_text())
    if info.get("network") != network:
        raise ValueError(f"{info_path}: model of network {info.get('network')!r}, not {network!r}")
    return mlp.load(model_dir / "mlp.json"), info


def evaluate(settings: Mapping, network: str, model_dir: str | Path, skim: str | Path, output: str | Path,
             sample: str | None = None, loaded: tuple[mlp.MLP, dict] | None = None) -> dict:
    """Score one skim into ``output``; ``loaded`` (from :func:`load_network`) avoids re-reading the model."""
    model, info = loaded or load_network(network, model_dir)
    pnames = info.get("parameters") or []
    columns = list(info["features"]) + list(pnames)
    if model.features is not None and model.features != columns:
        raise ValueError(f"{model.source}: the network's inputs {model.features} differ from the features "
                         f"{columns} of its model_info.json (files of two different trainings)")
    X, attrs = read_skim_features(skim, info["features"])
    sample = sample or attrs["sample"]
    extra = {}
    point_attr = None
    if pnames:
        override = (settings.get("sample_params") or {}).get(sample)
        src = override if override else attrs
        if all(src.get(p) is not None for p in pnames):
            point = np.array([float(src[p]) for p in pnames])
        else:
            point = np.array([float(info["nominal"][p]) for p in pnames])
        point_attr = dict(zip(pnames, point.tolist()))
        score, n_bad = _scores(model, X, point)
        for key, pt in (info.get("points") or {}).items():
            extra[key] = _scores(model, X, np.array([float(pt[p]) for p in pnames]))[0]
    else:
        score, n_bad = _scores(model, X)
    if n_bad:
        log.warning("%s: %d events with non-finite NN features get score NaN", skim, n_bad)
    import h5py

    with atomic.atomic_path(output) as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("score", data=score, dtype="float32")
            if extra:
                g = fh.create_group("score_at")
                for key, s in extra.items():
                    g.create_dataset(str(key), data=s, dtype="float32")
            fh.attrs["network"] = network
            fh.attrs["config_hash"] = config_hash(settings)
            fh.attrs["model_config_hash"] = info.get("config_hash", "")
            fh.attrs["sample"] = sample
            fh.attrs["skim"] = str(skim)
            fh.attrs["skim_sha256"] = file_sha256(skim)
            fh.attrs["n_nonfinite"] = n_bad
            if point_attr is not None:
                fh.attrs["parameter_point"] = json.dumps(point_attr, sort_keys=True)
    return {"n": int(len(score)), "n_nonfinite": n_bad, "output": str(output)}
