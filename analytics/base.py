"""What every out-of-trend monitor shares: the scikit-learn outlier API, false-alarm
calibration on normal batches, and JSON-safe state for the model store.

Every monitor computes a non-negative *statistic* per sample, expressed in units of
its own control limit (1.0 = on the limit).  ``score_samples`` is minus that
statistic (higher = more normal, the scikit-learn convention), and ``offset_`` is
the threshold on that scale: ``decision_function = score_samples - offset_`` is
negative exactly when a sample is out of trend.  Right after ``fit`` the threshold
is the limit set on held-out data for the false-alarm rate ``alpha`` on *new*
rows (``offset_ == -1``; see ``analytics.limits``);
``calibrate`` moves it so that the false-alarm rate measured on separate normal
data is at most ``alpha`` - that is how methods are compared at equal false-alarm
rate.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

#: Version of the JSON layout written by ``to_dict``; bump when it changes.
#: 2: limits from held-out statistics (new fitted attributes); format 1 still loads.
STATE_FORMAT = 2
READABLE_FORMATS = (1, 2)


class CalibrationWarning(UserWarning):
    """The requested false-alarm rate cannot be reached with the data given."""


class NotEnoughHistory(ValueError):  # noqa: N818 - the name says what QA sees
    """The monitor cannot hold its false-alarm rate with the rows given; the
    message says how many are needed.  A ValueError, so callers that already
    catch bad input keep working."""


def conformal_threshold(unit_statistics, alpha):
    """The threshold on a statistic so that a *new* normal unit exceeds it with
    probability at most ``alpha``.

    With n calibration values, the k-th smallest with k = ceil((1 - alpha)(n + 1))
    gives an expected false-alarm rate (n + 1 - k)/(n + 1) <= alpha on new data
    (split-conformal rank argument, exchangeable data).  If n is too small for
    alpha (k > n), the largest value is used and a CalibrationWarning says so.
    """
    values = np.sort(np.asarray(unit_statistics, dtype=float).ravel())
    n = values.size
    if n == 0:
        raise ValueError("calibration needs at least one normal sample")
    k = math.ceil((1.0 - alpha) * (n + 1))
    if k > n:
        warnings.warn(
            f"{n} normal units are too few to guarantee a false-alarm rate of "
            f"{alpha:g}; at least {math.ceil(1 / alpha) - 1} are needed. "
            "Using the largest calibration value.",
            CalibrationWarning,
            stacklevel=3,
        )
        k = n
    return float(values[k - 1])


def group_max(statistic, groups):
    """Largest statistic within each group (e.g. each batch), in order of first
    appearance.  A batch is a false alarm when any of its samples is flagged."""
    groups = np.asarray(groups)
    if groups.shape[0] != statistic.shape[0]:
        raise ValueError(f"groups has {groups.shape[0]} entries but X has {statistic.shape[0]} rows")
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    out = np.full(first.size, -np.inf)
    np.maximum.at(out, inverse, statistic)
    return out[np.argsort(first)]


def _json_value(value):
    """Numbers, strings, bools, None and (nested) lists only - no numpy, no NaN."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (Real, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"cannot store a non-finite number ({value}) in a model")
        return value
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a model (JSON only)")


