"""HDF5 skims: assemble the processor's records, write/read/merge files (layout: docs/skims.md).

Deterministic: the same inputs give bit-identical files (rows sorted by
(chunk, file index, entry) whatever the executor's completion order; datasets
written with ``track_times=False``; no timestamps in attributes; attributes and
datasets in a fixed order).  Every file is written through
``softdisplaced.atomic.atomic_path``.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import h5py
import numpy as np

from softdisplaced.processing.analyses import CHANNEL_CODES
from softdisplaced.atomic import atomic_path, write_json, write_text
from softdisplaced.processing.features import SKIM_FEATURES

__all__ = ["LAYOUT_VERSION", "assemble", "write_skim", "read_skim", "merge_partials", "make_hists",
           "lepton_suffixes", "cutflow_markdown", "EVENT_COLUMNS", "input_losses", "input_losses_markdown"]

LAYOUT_VERSION = 1
_LEPTON_VARS = ("pt", "eta", "phi", "d0")
EVENT_COLUMNS_TAIL = ("sr", "weight_d0eff", "weight_gen", "event_number", "chunk")
EVENT_COLUMNS = SKIM_FEATURES  # (for documentation; the lepton columns depend on the analysis)
_DTYPES = {"sr": np.int8, "channel": np.int8, "event_number": np.int64, "chunk": np.int32}
NON_FINITE_STEP = "finite_inputs"  # cutflow step of processing.non_finite = drop (softdisplaced.processing.processor)
SPECTRA = ("electron_pt", "electron_weight", "muon_pt", "muon_weight")

# default histogram binning: [bins, lo, hi]
HIST_BINS = {
    "YDelpObj": (60, 0.0, 30.0), "HtJet": (50, 0.0, 500.0), "dRLL": (50, 0.0, 6.0),
    "MtLeadLepMET": (50, 0.0, 300.0), "YUserObj": (60, 0.0, 30.0), "dPhiLepMETSelObj": (32, 0.0, 3.2),
    "Sphericity": (40, 0.0, 1.0), "alphaT": (50, 0.0, 2.5), "Spherocity": (40, 0.0, 1.0),
    "pt": (50, 0.0, 250.0), "d0": (100, 0.0, 100.0),
}


def lepton_suffixes(spec: Mapping) -> tuple[str, str]:
    """Column suffixes of the (y, x) leptons: ("e", "mu") for e-mu-only analyses, else ("l1", "l2")."""
    return ("e", "mu") if list(spec["channels"]) == ["emu"] else ("l1", "l2")


def _column_order(spec, truth: bool, features: Sequence[str]) -> list[str]:
    sy, sx = lepton_suffixes(spec)
    cols = list(features) + [f"{v}_{sy}" for v in _LEPTON_VARS] + [f"{v}_{sx}" for v in _LEPTON_VARS]
    if list(spec["channels"]) != ["emu"]:
        cols.append("channel")
    cols += list(EVENT_COLUMNS_TAIL)
    if truth:
        cols.append("mediator_ct_mm")
    return cols


def assemble(records: Iterable[Mapping], analysis: str, spec: Mapping, non_finite: str = "error") -> dict:
    """Sorted, concatenated columns, spectra, cutflow and counts of one analysis from processor records
    (``non_finite``: ``processing.non_finite``, which decides the cutflow steps when there is no record)."""
    recs = sorted(records, key=lambda r: (r["chunk"], r["file_index"], r["entrystart"]))
    truth = any(r["truth"] for r in recs)
    features = [f for f in SKIM_FEATURES if f in spec.get("features", SKIM_FEATURES)]
    sy, sx = lepton_suffixes(spec)
    rename = {f"{v}_y": f"{v}_{sy}" for v in _LEPTON_VARS} | {f"{v}_x": f"{v}_{sx}" for v in _LEPTON_VARS}
    order = _column_order(spec, truth, features)
    parts = {c: [] for c in order}
    for r in recs:
        cols = r["analyses"][analysis]["columns"]
        n = len(cols["sr"])
        for k, v in cols.items():
            k = rename.get(k, k)
            if k in parts:
                parts[k].append(v)
        if truth and "mediator_ct_mm" not in cols:
            parts["mediator_ct_mm"].append(np.full((n, 2), np.nan))
    events = {}
    for c in order:
        dt = _DTYPES.get(c, np.float64)
        shape = (0, 2) if c == "mediator_ct_mm" else (0,)
        events[c] = np.concatenate(parts[c]).astype(dt) if parts[c] else np.zeros(shape, dt)
    spectra = {k: (np.concatenate([r["spectra"][k] for r in recs]) if recs else np.zeros(0)).astype(np.float64)
               for k in SPECTRA}
    if recs:
        names = recs[0]["analyses"][analysis]["cutflow"]["names"]
    else:
        from softdisplaced.processing.processor import cut_names

        names = cut_names(spec, non_finite)
    raw = np.zeros(len(names), dtype=np.int64)
    weighted = np.zeros(len(names), dtype=np.float64)
    for r in recs:
        cf = r["analyses"][analysis]["cutflow"]
        raw += np.asarray(cf["raw"], dtype=np.int64)
        weighted += np.asarray(cf["weighted"], dtype=np.float64)
    return {"events": events, "spectra": spectra,
            "cutflow": {"names": list(names), "raw": raw, "weighted": weighted},
            "n_events_processed": int(sum(r["n_events"] for r in recs)),
            "sum_gen_weights": float(math.fsum(r["sum_gen_weights"] for r in recs))}


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def skim_attributes(sample: Mapping, analysis: str, spec: Mapping, *, config_hash: str, package_versions: Mapping,
                    input_checksums: Mapping, skipped_files: Sequence, n_events_processed: int,
                    sum_gen_weights: float, signal_decay_mode: str = "") -> dict:
    """The file attributes of docs/contracts.md (+ analysis metadata), in a fixed order.

    ``signal_decay_mode``: the generator's chargino decay mode recorded in the event files
    (``democratic``, ``emu``; "" when the files do not say): the yields' flavour factor."""
    sy, sx = lepton_suffixes(spec)
    sr_names = {}
    for regions in spec["signal_regions"]["regions"].values():
        for r in regions:
            sr_names[str(r["label"])] = r["name"]
    return {
        "layout_version": LAYOUT_VERSION,
        "analysis": analysis,
        "sample": sample.get("name", ""),
        "n_events_processed": np.int64(n_events_processed),
        "sum_gen_weights": float(sum_gen_weights),
        "cross_section_fb": _num(sample.get("cross_section_fb")),
        "ctau_cm": _num(sample.get("ctau_cm")),
        "m_c": _num(sample.get("m_c")),
        "dm": _num(sample.get("dm")),
        "br_ll": _num(sample.get("br_ll")),
        "signal_decay_mode": str(signal_decay_mode),
        "config_hash": config_hash,
        "package_versions": json.dumps(dict(package_versions), sort_keys=True),
        "input_checksums": json.dumps(dict(input_checksums), sort_keys=True),
        "skipped_files": json.dumps(list(skipped_files), sort_keys=True),
        "lepton_columns": f"{sy},{sx}",
        "channels": json.dumps({c: CHANNEL_CODES[c] for c in spec["channels"]}),
        "sr_mode": spec["signal_regions"].get("mode", "exclusive"),
        "sr_names": json.dumps(sr_names, sort_keys=True),
        "analysis_spec": json.dumps(spec, sort_keys=True, default=str),
    }


