"""HepMC (2 or 3, ASCII; any format ``pyhepmc.open`` recognises) -> truth event record.

Every particle of the file is kept, in the file's order; mother / daughter indices
come from the production / end vertices (``m1``/``m2`` = first / last incoming particle
of the production vertex, ``d1``/``d2`` = first / last outgoing particle of the end
vertex; -1 if none). The production vertex position (``x, y, z, t``) is converted to
mm (``t`` in mm/c) from the event's length unit, momenta to GeV. HepMC status codes
map to the truth convention: 1 -> 1 (final state), |PID| = 1000024 -> 22 (mediator),
anything else -> 2. Mediators (|PID| = 1000024) with an end vertex fill the
``mediators`` record; their proper decay length is ``c*t = |decay - production| * m / |p|``.
The event weight is the first HepMC weight (1 if none). One file is one chunk.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Mapping

import awkward as ak
import numpy as np

__all__ = ["read_hepmc", "event_to_arrays", "generate_chunk", "MEDIATOR_ID"]

log = logging.getLogger(__name__)

MEDIATOR_ID = 1000024

_FIELDS = ("pid", "status", "px", "py", "pz", "e", "mass", "x", "y", "z", "t", "m1", "m2", "d1", "d2", "charge")


@functools.lru_cache(maxsize=1)
def _particle_data():
    import pythia8mc  # Pythia's particle table: charges of every PDG id it knows

    return pythia8mc.Pythia("", False).particleData


def _charges(pids: np.ndarray) -> np.ndarray:
    """Electric charge (integer units, 0 for ids Pythia does not know) of PDG ids."""
    uniq, inv = np.unique(pids, return_inverse=True)
    pd = _particle_data()
    out = np.array([int(round(pd.charge(int(i)))) if pd.isParticle(int(i)) else 0 for i in uniq], np.int32)
    return out[inv]


def event_to_arrays(evt) -> tuple[dict, dict, float]:
    """One ``pyhepmc.GenEvent`` -> (particle field arrays, mediator field arrays, weight)."""
    import pyhepmc

    to_mm = 10.0 if evt.length_unit == pyhepmc.Units.CM else 1.0
    to_gev = 1e-3 if evt.momentum_unit == pyhepmc.Units.MEV else 1.0
    npy = evt.numpy
    P = npy.particles
    n = len(P.id)
    pid = np.asarray(P.pid, np.int32)
    status = np.asarray(P.status, np.int32)
    px, py, pz, e = (np.asarray(a, float) * to_gev for a in (P.px, P.py, P.pz, P.e))
    m2 = e * e - px * px - py * py - pz * pz
    mass = np.where(np.asarray(P.is_generated_mass_set), np.asarray(P.generated_mass, float) * to_gev,
                    np.sqrt(np.clip(m2, 0, None)))
    idx = {int(pid_): i for i, pid_ in enumerate(P.id)}  # HepMC particle id -> position
    pos = np.zeros((n, 4))
    m1 = np.full(n, -1, np.int64)
    mm2 = np.full(n, -1, np.int64)
    d1 = np.full(n, -1, np.int64)
    d2 = np.full(n, -1, np.int64)
    end_pos = np.full((n, 4), np.nan)
    for v in evt.vertices:
        p4 = v.position
        vpos = np.array([p4.x, p4.y, p4.z, p4.t]) * to_mm
        ins = [idx[p.id] for p in v.particles_in]
        outs = [idx[p.id] for p in v.particles_out]
        if outs:
            oa = np.asarray(outs)
            pos[oa] = vpos
            if ins:
                m1[oa], mm2[oa] = min(ins), max(ins)
        if ins:
            ia = np.asarray(ins)
            end_pos[ia] = vpos
            if outs:
                d1[ia], d2[ia] = min(outs), max(outs)
    # particles without a production vertex attached inherit nothing: (0, 0, 0, 0)
    is_med = np.abs(pid) == MEDIATOR_ID
    tstatus = np.where(status == 1, 1, np.where(is_med, 22, 2)).astype(np.int32)
    parts = dict(pid=pid, status=tstatus, px=px, py=py, pz=pz, e=e, mass=mass,
                 x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], t=pos[:, 3],
                 m1=m1.astype(np.int32), m2=mm2.astype(np.int32), d1=d1.astype(np.int32),
                 d2=d2.astype(np.int32), charge=_charges(pid))
    # mediators: last copy (decays into something that is not itself a mediator)
    dpid = np.where(d1 >= 0, np.abs(pid[np.clip(d1, 0, None)]), 0)
    sel = is_med & ~np.isnan(end_pos[:, 0]) & (dpid != MEDIATOR_ID)
    pabs = np.sqrt(px * px + py * py + pz * pz)
    flight = np.linalg.norm(end_pos[:, :3] - pos[:, :3], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ct = np.where(pabs > 0, flight * mass / pabs, 0.0)
    med = dict(pid=pid[sel], px=px[sel], py=py[sel], pz=pz[sel], e=e[sel], mass=mass[sel],
               x=pos[sel, 0], y=pos[sel, 1], z=pos[sel, 2], t=pos[sel, 3],
               decay_x=end_pos[sel, 0], decay_y=end_pos[sel, 1], decay_z=end_pos[sel, 2],
               proper_ct_mm=ct[sel])
    w = list(evt.weights)
    return parts, med, float(w[0]) if w else 1.0


def read_hepmc(path: str | os.PathLike, n_events: int | None = None, skip: int = 0) -> ak.Array:
    """Read up to ``n_events`` events (all if None) of a HepMC file into the truth event record."""
    import pyhepmc

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: HepMC file does not exist")
    parts, meds, weights = [], [], []
    try:
        with pyhepmc.open(str(path)) as f:
            for i, evt in enumerate(f):
                if i < skip:
                    continue
                if n_events is not None and n_events > 0 and len(weights) >= n_events:
                    break
                p, m, w = event_to_arrays(evt)
                parts.append(p)
                meds.append(m)
                weights.append(w)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as HepMC: {exc}") from exc
    if not weights:
        raise ValueError(f"{path}: no HepMC events read")
    pc = np.array([len(p["pid"]) for p in parts])
    mc = np.array([len(m["pid"]) for m in meds])
    particles = ak.unflatten(ak.zip({k: np.concatenate([p[k] for p in parts]) for k in _FIELDS}), pc)
    mediators = ak.unflatten(ak.zip({k: np.concatenate([m[k] for m in meds]) for k in meds[0]}), mc)
    return ak.zip({"particles": particles, "weight": np.asarray(weights, float), "mediators": mediators},
                  depth_limit=1)


def generate_chunk(sample: Mapping, settings: Mapping | None, rng: np.random.Generator, n_events: int | None,
                   chunk: int = 0) -> ak.Array:
    """Chunk ``chunk`` of a HepMC sample = its ``files[chunk]`` read into the truth record (``rng`` unused:
    reading is deterministic). ``n_events`` <= 0 or None: every event."""
    files = list(sample.get("files") or [])
    if not 0 <= int(chunk) < len(files):
        raise ValueError(f"sample {sample.get('name')}: chunk {chunk} out of range ({len(files)} HepMC files)")
    return read_hepmc(files[int(chunk)], n_events if n_events and n_events > 0 else None)
