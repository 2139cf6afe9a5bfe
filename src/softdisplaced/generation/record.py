"""Build the generic truth event record (docs/contracts.md) from fixed-layout arrays."""

from __future__ import annotations

from typing import Mapping

import awkward as ak
import numpy as np

__all__ = ["PARTICLE_FIELDS", "MEDIATOR_FIELDS", "build_events", "ParticleTable"]

PARTICLE_FIELDS = ("pid", "status", "px", "py", "pz", "e", "mass", "x", "y", "z", "t",
                   "m1", "m2", "d1", "d2", "charge")
INT_FIELDS = {"pid", "status", "m1", "m2", "d1", "d2"}
MEDIATOR_FIELDS = ("pid", "px", "py", "pz", "e", "mass", "x", "y", "z", "t",
                   "decay_x", "decay_y", "decay_z", "proper_ct_mm")


class ParticleTable:
    """``n_events x n_slots`` particle table with a fixed layout, filled column-wise."""

    def __init__(self, n_events: int, n_slots: int):
        self.n, self.k = n_events, n_slots
        # slot-major storage (k, n): filling one slot is a contiguous write
        self.cols = {f: (np.full((n_slots, n_events), -1, dtype=np.int32) if f in ("m1", "m2", "d1", "d2")
                         else np.zeros((n_slots, n_events), dtype=np.int32 if f in INT_FIELDS else np.float64))
                     for f in PARTICLE_FIELDS}

    def set(self, slot: int, *, pid, status, p4=None, mass=None, vertex=None, charge=0.0,
            m1=-1, m2=-1, d1=-1, d2=-1):
        c = self.cols
        c["pid"][slot] = pid
        c["status"][slot] = status
        if p4 is not None:
            c["e"][slot] = p4[:, 0]
            c["px"][slot] = p4[:, 1]
            c["py"][slot] = p4[:, 2]
            c["pz"][slot] = p4[:, 3]
        if mass is not None:
            c["mass"][slot] = mass
        if vertex is not None:
            for i, f in enumerate("xyzt"):
                if not (np.isscalar(vertex[i]) and vertex[i] == 0):
                    c[f][slot] = vertex[i]
        if not (np.isscalar(charge) and charge == 0):
            c["charge"][slot] = charge
        for f, v in (("m1", m1), ("m2", m2), ("d1", d1), ("d2", d2)):
            if not (np.isscalar(v) and v == -1):
                c[f][slot] = v


def build_events(table: ParticleTable, weight, mediators: Mapping[str, np.ndarray] | None = None) -> ak.Array:
    """Awkward events ``{particles: var * record, weight, [mediators: var * record]}``."""
    n, k = table.n, table.k
    offsets = ak.index.Index64(np.arange(n + 1, dtype=np.int64) * k)
    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(table.cols[f].T).reshape(-1)) for f in PARTICLE_FIELDS],
        list(PARTICLE_FIELDS))
    fields = {"particles": ak.contents.ListOffsetArray(offsets, content),
              "weight": ak.contents.NumpyArray(np.broadcast_to(np.asarray(weight, dtype=np.float64), (n,)).copy())}
    if mediators is not None:
        km = np.asarray(mediators["px"]).shape[1]
        moff = ak.index.Index64(np.arange(n + 1, dtype=np.int64) * km)
        mcont = ak.contents.RecordArray(
            [ak.contents.NumpyArray(np.ascontiguousarray(mediators[f]).reshape(-1)) for f in MEDIATOR_FIELDS],
            list(MEDIATOR_FIELDS))
        fields["mediators"] = ak.contents.ListOffsetArray(moff, mcont)
    return ak.Array(ak.contents.RecordArray(list(fields.values()), list(fields.keys()), length=n))
