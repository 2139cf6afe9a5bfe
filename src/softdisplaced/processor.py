"""The coffea processor: Delphes-format events -> per-analysis skim columns and cutflows.

One pass over a chunk evaluates every configured analysis (the file is read
once; in coffea's virtual mode only the branches used are read).  Object and
event selection run on the CPU with numpy on the flat branch contents; the NN
features (``softdisplaced.features``) run on the CPU or, with
``processing.gpu``, on a CUDA GPU (cupy, via ``ak.to_backend(..., "cuda")``).

``process()`` returns ``{"records": [record]}``: coffea adds lists by
concatenation, so the output holds one record per work item, which
``softdisplaced.skim`` sorts by (file index, first entry) and concatenates;
the result therefore does not depend on the executor or on the order in which
work items finish.

Cut names of the cutflow (only those configured appear, in this order):
``all``, ``lepton_pair`` (exactly one electron and one muon passing the object
selection for e-mu; exactly two electrons (muons) and no muon (electron) for ee
(mumu)), ``opposite_charge``, ``pt``, ``delta_r``, ``jet_veto``, ``d0_window``.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping

import awkward as ak
import numpy as np
from coffea import processor

from .efficiency import d0_weight, load_tables
from .features import FEATURES, compute_features

__all__ = ["SoftDisplacedProcessor", "resolve_gpu", "GPUUnavailableError", "CHANNEL_CODES", "MEDIATOR_PID"]

log = logging.getLogger(__name__)

CHANNEL_CODES = {"emu": 0, "ee": 1, "mumu": 2}
MEDIATOR_PID = 1000024
ELECTRON, MUON = 11, 13

try:  # keep ConfigError semantics for the CLI (exit code 2, clear message)
    from .config import ConfigError as _Base
except ImportError:  # pragma: no cover
    _Base = ValueError


class GPUUnavailableError(_Base):
    """processing.gpu = on but no usable CUDA device / cupy."""


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
def _jag(arr) -> tuple[np.ndarray, np.ndarray]:
    """(counts, flat content) of a jagged branch as numpy (materialises the branch)."""
    counts = np.asarray(ak.to_numpy(ak.num(arr, axis=1)), dtype=np.int64)
    flat = ak.to_numpy(ak.flatten(arr, axis=1))
    return counts, np.asarray(flat)


def _offsets(counts):
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def _pick(counts, offsets, mask):
    """Per row: number of selected objects, flat index of the first and second (-1 if none)."""
    n = len(counts)
    sel = np.flatnonzero(mask)
    row = np.searchsorted(offsets, sel, side="right") - 1
    nsel = np.bincount(row, minlength=n).astype(np.int64)
    first = np.full(n, -1, dtype=np.int64)
    second = np.full(n, -1, dtype=np.int64)
    if len(sel):
        row_start = np.searchsorted(row, np.arange(n), side="left")
        rank = np.arange(len(sel)) - row_start[row]
        first[row[rank == 0]] = sel[rank == 0]
        second[row[rank == 1]] = sel[rank == 1]
    return nsel, first, second


def _take(flat, idx, fill=0):
    """flat[idx] with idx = -1 giving ``fill`` (works on empty ``flat``)."""
    padded = np.concatenate([flat, np.array([fill], dtype=flat.dtype)])
    return padded[np.where(idx < 0, len(flat), idx)]


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


class SoftDisplacedProcessor(processor.ProcessorABC):
    """Evaluates ``analyses`` (``{name: spec}`` from build_analyses) on Delphes-format events.

    ``file_chunks`` maps each input file name to (file index, workflow chunk number).
    """

    def __init__(self, analyses: Mapping[str, Mapping], efficiency: Mapping, objects: Mapping | None = None,
                 spectra: Mapping | None = None, file_chunks: Mapping[str, tuple[int, int]] | None = None,
                 gpu: bool = False):
        self.analyses = {k: dict(v) for k, v in analyses.items()}
        self.efficiency_cfg = dict(efficiency)
        self.objects = dict(objects or {})
        self.spectra = dict(spectra or {"abs_eta_max": 2.4, "pt_min": 10.0})
        self.file_chunks = dict(file_chunks or {})
        self.gpu = bool(gpu)
        self._tables = None

    @property
    def tables(self):
        if self._tables is None:
            self._tables = load_tables(self.efficiency_cfg)
        return self._tables

    def needs_isolation(self) -> bool:
        return any(a.get("isolation") for a in self.analyses.values())

    # ------------------------------------------------------------------ process
    def process(self, events):
        meta = events.metadata
        filename = meta.get("filename", "")
        file_index, chunk = self.file_chunks.get(filename, (0, 0))
        n = len(events)
        weight = np.asarray(ak.to_numpy(events.Event.Weight), dtype=np.float64)
        number = np.asarray(ak.to_numpy(events.Event.Number), dtype=np.int64)
        use_iso = self.needs_isolation()

        lep = {}
        for fl, coll in (("e", events.Electron), ("mu", events.Muon)):
            counts, pt = _jag(coll.PT)
            d = {"counts": counts, "offsets": _offsets(counts), "pt": pt,
                 "eta": _jag(coll.Eta)[1], "phi": _jag(coll.Phi)[1],
                 "charge": _jag(coll.Charge)[1], "d0": _jag(coll.D0)[1]}
            if use_iso:
                d["iso"] = _jag(coll.IsolationVar)[1]
            d["row"] = np.repeat(np.arange(n, dtype=np.int64), counts)
            lep[fl] = d
        jcounts, jpt = _jag(events.Jet.PT)
        jets = {"counts": jcounts, "offsets": _offsets(jcounts), "pt": jpt,
                "eta": _jag(events.Jet.Eta)[1], "phi": _jag(events.Jet.Phi)[1]}
        met = np.asarray(ak.to_numpy(events.MissingET.MET), dtype=np.float64)
        met_phi = np.asarray(ak.to_numpy(events.MissingET.Phi), dtype=np.float64)
        ht = np.asarray(ak.to_numpy(events.ScalarHT.HT), dtype=np.float64)

        mediator_ct = None
        fields = events.fields
        if "Particle" in fields and "CtauProper" in events.Particle.fields:
            pcounts, pid = _jag(events.Particle.PID)
            status = _jag(events.Particle.Status)[1]
            ctau = _jag(events.Particle.CtauProper)[1].astype(np.float64)
            _, p1, p2 = _pick(pcounts, _offsets(pcounts), (np.abs(pid) == MEDIATOR_PID) & (status == 22))
            mediator_ct = np.stack([_take(ctau, p1, np.nan), _take(ctau, p2, np.nan)], axis=1)

        # spectra for the HF fit: every electron / muon, no isolation or pairing
        spectra = {}
        for fl, name in (("e", "electron"), ("mu", "muon")):
            d = lep[fl]
            m = (np.abs(d["eta"]) < self.spectra["abs_eta_max"]) & (d["pt"] > self.spectra["pt_min"])
            spectra[f"{name}_pt"] = d["pt"][m].astype(np.float64)
            spectra[f"{name}_weight"] = weight[d["row"][m]]

        record = {"file": filename, "file_index": int(file_index), "chunk": int(chunk),
                  "entrystart": int(meta.get("entrystart", 0)), "entrystop": int(meta.get("entrystop", n)),
                  "n_events": int(n), "sum_gen_weights": float(weight.sum()), "spectra": spectra,
                  "truth": mediator_ct is not None, "analyses": {}}
        for name, spec in self.analyses.items():
            record["analyses"][name] = self._analysis(spec, events, lep, jets, met, met_phi, ht, weight, number,
                                                      mediator_ct, chunk)
        return {"records": [record]}

    def _analysis(self, spec, events, lep, jets, met, met_phi, ht, weight, number, mediator_ct, chunk):
        n = len(weight)
        channels = spec["channels"]
        sel = {}
        for fl, name in (("e", "electron"), ("mu", "muon")):
            d = lep[fl]
            m = (np.abs(d["eta"]) < d["eta"].dtype.type(spec["abs_eta_max"])) & \
                (d["pt"] > d["pt"].dtype.type(spec["preselection_pt"]))
            if spec.get("isolation"):
                m &= d["iso"] < d["iso"].dtype.type(spec["isolation"][name])
            sel[fl] = _pick(d["counts"], d["offsets"], m)
        ne, e1, e2 = sel["e"]
        nm, m1, m2 = sel["mu"]

        ch = np.full(n, -1, dtype=np.int8)
        if "emu" in channels:
            ch[(ne == 1) & (nm == 1)] = CHANNEL_CODES["emu"]
        if "ee" in channels:
            ch[(ne == 2) & (nm == 0)] = CHANNEL_CODES["ee"]
        if "mumu" in channels:
            ch[(nm == 2) & (ne == 0)] = CHANNEL_CODES["mumu"]

        # the pair: y = electron (e-mu) / leading lepton, x = muon / subleading lepton
        is_emu, is_ee, is_mm = ch == 0, ch == 1, ch == 2
        E, M = lep["e"], lep["mu"]

        def two(d, i1, i2, key):
            return _take(d[key], i1), _take(d[key], i2)

        idx = {}
        ept1, ept2 = two(E, e1, e2, "pt")
        mpt1, mpt2 = two(M, m1, m2, "pt")
        e_swap = ept2 > ept1
        m_swap = mpt2 > mpt1
        idx["e_lead"] = np.where(e_swap, e2, e1)
        idx["e_sub"] = np.where(e_swap, e1, e2)
        idx["m_lead"] = np.where(m_swap, m2, m1)
        idx["m_sub"] = np.where(m_swap, m1, m2)

        def pair_value(key):
            y = np.where(is_emu, _take(E[key], e1), np.where(is_ee, _take(E[key], idx["e_lead"]),
                                                            _take(M[key], idx["m_lead"])))
            x = np.where(is_emu, _take(M[key], m1), np.where(is_ee, _take(E[key], idx["e_sub"]),
                                                            _take(M[key], idx["m_sub"])))
            return y, x

        pt_y, pt_x = pair_value("pt")
        eta_y, eta_x = pair_value("eta")
        phi_y, phi_x = pair_value("phi")
        q_y, q_x = pair_value("charge")
        d0_y, d0_x = pair_value("d0")
        ad0_y, ad0_x = np.abs(d0_y), np.abs(d0_x)
        fl_y = np.where(is_mm, MUON, ELECTRON).astype(np.int8)
        fl_x = np.where(is_ee, ELECTRON, MUON).astype(np.int8)

        cut = ch >= 0
        steps = [("all", np.ones(n, dtype=bool)), ("lepton_pair", cut.copy())]
        if spec.get("opposite_charge", True):
            cut &= (q_y * q_x) < 0
            steps.append(("opposite_charge", cut.copy()))
        thr_y = np.zeros(n)
        thr_x = np.zeros(n)
        for c in channels:
            code = CHANNEL_CODES[c]
            thr_y[ch == code], thr_x[ch == code] = spec["pt_min"][c]
        cut &= (pt_y > thr_y.astype(pt_y.dtype)) & (pt_x > thr_x.astype(pt_x.dtype))
        steps.append(("pt", cut.copy()))
        dr = np.sqrt((eta_y.astype(np.float64) - eta_x) ** 2 + _dphi(phi_y.astype(np.float64), phi_x) ** 2)
        if spec.get("dr_min") is not None:
            cut &= dr > spec["dr_min"]
            steps.append(("delta_r", cut.copy()))
        if spec.get("jet_veto"):
            jv = spec["jet_veto"]
            jrow = np.repeat(np.arange(n, dtype=np.int64), jets["counts"])
            jeta = jets["eta"].astype(np.float64)
            jphi = jets["phi"].astype(np.float64)
            close = np.zeros(len(jeta), dtype=bool)
            for eta_l, phi_l in ((eta_y, phi_y), (eta_x, phi_x)):
                d = np.sqrt((jeta - eta_l[jrow]) ** 2 + _dphi(jphi, phi_l[jrow].astype(np.float64)) ** 2)
                close |= d < jv["dr"]
            bad = close & (jets["pt"] > jv["pt_min"])
            vetoed = np.bincount(jrow[bad], minlength=n) > 0
            cut &= ~vetoed
            steps.append(("jet_veto", cut.copy()))
        if spec.get("d0_window_mm") is not None:
            w = spec["d0_window_mm"]
            cut &= _in_range(ad0_y, w) & _in_range(ad0_x, w)
            steps.append(("d0_window", cut.copy()))

        cutflow = {"names": [s for s, _ in steps],
                   "raw": [int(m.sum()) for _, m in steps],
                   "weighted": [float(weight[m].sum()) for _, m in steps]}

        # signal regions: first matching region in list order
        sr = np.zeros(n, dtype=np.int8)
        for c, regions in spec["signal_regions"]["regions"].items():
            in_ch = ch == CHANNEL_CODES[c]
            for r in regions:
                m = in_ch & (sr == 0) & _in_range(ad0_x, r["d0_x_mm"]) & _in_range(ad0_y, r["d0_y_mm"])
                for key, v, op in (("pt_x_min", pt_x, np.greater), ("pt_x_max", pt_x, np.less),
                                   ("pt_y_min", pt_y, np.greater), ("pt_y_max", pt_y, np.less)):
                    if r.get(key) is not None:
                        m &= op(v, v.dtype.type(r[key]))
                sr[m] = int(r["label"])

        s = cut
        ns = int(s.sum())
        cols = {
            "pt_y": pt_y[s].astype(np.float64), "eta_y": eta_y[s].astype(np.float64),
            "phi_y": phi_y[s].astype(np.float64), "d0_y": d0_y[s].astype(np.float64),
            "pt_x": pt_x[s].astype(np.float64), "eta_x": eta_x[s].astype(np.float64),
            "phi_x": phi_x[s].astype(np.float64), "d0_x": d0_x[s].astype(np.float64),
            "sr": sr[s], "channel": ch[s], "weight_gen": weight[s],
            "event_number": number[s], "entry": np.flatnonzero(s).astype(np.int64),
            "chunk": np.full(ns, chunk, dtype=np.int32),
        }
        if spec.get("d0_efficiency", True):
            cols["weight_d0eff"] = np.asarray(d0_weight(self.tables, fl_y[s], d0_y[s], fl_x[s], d0_x[s]),
                                              dtype=np.float64)
        else:
            cols["weight_d0eff"] = np.ones(ns)
        if mediator_ct is not None:
            cols["mediator_ct_mm"] = mediator_ct[s]
        feats = self._features(spec, s, cols, lep, jets, met, met_phi, ht)
        cols.update(feats)
        return {"columns": cols, "cutflow": cutflow}

    def _features(self, spec, s, cols, lep, jets, met, met_phi, ht):
        names = [f for f in FEATURES if f in spec.get("features", FEATURES)]
        if not names:
            return {}

        def jag(d, key):
            # rows of the selected events, packed (content starts at 0)
            counts = d["counts"][s]
            take = np.flatnonzero(np.repeat(s, d["counts"]))
            return ak.unflatten(d[key][take], counts)

        inputs = {k: cols[k] for k in ("pt_y", "eta_y", "phi_y", "pt_x", "eta_x", "phi_x")}
        inputs.update(met=met[s], met_phi=met_phi[s], ht=ht[s])
        inputs = {k: ak.Array(np.asarray(v, dtype=np.float64)) for k, v in inputs.items()}
        for key in ("pt", "eta", "phi"):
            inputs[f"jet_{key}"] = jag(jets, key)
        for fl, pre in (("e", "ele"), ("mu", "mu")):
            for key in ("pt", "eta", "phi", "d0"):
                inputs[f"{pre}_{key}"] = jag(lep[fl], key)
        if self.gpu:
            inputs = {k: ak.to_backend(v, "cuda") for k, v in inputs.items()}
        out = compute_features(inputs, spec.get("objects") or self.objects, names)
        if self.gpu:
            import cupy

            out = {k: cupy.asnumpy(v) for k, v in out.items()}
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    def postprocess(self, accumulator):
        return accumulator
