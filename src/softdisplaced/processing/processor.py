"""The coffea processor: Delphes-format events -> per-analysis skim columns and cutflows.

One pass over a chunk evaluates every configured analysis (the file is read
once; in coffea's virtual mode only the branches used are read, exactly those
of ``executors.preload_branches``).  Object and event selection run on the CPU
with numpy on the flat branch contents (after the object selection, on the
events with a lepton pair only); the NN features (``softdisplaced.processing.features``)
run on the CPU or, with ``processing.gpu``, on a CUDA GPU (cupy, via
``ak.to_backend(..., "cuda")``).

``process()`` returns ``{"records": [record]}``: coffea adds lists by
concatenation, so the output holds one record per work item, which
``softdisplaced.processing.skim`` sorts by (file index, first entry) and concatenates;
the result therefore does not depend on the executor or on the order in which
work items finish.

Cut names of the cutflow (only those configured appear, in this order):
``all``, ``finite_inputs`` (with ``processing.non_finite: drop`` only), ``lepton_pair`` (exactly one electron and one muon passing the object
selection for e-mu; exactly two electrons (muons) and no muon (electron) for ee
(mumu)), ``opposite_charge``, ``pt``, ``delta_r``, ``jet_veto``, ``d0_window``.

Non-finite inputs (``processing.non_finite``): every floating-point branch the processor reads
(lepton and jet kinematics, d0, isolation, MET, HT, the generator weight) is checked where the
events enter.  ``error`` (default): a NaN or infinity raises :class:`NonFiniteInputError` naming
the file, the entries, each branch and its count.  ``drop``: the events with one are removed in
the cutflow step ``finite_inputs``; ``sum_gen_weights`` (and the weighted ``all`` step) then sums
the finite generator weights only.

Leptons' production vertices (analyses with ``lepton_vertex_max_mm``, generator record needed): the
vertex of each lepton's generator particle (``Electron/Muon.Particle`` -> ``Particle.X, Y, Z``).  Both
leptons must come from inside ``rxy < ..., |z| < ...``, the volume where the displaced-lepton
efficiencies hold: ``weight_d0eff`` is 0 otherwise.  Files without a generator record (a user's Delphes
file without ``CtauProper``) get no requirement, with a warning; this project's files must have it complete.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import awkward as ak
import numpy as np
from coffea import processor

from softdisplaced.generation import delphes_writer
from softdisplaced.processing.analyses import CHANNEL_CODES
from softdisplaced.processing.efficiency import d0_weight, load_tables
from softdisplaced.processing.features import SKIM_FEATURES, STUDY_HT_FEATURES, STUDY_JET_FEATURES, compute_features
from softdisplaced.processing.skim import NON_FINITE_STEP

__all__ = ["SoftDisplacedProcessor", "needs_jet_neutrals", "needs_ht_unique", "resolve_gpu", "GPUUnavailableError",
           "NonFiniteInputError", "CHANNEL_CODES",
           "MEDIATOR_PID", "NON_FINITE_STEP", "cut_names"]

log = logging.getLogger(__name__)

MEDIATOR_PID = 1000024
MEDIATOR_PIDS = delphes_writer.MEDIATOR_PIDS  # charginos and stop R-hadrons (generation.stops)
MEDIATOR_STATUS = 22  # the mediators of the hard process (Pythia status code)
ELECTRON, MUON = 11, 13

# the branches the processor reads (``executors.preload_branches`` lists them for coffea and the benchmark)
LEPTON_FIELDS = ("PT", "Eta", "Phi", "Charge", "D0")  # + IsolationVar when an analysis uses isolation
JET_FIELDS = ("PT", "Eta", "Phi")
PARTICLE_FIELDS = ("PID", "Status", "CtauProper")  # mediator truth, when the files have CtauProper
# the leptons' production vertices (analyses with ``lepton_vertex_max_mm``): Electron/Muon.Particle, the
# index of the lepton's generator particle in its event's Particle list, and that particle's X, Y, Z (mm)
LEPTON_TRUTH_FIELD = "Particle"
VERTEX_FIELDS = ("X", "Y", "Z")
FLAT_BRANCHES = {"weight": ("Event", "Weight", np.float64), "number": ("Event", "Number", np.int64),
                 "met": ("MissingET", "MET", np.float64), "met_phi": ("MissingET", "Phi", np.float64),
                 "ht": ("ScalarHT", "HT", np.float64)}  # Chunk attribute: (collection, field, dtype)
# the study card's ScalarHT (feature YDelpObj_photon_veto): this project's files write it beside HT; a real Delphes
# file has it in HT (ScalarHT of the UniqueObjectFinder objects) and no such field. Read only when needed.
HT_UNIQUE_FIELD = "HTUnique"
HT_UNIQUE_BRANCH = f"ScalarHT/ScalarHT.{HT_UNIQUE_FIELD}"

try:  # keep ConfigError semantics for the CLI (exit code 2, clear message)
    from softdisplaced.config import ConfigError as _Base
except ImportError:  # pragma: no cover
    _Base = ValueError


class GPUUnavailableError(_Base):
    """processing.gpu = on but no usable CUDA device / cupy."""


class NonFiniteInputError(ValueError):
    """NaN or infinite values in branches the analysis reads (``processing.non_finite: error``)."""



def gpu_available() -> tuple[bool, str]:
    try:
        import cupy
    except Exception as exc:  # ImportError or a broken CUDA install
        return False, f"cupy cannot be imported ({exc.__class__.__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"no CUDA runtime/device ({exc.__class__.__name__}: {exc})"
    if n < 1:
        return False, "cupy sees no CUDA device"
    return True, f"{n} CUDA device(s)"


def resolve_gpu(mode) -> bool:
    """``processing.gpu`` -> use the GPU?  ``on`` without a GPU raises, ``auto`` falls back with a log line."""
    mode = {False: "off", True: "on", None: "off"}.get(mode, mode)
    if mode == "off":
        return False
    ok, why = gpu_available()
    if mode == "on":
        if not ok:
            raise GPUUnavailableError(
                f"processing.gpu = on, but no usable CUDA GPU: {why}. "
                "Install cupy for your CUDA version (pip install cupy-cuda12x) on a machine with a GPU, "
                "or set processing.gpu to auto/off")
        return True
    if mode == "auto":
        if ok:
            log.info("processing.gpu = auto: NN features on the GPU (%s)", why)
        else:
            log.info("processing.gpu = auto: no usable GPU (%s); NN features on the CPU", why)
        return ok
    raise GPUUnavailableError(f"processing.gpu: '{mode}' is not one of off, on, auto")


# ----------------------------------------------------------------- flat helpers
@dataclass
class Objects:
    """Flat numpy view of a jagged collection: per-event ``offsets`` (starting at 0) and the
    contents of the fields read (``values[field]``, one entry per object)."""

    offsets: np.ndarray
    values: dict

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @cached_property
    def row(self) -> np.ndarray:
        """Event (row) index of every object."""
        return np.repeat(np.arange(len(self.offsets) - 1, dtype=np.int64), self.counts)

    def take_rows(self, rows: np.ndarray, fields) -> "Objects":
        """The objects of the events ``rows`` (sorted row indices), packed, with the ``fields`` given."""
        counts = self.counts[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # flat index of every object of those rows: its row's start in the collection + its rank in the row
        objs = np.repeat(self.offsets[rows] - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
        return Objects(offsets, {f: self.values[f][objs] for f in fields})

    def jagged(self, field: str) -> ak.Array:
        """``field`` as a packed jagged awkward Array."""
        return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(self.offsets),
                                                    ak.contents.NumpyArray(self.values[field])))


def read_objects(collection, fields) -> Objects:
    """Materialise only ``fields`` of a NanoEvents collection (their branches and the collection's counts)."""
    layout = ak.to_layout(ak.materialize(collection[list(fields)]))
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = layout.to_ListOffsetArray64(True)
    off = np.asarray(layout.offsets.data, dtype=np.int64)
    values = {f: np.asarray(layout.content.content(f).data)[off[0]:off[-1]] for f in fields}
    return Objects(off - off[0], values)


def read_flat(array, dtype) -> np.ndarray:
    """A per-event (singleton) branch as a numpy array of ``dtype``."""
    return np.asarray(ak.to_numpy(ak.materialize(array)), dtype=dtype)


def first_two(offsets: np.ndarray, mask: np.ndarray):
    """Per event: number of objects passing ``mask`` and the flat indices of the first and second
    of them (-1 if none); ``offsets``: per-event offsets of the objects."""
    selected = np.flatnonzero(mask)
    passed = np.zeros(len(mask) + 1, dtype=np.int64)  # objects passing before each object
    np.cumsum(mask, out=passed[1:])
    start = passed[offsets[:-1]]  # position in ``selected`` of each event's first selected object
    nsel = passed[offsets[1:]] - start
    padded = np.append(selected, [-1, -1])  # answers the events without a first / second object
    start = np.where(nsel > 0, start, len(selected))
    return nsel, padded[start], np.where(nsel > 1, padded[start + 1], -1)


def _order_by_pt(i1, i2, pt, both):
    """(leading, subleading) flat indices of the pairs (i1, i2) on the rows ``both``; else (i1, i2)."""
    swap = np.zeros(len(i1), dtype=bool)
    swap[both] = pt[i2[both]] > pt[i1[both]]
    return np.where(swap, i2, i1), np.where(swap, i1, i2)


def _gather(from_e, idx, e_values, mu_values):
    """``e_values[idx]`` where ``from_e``, else ``mu_values[idx]``."""
    out = np.empty(len(idx), dtype=np.result_type(e_values, mu_values))
    out[from_e] = e_values[idx[from_e]]
    out[~from_e] = mu_values[idx[~from_e]]
    return out


def _dphi(a, b):
    return np.remainder(a - b + math.pi, 2 * math.pi) - math.pi


def _in_range(v, lo_hi):
    """lo < v < hi with the bounds cast to v's dtype (float32 branches compare in float32)."""
    lo, hi = lo_hi
    m = np.ones(v.shape, dtype=bool)
    if lo is not None:
        m &= v > v.dtype.type(lo)
    if hi is not None:
        m &= v < v.dtype.type(hi)
    return m


@dataclass
class Chunk:
    """The branches of one work item the processor uses, as numpy arrays."""

    n: int
    weight: np.ndarray
    number: np.ndarray
    leptons: dict  # {"e": Objects, "mu": Objects}
    jets: Objects
    met: np.ndarray
    met_phi: np.ndarray
    ht: np.ndarray
    mediator_ct: np.ndarray | None  # (n, 2) c*t of the two mediators (NaN if missing), None without truth
    ht_unique: np.ndarray | None = None  # the study card's ScalarHT (YDelpObj_photon_veto), None when not read

    def branches(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{branch name: (values, event index of each value or None for per-event branches)}`` of the
        floating-point branches read (the mediator truth, NaN where missing, excluded)."""
        out = {}
        for key, (c, f, _) in FLAT_BRANCHES.items():
            v = getattr(self, key)
            if v.dtype.kind == "f":
                out[f"{c}/{c}.{f}"] = (v, None)
        if self.ht_unique is not None:
            out[HT_UNIQUE_BRANCH] = (self.ht_unique, None)
        for coll, d in (("Electron", self.leptons["e"]), ("Muon", self.leptons["mu"]), ("Jet", self.jets)):
            for f, v in d.values.items():
                if v.dtype.kind == "f":
                    out[f"{coll}/{coll}.{f}"] = (v, d.row)
        return out

    def non_finite(self) -> tuple[np.ndarray, dict[str, int]]:
        """(per event: all its values finite?, ``{branch: number of non-finite values}`` of the bad ones)."""
        ok = np.ones(self.n, dtype=bool)
        counts = {}
        for name, (v, row) in self.branches().items():
            bad = ~np.isfinite(v)
            if bad.any():
                counts[name] = int(bad.sum())
                ok[np.flatnonzero(bad) if row is None else row[bad]] = False
        return ok, counts

    def select(self, rows: np.ndarray) -> "Chunk":
        """The events ``rows`` (sorted indices) only."""
        return Chunk(n=len(rows), weight=self.weight[rows], number=self.number[rows],
                     leptons={k: d.take_rows(rows, list(d.values)) for k, d in self.leptons.items()},
                     jets=self.jets.take_rows(rows, list(self.jets.values)), met=self.met[rows],
                     met_phi=self.met_phi[rows], ht=self.ht[rows],
                     mediator_ct=None if self.mediator_ct is None else self.mediator_ct[rows],
                     ht_unique=None if self.ht_unique is None else self.ht_unique[rows])


def _mediator_ct(particles) -> np.ndarray:
    """(n, 2) proper decay lengths of the first two mediators (|PID| in MEDIATOR_PIDS, status MEDIATOR_STATUS),
    NaN where missing."""
    p = read_objects(particles, PARTICLE_FIELDS)
    mask = np.isin(np.abs(p.values["PID"]), MEDIATOR_PIDS) & (p.values["Status"] == MEDIATOR_STATUS)
    _, p1, p2 = first_two(p.offsets, mask)
    ctau = np.append(p.values["CtauProper"].astype(np.float64), np.nan)  # index -1 -> NaN
    return np.stack([ctau[p1], ctau[p2]], axis=1)


def _add_lepton_vertices(leptons: Mapping[str, Objects], particles, where: str) -> None:
    """Add ``VertexRxy`` and ``VertexAbsZ`` (mm, float64) to the lepton values: the transverse distance from the
    beam line and |z| of the production vertex of each lepton's generator particle (``Electron/Muon.Particle``)."""
    p = read_objects(particles, VERTEX_FIELDS)
    for fl, d in leptons.items():
        idx = d.values[LEPTON_TRUTH_FIELD].astype(np.int64)
        bad = (idx < 0) | (idx >= p.counts[d.row])
        if bad.any():
            raise ValueError(f"{where}: {int(bad.sum())} {'Electron' if fl == 'e' else 'Muon'}.Particle indices "
                             "outside their event's Particle list (needed for the leptons' production vertices)")
        flat = p.offsets[d.row] + idx
        x, y, z = (p.values[c][flat].astype(np.float64) for c in VERTEX_FIELDS)
        d.values["VertexRxy"], d.values["VertexAbsZ"] = np.hypot(x, y), np.abs(z)


def _vertex_inside(spec, p) -> np.ndarray:
    """Both leptons of each pair produced inside ``spec["lepton_vertex_max_mm"]`` (rxy and |z| below the limits)."""
    lim = spec["lepton_vertex_max_mm"]
    return ((p["vxy_y"] < lim["rxy"]) & (p["vz_y"] < lim["abs_z"])
            & (p["vxy_x"] < lim["rxy"]) & (p["vz_x"] < lim["abs_z"]))


def _pair(ch, e_sel, mu_sel, leptons):
    """Flat indices of the pair of each candidate event: (y from electrons?, y index, x from electrons?,
    x index); y = electron (e-mu) / leading lepton, x = muon (e-mu) / subleading lepton."""
    (_, e1, e2), (_, m1, m2) = e_sel, mu_sel
    is_ee, is_mm = ch == CHANNEL_CODES["ee"], ch == CHANNEL_CODES["mumu"]
    e_lead, e_sub = _order_by_pt(e1, e2, leptons["e"].values["PT"], is_ee)
    m_lead, m_sub = _order_by_pt(m1, m2, leptons["mu"].values["PT"], is_mm)
    y = np.where(is_ee, e_lead, np.where(is_mm, m_lead, e1))
    x = np.where(is_ee, e_sub, np.where(is_mm, m_sub, m1))
    return ~is_mm, y, is_ee, x


def cut_names(spec: Mapping, non_finite: str = "error") -> list[str]:
    """The cutflow of analysis ``spec``, in order: ``all``, ``finite_inputs`` (``processing.non_finite:
    drop``) and the cuts ``SoftDisplacedProcessor._cuts`` applies (checked on every chunk); also the
    cutflow of a skim to which no events contributed."""
    names = ["all"] + ([NON_FINITE_STEP] if non_finite == "drop" else []) + ["lepton_pair"]
    if spec.get("opposite_charge", True):
        names.append("opposite_charge")
    names.append("pt")
    if spec.get("dr_min") is not None:
        names.append("delta_r")
    if spec.get("jet_veto"):
        names.append("jet_veto")
    if spec.get("d0_window_mm") is not None:
        names.append("d0_window")
    return names


def needs_jet_neutrals(analyses: Mapping[str, Mapping], objects: Mapping | None = None) -> bool:
    """Whether a feature of ``analyses`` uses the study's jets (objects.jets.photon_veto or a feature
    ``*_photon_veto``), which need Jet.NNeutrals (the executors then require and preload that branch)."""
    specs = [objects or {}] + [a.get("objects") or {} for a in analyses.values()]
    twins = set(STUDY_JET_FEATURES.values())
    return (any(((o or {}).get("jets") or {}).get("photon_veto") for o in specs)
            or any(twins & set(a.get("features", SKIM_FEATURES)) for a in analyses.values()))


def needs_ht_unique(analyses: Mapping[str, Mapping]) -> bool:
    """Whether a feature of ``analyses`` uses the study card's HT (``YDelpObj_photon_veto``: ScalarHT.HTUnique,
    which the executors then preload where every file has it)."""
    twins = set(STUDY_HT_FEATURES.values())
    return any(twins & set(a.get("features", SKIM_FEATURES)) for a in analyses.values())


class SoftDisplacedProcessor(processor.ProcessorABC):
    """Evaluates ``analyses`` (``{name: spec}`` from build_analyses) on Delphes-format events.

    ``file_chunks`` maps each input file name to (file index, workflow chunk number).
    """

    def __init__(self, analyses: Mapping[str, Mapping], efficiency: Mapping, objects: Mapping | None = None,
                 spectra: Mapping | None = None, file_chunks: Mapping[str, tuple[int, int]] | None = None,
                 gpu: bool = False, non_finite: str = "error"):
        self.analyses = {k: dict(v) for k, v in analyses.items()}
        self.efficiency_cfg = dict(efficiency)
        self.objects = dict(objects or {})
        self.spectra = dict(spectra or {"abs_eta_max": 2.4, "pt_min": 10.0})
        self.file_chunks = dict(file_chunks or {})
        self.gpu = bool(gpu)
        if non_finite not in ("error", "drop"):
            raise ValueError(f"processing.non_finite: '{non_finite}' is not one of error, drop")
        self.non_finite = non_finite
        # loaded here, not per work item: coffea hands every work item its own (unpickled) copy
        needs_tables = any(a.get("d0_efficiency", True) for a in self.analyses.values())
        self.tables = load_tables(self.efficiency_cfg) if needs_tables else None

    def needs_lepton_vertex(self) -> bool:
        """Whether an analysis restricts the leptons' production vertices (``lepton_vertex_max_mm``)."""
        return any(a.get("lepton_vertex_max_mm") for a in self.analyses.values())

    def needs_isolation(self) -> bool:
        return any(a.get("isolation") for a in self.analyses.values())

    # ------------------------------------------------------------------ process
    def _read(self, events) -> Chunk:
        """Materialise exactly the branches the analyses use (see ``executors.preload_branches``)."""
        lepton_fields = LEPTON_FIELDS + (("IsolationVar",) if self.needs_isolation() else ())
        truth = "Particle" in events.fields and "CtauProper" in events.Particle.fields
        flat = {k: read_flat(events[c][f], dtype) for k, (c, f, dtype) in FLAT_BRANCHES.items()}
        where = events.metadata.get("filename", "input file")
        vertex = self.needs_lepton_vertex() and truth   # this project's files: the generator record is complete
        if vertex and not (set(VERTEX_FIELDS) <= set(events.Particle.fields)
                           and all(LEPTON_TRUTH_FIELD in events[c].fields for c in ("Electron", "Muon"))):
            raise ValueError(f"{where}: an analysis with lepton_vertex_max_mm needs the generator record (Particle "
                             "X, Y, Z; Electron/Muon.Particle), which this file's generator record lacks")
        if self.needs_lepton_vertex() and not truth:
            log.warning("%s: no generator record (Particle with CtauProper): lepton_vertex_max_mm of %s not applied",
                        where, ", ".join(n for n, a in self.analyses.items() if a.get("lepton_vertex_max_mm")))
        lepton_fields += (LEPTON_TRUTH_FIELD,) if vertex else ()
        leptons = {"e": read_objects(events.Electron, lepton_fields), "mu": read_objects(events.Muon, lepton_fields)}
        if vertex:
            _add_lepton_vertices(leptons, events.Particle, where)
        return Chunk(n=len(events), **flat, leptons=leptons,
                     jets=read_objects(events.Jet, JET_FIELDS + self._jet_extra(events)),
                     mediator_ct=_mediator_ct(events.Particle) if truth else None,
                     ht_unique=self._ht_unique(events, flat["ht"], truth, where) if self.needs_ht_unique() else None)

    def needs_ht_unique(self) -> bool:
        return needs_ht_unique(self.analyses)

    @staticmethod
    def _ht_unique(events, ht, this_project: bool, where: str) -> np.ndarray:
        """The study card's ScalarHT: ScalarHT.HTUnique of this project's files; for a real Delphes file (no
        HTUnique and no Particle.CtauProper, which only this project writes) its ScalarHT.HT, which Delphes
        sums over the UniqueObjectFinder's photons, electrons, muons and jets (the study card's definition)."""
        if HT_UNIQUE_FIELD in events.ScalarHT.fields:
            return read_flat(events.ScalarHT[HT_UNIQUE_FIELD], np.float64)
        if this_project:
            raise ValueError(f"{where}: the feature {', '.join(STUDY_HT_FEATURES.values())} needs the study card's "
                             f"HT (branch {HT_UNIQUE_BRANCH}), which this project's event file "
                             "lacks (written before it existed): generate the file again")
        return ht

    def needs_jet_neutrals(self) -> bool:
        return needs_jet_neutrals(self.analyses, self.objects)

    def _jet_extra(self, events) -> tuple:
        """Jet.NNeutrals when needed and in the file (else compute_features names the missing branch)."""
        return ("NNeutrals",) if self.needs_jet_neutrals() and "NNeutrals" in events.Jet.fields else ()

    def _spectra(self, ev: Chunk) -> dict:
        """Every electron / muon in the spectra acceptance (no isolation or pairing), with its event weight."""
        out = {}
        for fl, name in (("e", "electron"), ("mu", "muon")):
            d = ev.leptons[fl]
            pt = d.values["PT"]
            m = (np.abs(d.values["Eta"]) < self.spectra["abs_eta_max"]) & (pt > self.spectra["pt_min"])
            out[f"{name}_pt"] = pt[m].astype(np.float64)
            out[f"{name}_weight"] = np.repeat(ev.weight, d.counts)[m]
        return out

    def _finite(self, ev: Chunk, where: str) -> tuple[Chunk, list]:
        """The events with finite inputs and the cutflow steps before ``lepton_pair`` (see the module
        docstring); raises NonFiniteInputError in ``error`` mode."""
        ok, counts = ev.non_finite()
        w_all = float(ev.weight[np.isfinite(ev.weight)].sum())
        head = [("all", ev.n, w_all)]
        if counts and self.non_finite != "drop":
            detail = ", ".join(f"{b}: {n}" for b, n in counts.items())
            raise NonFiniteInputError(
                f"{where}: non-finite values (NaN or inf) in {int((~ok).sum())} of {ev.n} events, per branch "
                f"{detail}; fix the input or set processing.non_finite: drop to remove these events in the "
                f"cutflow step '{NON_FINITE_STEP}'")
        if self.non_finite == "drop":
            if counts:
                log.warning("%s: %d of %d events dropped for non-finite inputs (%s)", where, int((~ok).sum()), ev.n,
                            ", ".join(f"{b}: {n}" for b, n in counts.items()))
                ev = ev.select(np.flatnonzero(ok))
            head.append((NON_FINITE_STEP, ev.n, float(ev.weight.sum())))
        return ev, head

    def process(self, events):
        meta = events.metadata
        filename = meta.get("filename", "")
        file_index, chunk = self.file_chunks.get(filename, (0, 0))
        ev = self._read(events)
        start, stop = int(meta.get("entrystart", 0)), int(meta.get("entrystop", ev.n))
        n_read = ev.n
        ev, head = self._finite(ev, f"{filename} (entries {start}-{stop})")
        record = {"file": filename, "file_index": int(file_index), "chunk": int(chunk),
                  "entrystart": start, "entrystop": stop,
                  "n_events": int(n_read), "sum_gen_weights": head[0][2], "spectra": self._spectra(ev),
                  "truth": ev.mediator_ct is not None, "analyses": {}}
        for name, spec in self.analyses.items():
            record["analyses"][name] = self._analysis(spec, ev, chunk, head)
        return {"records": [record]}

    @staticmethod
    def _object_selection(spec, fl, d: Objects):
        """Objects passing |eta|, preselection pT and (when configured) isolation."""
        v = d.values
        m = (np.abs(v["Eta"]) < v["Eta"].dtype.type(spec["abs_eta_max"])) & \
            (v["PT"] > v["PT"].dtype.type(spec["preselection_pt"]))
        if spec.get("isolation"):
            name = {"e": "electron", "mu": "muon"}[fl]
            m &= v["IsolationVar"] < v["IsolationVar"].dtype.type(spec["isolation"][name])
        return m

    @staticmethod
    def _channel(channels, ne, nm):
        """Channel code per event (-1: no lepton pair of a configured channel)."""
        ch = np.full(len(ne), -1, dtype=np.int8)
        if "emu" in channels:
            ch[(ne == 1) & (nm == 1)] = CHANNEL_CODES["emu"]
        if "ee" in channels:
            ch[(ne == 2) & (nm == 0)] = CHANNEL_CODES["ee"]
        if "mumu" in channels:
            ch[(nm == 2) & (ne == 0)] = CHANNEL_CODES["mumu"]
        return ch

    @staticmethod
    def _jet_veto(jv, jets: Objects, cand, eta_y, phi_y, eta_x, phi_x):
        """Candidates with a jet of pT > jv.pt_min within Delta R < jv.dr of either lepton."""
        j = jets.take_rows(cand, JET_FIELDS)
        jeta = j.values["Eta"].astype(np.float64)
        jphi = j.values["Phi"].astype(np.float64)
        close = np.zeros(len(jeta), dtype=bool)
        for eta_l, phi_l in ((eta_y, phi_y), (eta_x, phi_x)):
            d = np.sqrt((jeta - eta_l[j.row]) ** 2 + _dphi(jphi, phi_l[j.row].astype(np.float64)) ** 2)
            close |= d < jv["dr"]
        bad = close & (j.values["PT"] > jv["pt_min"])
        return np.bincount(j.row[bad], minlength=len(cand)) > 0

    @staticmethod
    def _signal_regions(spec, ch, pt_y, pt_x, ad0_y, ad0_x):
        """SR label per event: the first matching region in list order (0: none)."""
        sr = np.zeros(len(ch), dtype=np.int8)
        for c, regions in spec["signal_regions"]["regions"].items():
            in_ch = ch == CHANNEL_CODES[c]
            for r in regions:
                m = in_ch & (sr == 0) & _in_range(ad0_x, r["d0_x_mm"]) & _in_range(ad0_y, r["d0_y_mm"])
                for key, v, op in (("pt_x_min", pt_x, np.greater), ("pt_x_max", pt_x, np.less),
                                   ("pt_y_min", pt_y, np.greater), ("pt_y_max", pt_y, np.less)):
                    if r.get(key) is not None:
                        m &= op(v, v.dtype.type(r[key]))
                sr[m] = int(r["label"])
        return sr

    def _candidates(self, spec, ev: Chunk):
        """(rows, channel codes, pair values) of the events with a lepton pair of a configured channel.

        Pair values: ``{pt,eta,phi,q,d0}_{y,x}`` (branch dtypes) and ``y_e``, ``x_e`` (lepton from the
        electrons?); y = electron (e-mu) / leading lepton, x = muon (e-mu) / subleading lepton."""
        sel = {fl: first_two(d.offsets, self._object_selection(spec, fl, d)) for fl, d in ev.leptons.items()}
        ch = self._channel(spec["channels"], sel["e"][0], sel["mu"][0])
        cand = np.flatnonzero(ch >= 0)
        ch = ch[cand]
        y_e, y_idx, x_e, x_idx = _pair(ch, [a[cand] for a in sel["e"]], [a[cand] for a in sel["mu"]], ev.leptons)
        pair = {"y_e": y_e, "x_e": x_e}
        fields = [("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("q", "Charge"), ("d0", "D0")]
        fields += [("vxy", "VertexRxy"), ("vz", "VertexAbsZ")] if "VertexRxy" in ev.leptons["e"].values else []
        for key, field in fields:
            e, mu = ev.leptons["e"].values[field], ev.leptons["mu"].values[field]
            pair[f"{key}_y"], pair[f"{key}_x"] = _gather(y_e, y_idx, e, mu), _gather(x_e, x_idx, e, mu)
        return cand, ch, pair

    def _cuts(self, spec, ev: Chunk, cand, ch, p) -> list:
        """``[(cut name, candidates passing it and every earlier cut)]`` from ``lepton_pair`` on."""
        cut = np.ones(len(cand), dtype=bool)
        steps = [("lepton_pair", cut.copy())]
        if spec.get("opposite_charge", True):
            cut &= (p["q_y"] * p["q_x"]) < 0
            steps.append(("opposite_charge", cut.copy()))
        thr_y = np.zeros(len(cand))
        thr_x = np.zeros(len(cand))
        for c in spec["channels"]:
            code = CHANNEL_CODES[c]
            thr_y[ch == code], thr_x[ch == code] = spec["pt_min"][c]
        cut &= (p["pt_y"] > thr_y.astype(p["pt_y"].dtype)) & (p["pt_x"] > thr_x.astype(p["pt_x"].dtype))
        steps.append(("pt", cut.copy()))
        if spec.get("dr_min") is not None:
            dr = np.sqrt((p["eta_y"].astype(np.float64) - p["eta_x"]) ** 2
                         + _dphi(p["phi_y"].astype(np.float64), p["phi_x"]) ** 2)
            cut &= dr > spec["dr_min"]
            steps.append(("delta_r", cut.copy()))
        if spec.get("jet_veto"):
            cut &= ~self._jet_veto(spec["jet_veto"], ev.jets, cand, p["eta_y"], p["phi_y"], p["eta_x"], p["phi_x"])
            steps.append(("jet_veto", cut.copy()))
        if spec.get("d0_window_mm") is not None:
            w = spec["d0_window_mm"]
            cut &= _in_range(np.abs(p["d0_y"]), w) & _in_range(np.abs(p["d0_x"]), w)
            steps.append(("d0_window", cut.copy()))
        return steps

    def _columns(self, spec, ev: Chunk, chunk, rows, ch, p) -> dict:
        """Skim columns (before the features) of the selected events ``rows`` (``ch``, ``p``: theirs)."""
        cols = {f"{k}_{side}": p[f"{k}_{side}"].astype(np.float64)
                for side in ("y", "x") for k in ("pt", "eta", "phi", "d0")}
        cols.update(sr=self._signal_regions(spec, ch, p["pt_y"], p["pt_x"], np.abs(p["d0_y"]), np.abs(p["d0_x"])),
                    channel=ch, weight_gen=ev.weight[rows], event_number=ev.number[rows],
                    chunk=np.full(len(rows), chunk, dtype=np.int32))
        if spec.get("d0_efficiency", True):
            fl_y = np.where(p["y_e"], ELECTRON, MUON).astype(np.int8)
            fl_x = np.where(p["x_e"], ELECTRON, MUON).astype(np.int8)
            cols["weight_d0eff"] = np.asarray(d0_weight(self.tables, fl_y, p["d0_y"], fl_x, p["d0_x"]),
                                              dtype=np.float64)
        else:
            cols["weight_d0eff"] = np.ones(len(rows))
        if spec.get("lepton_vertex_max_mm") and "vxy_y" in p:   # the efficiencies hold inside this volume
            cols["weight_d0eff"] = cols["weight_d0eff"] * _vertex_inside(spec, p)
        if ev.mediator_ct is not None:
            cols["mediator_ct_mm"] = ev.mediator_ct[rows]
        return cols

    def _analysis(self, spec, ev: Chunk, chunk, head=None):
        """Cutflow and skim columns of one analysis.  Everything after the object selection runs on
        the candidate events only (those with a lepton pair of a configured channel).  ``head``: the
        cutflow steps before ``lepton_pair`` as ``(name, raw, weighted)`` (default: ``all`` = ``ev``)."""
        head = head or [("all", ev.n, float(ev.weight.sum()))]
        cand, ch, pair = self._candidates(spec, ev)
        steps = self._cuts(spec, ev, cand, ch, pair)
        w_cand = ev.weight[cand]
        names = [h[0] for h in head] + [name for name, _ in steps]
        expected = cut_names(spec, "drop" if NON_FINITE_STEP in names else "error")
        if names != expected:
            raise RuntimeError(f"internal error: cutflow {names} differs from cut_names {expected}")
        cutflow = {"names": names,
                   "raw": [int(h[1]) for h in head] + [int(m.sum()) for _, m in steps],
                   "weighted": [float(h[2]) for h in head] + [float(w_cand[m].sum()) for _, m in steps]}
        s = steps[-1][1]
        rows = cand[s]
        cols = self._columns(spec, ev, chunk, rows, ch[s], {k: v[s] for k, v in pair.items()})
        cols.update(self._features(spec, rows, cols, ev))
        return {"columns": cols, "cutflow": cutflow}

    def _features(self, spec, rows, cols, ev: Chunk):
        names = [f for f in SKIM_FEATURES if f in spec.get("features", SKIM_FEATURES)]
        if not names:
            return {}
        inputs = {k: cols[k] for k in ("pt_y", "eta_y", "phi_y", "pt_x", "eta_x", "phi_x")}
        inputs.update(met=ev.met[rows], met_phi=ev.met_phi[rows], ht=ev.ht[rows])
        if ev.ht_unique is not None:
            inputs["ht_unique"] = ev.ht_unique[rows]
        inputs = {k: ak.Array(np.asarray(v, dtype=np.float64)) for k, v in inputs.items()}
        jets = ev.jets.take_rows(rows, tuple(ev.jets.values))
        for key, field in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("nneutrals", "NNeutrals")):
            if field in jets.values:
                inputs[f"jet_{key}"] = jets.jagged(field)
        for fl, pre in (("e", "ele"), ("mu", "mu")):
            leptons = ev.leptons[fl].take_rows(rows, ("PT", "Eta", "Phi", "D0"))
            for key, field in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("d0", "D0")):
                inputs[f"{pre}_{key}"] = leptons.jagged(field)
        if self.gpu:
            inputs = {k: ak.to_backend(v, "cuda") for k, v in inputs.items()}
        out = compute_features(inputs, spec.get("objects") or self.objects, names)
        if self.gpu:
            import cupy

            out = {k: cupy.asnumpy(v) for k, v in out.items()}
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    def postprocess(self, accumulator):
        return accumulator
