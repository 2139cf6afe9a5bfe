"""Analyses as configuration: ``build_analyses(cfg) -> {name: spec}``.

Every analysis of the workflow (the study's soft e-mu selection, its loose
variant, the CMS searches used for recasting, the pT-threshold scan) is a
plain dict built from the ``analyses`` section of the configuration; the
processor (``softdisplaced.processing.processor``) interprets it.  No analysis is a code
fork: adding a threshold to ``analyses.threshold_scan.thresholds`` or a new
entry to ``analyses.definitions`` needs no code change.

A spec (all keys always present after :func:`normalise_spec`)::

    channels:        ["emu"] | any of "emu", "ee", "mumu"
    abs_eta_max:     lepton |eta| < this
    preselection_pt: lepton object pT > this (GeV)
    isolation:       {electron: 0.12, muon: 0.15} (IsolationVar < cut) or null (no isolation)
    pt_min:          {channel: [pT_y, pT_x]}  (e-mu: [pT(e), pT(mu)]; ee/mumu: [leading, subleading])
    opposite_charge: bool
    dr_min:          Delta R(l, l) > this, or null
    jet_veto:        {pt_min, dr}: no jet with pT > pt_min within Delta R < dr of a lepton, or null
    d0_window_mm:    [lo, hi]: lo < |d0| < hi for both leptons (null ends open), or null
    signal_regions:  {mode: exclusive|nested, regions: {channel: [region, ...]}}
                     region = {label, name, d0_x_mm: [lo, hi], d0_y_mm: [lo, hi],
                               pt_x_min/pt_x_max/pt_y_min/pt_y_max (optional)}
                     x = muon (e-mu) / subleading lepton (ee, mumu); y = electron / leading lepton.
                     The first region (in list order) whose conditions hold gives the label.
    d0_efficiency:   bool (weight_d0eff = product of the per-lepton efficiencies; else 1)
    lepton_vertex_max_mm: {rxy, abs_z} or None (weight_d0eff = 0 unless both leptons are produced inside)
    features:        list of the NN feature names to compute
    objects:         object definitions of the features (``analyses.objects``: all_leptons, jets)
    description:     free text
"""

from __future__ import annotations

import copy
import functools
from typing import Mapping

from softdisplaced.config import ConfigError, with_defaults
from softdisplaced.processing.features import FEATURES, SKIM_FEATURES

__all__ = ["build_analyses", "normalise_spec", "threshold_scan_name", "selected_analyses",
           "analysis_sample_pairs", "complete_background_thresholds", "CHANNELS", "FEATURES"]

CHANNELS = ("emu", "ee", "mumu")
CHANNEL_CODES = {c: i for i, c in enumerate(CHANNELS)}   # values of the skim column 'channel'
#: signal-region label (skim column 'sr') -> its name in tables and figures (the study's SR I, II, III)
SR_LABELS = {1: "I", 2: "II", 3: "III"}

@functools.lru_cache(maxsize=1)
def _schema_spec_defaults() -> dict:
    """The defaults of one ``analyses.definitions.<name>`` entry, from the schema (the one source of
    defaults): every key of the entry, ``features`` from ``analyses.features`` and ``objects`` from
    ``analyses.objects``."""
    filled = with_defaults({"analyses": {"definitions": {"_": {}}}})["analyses"]
    out = filled["definitions"]["_"]
    out["features"] = list(filled["features"])
    out["objects"] = filled["objects"]
    return out


def _spec_defaults() -> dict:
    return copy.deepcopy(_schema_spec_defaults())


def _fmt(x: float) -> str:
    x = float(x)
    return f"{int(x)}" if x.is_integer() else f"{x:g}".replace(".", "p")


def threshold_scan_name(base: str, thresholds) -> str:
    """``soft_emu`` + [25, 25] -> ``soft_emu_pt25``; [42, 40] -> ``soft_emu_pt42_40``."""
    a, b = thresholds
    return f"{base}_pt{_fmt(a)}" if float(a) == float(b) else f"{base}_pt{_fmt(a)}_{_fmt(b)}"


def normalise_spec(name: str, spec: Mapping) -> dict:
    """Fill defaults and check the internal consistency of one analysis spec."""
    out = _spec_defaults()
    out.update(copy.deepcopy(dict(spec)))
    where = f"analyses.definitions.{name}"
    bad = [c for c in out["channels"] if c not in CHANNELS]
    if bad or not out["channels"]:
        raise ConfigError(f"{where}.channels: unknown or empty channels {out['channels']} (allowed {CHANNELS})")
    if len(set(out["channels"])) != len(out["channels"]):
        raise ConfigError(f"{where}.channels: duplicated channel in {out['channels']}")
    for ch in out["channels"]:
        if ch not in out["pt_min"]:
            raise ConfigError(f"{where}.pt_min: no thresholds for channel '{ch}'")
        if len(out["pt_min"][ch]) != 2:
            raise ConfigError(f"{where}.pt_min.{ch}: need two thresholds [y, x], got {out['pt_min'][ch]}")
    unknown = [f for f in out["features"] if f not in SKIM_FEATURES]
    if unknown:
        raise ConfigError(f"{where}.features: unknown features {unknown} (known: {', '.join(SKIM_FEATURES)})")
    sr = out["signal_regions"]
    sr.setdefault("mode", "exclusive")
    sr.setdefault("regions", {})
    labels_seen = {}
    for ch, regions in sr["regions"].items():
        if ch not in out["channels"]:
            raise ConfigError(f"{where}.signal_regions.regions: channel '{ch}' is not in channels {out['channels']}")
        for r in regions:
            if not 1 <= int(r["label"]) <= 127:
                raise ConfigError(f"{where}.signal_regions: label {r['label']} must be in 1..127 (0 = no SR)")
            r.setdefault("name", f"SR{r['label']}")
            r.setdefault("d0_x_mm", [None, None])
            r.setdefault("d0_y_mm", [None, None])
            if labels_seen.setdefault(int(r["label"]), r["name"]) != r["name"]:
                raise ConfigError(f"{where}.signal_regions: label {r['label']} has two names")
    if out["d0_window_mm"] is not None and len(out["d0_window_mm"]) != 2:
        raise ConfigError(f"{where}.d0_window_mm: need [lo, hi]")
    return out


