"""Validation: fast generator vs Pythia 8 backend vs the original study's selected events.

Per benchmark, each available source is loaded as a :class:`Source` (values of the
compared variables, weights, SR labels, generated-event count), from

* HDF5 skims ``results/skims/<analysis>/<sample>.h5`` (docs/contracts.md): the fast
  generator (``bp<id>``) and the Pythia 8 backend (``bp<id>_pythia8``);
* the study's ntuples (``samples.study_ntuples.dir``): ``varTree`` (events passing its
  e-mu preselection; the same d0 window as the skim is applied) and ``varTree_SR1/2/3``.

For every pair of sources and every variable: Kolmogorov-Smirnov statistic (weighted
ECDFs; equal to scipy's ``ks_2samp`` statistic for unit weights) and Wasserstein-1
distance (also divided by the reference's standard deviation); the fraction of
selected events in each SR; the selection efficiency (selected / generated) per SR,
plain and with the d0-efficiency weights. Where a pair differs by more than
``validation.ks_threshold`` in KS, :func:`explain` writes what the numbers say: the
kind of difference (location, width, spike at zero, tails) and which event ingredient
(jets, MET, lepton kinematics, displacement; ``validation.ingredients``) is implicated
by the pattern of agreeing / disagreeing variables.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from softdisplaced.validation import study_ntuples

__all__ = [
    "validation_settings", "Source", "weighted_ks", "wasserstein", "compare_variable",
    "load_skim", "load_study", "compare_sources", "sr_fractions", "efficiencies", "explain",
    "run_validation", "markdown_table", "benchmark_samples",
]

log = logging.getLogger(__name__)

FEATURES = ["YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj", "dPhiLepMETSelObj",
            "Sphericity", "alphaT", "Spherocity"]


SR_LABELS = (1, 2, 3)


def validation_settings(settings: Mapping | None) -> dict:
    """The ``validation`` section with the schema's defaults filled in (the schema is their one source)."""
    from softdisplaced.config import with_defaults

    return with_defaults({"validation": (settings or {}).get("validation") or {}})["validation"]


@dataclass
class Source:
    """Selected events of one sample: variables, weights, SR labels and generation statistics."""

    label: str
    values: dict[str, np.ndarray]
    sr: np.ndarray
    weight: np.ndarray | None = None           # per-event weight for distributions (None = 1)
    eff_weight: np.ndarray | None = None       # d0-efficiency weight for the efficiencies
    n_generated: float = float("nan")          # generated events (sum of generator weights)
    path: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.sr)


# ------------------------------------------------------------------ statistics

def _clean(x, w=None):
    x = np.asarray(x, dtype=float)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    return x[ok], w[ok]


