"""Delphes-format ROOT writer (uproot).

``write(path, reco, truth, ...)`` writes tree ``Delphes`` with ``X_size``
counters and ``X/X.Field`` branches as real Delphes files have them, readable
by the stock ``coffea.nanoevents.DelphesSchema``:

* Electron, Muon: PT, Eta, Phi, T, Charge, D0, DZ, IsolationVar, Particle
  (index of the generator particle in the event's Particle list);
* Jet: PT, Eta, Phi, Mass, NNeutrals, NCharged;  MissingET: MET, Eta, Phi;
* ScalarHT: HT (all jets + isolated leptons) and HTUnique (the study card's ScalarHT: photons, stored leptons
  and the jets sharing no constituent with them; a real Delphes file has that sum in HT and no HTUnique);
* Particle: PID, Status, M1, M2, D1, D2, PT, Eta, Phi, Mass, Charge, X, Y, Z
  (mm), T (s), CtauProper (proper decay length c*t in mm of the
  mediators (|PID| in MEDIATOR_PIDS: charginos, stop R-hadrons), computed from their daughters' production vertex;
  0 for other particles);
* Event: Number, Weight, CrossSection (pb, Delphes convention).

The file is written through :func:`softdisplaced.atomic.atomic_path`.
"""

from __future__ import annotations

import os
from typing import Mapping

import awkward as ak
import numpy as np
import uproot

from softdisplaced.atomic import atomic_path
from softdisplaced.generation.detector import C_MM_PER_S
from softdisplaced.generation.kinematics import pt_eta_phi
from softdisplaced.generation.stops import STOP_RHADRON_IDS

import contextlib
import datetime
import hashlib
import uuid

# Reproducible ROOT output: uproot stamps every key with datetime.now() and the file with a
# random uuid1. Following the reproducible-builds convention, the stamp is SOURCE_DATE_EPOCH
# when set, else a fixed date, and the UUID derives from the file's content description, so
# the same configuration gives byte-identical event files (and thus stable input checksums
# in the skims' provenance).
_UPROOT_TIME_MODULES = ("uproot.writing._cascade", "uproot.writing._cascadetree",
                        "uproot.writing._cascadentuple", "uproot.writing.writable")
_FIXED_EPOCH = 1594166400  # 2020-07-08 00:00:00 UTC (arXiv 2007.03708)


def _reproducible_now() -> datetime.datetime:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", _FIXED_EPOCH))
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).replace(tzinfo=None)


class _FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D102
        return _reproducible_now()


@contextlib.contextmanager
def _reproducible_uproot():
    import importlib

    mods = [importlib.import_module(m) for m in _UPROOT_TIME_MODULES]
    saved = [m.datetime for m in mods]
    fake = type("datetime_module", (), {"datetime": _FixedDatetime, "timezone": datetime.timezone,
                                         "timedelta": datetime.timedelta})
    try:
        for m in mods:
            m.datetime = fake
        yield
    finally:
        for m, orig in zip(mods, saved):
            m.datetime = orig

__all__ = ["write", "particle_collection", "read_metadata", "MEDIATOR_PIDS", "METADATA_PREFIX"]

#: Key prefix of the generation metadata stored as TObjString beside the tree (e.g.
#: ``softdisplaced_signal_decay_mode``); files from elsewhere simply have none.
METADATA_PREFIX = "softdisplaced_"

#: charginos, and the stop R-hadrons of the long-lived top-squark model (generation.stops)
MEDIATOR_PIDS = (1000024,) + STOP_RHADRON_IDS
_COMPRESSION = {"lz4": lambda: uproot.LZ4(1), "zlib": lambda: uproot.ZLIB(1), "none": lambda: None}


def _jagged(counts, cols: Mapping[str, np.ndarray]) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    content = ak.contents.RecordArray([ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in cols.values()],
                                      list(cols.keys()), length=int(offsets[-1]))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))


