"""Figures of the report (the study's Figs. 2, 4-9 and the (m_c, c*tau) plane), drawn in the
style of :mod:`.style`: mplhep typography, labelled with ``report.label`` (a phenomenology
study; no experiment's name), the centre-of-mass energy and the luminosity where relevant.

Each figure is written as PDF and PNG (atomically) with a sidecar ``<name>.json``
(provenance path, config hash, inputs with SHA-256) and the same pointer in the
PDF/PNG metadata.  Each builder takes the :class:`ReportContext`; a missing
optional input is left out with a warning, a missing required input raises
(naming the file).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from softdisplaced.inference import background as bg
from ..atomic import atomic_path, write_json  # noqa: E402
from .common import (  # noqa: E402
    Artifact, ReportContext, artifact_sidecar, benchmark_label, benchmark_order, numeric, optional_file,
    read_csv, read_json, read_scores, read_skim, require_file,
)
from .style import LEGEND_FONTSIZE, legend_room, styled
from .style import label as place_label  # noqa: E402

log = logging.getLogger("softdisplaced.report")

__all__ = ["save_figure", "fig_lepton_pt", "fig_hf_fit", "fig_d0", "fig_kinematics", "fig_nn",
           "fig_nn_sr3", "fig_exclusion_ctau", "fig_mass_plane", "ALL_FIGURES"]

COLORS = ["#3f90da", "#ffa90e", "#bd1f01", "#2ca02c", "#832db6", "#a96b59", "#e76300", "#b9ac70", "#717581",
          "#92dadd"]


# ------------------------------------------------------------------- helpers
def save_figure(ctx: ReportContext, fig, art: Artifact) -> Artifact:
    """Write PDF + PNG + sidecar JSON; the metadata of both images point to the provenance file."""
    fdir = ctx.outdir / "figures"
    base = fdir / art.name
    prov = f"provenance={ctx.provenance_rel(fdir)}; config_hash={ctx.config_hash}; sidecar={art.name}.json"
    files = []
    with atomic_path(base.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"Title": art.title, "Subject": art.caption, "Keywords": prov,
                                                   "Creator": "softdisplaced report", "CreationDate": None})
    files.append(base.with_suffix(".pdf"))
    with atomic_path(base.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=int(ctx.get("report.png_dpi")),
                    metadata={"Title": art.title, "Description": art.caption, "Source": prov,
                              "Software": "softdisplaced report"})
    files.append(base.with_suffix(".png"))
    plt.close(fig)
    side = base.with_suffix(".json")
    files.append(side)
    art.files = files
    write_json(side, artifact_sidecar(ctx, art, side))
    return art


def _figure(ctx: ReportContext, ncols: int = 1, lumi: float | None = None):
    """Figure with ``ncols`` axes, the labels (report.label, com_tev, luminosity) already placed (placing
    them on empty axes is much cheaper: mplhep draws the canvas to measure the text)."""
    fig, axes = plt.subplots(1, ncols, figsize=(10 * ncols, 10), squeeze=False, layout="constrained")
    for ax in axes[0]:
        place_label(ax, lumi=lumi, report_cfg=ctx.report_cfg)
    return fig, list(axes[0])


def _signal_specs(ctx: ReportContext) -> dict[str, dict]:
    """name -> {m_c, dm, ctau_cm, benchmark} of the configured signal samples."""
    try:
        from ..samples import build_samples

        return {n: s for n, s in build_samples(ctx.settings).items() if s.get("kind") == "signal"}
    except Exception as exc:  # settings without the sample sections: benchmarks only
        log.debug("build_samples failed (%s); using the benchmarks list", exc)
        return {f"bp{b['id']}": dict(name=f"bp{b['id']}", m_c=b.get("m_c"), dm=b.get("dm"), ctau_cm=b.get("ctau_cm"),
                                     benchmark=b["id"], br_ll=b.get("br_ll"))
                for b in ctx.get("benchmarks")}


def _sample_label(name: str, spec: Mapping | None) -> str:
    if not spec:
        return name
    bm = spec.get("benchmark")
    head = f"BP{bm}" if bm is not None else name
    return (f"{head}: $m_{{\\chi^\\pm}}$ = {spec.get('m_c'):g} GeV, $\\Delta m$ = {spec.get('dm'):g} GeV, "
            f"$c\\tau$ = {spec.get('ctau_cm'):g} cm")


def _showcase(ctx: ReportContext, key: str) -> list[str]:
    return [str(x) for x in ctx.get(f"report.{key}")]


def _load_skims(ctx: ReportContext, analysis: str, samples: Sequence[str], datasets: Sequence[str],
                what: str) -> dict[str, dict]:
    """Skims of ``samples`` that exist; missing ones are warned about; none at all is an error."""
    out, missing = {}, []
    for s in samples:
        p = ctx.skim(analysis, s)
        if p.is_file():
            d = read_skim(p, datasets, what)
            d["_path"] = p
            out[s] = d
        else:
            missing.append(p)
            log.warning("%s: skim not found; %s is drawn without sample %s", p, what, s)
    if not out:
        raise FileNotFoundError(f"{', '.join(map(str, missing))}: required input for {what} does not exist "
                                "(none of the samples' skims)")
    return out


def _weights(d: Mapping, n: int) -> np.ndarray:
    w = np.ones(n)
    if "weight_gen" in d:
        w = w * np.asarray(d["weight_gen"], float)
    return w


def _norm_hist(ax, values, bins, weights, label, color, ls="-", fill=False):
    counts, edges = np.histogram(values, bins=bins, weights=weights)
    w2, _ = np.histogram(values, bins=bins, weights=None if weights is None else np.asarray(weights) ** 2)
    tot = counts.sum()
    if tot <= 0:
        log.warning("%s: no entries in the plotted range", label)
        return
    widths = np.diff(edges)
    hep.histplot(counts / tot / widths, edges, yerr=np.sqrt(w2) / tot / widths, ax=ax, label=label,
                 color=color, ls=ls, histtype="fill" if fill else "step", alpha=0.35 if fill else 1.0)


def _check_len(n_a, n_b, pa, pb):
    if n_a != n_b:
        raise ValueError(f"{pb}: {n_b} rows but {pa} has {n_a} (score file not row-aligned with the skim)")


# ---------------------------------------------------------------- Figure 2
@styled
def fig_lepton_pt(ctx: ReportContext) -> Artifact:
    """Electron and muon pT for several mass splittings (skims of the loose analysis)."""
    specs = _signal_specs(ctx)
    chosen = ctx.get("report.lepton_pt_samples")
    if not chosen:
        m_ref = float(ctx.get("report.lepton_pt_m_c"))
        by_dm: dict[float, tuple[float, str]] = {}
        for name, s in specs.items():
            if s.get("m_c") is None or abs(float(s["m_c"]) - m_ref) > 1e-6:
                continue
            dist = abs(math.log10(max(float(s.get("ctau_cm") or 1.0), 1e-6)))  # closest to 1 cm
            if float(s["dm"]) not in by_dm or dist < by_dm[float(s["dm"])][0]:
                by_dm[float(s["dm"])] = (dist, name)
        chosen = [by_dm[k][1] for k in sorted(by_dm)]
        if not chosen:
            raise ValueError(f"settings: no signal sample with m_c = {m_ref:g} GeV for figure 2 "
                             "(set report.lepton_pt_samples)")
    ana = ctx.loose_analysis
    skims = _load_skims(ctx, ana, chosen, ["pt_e", "pt_mu"], "figure 2 (lepton pT)")
    fig, axes = _figure(ctx, 2)
    bins = np.linspace(0, float(ctx.get("report.lepton_pt_max_gev")), 41)
    for i, (name, d) in enumerate(skims.items()):
        w = _weights(d, len(d["pt_e"]))
        lab = _sample_label(name, specs.get(name))
        _norm_hist(axes[0], d["pt_e"], bins, w, lab, COLORS[i % len(COLORS)])
        _norm_hist(axes[1], d["pt_mu"], bins, w, lab, COLORS[i % len(COLORS)])
    for ax, lep in zip(axes, ("electron", "muon")):
        ax.set_xlabel(f"{lep} $p_T$ [GeV]")
        ax.set_ylabel(r"$1/N\; dN/dp_T$ [GeV$^{-1}$]")
        ax.set_xlim(bins[0], bins[-1])
        legend_room(ax, 0.25)
        ax.legend(fontsize=LEGEND_FONTSIZE, title=f"{ana}, unit area", title_fontsize=LEGEND_FONTSIZE)
    art = Artifact("fig2_lepton_pt", "figure", "Figure 2: lepton pT for several dm",
                   f"Electron (left) and muon (right) pT after the {ana} selection, unit area, for "
                   f"dm = {', '.join(str(specs.get(n, {}).get('dm', '?')) for n in skims)} GeV.",
                   [], [d["_path"] for d in skims.values()],
                   {"report.loose_analysis": ana, "samples": list(skims)}, "study Fig. 2")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 4
_FLAVOUR_KEYS = {"electron": ("electron", "e", "f_e", "ele"), "muon": ("muon", "mu", "f_mu", "muo")}


def _fit_params(obj, flavour: str, path) -> tuple[tuple[float, float, float, float], tuple[float, float] | None]:
    """(a1, b1, a2, b2) and the fit range from one of the accepted hf_fit.json layouts."""
    if isinstance(obj, Mapping) and isinstance(obj.get("fits"), Mapping):
        obj = obj["fits"]
    entry = None
    if isinstance(obj, Mapping):
        for k in _FLAVOUR_KEYS[flavour]:
            if k in obj:
                entry = obj[k]
                break
    if entry is None:
        raise ValueError(f"{path}: no fit for the {flavour} (expected key '{flavour}')")
    rng = None
    if isinstance(entry, Mapping):
        rng = entry.get("fit_range_gev", entry.get("fit_range"))
        params = entry.get("params", entry)
    else:
        params = entry
    try:
        if isinstance(params, Mapping):
            p = tuple(float(params[k]) for k in ("a1", "b1", "a2", "b2"))
        else:
            p = tuple(float(x) for x in params)
            if len(p) != 4:
                raise ValueError
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {flavour} fit parameters must be a1, b1, a2, b2 (got {params!r})") from exc
    return p, (tuple(map(float, rng)) if rng else None)


def _fit_curve(x, p, lo: float, hi: float, n_in_range: float) -> np.ndarray:
    """The double exponential of background.py normalised to ``n_in_range`` events in [lo, hi]
    (its analytic integral)."""
    return bg.double_exp(x, p) * n_in_range / bg.integral(p, lo, hi)[0]


@styled
def fig_hf_fit(ctx: ReportContext) -> Artifact:
    """HF electron and muon pT spectra with the double-exponential fit (own and published shapes)."""
    ana = str(ctx.get("background.spectra_analysis"))
    skim_path = ctx.skim(ana, str(ctx.get("report.hf_sample")))
    fit_path = ctx.path("background", "hf_fit.json")
    spectra = bg.read_spectra(require_file(skim_path, "figure 4 (HF pT with fit)"))
    fits = read_json(fit_path, "figure 4 (HF pT with fit)")
    published = ctx.get("background.published_fit")
    if not published and isinstance(fits, Mapping) and isinstance(fits.get("published"), Mapping):
        published = fits["published"]
    if not published:
        log.warning("figure 4: no published fit (config background.published_fit); drawing the own fit only")
    lo_plot, hi_plot = 10.0, float(ctx.get("background.upper_gev"))
    fig, axes = _figure(ctx, 2)
    for ax, lep in zip(axes, ("electron", "muon")):
        p, rng = _fit_params(fits, lep, fit_path)
        lo, hi = rng or tuple(ctx.get("background.fit_range_gev"))
        pt, w = (np.asarray(a, float) for a in spectra[lep])
        edges = np.arange(lo_plot, hi_plot + 1e-9, 2.0)
        counts, _ = np.histogram(pt, edges, weights=w)
        w2, _ = np.histogram(pt, edges, weights=w ** 2)
        width = np.diff(edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(centres, counts / width, yerr=np.sqrt(w2) / width, fmt="o", color="k", label=f"HF simulation ({lep}s)")
        in_fit = (pt >= lo) & (pt <= hi)
        norm_data = float(w[in_fit].sum())
        x = np.linspace(lo_plot, hi_plot, 300)
        ax.plot(x, _fit_curve(x, p, lo, hi, norm_data), color=COLORS[2],
                label=f"fit: $a_1$={p[0]:.2f}, $b_1$={p[1]:.3f}, $a_2$={p[2]:.2f}, $b_2$={p[3]:.3f}")
        if published:
            try:
                pp, _ = _fit_params(published, lep, "config background.published_fit")
                ax.plot(x, _fit_curve(x, pp, lo, hi, norm_data), ls="--", color=COLORS[0],
                        label=f"study: $a_1$={pp[0]:.2f}, $b_1$={pp[1]:.2f}, $a_2$={pp[2]:.2f}, $b_2$={pp[3]:.2f}")
            except ValueError as exc:
                log.warning("figure 4: published fit left out: %s", exc)
        ax.axvspan(lo, hi, color="0.9", zorder=0, label=f"fit range {lo:g}-{hi:g} GeV")
        ax.set_yscale("log")
        ax.set_xlim(lo_plot, hi_plot)
        ax.set_xlabel(f"{lep} $p_T$ [GeV] (no isolation)")
        ax.set_ylabel(r"$dN/dp_T$ [GeV$^{-1}$] (simulated HF)")
        legend_room(ax, 0.3)
        ax.legend(fontsize=LEGEND_FONTSIZE - 2, title="fit: exp($a_1+b_1p_T$) + exp($a_2+b_2p_T$)",
                  title_fontsize=LEGEND_FONTSIZE - 2)
    art = Artifact("fig4_hf_pt_fit", "figure", "Figure 4: HF lepton pT with the double-exponential fit",
                   "HF electron (left) and muon (right) pT (no isolation) with f = exp(a1 + b1 pT) + exp(a2 + b2 pT); "
                   "curves normalised to the simulation in the fit range.",
                   [], [skim_path, fit_path],
                   {"background.method": ctx.get("background.method"), "background.fit_range_gev":
                    ctx.get("background.fit_range_gev"), "background.spectra_analysis": ana}, "study Fig. 4")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 5
def _lifetime_samples(ctx: ReportContext) -> list[str]:
    chosen = ctx.get("report.d0_samples")
    if chosen:
        return [str(x) for x in chosen]
    m_c, dm = ctx.exclusion_point
    specs = _signal_specs(ctx)
    names = [n for n, s in specs.items() if s.get("benchmark") is not None
             and abs(float(s["m_c"]) - m_c) < 1e-6 and abs(float(s["dm"]) - dm) < 1e-6
             and float(s.get("br_ll") or 1) >= 1]
    names.sort(key=lambda n: float(specs[n]["ctau_cm"]))
    return names or [n for n in specs if specs[n].get("benchmark") is not None][:4]


def _sr_d0_edges(ctx: ReportContext, analysis: str) -> dict[str, list[float]]:
    """Lower |d0| edges (mm) of the e-mu signal regions of ``analysis``: {"electron": [...], "muon": [...]}
    (d0_y: electron, d0_x: muon; analyses section of the configuration)."""
    from softdisplaced.processing.analyses import build_analyses

    regions = (build_analyses(ctx.settings).get(analysis) or {}).get("signal_regions", {}).get("regions", {})
    edges = {"electron": set(), "muon": set()}
    for r in regions.get("emu", []):
        for lep, key in (("electron", "d0_y_mm"), ("muon", "d0_x_mm")):
            if r.get(key) and r[key][0] is not None:
                edges[lep].add(float(r[key][0]))
    if not any(edges.values()):
        log.warning("figure 5: analysis %s has no e-mu signal regions in the settings; no SR lines", analysis)
    return {k: sorted(v) for k, v in edges.items()}


@styled
def fig_d0(ctx: ReportContext) -> Artifact:
    """|d0| of electron and muon: signal benchmarks of several c*tau vs the HF background."""
    specs = _signal_specs(ctx)
    ana = ctx.loose_analysis
    hf_path = ctx.skim(ana, "hf")
    hf = read_skim(hf_path, ["d0_e", "d0_mu"], "figure 5 (d0)")
    sig = _load_skims(ctx, ana, _lifetime_samples(ctx), ["d0_e", "d0_mu"], "figure 5 (d0)")
    fig, axes = _figure(ctx, 2)
    bins = np.logspace(-3, 3, 49)
    sr_edges = _sr_d0_edges(ctx, ana)
    for ax, key, lep in zip(axes, ("d0_e", "d0_mu"), ("electron", "muon")):
        _norm_hist(ax, np.abs(hf[key]), bins, _weights(hf, len(hf[key])), "HF background", "0.5", fill=True)
        for i, (name, d) in enumerate(sig.items()):
            _norm_hist(ax, np.abs(d[key]), bins, _weights(d, len(d[key])), _sample_label(name, specs.get(name)),
                       COLORS[i % len(COLORS)])
        for i, cut in enumerate(sr_edges[lep]):
            ax.axvline(cut, color="k", ls=":", lw=1.5, label="SR lower edges" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel(f"{lep} $|d_0|$ [mm]")
        ax.set_ylabel(r"$1/N\; dN/d|d_0|$ [mm$^{-1}$]")
        legend_room(ax, 0.3)
        ax.legend(fontsize=LEGEND_FONTSIZE - 2, title=f"{ana}, unit area", title_fontsize=LEGEND_FONTSIZE - 2)
    art = Artifact("fig5_d0", "figure", "Figure 5: transverse impact parameter",
                   f"Electron (left) and muon (right) |d0| after the {ana} selection (no d0 window), unit area, "
                   f"signal benchmarks of several c*tau vs HF; dotted lines: lower |d0| edges of the signal regions "
                   f"({', '.join(f'{x:g}' for x in sr_edges['electron'])} mm).",
                   [], [hf_path] + [d["_path"] for d in sig.values()],
                   {"report.loose_analysis": ana, "samples": list(sig)}, "study Fig. 5")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 6
@styled
def fig_kinematics(ctx: ReportContext) -> Artifact:
    """Delta R(e, mu) and MET significance MET/sqrt(HT) (YDelpObj), signal vs HF."""
    specs = _signal_specs(ctx)
    ana = ctx.loose_analysis
    feats = ["dRLL", "YDelpObj"]
    hf_path = ctx.skim(ana, "hf")
    hf = read_skim(hf_path, feats, "figure 6 (Delta R, MET significance)")
    sig = _load_skims(ctx, ana, _showcase(ctx, "signal_samples"), feats,
                      "figure 6 (Delta R, MET significance)")
    fig, axes = _figure(ctx, 2)
    binning = {"dRLL": np.linspace(0, 6, 31), "YDelpObj": np.linspace(0, float(ctx.get("report.ydelpobj_max")), 41)}
    xlabels = {"dRLL": r"$\Delta R(e,\mu)$", "YDelpObj": r"$E_T^{miss}/H_T^{1/2}$ [GeV$^{1/2}$]"}
    ylabels = {"dRLL": r"$1/N\; dN/d\Delta R$", "YDelpObj": r"$1/N\; dN/d(E_T^{miss}/H_T^{1/2})$ [GeV$^{-1/2}$]"}
    for ax, f in zip(axes, feats):
        _norm_hist(ax, hf[f], binning[f], _weights(hf, len(hf[f])), "HF background", "0.5", fill=True)
        for i, (name, d) in enumerate(sig.items()):
            _norm_hist(ax, d[f], binning[f], _weights(d, len(d[f])), _sample_label(name, specs.get(name)),
                       COLORS[i % len(COLORS)])
        ax.set_xlabel(xlabels[f])
        ax.set_ylabel(ylabels[f])
        ax.set_xlim(binning[f][0], binning[f][-1])
        legend_room(ax, 0.3)
        ax.legend(fontsize=LEGEND_FONTSIZE - 2, title=f"{ana}, unit area", title_fontsize=LEGEND_FONTSIZE - 2)
    art = Artifact("fig6_kinematics", "figure", "Figure 6: Delta R(e,mu) and MET significance",
                   f"Delta R(e, mu) (left) and MET/sqrt(HT) (YDelpObj, right) after the {ana} selection, unit area.",
                   [], [hf_path] + [d["_path"] for d in sig.values()],
                   {"report.loose_analysis": ana, "samples": list(sig)}, "study Fig. 6")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 7
_ROC_ALIASES = {"sig": ("sig_eff", "signal_eff", "tpr", "eff_sig"), "bkg": ("bkg_eff", "background_eff", "fpr", "eff_bkg"),
                "key": ("benchmark", "key", "sample", "signal")}


def roc_axes(ax, curves, cut: float) -> None:
    """The study's Fig. 7 style: signal efficiency vs background efficiency on a logarithmic axis,
    the working point (NN >= cut) marked on each curve.  ``curves``: (label, bkg_eff, sig_eff, auc,
    (bkg_eff, sig_eff) at the cut or None[, plot keywords]).  The axis starts at the decade of the
    smallest non-zero background efficiency (curves and working points)."""
    effs = [np.asarray(c[1], float) for c in curves] + [np.array([c[4][0]]) for c in curves if c[4] is not None]
    positive = [float(np.min(b[b > 0])) for b in effs if np.any(b > 0)]
    lo = 10 ** np.floor(np.log10(min(positive))) if positive else 1e-4
    for i, (name, b, s, a, wp, *kw) in enumerate(curves):
        style = {"color": COLORS[i % len(COLORS)], **(kw[0] if kw else {})}
        ax.plot(b, s, label=f"{name} (AUC = {a:.3f})", **style)
        if wp is not None:
            ax.plot([wp[0]], [wp[1]], "o", color=style["color"], ms=9, mec="k")
    x = np.logspace(np.log10(lo), 0, 50)
    ax.plot(x, x, color="0.6", ls=":", label="random classifier")
    ax.plot([], [], "o", color="0.5", mec="k", ms=9, label=f"working point NN $\\geq$ {cut:g}")
    ax.set_xscale("log")
    ax.set_xlim(lo, 1)
    ax.set_ylim(0, 1.3)
    ax.set_xlabel("HF background efficiency")
    ax.set_ylabel("signal efficiency")
    ax.legend(fontsize=LEGEND_FONTSIZE - 2, loc="upper left", ncol=2)


def _roc_from_scores(sig: np.ndarray, bkg: np.ndarray):
    thr = np.linspace(0, 1, 201)
    return (np.array([(bkg >= t).mean() for t in thr]), np.array([(sig >= t).mean() for t in thr]))


@styled
def fig_nn(ctx: ReportContext) -> Artifact:
    """NN discriminant for signal and HF (scores of the loose analysis) and ROC curves per benchmark."""
    net, cut, ana = ctx.network, ctx.nn_cut, ctx.loose_analysis
    specs = _signal_specs(ctx)
    hf_path = ctx.scores(ana, "hf")
    hf = read_scores(hf_path, "figure 7 (NN discriminant)")
    sig, inputs = {}, [hf_path]
    for s in _showcase(ctx, "signal_samples"):
        p = ctx.scores(ana, s)
        if optional_file(p, "figure 7 (NN discriminant)") is not None:
            sig[s] = read_scores(p, "figure 7 (NN discriminant)")
            inputs.append(p)
    if not sig:
        raise FileNotFoundError(f"{ctx.scores(ana, 'bp1')}: required input for figure 7 does not exist "
                                "(no signal score file)")
    metrics_path = ctx.path("nn", net, "metrics.json")
    auc = {}
    if optional_file(metrics_path, "figure 7 (AUC values)") is not None:
        m = read_json(metrics_path, "figure 7")
        auc = {benchmark_label(k): (v.get("value") if isinstance(v, Mapping) else v) for k, v in (m.get("auc") or {}).items()}
        inputs.append(metrics_path)
    fig, axes = _figure(ctx, 2)
    bins = np.linspace(0, 1, 26)
    _norm_hist(axes[0], hf, bins, None, "HF background", "0.5", fill=True)
    for i, (name, s) in enumerate(sig.items()):
        _norm_hist(axes[0], s, bins, None, _sample_label(name, specs.get(name)), COLORS[i % len(COLORS)])
    axes[0].axvline(cut, color="k", ls="--", lw=1.5, label=f"working point NN $\\geq$ {cut:g}")
    axes[0].set_yscale("log")
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel(f"NN output ({net})")
    axes[0].set_ylabel(r"$1/N\; dN/d$(NN output)")
    legend_room(axes[0], 0.3)
    axes[0].legend(fontsize=LEGEND_FONTSIZE - 2, loc="upper left", title=f"{ana}, unit area",
                   title_fontsize=LEGEND_FONTSIZE - 2)
    roc_path = ctx.path("nn", net, "roc.csv")
    if roc_path.is_file():
        roc = read_csv(roc_path, [], "figure 7 (ROC)")
        cols = {k: next((c for c in al if c in roc.columns), None) for k, al in _ROC_ALIASES.items()}
        if cols["sig"] is None or cols["bkg"] is None:
            raise ValueError(f"{roc_path}: needs signal/background efficiency columns {_ROC_ALIASES['sig']} / "
                             f"{_ROC_ALIASES['bkg']} (has {list(roc.columns)})")
        roc = numeric(roc, [cols["sig"], cols["bkg"]] + (["threshold"] if "threshold" in roc.columns else []),
                      roc_path)
        if "variant" in roc.columns:   # parameterised networks also hold the single-network comparison
            roc = roc[roc["variant"].astype(str) == "nominal"]
        groups = roc.groupby(roc[cols["key"]].map(benchmark_label)) if cols["key"] else [("1", roc)]
        groups = sorted(groups, key=lambda g: benchmark_order(g[0]))
        curves = []
        for key, g in groups:
            # along the curve: by decreasing threshold (equal background efficiencies keep their order)
            g = g.sort_values("threshold", ascending=False, kind="stable") if "threshold" in g.columns \
                else g.sort_values([cols["bkg"], cols["sig"]])
            a = auc.get(key)
            if a is None:
                a = float(np.trapezoid(g[cols["sig"]], g[cols["bkg"]]))
            wp = None
            if "threshold" in g.columns:
                row = g.iloc[int(np.argmin(np.abs(g["threshold"].to_numpy() - cut)))]
                wp = (float(row[cols["bkg"]]), float(row[cols["sig"]]))
            curves.append((f"BP{key}" if key.isdigit() else key, g[cols["bkg"]].to_numpy(),
                           g[cols["sig"]].to_numpy(), a, wp))
        inputs.append(roc_path)
        roc_note = "held-out ROC from roc.csv"
    else:
        log.warning("%s not found: ROC computed from the score files (training and test events together)", roc_path)
        curves = []
        for name, s in sig.items():
            fpr, tpr = _roc_from_scores(s, hf)
            curves.append((name, fpr, tpr, float(-np.trapezoid(tpr, fpr)),
                           (float(np.mean(hf >= cut)), float(np.mean(s >= cut)))))
        roc_note = "ROC from all scored events (roc.csv absent)"
    roc_axes(axes[1], curves, cut)
    art = Artifact("fig7_nn_discriminant_roc", "figure", "Figure 7: NN discriminant and ROC",
                   f"NN output of network '{net}' for signal and HF ({ana}, unit area; left) and ROC curves "
                   f"({roc_note}; right).", [], inputs,
                   {"network": net, "nn cut": cut, "report.loose_analysis": ana}, "study Fig. 7")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 8
def signal_weights(ctx: ReportContext, d: Mapping, spec: Mapping | None, lumi: float, path) -> np.ndarray:
    """sigma x L x B(ll) x w_flav x w_d0eff x w_gen / N_gen, N_gen = sum_gen_weights (or n_events_processed),
    w_flav the flavour factor of the skim's recorded decay mode (:func:`softdisplaced.inference.yields.flavour_weights`)."""
    from softdisplaced.inference.yields import flavour_weights

    attrs = d["_attrs"]
    spec = spec or {}
    sigma = attrs.get("cross_section_fb", spec.get("cross_section_fb"))
    br = attrs.get("br_ll", spec.get("br_ll"))
    n_gen = attrs.get("sum_gen_weights") or attrs.get("n_events_processed")
    for k, v in (("cross_section_fb", sigma), ("br_ll", br), ("n_events_processed", n_gen)):
        if v is None or not np.isfinite(float(v)) or (k == "n_events_processed" and float(v) <= 0):
            raise ValueError(f"{path}: attribute '{k}' missing or invalid (needed to weight the signal to {lumi:g} fb^-1)")
    n = len(d["sr"])
    w = np.asarray(d["weight_d0eff"], float) * _weights(d, n) * flavour_weights(attrs, d, path)
    return float(sigma) * lumi * float(br) * w / float(n_gen)