class Monitor(OutlierMixin, BaseEstimator):
    """Base class of the out-of-trend monitors.

    Subclasses implement ``_fit(X, groups)`` (X validated, float64; groups None or
    one label per row) and ``_statistic(X)``
    (per-sample statistic in units of the control limit) and list the fitted
    attributes to store in ``_state_attributes``.
    """

    #: fitted attributes (name -> numpy dtype, or None for plain numbers) that
    #: ``to_dict`` stores and ``from_dict`` restores
    _state_attributes: dict = {}
    _min_samples = 2

    # -- fitting -------------------------------------------------------------
    def _rows_needed(self):
        """Fewest rows with which the monitor still holds its false-alarm rate."""
        return self._min_samples

    def _check_alpha(self):
        if not isinstance(self.alpha, Real) or not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha is the target false-alarm rate and must be in (0, 0.5); got {self.alpha!r}")

    def _validate_fit_input(self, X):
        X = validate_data(self, X, reset=True, dtype=np.float64)
        needed = self._rows_needed()
        if X.shape[0] < needed:
            raise NotEnoughHistory(
                f"{type(self).__name__} needs at least {needed} samples "
                f"of history to hold its false-alarm rate; got {X.shape[0]} sample(s)"
            )
        return X

    def fit(self, X, y=None, groups=None):
        """Learn centre, spread and control limits from normal history X
        (n_samples, n_features), rows in time order.  y is ignored.

        The limits come from held-out statistics (see ``analytics.limits``): the
        rows are split into contiguous folds - or, with ``groups`` (one label per
        row, e.g. the batch), into folds of whole groups - and each fold is scored
        by a model fitted on the others.  ``cv_statistic_`` keeps those held-out
        statistics (in units of the final limit) for evaluation reports."""
        self._check_alpha()
        X = self._validate_fit_input(X)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.ndim != 1 or groups.shape[0] != X.shape[0]:
                raise ValueError(f"groups must have one label per row of X ({X.shape[0]}); got shape {groups.shape}")
        self._fit(X, groups)
        self.offset_ = -1.0
        return self

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    # -- scoring -------------------------------------------------------------
    def statistic(self, X):
        """Per-sample monitoring statistic in units of the fitted limit."""
        return self._statistic(self._check_X(X))

    def score_samples(self, X):
        """Minus the statistic: higher is more normal (scikit-learn convention)."""
        return -self.statistic(X)

    def decision_function(self, X):
        """Margin to the threshold: negative means out of trend."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for a normal sample, -1 for an out-of-trend one."""
        decision = self.decision_function(X)
        return np.where(decision >= 0, 1, -1)

    def explain(self, X):
        """Per-variable contributions, shape (n_samples, n_features)."""
        raise NotImplementedError

    # -- threshold -----------------------------------------------------------
    def calibrate(self, X_normal, groups=None, alpha=None):
        """Re-set the threshold so that the false-alarm rate on separate normal
        data is at most ``alpha`` (default: the monitor's own alpha).

        ``groups`` (one label per row, e.g. batch id) makes the rate per group:
        a group counts as one false alarm if any of its rows is flagged.
        """
        alpha = self.alpha if alpha is None else alpha
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        statistic = self.statistic(X_normal)
        units = statistic if groups is None else group_max(statistic, groups)
        self.offset_ = -conformal_threshold(units, alpha)
        return self

    @property
    def threshold_(self):
        """The statistic above which a sample is out of trend (1.0 = theory)."""
        check_is_fitted(self)
        return -self.offset_

    def limits(self):
        """Control limits in the user's units, for the model card."""
        return {"threshold": self.threshold_}

    # -- storage -------------------------------------------------------------
    def to_dict(self):
        """JSON-safe state (numbers, strings and lists): no pickle needed."""
        check_is_fitted(self)
        state = {"n_features_in_": int(self.n_features_in_), "offset_": self.offset_}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        for name in self._state_attributes:
            state[name] = getattr(self, name)
        return {
            "kind": type(self).__name__,
            "format": STATE_FORMAT,
            "params": _json_value(self._stored_params()),
            "state": _json_value(state),
        }

    def _stored_params(self):
        return self.get_params()

    @classmethod
    def from_dict(cls, data):
        """Rebuild a fitted monitor from ``to_dict`` output."""
        if data.get("kind") != cls.__name__:
            raise ValueError(f"this is a {data.get('kind')!r} model, not a {cls.__name__}")
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(f"unknown model format {data.get('format')!r}")
        monitor = cls(**data["params"])
        state = dict(data["state"])
        monitor.n_features_in_ = int(state.pop("n_features_in_"))
        monitor.offset_ = float(state.pop("offset_"))
        if "feature_names_in_" in state:
            monitor.feature_names_in_ = np.asarray(state.pop("feature_names_in_"), dtype=object)
        for name, dtype in cls._state_attributes.items():
            value = state[name] if name in state else monitor._state_default(name, state)
            setattr(monitor, name, value if dtype is None else np.asarray(value, dtype=dtype))
        monitor._restore(state)
        return monitor

    def _restore(self, state):
        """Hook for monitors whose state is not plain arrays."""

    def _state_default(self, name, state):
        """Value of an attribute that an older state format did not store."""
        raise ValueError(f"stored model lacks {name!r}")


def robust_scale(X, method="mad"):
    """Robust standard deviation per column: MAD * 1.4826 or Rousseeuw-Croux Qn.

    Falls back to the sample standard deviation when the robust scale is zero
    (e.g. more than half the history has the same value) and to 1e-12 for a column
    that never varied, so that any change in it is out of trend.
    """
    X = check_array(X, dtype=np.float64)
    if method == "mad":
        scale = 1.4826 * np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    elif method == "qn":
        scale = np.array([qn_scale(X[:, j]) for j in range(X.shape[1])])
    else:
        raise ValueError(f"scale must be 'mad' or 'qn'; got {method!r}")
    fallback = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    scale = np.where(scale > 0, scale, fallback)
    return np.where(scale > 0, scale, 1e-12)


_QN_SMALL = {2: 0.399, 3: 0.994, 4: 0.512, 5: 0.844, 6: 0.611, 7: 0.857, 8: 0.669, 9: 0.872}


def qn_scale(x):
    """Rousseeuw & Croux (1993) Qn: 2.2219 * the k-th order statistic of the
    pairwise distances, k = C(h, 2), h = n // 2 + 1, with the finite-sample
    correction.  50 % breakdown like the MAD but 82 % Gaussian efficiency (MAD:
    37 %), and it does not assume symmetry.  O(n^2) memory: fine for histories of
    a few thousand batches."""
    x = np.asarray(x, dtype=float).ravel()
    n = x.size
    if n < 2:
        return 0.0
    diffs = np.abs(x[:, None] - x[None, :])[np.triu_indices(n, 1)]
    h = n // 2 + 1
    k = h * (h - 1) // 2
    value = np.partition(diffs, k - 1)[k - 1]
    if n <= 9:
        correction = _QN_SMALL[n]
    elif n % 2:
        correction = n / (n + 1.4)
    else:
        correction = n / (n + 3.8)
    return float(2.2219 * correction * value)
