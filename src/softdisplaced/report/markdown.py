"""``results/paper/REPORT.md``: every figure (PNG, relative link, PDF link) and every table
(inline, with links to CSV/LaTeX) with a one-line caption and the configuration it came from
(config hash and the relevant values); links to the provenance file and the HEPData submission.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..atomic import write_text
from .common import Artifact, ReportContext, jsonable
from .tables import markdown_table

__all__ = ["render_report", "write_report_md"]


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _config_line(ctx: ReportContext, art: Artifact) -> str:
    vals = "; ".join(f"`{k}` = `{json.dumps(jsonable(v), sort_keys=True)}`" for k, v in art.config.items())
    return f"*Configuration:* hash `{ctx.config_hash}`" + (f"; {vals}" if vals else "")


def _generators_and_fidelity(ctx: ReportContext) -> list[str]:
    """Which generator fed the tables and figures (sample metadata ``source``), and a pointer to the
    fidelity section of the validation report (results/validation/fidelity.md) with its count of
    differences above the threshold."""
    gens = {k: ctx.get(f"samples.{k}.generator", "fast") for k in ("signal", "mass_scan", "hf")}
    lines = [f"Generators: signal `{gens['signal']}`, mass scan `{gens['mass_scan']}`, heavy flavour `{gens['hf']}`; "
             f"tables and figures show source `{ctx.source or 'fast'}`; HF background normalisation "
             f"`{ctx.get('background.method', 'published_table')}` (results/background/transfer_factors.csv).", ""]
    fid = ctx.results / "validation" / "fidelity.md"
    if fid.is_file():
        n = sum(1 for line in fid.read_text().splitlines() if line.startswith("- ") and "Why:" in line)
        lines += [f"Fidelity against the study (yields, cutflow, NN, kappa): [{_rel(fid, ctx.outdir)}]"
                  f"({_rel(fid, ctx.outdir)}), {n} difference(s) above the threshold, each explained there.", ""]
    return lines


def render_report(ctx: ReportContext, artifacts: Sequence[Artifact], skipped: Sequence[tuple[str, str]] = ()) -> str:
    out_dir = ctx.outdir
    tables = [a for a in artifacts if a.kind == "table"]
    figures = [a for a in artifacts if a.kind == "figure"]
    other = [a for a in artifacts if a.kind not in ("table", "figure")]
    lines = [
        "# Soft displaced e-mu search: paper artifacts",
        "",
        f"Configuration hash `{ctx.config_hash}`; full configuration, git commit, package versions, input "
        f"checksums and rule run times in [{_rel(ctx.provenance_path, out_dir)}]({_rel(ctx.provenance_path, out_dir)}). "
        f"Luminosity of the yields: {ctx.lumi_fb:g} fb^-1; projections: "
        f"{', '.join(f'{l:g}' for l in ctx.projection_lumis_fb)} fb^-1; network `{ctx.network}`, cut NN >= {ctx.nn_cut:g}.",
        "",
    ] + _generators_and_fidelity(ctx) + [
        "## Tables",
        "",
    ]
    for a in tables:
        links = ", ".join(f"[{p.suffix[1:]}]({_rel(p, out_dir)})" for p in a.files)
        lines += [f"### {a.title}", "", f"{a.caption}" + (f" ({a.study_ref})" if a.study_ref else ""), "",
                  markdown_table(a.display if a.display is not None else a.data), f"Files: {links}", "",
                  _config_line(ctx, a), ""]
    lines += ["## Figures", ""]
    for a in figures:
        png = next((p for p in a.files if p.suffix == ".png"), None)
        links = ", ".join(f"[{p.suffix[1:]}]({_rel(p, out_dir)})" for p in a.files)
        lines += [f"### {a.title}", ""]
        if png is not None:
            lines += [f"![{a.title}]({_rel(png, out_dir)})", ""]
        lines += [f"{a.caption}" + (f" ({a.study_ref})" if a.study_ref else ""), "", f"Files: {links}", "",
                  _config_line(ctx, a), ""]
    for a in other:
        tar = next((p for p in a.files if p.name.endswith(".tar.gz")), None)
        lines += [f"## {a.title}", "", a.caption, ""]
        if tar is not None:
            sub = next((p for p in a.files if p.name == "submission.yaml"), None)
            lines += [f"Archive: [{_rel(tar, out_dir)}]({_rel(tar, out_dir)})"
                      + (f"; submission file: [{_rel(sub, out_dir)}]({_rel(sub, out_dir)})" if sub else ""), ""]
        lines += [_config_line(ctx, a), ""]
    stop_png = ctx.path("recast_stop", "mass_limits.png")
    if stop_png.is_file():                 # the long-lived top-squark recast (config/recast_stop.yaml)
        csv_ = ctx.path("recast_stop", "mass_limits.csv")
        lines += ["## Long-lived top squarks: recast of CMS-PAS-EXO-16-022 and CMS-EXO-18-003", "",
                  f"![excluded stop mass]({_rel(stop_png, out_dir)})", "",
                  "Largest excluded stop mass versus c*tau_0 (95% CL CLs, observed and expected), stop -> b l. "
                  f"Table: [{csv_.name}]({_rel(csv_, out_dir)}); recast validation against the CMS signal yields: "
                  f"[RECAST.md]({_rel(ctx.path('validation', 'RECAST.md'), out_dir)}).", ""]
    lines += _input_losses(ctx)
    if skipped:
        lines += ["## Not produced", ""]
        lines += [f"- {name}: {reason}" for name, reason in skipped]
        lines += [""]
    return "\n".join(lines).rstrip() + "\n"


def _input_losses(ctx: ReportContext) -> list[str]:
    """Skipped input files and events dropped for non-finite inputs (skims of the report's analysis)."""
    from ..samples import build_samples, signal_samples
    from softdisplaced.processing.skim import input_losses_markdown

    skims = {n: ctx.skim(ctx.analysis, n) for n in signal_samples(build_samples(ctx.settings)) + ["hf"]}
    return input_losses_markdown({n: p for n, p in skims.items() if p.exists()}, ctx.analysis)


def write_report_md(ctx: ReportContext, artifacts: Sequence[Artifact], skipped: Sequence[tuple[str, str]] = ()) -> Path:
    return write_text(ctx.outdir / "REPORT.md", render_report(ctx, artifacts, skipped))
