"""Displaced-lepton reconstruction efficiency versus |d0| (the skims' ``weight_d0eff``).

Tables: CMS 8 TeV displaced e-mu, HEPData ins1317640 tables 5 (electrons) and
6 (muons), stored as ROOT TH1F ``Table N/Hist1D_y1`` with x in **cm**; they
are read from the files named in the ``efficiency`` configuration section and
converted to mm.

The study's extension beyond the tables (``efficiency.<flavour>.extrapolation``):
a straight line from ``(from_mm, e0)`` to ``(to_mm, value_at_to)``, where ``e0``
is the table value at ``from_mm`` (the bin [lo, hi) containing it; the last bin
when ``from_mm`` is the table's upper edge: electrons 0.6938 at 10 mm, muons
0.8090 at 20 mm).  With ``mode:
study_steps`` (default) the line is evaluated at the upper edge of the
``step_mm`` step containing |d0| (i.e. at ``floor(|d0| / step) * step + step``),
which reproduces the per-lepton weights ``wtelF`` / ``wtmuF`` of the study's
ntuples to float precision; ``mode: linear`` evaluates it at |d0| itself.
For |d0| >= ``to_mm`` the efficiency is ``value_beyond`` (default 0).
Below ``from_mm`` the table bin containing |d0| is used (bins [lo, hi)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from softdisplaced.config import REPO_ROOT

__all__ = ["EfficiencyTable", "load_tables", "d0_weight", "resolve_path"]


def resolve_path(path: str) -> Path:
    """Relative paths: the working directory first, then the repository root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


@dataclass(frozen=True)
class EfficiencyTable:
    edges_mm: np.ndarray
    values: np.ndarray
    from_mm: float | None = None
    to_mm: float | None = None
    value_at_to: float | None = None
    mode: str = "study_steps"
    step_mm: float = 1.0
    value_beyond: float = 0.0
    source: str = ""

    @property
    def value_at_from(self) -> float:
        """Table value at ``from_mm`` (bins [lo, hi), the last bin closed at its upper edge)."""
        i = int(np.searchsorted(self.edges_mm, self.from_mm, side="right")) - 1
        return float(self.values[min(max(i, 0), len(self.values) - 1)])

    def __call__(self, d0_mm, xp=np):
        """Efficiency at ``|d0_mm|`` (array; numpy or cupy via ``xp``)."""
        d = xp.abs(xp.asarray(d0_mm, dtype=xp.float64))
        edges = xp.asarray(self.edges_mm)
        vals = xp.asarray(self.values)
        idx = xp.searchsorted(edges, d, side="right") - 1
        inside = (idx >= 0) & (idx < len(self.values))
        eff = xp.where(inside, vals[xp.clip(idx, 0, len(self.values) - 1)], self.value_beyond)
        if self.from_mm is not None:
            e0 = self.value_at_from
            slope = (self.value_at_to - e0) / (self.to_mm - self.from_mm)
            if self.mode == "study_steps":
                x = xp.floor(d / self.step_mm) * self.step_mm + self.step_mm
            else:
                x = d
            line = e0 + slope * (x - self.from_mm)
            eff = xp.where(d >= self.from_mm, line, eff)
            eff = xp.where(d >= self.to_mm, self.value_beyond, eff)
        return eff


def _read_table(fcfg: Mapping, common: Mapping) -> EfficiencyTable:
    import uproot

    path = resolve_path(fcfg["file"])
    if not path.exists():
        raise FileNotFoundError(f"{path}: efficiency table file does not exist (efficiency.*.file)")
    try:
        with uproot.open(path) as fh:
            h = fh[fcfg["histogram"]]
            edges = np.asarray(h.axis().edges(), dtype=np.float64)
            values = np.asarray(h.values(), dtype=np.float64)
    except KeyError as exc:
        raise ValueError(f"{path}: no histogram '{fcfg['histogram']}' in the efficiency file") from exc
    scale = {"cm": 10.0, "mm": 1.0}[fcfg.get("x_unit", "cm")]
    ext = fcfg.get("extrapolation")
    tab = EfficiencyTable(
        edges_mm=edges * scale, values=values,
        from_mm=None if ext is None else float(ext["from_mm"]),
        to_mm=None if ext is None else float(ext["to_mm"]),
        value_at_to=None if ext is None else float(ext["value_at_to"]),
        mode=common.get("mode", "study_steps"), step_mm=float(common.get("step_mm", 1.0)),
        value_beyond=float(common.get("value_beyond", 0.0)), source=str(path))
    if ext is not None and not (tab.edges_mm[0] < tab.from_mm <= tab.edges_mm[-1]):
        raise ValueError(f"{path}: extrapolation.from_mm = {tab.from_mm} is outside the table "
                         f"[{tab.edges_mm[0]:g}, {tab.edges_mm[-1]:g}] mm")
    return tab


def load_tables(eff_cfg: Mapping) -> dict[str, EfficiencyTable]:
    """``{"electron": table, "muon": table}`` from the ``efficiency`` section."""
    return {fl: _read_table(eff_cfg[fl], eff_cfg) for fl in ("electron", "muon")}


def d0_weight(tables: Mapping[str, EfficiencyTable], flavour_1, d0_1, flavour_2, d0_2, xp=np):
    """eff(flavour_1, d0_1) x eff(flavour_2, d0_2); flavours are arrays of 11/13 or scalars."""
    def eff(fl, d0):
        e = tables["electron"](d0, xp)
        m = tables["muon"](d0, xp)
        return xp.where(xp.asarray(fl) == 11, e, m)

    return eff(flavour_1, d0_1) * eff(flavour_2, d0_2)
