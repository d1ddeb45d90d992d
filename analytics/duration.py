"""Step-duration monitor: flags a manual step that took unusually long *or*
unusually short compared with the history of the same step.

Why log-normal: durations are positive and right-skewed (a step can take three
times as long, never minus one time as long), and a slow step "x2" and a rushed
step "x0.5" are the same distance from normal on the log scale.
"""

from __future__ import annotations

import numpy as np

from .column_charts import ColumnChartMonitor


class DurationMonitor(ColumnChartMonitor):
    """Log-normal prediction limits per step (one column per step).

    Parameters
    ----------
    alpha : float, default 0.01
        Two-sided false-alarm rate per row, all steps together (family-wise): the
        same limits as ``UnivariateMonitor`` on log durations.
    scale : {"mad", "qn", "sd"}, default "mad"
        Spread of the log durations; with fewer than 30 rows "sd" (exact normal
        prediction limit, t_{n-1} * sd * sqrt(1 + 1/n)) is always used.
    min_duration : float, default 1e-6
        A recorded duration of zero (a step closed at once) is treated as this
        value - extremely short, so it is flagged - instead of log(0).
    """

    def __init__(self, alpha=0.01, scale="mad", min_duration=1e-6):
        self.alpha = alpha
        self.scale = scale
        self.min_duration = min_duration

    def _log(self, X):
        if np.any(X < 0):
            raise ValueError(
                "Negative values in data passed to DurationMonitor: step durations must be zero or positive"
            )
        return np.log(np.maximum(X, self.min_duration))

    def _fit(self, X, groups=None):
        if not self.min_duration > 0:
            raise ValueError(f"min_duration must be > 0; got {self.min_duration!r}")
        self._fit_columns(self._log(X), groups)

    def _z(self, X):
        # a step whose duration never varied in the history is not monitored
        return self._standardised(self._log(X))

    def _statistic(self, X):
        return np.max(np.abs(self._z(X)), axis=1) / self.limit_

    def explain(self, X):
        """Signed log-distance per step in units of the limit: > threshold_ is too
        long, < -threshold_ too short."""
        return self._z(self._check_X(X)) / self.limit_

    def too_long(self, X):
        """Boolean (n_samples, n_steps): the step took longer than its upper limit."""
        return self.explain(X) > self.threshold_

    def too_short(self, X):
        """Boolean (n_samples, n_steps): the step was shorter than its lower limit."""
        return self.explain(X) < -self.threshold_

    def limits(self):
        width = self.limit_ * self.threshold_ * self.scale_ * self.inflation_
        return {
            "median": np.exp(self.centre_).tolist(),
            "lower": np.exp(self.centre_ - width).tolist(),
            "upper": np.exp(self.centre_ + width).tolist(),
            "log_scale": self.scale_.tolist(),
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags
