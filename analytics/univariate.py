"""Univariate out-of-trend monitor: one control chart per parameter, prediction
limits that hold for a *new* row, and - on request - the Western Electric / Nelson
run rules over the sequence of batches (rows in batch order).

Why robust: the history a plant trains on always contains a few odd batches;
median and MAD (or Qn) ignore them, the mean and standard deviation do not.  Below
30 rows a robust spread is too noisy to hold the rate, and the exact normal
prediction limit (mean, sd, t_{n-1}) is used instead.

Why run rules only on request: they assume independent rows.  On a parameter's
batch-to-batch values they catch small sustained shifts; on raw autocorrelated
samples they fire on nearly every row.
"""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np

from .base import CalibrationWarning, conformal_threshold
from .column_charts import ColumnChartMonitor

#: Nelson (1984) rules as numbered by Nelson; 1-4 are the Western Electric-like
#: defaults.  Zones are fractions of the rule-1 limit L (with the classic L = 3
#: sigma: zone "beyond 2/3 L" = beyond 2 sigma, "beyond 1/3 L" = beyond 1 sigma).
RULES = {
    1: "one point beyond the control limit",
    2: "nine points in a row on the same side of the centre line",
    3: "six points in a row steadily increasing or decreasing",
    4: "fourteen points in a row alternating up and down",
    5: "two out of three points in a row beyond 2/3 of the limit, same side",
    6: "four out of five points in a row beyond 1/3 of the limit, same side",
}

RuleViolation = namedtuple("RuleViolation", "row column parameter rule description")


def _run_lengths(same_as_previous, active):
    """Length of the run ending at each row: grows while ``same_as_previous`` holds
    and restarts at 1 on an ``active`` row (0 on an inactive one)."""
    run = np.zeros(active.shape, dtype=np.int64)
    if active.shape[0] == 0:
        return run
    run[0] = active[0]
    for t in range(1, active.shape[0]):
        run[t] = np.where(same_as_previous[t], run[t - 1] + 1, active[t].astype(np.int64))
    return run


def _window_count(flags, width):
    """Number of flagged rows among the last ``width`` rows (fewer at the start)."""
    cumulative = np.cumsum(flags, axis=0)
    shifted = np.zeros_like(cumulative)
    shifted[width:] = cumulative[:-width]
    return cumulative - shifted


