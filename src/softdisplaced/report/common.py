"""Shared pieces of the report stage: the report context (settings read defensively),
validated readers for every input contract, and the :class:`Artifact` record.

Required inputs that are missing or malformed raise ``FileNotFoundError`` /
``ValueError`` whose message starts with the file's path; optional inputs that
are missing are left out with a logged warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import jsonable  # noqa: F401  (re-exported: report modules import it from here)
from ..config import ConfigError, config_hash, with_defaults
from ..provenance import file_sha256

log = logging.getLogger("softdisplaced.report")

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
_ROMAN_INV = {v: k for k, v in ROMAN.items()}
SOURCE_PREFERENCE = ("fast", "pythia8", "delphes", "lhe", "hepmc", "study_ntuples")


# ------------------------------------------------------------------ artifacts
@dataclasses.dataclass
class Artifact:
    """One table or figure of the report, as REPORT.md and HEPData see it."""

    name: str                       # file stem, e.g. "fig9_exclusion_ctau" or "table4_yields_pre_nn"
    kind: str                       # "table" | "figure"
    title: str                      # short title (section heading)
    caption: str                    # one-line caption
    files: list[Path]               # the written files (csv/md/tex/json or pdf/png/json)
    inputs: list[Path]              # input files it read
    config: dict                    # the configuration values it depends on
    study_ref: str = ""             # the study's table/figure it corresponds to
    data: pd.DataFrame | None = None        # numeric content (tables)
    display: pd.DataFrame | None = None     # formatted content (tables)


# ------------------------------------------------------------------- context
_MISSING = object()


def _get(d: Mapping | None, dotted: str, default=_MISSING):
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            if default is _MISSING:
                raise ConfigError(f"settings: key '{dotted}' missing (needed by the report)")
            return default
        cur = cur[part]
    return cur


class ReportContext:
    """Settings and paths of the report.  The settings are completed with the defaults of
    config/schema.yaml (the one source of default values; docs/report.md lists the report keys);
    a null ``report.*`` value takes the value its schema description names from another section."""

    def __init__(self, settings: Mapping, results_dir: str | os.PathLike = "results",
                 output_dir: str | os.PathLike | None = None,
                 provenance_path: str | os.PathLike | None = None):
        self.config_hash = config_hash(dict(settings or {}))
        self.settings = with_defaults(settings or {})
        self.results = Path(results_dir)
        self.outdir = Path(output_dir) if output_dir is not None else self.results / "paper"
        self.provenance_path = Path(provenance_path) if provenance_path else self.results / "provenance.json"
        self.report_cfg = dict(self.settings["report"])
        self._checksums: dict[str, str] = {}

    # -- configuration values ------------------------------------------------
    def get(self, dotted: str, default=_MISSING):
        """The value at ``dotted``; without ``default`` a missing key is a ConfigError naming it."""
        return _get(self.settings, dotted, default)

    def _report_or(self, key: str, other: str):
        v = self.get(f"report.{key}")
        return self.get(other) if v is None else v

    @property
    def lumi_fb(self) -> float:
        """report.lumi_fb, null: the first of limits.yield_lumis_fb."""
        v = self.get("report.lumi_fb")
        return float(v) if v is not None else float(self.get("limits.yield_lumis_fb")[0])

    @property
    def background_lumi_fb(self) -> float:
        return float(self._report_or("background_lumi_fb", "background.reference_lumi_fb"))

    @property
    def projection_lumis_fb(self) -> list[float]:
        return [float(x) for x in self.get("limits.projection_lumis_fb")]

    @property
    def analysis(self) -> str:
        return str(self.get("report.analysis"))

    @property
    def loose_analysis(self) -> str:
        return str(self.get("report.loose_analysis"))

    @property
    def network(self) -> str:
        """report.network, null: background.nn_network (the network behind the post-NN yields)."""
        return str(self._report_or("network", "background.nn_network"))

    @property
    def nn_cut(self) -> float:
        """The working point of the report network: nn.cut (what train, yields and limits apply)."""
        return float(self.get("nn.cut"))

    @property
    def source(self) -> str | None:
        """report.source, null: the generator of the signal samples (samples.signal.generator)."""
        return self._report_or("source", "samples.signal.generator")

    @property
    def exclusion_point(self) -> tuple[float, float]:
        pt = self._report_or("exclusion_point", "limits.benchmark_point")
        return float(pt["m_c"]), float(pt["dm"])

# -- paths --------------------------------------------------------------
    def path(self, *parts) -> Path:
        return self.results.joinpath(*map(str, parts))

    def skim(self, analysis: str, sample: str) -> Path:
        return self.path("skims", analysis, f"{sample}.h5")

    def scores(self, analysis: str, sample: str, network: str | None = None) -> Path:
        return self.path("nn", network or self.network, "scores", analysis, f"{sample}.h5")

    def provenance_rel(self, from_dir: Path) -> str:
        return os.path.relpath(self.provenance_path, from_dir)

    def checksum(self, path: Path) -> str:
        key = str(path)
        if key not in self._checksums:
            self._checksums[key] = file_sha256(path)
        return self._checksums[key]

    def choose_source(self, available: Iterable[str], file: Path) -> str:
        avail = [str(a) for a in pd.unique(pd.Series(list(available), dtype=object))]
        if not avail:
            raise ValueError(f"{file}: no rows")
        want = self.source
        if want is not None and str(want) in avail:
            return str(want)
        if want is not None:
            log.warning("%s: no rows with source %r; using %r", file, want, avail[0])
        for s in SOURCE_PREFERENCE:
            if s in avail:
                return s
        return avail[0]


# ------------------------------------------------------------------- readers
def require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: required input for {what} does not exist")
    return path


def optional_file(path: Path, what: str) -> Path | None:
    path = Path(path)
    if not path.is_file():
        log.warning("%s: optional input for %s not found; leaving that element out", path, what)
        return None
    return path


def read_csv(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV input with at least ``columns``; errors name the file."""
    require_file(path, what)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed CSV ({exc}) (needed for {what})") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (has {list(df.columns)}; needed for {what})")
    if df.empty:
        raise ValueError(f"{path}: no data rows (needed for {what})")
    return df


