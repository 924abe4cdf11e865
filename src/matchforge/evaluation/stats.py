"""Uncertainty of test-set scores: bootstrap intervals over pairs, and what a comparison of two can claim.

A score computed from 2-10 pairs is one draw from a wide distribution. :func:`bootstrap` resamples the
pairs with replacement (``n`` times, seeded, so an interval repeats) and returns the 2.5 and 97.5
percentiles of the statistic: the 95 % percentile interval. Test sets under :data:`FEW_PAIRS` pairs are
flagged wherever their scores are shown.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

FEW_PAIRS = 10
RESAMPLES = 1000


def bootstrap(values: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float | np.ndarray],
              n: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> np.ndarray:
    """(lo, hi) (or (k, 2) for a vector statistic) of ``statistic`` over pair-resamples of ``values``.

    ``values``: one entry per pair (an array of shape (pairs, ...)); ``statistic`` maps such an array to a
    number or a vector. With fewer than 2 pairs the interval is the statistic itself.
    """
    values = np.asarray(values)
    point = np.asarray(statistic(values), dtype=np.float64)
    if len(values) < 2:
        return np.stack([point, point], -1)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n, len(values)))
    draws = np.stack([np.asarray(statistic(values[i]), dtype=np.float64) for i in idx])
    tail = (1 - level) / 2 * 100
    return np.stack([np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)], -1)


def compare(before: tuple[float, float], after: tuple[float, float]) -> str:
    """What two 95 % intervals allow one to say: ``better``/``worse`` when they do not overlap, else ``overlap``."""
    if after[0] > before[1]:
        return "better"
    if after[1] < before[0]:
        return "worse"
    return "overlap"