def weighted_ks(x1, x2, w1=None, w2=None) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F1 - F2| of the weighted ECDFs."""
    x1, w1 = _clean(x1, w1)
    x2, w2 = _clean(x2, w2)
    if len(x1) == 0 or len(x2) == 0:
        return float("nan")
    grid = np.union1d(x1, x2)
    o1, o2 = np.argsort(x1), np.argsort(x2)
    c1 = np.concatenate([[0.0], np.cumsum(w1[o1])]) / w1.sum()
    c2 = np.concatenate([[0.0], np.cumsum(w2[o2])]) / w2.sum()
    f1 = c1[np.searchsorted(x1[o1], grid, side="right")]
    f2 = c2[np.searchsorted(x2[o2], grid, side="right")]
    return float(np.max(np.abs(f1 - f2)))


def wasserstein(x1, x2, w1=None, w2=None) -> float:
    from scipy.stats import wasserstein_distance

    x1, w1 = _clean(x1, w1)
    x2, w2 = _clean(x2, w2)
    if len(x1) == 0 or len(x2) == 0:
        return float("nan")
    return float(wasserstein_distance(x1, x2, w1, w2))


def _wquantile(x, w, q):
    o = np.argsort(x)
    cw = np.cumsum(w[o])
    cw /= cw[-1]
    return float(np.interp(q, cw - 0.5 * w[o] / w.sum(), x[o]))


def _summary(x, w):
    if len(x) == 0:
        return dict(mean=math.nan, std=math.nan, q10=math.nan, median=math.nan, q90=math.nan, frac_zero=math.nan)
    mean = float(np.average(x, weights=w))
    std = float(np.sqrt(np.average((x - mean) ** 2, weights=w)))
    return dict(mean=mean, std=std, q10=_wquantile(x, w, 0.1), median=_wquantile(x, w, 0.5),
                q90=_wquantile(x, w, 0.9), frac_zero=float(w[x == 0].sum() / w.sum()))


def _n_eff(w):
    return float(w.sum() ** 2 / np.sum(w * w)) if len(w) else 0.0


def compare_variable(x1, x2, w1=None, w2=None) -> dict:
    """KS, its asymptotic p-value (effective sample sizes), Wasserstein distance and summaries."""
    from scipy.stats import kstwo

    a, wa = _clean(x1, w1)
    b, wb = _clean(x2, w2)
    ks = weighted_ks(a, b, wa, wb)
    wd = wasserstein(a, b, wa, wb)
    sa, sb = _summary(a, wa), _summary(b, wb)
    na, nb = _n_eff(wa), _n_eff(wb)
    if na > 0 and nb > 0 and np.isfinite(ks):
        en = na * nb / (na + nb)
        p = float(kstwo.sf(ks, max(int(round(en)), 1)))
    else:
        p = math.nan
    pooled = sb["std"] if sb["std"] and np.isfinite(sb["std"]) and sb["std"] > 0 else sa["std"]
    return dict(n_a=len(a), n_b=len(b), ks=ks, ks_pvalue=p, wasserstein=wd,
                wasserstein_rel=(wd / pooled) if pooled and np.isfinite(pooled) and pooled > 0 else math.nan,
                **{f"{k}_a": v for k, v in sa.items()}, **{f"{k}_b": v for k, v in sb.items()})


# ------------------------------------------------------------------ inputs

def load_skim(path: str | os.PathLike, label: str, vcfg: Mapping) -> Source:
    """An HDF5 skim (docs/contracts.md) as a :class:`Source`."""
    from softdisplaced.processing.skim import read_events

    path = Path(path)
    from softdisplaced.inference.yields import flavour_weights

    g, attrs = read_events(path, ["sr"], optional=[*vcfg["variables"], "weight_gen", "weight_d0eff", "channel"])
    values = {}
    notes = []
    for v in vcfg["variables"]:
        if v in g:
            x = np.asarray(g[v], dtype=float)
            values[v] = np.abs(x) if v in vcfg["abs_variables"] else x
        else:
            notes.append(f"variable {v} missing in {path.name}")
    sr = np.asarray(g["sr"], dtype=int)
    wgen = np.asarray(g["weight_gen"], float) if "weight_gen" in g else np.ones(len(sr))
    wd0 = np.asarray(g["weight_d0eff"], float) if "weight_d0eff" in g else np.ones(len(sr))
    wd0 = wd0 * flavour_weights(attrs, g, path)  # forced e-mu samples count 1/2 (the study's events: all flavours)
    n_gen = float(attrs.get("sum_gen_weights", attrs.get("n_events_processed", math.nan)))
    return Source(label=label, values=values, sr=sr, weight=wgen, eff_weight=wgen * wd0, n_generated=n_gen,
                  path=str(path), notes=notes)


def load_study(path: str | os.PathLike, vcfg: Mapping, n_generated: float, label: str = "study",
               d0_window_mm: Sequence[float] = (0.2, 100.0)) -> Source:
    """The study's ntuple (``varTree`` + ``varTree_SR1/2/3``) as a :class:`Source`.

    ``varTree`` holds the events of the e-mu preselection without the d0 window; the window
    (both leptons ``d0_window_mm[0] < |d0| < d0_window_mm[1]``) is applied here so that the
    events are those of the SR trees (checked: the counts must agree).
    """
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: study ntuple does not exist")
    names = dict(vcfg.get("study_names") or {})
    with uproot.open(path) as f:
        t = f["varTree"]
        branches = set(t.keys())
        need = {names.get(v, v) for v in vcfg["variables"]} | {"D0El", "D0Mu"}
        wname = vcfg.get("study_weight", "F")
        wb = [f"wtel{wname}", f"wtmu{wname}"] if wname != "none" else []
        arr = t.arrays(sorted((need | set(wb)) & branches), library="np")
        n_sr = {i: f[f"varTree_SR{i}"].num_entries for i in SR_LABELS if f"varTree_SR{i}" in f}
    de, dm = np.abs(arr["D0El"]), np.abs(arr["D0Mu"])
    lo, hi = d0_window_mm
    sel = (de > lo) & (de < hi) & (dm > lo) & (dm < hi)
    sr = np.zeros(len(de), dtype=int)
    both = lambda a, b: sel & (de > a) & (dm > a) & (de < b) & (dm < b)  # noqa: E731
    sr[sel] = 1
    sr[both(0.5, hi)] = 2
    sr[both(1.0, hi)] = 3
    notes = []
    for i, n in n_sr.items():
        if n != int(np.sum(sr[sel] == i)):
            notes.append(f"SR{i}: varTree_SR{i} has {n} events, the d0 window on varTree gives {int(np.sum(sr[sel] == i))}")
    values = {}
    for v in vcfg["variables"]:
        b = names.get(v, v)
        if b in arr:
            x = np.asarray(arr[b], float)[sel]
            values[v] = np.abs(x) if v in vcfg["abs_variables"] else x
        else:
            notes.append(f"variable {v} ({b}) not in {path.name}")
    eff_w = np.ones(int(sel.sum()))
    if wb and all(b in arr for b in wb):
        eff_w = (np.asarray(arr[wb[0]], float) * np.asarray(arr[wb[1]], float))[sel]
    return Source(label=label, values=values, sr=sr[sel], weight=None, eff_weight=eff_w,
                  n_generated=float(n_generated), path=str(path), notes=notes)


# ------------------------------------------------------------------ comparisons

def compare_sources(sources: Mapping[str, Source], variables: Iterable[str], benchmark) -> list[dict]:
    """Rows (benchmark, variable, a, b, statistics) for every pair of sources (in the given order)."""
    labels = list(sources)
    rows = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            a, b = sources[labels[i]], sources[labels[j]]
            for v in variables:
                if v not in a.values or v not in b.values:
                    continue
                r = compare_variable(a.values[v], b.values[v], a.weight, b.weight)
                rows.append(dict(benchmark=benchmark, variable=v, a=a.label, b=b.label, **r))
    return rows


def sr_fractions(src: Source, weighted: bool = False) -> dict[int, float]:
    w = (src.weight if src.weight is not None else np.ones(src.n)) if weighted else np.ones(src.n)
    tot = w.sum()
    return {i: float(w[src.sr == i].sum() / tot) if tot > 0 else math.nan for i in (0,) + SR_LABELS}


def efficiencies(src: Source) -> dict[str, float]:
    """Selected / generated per SR (and all SRs), plain and d0-efficiency weighted."""
    out = {}
    wgen = src.weight if src.weight is not None else np.ones(src.n)
    weff = src.eff_weight if src.eff_weight is not None else wgen
    for key, m in [("all", src.sr > 0)] + [(f"SR{i}", src.sr == i) for i in SR_LABELS]:
        out[f"eff_{key}"] = float(wgen[m].sum() / src.n_generated)
        out[f"eff_{key}_d0w"] = float(weff[m].sum() / src.n_generated)
        out[f"n_{key}"] = int(m.sum())
    return out


def _fmt(x, nd=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    ax = abs(x)
    if ax != 0 and (ax < 1e-2 or ax >= 1e4):
        return f"{x:.{nd - 1}e}"
    return f"{x:.{nd}g}" if ax >= 1 else f"{x:.{nd}f}"


def explain(row: Mapping, rows_same_pair: Sequence[Mapping], vcfg: Mapping) -> str:
    """Data-driven explanation of one KS disagreement (row of :func:`compare_sources`)."""
    thr = float(vcfg["ks_threshold"])
    v, a, b = row["variable"], row["a"], row["b"]
    parts = [f"{v}: KS = {_fmt(row['ks'])} between {a} (n = {row['n_a']}) and {b} (n = {row['n_b']})"]
    if np.isfinite(row.get("ks_pvalue", math.nan)) and row["ks_pvalue"] > 0.01:
        parts.append(f"not significant with these statistics (p = {_fmt(row['ks_pvalue'])}): more events needed")
    sa, sb = row["std_a"], row["std_b"]
    ref = sb if sb and np.isfinite(sb) and sb > 0 else sa
    shift = (row["median_a"] - row["median_b"]) / ref if ref else math.nan
    findings = []
    if np.isfinite(shift) and abs(shift) > 0.1:
        findings.append(f"median {_fmt(row['median_a'])} vs {_fmt(row['median_b'])} "
                        f"({'higher' if shift > 0 else 'lower'} in {a} by {_fmt(abs(shift), 2)} standard deviations)")
    if sa and sb and np.isfinite(sa) and np.isfinite(sb) and sb > 0:
        ratio = sa / sb
        if abs(ratio - 1) > 0.15:
            findings.append(f"width ratio {a}/{b} = {_fmt(ratio, 2)}")
    za, zb = row["frac_zero_a"], row["frac_zero_b"]
    if np.isfinite(za) and np.isfinite(zb) and abs(za - zb) > 0.05:
        findings.append(f"fraction of events at exactly 0: {_fmt(za, 2)} vs {_fmt(zb, 2)}")
    for q in ("q10", "q90"):
        qa, qb = row[f"{q}_a"], row[f"{q}_b"]
        if ref and np.isfinite(qa) and np.isfinite(qb) and abs(qa - qb) / ref > 0.25:
            findings.append(f"{'lower' if q == 'q10' else 'upper'} decile {_fmt(qa)} vs {_fmt(qb)}")
    if findings:
        parts.append("; ".join(findings))
    # ingredient attribution from the pattern of the same pair's other variables
    ks_of = {r["variable"]: r["ks"] for r in rows_same_pair}
    verdicts = []
    for ing, vars_ in (vcfg.get("ingredients") or {}).items():
        if v not in vars_:
            continue
        others = [(w, ks_of[w]) for w in vars_ if w != v and w in ks_of]
        bad = [f"{w} {_fmt(k)}" for w, k in others if k > thr]
        good = [f"{w} {_fmt(k)}" for w, k in others if k <= thr]
        verdicts.append((ing, bad, good))
    implicated = [ing for ing, bad, good in verdicts if bad and len(bad) >= len(good)]
    cleared = [ing for ing, bad, good in verdicts if not bad and good]
    for ing, bad, good in verdicts:
        if bad or good:
            txt = f"other {ing} variables: " + (f"disagree ({', '.join(bad)})" if bad else "")
            if good:
                txt += ("; " if bad else "") + f"agree ({', '.join(good)})"
            parts.append(txt)
    if implicated and cleared:
        parts.append(f"pattern points to the {', '.join(implicated)} modelling (the {', '.join(cleared)} "
                     f"variables agree)")
    elif implicated:
        parts.append(f"pattern points to the {', '.join(implicated)} modelling")
    elif cleared:
        parts.append(f"the {', '.join(cleared)} variables agree: the difference is specific to {v}")
    return ". ".join(parts) + "."


def markdown_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str]]) -> str:
    head = "| " + " | ".join(t for _, t in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[k]) if isinstance(r.get(k), float) else str(r.get(k, ""))
                                       for k, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path, rows: Sequence[Mapping]):
    import csv
    import io

    from softdisplaced.atomic import write_text

    if not rows:
        write_text(path, "")
        return
    cols = list(rows[0].keys())
    for r in rows[1:]:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


# ------------------------------------------------------------------ plots

def overlay_plots(benchmark, sources: Mapping[str, Source], variables: Sequence[str], outdir: Path, bins: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep as hep

        plt.style.use(hep.style.CMS)
        plt.rcParams.update({"font.size": 11, "axes.labelsize": 11, "axes.titlesize": 11,
                             "legend.fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9})
    except ImportError:  # pragma: no cover
        hep = None
    vs = [v for v in variables if any(v in s.values for s in sources.values())]
    ncol = 4
    nrow = int(math.ceil((len(vs) + 1) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow))
    axes = np.atleast_1d(axes).ravel()
    for ax, v in zip(axes, vs):
        allx = np.concatenate([s.values[v] for s in sources.values() if v in s.values])
        allx = allx[np.isfinite(allx)]
        if len(allx) == 0:
            continue
        lo, hi = np.quantile(allx, [0.0, 0.99])
        log_x = v in ("d0_e", "d0_mu") and lo > 0
        edges = np.geomspace(max(lo, 1e-3), max(hi, lo * 10), bins + 1) if log_x else np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for s in sources.values():
            if v not in s.values:
                continue
            x = s.values[v]
            w = s.weight if s.weight is not None else np.ones(len(x))
            h, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges, weights=w)
            h = h / h.sum() if h.sum() > 0 else h
            if hep is not None:
                hep.histplot(h, edges, ax=ax, label=f"{s.label} ({s.n})", histtype="step")
            else:  # pragma: no cover
                ax.stairs(h, edges, label=f"{s.label} ({s.n})")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(v + (" [mm]" if v.startswith("d0") else ""))
        ax.set_ylabel("fraction")
    ax = axes[len(vs)]
    width = 0.8 / max(len(sources), 1)
    for k, s in enumerate(sources.values()):
        fr = sr_fractions(s)
        ax.bar(np.arange(3) + k * width, [fr[i] for i in SR_LABELS], width=width, label=s.label)
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["SR I", "SR II", "SR III"])
    ax.set_ylabel("fraction of selected")
    for extra in axes[len(vs) + 1:]:
        extra.axis("off")
    axes[0].legend(loc="best")
    from softdisplaced.report.style import default_label

    fig.suptitle(f"{default_label()}: generators compared, benchmark {benchmark}")
    fig.tight_layout()
    from softdisplaced.atomic import atomic_path

    out = []
    for ext in ("pdf", "png"):
        dest = outdir / f"bp{benchmark}_overlays.{ext}"
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, dpi=110)
        out.append(str(dest))
    plt.close(fig)
    return out


# ------------------------------------------------------------------ driver

def run_validation(settings: Mapping, outdir: str | os.PathLike, fast: Mapping[int, str] | None = None,
                   pythia8: Mapping[int, str] | None = None, study_dir: str | os.PathLike | None = None,
                   benchmarks: Iterable[int] | None = None, plots: bool = True,
                   fidelity_inputs: Mapping | None = None) -> dict:
    """Build the validation report under ``outdir``; returns the summary (also ``summary.json``).

    ``fast`` / ``pythia8``: benchmark id -> skim path; ``study_dir``: the study's ntuples
    (files from ``nn.study_ntuples.files``, :func:`softdisplaced.validation.study_ntuples.file_map`). A benchmark is compared when at least two sources exist.
    Outputs: ``comparison.csv/.md`` (KS, Wasserstein per benchmark / variable / pair),
    ``sr_fractions.csv``, ``efficiencies.csv``, ``explanations.md``, ``REPORT.md``,
    ``plots/bp<id>_overlays.pdf/png``, ``summary.json``.

    ``fidelity_inputs`` (all optional): ``yields`` (yields.csv), ``nn_metrics`` / ``study_nn_metrics``
    (metrics.json of the skim networks, one path or a list, and of the study-ntuple network), ``transfer_factors``
    (transfer_factors.csv), ``cutflows`` (benchmark -> source -> skim cutflow .json), ``references`` (paths of
    committed measurements, :func:`fidelity_reference`): the fidelity section of the report (``fidelity.csv``,
    ``fidelity.md``; :func:`fidelity_section`).
    """
    from softdisplaced.atomic import jsonable, write_json, write_text
    from softdisplaced.provenance import record

    vcfg = validation_settings(settings)
    outdir = Path(outdir)
    (outdir / "plots").mkdir(parents=True, exist_ok=True)
    fast = {int(k): v for k, v in (fast or {}).items()}
    pythia8 = {int(k): v for k, v in (pythia8 or {}).items()}
    n_study = float(study_ntuples.n_generated(settings))
    files = {k: Path(v).stem for k, v in study_ntuples.file_map(settings).items()}
    ids = sorted(set(benchmarks) if benchmarks is not None else set(fast) | set(pythia8) |
                 ({i for i, stem in files.items() if study_dir and (Path(study_dir) / f"{stem}.root").exists()}))
    comp_rows, sr_rows, eff_rows, explanations, inputs, notes, plot_files = [], [], [], [], [], [], []
    thr = float(vcfg["ks_threshold"])
    for bm in ids:
        sources: dict[str, Source] = {}
        if bm in fast:
            sources["fast"] = load_skim(fast[bm], "fast", vcfg)
        if bm in pythia8:
            sources["pythia8"] = load_skim(pythia8[bm], "pythia8", vcfg)
        if study_dir and bm in files and (Path(study_dir) / f"{files[bm]}.root").exists():
            sources["study"] = load_study(Path(study_dir) / f"{files[bm]}.root", vcfg, n_study)
        for s in sources.values():
            inputs.append(s.path)
            notes += [f"benchmark {bm}, {s.label}: {n}" for n in s.notes]
        for s in sources.values():
            fr = sr_fractions(s)
            sr_rows.append(dict(benchmark=bm, source=s.label, n_selected=s.n,
                                **{f"frac_SR{i}": fr[i] for i in SR_LABELS}, frac_noSR=fr[0]))
            eff_rows.append(dict(benchmark=bm, source=s.label, n_generated=s.n_generated, **efficiencies(s)))
        if len(sources) < 2:
            notes.append(f"benchmark {bm}: only {list(sources)} available, nothing to compare")
            continue
        rows = compare_sources(sources, vcfg["variables"], bm)
        # the SR fractions as a "variable": KS of the discrete SR label distribution
        labs = list(sources)
        for i in range(len(labs)):
            for j in range(i + 1, len(labs)):
                a, b = sources[labs[i]], sources[labs[j]]
                r = compare_variable(a.sr.astype(float), b.sr.astype(float), a.weight, b.weight)
                rows.append(dict(benchmark=bm, variable="sr", a=a.label, b=b.label, **r))
        comp_rows += rows
        for r in rows:
            if r["ks"] > thr:
                same = [x for x in rows if x["a"] == r["a"] and x["b"] == r["b"]]
                explanations.append(dict(benchmark=bm, variable=r["variable"], a=r["a"], b=r["b"], ks=r["ks"],
                                         text=explain(r, same, vcfg)))
        if plots:
            plot_files += overlay_plots(bm, sources, vcfg["variables"], outdir / "plots", int(vcfg["bins"]))

    cols = [("benchmark", "BP"), ("variable", "variable"), ("a", "A"), ("b", "B"), ("n_a", "n A"), ("n_b", "n B"),
            ("ks", "KS"), ("ks_pvalue", "p(KS)"), ("wasserstein", "W1"), ("wasserstein_rel", "W1/std"),
            ("mean_a", "mean A"), ("mean_b", "mean B")]
    _write_csv(outdir / "comparison.csv", comp_rows)
    write_text(outdir / "comparison.md", markdown_table(comp_rows, cols))
    _write_csv(outdir / "sr_fractions.csv", sr_rows)
    _write_csv(outdir / "efficiencies.csv", eff_rows)
    exp_md = "".join(f"- **BP{e['benchmark']} {e['a']} vs {e['b']}, {e['variable']}** (KS {_fmt(e['ks'])}): "
                     f"{e['text']}\n" for e in explanations) or f"No KS statistic above {thr}.\n"
    write_text(outdir / "explanations.md", f"# Differences above KS {thr}\n\n" + exp_md)
    report = ["# Validation: fast generator vs Pythia 8 vs the study's events", "",
              f"Analysis `{vcfg['analysis']}`; study events: its selected events with the same d0 window, "
              f"{int(n_study)} generated per benchmark; efficiency weights of the study: wtel{vcfg['study_weight']} x "
              f"wtmu{vcfg['study_weight']}.", "",
              "## KS statistic and Wasserstein distance", "", markdown_table(comp_rows, cols),
              "## Fraction of selected events per SR", "",
              markdown_table(sr_rows, [("benchmark", "BP"), ("source", "source"), ("n_selected", "selected"),
                                       ("frac_SR1", "SR I"), ("frac_SR2", "SR II"), ("frac_SR3", "SR III")]),
              "## Selection efficiency (selected / generated)", "",
              markdown_table(eff_rows, [("benchmark", "BP"), ("source", "source"), ("n_generated", "generated"),
                                        ("eff_all", "all SRs"), ("eff_SR1", "SR I"), ("eff_SR2", "SR II"),
                                        ("eff_SR3", "SR III"), ("eff_all_d0w", "all, d0-eff weighted")]),
              f"## Differences above KS {thr}", "", exp_md]
    if notes:
        report += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    fid_md, fid_rows, fid_sentences = _fidelity(settings, fidelity_inputs or {}, study_dir, files, n_study, inputs,
                                                skims={"fast": fast, "pythia8": pythia8})
    if fid_md:
        report += [fid_md]
        _write_csv(outdir / "fidelity.csv", fid_rows)
        write_text(outdir / "fidelity.md", fid_md)
    write_text(outdir / "REPORT.md", "\n".join(report))
    summary = dict(benchmarks=ids, n_comparisons=len(comp_rows), n_explained=len(explanations),
                   fidelity=fid_rows, fidelity_explanations=fid_sentences,
                   comparisons=comp_rows, sr_fractions=sr_rows, efficiencies=eff_rows, notes=notes,
                   plots=plot_files, provenance=record(settings, [p for p in inputs if p]))
    write_json(outdir / "summary.json", jsonable(summary))
    return summary


# ------------------------------------------------------------------ fidelity (issue 11)
def benchmark_samples(samples: Mapping[str, Mapping]) -> list[str]:
    """Names of the 13 TeV chargino samples of the benchmarks (fast generator, Pythia 8 and its validation
    copies ``bp<id>_pythia8``): the samples that validation and fidelity compare with the study's 13 TeV events.

    The 8 TeV copies ``<name>_8tev`` (samples.sqrt_s_8tev) keep their benchmark id and generator; they are left
    out, so that they cannot stand in for the 13 TeV sample of the same benchmark."""
    from softdisplaced.samples import signal_samples

    return [n for n in signal_samples(samples, include_validation=True, sqrt_s_tev=13)
            if samples[n].get("benchmark") is not None and samples[n]["source"] in ("fast", "pythia8")]


def fidelity_settings(settings: Mapping | None) -> dict:
    """``validation.fidelity`` with the schema defaults (explanation texts per known cause included)."""
    from softdisplaced.generation.defaults import with_defaults

    user = ((settings or {}).get("validation") or {}).get("fidelity") or {}
    out = with_defaults(user, "validation", "fidelity")
    for key in ("causes", "quantity_causes", "cutflow_steps", "absolute_tolerances"):   # user entries extend the defaults
        if key in user:
            default = with_defaults({}, "validation", "fidelity")[key]
            out[key] = {**default, **user[key]}
    return out


def _ratio(a, b) -> float:
    a, b = float(a), float(b)
    return a / b if b != 0 and np.isfinite(a) and np.isfinite(b) else float("nan")


def fidelity_yields(yields: Sequence[Mapping], lumi_fb: float | None = None, analysis: str = "soft_emu",
                    min_study_yield: float = 0.0, network: str = "") -> list[dict]:
    """Project yields / study-ntuple yields per source (fast, pythia8), benchmark, SR and stage.

    ``yields``: rows of ``results/yields/yields.csv`` (``source`` = fast | pythia8 | study_ntuples);
    the luminosity defaults to the first one present (ratios do not depend on it); ``network``: the network
    behind its post-NN rows (``background.nn_network``), named in those rows."""
    rows = [r for r in yields if r.get("analysis") == analysis and str(r.get("benchmark")) != "hf"]
    if lumi_fb is None:
        lumis = sorted({float(r["lumi_fb"]) for r in rows})
        if not lumis:
            return []
        lumi_fb = lumis[0]
    rows = [r for r in rows if abs(float(r["lumi_fb"]) - lumi_fb) < 1e-9]
    study = {(str(r["benchmark"]), r["sr"], r["stage"]): r for r in rows if r["source"] == "study_ntuples"}
    out = []
    for r in rows:
        if r["source"] == "study_ntuples":
            continue
        stage = r["stage"].removesuffix("_pooled")   # pooled_yields: the same quantity
        ref = study.get((str(r["benchmark"]), r["sr"], stage))
        if ref is None or float(ref["yield"]) <= min_study_yield:
            continue
        y, e, ys, es = (float(r["yield"]), float(r["stat_err"]), float(ref["yield"]), float(ref["stat_err"]))
        q = _ratio(y, ys)
        rel = math.hypot(e / y if y > 0 else 0.0, es / ys if ys > 0 else 0.0)
        out.append(dict(quantity=f"yield_{r['stage']}", source=r["source"],
                        network=r.get("network") or (network if stage == "post_nn" else ""),
                        benchmark=str(r["benchmark"]),
                        sr=r["sr"], lumi_fb=lumi_fb, project=y, study=ys, ratio=q, ratio_err=q * rel))
    return sorted(out, key=lambda x: (x["quantity"], x["source"], x["network"], x["benchmark"], x["sr"]))


def pooled_yields(settings: Mapping, skims: Mapping[str, Mapping[int, str]], lumi_fb: float,
                  scores: Mapping[int, str] | None = None, cut: float | None = None, network: str = "") -> list[dict]:
    """Pre-NN yields of every benchmark from all benchmark samples of the same generator, mediator mass and
    mass splitting pooled by exact lifetime reweighting (softdisplaced.inference.limits.pooled_efficiency: weight
    p_tau(t) / sum_k n_k p_tau_k(t), unbiased for any pooling), normalised like the direct yields
    (cross section x B(ll) x L; the flavour factor and d0-efficiency weights per event).

    Benchmarks 2-6 share (m_c, dm) = (220, 20) and differ only in c*tau, so each is measured with the events of
    all five: the comparison with the study no longer rests on one sample's sparsely populated SRs.
    ``skims``: generator -> benchmark id -> skim path; ``settings`` needs ``benchmarks`` and ``cross_sections``.
    Rows as yields.csv (stage ``pre_nn_pooled``) plus ``n_eff``, ``n_raw`` (selected events of all pooled samples),
    ``n_gen`` (their generated events) and ``samples``; groups of one sample are left out.

    With ``scores`` (benchmark id -> a network's score file of that skim; one generator) and ``cut``: the post-NN
    yields (stage ``post_nn_pooled``, ``network``), the same pooling over the events with score >= cut."""
    if scores is not None and (cut is None or len(skims) != 1):
        raise ValueError("pooled_yields: post-NN pooling needs the cut and the skims of one generator")
    from collections import defaultdict

    from softdisplaced.inference.limits import SR_LABELS, SRS, pooled_efficiency
    from softdisplaced.inference.yields import lifetime_entry
    from softdisplaced.samples import cross_section_fb

    bench = {int(b["id"]): b for b in settings.get("benchmarks") or []}
    out = []
    for source, paths in sorted(skims.items()):
        groups: dict = defaultdict(list)
        for bid, path in sorted(paths.items()):
            if int(bid) not in bench:
                raise ValueError(f"{path}: benchmark {bid} is not in the configuration (benchmarks)")
            b = bench[int(bid)]
            spec = dict(b, name=f"bp{bid}")
            keep = None if scores is None else scores.get(int(bid))
            if scores is not None and keep is None:
                continue
            groups[(float(b["m_c"]), float(b["dm"]))].append(
                (int(bid), lifetime_entry(path, spec, spec["name"], keep_scores=keep, cut=cut)))
        for (m_c, dm), members in sorted(groups.items()):
            if len(members) < 2:
                continue
            entries = [e for _, e in members]
            pe = pooled_efficiency(entries, [bench[bid]["ctau_cm"] for bid, _ in members])
            sig, _, _ = cross_section_fb(settings, m_c)
            names = "+".join(e["name"] for e in entries)
            for i, (bid, _) in enumerate(members):
                norm = sig * float(bench[bid]["br_ll"]) * float(lumi_fb)
                for j, r in enumerate(SRS):
                    out.append(dict(source=source, benchmark=str(bid), analysis="soft_emu", sr=SR_LABELS[r],
                                    stage="pre_nn_pooled" if scores is None else "post_nn_pooled",
                                    **({} if scores is None else {"network": network}),
                                    lumi_fb=float(lumi_fb), **{"yield": norm * pe["eff"][j, i]},
                                    stat_err=norm * pe["eff_err"][j, i], n_eff=float(pe["n_eff"][j, i]),
                                    n_raw=int(pe["n_raw"][j, i]), n_gen=sum(e["n_gen"] for e in entries),
                                    samples=names))
    return out


def study_cutflow(path: str | os.PathLike, n_generated: float, d0_window_mm: Sequence[float] = (0.2, 100.0)) -> dict:
    """The study's cutflow from its ntuple: generated, e-mu preselection (``varTree``), d0 window, SRs."""
    import uproot

    with uproot.open(path) as f:
        t = f["varTree"]
        arr = t.arrays(["D0El", "D0Mu"], library="np")
    de, dm = np.abs(arr["D0El"]), np.abs(arr["D0Mu"])
    lo, hi = d0_window_mm
    win = (de > lo) & (de < hi) & (dm > lo) & (dm < hi)
    return {"all": float(n_generated), "preselection": float(len(de)), "d0_window": float(win.sum())}


def fidelity_cutflow(cutflows: Mapping[str, Mapping[str, Mapping]], study: Mapping[str, Mapping[str, float]],
                     steps: Mapping[str, str], flavour: Mapping[tuple[str, str], float] | None = None) -> list[dict]:
    """Fraction of generated events passing each step, the project's cutflow (skim ``*.cutflow.json``,
    weighted) beside the study's (``study_cutflow``); ``steps``: study step -> the project's cut name.

    ``cutflows``: benchmark -> source -> cutflow dict; ``study``: benchmark -> step -> count; ``flavour``:
    (benchmark, source) -> flavour factor of the sample's e-mu events (softdisplaced.inference.yields
    .flavour_factor: 1/2 for a forced e-mu sample), applied to every step after the first, so that the fractions
    are those of flavour-democratic events like the study's."""
    out = []
    for bm, by_src in sorted(cutflows.items()):
        ref = study.get(str(bm))
        for src, cf in sorted(by_src.items()):
            cuts = {c["name"]: float(c["weighted"]) for c in cf.get("cuts", [])}
            total = float(cf.get("sum_gen_weights") or cuts.get("all", float("nan")))
            factor = float((flavour or {}).get((str(bm), src), 1.0))
            for i, c in enumerate(cf.get("cuts", [])):
                frac = float(c["weighted"]) / total * (factor if i else 1.0) if total else float("nan")
                study_step = next((s for s, name in steps.items() if name == c["name"]), None)
                sfrac = (ref[study_step] / ref["all"]) if ref and study_step in ref and ref.get("all") else float("nan")
                out.append(dict(quantity="cutflow", source=src, benchmark=str(bm), step=c["name"],
                                study_step=study_step or "", project=frac, study=sfrac, ratio=_ratio(frac, sfrac)))
    return out


#: columns of a committed fidelity measurement (validation.fidelity.references)
REFERENCE_COLUMNS = ("quantity", "source", "benchmark", "sr", "project", "study", "ratio", "ratio_err",
                     "n_generated", "n_selected", "decay_mode", "seed", "config", "commit", "command")


def fidelity_reference(path: str | os.PathLike) -> list[dict]:
    """Rows of a committed fidelity measurement (validation.fidelity.references: e.g. Pythia 8 with >= 1e5 events
    per benchmark, too costly for the default run; docs/generators.md): the yield ratios with the events used, seed, configuration, commit and
    command that produced them. The rows keep their quantity; their source is labelled ``<source>, reference``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fidelity reference measurement (validation.fidelity.references) "
                                "does not exist")
    rows = _read_rows(path)
    missing = [c for c in REFERENCE_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{path}: not a fidelity reference table ({'no rows' if not rows else f'missing columns {missing}'})")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            num = {k: float(r[k]) for k in ("project", "study", "ratio", "ratio_err")}
            counts = {k: int(r[k]) for k in ("n_generated", "n_selected")}
        except ValueError as exc:
            raise ValueError(f"{path}: line {i}: {exc}") from None
        out.append({**r, **num, **counts, "source": f"{r['source']}, reference"})
    return out


def jet_definition(features: Sequence[str]) -> str:
    """Which jets a network's jet-dependent inputs (HtJet, YUserObj, dPhiLepMETSelObj, and YDelpObj through its
    HT) use: the study's jets (their ``*_photon_veto`` twins; YDelpObj_photon_veto with the study card's HT),
    all jets, a mixture (named), or none."""
    from softdisplaced.processing.features import STUDY_FEATURES

    features = list(features or [])
    study = [f for f in features if f in STUDY_FEATURES.values()]
    every = [f for f in features if f in STUDY_FEATURES]
    if study and every:
        return f"study's jets in {', '.join(study)}; all jets in {', '.join(every)}"
    if study:
        return f"study's jets ({', '.join(study)})"
    return f"all jets ({', '.join(every)})" if every else "none"


def fidelity_nn(project: Mapping, study: Mapping) -> list[dict]:
    """AUC and signal efficiency at the cut per benchmark, and the HF efficiency at the cut, from the two
    networks' ``metrics.json`` (this workflow's skims vs the study's ntuples); every row names the project's
    network and its jet definition (:func:`jet_definition` of its ``features``); ``difference_err``: the
    statistical errors of the two (``*_err``) in quadrature (NaN where a file has none)."""
    def err(metrics, key, bm=None):
        e = metrics.get(f"{key}_err")
        e = (e or {}).get(bm) if bm is not None else e
        return float(e) if e is not None else float("nan")

    out = []
    label = dict(source=str(project.get("input", "skims")), network=str(project.get("network", "")),
                 jets=jet_definition(project.get("features")))
    for key in ("auc", "sig_eff_at_cut"):
        p, s = project.get(key) or {}, study.get(key) or {}
        for bm in sorted(set(p) & set(s), key=str):
            if p[bm] is None or s[bm] is None:
                continue
            out.append(dict(quantity=key, **label, benchmark=str(bm),
                            project=float(p[bm]), study=float(s[bm]), ratio=_ratio(p[bm], s[bm]),
                            difference=float(p[bm]) - float(s[bm]),
                            difference_err=math.hypot(err(project, key, bm), err(study, key, bm))))
    if project.get("hf_eff_at_cut") is not None and study.get("hf_eff_at_cut") is not None:
        p, s = float(project["hf_eff_at_cut"]), float(study["hf_eff_at_cut"])
        # each on the held-out events of its own HF sample (hf; hf_study: the study's composition)
        bkg = "+".join(project.get("training_backgrounds") or ["hf"])
        out.append(dict(quantity="hf_eff_at_cut", **label, benchmark=bkg,
                        project=p, study=s, ratio=_ratio(p, s), difference=p - s,
                        difference_err=math.hypot(err(project, "hf_eff_at_cut"), err(study, "hf_eff_at_cut"))))
    return out


def scored_benchmarks(score_files: Sequence, fast: Mapping[int, str]) -> list[tuple[str, int, str, str]]:
    """(network, benchmark id, skim, score file) of each score file of a fast skim (``fast``: benchmark id -> skim),
    from the score file's attributes ``network`` and ``skim``; a score file of another skim is an error."""
    from softdisplaced.nn.scoring import read_score_attributes

    bench_of = {os.path.normpath(str(p)): int(b) for b, p in fast.items()}
    out = []
    for path in score_files:
        attrs = read_score_attributes(path)
        skim_path = os.path.normpath(str(attrs.get("skim", "")))
        if skim_path not in bench_of:
            raise ValueError(f"{path}: scores of {attrs.get('skim')!r}, which is not a fast skim of this validation "
                             f"({', '.join(sorted(bench_of))})")
        out.append((str(attrs.get("network", "")), bench_of[skim_path], skim_path, str(path)))
    return out