def common_decay_mode(modes: Mapping[str, str]) -> str:
    """The one signal decay mode of a sample's files ({file: mode}); mixing modes is an error
    (their yields would need different flavour factors)."""
    found = sorted(set(modes.values()))
    if len(found) > 1:
        detail = "; ".join(f"{f}: {m or 'unrecorded'}" for f, m in sorted(modes.items()))
        raise ValueError(f"the files of one sample record different signal decay modes ({detail}); "
                         "regenerate them with one generation.*.decay_mode")
    return found[0] if found else ""


def write_skim(path, events: Mapping[str, np.ndarray], spectra: Mapping[str, np.ndarray], cutflow: Mapping,
               attrs: Mapping, gzip_level: int = 1) -> Path:
    """Atomically write one skim (or partial) file; bit-identical for identical inputs."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver=("earliest", "v108"), track_order=False) as fh:
            for k, v in attrs.items():
                fh.attrs[k] = v
            for gname, cols in (("events", events), ("spectra", spectra)):
                g = fh.create_group(gname)
                for k, v in cols.items():
                    v = np.ascontiguousarray(v)
                    g.create_dataset(k, data=v, compression="gzip", compression_opts=int(gzip_level),
                                     shuffle=True, track_times=False,
                                     chunks=True if v.size else None)
            g = fh.create_group("cutflow")
            names = np.array([s.encode() for s in cutflow["names"]], dtype=h5py.string_dtype("ascii"))
            g.create_dataset("names", data=names, track_times=False)
            g.create_dataset("raw", data=np.asarray(cutflow["raw"], dtype=np.int64), track_times=False)
            g.create_dataset("weighted", data=np.asarray(cutflow["weighted"], dtype=np.float64), track_times=False)
    return path


def read_events(path, columns: Iterable[str] | None = None, optional: Iterable[str] = ()) -> tuple[dict, dict]:
    """``(events, attrs)`` of a skim in the contract layout, the one reader every stage uses.

    ``columns``: datasets of group ``events`` that must exist (None: all of them);
    ``optional``: datasets read when present (absent ones are simply not in ``events``).
    Errors name the file: not found, not HDF5, no group ``events``, missing datasets.
    String attributes are decoded.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: skim not found")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 skim ({exc})") from exc
    with fh:
        if "events" not in fh:
            raise ValueError(f"{path}: no group 'events' (not a skim of docs/contracts.md)")
        g = fh["events"]
        names = list(g.keys()) if columns is None else list(columns)
        missing = [c for c in names if c not in g]
        if missing:
            raise ValueError(f"{path}: datasets {missing} missing in group 'events'")
        names += [c for c in optional if c in g and c not in names]
        events = {c: g[c][()] for c in names}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
                 for k, v in fh.attrs.items()}
    return events, attrs


