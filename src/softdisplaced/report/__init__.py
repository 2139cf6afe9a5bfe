"""The report stage: paper tables, figures, HEPData submission and REPORT.md (docs/report.md).

``build_report(settings, results_dir, output_dir)`` builds every selected artifact; each
builder fails (naming the file) when a required input is missing or malformed, and leaves
optional elements out with a logged warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .common import Artifact, ReportContext

log = logging.getLogger("softdisplaced.report")

__all__ = ["Artifact", "ReportContext", "build_report", "artifact_names", "default_artifacts", "expected_outputs"]

TABLE_FILES = {
    "benchmarks": ["table1_benchmarks"],
    "transfer_factors": ["table2_transfer_factors"],
    "background": ["table3_background"],
    "yields": ["table4_yields_pre_nn", "table5_yields_post_nn", "table_yields_summary"],
    "nn_metrics": ["table_nn_metrics"],
    "exclusion_intervals": ["table_exclusion_intervals"],
    "recast": ["table_recast_s95"],
}
FIGURE_FILES = {
    "lepton_pt": "fig2_lepton_pt", "hf_fit": "fig4_hf_pt_fit", "d0": "fig5_d0", "kinematics": "fig6_kinematics",
    "nn": "fig7_nn_discriminant_roc", "nn_sr3": "fig8_nn_sr3", "exclusion_ctau": "fig9_exclusion_ctau",
    "mass_plane": "fig10_mass_ctau_plane",
}
OPTIONAL_TABLES = ("nn_metrics", "exclusion_intervals", "recast")


def artifact_names() -> list[str]:
    return [*TABLE_FILES, *FIGURE_FILES, "hepdata"]


def default_artifacts(settings: Mapping) -> list[str]:
    """report.artifacts (default: all) minus report.skip; the mass plane only when the mass scan is enabled."""
    rep = settings.get("report") or {}
    names = list(rep.get("artifacts") or artifact_names())
    unknown = sorted((set(names) | set(rep.get("skip") or [])) - set(artifact_names()))
    if unknown:
        from ..config import ConfigError

        raise ConfigError(f"report.artifacts / report.skip: unknown artifact(s) {unknown}; known: {artifact_names()}")
    ms = (settings.get("samples") or {}).get("mass_scan") or {}
    if "artifacts" not in rep and ms.get("enabled") is False:
        names.remove("mass_plane")
    return [n for n in names if n not in set(rep.get("skip") or [])]


def expected_outputs(settings: Mapping, output_dir: str | os.PathLike = "results/paper") -> list[str]:
    """Files the report always writes for this configuration (optional tables excluded): for rule outputs."""
    out = Path(output_dir)
    files = [out / "REPORT.md"]
    for name in default_artifacts(settings):
        if name in TABLE_FILES and name not in OPTIONAL_TABLES:
            files += [out / "tables" / f"{stem}.{ext}" for stem in TABLE_FILES[name] for ext in ("csv", "md", "tex", "json")]
        elif name in FIGURE_FILES:
            files += [out / "figures" / f"{FIGURE_FILES[name]}.{ext}" for ext in ("pdf", "png", "json")]
        elif name == "hepdata":
            files += [out / "hepdata" / "submission.yaml", out / "hepdata.tar.gz"]
    return [str(f) for f in files]


def build_report(settings: Mapping, results_dir: str | os.PathLike = "results",
                 output_dir: str | os.PathLike | None = None, provenance_path: str | os.PathLike | None = None,
                 only: Sequence[str] | None = None, skip: Iterable[str] = ()) -> list[Artifact]:
    """Build the selected artifacts and REPORT.md; returns the artifacts written."""
    from .figures import ALL_FIGURES
    from .hepdata import write_hepdata
    from .markdown import write_report_md
    from .tables import ALL_TABLES, optional_inputs_present, write_table

    ctx = ReportContext(settings, results_dir, output_dir, provenance_path)
    names = list(only) if only else default_artifacts(settings)
    bad = sorted(set(names) - set(artifact_names()))
    if bad:
        raise ValueError(f"unknown report artifact(s) {bad}; known: {artifact_names()}")
    names = [n for n in names if n not in set(skip)]
    artifacts: list[Artifact] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        if name in ALL_TABLES:
            builder, _ = ALL_TABLES[name]
            if name in OPTIONAL_TABLES and not optional_inputs_present(ctx, name):
                skipped.append((name, "optional input absent (see the log)"))
                continue
            res = builder(ctx)
            for art in res if isinstance(res, list) else [res]:
                artifacts.append(write_table(ctx, art))
        elif name in ALL_FIGURES:
            artifacts.append(ALL_FIGURES[name](ctx))
    if "hepdata" in names:
        artifacts.append(write_hepdata(ctx, artifacts))
    write_report_md(ctx, artifacts, skipped)
    log.info("%s: %d artifacts (config %s)", ctx.outdir / "REPORT.md", len(artifacts), ctx.config_hash)
    return artifacts
