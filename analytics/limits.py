"""Control limits from how a model scores data it was *not* fitted on.

Why: textbook limits (F for T², Jackson-Mudholkar for SPE, z for a Shewhart chart)
assume independent rows and a model that is not over-fitted.  Unfolded batches
(a few dozen batches, thousands of columns) over-fit badly - the training residuals
are far smaller than a new batch's - and autocorrelated rows make the training
spread too small for the future.  Both flood the reviewer with false alarms.  So
every monitor fits on part of its history, scores the held-out part, and sets its
limit at the (1 - alpha) quantile of those held-out statistics:

* folds are contiguous blocks of rows (or of groups, e.g. batches), so a held-out
  block of an autocorrelated series is scored the way the future will be: after
  the process has wandered;
* a 1 % limit from 60 held-out values is an extrapolation: a distribution is fitted
  to the held-out statistics (scaled chi-square by moments for quadratic forms such
  as T² and SPE) and its quantile used; with enough held-out values the conformal
  rank quantile is a floor under it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import f as f_dist
from scipy.stats import norm
from scipy.stats import t as t_dist

from .base import robust_scale

#: held-out folds by default (contiguous blocks; fewer rows -> leave one out)
N_SPLITS = 10


def cv_folds(n_rows, groups=None, n_splits=N_SPLITS):
    """Held-out index arrays, contiguous in row order (or in order of first
    appearance of the groups; a group is never split across folds)."""
    if groups is None:
        labels = np.arange(n_rows)
    else:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != n_rows:
            raise ValueError(f"groups must have one label per row ({n_rows}); got shape {groups.shape}")
        order: dict = {}
        try:  # 0, 1, ... in order of first appearance; any hashable labels (ids, names)
            labels = np.array([order.setdefault(g, len(order)) for g in groups.tolist()], dtype=np.int64)
        except TypeError as error:
            raise ValueError(f"groups must be one hashable label per row (e.g. batch ids): {error}") from None
    n_units = int(labels.max()) + 1 if n_rows else 0
    k = min(n_splits, n_units)
    if k < 2:
        raise ValueError("cross-validation needs at least two rows (or groups)")
    block = np.minimum((np.arange(n_units) * k) // n_units, k - 1)  # unit -> fold
    fold_of_row = block[labels]
    return [np.flatnonzero(fold_of_row == f) for f in range(k)]


def conformal_quantile(values, alpha):
    """k-th smallest value, k = ceil((1 - alpha)(n + 1)); None if n is too small."""
    values = np.sort(np.asarray(values, dtype=float).ravel())
    k = math.ceil((1.0 - alpha) * (values.size + 1))
    return float(values[k - 1]) if k <= values.size else None


def scaled_chi2_quantile(values, alpha):
    """Prediction limit for a new value of g * chi2(h) fitted by moments (Box 1954):
    h = 2 mean^2 / var.  Exact family for a quadratic form of normal variables (T²,
    SPE); a right-skewed two-parameter fit otherwise.  The scale is estimated from
    n values, so the limit is mean * F(h, n h; 1 - alpha) rather than the plug-in
    g chi2(h; 1 - alpha): if n values of g chi2(h) average to m, a new one divided
    by m is F(h, n h) - a few dozen held-out values widen the limit honestly."""
    values = np.asarray(values, dtype=float).ravel()
    mean, var = float(values.mean()), float(values.var(ddof=1)) if values.size > 1 else 0.0
    if mean <= 0:
        return 0.0
    if var <= 0:
        return float(values.max())
    h = 2 * mean**2 / var
    return float(mean * f_dist.ppf(1 - alpha, h, values.size * h))


def jackson_mudholkar_quantile(values, alpha):
    """Jackson & Mudholkar (1979) quantile with theta_i from the held-out cumulants
    (kappa_i = 2^(i-1) (i-1)! theta_i for a sum of weighted chi2(1) terms).  Uses a
    third moment, so it needs more held-out values than the chi-square fit; falls
    back to it when the skewness is not that of such a sum."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size < 3:
        return scaled_chi2_quantile(values, alpha)
    theta1 = values.mean()
    centred = values - theta1
    theta2 = np.mean(centred**2) / 2
    theta3 = np.mean(centred**3) / 8
    if theta1 <= 0 or theta2 <= 0 or theta3 <= 0:
        return scaled_chi2_quantile(values, alpha)
    h0 = 1 - 2 * theta1 * theta3 / (3 * theta2**2)
    if h0 <= 0.05:
        return scaled_chi2_quantile(values, alpha)
    c = norm.ppf(1 - alpha)
    inner = c * np.sqrt(2 * theta2 * h0**2) / theta1 + 1 + theta2 * h0 * (h0 - 1) / theta1**2
    if inner <= 0:
        return scaled_chi2_quantile(values, alpha)
    return float(theta1 * inner ** (1 / h0))


def log_normal_quantile(values, alpha):
    """Normal prediction limit on the log of a positive statistic: exp(mean +
    t_{n-1} sd sqrt(1 + 1/n)) of the logs.  Suits the isolation-forest score
    2^(-mean path length / c): the mean over many trees of a path length is close
    to normal, so the log of the score is too."""
    logs = np.log(np.maximum(np.asarray(values, dtype=float).ravel(), 1e-300))
    n = logs.size
    if n < 2:
        return float(np.exp(logs.max()))
    width = t_dist.ppf(1 - alpha, n - 1) * logs.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(np.exp(logs.mean() + width))


def heldout_limit(values, alpha, fit=scaled_chi2_quantile):
    """Limit on a non-negative held-out statistic for false-alarm rate alpha: the
    fitted distribution's quantile, never below the conformal rank quantile when
    there are enough held-out values for it (n >= 1/alpha - 1)."""
    limit = fit(values, alpha)
    floor = conformal_quantile(values, alpha)
    if floor is not None:
        limit = max(limit, floor)
    return float(limit)


