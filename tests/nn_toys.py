"""Toy skims in the contract layout for the NN tests."""

from __future__ import annotations

import copy

import h5py
import numpy as np

from softdisplaced.nn import FEATURES


def write_skim(path, sample, X, sr=None, m_c=None, dm=None, weight=None, weight_gen=None, extra=None):
    """A skim with the nine features ``X`` (columns in FEATURES order) and ``extra``: {name: column}."""
    X = np.asarray(X, dtype="float64").reshape(-1, len(FEATURES))
    n = len(X)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        ev = fh.create_group("events")
        for i, f in enumerate(FEATURES):
            ev.create_dataset(f, data=X[:, i], compression="gzip")
        for name, col in (extra or {}).items():
            ev.create_dataset(name, data=np.asarray(col, "float64"))
        ev.create_dataset("sr", data=np.zeros(n, "int8") if sr is None else np.asarray(sr, "int8"))
        ev.create_dataset("weight_d0eff", data=np.ones(n) if weight is None else weight)
        if weight_gen is not None:
            ev.create_dataset("weight_gen", data=np.asarray(weight_gen, "float64"))
        ev.create_dataset("event_number", data=np.arange(n, dtype="int64"))
        fh.attrs["sample"] = sample
        fh.attrs["analysis"] = "soft_emu_loose"
        if m_c is not None:
            fh.attrs["m_c"] = float(m_c)
            fh.attrs["dm"] = float(dm)
    return path


def gauss(rng, n, shift=0.0, shift_cols=(0, 1, 2)):
    X = rng.normal(size=(n, len(FEATURES)))
    X[:, list(shift_cols)] += shift
    return X


def settings(networks, **training):
    t = {"epochs": 6, "batch_size": 128, "learning_rate": 0.01, "patience": 3, "validation_fraction": 0.2,
         "test_fraction": 0.2, "balance": "downsample", "n_signal_subsets": 1, "subset_mode": "average",
         "max_train_per_class": None}
    t.update(training)
    return copy.deepcopy({"seed": 7, "nn": {"cut": 0.9, "features": list(FEATURES), "training": t,
                                            "model": {"hidden_units": [18, 18], "activation": "relu",
                                                      "dropout": 0.2},
                                            "networks": networks},
                          "benchmarks": [{"id": 1, "m_c": 324, "dm": 20, "ctau_cm": 2, "br_ll": 0.025},
                                         {"id": 2, "m_c": 220, "dm": 20, "ctau_cm": 3, "br_ll": 0.014}]})