def fidelity_post_nn(yields: Sequence[Mapping], score_files: Sequence, fast: Mapping[int, str], cut: float,
                     analysis: str = "soft_emu", min_study_yield: float = 0.0) -> list[dict]:
    """Post-NN yields of further networks (e.g. the study-compatible one) against the study's, per benchmark and SR.

    ``score_files``: a network's scores on the fast generator's skims of ``analysis`` (attributes ``network``
    and ``skim``; ``fast``: benchmark id -> that skim). The project's post-NN yield is its pre-NN yield
    (``yields``, the rows of yields.csv) times the weighted fraction of the SR's events with score >= ``cut``
    (:func:`softdisplaced.inference.yields.signal_sums`, the yields' own sums: the normalisation cancels);
    the study's is its post-NN row of yields.csv (the study-ntuple network)."""
    from softdisplaced.inference.yields import SR_LABELS, signal_sums

    pre = {(str(r["benchmark"]), r["sr"]): r for r in fidelity_yields(yields, analysis=analysis,
                                                                      min_study_yield=min_study_yield)
           if r["quantity"] == "yield_pre_nn" and r["source"] == "fast"}
    study_post = {(r["benchmark"], r["sr"]): r for r in yields
                  if r.get("source") == "study_ntuples" and r.get("stage") == "post_nn" and r.get("analysis") == analysis}
    out = []
    for network, bid, skim_path, path in scored_benchmarks(score_files, fast):
        bm = str(bid)
        sums = signal_sums(skim_path, path, cut)
        for r, label in SR_LABELS.items():
            base = pre.get((bm, label))
            ref = study_post.get((bm, label))
            sw_pre, _, _ = sums["pre_nn"][r]
            sw, sw2, _ = sums["post_nn"][r]
            if base is None or ref is None or sw_pre <= 0 or float(ref["yield"]) <= 0:
                continue
            y = base["project"] * sw / sw_pre
            ys, es = float(ref["yield"]), float(ref["stat_err"])
            q = _ratio(y, ys)
            rel = math.hypot(math.sqrt(sw2) / sw if sw > 0 else 0.0, es / ys)
            out.append(dict(quantity="yield_post_nn", source="fast", network=network,
                            benchmark=bm, sr=label, lumi_fb=base["lumi_fb"], project=y, study=ys, ratio=q,
                            ratio_err=q * rel))
    return sorted(out, key=lambda x: (x["network"], x["benchmark"], x["sr"]))


