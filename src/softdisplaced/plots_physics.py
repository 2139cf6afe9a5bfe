"""Figures of spec section 6 (matplotlib + mplhep, CMS style), each written as PDF and PNG."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .atomic import atomic_path


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    hep.style.use("CMS")
    return plt, hep


def _save(fig, stem) -> list[str]:
    out = []
    for ext in ("pdf", "png"):
        dest = Path(f"{stem}.{ext}")
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=ext, dpi=110 if ext == "png" else None)
        out.append(str(dest))
    return out


def hf_spectra(spectra: Mapping, fits: Mapping, stem, fit_range=(20, 70)) -> list[str]:
    from .background import double_exp

    plt, hep = _setup()
    fig, axes = plt.subplots(1, 2, figsize=(16, 7))
    for ax, lep in zip(axes, ("electron", "muon")):
        pt, w = spectra[lep]
        edges = np.linspace(fit_range[0], fit_range[1], 26)
        h, _ = np.histogram(pt, edges, weights=w)
        h2, _ = np.histogram(pt, edges, weights=np.asarray(w) ** 2)
        width = np.diff(edges)
        hep.histplot(h / width, edges, yerr=np.sqrt(h2) / width, ax=ax, histtype="errorbar", color="k", label="HF simulation")
        p = [fits[lep]["params"][k] for k in ("a1", "b1", "a2", "b2")]
        x = np.linspace(*fit_range, 300)
        ax.plot(x, double_exp(x, p), "r-", label="double-exponential fit")
        ax.set_yscale("log")
        ax.set_xlabel(f"{lep} $p_T$ [GeV]")
        ax.set_ylabel("entries / GeV")
        ax.legend()
        hep.cms.label("Simulation", data=False, com=13, ax=ax)
    return _save(fig, stem)


def exclusion_vs_ctau(rows: Sequence[Mapping], m_c: float, dm: float, stem, bound_8tev: Sequence[Mapping] = (),
                      source: str = "fast") -> list[str]:
    """R95 and CLs mu95 versus c*tau at (m_c, dm): NN and cut-based, every luminosity, the 8 TeV bound."""
    plt, hep = _setup()
    sel = [r for r in rows if r["source"] == source and abs(r["m_c"] - m_c) < 1e-6 and abs(r["dm"] - dm) < 1e-6]
    if not sel:
        return []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(18, 8))
    curves = defaultdict(list)
    for r in sel:
        curves[(r["analysis"], r["lumi_fb"])].append(r)
    lumis = sorted({k[1] for k in curves})
    colors = dict(zip(lumis, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for (an, lumi), rs in sorted(curves.items()):
        rs = sorted(rs, key=lambda r: r["ctau_cm"])
        ct = np.array([r["ctau_cm"] for r in rs])
        ls = "-" if an == "nn" else "--"
        ax1.plot(ct, [r["r95"] for r in rs], ls, color=colors[lumi], label=f"{an}, {lumi:g} fb$^{{-1}}$")
        mu = np.array([r["mu95_exp"] for r in rs])
        ax2.plot(ct, mu, ls, color=colors[lumi], label=f"{an}, {lumi:g} fb$^{{-1}}$")
        if an == "nn":
            ax2.fill_between(ct, [r["mu95_exp_m1"] for r in rs], [r["mu95_exp_p1"] for r in rs], color=colors[lumi], alpha=0.2)
    for b in _group_bound(bound_8tev, m_c, dm):
        ax1.plot(b[0], b[1], ":", color="k", label="CMS 8 TeV e$\\mu$ (recast)")
    ax1.axhline(1, color="gray", lw=1)
    ax2.axhline(1, color="gray", lw=1)
    for ax, yl in ((ax1, "$R_{95}$ (excluded above 1)"), (ax2, "$\\mu_{95}$ CLs expected (excluded below 1)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$c\tau$ [cm]")
        ax.set_ylabel(yl)
        ax.legend(fontsize=11, title=f"$m_\\chi$ = {m_c:g} GeV, $\\Delta m$ = {dm:g} GeV", title_fontsize=12)
        hep.cms.label("Projection", data=False, com=13, ax=ax, lumi=None)
    return _save(fig, stem)


def _group_bound(rows, m_c, dm):
    sel = sorted([r for r in rows if abs(float(r["m_c"]) - m_c) < 1e-6 and abs(float(r["dm"]) - dm) < 1e-6],
                 key=lambda r: float(r["ctau_cm"]))
    if sel:
        yield [float(r["ctau_cm"]) for r in sel], [float(r["r95"]) for r in sel]


def mass_reach(reach_rows: Sequence[Mapping], stem, source: str = "fast", statistic: str = "cls_expected") -> list[str]:
    plt, hep = _setup()
    sel = [r for r in reach_rows if r["source"] == source and r["statistic"] == statistic]
    if not sel:
        return []
    fig, ax = plt.subplots(figsize=(10, 8))
    groups = defaultdict(list)
    for r in sel:
        groups[(r["analysis"], r["lumi_fb"])].append(r)
    for (an, lumi), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["m_c"])
        m = np.array([r["m_c"] for r in rs])
        lo = np.array([r["ctau_lo_cm"] if r["excluded"] else np.nan for r in rs], float)
        hi = np.array([r["ctau_hi_cm"] if r["excluded"] else np.nan for r in rs], float)
        ls = "-" if an == "nn" else "--"
        line = ax.plot(m, lo, ls, label=f"{an}, {lumi:g} fb$^{{-1}}$")[0]
        ax.plot(m, hi, ls, color=line.get_color())
        ax.fill_between(m, lo, hi, where=np.isfinite(lo), color=line.get_color(), alpha=0.1)
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{\chi^\pm}$ [GeV]")
    ax.set_ylabel(r"excluded $c\tau$ [cm]")
    ax.legend(fontsize=11, title=f"$\\Delta m$ = {sel[0]['dm']:g} GeV, {statistic}", title_fontsize=12)
    hep.cms.label("Projection", data=False, com=13, ax=ax)
    return _save(fig, stem)


def recast_r95(rows: Sequence[Mapping], stem, name: str, lumi: float, com: float = 13) -> list[str]:
    plt, hep = _setup()
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(10, 8))
    groups = defaultdict(list)
    for r in rows:
        groups[(r["m_c"], r["dm"])].append(r)
    for (m_c, dm), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["ctau_cm"])
        ax.plot([r["ctau_cm"] for r in rs], [r["r95"] for r in rs], label=f"$m$ = {m_c:g}, $\\Delta m$ = {dm:g} GeV")
    ax.axhline(1, color="gray", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$c\tau$ [cm]")
    ax.set_ylabel("$R_{95}$ (observed counts)")
    ax.legend(fontsize=12, title=name, title_fontsize=12)
    hep.cms.label("Simulation", data=False, com=com, lumi=lumi, ax=ax)
    return _save(fig, stem)
