"""Tables of the report (the study's Tables 1-5 and a few more), each written as
CSV (numbers, full precision), Markdown and LaTeX (formatted ``value ± error``),
plus a sidecar JSON pointing to ``results/provenance.json`` and the config hash.

Every writer goes through :mod:`softdisplaced.atomic`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_json, write_text
from .common import (
    Artifact, ReportContext, benchmark_label, benchmark_order, fmt_number, fmt_value, numeric,
    optional_file, read_csv, read_json, scale_to_lumi, sr_label, sr_order, artifact_sidecar,
)

log = logging.getLogger("softdisplaced.report")

__all__ = [
    "write_csv", "markdown_table", "latex_table", "write_table", "benchmarks_table",
    "transfer_factors_table", "background_table", "yields_tables", "exclusion_intervals_table",
    "recast_table", "nn_metrics_table", "ALL_TABLES",
]

SRS = ("I", "II", "III")


# ------------------------------------------------------------------- writers
def write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)

#: How B(ll) and the lepton flavours enter every signal yield (softdisplaced.inference.yields.flavour_factor).
FLAVOUR_NOTE = ("B(ll) = (B_e + B_mu)^2 with e and mu democratic; the flavour factor follows each sample's "
                "recorded decay mode (1 democratic, 1/2 for forced e-mu samples)")


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """GitHub-flavoured pipe table of a display DataFrame."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def tex_escape(text) -> str:
    s = "".join(_TEX_ESCAPE.get(ch, ch) for ch in str(text))
    return s.replace("±", r"$\pm$").replace("≥", r"$\geq$").replace("×", r"$\times$")