def ledoit_wolf_shrinkage(Z):
    """Ledoit & Wolf (2004) shrinkage intensity rho of the covariance of the centred
    rows Z towards mu * I, computed through the smaller of the n x n Gram matrix
    and the p x p cross-product, so it stays cheap for p >> n and for n >> p."""
    n, p = Z.shape
    cross = Z @ Z.T if n <= p else Z.T @ Z  # the same Frobenius norm, smaller matrix
    row_norms2 = np.sum(Z**2, axis=1)
    trace = row_norms2.sum() / n  # trace of the (1/n) covariance
    mu = trace / p
    sum_sq_cov = np.sum(cross**2) / n**2  # ||S||_F^2
    beta = (np.sum(row_norms2**2) / n - sum_sq_cov) / (p * n)
    delta = (sum_sq_cov - 2 * mu * trace + p * mu**2) / p
    if delta <= 0:
        return 0.0, mu
    return float(min(max(beta, 0.0), delta) / delta), float(mu)


# -- per-column limits (univariate charts, durations) ------------------------------

#: below this many rows a robust spread costs more than it protects: its limits
#: (efficiency-scaled degrees of freedom) are 20-30 % wider than mean/sd's, so the
#: exact normal prediction limit with mean/sd is used
ROBUST_MIN_ROWS = 30
#: from this many rows the held-out folds check the spread of new rows
HELDOUT_MIN_ROWS = 20
#: effective degrees of freedom / (n - 1) of the spread: Qn's Gaussian efficiency
#: (0.82); for the MAD 0.55 - its asymptotic efficiency is 0.37, but with t(0.37 (n-1))
#: the rate measured on normal data was half of alpha, with 0.55 within 10 % of it
#: for 20-200 rows (tests/analytics/test_out_of_sample.py)
_EFFICIENCY = {"sd": 1.0, "mad": 0.55, "qn": 0.82}
#: E[min(Z^2, 9)] for a standard normal Z: the held-out variance, clipped so that
#: a few odd rows in the history do not widen the limits
_CLIPPED_Z2 = 0.99489


def centre_and_spread(X, method):
    """Column centre and spread: mean/sd, or median with MAD / Qn."""
    if method == "sd":
        sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
        return X.mean(axis=0), np.where(sd > 0, sd, 1e-12)
    return np.median(X, axis=0), robust_scale(X, method)


def prediction_factor(n_rows, alpha, n_columns, method):
    """Half-width of the two-sided prediction limit in units of the spread, for
    ``n_columns`` charts together at family-wise rate alpha (Sidak: each column
    gets 1 - (1 - alpha)^(1/p); exact for independent columns, conservative for
    correlated ones).  With mean/sd this is the exact normal prediction limit
    t_{n-1} * sqrt(1 + 1/n); for median with MAD/Qn the degrees of freedom are
    scaled by the estimator's efficiency and the median's variance is pi/(2n)."""
    per_column = 1.0 - (1.0 - alpha) ** (1.0 / n_columns)
    df = max(_EFFICIENCY[method] * (n_rows - 1), 1.0)
    centre_variance = 1.0 / n_rows if method == "sd" else np.pi / (2 * n_rows)
    return float(t_dist.ppf(1 - per_column / 2, df) * np.sqrt(1 + centre_variance))


def column_limits(X, alpha, scale, groups=None):
    """Centre, spread, per-column inflation and the limit (in spread units) of a
    family of per-column charts whose row statistic is max_j |z_j| / limit.

    With at least ``HELDOUT_MIN_ROWS`` rows the held-out rows of contiguous folds
    say how much wider the spread of *new* rows is than the fitted one (drift,
    autocorrelation): v_j = mean(min(z_j^2, 9)) / its value for independent
    normal rows; only the part of v_j beyond its own noise (1.64 standard errors,
    so independent rows are not widened by chance) inflates column j, and the
    limit is widened to the conformal quantile of the held-out row maxima when
    there are enough of them.  Returns (method, centre,
    spread, inflation, limit, held-out statistics or None)."""
    n, p = X.shape
    method = scale if n >= ROBUST_MIN_ROWS else "sd"
    centre, spread = centre_and_spread(X, method)
    limit = prediction_factor(n, alpha, p, method)
    inflation = np.ones(p)
    if n < HELDOUT_MIN_ROWS:
        return method, centre, spread, inflation, limit, None
    z = np.empty_like(X)
    factor = np.empty(n)
    for test in cv_folds(n, groups):
        train = np.setdiff1d(np.arange(n), test)
        c, s = centre_and_spread(X[train], method)
        m = train.size
        # E[z^2] of a new independent normal row against m fitted rows is
        # (1 + 1/m)(m - 1)/(m - 3): divide it out so that 1 means "as expected"
        z[test] = (X[test] - c) / (s * np.sqrt((1 + 1 / m) * (m - 1) / max(m - 3, 1)))
        factor[test] = prediction_factor(m, alpha, p, method) / np.sqrt((1 + 1 / m) * (m - 1) / max(m - 3, 1))
    variance_ratio = np.mean(np.minimum(z**2, 9.0), axis=0) / _CLIPPED_Z2
    inflation = np.sqrt(np.maximum(1.0, variance_ratio / (1 + 1.64 * np.sqrt(2 / n))))
    heldout = np.max(np.abs(z) / inflation, axis=1) / factor
    widen = max(1.0, heldout_limit(heldout, alpha, fit=lambda v, q: 0.0))
    return method, centre, spread, inflation, limit * widen, heldout / widen
