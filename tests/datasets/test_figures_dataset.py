"""Figures of a kind: saved as plotly JSON by name, loaded lazily, previewed for kedro-viz."""

import inspect

import plotly.graph_objects as go

from ntdyn.datasets import PlotlyFiguresDataset


def test_figures_round_trip_and_the_first_is_previewed(tmp_path):
    ds = PlotlyFiguresDataset(path=str(tmp_path / "center_out"))
    figs = {name: go.Figure(go.Scatter(x=[0, 1], y=[i, i + 1], name=name))
            for i, name in enumerate(["b_model", "a_model"])}  # fmt: skip
    ds.save(figs)
    loaded = ds.load()
    assert sorted(loaded) == ["a_model", "b_model"]
    assert list(loaded["b_model"]().data[0].y) == [0, 1]
    preview = ds.preview()
    assert preview["data"][0]["name"] == "a_model"
    assert inspect.signature(ds.preview).return_annotation.__name__ == "PlotlyPreview"


def test_saving_replaces_the_previous_figures(tmp_path):
    ds = PlotlyFiguresDataset(path=str(tmp_path / "kind"))
    ds.save({"old": go.Figure()})
    ds.save({"new": go.Figure()})
    assert sorted(ds.load()) == ["new"]
