"""Measurement noise as plants see it: sensors whose errors are autocorrelated, not white.

A real probe's error wanders (membrane ageing, electronics drift, flow noise filtered by
the transmitter), so consecutive samples share most of their error. Independent noise
would make normal data look more regular than any plant's, and flatter the monitors.
"""

from __future__ import annotations

import numpy as np


def ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float, sd: float) -> np.ndarray:
    """AR(1) series along the LAST axis, stationary from the first sample, marginal sd ``sd``."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[..., 0] = e[..., 0] * sd
    innov = sd * np.sqrt(1.0 - phi * phi)
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + innov * e[..., t]
    return out


def sensor_error(rng: np.random.Generator, n: int, T: int, white: float, coloured: float, phi: float) -> np.ndarray:
    """(n, T) sensor error: a white part (quantisation, electrical noise) plus an AR(1) part (drift, fouling)."""
    return white * rng.standard_normal((n, T)) + ar1(rng, (n, T), phi, coloured)


def lognormal(rng: np.random.Generator, n: int, median: float, cv: float) -> np.ndarray:
    """Positive batch-to-batch parameters: median ``median``, coefficient of variation about ``cv``."""
    return median * np.exp(np.sqrt(np.log1p(cv * cv)) * rng.standard_normal(n))


def zero_order_hold(sample_times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Offline results on the historian grid: each row holds its last result (the first before it is taken).

    ``sample_times`` (n, K) in hours, ``values`` (n, K, V) -> (n, len(grid), V).
    """
    n, K, V = values.shape
    out = np.empty((n, grid.size, V))
    for i in range(n):
        idx = np.searchsorted(sample_times[i], grid, side="right") - 1
        out[i] = values[i, np.clip(idx, 0, K - 1)]
    return out
