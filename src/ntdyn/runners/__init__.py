"""Kedro runners: `kedro run --runner ntdyn.runners.DaskRunner` runs a pipeline on Dask."""

from .dask_runner import DaskConfHooks, DaskRunner

__all__ = ["DaskConfHooks", "DaskRunner"]
