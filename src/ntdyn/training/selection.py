"""Replicate selection: best validation loss, outliers excluded (and recorded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReplicateSelection:
    """Outcome of selecting one replicate of an ensemble.

    validation_loss: (R,) total validation loss per replicate. excluded: replicates
    whose loss is non-finite, or (with at least 3 finite losses) more than
    `n_std_exclude` robust standard deviations above the median: the median plus
    `n_std_exclude` x 1.4826 x the median absolute deviation (`select_replicate`).
    best: replicate with the lowest loss among those kept. diverged: replicates whose
    training diverged (`ntdyn.training.divergence`), excluded whatever their loss.
    """

    validation_loss: tuple[float, ...]
    best: int
    excluded: tuple[int, ...]
    n_std_exclude: float
    diverged: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {
            "validation_loss": list(self.validation_loss),
            "best_replicate": self.best,
            "excluded_replicates": list(self.excluded),
            "n_std_exclude": self.n_std_exclude,
            "diverged_replicates": list(self.diverged),
        }


# Scales the median absolute deviation to the standard deviation of a normal distribution.
MAD_TO_STD = 1.4826


def select_replicate(
    validation_loss: np.ndarray, n_std_exclude: float, diverged: tuple[int, ...] = ()
) -> ReplicateSelection:
    """Pick the best replicate and list the excluded ones (docs/science.md §3.6).

    A replicate is excluded when its loss lies more than `n_std_exclude` standard
    deviations above the centre, both estimated robustly: the centre is the median and
    the standard deviation 1.4826 x the median absolute deviation (the original spec's "mean"
    and "standard deviation", made robust). With the plain mean and std, an outlier inflates the std
    it is measured against: no loss can exceed the mean by more than sqrt(R - 1)
    stds, so with 5 replicates and a threshold of 2 nothing could ever be excluded.
    Needs R >= 3 finite losses; non-finite losses are always excluded, and so are the
    `diverged` replicates (they take no part in the centre and the spread either).
    """
    loss = np.asarray(validation_loss, dtype=float)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"validation_loss must be a non-empty 1-D array, got shape {loss.shape}")
    if not n_std_exclude > 0:
        raise ValueError(f"train__n_std_exclude = {n_std_exclude}: must be > 0")
    finite = np.isfinite(loss)
    finite[list(diverged)] = False
    if not finite.any():
        raise ValueError(
            f"no replicate to select: every validation loss is non-finite or its replicate "
            f"diverged (losses {loss.tolist()}, diverged {list(diverged)})"
        )
    excluded = ~finite
    if finite.sum() >= 3:
        centre = np.median(loss[finite])
        scale = MAD_TO_STD * np.median(np.abs(loss[finite] - centre))
        excluded |= finite & (loss > centre + n_std_exclude * scale) & (loss > centre)
    kept = np.where(~excluded)[0]
    best = int(kept[np.argmin(loss[kept])])
    return ReplicateSelection(
        validation_loss=tuple(float(v) for v in loss),
        best=best,
        excluded=tuple(int(i) for i in np.where(excluded)[0]),
        n_std_exclude=float(n_std_exclude),
        diverged=tuple(int(i) for i in diverged),
    )
