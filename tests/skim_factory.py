"""Write small contract-conformant HDF5 skims (docs/contracts.md) and NN score files for tests.

Usage::

    from skim_factory import write_skim, write_scores, toy_signal_events
    write_skim(path, events={...}, attrs={...})   # missing columns are filled with defaults

Every dataset of group ``events`` listed in the contract is written (float64 unless noted),
plus group ``spectra`` and the file attributes.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

FEATURES = ("YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj", "Sphericity", "alphaT",
            "Spherocity")
LEPTON_COLUMNS = ("pt_e", "eta_e", "phi_e", "d0_e", "pt_mu", "eta_mu", "phi_mu", "d0_mu")


def write_skim(path, events: dict | None = None, attrs: dict | None = None, spectra: dict | None = None,
               n: int | None = None, rng=None) -> Path:
    """A skim with ``n`` rows (or the length of the given columns); unspecified columns get plausible values."""
    rng = rng or np.random.default_rng(0)
    events = dict(events or {})
    if n is None:
        n = len(next(iter(events.values()))) if events else 0
    cols = {}
    for f in FEATURES:
        cols[f] = events.pop(f, rng.uniform(0, 1, n))
    defaults = {"pt_e": rng.uniform(20, 60, n), "eta_e": rng.uniform(-2.4, 2.4, n), "phi_e": rng.uniform(-3, 3, n),
                "d0_e": rng.uniform(0.2, 20, n), "pt_mu": rng.uniform(20, 60, n), "eta_mu": rng.uniform(-2.4, 2.4, n),
                "phi_mu": rng.uniform(-3, 3, n), "d0_mu": rng.uniform(0.2, 20, n)}
    for c in LEPTON_COLUMNS:
        cols[c] = events.pop(c, defaults[c])
    cols["sr"] = np.asarray(events.pop("sr", rng.integers(1, 4, n)), dtype=np.int8)
    cols["weight_d0eff"] = events.pop("weight_d0eff", np.ones(n))
    cols["weight_gen"] = events.pop("weight_gen", np.ones(n))
    cols["event_number"] = np.asarray(events.pop("event_number", np.arange(n)), dtype=np.int64)
    cols["chunk"] = np.asarray(events.pop("chunk", np.zeros(n)), dtype=np.int32)
    if "mediator_ct_mm" in events:
        cols["mediator_ct_mm"] = np.asarray(events.pop("mediator_ct_mm"), float).reshape(n, 2)
    cols.update(events)
    a = {"n_events_processed": n, "sum_gen_weights": float(n), "cross_section_fb": 903.0, "analysis": "soft_emu",
         "sample": "bp4", "config_hash": "test", "package_versions": json.dumps({}), "input_checksums": json.dumps({}),
         "skipped_files": json.dumps([]), "layout_version": 1}
    a.update(attrs or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        for k, v in cols.items():
            v = np.asarray(v)
            g.create_dataset(k, data=v if v.dtype.kind in "iu" else v.astype(float), compression="gzip")
        sp = f.create_group("spectra")
        spectra = spectra or {}
        for lep in ("electron", "muon"):
            pt = np.asarray(spectra.get(f"{lep}_pt", np.zeros(0)), float)
            sp.create_dataset(f"{lep}_pt", data=pt)
            sp.create_dataset(f"{lep}_weight", data=np.asarray(spectra.get(f"{lep}_weight", np.ones(len(pt))), float))
        for k, v in a.items():
            f.attrs[k] = v
    return path


def write_scores(path, scores, network: str = "study") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("score", data=np.asarray(scores, np.float32))
        f.attrs["network"] = network
        f.attrs["config_hash"] = "test"
    return path


def toy_mediator_events(n_gen: int, ctau_cm: float, rng, r_min_mm: float = 0.3, r_max_mm: float = 8.0,
                        sr_edges_mm=(0.8, 2.0), bg_range=(0.3, 5.0)):
    """Toy mediator pairs: exponential proper decay lengths, beta*gamma from a log-normal (peak ~1, clipped to
    ``bg_range``; spec: mostly 0.2 < beta*gamma < 5), transverse
    decay radius r = beta*gamma*sin(theta)*c*t; an event is selected when both radii lie in [r_min, r_max]
    (SR 1/2/3 from the smaller radius and ``sr_edges_mm``). Returns (ct_mm (n_sel, 2), sr (n_sel,), n_gen)."""
    ct = rng.exponential(ctau_cm * 10.0, size=(n_gen, 2))
    bg = np.clip(rng.lognormal(mean=0.0, sigma=0.6, size=(n_gen, 2)), *bg_range)
    cos_t = rng.uniform(-0.9, 0.9, size=(n_gen, 2))
    r = bg * np.sqrt(1 - cos_t ** 2) * ct
    sel = np.all((r > r_min_mm) & (r < r_max_mm), axis=1)
    rmin = r.min(axis=1)
    sr = np.where(rmin > sr_edges_mm[1], 3, np.where(rmin > sr_edges_mm[0], 2, 1))
    return ct[sel], sr[sel].astype(np.int8), n_gen