def nelson_rules(z, limit, rules=(1, 2, 3, 4)):
    """Which rule fires on which row, for standardised values ``z`` (n, p) taken
    in sequence.  A rule fires on the row that completes its pattern (what an
    online chart would flag at that moment), and on every later row that extends
    it.  Returns {rule: bool array (n, p)}.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    n, p = z.shape
    fired = {}
    side = np.sign(z)
    step = np.zeros_like(z)
    step[1:] = np.sign(np.diff(z, axis=0))
    for rule in rules:
        if rule == 1:
            fired[1] = np.abs(z) > limit
        elif rule == 2:
            same = np.zeros((n, p), dtype=bool)
            same[1:] = (side[1:] == side[:-1]) & (side[1:] != 0)
            fired[2] = _run_lengths(same, side != 0) >= 9
        elif rule == 3:
            # a run of k monotone steps spans k + 1 points
            same = np.zeros((n, p), dtype=bool)
            same[1:] = (step[1:] == step[:-1]) & (step[1:] != 0)
            fired[3] = _run_lengths(same, step != 0) >= 5
        elif rule == 4:
            alternating = np.zeros((n, p), dtype=bool)
            alternating[1:] = (step[1:] == -step[:-1]) & (step[1:] != 0)
            fired[4] = _run_lengths(alternating, step != 0) >= 13
        elif rule in (5, 6):
            zone, needed, width = (2 / 3, 2, 3) if rule == 5 else (1 / 3, 4, 5)
            high, low = z > zone * limit, z < -zone * limit
            fired[rule] = (high & (_window_count(high, width) >= needed)) | (
                low & (_window_count(low, width) >= needed)
            )
        else:
            raise ValueError(f"unknown rule {rule!r}; rules are numbered 1-6: {RULES}")
    return fired


class UnivariateMonitor(ColumnChartMonitor):
    """One control chart per parameter (column); optionally run rules.

    Parameters
    ----------
    alpha : float, default 0.01
        Target false-alarm rate of rule 1 per *row*, all parameters together
        (two-sided, family-wise over the columns; see ``analytics.limits``).
    rules : tuple of int, default (1,)
        Nelson rules to apply (see ``RULES``).  Rules 2-6 look at previous rows,
        so rows must be in batch order and independent: use them on a
        parameter's batch-to-batch values, not on raw time series.  Their own
        false-alarm rate comes on top of alpha (``calibrate`` accounts for it).
    scale : {"mad", "qn", "sd"}, default "mad"
        Spread: MAD * 1.4826, Rousseeuw-Croux Qn (both around the median), or the
        standard deviation (around the mean).  With fewer than 30 rows "sd" is
        always used: it gives the exact prediction limit for normal data.
    """

    def __init__(self, alpha=0.01, rules=(1,), scale="mad"):
        self.alpha = alpha
        self.rules = rules
        self.scale = scale

    def _fit(self, X, groups=None):
        unknown = set(self.rules) - set(RULES)
        if unknown or not len(self.rules):
            raise ValueError(f"rules must be a non-empty subset of {sorted(RULES)}; got {self.rules!r}")
        self._fit_columns(X, groups)

    def _z(self, X):
        # a column that never varied in the history is not monitored (limits.unvarying_columns)
        return self._standardised(X)

    def _pattern_and_level(self, X):
        """(largest |z| / L per row, whether a rule other than 1 fired on the row)."""
        z = self._z(X)
        level = np.max(np.abs(z), axis=1) / self.limit_ if 1 in self.rules else np.zeros(len(z))
        others = [r for r in self.rules if r != 1]
        pattern = np.zeros(len(z), dtype=bool)
        for flags in nelson_rules(z, self.limit_, others).values():
            pattern |= flags.any(axis=1)
        return level, pattern

    def _statistic(self, X):
        level, pattern = self._pattern_and_level(X)
        # A run-rule hit has no natural size; put it clearly beyond the threshold
        # so that predict, decision_function and score_samples agree.
        return np.where(pattern, np.maximum(level, 2.0 * self.threshold_), level)

    def rule_violations(self, X):
        """Which rule fired on which row and parameter, in row order."""
        X = self._check_X(X)
        z = self._z(X)
        fired = nelson_rules(z, self.limit_, [r for r in self.rules if r != 1])
        if 1 in self.rules:
            fired[1] = np.abs(z) > self.limit_ * self.threshold_
        names = getattr(self, "feature_names_in_", None)
        found = []
        for rule, flags in fired.items():
            for row, column in zip(*np.nonzero(flags)):
                parameter = str(names[column]) if names is not None else f"x{column}"
                found.append(RuleViolation(int(row), int(column), parameter, rule, RULES[rule]))
        return sorted(found, key=lambda v: (v.row, v.column, v.rule))

    def explain(self, X):
        """Signed distance from the centre in units of the rule-1 limit per
        parameter: |value| > threshold_ means rule 1 fired on it."""
        return self._z(self._check_X(X)) / self.limit_

    def calibrate(self, X_normal, groups=None, alpha=None):
        """Move the rule-1 limit so that the false-alarm rate of all enabled rules
        together, measured on separate normal data, is at most alpha.  Run-rule
        patterns are fixed; if they alone exceed alpha, rule 1 is set to the
        largest calibration value and a CalibrationWarning is raised."""
        alpha = self.alpha if alpha is None else alpha
        X = self._check_X(X_normal)
        if groups is None:
            level, pattern = self._pattern_and_level(X)
        else:
            groups = np.asarray(groups)
            if groups.shape[0] != X.shape[0]:
                raise ValueError(f"groups has {groups.shape[0]} entries but X has {X.shape[0]} rows")
            level, pattern = [], []
            for label in dict.fromkeys(groups.tolist()):
                lv, pt = self._pattern_and_level(X[groups == label])
                level.append(lv.max())
                pattern.append(pt.any())
            level, pattern = np.array(level), np.array(pattern)
        units = np.where(pattern, np.inf, level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            threshold = conformal_threshold(units, alpha)
        if not np.isfinite(threshold):
            warnings.warn(
                f"run rules {[r for r in self.rules if r != 1]} alone flag "
                f"{pattern.mean():.1%} of the normal data, more than alpha={alpha:g}",
                CalibrationWarning,
                stacklevel=2,
            )
            threshold = float(level[~pattern].max()) if (~pattern).any() else 1.0
        self.offset_ = -max(threshold, 1e-12)
        return self

    def limits(self):
        limit = self.limit_ * self.threshold_
        width = limit * self.scale_ * self.inflation_
        return {
            "centre": self.centre_.tolist(),
            "scale": self.scale_.tolist(),
            "lower": (self.centre_ - width).tolist(),
            "upper": (self.centre_ + width).tolist(),
            "method": self.method_,
            "rule1_z": limit,
            "rules": list(self.rules),
        }
