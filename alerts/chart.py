"""The digest's trend chart: mentions per week by category, as a small PNG (matplotlib, Agg).

Drawing a chart costs tens of milliseconds, far more than the rest of a digest, and most
recipients' series repeat (two recipients of one practice, and the many practices with a quiet
few weeks), so charts are cached by their data.
"""

from __future__ import annotations

import io
from functools import lru_cache

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
WIDTH_PX, HEIGHT_PX = 584, 220  # as shown in the email; drawn at twice that for sharp screens
_DPI = 200


Series = tuple[tuple[str, tuple[int, ...]], ...]


@lru_cache(maxsize=2048)
def trend_chart(week_labels: tuple[str, ...], series: Series) -> bytes:
    """A stacked bar per week, one colour per category, oldest week on the left."""
    figure = Figure(figsize=(WIDTH_PX / 100, HEIGHT_PX / 100), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.06, 0.14, 0.92, 0.72))
    positions = range(len(week_labels))
    bottoms = [0] * len(week_labels)
    for category, counts in series:
        axes.bar(
            positions,
            counts,
            bottom=bottoms,
            width=0.62,
            color=COLOURS.get(category, COLOURS["neutral"]),
            label=NAMES.get(category, category),
            linewidth=0,
        )
        bottoms = [low + count for low, count in zip(bottoms, counts, strict=True)]
    axes.set_xticks(list(positions), week_labels, fontsize=7, color="#52606d")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    axes.tick_params(axis="y", labelsize=7, colors="#7b8794", length=0)
    axes.tick_params(axis="x", length=0)
    axes.set_ylim(0, max(max(bottoms), 1) * 1.08)
    axes.grid(axis="y", color="#e6e9ee", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color("#cbd2d9")
    axes.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=len(series),
        frameon=False,
        fontsize=7,
        handlelength=1,
        handleheight=1,
        columnspacing=1.2,
        borderaxespad=0.2,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