def input_losses(path) -> dict:
    """What the sample of a skim lost where events enter: ``{"skipped_files": [skip records],
    "entries_lost": known entries of skipped files, "unknown_files": skipped files of unknown size,
    "n_events_processed", "lost_fraction": entries_lost / (n_events_processed + entries_lost) (a lower
    bound when unknown_files > 0), "non_finite_dropped": events dropped by the step finite_inputs}``."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as fh:
            attrs = {k: fh.attrs[k] for k in ("skipped_files", "n_events_processed") if k in fh.attrs}
            names, raw = [], []
            if "cutflow" in fh:
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in fh["cutflow"]["names"][()]]
                raw = [int(x) for x in fh["cutflow"]["raw"][()]]
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 skim ({exc})") from exc
    skipped = json.loads(attrs.get("skipped_files", "[]"))
    n = int(attrs.get("n_events_processed", 0))
    lost = sum(int(s["entries_lost"]) for s in skipped if s.get("entries_lost") is not None)
    dropped = None
    if NON_FINITE_STEP in names:
        i = names.index(NON_FINITE_STEP)
        dropped = raw[i - 1] - raw[i]
    return {"skipped_files": skipped, "entries_lost": lost,
            "unknown_files": sum(1 for s in skipped if s.get("entries_lost") is None),
            "n_events_processed": n, "lost_fraction": lost / (n + lost) if n + lost else 0.0,
            "non_finite_dropped": dropped}


def input_losses_markdown(skims: Mapping[str, str | Path], analysis: str) -> list[str]:
    """REPORT.md section: the input files skipped as bad and the events dropped for non-finite inputs,
    per sample (``skims``: sample -> its skim of ``analysis``)."""
    rows, reasons = [], []
    for sample, path in skims.items():
        loss = input_losses(path)
        if not loss["skipped_files"] and not loss["non_finite_dropped"]:
            continue
        frac = f"{loss['lost_fraction']:.3g}" + (" (at least)" if loss["unknown_files"] else "")
        rows.append(f"| {sample} | {len(loss['skipped_files'])} | {loss['entries_lost']} | {frac} | "
                    f"{loss['non_finite_dropped'] or 0} |")
        reasons += [f"- {sample}: {s['reason']}" for s in loss["skipped_files"]]
    lines = ["## Input files and events left out", ""]
    if not rows:
        return lines + [f"No input file was skipped and no event dropped for non-finite inputs "
                        f"(skims of `{analysis}`).", ""]
    return lines + [f"Skims of `{analysis}`; the yields are normalised to the events processed "
                    "(`processing.skip_bad_files`, `processing.non_finite`).", "",
                    "| sample | files skipped | entries lost | fraction lost | events dropped (non-finite) |",
                    "|---|---:|---:|---:|---:|", *rows, "", *reasons, ""]


def read_skim(path) -> dict:
    """``{"events": {...}, "spectra": {...}, "cutflow": {...}, "attrs": {...}}`` as numpy arrays."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: skim file does not exist")
    try:
        with h5py.File(path, "r") as fh:
            out = {"attrs": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in fh.attrs.items()}}
            for g in ("events", "spectra"):
                out[g] = {k: fh[g][k][()] for k in fh[g]} if g in fh else {}
            if "cutflow" in fh:
                cf = fh["cutflow"]
                out["cutflow"] = {"names": [s.decode() if isinstance(s, bytes) else str(s) for s in cf["names"][()]],
                                  "raw": cf["raw"][()], "weighted": cf["weighted"][()]}
            else:
                out["cutflow"] = {"names": [], "raw": np.zeros(0, np.int64), "weighted": np.zeros(0)}
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 skim ({exc})") from exc
    return out


