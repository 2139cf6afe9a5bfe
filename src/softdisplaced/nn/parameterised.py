"""Parameterised network (spec section 7): model parameters as extra inputs.

The network sees the nine features plus the parameters listed in
``nn.networks.<name>.parameterised.parameters`` (``dm`` and optionally ``m_c``, GeV).
Signal events carry the true parameters of their sample.  Background events have no
parameters; each gets the parameters of a signal training event drawn at random
(with replacement, seeded), so the background parameter distribution equals the
signal one and the parameters alone carry no information about the class.
At evaluation the whole background test set is scored at one benchmark's
parameters, against that benchmark's signal.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

ALLOWED = ("dm", "m_c")


def check_parameters(names: Sequence[str]) -> list[str]:
    names = list(names)
    bad = [n for n in names if n not in ALLOWED]
    if bad or not names:
        raise ValueError(f"nn parameterised.parameters must be a non-empty subset of {ALLOWED}, got {names}")
    return names


def point_of(sample, names: Sequence[str]) -> np.ndarray:
    """Parameter vector of a signal sample (``SampleData`` or mapping with m_c, dm)."""
    get = (lambda k: sample.get(k)) if isinstance(sample, Mapping) else (lambda k: getattr(sample, k))
    vals = [get(n) for n in names]
    if any(v is None for v in vals):
        name = get("name") if not isinstance(sample, Mapping) else sample.get("name", "?")
        raise ValueError(f"sample '{name}' has no value for parameter(s) {list(names)}: "
                         "the skim needs attributes m_c/dm (or give the benchmark in settings)")
    return np.asarray(vals, dtype="float64")


def append(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Features with parameter columns: ``params`` is one point (k,) or one row per event (n, k)."""
    X = np.asarray(X, dtype="float64")
    p = np.asarray(params, dtype="float64")
    if p.ndim == 1:
        p = np.broadcast_to(p, (len(X), len(p)))
    if len(p) != len(X):
        raise ValueError(f"{len(p)} parameter rows for {len(X)} events")
    return np.concatenate([X, p], axis=1)


def draw_background(n: int, signal_params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Parameters for ``n`` background events, drawn from the signal rows ``signal_params`` (m, k)."""
    signal_params = np.asarray(signal_params, dtype="float64")
    if len(signal_params) == 0:
        raise ValueError("no signal events to draw background parameters from")
    return signal_params[rng.integers(0, len(signal_params), size=n)]
