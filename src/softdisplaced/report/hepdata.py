"""HEPData submission (hepdata_lib): the yields tables (before / after the NN cut, with MC
statistical errors, HF background included) and the exclusion curves (R95 and CLs mu95 vs
c*tau per analysis and luminosity; the mass reach when present).

Written to ``<outdir>/hepdata/`` (``submission.yaml`` + one YAML per table) and the archive
``<outdir>/hepdata.tar.gz`` (outside the directory: the validator rejects unreferenced files in
a submission directory); both validated with hepdata-validator (offline) when it
is installed. The directory is built aside and swapped in, so a failure leaves the old one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .common import Artifact, ReportContext, read_csv, numeric

log = logging.getLogger("softdisplaced.report")

__all__ = ["build_submission", "write_hepdata", "validate"]


def _val(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _yields_table(art: Artifact, stage_title: str, lumi: float, location: str, com_tev: float):
    from hepdata_lib import Table, Uncertainty, Variable

    t = Table(f"Yields {stage_title}")
    t.description = (f"{art.caption} Expected signal events per benchmark and the HF background in the three "
                     f"signal regions at {lumi:g} fb^-1.")
    t.location = location
    t.keywords["observables"] = ["N"]
    t.keywords["reactions"] = ["P P --> CHARGINO+ CHARGINO-"]
    t.keywords["cmenergies"] = [1000 * com_tev]
    data = art.data
    srs = [c for c in data.columns if c.startswith("SR_") and not c.endswith("_err")]
    x = Variable("Signal region", is_independent=True, is_binned=False)
    x.values = [c.replace("_", " ") for c in srs]
    t.add_variable(x)
    for _, row in data.iterrows():
        bm = str(row["benchmark"])
        y = Variable("Expected events", is_independent=False, is_binned=False, zero_uncertainties_warning=False)
        y.values = [_val(row[c]) for c in srs]
        y.add_qualifier("Process", "HF background" if bm == "hf" else f"benchmark {bm}")
        y.add_qualifier("Luminosity", f"{lumi:g}", "fb$^{-1}$")
        y.add_qualifier("SQRT(S)", com_tev, "TeV")
        u = Uncertainty("MC stat", is_symmetric=True)
        u.values = [0.0 if _val(row[f"{c}_err"]) == "-" else float(row[f"{c}_err"]) for c in srs]
        y.add_uncertainty(u)
        t.add_variable(y)
    return t


def _exclusion_tables(ctx: ReportContext):
    from hepdata_lib import Table, Variable

    from .figures import exclusion_selection, read_exclusion

    df, path = read_exclusion(ctx, "the HEPData exclusion tables")
    sel, m_c, dm = exclusion_selection(ctx, df, path)
    tables = []
    for ana in pd.unique(sel["analysis"]):
        g = sel[sel["analysis"] == ana]
        ctaus = np.sort(pd.unique(g["ctau_cm"]))
        t = Table(f"Exclusion vs ctau {ana}")
        t.description = (f"Analysis '{ana}' at m_c = {m_c:g} GeV, dm = {dm:g} GeV: the study's R95 (excluded where "
                         "R95 > 1) and the CLs upper limit on the signal strength mu95 (excluded where mu95 < 1) "
                         "versus the mediator proper decay length, per integrated luminosity.")
        t.location = "Figure 9"
        t.keywords["cmenergies"] = [1000 * ctx.get("report.com_tev")]
        t.keywords["reactions"] = ["P P --> CHARGINO+ CHARGINO-"]
        x = Variable("CTAU", is_independent=True, is_binned=False, units="cm")
        x.values = [float(c) for c in ctaus]
        t.add_variable(x)
        for lumi in sorted(pd.unique(g["lumi_fb"])):
            gl = g[np.isclose(g["lumi_fb"], lumi)].drop_duplicates("ctau_cm").set_index("ctau_cm").reindex(ctaus)
            for col, name in (("r95", "R95"), ("mu95_exp", "Expected mu95 (CLs)"), ("mu95_obs", "Observed mu95 (CLs)")):
                if not gl[col].notna().any():
                    continue
                y = Variable(name, is_independent=False, is_binned=False)
                y.values = [_val(v) for v in gl[col]]
                y.add_qualifier("Luminosity", f"{lumi:g}", "fb$^{-1}$")
                y.add_qualifier("M(CHARGINO)", f"{m_c:g}", "GeV")
                y.add_qualifier("DELTA M", f"{dm:g}", "GeV")
                y.add_qualifier("SQRT(S)", ctx.get("report.com_tev"), "TeV")
                t.add_variable(y)
        tables.append(t)
    return tables, path


def _mass_reach_table(ctx: ReportContext):
    from hepdata_lib import Table, Variable

    path = ctx.path("limits", "mass_reach.csv")
    df = read_csv(path, ["analysis", "lumi_fb", "m_c", "ctau_lo_cm", "ctau_hi_cm"], "the HEPData mass-reach table")
    df = numeric(df, ["lumi_fb", "m_c", "ctau_lo_cm", "ctau_hi_cm"], path)
    masses = np.sort(pd.unique(df["m_c"]))
    t = Table("Mass reach")
    t.description = "Excluded c*tau interval (lower and upper edge) versus the mediator mass at fixed mass splitting."
    t.location = "Mass-reach figure"
    t.keywords["cmenergies"] = [1000 * ctx.get("report.com_tev")]
    x = Variable("M(CHARGINO)", is_independent=True, is_binned=False, units="GeV")
    x.values = [float(m) for m in masses]
    t.add_variable(x)
    keys = ["analysis", "lumi_fb"] + [c for c in ("source", "statistic") if c in df.columns]
    for key, g in df.groupby(keys, sort=True):
        g = g.drop_duplicates("m_c").set_index("m_c").reindex(masses)
        for col, name in (("ctau_lo_cm", "Lower excluded CTAU"), ("ctau_hi_cm", "Upper excluded CTAU")):
            y = Variable(name, is_independent=False, is_binned=False, units="cm")
            y.values = [_val(v) for v in g[col]]
            for k, v in zip(keys, key):
                y.add_qualifier(k, f"{v:g}" if isinstance(v, float) else str(v))
            t.add_variable(y)
    return t, path


def build_submission(ctx: ReportContext, artifacts: Sequence[Artifact]):
    """The hepdata_lib Submission and the input files it used."""
    from hepdata_lib import Submission

    sub = Submission()
    sub.comment = ("Soft displaced e-mu search for long-lived charged mediators (reproduction of arXiv:2007.03708 "
                   f"with the softdisplaced workflow). Configuration hash {ctx.config_hash}.")
    by_name = {a.name: a for a in artifacts}
    inputs = []
    for name, title, loc in (("table4_yields_pre_nn", "before the NN cut", "Table 4"),
                             ("table5_yields_post_nn", "after the NN cut", "Table 5")):
        if name not in by_name:
            raise ValueError(f"HEPData: the yields table '{name}' was not built (results/yields/yields.csv)")
        sub.add_table(_yields_table(by_name[name], title, ctx.lumi_fb, loc, ctx.get("report.com_tev")))
        inputs += by_name[name].inputs
    tables, path = _exclusion_tables(ctx)
    for t in tables:
        sub.add_table(t)
    inputs.append(path)
    mr = ctx.path("limits", "mass_reach.csv")
    if mr.is_file():
        t, p = _mass_reach_table(ctx)
        sub.add_table(t)
        inputs.append(p)
    else:
        log.warning("%s not found: HEPData submission without the mass-reach table", mr)
    stop = ctx.path("recast_stop", "mass_limits.csv")
    if stop.is_file():                     # the long-lived top-squark recast (config/recast_stop.yaml)
        from softdisplaced.inference.recast_outputs import hepdata_table

        sub.add_table(hepdata_table(stop))
        inputs.append(stop)
    return sub, inputs


def validate(directory: str | None = None, archive: str | None = None) -> tuple[bool, list[str]]:
    """Validate a submission directory or archive offline with hepdata-validator; (True, [note]) if unavailable."""
    try:
        from hepdata_validator.full_submission_validator import FullSubmissionValidator
    except ImportError:
        log.warning("hepdata-validator not installed: HEPData submission not validated")
        return True, ["hepdata-validator not installed"]
    v = FullSubmissionValidator()
    ok = v.validate(directory=directory) if directory else v.validate(archive=archive)
    msgs = []
    for fname, messages in v.get_messages().items():
        msgs += [f"{fname}: {m.message}" for m in messages]
    return bool(ok), msgs


def write_hepdata(ctx: ReportContext, artifacts: Sequence[Artifact]) -> Artifact:
    sub, inputs = build_submission(ctx, artifacts)
    dest = ctx.outdir / "hepdata"
    tar = ctx.outdir / "hepdata.tar.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".hepdata.", dir=dest.parent)).resolve()  # absolute: we chdir below
    try:
        build = work / "hepdata"
        # create_files writes submission.tar.gz into the working directory: run it inside `work`
        with contextlib.chdir(work):
            sub.create_files(str(build), validate=False, remove_old=True)
        for kw in ({"directory": str(build)}, {"archive": str(work / "submission.tar.gz")}):
            ok, msgs = validate(**kw)
            if not ok:
                raise ValueError(f"{dest}: HEPData submission failed validation:\n  " + "\n  ".join(msgs))
        if dest.exists():
            dest.rename(work / "old")
        build.rename(dest)
        os.replace(work / "submission.tar.gz", tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sorted(dest.iterdir()) + [tar]
    names = [t.name for t in sub.tables]
    return Artifact("hepdata", "hepdata", "HEPData submission",
                    f"hepdata_lib submission with {len(names)} tables: {', '.join(names)}.",
                    files, inputs, {"report.lumi_fb": ctx.lumi_fb, "tables": names})
