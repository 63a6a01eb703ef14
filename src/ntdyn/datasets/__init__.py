"""Custom Kedro datasets: Equinox models, labelled arrays, the record store."""

from ntdyn.datasets.arrays_dataset import LabelledArraysDataset
from ntdyn.datasets.equinox_dataset import EquinoxModelDataset
from ntdyn.datasets.evaluation_dataset import EvaluationDataset
from ntdyn.datasets.figures_dataset import PlotlyFiguresDataset
from ntdyn.datasets.npz_dataset import NpzDataset
from ntdyn.datasets.store_dataset import RecordStoreDataset

__all__ = [
    "EquinoxModelDataset",
    "EvaluationDataset",
    "LabelledArraysDataset",
    "NpzDataset",
    "PlotlyFiguresDataset",
    "RecordStoreDataset",
]
