"""Multivariate out-of-trend monitor: PCA with Hotelling's T² and the squared
prediction error (SPE, Q), each with its own control limit.

Why two statistics: T² catches a batch that moves unusually far *along* the
correlations seen in history (everything high together); SPE catches a batch that
*breaks* those correlations (one sensor drifting away from the others), which
univariate charts and T² both miss.

Why the limits come from cross-validation (``analytics.limits``): with unfolded
batches (thousands of columns, a few dozen batches) the training residuals are far
smaller than a new batch's, and autocorrelated rows make the training spread too
small for the future; textbook limits then flag every new batch.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from .base import Monitor
from .limits import (
    cv_folds,
    heldout_limit,
    jackson_mudholkar_quantile,
    ledoit_wolf_shrinkage,
    scaled_chi2_quantile,
)

#: most components the cross-validation tries
MAX_COMPONENTS = 20
#: column groups left out in turn when choosing the number of components
COLUMN_GROUPS = 10
#: a component must lower the held-out prediction error by this fraction to be kept
MIN_GAIN = 0.005


def lagged(X, lags, groups=None):
    """Rows [x_t, x_{t-1}, ..., x_{t-lags}] (dynamic PCA, Ku et al. 1995).  Before
    the first row (of each group) the first row is repeated, so every row gets a
    verdict; lags never cross from one group (batch) into the next."""
    if lags == 0:
        return X
    starts = np.zeros(X.shape[0], dtype=bool)
    if X.shape[0]:
        starts[0] = True
    if groups is not None:
        starts[1:] |= groups[1:] != groups[:-1]
    index = np.arange(X.shape[0])
    start_of_row = np.maximum.accumulate(np.where(starts, index, 0))
    parts = [X[np.maximum(index - k, start_of_row)] for k in range(lags + 1)]
    return np.hstack(parts)


class _Fit:
    """Mean, scale, loadings and eigenvalues of the standardised rows X."""

    def __init__(self, X, n_keep):
        n, p = X.shape
        self.mean = X.mean(axis=0)
        sd = X.std(axis=0, ddof=1) if n > 1 else np.zeros(p)
        # a variable that never varied carries no correlation; leave it unscaled so
        # any change in it shows up in SPE
        self.scale = np.where(sd > 0, sd, 1.0)
        Z = (X - self.mean) / self.scale
        # eigen-decomposition of the smaller of Z Z' (n x n) and Z'Z (p x p): cost
        # n p min(n, p), a few milliseconds for 60 x 4,000 (an SVD of Z takes ~100x longer)
        if n <= p:
            w, u = np.linalg.eigh(Z @ Z.T)
            w, u = np.maximum(w[::-1], 0.0), u[:, ::-1]
            rank = int(np.sum(w > w[0] * 1e-12)) if w[0] > 0 else 0
            keep = min(n_keep, rank)
            loadings = Z.T @ (u[:, :keep] / np.sqrt(w[:keep]))
        else:
            w, v = np.linalg.eigh(Z.T @ Z)
            w, v = np.maximum(w[::-1], 0.0), v[:, ::-1]
            loadings = v[:, :n_keep]
        self.loadings = loadings
        self.eigenvalues = w / max(n - 1, 1)
        self.rho, self.mu = ledoit_wolf_shrinkage(Z)

    def shrunk(self, a):
        """Eigenvalues used in T²: shrunk towards their mean (Ledoit-Wolf), so a
        tiny, noisy eigen-direction cannot dominate T² when p >> n."""
        return np.maximum((1 - self.rho) * self.eigenvalues[:a] + self.rho * self.mu, 1e-12)

    def t2_spe(self, X, a):
        Z = (X - self.mean) / self.scale
        T = Z @ self.loadings[:, :a]
        spe = np.maximum(np.sum(Z**2, axis=1) - np.sum(T**2, axis=1), 0.0)
        return np.sum(T**2 / self.shrunk(a), axis=1), spe


def heldout_press(X, folds, a_max):
    """Element-wise k-fold cross-validation (Bro et al. 2008): for each held-out row
    and each group of columns, the scores are estimated from the *other* columns
    and used to predict the group.  Unlike the plain held-out reconstruction error
    this does not keep falling as components are added, so it has a minimum.
    Returns the prediction error for 1..a_max components."""
    p = X.shape[1]
    column_groups = np.array_split(np.random.default_rng(0).permutation(p), min(COLUMN_GROUPS, p))
    press = np.zeros(a_max)
    for test in folds:
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        fit = _Fit(X[train], a_max)
        Z = (X[test] - fit.mean) / fit.scale
        P = fit.loadings
        T = Z @ P
        for g in column_groups:
            Pg, Zg = P[g], Z[:, g]
            M = Pg.T @ Pg  # P_-g' P_-g = I - Pg' Pg (P has orthonormal columns)
            B = T - Zg @ Pg  # P_-g' z_-g
            for a in range(1, a_max + 1):
                try:
                    scores = np.linalg.solve(np.eye(a) - M[:a, :a], B[:, :a].T)
                except np.linalg.LinAlgError:  # the group carries a whole component
                    scores = np.linalg.lstsq(np.eye(a) - M[:a, :a], B[:, :a].T, rcond=None)[0]
                press[a - 1] += np.sum((Zg - (Pg[:, :a] @ scores).T) ** 2)
    return press


class PCAMonitor(Monitor):
    """PCA on standardised variables with Hotelling T² and SPE limits set on
    held-out (cross-validated) statistics.

    Parameters
    ----------
    alpha : float, default 0.01
        Target false-alarm rate per row.  T² and SPE each get alpha/2 (Bonferroni);
        the combined held-out statistic is then checked against the conformal
        rank quantile at alpha when there are enough rows.
    n_components : "cv", int or float, default "cv"
        "cv": the number (at most 20) minimising the element-wise cross-validated
        prediction error; an int; or (float in (0, 1)) the smallest number
        explaining at least that fraction of the variance.
    lags : int, default 0
        Dynamic PCA: each row is augmented with the ``lags`` previous rows, so the
        model sees the process dynamics (autocorrelation, delays).
    spe_method : {"box", "jackson-mudholkar"}, default "box"
        Distribution fitted to the held-out SPE values: g chi2(h) by two moments
        (Box), or Jackson-Mudholkar with three moments.
    """

    _state_attributes = {
        "mean_": np.float64,
        "scale_": np.float64,
        "components_": np.float64,
        "eigenvalues_": np.float64,
        "residual_eigenvalues_": np.float64,
        "n_samples_fit_": None,
        "t2_limit_": None,
        "spe_limit_": None,
        "explained_": None,
    }

    def _rows_needed(self):
        """A 1 - alpha/2 quantile extrapolated from n held-out values holds its rate
        on average over histories only from about 0.3/alpha rows (measured in
        tests/analytics/test_out_of_sample.py): 30 rows at 1 %, 20 at 5 %."""
        return max(20, int(np.ceil(0.3 / self.alpha)))

    def __init__(self, alpha=0.01, n_components="cv", lags=0, spe_method="box"):
        self.alpha = alpha
        self.n_components = n_components
        self.lags = lags
        self.spe_method = spe_method

    def _check_params(self):
        if self.spe_method not in ("jackson-mudholkar", "box"):
            raise ValueError(f"spe_method must be 'jackson-mudholkar' or 'box'; got {self.spe_method!r}")
        if isinstance(self.lags, bool) or not isinstance(self.lags, Integral) or not 0 <= self.lags <= 50:
            raise ValueError(f"lags must be an int between 0 and 50; got {self.lags!r}")

    def _choose_components(self, X, folds, fit):
        n, p = X.shape
        fold_rows = n - max(len(f) for f in folds)
        limit = max(1, min(fold_rows - 2, p - int(np.ceil(p / min(COLUMN_GROUPS, p))), MAX_COMPONENTS))
        nc = self.n_components
        if isinstance(nc, str) and nc == "cv":
            if p == 1:
                return 1
            press = heldout_press(X, folds, limit)
            return int(np.flatnonzero(press <= press.min() * (1 + MIN_GAIN))[0] + 1)
        max_components = max(1, min(fold_rows - 1, p))
        if isinstance(nc, Integral) and not isinstance(nc, bool):
            if not 1 <= nc <= max_components:
                raise ValueError(
                    f"n_components={nc} must be between 1 and {max_components} for {n} samples of {p} "
                    "variables (each cross-validation fold is fitted on fewer rows)"
                )
            return int(nc)
        if isinstance(nc, Real) and not isinstance(nc, bool) and 0 < nc < 1:
            total = fit.eigenvalues.sum()
            explained = np.cumsum(fit.eigenvalues) / total if total > 0 else np.ones_like(fit.eigenvalues)
            return int(min(max(np.searchsorted(explained, nc - 1e-12) + 1, 1), max_components))
        raise ValueError(f"n_components must be 'cv', an int >= 1 or a fraction in (0, 1); got {nc!r}")

    def _fit(self, X, groups=None):
        self._check_params()
        X = lagged(X, self.lags, groups)
        n = X.shape[0]
        folds = cv_folds(n, groups)
        fit = _Fit(X, min(n, X.shape[1]))
        a = self._choose_components(X, folds, fit)
        t2, spe = np.empty(n), np.empty(n)
        for test in folds:
            fold = _Fit(X[np.setdiff1d(np.arange(n), test)], a)
            t2[test], spe[test] = fold.t2_spe(X[test], a)
        spe_fit = scaled_chi2_quantile if self.spe_method == "box" else jackson_mudholkar_quantile
        t2_limit = heldout_limit(t2, self.alpha / 2)
        spe_limit = heldout_limit(spe, self.alpha / 2, spe_fit)
        t2_limit = t2_limit if t2_limit > 0 else 1.0
        ratio = np.maximum(t2 / t2_limit, spe / spe_limit if spe_limit > 0 else 0.0)
        # the two limits at alpha/2 each; widen both if the held-out rows say that
        # "either beyond its limit" happens more often than alpha
        widen = max(1.0, heldout_limit(ratio, self.alpha, fit=lambda v, q: 0.0))
        self.mean_, self.scale_ = fit.mean, fit.scale
        self.components_ = fit.loadings[:, :a]
        self.eigenvalues_ = fit.shrunk(a)
        self.residual_eigenvalues_ = fit.eigenvalues[a:]
        self.n_samples_fit_ = int(n)
        total = fit.eigenvalues.sum()
        self.explained_ = float(fit.eigenvalues[:a].sum() / total) if total > 0 else 1.0
        self.t2_limit_ = float(t2_limit * widen)
        self.spe_limit_ = float(spe_limit * widen)
        self.cv_statistic_ = ratio / widen

    def _state_default(self, name, state):
        if name == "explained_":  # format 1: eigenvalues were not shrunk
            kept, rest = np.sum(state["eigenvalues_"]), np.sum(state["residual_eigenvalues_"])
            return float(kept / (kept + rest)) if kept + rest > 0 else 1.0
        return super()._state_default(name, state)

    @property
    def n_components_(self):
        return self.components_.shape[1]

    def _parts(self, X):
        Z = (lagged(X, self.lags) - self.mean_) / self.scale_
        scores = Z @ self.components_
        residual = Z - scores @ self.components_.T
        return Z, scores, residual

    def _t2_spe(self, X):
        _, scores, residual = self._parts(X)
        return np.sum(scores**2 / self.eigenvalues_, axis=1), np.sum(residual**2, axis=1)

    def t2(self, X):
        """Hotelling T² of each sample (compare with ``t2_limit_``)."""
        return self._t2_spe(self._check_X(X))[0]

    def spe(self, X):
        """Squared prediction error of each sample (compare with ``spe_limit_``)."""
        return self._t2_spe(self._check_X(X))[1]

    def _ratios(self, X):
        t2, spe = self._t2_spe(X)
        t2_ratio = t2 / self.t2_limit_
        if self.spe_limit_ > 0:
            spe_ratio = spe / self.spe_limit_
        else:  # no residual space in training: SPE is not monitored
            spe_ratio = np.zeros_like(spe)
        return t2_ratio, spe_ratio

    def _statistic(self, X):
        return np.maximum(*self._ratios(X))

    def _per_variable(self, contribution):
        """Contributions of the lagged copies summed onto their variable."""
        if self.lags == 0:
            return contribution
        n = contribution.shape[0]
        return contribution.reshape(n, self.lags + 1, -1).sum(axis=1)

    def explain(self, X, statistic="auto"):
        """Per-variable contributions.

        ``statistic="t2"``: c_j = z_j * sum_a p_ja t_a / lambda_a (rows sum to T²;
        a contribution can be negative).  ``"spe"``: e_j^2 (rows sum to SPE).
        ``"auto"``: per sample, the statistic that is further beyond its limit,
        divided by that limit, so each row sums to the monitor statistic.  With
        ``lags`` the lagged copies of a variable are added onto it.
        """
        X = self._check_X(X)
        Z, scores, residual = self._parts(X)
        t2_contribution = Z * ((scores / self.eigenvalues_) @ self.components_.T)
        spe_contribution = residual**2
        if statistic == "t2":
            return self._per_variable(t2_contribution)
        if statistic == "spe":
            return self._per_variable(spe_contribution)
        if statistic != "auto":
            raise ValueError(f"statistic must be 't2', 'spe' or 'auto'; got {statistic!r}")
        t2_ratio, spe_ratio = self._ratios(X)
        use_spe = spe_ratio > t2_ratio
        out = t2_contribution / self.t2_limit_
        if self.spe_limit_ > 0:
            out[use_spe] = spe_contribution[use_spe] / self.spe_limit_
        return self._per_variable(out)

    def limits(self):
        return {
            "t2": self.t2_limit_ * self.threshold_,
            "spe": self.spe_limit_ * self.threshold_,
            "n_components": self.n_components_,
            "lags": self.lags,
            "explained_variance": self.explained_,
        }
