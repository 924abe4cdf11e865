"""Uncertainty of test-set scores, and what a comparison of two methods on the same pairs can claim.

**Photos are the unit.** Pairs that share a photo are not independent (a hard photo fails every pair it is in).
The variance of a score comes from a delete-one-photo jackknife (Snijders and Borgatti's jackknife for dyadic
data: leave out each photo with every pair it is in), minus the delete-one-pair
jackknife, which the photo jackknife counts twice for pairs: ``var = max(var_photo - var_pair, var_pair)``,
the jackknife form of Aronow, Samii and Assenova's dyadic-robust variance. A localization query is its own
photo, so there it is the plain jackknife. No random draws: the same scores give the same intervals every run.

**Intervals.** A score that is a share of successes (AUC is the mean of per-threshold success shares; recall,
epipolar precision, inlier ratio and MMA are shares too) gets a Clopper-Pearson interval at the effective number
of independent units, Korn and Graubard's interval for clustered samples: ``n_eff = p (1 - p) / var``, times
``(z / t)^2`` for the ``photos - 1`` degrees of freedom of the variance, at most the number of pairs. Where every pair failed or every pair succeeded (``p`` is 0 or 1, or the variance is 0) the
variance says nothing, and ``n_eff`` is the number of photos (at most the number of pairs): the interval stays
open on the side the data cannot rule out, e.g. 0 of 9 pairs from 5 photos gives [0, 52.2] %. Other scores
(matches per pair) get ``mean ± t * sqrt(var)`` with ``photos - 1`` degrees of freedom. Coverage, simulated with
known success rates at 2, 5, 10 and 50 photos, is in docs/evaluation.md and checked by ``tests/integration/test_stats.py``.

**Paired comparisons** (:func:`paired`): two methods scored on the same pairs (a fine-tune before and after, a
model and the SIFT reference of its protocol) are compared pair by pair: the difference of the score, its 95 %
interval from the jackknife variance of the difference (``t`` with ``photos - 1`` degrees of freedom; when the
difference never varies, Newcombe's square-and-add interval from the two Clopper-Pearson intervals), and the
two-sided p-value of an exact sign test on per-pair values (for AUC@t the pose error capped at t, so pairs
failing both count as ties). The verdict is ``better``/``worse`` only when the test rejects at 5 % and the
difference's interval excludes 0, else ``no significant difference``; with fewer than :data:`MIN_PHOTOS`
photos, ``too few photos (n)`` and no interval. The sign test treats pairs as independent; the photo-level
interval is what guards against shared photos, which is why the verdict needs both.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

FEW_PAIRS = 10
LEVEL = 0.95
MIN_PHOTOS = 5  # below it a paired comparison reports "too few photos (n)" instead of an interval and a verdict
ALPHA = 0.05  # the paired test's level for "better"/"worse"

Units = Sequence[Sequence[str]]  # per pair (or query): the photos it is made of, e.g. [("s/a.jpg", "s/b.jpg"), ...]
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (values, weights (B, n)) -> (B,) or (B, k)


def num_photos(units: Units) -> int:
    return len({p for u in units for p in u})


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (n,) or (n, k) under each row of ``weights`` (B, n)."""
    values = np.asarray(values, np.float64)
    out = (weights @ values.reshape(len(values), -1)) / weights.sum(1)[:, None]
    return out.reshape((len(weights),) + values.shape[1:])


def _leave_one_out(units: Units) -> np.ndarray:
    """(photos, units) weights: row i leaves out photo i with every unit it is in."""
    photos = sorted({p for u in units for p in u})
    index = {p: i for i, p in enumerate(photos)}
    rows = [index[p] for u in units for p in u]
    cols = [j for j, u in enumerate(units) for _ in u]
    weights = np.ones((len(photos), len(units)))
    weights[rows, cols] = 0.0
    return weights