@styled
def fig_nn_sr3(ctx: ReportContext) -> Artifact:
    """NN output in SR III at ctx.lumi_fb: signal weighted to the luminosity, HF normalised to its SR III
    expectation from yields.csv (shape from all HF events of the selection: the NN does not use d0)."""
    from .tables import select_yields

    lumi, net, cut, ana = ctx.lumi_fb, ctx.network, ctx.nn_cut, ctx.analysis
    specs = _signal_specs(ctx)
    yields, ypath = select_yields(ctx, "figure 8 (HF normalisation)")
    hf_row = yields[(yields["benchmark"] == "hf") & (yields["sr"] == "III") & (yields["stage"] == "pre_nn")]
    if hf_row.empty:
        raise ValueError(f"{ypath}: no hf / SR III / pre_nn row for analysis '{ana}' (needed for figure 8)")
    b_sr3 = float(hf_row["yield"].iloc[0])
    ds = ["sr", "weight_d0eff"]
    hf_skim_path, hf_score_path = ctx.skim(ana, "hf"), ctx.scores(ana, "hf")
    hf = read_skim(hf_skim_path, ds, "figure 8 (HF shape)")
    hf_s = read_scores(hf_score_path, "figure 8 (HF shape)")
    _check_len(len(hf["sr"]), len(hf_s), hf_skim_path, hf_score_path)
    inputs = [ypath, hf_skim_path, hf_score_path]
    fig, axes = _figure(ctx, 1, lumi)
    ax = axes[0]
    bins = np.linspace(0, 1, 21)
    w_hf = np.asarray(hf["weight_d0eff"], float) * _weights(hf, len(hf_s))
    shape_note = ""
    shape_ana = ctx.get("background.nn_fraction_analysis")
    if not w_hf.sum() > 0 and shape_ana != ana:
        # no simulated HF event passes this (isolated) selection: take the NN shape from the HF sample that
        # defines the background's NN fraction (the NN uses neither d0 nor isolation), as the background model does
        alt_skim, alt_scores = ctx.skim(shape_ana, "hf"), ctx.scores(shape_ana, "hf")
        if optional_file(alt_skim, "figure 8") is not None and optional_file(alt_scores, "figure 8") is not None:
            log.info("figure 8: %s has no weighted HF events; HF NN shape from %s", hf_skim_path, alt_skim)
            hf = read_skim(alt_skim, ds, "figure 8 (HF shape)")
            hf_s = read_scores(alt_scores, "figure 8 (HF shape)")
            _check_len(len(hf["sr"]), len(hf_s), alt_skim, alt_scores)
            w_hf = np.asarray(hf["weight_d0eff"], float) * _weights(hf, len(hf_s))
            inputs += [alt_skim, alt_scores]
            shape_note = f", shape from {shape_ana}"
    if w_hf.sum() > 0:
        counts, _ = np.histogram(hf_s, bins, weights=w_hf)
        hep.histplot(counts / counts.sum() * b_sr3, bins, ax=ax, histtype="fill", color="0.7", alpha=0.6,
                     label=f"HF background (SR III: {b_sr3:.3g} events{shape_note})")
    else:
        log.warning("%s: HF sample has no weighted events; background left out of figure 8", hf_skim_path)
    n_sig = 0
    for s in _showcase(ctx, "sr3_samples"):
        sk, sc = ctx.skim(ana, s), ctx.scores(ana, s)
        if optional_file(sk, "figure 8") is None or optional_file(sc, "figure 8") is None:
            continue
        d = read_skim(sk, ds, "figure 8")
        score = read_scores(sc, "figure 8")
        _check_len(len(d["sr"]), len(score), sk, sc)
        w = signal_weights(ctx, d, specs.get(s), lumi, sk)
        m = np.asarray(d["sr"]).astype(int) == 3
        counts, _ = np.histogram(score[m], bins, weights=w[m])
        w2, _ = np.histogram(score[m], bins, weights=w[m] ** 2)
        hep.histplot(counts, bins, yerr=np.sqrt(w2), ax=ax, color=COLORS[n_sig % len(COLORS)],
                     label=f"{_sample_label(s, specs.get(s))}: {counts.sum():.3g} events")
        inputs += [sk, sc]
        n_sig += 1
        ref = yields[(yields["benchmark"] == benchmark_label(s)) & (yields["sr"] == "III") & (yields["stage"] == "pre_nn")]
        if not ref.empty and ref["yield"].iloc[0] > 0:
            log.info("figure 8: %s SR III weighted sum %.4g vs yields.csv %.4g", s, counts.sum(), ref["yield"].iloc[0])
    if n_sig == 0:
        raise FileNotFoundError(f"{ctx.skim(ana, 'bp1')}, {ctx.scores(ana, 'bp1')}: required input for figure 8 does "
                                "not exist (no signal sample with skim and scores)")
    ax.axvline(cut, color="k", ls="--", lw=1.5, label=f"working point NN $\\geq$ {cut:g}")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"NN output ({net})")
    ax.set_ylabel(f"events / {bins[1] - bins[0]:.2f}")
    legend_room(ax, 0.3)
    ax.legend(fontsize=LEGEND_FONTSIZE - 3, loc="upper left", title=f"SR III, {ana}", title_fontsize=LEGEND_FONTSIZE - 3)
    art = Artifact("fig8_nn_sr3", "figure", f"Figure 8: NN output in SR III at {lumi:g} fb^-1",
                   f"NN output ('{net}') in SR III at {lumi:g} fb^-1: signal = sigma x L x B(ll) x flavour factor x "
                   f"d0-efficiency weights / N_gen; HF shape from all selected HF events scaled to its SR III "
                   f"expectation from yields.csv.", [], inputs,
                   {"report.lumi_fb": lumi, "network": net, "nn cut": cut, "report.analysis": ana,
                    "cross_sections.source": ctx.get("cross_sections.source")}, "study Fig. 8")
    return save_figure(ctx, fig, art)


