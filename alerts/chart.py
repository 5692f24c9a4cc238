"""The digest's trend chart: mentions per week by category, as a small PNG (matplotlib, Agg).

Drawing is the dearest part of a digest, so it is done as cheaply as matplotlib allows: one
figure per layout (weeks and categories) is built once and only its bar heights change between
charts, and charts are cached by their data, since many recipients share a series (two
recipients of one practice, and the many practices with a quiet few weeks). Figures are not
thread-safe, hence the lock.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

COLOURS = {
    "threat": "#b42318",
    "abusive": "#dd6b20",
    "critical": "#d6a03a",
    "praise": "#3f9c6d",
    "neutral": "#a7b1bc",
}
NAMES = {
    "threat": "Threat",
    "abusive": "Abuse",
    "critical": "Criticism",
    "praise": "Praise",
    "neutral": "Other",
}
WIDTH_PX, HEIGHT_PX = 584, 220  # as shown in the email; drawn at 1.5 times that for sharp screens
_DPI = 150

Series = tuple[tuple[str, tuple[int, ...]], ...]
_LOCK = threading.Lock()


@lru_cache(maxsize=1024)  # about 15 MB at most
def trend_chart(week_labels: tuple[str, ...], series: Series) -> bytes:
    """A stacked bar per week, one colour per category, oldest week on the left."""
    with _LOCK:
        figure, axes, bars = _layout(week_labels, tuple(category for category, _ in series))
        bottoms = [0] * len(week_labels)
        for container, (_, counts) in zip(bars, series, strict=True):
            for bar, bottom, count in zip(container.patches, bottoms, counts, strict=True):
                bar.set_y(bottom)
                bar.set_height(count)
            bottoms = [low + count for low, count in zip(bottoms, counts, strict=True)]
        axes.set_ylim(0, max(max(bottoms), 1) * 1.08)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()


@lru_cache(maxsize=8)
def _layout(week_labels: tuple[str, ...], categories: tuple[str, ...]) -> tuple[Figure, Any, list[Any]]:
    """The figure for these weeks and categories, with empty bars ready to be given heights."""
    figure = Figure(figsize=(WIDTH_PX / 100, HEIGHT_PX / 100), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.06, 0.14, 0.92, 0.72))
    positions = range(len(week_labels))
    bars = [
        axes.bar(
            positions,
            [0] * len(week_labels),
            width=0.62,
            color=COLOURS.get(category, COLOURS["neutral"]),
            label=NAMES.get(category, category),
            linewidth=0,
        )
        for category in categories
    ]
    axes.set_xticks(list(positions), week_labels, fontsize=7, color="#52606d")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    axes.tick_params(axis="y", labelsize=7, colors="#52606d", length=0)
    axes.tick_params(axis="x", length=0)
    axes.grid(axis="y", color="#e6e9ee", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color("#cbd2d9")
    axes.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=len(categories),
        frameon=False,
        fontsize=7,
        handlelength=1,
        handleheight=1,
        columnspacing=1.2,
        borderaxespad=0.2,
    )
    return figure, axes, bars
