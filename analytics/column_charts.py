"""What the univariate and the duration monitors share: one chart per column with the
family-wise prediction limits of ``analytics.limits.column_limits`` (held-out
inflation, the tail of the held-out row maxima, columns that never varied left out),
and the state those limits leave in a model card.

One home so that the two monitors cannot drift apart in how they set or store limits;
each keeps only what is its own (run rules; the log scale of durations)."""

from __future__ import annotations

import numpy as np

from .base import Monitor, NotEnoughHistory
from .limits import column_limits


class ColumnChartMonitor(Monitor):
    """Base of ``UnivariateMonitor`` and ``DurationMonitor`` (not used on its own)."""

    _state_attributes = {
        "centre_": np.float64,
        "scale_": np.float64,
        "limit_": None,
        "inflation_": np.float64,
        "method_": None,
        "monitored_": np.bool_,
    }

    def _fit_columns(self, X, groups):
        """Set centre, spread, inflation and limit from the (already transformed) rows;
        a history in which no column ever varied has no spread to set a limit from."""
        if self.scale not in ("mad", "qn", "sd"):
            raise ValueError(f"scale must be 'mad', 'qn' or 'sd'; got {self.scale!r}")
        fitted = column_limits(X, self.alpha, self.scale, groups)
        self.method_, self.centre_, self.scale_, self.inflation_, self.limit_, self.cv_statistic_, monitored = fitted
        if not monitored.any():
            raise NotEnoughHistory(f"the history of {X.shape[0]} rows never varied: no spread to set a limit from")
        self.monitored_ = monitored

    def _state_default(self, name, state):
        if name == "inflation_":  # format 1: textbook limits, no held-out inflation
            return np.ones(len(state["centre_"]))
        if name == "method_":
            return self.scale
        if name == "monitored_":  # before unvarying columns were left out
            return np.ones(len(state["centre_"]), dtype=bool)
        return super()._state_default(name, state)

    def _standardised(self, X):
        """z per column; a column that never varied in the history is not charted (0)."""
        return np.where(self.monitored_, (X - self.centre_) / (self.scale_ * self.inflation_), 0.0)
