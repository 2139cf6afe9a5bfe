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

from ..config import config_hash
from ..provenance import file_sha256

log = logging.getLogger("softdisplaced.report")

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
_ROMAN_INV = {v: k for k, v in ROMAN.items()}
DEFAULT_LUMI_FB = 140.0
DEFAULT_PROJECTION_LUMIS_FB = (2.6, 140.0, 300.0, 3000.0)
DEFAULT_NN_CUT = 0.9
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
def _get(d: Mapping | None, dotted: str, default=None):
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return default
        cur = cur[part]
    return cur


class ReportContext:
    """Settings, paths and the defaults the report uses (key names documented in docs/report.md)."""

    def __init__(self, settings: Mapping, results_dir: str | os.PathLike = "results",
                 output_dir: str | os.PathLike | None = None,
                 provenance_path: str | os.PathLike | None = None):
        self.settings = dict(settings or {})
        self.results = Path(results_dir)
        self.outdir = Path(output_dir) if output_dir is not None else self.results / "paper"
        self.provenance_path = Path(provenance_path) if provenance_path else self.results / "provenance.json"
        self.config_hash = config_hash(self.settings)
        self.report_cfg = dict(self.settings.get("report") or {})
        self._checksums: dict[str, str] = {}

    # -- configuration values (each with its fallback chain) ----------------
    def get(self, dotted: str, default=None):
        return _get(self.settings, dotted, default)

    @property
    def lumi_fb(self) -> float:
        """Luminosity of the yields tables and of Fig. 8: report.lumi_fb, else 140 fb^-1 when it is
        in limits.yield_lumis_fb (or limits.lumis_fb), else the first entry there, else 140."""
        explicit = self.get("report.lumi_fb")
        if explicit is not None:
            return float(explicit)
        for key in ("limits.yield_lumis_fb", "limits.lumis_fb", "limits.projection_lumis_fb"):
            lumis = self.get(key)
            if isinstance(lumis, (int, float)):
                lumis = [lumis]
            if lumis:
                lumis = [float(x) for x in lumis]
                return DEFAULT_LUMI_FB if DEFAULT_LUMI_FB in lumis else lumis[0]
        return DEFAULT_LUMI_FB

    @property
    def projection_lumis_fb(self) -> list[float]:
        for key in ("limits.projection_lumis_fb", "limits.lumis_fb"):
            lumis = self.get(key)
            if lumis:
                return [float(x) for x in (lumis if isinstance(lumis, (list, tuple)) else [lumis])]
        return list(DEFAULT_PROJECTION_LUMIS_FB)

    @property
    def analysis(self) -> str:
        return str(self.get("report.analysis", "soft_emu"))

    @property
    def loose_analysis(self) -> str:
        return str(self.get("report.loose_analysis", "soft_emu_loose"))

    @property
    def network(self) -> str:
        """report.network, else background.nn_network when it is an enabled skim-input network of
        nn.networks (the network behind the post-NN yields), else the first enabled skim-input network,
        else the first directory under results/nn/, else 'default'."""
        explicit = self.get("report.network")
        if explicit:
            return str(explicit)
        nets = self.get("nn.networks")
        bkg_net = self.get("background.nn_network")
        if bkg_net and isinstance(nets, Mapping) and isinstance(nets.get(bkg_net), Mapping) \
                and nets[bkg_net].get("input", "skims") == "skims" and nets[bkg_net].get("enabled", True):
            return str(bkg_net)
        if isinstance(nets, Mapping) and nets:
            enabled = [n for n, s in nets.items() if not isinstance(s, Mapping) or s.get("enabled", True)]
            skims = [n for n in enabled if not isinstance(nets[n], Mapping)
                     or nets[n].get("input", "skims") == "skims"]
            if skims or enabled:
                return str((skims or enabled)[0])
        nn_dir = self.results / "nn"
        if nn_dir.is_dir():
            dirs = sorted(p.name for p in nn_dir.iterdir() if p.is_dir())
            if dirs:
                return dirs[0]
        return "default"

    @property
    def nn_cut(self) -> float:
        for key in ("report.nn_cut", "nn.cut", "nn.working_point"):
            v = self.get(key)
            if isinstance(v, (int, float)):
                return float(v)
        metrics = self.results / "nn" / self.network / "metrics.json"
        if metrics.exists():
            try:
                return float(json.loads(metrics.read_text()).get("cut", DEFAULT_NN_CUT))
            except (ValueError, TypeError):
                pass
        return DEFAULT_NN_CUT

    @property
    def source(self) -> str | None:
        """report.source, else the generator of the signal samples (samples.signal.generator)."""
        return self.get("report.source") or self.get("samples.signal.generator")

    @property
    def exclusion_point(self) -> tuple[float, float]:
        pt = self.get("report.exclusion_point") or self.get("limits.benchmark_point") or {}
        return float(pt.get("m_c", 220)), float(pt.get("dm", 20))

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


def read_skim(path: Path, datasets: Sequence[str], what: str, group: str = "events") -> dict:
    """Datasets of an HDF5 skim (contract in docs/contracts.md) plus its attributes under '_attrs'."""
    import h5py

    require_file(path, what)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc}) (needed for {what})") from exc
    with fh:
        if group not in fh:
            raise ValueError(f"{path}: no group '{group}' (needed for {what})")
        g = fh[group]
        missing = [d for d in datasets if d not in g]
        if missing:
            raise ValueError(f"{path}: group '{group}' lacks dataset(s) {missing} (needed for {what})")
        out = {d: np.asarray(g[d][...]) for d in datasets}
        attrs = {}
        for k, v in fh.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, np.generic):
                v = v.item()
            attrs[k] = v
        out["_attrs"] = attrs
    return out


def read_scores(path: Path, what: str) -> np.ndarray:
    import h5py

    require_file(path, what)
    try:
        with h5py.File(path, "r") as fh:
            if "score" not in fh:
                raise ValueError(f"{path}: no dataset 'score' (needed for {what})")
            return np.asarray(fh["score"][...], dtype=float)
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc}) (needed for {what})") from exc


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


def jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


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
