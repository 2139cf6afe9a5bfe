"""Signal and background yields per signal region, before and after the NN cut.

    yield_i = sigma x L x B(ll) x sum_{selected in SR i [, NN >= cut]} (w_gen w_d0eff w_flav) / sum_gen_weights
    stat_err_i = sigma x L x B(ll) x sqrt(sum (w_gen w_d0eff w_flav)^2) / sum_gen_weights

B(ll) = (B_e + B_mu)^2 is the probability that both charginos decay to e or mu.
w_flav is the flavour factor of :func:`flavour_factor`, derived from the decay mode
the generator recorded in the event files (skim attribute ``signal_decay_mode``):
1 for flavour-democratic events (and for events whose files record nothing: the
events are taken as they are); for forced e-mu events 1/2 in the e-mu channel and
0 in ee / mu-mu. The study's ntuples are democratic (factor 1). Cross sections and
B(ll) come from the configuration (``samples.build_samples``), not from the skim,
so that a change of ``cross_sections.source`` needs no reprocessing. Background rows (benchmark ``hf``) are B_i = kappa_emu x N_i x L / 2.6
(x f_HF(NN >= cut) after the cut) from the background stage.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from softdisplaced.validation import study_ntuples
from softdisplaced.processing.analyses import CHANNEL_CODES, SR_LABELS
from softdisplaced.nn.scoring import read_scores
from softdisplaced.samples import build_samples, cross_section_fb
from softdisplaced.processing.skim import input_losses

YIELD_COLUMNS = ("source", "benchmark", "analysis", "sr", "stage", "lumi_fb", "yield", "stat_err",
                 "skipped_files", "lost_fraction")  # the last two: input files skipped as bad, and the
# fraction of the sample's entries they held (processing.skip_bad_files; empty where not applicable)


# -------------------------------------------------------------------------- skims
def read_skim(path, columns: Iterable[str] | None = None) -> tuple[dict, dict]:
    """(events, attrs) of a contract skim; ``columns`` restricts what is read."""
    from softdisplaced.processing.skim import read_events

    ev, attrs = read_events(path, columns)
    for k in ("n_events_processed", "sum_gen_weights"):
        if k not in attrs:
            raise ValueError(f"{path}: attribute {k!r} missing")
    return ev, attrs


def lifetime_entry(path, spec: Mapping, name: str, keep_scores=None, cut: float | None = None,
                   channel: str | None = None, d0_efficiency: bool = True) -> dict:
    """What lifetime reweighting needs of one signal skim (limits' scans and the recasts alike):
    ``ct_mm`` (the mediators' proper decay lengths), ``base`` (w_gen x w_d0eff x flavour factor, see
    :func:`signal_weights`), ``sr``, ``n_gen`` (sum_gen_weights), ``ctau_cm`` (generated c*tau: skim
    attribute, else the sample's) and ``name``; with ``keep_scores`` (a score file) and ``cut`` only the
    events with NN score >= cut; with ``channel`` only that channel's events (multi-channel skims);
    ``d0_efficiency=False`` leaves the displaced-lepton efficiency weight out (recast cross-checks)."""
    base, ev, attrs = signal_weights(path, ["mediator_ct_mm"], d0_efficiency=d0_efficiency)
    ct, sr = np.asarray(ev["mediator_ct_mm"]), np.asarray(ev["sr"])
    keep = np.ones(len(base), bool)
    if keep_scores is not None:
        keep &= read_scores(keep_scores, len(base)) >= cut
    if channel is not None:
        if "channel" in ev:
            keep &= np.asarray(ev["channel"]) == CHANNEL_CODES[channel]
        else:
            keep &= channel in json.loads(attrs.get("channels", '{"emu": 0}'))
    return dict(ct_mm=ct[keep], base=base[keep], sr=sr[keep], n_gen=float(attrs["sum_gen_weights"]),
                ctau_cm=float(attrs.get("ctau_cm", spec["ctau_cm"])), name=name)


def skim_key(path) -> tuple[str, str]:
    """(analysis, sample) from ``.../<analysis>/<sample>.h5`` (skims and score files alike)."""
    p = Path(path)
    return p.parent.name, p.stem


def match_scores(skims: Sequence, scores: Sequence) -> dict:
    """skim path -> score path, matched on (analysis, sample)."""
    by_key = {skim_key(s): s for s in scores or []}
    return {sk: by_key.get(skim_key(sk)) for sk in skims}


def flavour_factor(decay_mode: str, channel: str) -> float:
    """Factor that turns the events of a sample generated in ``decay_mode`` into the physical
    (flavour-democratic, B_e = B_mu) yield of ``channel``.

    ``democratic`` (each chargino to e or mu with 1/2 each) or "" (not recorded: the events are
    taken as they are): 1. ``emu`` (every event forced to e-mu): P(e-mu) = 2 x 1/2 x 1/2 = 1/2 in
    the e-mu channel, 0 in ee and mu-mu (the forced sample has none)."""
    if channel not in CHANNEL_CODES:
        raise ValueError(f"unknown channel {channel!r} (known: {sorted(CHANNEL_CODES)})")
    if decay_mode in ("", "democratic"):
        return 1.0
    if decay_mode == "emu":
        return 0.5 if channel == "emu" else 0.0
    raise ValueError(f"unknown signal decay mode {decay_mode!r} (known: democratic, emu)")


def flavour_weights(attrs: Mapping, events: Mapping, path="skim") -> np.ndarray:
    """Per-event flavour factor of a skim: from its ``signal_decay_mode`` attribute and each
    event's channel (the ``channel`` column of multi-channel skims, else the skim's one channel)."""
    mode = str(attrs.get("signal_decay_mode", ""))
    channels = json.loads(attrs.get("channels", '{"emu": 0}'))
    n = len(events["sr"])
    if len(channels) == 1:
        return np.full(n, flavour_factor(mode, next(iter(channels))))
    if "channel" not in events:
        raise ValueError(f"{path}: a skim of channels {sorted(channels)} needs the dataset events/channel")
    table = np.zeros(max(CHANNEL_CODES.values()) + 1)
    for name, code in CHANNEL_CODES.items():
        table[code] = flavour_factor(mode, name)
    return table[np.asarray(events["channel"], dtype=np.int64)]


def signal_weights(path, columns: Iterable[str] = (), d0_efficiency: bool = True) -> tuple[np.ndarray, dict, dict]:
    """``(w, events, attrs)`` of a signal skim: w = w_gen x w_d0eff x flavour factor per event (w_d0eff
    left out with ``d0_efficiency=False``); ``events`` holds ``sr``, ``channel`` where present, and ``columns``."""
    from softdisplaced.processing.skim import read_events

    ev, attrs = read_events(path, ["sr", "weight_gen", "weight_d0eff", *columns], optional=("channel",))
    for k in ("n_events_processed", "sum_gen_weights"):
        if k not in attrs:
            raise ValueError(f"{path}: attribute {k!r} missing")
    w = (np.asarray(ev["weight_gen"], float) * (np.asarray(ev["weight_d0eff"], float) if d0_efficiency else 1.0)
         * flavour_weights(attrs, ev, path))
    return w, ev, attrs


def normalisation(cfg: Mapping, spec: Mapping, sum_gen_weights: float) -> tuple[float, float, str]:
    """(sigma x B(ll) / sum_gen_weights per fb^-1, relative cross-section error, xs label); the flavour
    factor is per event (:func:`signal_weights`)."""
    sig, err, label = cross_section_fb(cfg, spec["m_c"])
    if not (math.isfinite(sum_gen_weights) and sum_gen_weights > 0):
        raise ValueError(f"sample {spec['name']}: sum_gen_weights = {sum_gen_weights} must be positive and finite "
                         "(no generated events, or non-finite generator weights: see processing.non_finite)")
    return sig * float(spec["br_ll"]) / sum_gen_weights, err / sig, label


def sr_sums(weights: np.ndarray, sr: np.ndarray, mask=None, srs=(1, 2, 3)) -> dict[int, tuple[float, float, int]]:
    m = np.ones(len(weights), bool) if mask is None else mask
    return {r: (float(weights[m & (sr == r)].sum()), float((weights[m & (sr == r)] ** 2).sum()),
                int(np.sum(m & (sr == r)))) for r in srs}


def signal_sums(skim_path, score_path=None, cut: float | None = None, srs=(1, 2, 3)) -> dict:
    """{'pre_nn': {sr: (sumw, sumw2, n)}, 'post_nn': ...(when scores)} plus attrs."""
    w, ev, attrs = signal_weights(skim_path)
    sr = np.asarray(ev["sr"])
    out = {"attrs": attrs, "pre_nn": sr_sums(w, sr, srs=srs)}
    if score_path is not None:
        if cut is None:
            raise ValueError("NN scores given but no cut (nn.cut)")
        out["post_nn"] = sr_sums(w, sr, read_scores(score_path, len(w)) >= cut, srs=srs)
    return out


# ---------------------------------------------------------------------- yields
def fast_rows(cfg: Mapping, skims: Sequence, scores: Sequence, lumis: Sequence[float], cut: float | None,
              source: str = "fast") -> list[dict]:
    samples = build_samples(cfg)
    pairs = match_scores(skims, scores)
    rows = []
    for sk, sc in pairs.items():
        analysis, name = skim_key(sk)
        if name not in samples:
            raise ValueError(f"{sk}: sample {name!r} is not in the configuration (samples)")
        spec = samples[name]
        if spec["kind"] != "signal":
            continue
        sums = signal_sums(sk, sc, cut)
        norm, _, _ = normalisation(cfg, spec, float(sums["attrs"]["sum_gen_weights"]))
        losses = input_losses(sk)
        bench = str(spec["benchmark"]) if spec.get("benchmark") is not None else name
        for stage in ("pre_nn", "post_nn"):
            if stage not in sums:
                continue
            for r, (sw, sw2, _n) in sums[stage].items():
                for lumi in lumis:
                    rows.append(dict(source=spec.get("source", source) or source, benchmark=bench, analysis=analysis, sr=SR_LABELS[r], stage=stage,
                                     lumi_fb=float(lumi), **{"yield": norm * lumi * sw}, stat_err=norm * lumi * math.sqrt(sw2),
                                     skipped_files=len(losses["skipped_files"]), lost_fraction=losses["lost_fraction"]))
    return rows


def study_ntuple_rows(cfg: Mapping, lumis: Sequence[float], metrics_path=None, directory=None) -> list[dict]:
    """Yields of the study's own events; post-NN from the NN metrics (sig_eff_at_cut per benchmark)."""
    weight = cfg.get("limits", {}).get("study_ntuples_weight", "F")
    ngen = study_ntuples.n_generated(cfg)
    bench = {b["id"]: b for b in cfg["benchmarks"]}
    sig_eff = {}
    if metrics_path is not None:
        with open(metrics_path) as fh:
            m = json.load(fh)
        sig_eff = {int(k): float(v) for k, v in (m.get("sig_eff_at_cut") or {}).items()}
    rows = []
    for bid, path in sorted(study_ntuples.benchmark_files(cfg, directory).items()):
        b = bench[bid]
        sig, _, _ = cross_section_fb(cfg, b["m_c"])
        norm = sig * b["br_ll"] / ngen  # the study's events are flavour-democratic: all flavours in ngen
        sums = study_ntuples.sr_sums(path, weight)
        for r, (sw, sw2, _n) in sums.items():
            for lumi in lumis:
                base = dict(source="study_ntuples", benchmark=str(bid), analysis="soft_emu", sr=SR_LABELS[r],
                            lumi_fb=float(lumi))
                rows.append(dict(base, stage="pre_nn", **{"yield": norm * lumi * sw}, stat_err=norm * lumi * math.sqrt(sw2)))
                if bid in sig_eff:
                    e = sig_eff[bid]
                    rows.append(dict(base, stage="post_nn", **{"yield": norm * lumi * sw * e},
                                     stat_err=norm * lumi * math.sqrt(sw2) * e))
    return rows


def background_rows(bkg_rows: Sequence[Mapping], analyses: Iterable[str], lumis: Sequence[float],
                    ref_lumi: float, source: str) -> list[dict]:
    """Benchmark 'hf' rows scaled from the background table (given at the reference luminosity)."""
    rows = []
    for r in bkg_rows:
        if r["analysis"] not in set(analyses):
            continue
        for lumi in lumis:
            f = float(lumi) / ref_lumi
            rows.append(dict(source=source, benchmark="hf", analysis=r["analysis"], sr=r["sr"], stage=r["stage"],
                             lumi_fb=float(lumi), **{"yield": float(r["b"]) * f}, stat_err=float(r["b_err"]) * f))
    return rows


def read_background_csv(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: background table not found (run `softdisplaced background`)")
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    need = {"analysis", "stage", "lumi_fb", "sr", "b", "b_err", "rel_tf", "rel_nn"}
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{path}: columns {sorted(need - set(rows[0]))} missing")
    for r in rows:
        for k in ("lumi_fb", "b", "b_err", "rel_tf", "rel_nn", "threshold"):
            if k in r and r[k] != "":
                r[k] = float(r[k])
    return rows


# ---------------------------------------------------------------------- output
def write_csv(path, rows: Sequence[Mapping], columns: Sequence[str]) -> None:
    from softdisplaced.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow({k: _fmt(r.get(k)) for k in columns})


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return f"{v:.6g}"
    return v


def markdown_table(rows: Sequence[Mapping], lumi: float, source: str, analysis: str = "soft_emu") -> str:
    """The study's yield-table shape: one line per benchmark, SR I/II/III before | after the NN cut."""
    sel = [r for r in rows if r["source"] in (source,) and r["analysis"] == analysis and abs(r["lumi_fb"] - lumi) < 1e-9]
    benches = []
    for r in sel:
        if r["benchmark"] not in benches:
            benches.append(r["benchmark"])
    srs = ("I", "II", "III")
    head = "| benchmark | " + " | ".join(f"SR {s} pre-NN" for s in srs) + " | " + \
        " | ".join(f"SR {s} NN" for s in srs) + " |"
    lines = [f"Yields at {lumi:g} fb^-1 (source {source}, analysis {analysis}); +- MC statistics", "",
             head, "|" + "---|" * 7]
    for bm in benches:
        cells = []
        for stage in ("pre_nn", "post_nn"):
            for s in srs:
                m = [r for r in sel if r["benchmark"] == bm and r["sr"] == s and r["stage"] == stage]
                cells.append(f"{m[0]['yield']:.3g} +- {m[0]['stat_err']:.2g}" if m else "--")
        lines.append(f"| {bm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
