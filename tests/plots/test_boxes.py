"""Box plots drawn from their statistics: the statistics, the trace, and figure sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ntdyn.plots import measure_distributions_figure, measures_vs_sisu_figure, tangling_figure
from ntdyn.plots.boxes import box_statistics, box_trace
from ntdyn.plots.style import colour

FIVE_MB = 5 * 1024**2


def test_box_statistics_known_case():
    """Quartiles as numpy's linear percentiles; whiskers at the last values within 1.5 IQR."""
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 100, -40, np.nan, np.inf], float)
    st = box_statistics(values)
    finite = values[np.isfinite(values)]
    # sorted finite values: -40, 1..9, 100 -> q1 = 2.5, median = 5, q3 = 7.5, IQR = 5
    assert (st["q1"], st["median"], st["q3"]) == (2.5, 5.0, 7.5)
    np.testing.assert_allclose(
        [st["q1"], st["median"], st["q3"]], np.percentile(finite, [25, 50, 75])
    )
    # fences at 2.5 - 7.5 = -5 and 7.5 + 7.5 = 15: -40 and 100 are outliers
    assert st["lowerfence"] == 1.0 and st["upperfence"] == 9.0
    assert st["mean"] == pytest.approx(finite.mean())
    # no outlier: the whiskers reach the extremes
    st = box_statistics([3.0, 1.0, 2.0])
    assert (st["lowerfence"], st["q1"], st["median"], st["q3"], st["upperfence"]) == (
        1.0, 1.5, 2.0, 2.5, 3.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="no finite values"):
        box_statistics([np.nan])


def test_box_trace_one_box_per_category_in_order():
    rng = np.random.default_rng(0)
    groups = {"b": rng.normal(size=50), "a": rng.gamma(2.0, size=80), "none": [np.nan]}
    tr = box_trace(groups, name="n", colour="red", showlegend=False)
    assert isinstance(tr, go.Box)
    assert list(tr.x) == ["b", "a"]  # the given order; no box without a finite value
    assert tr.y is None
    for k, key in enumerate(["b", "a"]):
        st = box_statistics(groups[key])
        assert [tr[s][k] for s in st] == pytest.approx(list(st.values()))
    assert (tr.name, tr.legendgroup, tr.offsetgroup, tr.marker.color) == ("n", "n", "n", "red")
    assert tr.showlegend is False and tr.boxmean is True
    pairs = box_trace([(0.5, [1.0, 2.0]), (1.0, [3.0])], name="m", colour="blue", group="g")
    assert list(pairs.x) == [0.5, 1.0] and pairs.offsetgroup == "g" and pairs.legendgroup == "g"


def _measures(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` trials over the same groups: 3 x values, 2 colours, 2 facets, 4 SISUs."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "max_lateral": rng.normal(size=n),
            "train__pert__std": rng.choice([0.0, 0.1, 1.0], n),
            "pert_amp": rng.choice([0.0, 2.0], n),
            "train__method": rng.choice(["bptt", "es"], n),
            "sisu": rng.choice([0.0, 0.5, 2.0, 10.0], n),
        }
    )


def test_measure_distributions_figure_grouped_boxes_from_statistics():
    df = _measures(600)
    fig = measure_distributions_figure(df, "max_lateral", "train__pert__std", "pert_amp", "dist")
    assert [tr.name for tr in fig.data] == ["0.0", "2.0"]
    assert all(isinstance(tr, go.Box) and tr.y is None for tr in fig.data)
    assert [tr.marker.color for tr in fig.data] == [colour(0), colour(1)]
    assert fig.layout.boxmode == "group" and fig.layout.title.text == "dist"
    assert fig.layout.xaxis.title.text == "train__pert__std"
    assert fig.layout.yaxis.title.text == "max_lateral"
    assert fig.layout.legend.title.text == "pert_amp"
    for tr in fig.data:
        assert list(tr.x) == [0.0, 0.1, 1.0]
        for k, std in enumerate(tr.x):
            v = df[(df["pert_amp"] == float(tr.name)) & (df["train__pert__std"] == std)]
            q1, med, q3 = np.percentile(v["max_lateral"], [25, 50, 75])
            assert (tr.q1[k], tr.median[k], tr.q3[k]) == pytest.approx((q1, med, q3))
    fig.to_json()


FIGURES = {
    "measures_vs_sisu": lambda df: measures_vs_sisu_figure(
        df, "max_lateral", "train__pert__std", "train__method", "m"
    ),
    "measure_distributions": lambda df: measure_distributions_figure(
        df, "max_lateral", "train__pert__std", "pert_amp", "m"
    ),
    "tangling": lambda df: tangling_figure(
        df.rename(columns={"max_lateral": "Q"}), "train__pert__std", "sisu", "t"
    ),
}


@pytest.mark.parametrize("kind", list(FIGURES))
def test_figure_size_does_not_grow_with_the_number_of_values(kind):
    """A million values draw the same boxes as a thousand: the same figure size, far from 5 MB."""
    small, large = (len(FIGURES[kind](_measures(n)).to_json()) for n in (1_000, 1_000_000))
    assert abs(large - small) < 0.05 * small
    assert large < 50_000 < FIVE_MB