def latex_table(df: pd.DataFrame, caption: str, label: str, comment: str = "") -> str:
    """A booktabs ``table`` environment (needs \\usepackage{booktabs})."""
    cols = [str(c) for c in df.columns]
    align = "l" + "r" * (len(cols) - 1)
    out = []
    if comment:
        out += [f"% {line}" for line in comment.splitlines()]
    out += [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{tex_escape(caption)}}}",
            rf"\label{{tab:{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
            " & ".join(tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        out.append(" & ".join(tex_escape(v) for v in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(ctx: ReportContext, art: Artifact) -> Artifact:
    """Write ``art.data`` (CSV) and ``art.display`` (Markdown, LaTeX) plus the sidecar JSON."""
    tdir = ctx.outdir / "tables"
    base = tdir / art.name
    display = art.display if art.display is not None else art.data
    prov = f"provenance: {ctx.provenance_rel(tdir)} config_hash: {ctx.config_hash}"
    csv = write_csv(art.data, base.with_suffix(".csv"))
    md = write_text(base.with_suffix(".md"),
                    f"**{art.title}.** {art.caption}\n\n" + markdown_table(display)
                    + f"\n<!-- {prov} -->\n")
    tex = write_text(base.with_suffix(".tex"),
                     latex_table(display, f"{art.title}. {art.caption}", art.name, comment=prov))
    side = base.with_suffix(".json")
    art.files = [csv, md, tex, side]
    write_json(side, artifact_sidecar(ctx, art, side))
    return art


# -------------------------------------------------------------------- tables
def _table(name, title, caption, data, display, inputs, config, study_ref="") -> Artifact:
    return Artifact(name=name, kind="table", title=title, caption=caption, files=[], inputs=list(inputs),
                    config=dict(config), study_ref=study_ref, data=data.reset_index(drop=True),
                    display=display.reset_index(drop=True))


def benchmarks_table(ctx: ReportContext) -> Artifact:
    """Table 1: the benchmarks with the cross section each result used and its source."""
    from ..samples import cross_section_fb

    bms = ctx.get("benchmarks")
    if not bms:
        raise ValueError("settings: key 'benchmarks' is missing or empty (needed for table 1)")
    if "cross_sections" not in ctx.settings:
        raise ValueError("settings: key 'cross_sections' is missing (needed for table 1)")
    rows = []
    for b in bms:
        try:
            sig, err, src = cross_section_fb(ctx.settings, float(b["m_c"]))
            rows.append({"id": int(b["id"]), "m_c_gev": float(b["m_c"]), "dm_gev": float(b["dm"]),
                         "m_0_gev": float(b["m_c"]) - float(b["dm"]), "ctau_cm": float(b["ctau_cm"]),
                         "br_ll": float(b["br_ll"]), "cross_section_fb": sig, "cross_section_err_fb": err,
                         "cross_section_source": src})
        except KeyError as exc:
            raise ValueError(f"settings: benchmark entry {b} lacks key {exc} (needed for table 1)") from exc
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "id": data["id"], "m_c [GeV]": data["m_c_gev"].map(fmt_number),
        "dm [GeV]": data["dm_gev"].map(fmt_number), "m_0 [GeV]": data["m_0_gev"].map(fmt_number),
        "c*tau [cm]": data["ctau_cm"].map(fmt_number), "B(ll)": data["br_ll"].map(fmt_number),
        "sigma [fb]": [fmt_value(s, e) for s, e in zip(data["cross_section_fb"], data["cross_section_err_fb"])],
        "sigma source": data["cross_section_source"],
    })
    cfg = {"cross_sections.source": ctx.get("cross_sections.source"), "B(ll)": FLAVOUR_NOTE}
    caption = (f"Benchmarks (m_0 = m_c - dm) and the {ctx.get('report.com_tev'):g} TeV pair-production cross "
               f"section used (cross_sections.source = {cfg['cross_sections.source']}; {FLAVOUR_NOTE}).")
    return _table("table1_benchmarks", "Table 1: benchmark points", caption, data, display, [], cfg,
                  "study Table 1")


def transfer_factors_table(ctx: ReportContext) -> Artifact:
    """Table 2: transfer factors per threshold, one column block per method (own fit vs published)."""
    path = ctx.path("background", "transfer_factors.csv")
    cols = ["threshold", "kappa_e", "kappa_e_err", "kappa_mu", "kappa_mu_err", "kappa_emu", "kappa_emu_err", "method"]
    df = read_csv(path, cols, "table 2 (transfer factors)")
    df = numeric(df, cols[1:7], path)
    df["threshold"] = df["threshold"].map(lambda t: fmt_number(t) if isinstance(t, (int, float, np.number)) else str(t))
    methods = list(pd.unique(df["method"].astype(str)))
    thresholds = list(pd.unique(df["threshold"]))
    data = pd.DataFrame({"threshold": thresholds})
    display = pd.DataFrame({"pT threshold [GeV]": thresholds})
    for m in methods:
        sub = df[df["method"].astype(str) == m].drop_duplicates("threshold").set_index("threshold").reindex(thresholds)
        for k, lab in (("kappa_e", "kappa_e"), ("kappa_mu", "kappa_mu"), ("kappa_emu", "kappa_emu")):
            data[f"{k}_{m}"] = sub[k].to_numpy()
            data[f"{k}_err_{m}"] = sub[f"{k}_err"].to_numpy()
            display[f"{lab} ({m})"] = [fmt_value(v, e) for v, e in zip(sub[k], sub[f"{k}_err"])]
    published = ctx.get("background.published_kappa") or {}
    if published and "published_table" not in methods:
        pub = {_num_key(k): v for k, v in published.items()}
        vals = [pub.get(_num_key(t)) for t in thresholds]
        for i, k in enumerate(("kappa_e", "kappa_mu", "kappa_emu")):
            v = [x[2 * i] if x is not None else np.nan for x in vals]
            e = [x[2 * i + 1] if x is not None else np.nan for x in vals]
            data[f"{k}_published"], data[f"{k}_err_published"] = v, e
            display[f"{k} (published)"] = [fmt_value(a, b) for a, b in zip(v, e)]
        methods.append("published (config background.published_kappa)")
    cfg = {"background.method": ctx.get("background.method"),
           "background.fit_range_gev": ctx.get("background.fit_range_gev"),
           "background.upper_gev": ctx.get("background.upper_gev"),
           "methods": methods}
    caption = ("HF transfer factors kappa(pT) = int_pT^70 f / int_ref^70 f (reference 42 GeV for e, "
               f"40 GeV for mu) with uncertainties, per method: {', '.join(methods)}.")
    for label, ref in (ctx.get("background.kappa_reference_files", None) or {}).items():
        if label in methods:   # a committed measurement: say how and when it was made
            from softdisplaced.inference.background import reference_provenance

            caption += f" {label}: {reference_provenance(ref)}."
    return _table("table2_transfer_factors", "Table 2: transfer factors", caption, data, display, [path], cfg,
                  "study Table 2")


_BKG_VALUE_ALIASES = ("background", "b", "yield", "n_bkg", "value")


def _num_key(k):
    """'20', 20, 20.0, '20,20' -> 20.0 (the first number); other strings unchanged."""
    try:
        return float(str(k).split(",")[0].strip(" ()"))
    except ValueError:
        return str(k)


def _threshold_label(ctx: ReportContext, th) -> str:
    """20 -> '(20, 20)'; the reference threshold 42 -> '(42, 40)' (CMS e, mu thresholds)."""
    t = _num_key(th)
    if not isinstance(t, float):
        return str(th)
    ref = ctx.get("background.reference_threshold_gev")
    if abs(t - float(ref["electron"])) < 1e-9:
        return f"({t:g}, {float(ref['muon']):g})"
    return f"({t:g}, {t:g})"


def background_table(ctx: ReportContext) -> Artifact:
    """Table 3: HF background per threshold and SR (study: at 2.6 fb^-1, before the NN cut).

    Reads results/background/background.csv (columns ``threshold``, ``sr``, ``background``
    [+ ``background_err``, ``lumi_fb``, ``method``, ``stage``]); if it is absent, the ``hf``
    rows of results/yields/yields.csv per analysis stand in.
    """
    lumi = ctx.background_lumi_fb
    path = ctx.path("background", "background.csv")
    yields_path = ctx.path("yields", "yields.csv")
    if path.is_file():
        df = read_csv(path, ["threshold", "sr"], "table 3 (background per threshold)")
        vcol = next((c for c in _BKG_VALUE_ALIASES if c in df.columns), None)
        if vcol is None:
            raise ValueError(f"{path}: no background column (one of {list(_BKG_VALUE_ALIASES)}; has {list(df.columns)})")
        ecol = next((c for c in (f"{vcol}_err", "background_err", "stat_err", "err") if c in df.columns), None)
        df = numeric(df, [vcol] + ([ecol] if ecol else []) + (["lumi_fb"] if "lumi_fb" in df.columns else []), path)
        if "stage" in df.columns:
            df = df[df["stage"].astype(str) == "pre_nn"]
        if "method" in df.columns:
            want = ctx.get("background.method")
            methods = list(pd.unique(df["method"].astype(str)))
            pick = want if want in methods else methods[0]
            df = df[df["method"].astype(str) == pick]
        if "lumi_fb" in df.columns:
            df = scale_to_lumi(df, lumi, [vcol] + ([ecol] if ecol else []), path)
        df = df.assign(row=df["threshold"].map(lambda t: _threshold_label(ctx, t)), value=df[vcol],
                       err=df[ecol] if ecol else np.nan)
        inputs, row_name = [path], "thresholds (pT_e, pT_mu) [GeV]"
    else:
        log.warning("%s not found; taking the HF background per threshold from the hf rows of %s", path, yields_path)
        df = _read_yields(yields_path, "table 3 (background per threshold)")
        df = df[(df["benchmark"] == "hf") & (df["stage"] == "pre_nn")]
        if df.empty:
            raise ValueError(f"{yields_path}: no rows with benchmark 'hf' and stage 'pre_nn' (needed for table 3)")
        df = df[df["source"] == ctx.choose_source(df["source"], yields_path)]
        df = scale_to_lumi(df, lumi, ["yield", "stat_err"], yields_path)
        df = df.assign(row=df["analysis"].astype(str), value=df["yield"], err=df["stat_err"])
        inputs, row_name = [yields_path], "analysis"
    df = df.assign(sr=df["sr"].map(sr_label))
    rows = list(pd.unique(df["row"]))
    srs = sorted(pd.unique(df["sr"]), key=sr_order)
    data = pd.DataFrame({row_name: rows})
    display = pd.DataFrame({row_name: rows})
    for s in srs:
        sub = df[df["sr"] == s].drop_duplicates("row").set_index("row").reindex(rows)
        data[f"B_{s}"] = sub["value"].to_numpy()
        data[f"B_{s}_err"] = sub["err"].to_numpy()
        display[f"B_{s}"] = [fmt_value(v, e) for v, e in zip(sub["value"], sub["err"])]
    pub = {_num_key(k): v for k, v in (ctx.get("background.published_background_2p6fb") or {}).items()}
    ref_lumi = float(ctx.get("background.reference_lumi_fb"))
    if pub and row_name.startswith("thresholds"):
        vals = [pub.get(_num_key(r.strip("()"))) for r in rows]
        for i, s in enumerate(srs[:3]):
            v = [float(x[i]) * lumi / ref_lumi if x is not None else np.nan for x in vals]
            data[f"B_{s}_published"] = v
            display[f"B_{s} (published)"] = [fmt_number(x) for x in v]
    cfg = {"report.background_lumi_fb": lumi, "background.method": ctx.get("background.method"),
           "background.cms_upper_limits_2p6fb": ctx.get("background.cms_upper_limits_2p6fb")}
    caption = f"HF background per pT threshold and signal region at {lumi:g} fb^-1 (before the NN cut)."
    return _table("table3_background", "Table 3: background per threshold", caption, data, display, inputs,
                  cfg, "study Table 3")


YIELD_COLUMNS = ["source", "benchmark", "analysis", "sr", "stage", "lumi_fb", "yield", "stat_err"]


def _read_yields(path: Path, what: str) -> pd.DataFrame:
    df = read_csv(path, YIELD_COLUMNS, what)
    df = numeric(df, ["lumi_fb", "yield", "stat_err"], path)
    df["benchmark"] = df["benchmark"].map(benchmark_label)
    df["sr"] = df["sr"].map(sr_label)
    df["stage"] = df["stage"].astype(str)
    df["source"] = df["source"].astype(str)
    df["analysis"] = df["analysis"].astype(str)
    bad = set(df["stage"]) - {"pre_nn", "post_nn"}
    if bad:
        raise ValueError(f"{path}: column 'stage' has value(s) {sorted(bad)}; expected pre_nn or post_nn")
    return df


def select_yields(ctx: ReportContext, what: str) -> tuple[pd.DataFrame, Path]:
    """yields.csv rows of the report's source and analysis at ctx.lumi_fb."""
    path = ctx.path("yields", "yields.csv")
    df = _read_yields(path, what)
    df = df[df["analysis"] == ctx.analysis]
    if df.empty:
        raise ValueError(f"{path}: no rows for analysis '{ctx.analysis}' (needed for {what})")
    df = df[df["source"] == ctx.choose_source(df["source"], path)]
    df = scale_to_lumi(df, ctx.lumi_fb, ["yield", "stat_err"], path)
    return df, path


def _yield_block(df: pd.DataFrame, stage: str, rows: list[str], prefix: str = ""):
    sub = df[df["stage"] == stage]
    data, display = {}, {}
    for s in SRS:
        cell = sub[sub["sr"] == s].drop_duplicates("benchmark").set_index("benchmark").reindex(rows)
        data[f"{prefix}SR_{s}"] = cell["yield"].to_numpy()
        data[f"{prefix}SR_{s}_err"] = cell["stat_err"].to_numpy()
        display[f"{prefix.replace('_', ' ')}SR {s}"] = [fmt_value(v, e) for v, e in zip(cell["yield"], cell["stat_err"])]
    return data, display


def yields_tables(ctx: ReportContext) -> list[Artifact]:
    """Tables 4 and 5 (yields before / after the NN cut) and the study-shaped combined table."""
    what = "tables 4-5 (yields)"
    df, path = select_yields(ctx, what)
    for stage in ("pre_nn", "post_nn"):
        if not (df["stage"] == stage).any():
            raise ValueError(f"{path}: no '{stage}' rows for analysis '{ctx.analysis}' (needed for {what})")
    rows = sorted(pd.unique(df["benchmark"]), key=benchmark_order)
    labels = ["HF background" if r == "hf" else r for r in rows]
    cfg = {"report.lumi_fb": ctx.lumi_fb, "report.analysis": ctx.analysis, "source": df["source"].iloc[0],
           "nn cut": ctx.nn_cut, "network": ctx.network,
           "cross_sections.source": ctx.get("cross_sections.source"),
           "B(ll)": FLAVOUR_NOTE, "background.method": ctx.get("background.method")}
    out = []
    for stage, num, title in (("pre_nn", 4, "before the NN cut"), ("post_nn", 5, f"after the NN cut (NN >= {ctx.nn_cut:g})")):
        d, disp = _yield_block(df, stage, rows)
        data = pd.DataFrame({"benchmark": rows, **d})
        display = pd.DataFrame({"benchmark": labels, **disp})
        caption = (f"Expected events per benchmark and signal region {title} at {ctx.lumi_fb:g} fb^-1, "
                   f"{ctx.analysis} selection, with MC statistical errors; last row the HF background.")
        out.append(_table(f"table{num}_yields_{stage}", f"Table {num}: yields {title}", caption, data, display,
                          [path], cfg, f"study Table {num}"))
    d1, s1 = _yield_block(df, "pre_nn", rows, "pre_")
    d2, s2 = _yield_block(df, "post_nn", rows, "post_")
    data = pd.DataFrame({"benchmark": rows, **d1, **d2})
    display = pd.DataFrame({"benchmark": labels, **s1, **s2})
    caption = (f"Yields at {ctx.lumi_fb:g} fb^-1 per benchmark (rows) and SR I/II/III, before (pre) and after "
               f"(post) the NN cut NN >= {ctx.nn_cut:g}, as in the study's yield tables.")
    out.append(_table("table_yields_summary", "Yields summary (study layout)", caption, data, display, [path],
                      cfg, "study Tables 4-5"))
    return out


def _intervals(rec: Mapping, keys: Sequence[str]):
    for k in keys:
        if k in rec and rec[k] is not None:
            v = rec[k]
            if isinstance(v, Mapping):
                v = [v]
            if v and isinstance(v[0], Mapping):  # [{lo, hi, lo_open, hi_open}, ...] as limits.py writes
                v = [[iv.get("lo", iv.get("ctau_lo_cm")), iv.get("hi", iv.get("ctau_hi_cm"))] for iv in v]
            if v and not isinstance(v[0], (list, tuple)):
                v = [v]
            return [[float(a) if a is not None else np.nan, float(b) if b is not None else np.nan] for a, b in v]
    return []


def _fmt_intervals(iv) -> str:
    if not iv:
        return "none"
    return ", ".join(f"[{fmt_number(a)}, {fmt_number(b)}]" for a, b in iv)


def exclusion_intervals_table(ctx: ReportContext) -> Artifact:
    """Excluded c*tau intervals (cm) per (source, analysis, m_c, dm, lumi) by R95 and by CLs."""
    path = ctx.path("limits", "excluded_intervals.json")
    raw = read_json(path, "the exclusion-interval table")
    if isinstance(raw, Mapping):
        recs = raw.get("intervals", raw.get("results"))
        if recs is None:   # keyed mapping "source/analysis/m_c/dm/lumi" -> record
            recs = [dict(v, key=k) for k, v in raw.items() if isinstance(v, Mapping)]
    else:
        recs = raw
    if not isinstance(recs, list) or not recs:
        raise ValueError(f"{path}: expected a non-empty list of records (source, analysis, m_c, dm, lumi_fb, r95, cls)")
    rows = []
    for rec in recs:
        if not isinstance(rec, Mapping):
            raise ValueError(f"{path}: record {rec!r} is not a mapping")
        r95 = _intervals(rec, ("r95", "excluded_r95", "r95_intervals", "intervals_r95"))
        cls = _intervals(rec, ("cls_expected", "cls", "excluded_cls", "cls_intervals", "intervals_cls", "mu95_exp"))
        rows.append({"source": rec.get("source", ""), "analysis": rec.get("analysis", rec.get("key", "")),
                     "m_c": rec.get("m_c"), "dm": rec.get("dm"), "lumi_fb": rec.get("lumi_fb", rec.get("lumi")),
                     "r95_intervals_cm": _fmt_intervals(r95), "cls_intervals_cm": _fmt_intervals(cls)})
    data = pd.DataFrame(rows)
    display = data.rename(columns={"lumi_fb": "L [fb^-1]", "r95_intervals_cm": "excluded c*tau [cm] (R95)",
                                   "cls_intervals_cm": "excluded c*tau [cm] (CLs)"})
    display = display.map(lambda v: fmt_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
    cfg = {"limits.projection_lumis_fb": ctx.projection_lumis_fb, "limits.ctau_grid_cm": ctx.get("limits.ctau_grid_cm")}
    return _table("table_exclusion_intervals", "Excluded c*tau ranges", (
        "Excluded c*tau intervals at 95% CL by the study's R95 > 1 and by CLs (mu95 < 1), per analysis and "
        "luminosity."), data, display, [path], cfg, "study Section 6 / Fig. 9 text")


def recast_table(ctx: ReportContext) -> Artifact:
    """Model-independent 95% CL upper limits on signal events per SR of the recast searches."""
    files = sorted(ctx.path("recast").glob("*_s95.csv"))
    if not files:
        raise FileNotFoundError(f"{ctx.path('recast')}/*_s95.csv: required input for the recast table does not exist")
    frames = []
    for f in files:
        df = read_csv(f, ["s95_obs", "s95_exp"], "the recast table")
        df = numeric(df, ["s95_obs", "s95_exp"], f)
        if "analysis" not in df.columns:
            df.insert(0, "analysis", f.name[: -len("_s95.csv")])
        if "sr" not in df.columns:
            df.insert(1, "sr", [str(i + 1) for i in range(len(df))])
        frames.append(df[[c for c in df.columns if c in ("analysis", "channel", "sr", "s95_obs", "s95_exp")]])
    data = pd.concat(frames, ignore_index=True)
    display = data.copy()
    for c in ("s95_obs", "s95_exp"):
        display[c] = display[c].map(fmt_number)
    return _table("table_recast_s95", "Recast: model-independent limits", (
        "Model-independent 95% CL upper limits on the number of signal events per SR (observed, expected) "
        "for the recast CMS searches."), data, display, files, {"recast": ctx.get("recast")}, "study Section 7")


def nn_metrics_table(ctx: ReportContext) -> Artifact:
    """AUC and signal efficiency at the NN cut per benchmark, HF efficiency (results/nn/<net>/metrics.json)."""
    path = ctx.path("nn", ctx.network, "metrics.json")
    m = read_json(path, "the NN metrics table")
    if not isinstance(m, Mapping) or not isinstance(m.get("auc"), Mapping):
        raise ValueError(f"{path}: expected key 'auc' (benchmark id -> value)")
    keys = sorted({*m["auc"], *(m.get("sig_eff_at_cut") or {})}, key=lambda k: benchmark_order(benchmark_label(k)))
    sig = m.get("sig_eff_at_cut") or {}

    def _val(v):
        if isinstance(v, Mapping):
            return float(v.get("value", v.get("eff", np.nan))), float(v.get("err", v.get("error", np.nan)))
        return (float(v), np.nan) if v is not None else (np.nan, np.nan)

    rows = []
    for k in keys:
        a, ae = _val(m["auc"].get(k))
        s, se = _val(sig.get(k))
        rows.append({"benchmark": benchmark_label(k), "auc": a, "auc_err": ae, "sig_eff_at_cut": s, "sig_eff_at_cut_err": se})
    data = pd.DataFrame(rows)
    hf, hf_err = m.get("hf_eff_at_cut"), m.get("hf_eff_at_cut_err")
    cut = float(m.get("cut", ctx.nn_cut))
    display = pd.DataFrame({"benchmark": data["benchmark"],
                            "AUC": [fmt_value(v, e) for v, e in zip(data["auc"], data["auc_err"])],
                            f"signal eff. (NN >= {cut:g})": [fmt_value(v, e) for v, e in
                                                            zip(data["sig_eff_at_cut"], data["sig_eff_at_cut_err"])]})
    hf_txt = fmt_value(float(hf), float(hf_err) if hf_err is not None else None) if hf is not None else "n/a"
    cfg = {"network": ctx.network, "cut": cut, "input": m.get("input"), "n_train": m.get("n_train"),
           "n_test": m.get("n_test")}
    return _table("table_nn_metrics", "NN performance", (
        f"Network '{ctx.network}' ({m.get('input', '?')}): AUC on the held-out set and signal efficiency at "
        f"NN >= {cut:g} per benchmark; HF efficiency at the cut {hf_txt}."), data, display, [path], cfg,
        "study Section 4")


# name -> (builder, required by default?)  Optional tables are skipped with a warning when
# their input is absent; required ones fail.
ALL_TABLES = {
    "benchmarks": (benchmarks_table, True),
    "transfer_factors": (transfer_factors_table, True),
    "background": (background_table, True),
    "yields": (yields_tables, True),
    "nn_metrics": (nn_metrics_table, False),
    "exclusion_intervals": (exclusion_intervals_table, False),
    "recast": (recast_table, False),
}

OPTIONAL_TABLE_INPUTS = {
    "nn_metrics": lambda ctx: [ctx.path("nn", ctx.network, "metrics.json")],
    "exclusion_intervals": lambda ctx: [ctx.path("limits", "excluded_intervals.json")],
    "recast": lambda ctx: sorted(ctx.path("recast").glob("*_s95.csv")) or [ctx.path("recast", "*_s95.csv")],
}


def optional_inputs_present(ctx: ReportContext, name: str) -> bool:
    paths = OPTIONAL_TABLE_INPUTS.get(name, lambda c: [])(ctx)
    return all(optional_file(p, f"table '{name}'") is not None for p in paths)
