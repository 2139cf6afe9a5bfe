"""The look of every figure of the project (report and NN diagnostics).

mplhep's CMS-like typography, and a label that says what the work is: the layout of
mplhep's experiment-neutral label (``hep.label.exp_label(exp="")``) with the text of
``report.label`` (default "Phenomenology study", config/schema.yaml) on the left and
the luminosity and centre-of-mass energy on the right.  No experiment's name or logo:
this is a phenomenology study, not a result of an experiment.
"""

from __future__ import annotations

import functools
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["figure_style", "styled", "label", "default_label", "legend_room", "save_pdf_png", "LEGEND_FONTSIZE"]

LEGEND_FONTSIZE = 16


def figure_style():
    """Context in which figures are drawn (rcParams restored afterwards)."""
    return plt.style.context(hep.style.CMS)


def styled(func):
    """Run a figure builder inside :func:`figure_style`; close its figures afterwards."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with figure_style():
            try:
                return func(*args, **kwargs)
            finally:
                plt.close("all")
    return wrapper


@functools.lru_cache(maxsize=1)
def _schema_report_defaults() -> dict:
    from ..config import with_defaults

    return with_defaults({})["report"]


def default_label() -> str:
    """``report.label`` of the schema, for figures drawn by stages that do not get the report settings."""
    return str(_schema_report_defaults()["label"])


def label(ax, text: str | None = None, com: float | None = None, lumi: float | None = None,
          report_cfg: Mapping | None = None) -> None:
    """Left: ``text`` (the work); right: ``<lumi> fb^-1 (<com> TeV)``.  Defaults from ``report_cfg``
    (the report section of the settings), else from the schema."""
    cfg = dict(_schema_report_defaults(), **(report_cfg or {}))
    text = cfg["label"] if text is None else text
    com = cfg["com_tev"] if com is None else com
    right = (f"{lumi:g} fb$^{{-1}}$ " if lumi is not None else "") + f"({com:g} TeV)"
    # the layout of hep.label.exp_label(exp="", llabel=text), placed directly: exp_label draws the
    # whole canvas to measure its text, ~1 s per axes
    size = plt.rcParams["font.size"]
    ax.text(0.0, 1.005, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=size, fontstyle="italic")
    ax.text(1.0, 1.005, right, transform=ax.transAxes, ha="right", va="bottom", fontsize=size * 0.85)


def legend_room(ax, fraction: float = 0.3) -> None:
    """Raise the upper y limit so that the top ``fraction`` of the axes is free for the legend
    (in decades on a logarithmic axis)."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log":
        llo, lhi = np.log10(lo), np.log10(hi)
        ax.set_ylim(lo, 10 ** (llo + (lhi - llo) / (1.0 - fraction)))
    else:
        ax.set_ylim(lo, lo + (hi - lo) / (1.0 - fraction))


def save_pdf_png(fig, stem, dpi: int = 100) -> list[str]:
    """``<stem>.pdf`` and ``<stem>.png`` written atomically (reproducible PDF: no creation date); closes ``fig``."""
    from pathlib import Path

    from ..atomic import atomic_path

    out = []
    for ext in ("pdf", "png"):
        dest = Path(f"{stem}.{ext}")
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi if ext == "png" else None,
                        metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(str(dest))
    plt.close(fig)
    return out
