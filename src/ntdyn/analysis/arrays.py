"""Arrays with named axes: what an evaluation stores (not pickles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LabelledArrays:
    """Named arrays with named axes and JSON-able attributes.

    arrays: name -> ndarray. axes: name -> axis names, one per dimension (e.g.
    ("replicate", "trial", "time", "var")). attrs: metadata such as the model hash.
    """

    arrays: dict[str, np.ndarray]
    axes: dict[str, tuple[str, ...]]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name, arr in self.arrays.items():
            dims = self.axes.get(name)
            if dims is None or len(dims) != np.ndim(arr):
                raise ValueError(
                    f"array {name!r} of shape {np.shape(arr)} needs one axis name per dimension, "
                    f"got {dims}"
                )

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]