# ---------------------------------------------------------------- Figure 9
EXCLUSION_COLUMNS = ["source", "analysis", "m_c", "dm", "lumi_fb", "ctau_cm", "r95", "mu95_exp", "mu95_obs"]


def read_exclusion(ctx: ReportContext, what: str) -> tuple[pd.DataFrame, Path]:
    path = ctx.path("limits", "exclusion_ctau.csv")
    df = read_csv(path, EXCLUSION_COLUMNS, what)
    df = numeric(df, ["m_c", "dm", "lumi_fb", "ctau_cm", "r95", "mu95_exp", "mu95_obs"], path)
    df["analysis"] = df["analysis"].astype(str)
    df["source"] = df["source"].astype(str)
    return df, path


def exclusion_selection(ctx: ReportContext, df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, float, float]:
    df = df[df["source"] == ctx.choose_source(df["source"], path)]
    m_c, dm = ctx.exclusion_point
    sel = df[np.isclose(df["m_c"], m_c) & np.isclose(df["dm"], dm)]
    if sel.empty:
        m_c, dm = float(df["m_c"].iloc[0]), float(df["dm"].iloc[0])
        log.warning("%s: no rows at (m_c, dm) = %s; using (%g, %g)", path, ctx.exclusion_point, m_c, dm)
        sel = df[np.isclose(df["m_c"], m_c) & np.isclose(df["dm"], dm)]
    return sel, m_c, dm