def fidelity_kappa(tf_rows: Sequence[Mapping], published_kappa: Mapping) -> list[dict]:
    """kappa_emu of every method in ``transfer_factors.csv`` against the published table (Table 2)."""
    table = {float(k): v for k, v in (published_kappa or {}).items()}
    out = []
    for r in tf_rows:
        th = float(r["threshold"])
        if th not in table:
            continue
        p, s = float(r["kappa_emu"]), float(table[th][4])
        out.append(dict(quantity="kappa_emu", source=str(r["method"]), benchmark="hf", threshold=th,
                        project=p, study=s, ratio=_ratio(p, s)))
    return out


def _reference_key(r: Mapping) -> tuple:
    """A yield row's identity across the run and a committed reference (whose source ends in ', reference')."""
    return (r["quantity"], str(r["source"]).removesuffix(", reference"), str(r.get("benchmark")), str(r.get("sr")))


def fidelity_explanations(rows: Sequence[Mapping], fcfg: Mapping) -> list[str]:
    """One sentence per row whose ratio differs from 1 by more than ``threshold``, generated from the numbers
    with the configured explanation of the quantity's known cause, or, when the ratio has an error and lies within
    ``statistical_sigmas`` of it from 1, naming statistics as the cause. A run's yield row that a committed reference
    measurement (:func:`fidelity_reference`, larger samples) also has gets the reference's ratio beside it."""
    thr, nsig, stat_q = float(fcfg["threshold"]), float(fcfg["statistical_sigmas"]), set(fcfg["statistical_quantities"])
    causes, qmap = fcfg["causes"], fcfg["quantity_causes"]
    absolute = fcfg.get("absolute_tolerances") or {}
    refs = {_reference_key(r): r for r in rows
            if str(r.get("source", "")).endswith(", reference") and r.get("n_generated") is not None}
    out = []
    for r in rows:
        q = r.get("ratio", float("nan"))
        if r["quantity"] in absolute:
            diff = float(r.get("difference", r["project"] - r["study"]))
            if not np.isfinite(diff) or abs(diff) <= float(absolute[r["quantity"]]):
                continue
        elif not np.isfinite(q) or abs(q - 1.0) <= thr:
            continue
        what = r["quantity"].replace("_", " ")
        where = ", ".join(f"{k} {r[k]}" for k in ("network", "benchmark", "sr", "step", "threshold")
                          if r.get(k) not in (None, ""))
        cause = causes.get(qmap.get(r["quantity"], ""), "no known cause is configured for this quantity")
        err = float(r.get("ratio_err") or "nan")
        if (r["quantity"] in stat_q and np.isfinite(q) and np.isfinite(err) and err > 0
                and abs(q - 1.0) <= nsig * err):
            cause = (f"statistics: the ratio is {abs(q - 1.0) / err:.1f} standard deviations (+- {_fmt(err)}, the MC "
                     f"statistics of both samples) from 1, within the {nsig:g} of validation.fidelity.statistical_sigmas")
        how = (f"difference {float(r.get('difference', r['project'] - r['study'])):+.3f}, tolerance "
               f"{float(absolute[r['quantity']]):g}" if r["quantity"] in absolute else f"ratio {_fmt(q)}, {100 * (q - 1):+.0f} %")
        ref = None if str(r["source"]).endswith(", reference") else refs.get(_reference_key(r))
        seen = "" if ref is None else (
            f" The committed reference ({int(ref['n_generated'])} events) gives {_fmt(ref['ratio'])} +- "
            f"{_fmt(ref['ratio_err'])} for this row.")
        out.append(f"{what} ({r['source']}; {where}): {_fmt(r['project'])} vs the study's {_fmt(r['study'])} "
                   f"({how}). Why: {cause}.{seen}")
    return out


