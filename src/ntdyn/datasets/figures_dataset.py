"""Figures of one kind: plotly JSON files in one folder, with a kedro-viz preview."""

import json
from typing import Any

from kedro_datasets._typing import PlotlyPreview
from kedro_datasets.partitions import PartitionedDataset


class PlotlyFiguresDataset(PartitionedDataset):
    """`{name: go.Figure}` saved as `<path>/<name>.json` (plotly JSON); loads lazily.

    The folder is replaced on save (overwrite), so it always holds exactly the
    figures of the last run; kedro-viz previews the first figure by name.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None, **kwargs):
        super().__init__(
            path=path,
            dataset="plotly.JSONDataset",
            filename_suffix=".json",
            overwrite=True,
            metadata=metadata,
            **kwargs,
        )

    def preview(self) -> PlotlyPreview:
        """The first figure (by name) as a plotly JSON dict, for kedro-viz."""
        partitions = sorted(self._list_partitions())
        if not partitions:
            raise FileNotFoundError(f"no figures under {self._path}")
        with self._filesystem.open(partitions[0]) as f:
            return PlotlyPreview(json.load(f))
