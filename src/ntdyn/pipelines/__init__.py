"""Kedro pipelines: thin nodes over the science library, one folder per stage."""