def make_hists(events: Mapping[str, np.ndarray], spec: Mapping, overrides: Mapping | None = None) -> dict:
    """``hist.Hist`` (Weight storage, weight = weight_gen x weight_d0eff) of every feature, lepton pT and d0."""
    import hist

    overrides = dict(overrides or {})
    sy, sx = lepton_suffixes(spec)
    names = [f for f in SKIM_FEATURES if f in events] + [f"pt_{sy}", f"pt_{sx}", f"d0_{sy}", f"d0_{sx}"]
    w = np.asarray(events["weight_gen"], dtype=np.float64) * np.asarray(events["weight_d0eff"], dtype=np.float64)
    out = {}
    for name in names:
        key = name if name in HIST_BINS else name.split("_")[0]
        bins, lo, hi = overrides.get(name, overrides.get(key, HIST_BINS[key]))
        values = events[name]
        label = name
        if key == "d0":
            values = np.abs(values)
            label = f"|{name}| [mm]"
        elif key == "pt":
            label = f"{name} [GeV]"
        h = hist.Hist(hist.axis.Regular(int(bins), float(lo), float(hi), name=name, label=label),
                      storage=hist.storage.Weight())
        h.fill(values, weight=w)
        out[name] = h
    return out


def cutflow_json(analysis: str, sample: str, cutflow: Mapping, events: Mapping, spec: Mapping,
                 n_events_processed: int, sum_gen_weights: float) -> dict:
    cuts = [{"name": n, "raw": int(r), "weighted": float(w)}
            for n, r, w in zip(cutflow["names"], cutflow["raw"], cutflow["weighted"])]
    labels = {}
    for regions in spec["signal_regions"]["regions"].values():
        for r in regions:
            labels[int(r["label"])] = r["name"]
    sr = np.asarray(events["sr"])
    wg = np.asarray(events["weight_gen"], dtype=np.float64)
    wd = np.asarray(events["weight_d0eff"], dtype=np.float64)
    regions = []
    for lab in [0] + sorted(labels):
        m = sr == lab
        regions.append({"label": lab, "name": labels.get(lab, "none"), "raw": int(m.sum()),
                        "weighted": float(wg[m].sum()), "weighted_d0eff": float((wg * wd)[m].sum())})
    return {"analysis": analysis, "sample": sample, "n_events_processed": int(n_events_processed),
            "sum_gen_weights": float(sum_gen_weights), "cuts": cuts,
            "sr_mode": spec["signal_regions"].get("mode", "exclusive"), "signal_regions": regions}