def particle_collection(truth: ak.Array) -> ak.Array:
    """The Delphes ``Particle`` collection from the generic truth record."""
    parts = truth["particles"]
    counts = ak.to_numpy(ak.num(parts, axis=1)).astype(np.int64)
    flat = ak.flatten(parts, axis=1)

    def col(name, dtype=np.float64):
        return np.asarray(ak.to_numpy(flat[name]), dtype=dtype)

    f32 = np.float32
    # kinematics in float32 (the precision of the Delphes branches). Px, Py, Pz, E are not
    # written: DelphesSchema builds the 4-vector from PT, Eta, Phi, Mass (and drops E).
    px, py, pz, mass = (col(f, f32) for f in ("px", "py", "pz", "mass"))
    x, y, z, t = (col(f, f32) for f in ("x", "y", "z", "t"))
    pid, d1 = col("pid", np.int32), col("d1", np.int32)
    pt, eta, phi = pt_eta_phi(px, py, pz)
    # proper decay length of the mediators from the production vertex of their first daughter (float64)
    med = (d1 >= 0) & np.isin(np.abs(pid), MEDIATOR_PIDS)
    ctau = np.zeros(len(pid), dtype=f32)
    im = np.nonzero(med)[0]
    if len(im):
        ev_start = np.repeat(np.cumsum(counts) - counts, counts)
        idau = ev_start[im] + d1[im]
        g = {f: np.asarray(ak.to_numpy(flat[f]), dtype=np.float64) for f in ("x", "y", "z", "px", "py", "pz", "mass")}
        dist = np.sqrt(sum((g[c][idau] - g[c][im]) ** 2 for c in "xyz"))
        pmag = np.sqrt(sum(g[c][im] ** 2 for c in ("px", "py", "pz")))
        ctau[im] = np.where(pmag > 0, dist * g["mass"][im] / np.where(pmag > 0, pmag, 1.0), 0.0)
    cols = {
        "PID": pid, "Status": col("status", np.int32),
        "M1": col("m1", np.int32), "M2": col("m2", np.int32), "D1": d1, "D2": col("d2", np.int32),
        "Charge": col("charge", f32).astype(np.int32),
        "PT": pt, "Eta": eta, "Phi": phi, "Mass": mass,
        "X": x, "Y": y, "Z": z, "T": t / f32(C_MM_PER_S),
        "CtauProper": ctau,
    }
    return _jagged(counts, cols)


def write(path: str | os.PathLike, reco: Mapping[str, ak.Array], truth: ak.Array | None = None, *,
          cross_section_pb: float = 0.0, first_event_number: int = 0, write_particles: bool = True,
          compression: str = "lz4", basket_events: int = 100_000, metadata: Mapping[str, str] | None = None) -> str:
    """Write one Delphes-format file atomically; returns the path.

    ``reco``: the collections of :func:`softdisplaced.generation.detector.simulate`; ``truth``:
    the generator events (``particles``, ``weight``), or None (no Particle branch,
    unit weights); ``metadata``: strings stored as TObjString ``softdisplaced_<key>``
    (read back with :func:`read_metadata`)."""
    n = len(reco["MissingET"])
    weight = (np.asarray(ak.to_numpy(truth["weight"]), dtype=np.float32)
              if truth is not None and "weight" in ak.fields(truth) else np.ones(n, dtype=np.float32))
    ones = np.ones(n, dtype=np.int64)
    colls = {name: reco[name] for name in ("Electron", "Muon", "Jet", "MissingET", "ScalarHT")}
    if truth is not None and write_particles:
        colls["Particle"] = particle_collection(truth)
    colls["Event"] = _jagged(ones, {
        "Number": np.arange(first_event_number, first_event_number + n, dtype=np.int64),
        "Weight": weight, "CrossSection": np.full(n, cross_section_pb, dtype=np.float32)})
    for name, arr in colls.items():
        if len(arr) != n:
            raise ValueError(f"delphes_writer: collection {name} has {len(arr)} events, expected {n}")
    try:
        comp = _COMPRESSION[compression]()
    except KeyError:
        raise ValueError(f"delphes_writer: unknown compression '{compression}' (use {sorted(_COMPRESSION)})") from None
    digest = hashlib.sha256(f"{os.path.basename(str(path))}:{n}:{first_event_number}".encode()).digest()
    uuids = iter(uuid.UUID(bytes=hashlib.sha256(digest + bytes([i])).digest()[:16]) for i in range(256))
    with atomic_path(path, keep_name=True) as tmp, _reproducible_uproot():
        with uproot.recreate(tmp, compression=comp, uuid_function=lambda: next(uuids)) as fout:
            tree = fout.mktree("Delphes", {name: arr.type.content for name, arr in colls.items()},
                               counter_name=lambda c: c + "_size",
                               field_name=lambda outer, inner: f"{outer}/{outer}.{inner}")
            for start in range(0, max(n, 1), basket_events):
                stop = min(start + basket_events, n)
                tree.extend({name: arr[start:stop] for name, arr in colls.items()})
            for key, value in sorted((metadata or {}).items()):
                fout[METADATA_PREFIX + key] = str(value)
    return str(path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``softdisplaced_<key>`` strings of an event file (empty for files written elsewhere)."""
    with uproot.open(path) as f:
        return {k.split(";")[0][len(METADATA_PREFIX):]: str(f[k])
                for k in f.keys(cycle=False) if k.startswith(METADATA_PREFIX)}
