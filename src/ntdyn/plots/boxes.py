"""Box plots drawn from their statistics, not from the raw values.

A `go.Box` given `y` embeds every value in the figure: at research scale that is one value
per trial (or per condition and step), hundreds of thousands to millions per figure, growing
with the number of repeats. Here the statistics of each box are computed once
(`box_statistics`) and the trace holds only them (`box_trace`), so a figure's size depends
on the number of boxes, not of values.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import plotly.graph_objects as go

STATISTICS = ("q1", "median", "q3", "mean", "lowerfence", "upperfence")


def box_statistics(values) -> dict[str, float]:
    """Quartiles (linear interpolation, as plotly), Tukey whiskers (the most extreme values
    within 1.5 IQR of the box) and the mean of the finite `values`.

    Raises ValueError when there are no finite values.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("box_statistics: no finite values")
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    return {
        "q1": float(q1), "median": float(median), "q3": float(q3), "mean": float(v.mean()),
        "lowerfence": float(v[v >= q1 - reach].min()),
        "upperfence": float(v[v <= q3 + reach].max()),
    }  # fmt: skip


def box_trace(
    groups: Mapping[Hashable, Iterable] | Iterable[tuple[Hashable, Iterable]],
    *,
    name: str,
    colour: str,
    showlegend: bool = True,
    group: str | None = None,
) -> go.Box:
    """One `go.Box` trace with a box per category, drawn from the statistics of its values.

    groups: category (the box's x: a string for a categorical axis, a number for a linear
    one) -> its values, or (category, values) pairs; boxes in this order. Non-finite values
    are left out, and categories without a finite value get no box.
    The mean is drawn as a dashed line in the box (boxmean); no single values are drawn.
    `group` (default `name`) is the legend and offset group: traces of one group share a
    legend entry and, with layout boxmode="group", a slot beside the other groups' boxes.
    """
    items = groups.items() if isinstance(groups, Mapping) else groups
    x, stats = [], []
    for category, values in items:
        v = np.asarray(values, float).ravel()
        if np.isfinite(v).any():
            x.append(category)
            stats.append(box_statistics(v))
    group = name if group is None else group
    return go.Box(
        x=x,
        **{k: [s[k] for s in stats] for k in STATISTICS},
        name=name,
        marker_color=colour,
        legendgroup=group,
        offsetgroup=group,
        showlegend=showlegend,
        boxmean=True,
    )
