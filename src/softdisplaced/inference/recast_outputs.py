"""Figures and tables of the recasts: R95 versus c*tau of a chargino recast (``softdisplaced recast``), and
for the long-lived top-squark recast the excluded-mass figure (CMS-paper style), the HEPData table and the
recast-validation note (results/validation/RECAST.md). The other physics figures (HF fit, exclusion versus
c*tau, the (m_c, c*tau) plane) are drawn once, by the report (softdisplaced.report.figures); all share
softdisplaced.report.style."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from softdisplaced.atomic import write_text

LABELS = {"cms_exo_16_022": r"CMS-PAS-EXO-16-022 e$\mu$ (2.6 fb$^{-1}$)",
          "cms_exo_18_003": r"CMS-EXO-18-003 ee + e$\mu$ + $\mu\mu$ (113-118 fb$^{-1}$)",
          "cms_exo_18_003_emu": r"CMS-EXO-18-003 e$\mu$", "cms_exo_18_003_ee": "CMS-EXO-18-003 ee",
          "cms_exo_18_003_mumu": r"CMS-EXO-18-003 $\mu\mu$"}


def _finite(rows, key):
    return [(r["ctau_cm"], r[key]) for r in rows if isinstance(r[key], float) and math.isfinite(r[key])]


def mass_limit_figure(rows: Sequence[Mapping], stem, models: Sequence[str] | None = None) -> list[str]:
    """Largest excluded stop mass versus c*tau_0 (x: mass, y: c*tau_0 log), observed solid, expected dashed
    with its +-1 sigma band, one colour per model; the project's figure style and label (a phenomenology
    study, not CMS)."""
    import matplotlib.pyplot as plt

    from softdisplaced.report.style import LEGEND_FONTSIZE, figure_style, label, save_pdf_png

    by = defaultdict(list)
    for r in rows:
        by[r["analysis"]].append(r)
    models = [m for m in (models or sorted(by)) if m in by]
    with figure_style():
        fig, ax = plt.subplots(figsize=(10, 10), layout="constrained")
        label(ax, com=13)
        for j, model in enumerate(models):
            rs = sorted(by[model], key=lambda r: r["ctau_cm"])
            col = f"C{j}"
            band = [(r["ctau_cm"], r["m_excl_exp_m1"], r["m_excl_exp_p1"]) for r in rs
                    if math.isfinite(r["m_excl_exp_m1"]) and math.isfinite(r["m_excl_exp_p1"])]
            if band:
                ct, lo, hi = map(np.asarray, zip(*band))
                ax.fill_betweenx(ct, lo, hi, color=col, alpha=0.2, lw=0)
            for key, ls, lab in (("m_excl_obs", "-", "observed"), ("m_excl_exp", "--", "expected")):
                pts = _finite(rs, key)
                if pts:
                    ct, m = zip(*pts)
                    ax.plot(m, ct, ls, color=col, lw=2, label=f"{LABELS.get(model, model)}, {lab}")
        ax.set_yscale("log")
        ax.set_xlabel(r"$m_{\tilde{t}}$ [GeV]")
        ax.set_ylabel(r"$c\tau_0$ [cm]")
        ax.legend(fontsize=LEGEND_FONTSIZE - 4, loc="upper right", title_fontsize=LEGEND_FONTSIZE - 4,
                  title=r"$\tilde{t}\tilde{t}^*$, $\tilde{t} \to b\ell$ ($\ell$ = e, $\mu$, $\tau$); left of the curves excluded")
        return save_pdf_png(fig, stem)


def hepdata_table(path):
    """hepdata_lib Table of the excluded stop mass versus c*tau (results/recast_stop/mass_limits.csv)."""
    import pandas as pd
    from hepdata_lib import Table, Variable

    df = pd.read_csv(path)
    t = Table("Long-lived top squark: excluded mass")
    t.description = ("Largest excluded top-squark mass (95% CL, CLs) versus c*tau_0 for the stop -> b l model "
                     "(l = e, mu, tau, 1/3 each), recasting CMS-PAS-EXO-16-022 and CMS-EXO-18-003 "
                     "(per channel and combined); observed and expected. Empty: nothing excluded.")
    t.location = "Recast figure (results/recast_stop/mass_limits)"
    t.keywords["cmenergies"] = [13000]
    cts = np.sort(pd.unique(df["ctau_cm"]))
    x = Variable("CTAU", is_independent=True, is_binned=False, units="cm")
    x.values = [float(c) for c in cts]
    t.add_variable(x)
    for model, g in df.groupby("analysis", sort=True):
        g = g.set_index("ctau_cm").reindex(cts)
        for col, name in (("m_excl_obs", "Observed excluded M(STOP)"), ("m_excl_exp", "Expected excluded M(STOP)")):
            y = Variable(name, is_independent=False, is_binned=False, units="GeV")
            y.values = ["-" if not np.isfinite(v) else float(v) for v in g[col]]
            y.add_qualifier("analysis", str(model))
            t.add_variable(y)
    return t


def validation_markdown(rows: Sequence[Mapping], cfg: Mapping, command: str, samples_note: str) -> str:
    vcfg = (cfg["recast"].get("stops") or {}).get("validation") or {}
    tol, min_ev = float(vcfg.get("tolerance", 0.3)), float(vcfg.get("min_events", 0.5))
    tested = [r for r in rows if r["tested"]]
    passed = [r for r in tested if r["within_tolerance"]]
    lines = [
        "# Recast validation: long-lived top squarks (stop -> b l)",
        "",
        "The project's stop signal yields per signal region against the ones CMS published for the same model",
        "(CMS-PAS-EXO-16-022: the analysts' datacards at 2.6 fb^-1; CMS-EXO-18-003: Fig. 3, e-mu channel).",
        f"Acceptance: |ours/CMS - 1| <= {tol:.0%} wherever CMS expects more than {min_ev:g} events.",
        f"Result: {len(passed)} of {len(tested)} tested regions within tolerance.",
        "",
        f"Command: `{command}`", "", samples_note, "",
        "Last column: the ratio without the displaced-lepton efficiency weight (`weight_d0eff`: the efficiencies",
        "versus |d0| and, where the analysis sets `lepton_vertex_max_mm`, their production-vertex volume).", "",
        "| analysis | m_stop | c*tau [cm] | region | CMS | ours | ratio | tested | within | n_eff "
        "| ratio without eff. weight |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f} +- {r['ratio_err']:.2f}" if math.isfinite(r["ratio"]) else "-"
        lines.append(f"| {r['analysis']} | {r['m_stop']:g} | {r['ctau_cm']:g} | {r['region']} | {r['cms']:g} | "
                     f"{r['ours']:.3g} +- {r['ours_err']:.2g} | {ratio} | {'yes' if r['tested'] else 'no'} | "
                     f"{'' if r['within_tolerance'] is None else ('yes' if r['within_tolerance'] else 'NO')} | "
                     f"{r['n_eff']:.0f} | {'-' if r.get('ratio_no_d0eff') is None else format(r['ratio_no_d0eff'], '.2f')} |")
    return "\n".join(lines) + "\n"


def write_validation(rows, cfg, outdir, command: str, samples_note: str) -> list[str]:
    from softdisplaced.inference.recast import VALIDATION_COLUMNS
    from softdisplaced.inference.yields import write_csv

    out = Path(outdir)
    write_csv(out / "RECAST.csv", rows, VALIDATION_COLUMNS)
    write_text(out / "RECAST.md", validation_markdown(rows, cfg, command, samples_note))
    return [str(out / "RECAST.csv"), str(out / "RECAST.md")]


def recast_r95(rows: Sequence[Mapping], stem, name: str, lumi: float, com: float = 13) -> list[str]:
    """R95 (observed counts) versus c*tau for every (m_c, dm) of ``rows`` (recast.RECAST_CTAU_COLUMNS)."""
    if not rows:
        return []
    import matplotlib.pyplot as plt

    from softdisplaced.report.style import LEGEND_FONTSIZE, figure_style, label, legend_room, save_pdf_png

    with figure_style():
        fig, ax = plt.subplots(figsize=(10, 10), layout="constrained")
        label(ax, com=com, lumi=lumi)
        groups = defaultdict(list)
        for r in rows:
            groups[(r["m_c"], r["dm"])].append(r)
        for (m_c, dm), rs in sorted(groups.items()):
            rs = sorted(rs, key=lambda r: r["ctau_cm"])
            ax.plot([r["ctau_cm"] for r in rs], [r["r95"] for r in rs],
                    label=f"$m_{{\\chi^\\pm}}$ = {m_c:g} GeV, $\\Delta m$ = {dm:g} GeV")
        ax.axhline(1, color="gray", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$c\tau$ [cm]")
        ax.set_ylabel("$R_{95}$ (observed counts; excluded above 1)")
        legend_room(ax, 0.3)
        ax.legend(fontsize=LEGEND_FONTSIZE - 2, ncol=2, title=f"recast of {name}", title_fontsize=LEGEND_FONTSIZE - 2)
        return save_pdf_png(fig, stem)