def fidelity_section(yields=None, cutflow_rows=None, nn_rows=None, kappa_rows=None, fcfg: Mapping | None = None,
                     htjet: Mapping | None = None, references: Mapping[str, Sequence[Mapping]] | None = None
                     ) -> tuple[str, list[dict], list[str]]:
    """Markdown of the fidelity section, all its rows, and the explanation sentences; ``references``: path -> rows
    of :func:`fidelity_reference` (committed measurements, each shown with its provenance after the run's yields)."""
    fcfg = fcfg or fidelity_settings(None)
    parts = ["## Fidelity: the project's events against the study", "",
             f"Ratios project / study; every difference above {100 * float(fcfg['threshold']):.0f} % is explained "
             "below (texts: `validation.fidelity.causes`).", ""]
    rows: list[dict] = []
    blocks = [
        ("### Yields (project / study ntuples, same workflow)", yields,
         [("quantity", "stage"), ("source", "generator"), ("network", "network"), ("benchmark", "BP"), ("sr", "SR"),
          ("project", "project"),
          ("study", "study ntuples"), ("ratio", "ratio"), ("ratio_err", "+-")]),
        *[(f"### Yields, reference measurement (committed: `{path}`; events, seed, configuration and command in "
           "its columns)", ref,
           [("quantity", "stage"), ("source", "generator"), ("benchmark", "BP"), ("sr", "SR"),
            ("project", "project"), ("study", "study ntuples"), ("ratio", "ratio"), ("ratio_err", "+-"),
            ("n_generated", "events"), ("n_selected", "selected in SR"), ("decay_mode", "decay mode")])
          for path, ref in (references or {}).items() if ref],
        ("### Cutflow (fraction of generated events passing each step)", cutflow_rows,
         [("source", "generator"), ("benchmark", "BP"), ("step", "step"), ("project", "project"),
          ("study_step", "study step"), ("study", "study"), ("ratio", "ratio")]),
        ("### NN: this workflow's networks vs the study-ntuple network (one per jet definition)", nn_rows,
         [("network", "network"), ("jets", "jets of"), ("quantity", "quantity"), ("benchmark", "BP"),
          ("project", "project"), ("study", "study ntuples"), ("difference", "difference"),
          ("difference_err", "+- (stat.)"), ("ratio", "ratio")]),
        ("### Transfer factor kappa_emu against the published table", kappa_rows,
         [("source", "method"), ("threshold", "pT [GeV]"), ("project", "kappa_emu"), ("study", "published"),
          ("ratio", "ratio")]),
    ]
    for title, data, cols in blocks:
        parts += [title, ""]
        if data:
            parts.append(markdown_table(data, cols))
            rows += list(data)
        else:
            parts += ["(input not available in this run)", ""]
        if data and "reference measurement" in title:
            r0 = data[0]
            parts += [f"Reference measurement: configuration `{r0['config']}`, seed {r0['seed']}, commit "
                      f"{r0['commit']}; command: `{r0['command']}`.", ""]
    if htjet:
        parts += ["### HtJet definitions", "", htjet.get("text", ""), ""]
    sentences = fidelity_explanations(rows, fcfg)
    parts += ["### Differences above the threshold", ""]
    parts += [f"- {s}" for s in sentences] or ["- none"]
    parts.append("")
    return "\n".join(parts), rows, sentences