def cutflow_markdown(cf: Mapping) -> str:
    lines = [f"# Cutflow: {cf['analysis']} / {cf['sample']}", "",
             f"{cf['n_events_processed']} events processed, sum of generator weights {cf['sum_gen_weights']:.6g}", "",
             "| cut | events | weighted | efficiency (cumulative) |", "|---|---:|---:|---:|"]
    first = cf["cuts"][0]["raw"] if cf["cuts"] else 0
    for c in cf["cuts"]:
        eff = c["raw"] / first if first else float("nan")
        lines.append(f"| {c['name']} | {c['raw']} | {c['weighted']:.6g} | {eff:.4g} |")
    lines += ["", f"Signal regions ({cf['sr_mode']}; label 0 = selected, no SR):", "",
              "| sr | name | events | weighted | weighted x d0 eff. |", "|---:|---|---:|---:|---:|"]
    for r in cf["signal_regions"]:
        lines.append(f"| {r['label']} | {r['name']} | {r['raw']} | {r['weighted']:.6g} | {r['weighted_d0eff']:.6g} |")
    return "\n".join(lines) + "\n"


def merge_partials(partials: Sequence, skim_out, cutflow_out, hists_out, *, analysis: str, spec: Mapping,
                   sample: Mapping, config_hash: str, package_versions: Mapping, gzip_level: int = 1,
                   hist_overrides: Mapping | None = None) -> dict:
    """Concatenate partial skims (in chunk order) into the sample's skim, cutflow (.json + .md) and hists (.pkl)."""
    if not partials:
        raise ValueError(f"merge {analysis}/{sample.get('name')}: no partial skims given")
    parts = [read_skim(p) for p in partials]
    for p, d in zip(partials, parts):
        if d["attrs"].get("analysis") != analysis:
            raise ValueError(f"{p}: partial of analysis '{d['attrs'].get('analysis')}', expected '{analysis}'")
        if d["attrs"].get("layout_version") != LAYOUT_VERSION:
            raise ValueError(f"{p}: layout_version {d['attrs'].get('layout_version')} != {LAYOUT_VERSION}")
    # order by the chunk numbers they hold (then by the given order) so that the merge is order-independent
    def first_chunk(d):
        ch = d["events"].get("chunk")
        return int(ch.min()) if ch is not None and len(ch) else int(d["attrs"].get("chunk", 0))

    order = sorted(range(len(parts)), key=lambda i: (int(parts[i]["attrs"].get("chunk", first_chunk(parts[i]))),
                                                     str(partials[i])))
    parts = [parts[i] for i in order]
    cols = list(parts[0]["events"])
    truth = any("mediator_ct_mm" in d["events"] for d in parts)
    if truth and "mediator_ct_mm" not in cols:
        cols.append("mediator_ct_mm")
    events = {}
    for c in cols:
        chunks = []
        for d in parts:
            if c in d["events"]:
                chunks.append(d["events"][c])
            elif c == "mediator_ct_mm":
                chunks.append(np.full((len(d["events"]["sr"]), 2), np.nan))
            else:
                raise ValueError(f"merge {analysis}: a partial lacks column '{c}'")
        events[c] = np.concatenate(chunks)
    spectra = {k: np.concatenate([d["spectra"][k] for d in parts]) for k in SPECTRA}
    names = parts[0]["cutflow"]["names"]
    for p, d in zip(partials, parts):
        if d["cutflow"]["names"] != names:
            raise ValueError(f"{p}: cutflow names {d['cutflow']['names']} differ from {names}")
    cutflow = {"names": names, "raw": sum(d["cutflow"]["raw"] for d in parts),
               "weighted": np.sum([d["cutflow"]["weighted"] for d in parts], axis=0)}
    n_proc = int(sum(int(d["attrs"]["n_events_processed"]) for d in parts))
    sumw = float(math.fsum(float(d["attrs"]["sum_gen_weights"]) for d in parts))
    checks, skipped = {}, []
    for d in parts:
        checks.update(json.loads(d["attrs"]["input_checksums"]))
        skipped += json.loads(d["attrs"]["skipped_files"])
    if skipped and n_proc == 0:
        raise ValueError(f"sample {sample.get('name', '')!r} ({analysis}): every input file was skipped as bad "
                         f"(processing.skip_bad_files), no event is left: "
                         + "; ".join(s.get("reason", s["file"]) for s in skipped))
    attrs = skim_attributes(sample, analysis, spec, config_hash=config_hash, package_versions=package_versions,
                            input_checksums=checks, skipped_files=skipped, n_events_processed=n_proc,
                            sum_gen_weights=sumw,
                            signal_decay_mode=common_decay_mode({str(p): str(d["attrs"].get("signal_decay_mode", ""))
                                                                 for p, d in zip([partials[i] for i in order], parts)}))
    attrs["n_partials"] = np.int64(len(parts))
    write_skim(skim_out, events, spectra, cutflow, attrs, gzip_level)
    cf = cutflow_json(analysis, sample.get("name", ""), cutflow, events, spec, n_proc, sumw)
    write_json(cutflow_out, cf)
    write_text(Path(cutflow_out).with_suffix(".md"), cutflow_markdown(cf))
    hists = make_hists(events, spec, hist_overrides)
    with atomic_path(hists_out) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(hists, fh, protocol=4)
    return cf


