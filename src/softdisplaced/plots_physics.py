"""The figure of ``softdisplaced recast``: R95 versus c*tau of one recast search, PDF and PNG.

The other physics figures (HF fit, exclusion versus c*tau, the (m_c, c*tau) plane) are drawn
once, by the report (softdisplaced.report.figures); all share softdisplaced.report.style.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence


def recast_r95(rows: Sequence[Mapping], stem, name: str, lumi: float, com: float = 13) -> list[str]:
    """R95 (observed counts) versus c*tau for every (m_c, dm) of ``rows`` (recast.RECAST_CTAU_COLUMNS)."""
    if not rows:
        return []
    import matplotlib.pyplot as plt

    from .report.style import LEGEND_FONTSIZE, figure_style, label, legend_room, save_pdf_png

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
