"""Bands and rows for MinHash LSH, chosen the way datasketch's ``MinHashLSH`` chooses them.

With ``b`` bands of ``r`` rows, two documents of Jaccard similarity ``s`` share at least one band with
probability ``1 - (1 - s**r)**b``. For a threshold ``t``, the false-positive probability is that curve
integrated over ``[0, t]`` and the false-negative probability ``1 -`` the curve integrated over ``[t, 1]``.
Every ``(b, r)`` with ``b * r <= num_perm`` is tried and the one minimising
``fp_weight * fp + fn_weight * fn`` wins, the first one found (``b`` ascending, then ``r``) on ties.

The integrands are polynomials of degree at most ``b * r <= num_perm``, so Gauss-Legendre quadrature with
``num_perm // 2 + 1`` nodes integrates them exactly (datasketch uses adaptive quadrature: same values to
rounding).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _gauss_legendre(low: float, high: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(points)
    half = (high - low) / 2.0
    return low + half * (nodes + 1.0), weights * half


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative probabilities."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be in [0, 1]")
    if num_perm < 2:
        raise ValueError("num_perm must be at least 2")
    points = num_perm // 2 + 1
    below_x, below_w = _gauss_legendre(0.0, threshold, points)
    above_x, above_w = _gauss_legendre(threshold, 1.0, points)
    best, best_error = (0, 0), float("inf")
    for bands in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // bands + 1, dtype=float)[:, None]
        false_positive = (1.0 - (1.0 - below_x[None, :] ** rows) ** bands) @ below_w
        false_negative = ((1.0 - above_x[None, :] ** rows) ** bands) @ above_w
        error = false_positive * false_positive_weight + false_negative * false_negative_weight
        index = int(np.argmin(error))
        if error[index] < best_error:
            best, best_error = (bands, index + 1), float(error[index])
    return best