def _decades_around_one(ax, decades: float = 3.0) -> tuple[float, float]:
    """y range of a limit figure: the plotted values, but at most ``decades`` either side of 1 (the
    exclusion boundary; values of R95 or mu95 far from 1 carry no information and would squash it)."""
    ys = np.concatenate([np.asarray(ln.get_ydata(), float) for ln in ax.get_lines()] or [np.ones(1)])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    lo, hi = (float(ys.min()), float(ys.max())) if len(ys) else (0.1, 10.0)
    return max(min(lo, 0.5), 10.0 ** -decades), min(max(hi, 2.0), 10.0 ** decades)


@styled
def fig_exclusion_ctau(ctx: ReportContext) -> Artifact:
    """R95 (left) and the CLs signal-strength limit mu95 (right) vs c*tau: NN and cut-based for each
    luminosity, and the recast searches (e.g. the 8 TeV e-mu bound) in the same file."""
    df, path = read_exclusion(ctx, "figure 9 (exclusion vs c*tau)")
    sel, m_c, dm = exclusion_selection(ctx, df, path)
    lumis = sorted(pd.unique(sel.loc[sel["analysis"].isin(["nn", "cut_based"]), "lumi_fb"]))
    if not lumis:
        raise ValueError(f"{path}: no 'nn' or 'cut_based' rows at (m_c, dm) = ({m_c:g}, {dm:g})")
    want = ctx.projection_lumis_fb
    missing = [l for l in want if not np.any(np.isclose(lumis, l))]
    if missing:
        log.warning("%s: no curves for luminosities %s fb^-1 (limits.projection_lumis_fb)", path, missing)
    recasts = [a for a in pd.unique(sel["analysis"]) if a not in ("nn", "cut_based")]
    if not recasts:
        log.warning("%s: no recast rows (e.g. cms_8tev_emu) at (%g, %g): the 8 TeV bound is left out", path, m_c, dm)
    fig, axes = _figure(ctx, 2)
    for ax, col, ylab in ((axes[0], "r95", "$R_{95}$ (excluded above 1)"),
                          (axes[1], "mu95_exp", r"expected CL$_s$ $\mu_{95}$ (excluded below 1)")):
        for i, lumi in enumerate(lumis):
            c = COLORS[i % len(COLORS)]
            for ana, ls, name in (("nn", "-", "NN"), ("cut_based", "--", "cut-based")):
                g = sel[(sel["analysis"] == ana) & np.isclose(sel["lumi_fb"], lumi)].sort_values("ctau_cm")
                g = g[np.isfinite(g[col]) & (g[col] > 0)]
                if not g.empty:
                    ax.plot(g["ctau_cm"], g[col], ls=ls, color=c, label=f"{name}, {lumi:g} fb$^{{-1}}$")
            if col == "mu95_exp":
                g = sel[(sel["analysis"] == "nn") & np.isclose(sel["lumi_fb"], lumi)].sort_values("ctau_cm")
                g = g[np.isfinite(g["mu95_obs"]) & (g["mu95_obs"] > 0)]
                if not g.empty:
                    ax.plot(g["ctau_cm"], g["mu95_obs"], "o", color=c, ms=4, label=f"NN observed, {lumi:g} fb$^{{-1}}$")
        for j, ana in enumerate(recasts):
            g = sel[sel["analysis"] == ana].sort_values("ctau_cm")
            g = g[np.isfinite(g[col]) & (g[col] > 0)]
            if not g.empty:
                lumi_txt = ", ".join(f"{x:g}" for x in pd.unique(g["lumi_fb"]))
                ax.plot(g["ctau_cm"], g[col], ls=":", lw=2.5, color=["k", "#7a21dd", "#964a8b"][j % 3],
                        label=f"{ana} ({lumi_txt} fb$^{{-1}}$)")
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(*_decades_around_one(ax))
        ax.set_xlabel(r"$c\tau$ [cm]")
        ax.set_ylabel(ylab)
        legend_room(ax, 0.3)
        ax.legend(fontsize=LEGEND_FONTSIZE - 4, ncol=2, loc="upper left",
                  title=f"$m_{{\\chi^\\pm}}$ = {m_c:g} GeV, $\\Delta m$ = {dm:g} GeV",
                  title_fontsize=LEGEND_FONTSIZE - 3)
    art = Artifact("fig9_exclusion_ctau", "figure", "Figure 9: exclusion vs c*tau with luminosity projections",
                   f"R95 (left, excluded above 1) and CLs mu95 (right, excluded below 1) vs c*tau at m_c = {m_c:g}, "
                   f"dm = {dm:g} GeV: NN (solid) and cut-based (dashed) for "
                   f"{', '.join(f'{l:g}' for l in lumis)} fb^-1; dotted: recast searches.",
                   [], [path], {"limits.projection_lumis_fb": want, "limits.benchmark_point": [m_c, dm],
                                "limits.cls": ctx.get("limits.cls"), "source": sel["source"].iloc[0]}, "study Fig. 9")
    return save_figure(ctx, fig, art)