def build_analyses(cfg: Mapping, only_enabled: bool = True) -> dict[str, dict]:
    """Ordered ``{name: spec}`` of the configured analyses.

    ``analyses.definitions`` in order, then the threshold scan
    (``analyses.threshold_scan``: a copy of ``base`` per ``[pT(e), pT(mu)]``
    pair, named by :func:`threshold_scan_name`).  With ``only_enabled`` the
    list is restricted to ``processing.analyses`` (when set).
    """
    acfg = cfg.get("analyses") or {}
    defs = acfg.get("definitions") or {}
    features = acfg.get("features")
    objects = copy.deepcopy(acfg.get("objects") or {})
    out: dict[str, dict] = {}
    for name, spec in defs.items():
        spec = dict(spec)
        if features is not None and "features" not in spec:
            spec["features"] = list(features)
        spec.setdefault("objects", objects)
        out[name] = normalise_spec(name, spec)
    scan = acfg.get("threshold_scan") or {}
    if scan.get("thresholds"):
        base = scan.get("base", "soft_emu")
        if base not in out:
            raise ConfigError(f"analyses.threshold_scan.base: '{base}' is not in analyses.definitions")
        if out[base]["channels"] != ["emu"]:
            raise ConfigError("analyses.threshold_scan.base must be an e-mu analysis")
        for thr in scan["thresholds"]:
            name = threshold_scan_name(base, thr)
            if name in out:
                raise ConfigError(f"analyses.threshold_scan: '{name}' clashes with an existing analysis")
            spec = copy.deepcopy(out[base])
            spec["pt_min"] = {"emu": [float(thr[0]), float(thr[1])]}
            spec["description"] = f"{base} with pT(e) > {thr[0]:g}, pT(mu) > {thr[1]:g} GeV (threshold scan)"
            out[name] = spec
    if only_enabled:
        out = {n: out[n] for n in selected_analyses(cfg, out)}
    return out


def complete_background_thresholds(cfg: dict, source: str = "configuration") -> dict:
    """Give every threshold-scan analysis its background threshold, in place (at validation).

    The HF background (``softdisplaced.inference.background``) has transfer factors at symmetric thresholds
    [t, t] and at the CMS reference (``background.reference_threshold_gev``, threshold 42 = kappa 1),
    so a pair [t, t] gets ``background.analysis_threshold_gev[<name>] = t`` and the reference pair
    gets 42; the transfer factors are then computed at t too.  Any other pair is refused, as is an
    explicit ``analysis_threshold_gev`` entry that contradicts its pair.  Returns the mapping added.
    """
    scan = (cfg.get("analyses") or {}).get("threshold_scan") or {}
    bcfg = cfg.get("background")
    if not scan.get("thresholds") or bcfg is None:
        return {}
    ref = bcfg.get("reference_threshold_gev") or {"electron": 42, "muon": 40}
    ref_pair = (float(ref["electron"]), float(ref["muon"]))
    explicit = bcfg.setdefault("analysis_threshold_gev", {})
    base = scan.get("base", "soft_emu")
    added = {}
    for i, thr in enumerate(scan["thresholds"]):
        pair = (float(thr[0]), float(thr[1]))
        name = threshold_scan_name(base, thr)
        where = f"{source}: key 'analyses.threshold_scan.thresholds[{i}]' = {list(thr)}"
        if pair == ref_pair:
            t = ref_pair[0]
        elif pair[0] == pair[1] and pair[0] != ref_pair[0]:
            t = pair[0]
        else:
            raise ConfigError(
                f"{where}: the background transfer factors exist for symmetric thresholds [t, t] and for the "
                f"CMS reference {list(ref_pair)} (background.reference_threshold_gev) only; use one of those")
        if name in explicit and float(explicit[name]) != t:
            raise ConfigError(f"{where}: background.analysis_threshold_gev.{name} = {explicit[name]} contradicts "
                              f"the pair (expected {t:g}); remove the entry, it is derived")
        if name not in explicit:
            explicit[name] = t
            added[name] = t
    return added


def selected_analyses(cfg: Mapping, analyses: Mapping) -> list[str]:
    """Names in ``processing.analyses`` (all when null), checked against ``analyses``."""
    want = (cfg.get("processing") or {}).get("analyses")
    if want is None:
        return list(analyses)
    missing = [a for a in want if a not in analyses]
    if missing:
        raise ConfigError(f"processing.analyses: unknown analyses {missing} (defined: {', '.join(analyses)})")
    return [a for a in analyses if a in want]


def analysis_sample_pairs(cfg: Mapping, analyses: Mapping, samples) -> list[tuple[str, str]]:
    """(analysis, sample) jobs: ``processing.analysis_samples`` restricts an analysis to some samples."""
    restrict = (cfg.get("processing") or {}).get("analysis_samples") or {}
    pairs = []
    for a in analyses:
        allowed = restrict.get(a)
        for s in samples:
            if allowed is None or s in allowed:
                pairs.append((a, s))
    return pairs
