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


_P4_FIELDS = ("e", "px", "py", "pz")
_VERTEX_FIELDS = ("x", "y", "z", "t")


class ParticleTable:
    """``n_events x n_slots`` particle table with a fixed layout, filled slot by slot.

    Storage is event-major, the layout of the awkward record, so no transpose is
    needed at the end: 4-momenta and vertices live in ``(n_events, n_slots, 4)``
    blocks while filling (one contiguous 32-byte write per event and slot), split
    into contiguous fields at the end; the other fields are ``(n_events, n_slots)``
    arrays.
    Values constant for a slot (a scalar pid, status, mass, mother ...) go into a
    one-row template that is broadcast once per field.
    """

    def __init__(self, n_events: int, n_slots: int):
        self.n, self.k = n_events, n_slots
        self._p4 = np.zeros((n_events, n_slots, 4))
        self._vertex = np.zeros((n_events, n_slots, 4))
        scalar_fields = [f for f in PARTICLE_FIELDS if f not in _P4_FIELDS + _VERTEX_FIELDS]
        self._template = {f: (np.full(n_slots, -1, dtype=np.int32) if f in ("m1", "m2", "d1", "d2")
                              else np.zeros(n_slots, dtype=np.int32 if f in INT_FIELDS else np.float64))
                          for f in scalar_fields}
        self._columns: dict[str, dict[int, np.ndarray]] = {f: {} for f in scalar_fields}
        self._built: dict[str, np.ndarray] | None = None

    def _check_open(self) -> None:
        if self._built is not None:
            raise RuntimeError("ParticleTable: already built")

    def _array(self, field: str, slot: int, value) -> np.ndarray | None:
        """``value`` as an (n,) array, or None for a scalar."""
        self._check_open()
        if np.ndim(value) == 0:
            return None
        value = np.asarray(value)
        if value.shape != (self.n,):
            raise ValueError(f"ParticleTable: {field} of slot {slot} has shape {value.shape}, expected ({self.n},)")
        return value

    def _put(self, field: str, slot: int, value) -> None:
        arr = self._array(field, slot, value)
        if arr is None:
            self._template[field][slot] = value
            self._columns[field].pop(slot, None)
        else:
            self._columns[field][slot] = arr

    def set(self, slot: int, *, pid, status, p4=None, mass=None, vertex=None, charge=0.0,
            m1=-1, m2=-1, d1=-1, d2=-1):
        self._put("pid", slot, pid)
        self._put("status", slot, status)
        if p4 is not None:
            p4 = np.asarray(p4, dtype=np.float64)
            if p4.shape != (self.n, 4):
                raise ValueError(f"ParticleTable: p4 of slot {slot} has shape {p4.shape}, expected ({self.n}, 4)")
            self._check_open()
            self._p4[:, slot, :] = p4
        if mass is not None:
            self._put("mass", slot, mass)
        if vertex is not None:
            for i, f in enumerate(_VERTEX_FIELDS):
                arr = self._array(f, slot, vertex[i])
                self._vertex[:, slot, i] = vertex[i] if arr is None else arr
        for f, v in (("charge", charge), ("m1", m1), ("m2", m2), ("d1", d1), ("d2", d2)):
            self._put(f, slot, v)

    def build(self) -> dict[str, np.ndarray]:
        """The ``(n_events, n_slots)`` array of every field (the table is closed afterwards)."""
        if self._built is None:
            out = {}
            for f, tmpl in self._template.items():
                cols = self._columns[f]
                if not cols:
                    arr = np.tile(tmpl, (self.n, 1))
                else:
                    arr = np.empty((self.n, self.k), dtype=tmpl.dtype)
                    if len(cols) < self.k:  # slots without a column take the template value
                        arr[:] = tmpl
                    for slot, v in cols.items():
                        arr[:, slot] = v
                out[f] = arr
            for block, names in ((self._p4, _P4_FIELDS), (self._vertex, _VERTEX_FIELDS)):
                for i, f in enumerate(names):  # contiguous fields: consumers read them many times
                    out[f] = np.ascontiguousarray(block[:, :, i])
            self._p4 = self._vertex = None
            self._built = out
            self._columns = {}
        return self._built


def _with_extra(n: int, k: int, cols: Mapping[str, np.ndarray], extra: Mapping[str, np.ndarray]):
    """Flat particle columns and offsets: each event's ``k`` fixed slots followed by its extra particles.

    ``extra`` holds flat arrays of every ``PARTICLE_FIELDS`` entry plus ``event`` (the event index of
    each extra particle, non-decreasing). Indices (m1, d1, ...) of the fixed slots are unchanged."""
    ev = np.asarray(extra["event"], dtype=np.int64)
    if len(ev) > 1 and np.any(np.diff(ev) < 0):
        raise ValueError("build_events: extra particles must be sorted by event")
    n_extra = np.bincount(ev, minlength=n)
    counts = k + n_extra
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    fixed_pos = (offsets[:-1, None] + np.arange(k)[None, :]).reshape(-1)
    starts = np.cumsum(n_extra) - n_extra
    extra_pos = offsets[ev] + k + (np.arange(len(ev)) - starts[ev])
    flat = {}
    for f in PARTICLE_FIELDS:
        out = np.empty(int(offsets[-1]), dtype=cols[f].dtype)
        out[fixed_pos] = cols[f].reshape(-1)
        out[extra_pos] = np.asarray(extra[f]).astype(cols[f].dtype, copy=False)
        flat[f] = out
    return flat, offsets


def build_events(table: ParticleTable, weight, mediators: Mapping[str, np.ndarray] | None = None,
                 extra: Mapping[str, np.ndarray] | None = None) -> ak.Array:
    """Awkward events ``{particles: var * record, weight, [mediators: var * record]}``.

    ``extra``: optional variable-multiplicity particles appended to each event after the table's
    fixed slots (flat arrays of every field of ``PARTICLE_FIELDS`` and ``event``, sorted by event)."""
    n, k = table.n, table.k
    cols = table.build()
    if extra is None:
        flat = {f: cols[f].reshape(-1) for f in PARTICLE_FIELDS}
        offsets = ak.index.Index64(np.arange(n + 1, dtype=np.int64) * k)
    else:
        flat, off = _with_extra(n, k, cols, extra)
        offsets = ak.index.Index64(off)
    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(flat[f]) for f in PARTICLE_FIELDS],
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