MASS_REACH_COLUMNS = ["analysis", "lumi_fb", "m_c", "ctau_lo_cm", "ctau_hi_cm"]


@styled
def fig_mass_plane(ctx: ReportContext) -> Artifact:
    """Excluded region in the (m_c, c*tau) plane at fixed dm (results/limits/mass_reach.csv)."""
    path = ctx.path("limits", "mass_reach.csv")
    df = read_csv(path, MASS_REACH_COLUMNS, "the (m_c, c*tau) plane")
    df = numeric(df, ["lumi_fb", "m_c", "ctau_lo_cm", "ctau_hi_cm"] + (["dm"] if "dm" in df.columns else []), path)
    df["analysis"] = df["analysis"].astype(str)
    if "source" in df.columns:
        df = df[df["source"].astype(str) == ctx.choose_source(df["source"].astype(str), path)]
    stat_txt = "CL$_s$ expected"
    if "statistic" in df.columns:   # R95 or CLs: the plane shows one of them
        stat = str(ctx.get("report.mass_plane_statistic"))
        stats = list(pd.unique(df["statistic"].astype(str)))
        if stat not in stats:
            log.warning("%s: no rows with statistic %r (report.mass_plane_statistic); using %r", path, stat, stats[0])
            stat = stats[0]
        df = df[df["statistic"].astype(str) == stat]
        stat_txt = {"cls_expected": "CL$_s$ expected", "r95": "$R_{95}$"}.get(stat, stat)
    dm_txt = ""
    if "dm" in df.columns and df["dm"].notna().any():
        dm_txt = f", $\\Delta m$ = {float(df['dm'].dropna().iloc[0]):g} GeV"
    fig, axes = _figure(ctx, 1)
    ax = axes[0]
    lumis = sorted(pd.unique(df["lumi_fb"]))
    for i, lumi in enumerate(lumis):
        c = COLORS[i % len(COLORS)]
        for ana, style in (("nn", "fill"), ("cut_based", "line")):
            g = df[(df["analysis"] == ana) & np.isclose(df["lumi_fb"], lumi)].sort_values("m_c")
            if g.empty:
                continue
            lo = g["ctau_lo_cm"].to_numpy(float)
            hi = g["ctau_hi_cm"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (hi > lo)
            if not ok.any():
                log.warning("%s: no exclusion for %s at %g fb^-1", path, ana, lumi)
                continue
            lab = f"{'NN' if ana == 'nn' else 'cut-based'}, {lumi:g} fb$^{{-1}}$"
            if style == "fill":
                ax.fill_between(g["m_c"], np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=c, alpha=0.3,
                                label=lab)
                ax.plot(g["m_c"], np.where(ok, lo, np.nan), color=c)
                ax.plot(g["m_c"], np.where(ok, hi, np.nan), color=c)
            else:
                ax.plot(g["m_c"], np.where(ok, lo, np.nan), color=c, ls="--", label=lab)
                ax.plot(g["m_c"], np.where(ok, hi, np.nan), color=c, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{\chi^\pm}$ [GeV]")
    ax.set_ylabel(r"$c\tau$ [cm]")
    legend_room(ax, 0.3)
    ax.legend(fontsize=LEGEND_FONTSIZE - 2, ncol=2, loc="upper right",
              title=f"excluded at 95% CL ({stat_txt}){dm_txt}", title_fontsize=LEGEND_FONTSIZE - 2)
    art = Artifact("fig10_mass_ctau_plane", "figure", "Mediator-mass reach in the (m_c, c*tau) plane",
                   "Region excluded at 95% CL in the (m_c, c*tau) plane at fixed dm: NN (filled) and cut-based "
                   f"(dashed) for {', '.join(f'{l:g}' for l in lumis)} fb^-1.", [], [path],
                   {"limits.mass_reach": ctx.get("limits.mass_reach"),
                    "samples.mass_scan.masses": ctx.get("samples.mass_scan.masses")}, "study Section 6 (mass reach)")
    return save_figure(ctx, fig, art)


ALL_FIGURES = {
    "lepton_pt": fig_lepton_pt,
    "hf_fit": fig_hf_fit,
    "d0": fig_d0,
    "kinematics": fig_kinematics,
    "nn": fig_nn,
    "nn_sr3": fig_nn_sr3,
    "exclusion_ctau": fig_exclusion_ctau,
    "mass_plane": fig_mass_plane,
}