def run_processor(inputs: Sequence, *, analyses: Mapping[str, Mapping], efficiency: Mapping,
                  processing: Mapping, dataset: str = "sample", chunk: int = 0) -> tuple[list, list]:
    """The coffea processor over the event files ``inputs`` (file ``i`` = workflow chunk ``chunk + i``):
    ``(records, skipped files)`` of ``executors.run``, before any skim is assembled or written."""
    from softdisplaced.processing import executors
    from softdisplaced.processing.processor import SoftDisplacedProcessor, resolve_gpu

    files = [str(Path(f).resolve()) for f in inputs]
    proc = SoftDisplacedProcessor(analyses, efficiency, spectra=processing.get("spectra"),
                                  file_chunks={f: (i, int(chunk) + i) for i, f in enumerate(files)},
                                  gpu=resolve_gpu(processing.get("gpu", "off")),
                                  non_finite=processing.get("non_finite", "error"))
    records, skipped, _ = executors.run(files, proc, processing, dataset=dataset,
                                        needs_isolation=proc.needs_isolation(),
                                        jet_neutrals=proc.needs_jet_neutrals())
    return records, skipped


def process_files(inputs: Sequence, outputs: Sequence, *, analyses: Mapping[str, Mapping], sample: Mapping,
                  efficiency: Mapping, processing: Mapping, chunk: int = 0, config_hash: str = "",
                  package_versions: Mapping | None = None) -> dict:
    """Run every analysis of ``analyses`` on the event files ``inputs`` (read once) and write one
    partial skim per analysis to ``outputs`` (same order).  Returns ``{analysis: assembled}``.

    File ``i`` of ``inputs`` gets the workflow chunk number ``chunk + i``.
    """
    from softdisplaced.generation.delphes_writer import read_metadata
    from softdisplaced.provenance import file_sha256, package_versions as _versions

    if len(outputs) != len(analyses):
        raise ValueError(f"process: {len(analyses)} analyses ({', '.join(analyses)}) but {len(outputs)} outputs")
    records, skipped = run_processor(inputs, analyses=analyses, efficiency=efficiency, processing=processing,
                                     dataset=sample.get("name", "sample"), chunk=chunk)
    # a file of which nothing was read has no checksum; a partly processed one keeps its checksum
    unread = {s["file"] for s in skipped if not s.get("entries_processed")}
    checks = {str(f): file_sha256(f) for f in inputs if str(Path(f).resolve()) not in unread}
    decay_mode = common_decay_mode({str(f): read_metadata(f).get("signal_decay_mode", "")
                                    for f in inputs if str(Path(f).resolve()) not in unread})
    versions = dict(package_versions) if package_versions is not None else _versions()
    result = {}
    for (name, spec), out in zip(analyses.items(), outputs):
        a = assemble(records, name, spec, processing.get("non_finite", "error"))
        attrs = skim_attributes(sample, name, spec, config_hash=config_hash, package_versions=versions,
                                input_checksums=checks, skipped_files=skipped,
                                n_events_processed=a["n_events_processed"], sum_gen_weights=a["sum_gen_weights"],
                                signal_decay_mode=decay_mode)
        attrs["chunk"] = np.int64(chunk)
        write_skim(out, a["events"], a["spectra"], a["cutflow"], attrs, int(processing.get("gzip_level", 1)))
        result[name] = a
    return result
