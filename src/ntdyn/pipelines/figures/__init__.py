"""Figures stage: plotly figures from training histories and evaluations, each recorded."""
