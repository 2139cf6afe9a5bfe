"""NN diagnostic figures of ``softdisplaced train``: discriminant, ROC curves, loss history; PDF and PNG,
in the project's figure style (softdisplaced.report.style: labelled as a phenomenology study)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .. import atomic
from . import evaluation as ev


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    return plt, mplhep


def _label(ax, mplhep, text, y=0.80):
    from ..report.style import label

    label(ax)   # report.label of the schema (training does not depend on the report settings)
    ax.text(0.04, y, text, transform=ax.transAxes, fontsize=14)


def _save(fig, stem: Path):
    import matplotlib.pyplot as plt

    for ext in ("pdf", "png"):
        with atomic.atomic_path(Path(f"{stem}.{ext}")) as tmp:
            fig.savefig(tmp, dpi=100, format=ext, metadata={"CreationDate": None} if ext == "pdf" else None)
    plt.close(fig)


def discriminant(stem, s_train, s_test, b_train, b_test, cut, label):
    """Signal and background NN output, training (filled) vs held-out (points)."""
    plt, mplhep = _setup()
    fig, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    bins = np.linspace(0, 1, 26)
    centers = 0.5 * (bins[1:] + bins[:-1])
    for tr, te, color, name in ((s_train, s_test, "tab:red", "signal"), (b_train, b_test, "tab:blue", "HF")):
        ax.hist(tr, bins=bins, density=True, histtype="stepfilled", alpha=0.35, color=color,
                label=f"{name} (train)")
        h, _ = np.histogram(te, bins=bins)
        norm = max(h.sum(), 1) * np.diff(bins)
        ax.errorbar(centers, h / norm, yerr=np.sqrt(h) / norm, fmt="o", color=color, ms=4,
                    label=f"{name} (test)")
    ax.axvline(cut, color="k", ls="--", lw=1, label=f"cut {cut:g}")
    ks_s = ev.ks_test(s_train, s_test)["pvalue"]
    ks_b = ev.ks_test(b_train, b_test)["pvalue"]
    ax.set_xlabel("NN output")
    ax.set_ylabel(r"$1/N\; dN/d$(NN output)")
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 300)
    ax.legend(fontsize=12, loc="upper right", ncol=2, title=f"KS p-value: signal {ks_s:.2f}, HF {ks_b:.2f}",
              title_fontsize=11)
    _label(ax, mplhep, label, y=0.92)
    _save(fig, Path(stem))


def roc(stem, curves: Mapping, cut, label, styles: Mapping | None = None):
    """ROC curves drawn as in the report (report.figures.roc_axes: logarithmic background-efficiency
    axis, the working point NN >= cut marked)."""
    from ..report.figures import roc_axes

    plt, mplhep = _setup()
    fig, ax = plt.subplots(figsize=(9, 9), layout="constrained")
    rows = []
    for key, (s, b) in curves.items():
        _, es, eb = ev.roc_curve(s, b)
        kw = dict((styles or {}).get(key, {}))
        name = kw.pop("label", f"BP{key}" if str(key).isdigit() else str(key))
        rows.append((name, eb, es, ev.auc(s, b), (ev.efficiency(b, cut)["eff"], ev.efficiency(s, cut)["eff"]), kw))
    roc_axes(ax, rows, cut)
    ax.text(0.97, 0.04, label, transform=ax.transAxes, fontsize=14, ha="right")
    _label(ax, mplhep, "", y=0.9)
    _save(fig, Path(stem))


def roc_comparison(stem, param_scored: Mapping, single_scored: Mapping, cut, label):
    curves, styles = {}, {}
    import matplotlib

    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, key in enumerate(param_scored):
        c = colors[i % len(colors)]
        curves[f"p{key}"] = param_scored[key][:2]
        styles[f"p{key}"] = {"color": c, "ls": "-", "label": f"{key} param."}
        curves[f"s{key}"] = single_scored[key][:2]
        styles[f"s{key}"] = {"color": c, "ls": ":", "label": f"{key} single"}
    roc(stem, curves, cut, label, styles)


def history(stem, subsets, label):
    plt, mplhep = _setup()
    fig, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    for i, s in enumerate(subsets):
        h = s["history"]
        ax.plot(h.get("loss", []), label=f"train (subset {i})")
        if "val_loss" in h:
            ax.plot(h["val_loss"], ls="--", label=f"validation (subset {i})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.legend(fontsize=11)
    _label(ax, mplhep, label)
    _save(fig, Path(stem))