def _flavour_factors(skims: Mapping[str, Mapping[int, str]] | None) -> dict[tuple[str, str], float]:
    """(benchmark, generator) -> e-mu flavour factor of its skim's recorded decay mode (forced e-mu: 1/2)."""
    from softdisplaced.inference.yields import flavour_factor
    from softdisplaced.processing.skim import read_events

    out = {}
    for src, paths in (skims or {}).items():
        for bm, path in (paths or {}).items():
            _, attrs = read_events(path, ["sr"])
            out[str(bm), src] = flavour_factor(str(attrs.get("signal_decay_mode", "")), "emu")
    return out


def _read_rows(path) -> list[dict]:
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


def _fidelity(settings: Mapping, fin: Mapping, study_dir, files: Mapping[int, str], n_study: float,
              inputs: list, skims: Mapping[str, Mapping[int, str]] | None = None) -> tuple[str, list[dict], list[str]]:
    """The fidelity section from whatever inputs exist; ('', [], []) when there is none. ``skims`` (generator ->
    benchmark -> skim) add the pooled yields (:func:`pooled_yields`, ``validation.fidelity.pooled``) when the
    settings hold ``benchmarks`` and ``cross_sections``."""
    if not any(fin.get(k) for k in ("yields", "nn_metrics", "transfer_factors", "cutflows", "references")):
        return "", [], []
    fcfg = fidelity_settings(settings)
    yields = cut_rows = nn_rows = kappa_rows = None
    if fin.get("yields"):
        rows = _read_rows(fin["yields"])
        network = str(((settings.get("background") or {}).get("nn_network")) or "")
        lumis = sorted({float(r["lumi_fb"]) for r in rows if r.get("analysis") == "soft_emu"})
        pool = bool(fcfg["pooled"] and skims and settings.get("benchmarks") and settings.get("cross_sections") and lumis)
        if pool:
            rows += pooled_yields(settings, {k: v for k, v in skims.items() if v}, lumis[0])
        yields = fidelity_yields(rows, network=network)
        inputs.append(str(fin["yields"]))
        if fin.get("post_nn_scores"):
            # the post-NN yields of the other networks (the study-compatible one, issue 11) beside them
            cut = (settings.get("nn") or {}).get("cut")
            if cut is None:
                raise ValueError("validate: post-NN scores given but no nn.cut in the settings")
            fast = (skims or {}).get("fast") or {}
            yields += fidelity_post_nn(rows, fin["post_nn_scores"], fast, float(cut),
                                       analysis=validation_settings(settings)["analysis"])
            inputs += [str(p) for p in fin["post_nn_scores"]]
            if pool:
                # the same networks' post-NN yields from the pooled samples (the pre-NN pooling, events with score >= cut)
                by_net: dict = {}
                for net, bm, _, score in scored_benchmarks(fin["post_nn_scores"], fast):
                    by_net.setdefault(net, {})[bm] = score
                pooled = [r for net, sc in sorted(by_net.items())
                          for r in pooled_yields(settings, {"fast": fast}, lumis[0], scores=sc, cut=float(cut),
                                                 network=net)]
                yields += fidelity_yields([r for r in rows if r["source"] == "study_ntuples"] + pooled)
    if fin.get("cutflows"):
        cfs = {str(bm): {src: json.loads(Path(p).read_text()) for src, p in by.items()}
               for bm, by in fin["cutflows"].items()}
        study = {}
        for bm in cfs:
            stem = files.get(int(bm)) if str(bm).isdigit() else None
            if study_dir and stem and (Path(study_dir) / f"{stem}.root").exists():
                study[bm] = study_cutflow(Path(study_dir) / f"{stem}.root", n_study)
        cut_rows = fidelity_cutflow(cfs, study, fcfg["cutflow_steps"], _flavour_factors(skims))
    if fin.get("nn_metrics") and fin.get("study_nn_metrics"):
        # one or more skim networks (the physical HtJet, the study's jets: issue 11) against the study's
        paths = [fin["nn_metrics"]] if isinstance(fin["nn_metrics"], (str, os.PathLike)) else list(fin["nn_metrics"])
        study_metrics = json.loads(Path(fin["study_nn_metrics"]).read_text())
        nn_rows = [r for p in paths for r in fidelity_nn(json.loads(Path(p).read_text()), study_metrics)]
        inputs += [str(p) for p in paths] + [str(fin["study_nn_metrics"])]
    if fin.get("transfer_factors"):
        pub = ((settings.get("background") or {}).get("published_kappa")) or {}
        kappa_rows = fidelity_kappa(_read_rows(fin["transfer_factors"]), pub)
        inputs.append(str(fin["transfer_factors"]))
    references = {str(p): fidelity_reference(p) for p in fin.get("references") or []}
    inputs += list(references)
    return fidelity_section(yields, cut_rows, nn_rows, kappa_rows, fcfg, htjet=fin.get("htjet"), references=references)