def _jackknife(weights: np.ndarray, draws_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Jackknife variance (per component) of the statistic ``draws_of`` computes under each leave-out row of
    ``weights``; leave-outs that remove every unit are skipped; 0 with fewer than two left."""
    weights = weights[weights.sum(1) > 0]
    if len(weights) < 2:
        return np.zeros(np.shape(draws_of(np.ones((1, weights.shape[1]))))[1:])
    draws = np.asarray(draws_of(weights), np.float64)
    m = len(draws)
    return (m - 1) / m * np.sum((draws - draws.mean(0)) ** 2, 0)


def _dyadic(units: Units, draws_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Dyadic-robust variance (module docstring) of the statistic ``draws_of`` computes under weights (B, units)."""
    by_photo = _jackknife(_leave_one_out(units), draws_of)
    by_unit = _jackknife(1.0 - np.eye(len(units)), draws_of)
    return np.maximum(by_photo - by_unit, by_unit)


def variance(values: np.ndarray, units: Units, statistic: Statistic) -> np.ndarray:
    """Dyadic-robust variance of ``statistic`` of ``values`` over ``units`` (module docstring), per component."""
    values = np.asarray(values)
    return _dyadic(units, lambda w: statistic(values, w))


def clopper_pearson(p: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial interval for a share ``p`` of ``n`` (possibly fractional, an effective sample size) units."""
    from scipy.stats import beta

    x, a = p * n, (1 - level) / 2
    lo = 0.0 if x <= 0 else float(beta.ppf(a, x, n - x + 1))
    hi = 1.0 if x >= n else float(beta.ppf(1 - a, x + 1, n - x))
    return lo, hi


def effective_size(p: float, var: float, photos: int, units: int) -> float:
    """Korn-Graubard effective sample size of a share ``p`` with variance ``var``: ``p (1 - p) / var``, shrunk by
    ``(z / t)^2`` for the ``photos - 1`` degrees of freedom the variance has; at the boundary (or without variance)
    the number of photos. At most ``units`` (pairs or queries), at least 1."""
    from scipy.stats import norm

    if 0.0 < p < 1.0 and var > 0.0:
        n = p * (1 - p) / var * (float(norm.ppf(1 - (1 - LEVEL) / 2)) / t_quantile(photos)) ** 2
    else:
        n = float(photos)
    return float(np.clip(n, 1.0, max(units, 1)))


def share_interval(p: float, var: float, units: Units, level: float = LEVEL) -> tuple[float, float]:
    """Interval of a share ``p`` in [0, 1] with variance ``var``: Clopper-Pearson at the effective sample size."""
    p = float(np.clip(p, 0.0, 1.0))
    return clopper_pearson(p, effective_size(p, var, num_photos(units), len(units)), level)


def t_quantile(photos: int, level: float = LEVEL) -> float:
    from scipy.stats import t

    return float(t.ppf(1 - (1 - level) / 2, max(photos - 1, 1)))


def intervals(values: np.ndarray, units: Units, statistic: Statistic, shares: Sequence[bool],
              scale: float = 100.0) -> list[list[float]]:
    """The 95 % interval of each component of a vector ``statistic`` (module docstring): components that are
    shares (times ``scale``) by Clopper-Pearson at the effective sample size, the others by ``mean ± t sd``."""
    values = np.asarray(values)
    point = np.asarray(statistic(values, np.ones((1, len(values)))), np.float64).reshape(-1)
    var = np.asarray(variance(values, units, statistic), np.float64).reshape(-1)
    out = []
    for j, is_share in enumerate(shares):
        if is_share:
            lo, hi = share_interval(point[j] / scale, var[j] / scale**2, units)
            out.append([lo * scale, hi * scale])
        else:
            half = t_quantile(num_photos(units)) * float(np.sqrt(var[j]))
            out.append([float(point[j] - half), float(point[j] + half)])
    return out


def sign_test(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """(units where ``b`` > ``a``, units where ``b`` < ``a``, two-sided exact sign-test p-value); ties drop."""
    from scipy.stats import binomtest

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    wins, losses = int((b > a).sum()), int((b < a).sum())
    p = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return wins, losses, p


def paired(name: str, a: np.ndarray, b: np.ndarray, units: Units, statistic: Statistic, *, per_unit_a: np.ndarray,
           per_unit_b: np.ndarray, share: bool, scale: float = 100.0) -> dict[str, Any]:
    """Paired comparison of method B against method A on the same units (module docstring).

    ``a``, ``b``: the values ``statistic`` reads, one row per unit, in the same unit order; ``per_unit_a/b``: the
    per-unit values the sign test compares (higher is better, as for the statistic); ``share``: the statistic is a
    share times ``scale`` (percent), so a difference that never varies gets Newcombe's interval. Returns
    ``{score, a, b, diff, diff_ci, wins, losses, p_value, photos, pairs, verdict}``.
    """
    a, b = np.asarray(a), np.asarray(b)
    photos = num_photos(units)
    full = np.ones((1, len(units)))
    va, vb = float(statistic(a, full)[0]), float(statistic(b, full)[0])
    wins, losses, p = sign_test(per_unit_a, per_unit_b)
    out: dict[str, Any] = {"score": name, "a": va, "b": vb, "diff": vb - va, "wins": wins, "losses": losses,
                           "p_value": p, "photos": photos, "pairs": len(units)}
    if photos < MIN_PHOTOS:
        return {**out, "diff_ci": None, "verdict": f"too few photos ({photos})"}
    var = float(_dyadic(units, lambda w: np.asarray(statistic(b, w)) - np.asarray(statistic(a, w))))
    d = vb - va
    if share and var == 0.0:
        la, ha = (v * scale for v in share_interval(va / scale, 0.0, units))
        lb, hb = (v * scale for v in share_interval(vb / scale, 0.0, units))
        lo, hi = d - float(np.hypot(vb - lb, ha - va)), d + float(np.hypot(hb - vb, va - la))
    else:
        width = t_quantile(photos) * float(np.sqrt(var))
        lo, hi = d - width, d + width
    out["diff_ci"] = [lo, hi]
    if p < ALPHA and (lo > 0 or hi < 0) and np.sign(d) == np.sign(wins - losses) != 0:
        out["verdict"] = "better" if d > 0 else "worse"
    else:
        out["verdict"] = "no significant difference"
    return out


def describe(comparison: Mapping[str, Any]) -> str:
    """One line for a table cell: ``AUC@10 +12.3 [-4.0, +28.6], sign test p 0.22 (5 of 9 better, 2 worse): verdict``."""
    c = comparison
    ci = f" [{c['diff_ci'][0]:+.1f}, {c['diff_ci'][1]:+.1f}]" if c.get("diff_ci") else ""
    return (f"{c['score']} {c['diff']:+.1f}{ci}, sign test p {c['p_value']:.2g} ({c['wins']} of {c['pairs']} better, "
            f"{c['losses']} worse): {c['verdict']}")
