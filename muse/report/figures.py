"""A figure per report table: its headline score per feature set, with the spread over seeds.

One panel per partition with scores; per feature set a group of bars, one per system, at the
mean over seeds with a +-sd error bar and every seed's score as a dot, so two seeds that
disagree are visible at a glance; a hollow diamond marks the paper's published value (real
MuSe-CaR) where it has one. Built with matplotlib's object-oriented API like
`muse.runs.plots` (no pyplot state).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from muse.report.render import PAPER_LABEL
from muse.report.tables import Table
from muse.tasks import EVALUATED_PARTITIONS

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_PAPER_MARKER = {"marker": "D", "s": 30, "facecolor": "none", "edgecolor": "black", "zorder": 4}
_PAPER_LEGEND = {"marker": "D", "markerfacecolor": "none", "markeredgecolor": "black"}


def score_figure(table: Table) -> Figure:
    """Bars of the table's headline column per feature set and system, per partition."""
    column = table.spec.column(table.spec.headline)
    partitions = [p for p in EVALUATED_PARTITIONS
                  if any(row.cell(p, column.metric).n for row in table.rows)] or ["devel"]
    features = list(dict.fromkeys(row.features_label for row in table.rows))
    systems = list(dict.fromkeys(row.system for row in table.rows))
    width = 0.8 / len(systems)
    fig = Figure(figsize=(max(6.0, 1.2 + 0.9 * len(features) * max(1, len(systems) / 2)),
                          1.2 + 2.6 * len(partitions)), layout="constrained")
    axes = fig.subplots(len(partitions), 1, squeeze=False)[:, 0]
    for ax, partition in zip(axes, partitions, strict=True):
        for s, system in enumerate(systems):
            color = _COLORS[s % len(_COLORS)]
            for row in (r for r in table.rows if r.system == system):
                cell = row.cell(partition, column.metric)
                x = features.index(row.features_label) - 0.4 + width * (s + 0.5)
                if cell.n:
                    ax.bar(x, cell.mean, width * 0.9, color=color, alpha=0.55)
                    if cell.sd is not None:
                        ax.errorbar(x, cell.mean, yerr=cell.sd, color="black", capsize=3, lw=1)
                    ax.scatter(np.full(cell.n, x), cell.values, color=color, edgecolor="black",
                               s=14, zorder=3)
                paper = row.paper_value(partition, column.metric)
                if paper is not None:
                    ax.scatter([x], [paper], **_PAPER_MARKER)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(range(len(features)), features, rotation=20 if len(features) > 4 else 0)
        ax.set_xlim(-0.5, len(features) - 0.5)
        ax.set_ylabel(f"{column.title} ({partition})")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{table.spec.title} — {column.title}\nmean ± sd over seeds, dots: one seed each")
    handles = [Patch(color=_COLORS[s % len(_COLORS)], alpha=0.55, label=system)
               for s, system in enumerate(systems)]
    if any(row.paper_value(p, column.metric) is not None for row in table.rows for p in partitions):
        handles.append(Line2D([], [], linestyle="none", label=PAPER_LABEL, **_PAPER_LEGEND))
    axes[0].legend(handles=handles, fontsize="small", loc="best")
    return fig