def read_json(path: Path, what: str):
    require_file(path, what)
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed JSON ({exc}) (needed for {what})") from exc


def numeric(df: pd.DataFrame, cols: Sequence[str], path: Path) -> pd.DataFrame:
    """Convert ``cols`` to float; a non-numeric entry is an error naming the file."""
    df = df.copy()
    for c in cols:
        conv = pd.to_numeric(df[c], errors="coerce")
        bad = conv.isna() & df[c].notna() & (df[c].astype(str).str.strip() != "")
        if bad.any():
            raise ValueError(f"{path}: column '{c}' has non-numeric value(s) {df[c][bad].head(3).tolist()}")
        df[c] = conv.astype(float)
    return df


def read_skim(path: Path, datasets: Sequence[str], what: str) -> dict:
    """Datasets of group ``events`` of a skim (plus ``weight_gen`` when present) and its attributes under
    '_attrs', read by softdisplaced.processing.skim.read_events (the one skim reader); errors name the file."""
    from softdisplaced.processing.skim import read_events

    require_file(path, what)
    try:
        events, attrs = read_events(path, list(datasets), optional=("weight_gen",))
    except (OSError, ValueError) as exc:
        raise type(exc)(f"{exc} (needed for {what})") from exc
    out = {k: np.asarray(v) for k, v in events.items()}
    out["_attrs"] = attrs
    return out


def read_scores(path: Path, what: str) -> np.ndarray:
    """The scores of a score file, read by softdisplaced.nn.scoring.read_scores (the one score reader)."""
    from ..nn.scoring import read_scores as read

    require_file(path, what)
    try:
        return read(path)
    except (OSError, ValueError) as exc:
        raise type(exc)(f"{exc} (needed for {what})") from exc


# --------------------------------------------------------------- conventions
def sr_label(value) -> str:
    """Normalise a signal-region label (1, '1', 'I', 'SR I', 'sr1') to the roman numeral."""
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer()):
        return ROMAN.get(int(value), str(int(value)))
    s = str(value).strip()
    m = re.fullmatch(r"(?i)(?:sr)?[\s_]*([ivx]+|\d+)", s)
    if m:
        tok = m.group(1)
        return ROMAN.get(int(tok), tok) if tok.isdigit() else tok.upper()
    return s


def sr_order(label: str) -> int:
    return _ROMAN_INV.get(label, 99)


def benchmark_label(value) -> str:
    """'1', 1, 1.0, 'bp1' -> '1'; 'hf' stays 'hf'."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        return str(int(value))
    s = str(value).strip()
    m = re.fullmatch(r"(?i)bp(\d+)", s)
    return m.group(1) if m else s


def benchmark_order(label: str):
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def fmt_value(value: float, err: float | None = None, digits: int = 3) -> str:
    """Human format: ``value ± err`` with the error to two significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if err is None or (isinstance(err, float) and math.isnan(err)) or err <= 0:
        return fmt_number(value, digits)
    decimals = max(0, 1 - int(math.floor(math.log10(abs(err)))))
    return f"{value:.{decimals}f} ± {err:.{decimals}f}"


def fmt_number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    if 1e-3 <= abs(v) < 1e5:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def scale_to_lumi(df: pd.DataFrame, lumi: float, cols: Sequence[str], path: Path) -> pd.DataFrame:
    """Rows at ``lumi``; if a group has no row at that luminosity, scale its first luminosity
    linearly (S and B scale linearly with luminosity; so do their MC statistical errors)."""
    at = df[np.isclose(df["lumi_fb"].astype(float), lumi)]
    if not at.empty:
        return at
    base_lumi = float(df["lumi_fb"].iloc[0])
    log.warning("%s: no rows at %g fb^-1; scaling the %g fb^-1 rows linearly", path, lumi, base_lumi)
    out = df[np.isclose(df["lumi_fb"].astype(float), base_lumi)].copy()
    for c in cols:
        out[c] = out[c] * lumi / base_lumi
    out["lumi_fb"] = lumi
    return out


def artifact_sidecar(ctx: ReportContext, art: Artifact, sidecar: Path) -> dict:
    """The sidecar JSON of a figure/table: where its provenance lives and what it came from."""
    return jsonable({
        "artifact": art.name,
        "kind": art.kind,
        "title": art.title,
        "caption": art.caption,
        "study_reference": art.study_ref,
        "provenance": ctx.provenance_rel(sidecar.parent),
        "config_hash": ctx.config_hash,
        "config": art.config,
        "inputs": {str(p): ctx.checksum(p) for p in art.inputs},
        "files": [p.name for p in art.files],
    })
