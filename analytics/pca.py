"""Multivariate out-of-trend monitor: PCA with Hotelling's T² and the squared
prediction error (SPE, Q), each with its own control limit.

Why two statistics: T² catches a batch that moves unusually far *along* the
correlations seen in history (everything high together); SPE catches a batch that
*breaks* those correlations (one sensor drifting away from the others), which
univariate charts and T² both miss.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.stats import chi2, norm
from scipy.stats import f as f_dist

from .base import Monitor


def t2_limit(n_samples, n_components, alpha):
    """Hotelling T² limit for a *new* observation when mean and covariance were
    estimated from n samples: a (n-1)(n+1) / (n (n-a)) * F(a, n-a; 1-alpha)."""
    n, a = n_samples, n_components
    return float(a * (n - 1) * (n + 1) / (n * (n - a)) * f_dist.ppf(1 - alpha, a, n - a))


def spe_limit(residual_eigenvalues, alpha, method="jackson-mudholkar"):
    """Upper limit of SPE = sum of squared residuals off the PCA model.

    Jackson & Mudholkar (1979): with theta_i = sum_j lambda_j^i over the discarded
    eigenvalues and h0 = 1 - 2 theta1 theta3 / (3 theta2^2),
        Q = theta1 [c sqrt(2 theta2 h0^2)/theta1 + 1 + theta2 h0 (h0-1)/theta1^2]^(1/h0).
    Box (1954): SPE ~ g chi2(h) with g = theta2/theta1, h = theta1^2/theta2.
    Returns 0.0 when nothing is left outside the model (all variance explained).
    """
    lam = np.asarray(residual_eigenvalues, dtype=float)
    lam = lam[lam > 0]
    if lam.size == 0:
        return 0.0
    theta1, theta2, theta3 = (np.sum(lam**i) for i in (1, 2, 3))
    h0 = 1 - 2 * theta1 * theta3 / (3 * theta2**2)
    if method == "box" or h0 <= 0:
        g, h = theta2 / theta1, theta1**2 / theta2
        return float(g * chi2.ppf(1 - alpha, h))
    if method != "jackson-mudholkar":
        raise ValueError(f"spe_method must be 'jackson-mudholkar' or 'box'; got {method!r}")
    c = norm.ppf(1 - alpha)
    inner = c * np.sqrt(2 * theta2 * h0**2) / theta1 + 1 + theta2 * h0 * (h0 - 1) / theta1**2
    return float(theta1 * inner ** (1 / h0))


class PCAMonitor(Monitor):
    """PCA on standardised variables with Hotelling T² and SPE limits.

    Parameters
    ----------
    alpha : float, default 0.01
        Target false-alarm rate of the monitor.  T² and SPE each get alpha/2
        (Bonferroni), so a sample breaking either limit has rate <= alpha.
    n_components : int or float, default 0.9
        Number of principal components, or (float in (0, 1)) the smallest number
        explaining at least that fraction of the variance.
    spe_method : {"jackson-mudholkar", "box"}, default "jackson-mudholkar"
        Approximation for the SPE limit.
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
    }

    def __init__(self, alpha=0.01, n_components=0.9, spe_method="jackson-mudholkar"):
        self.alpha = alpha
        self.n_components = n_components
        self.spe_method = spe_method

    def _fit(self, X):
        n, p = X.shape
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0, ddof=1)
        # a variable that never varied carries no correlation; leave it unscaled so
        # any change in it shows up in SPE
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        _, s, vt = np.linalg.svd(Z, full_matrices=False)
        eigenvalues = s**2 / (n - 1)
        max_components = max(1, min(n - 1, p))
        if isinstance(self.n_components, Integral) and not isinstance(self.n_components, bool):
            if not 1 <= self.n_components <= max_components:
                raise ValueError(
                    f"n_components={self.n_components} must be between 1 and {max_components} "
                    f"for {n} samples of {p} variables"
                )
            a = int(self.n_components)
        elif isinstance(self.n_components, Real) and 0 < self.n_components < 1:
            total = eigenvalues.sum()
            explained = np.cumsum(eigenvalues) / total if total > 0 else np.ones_like(eigenvalues)
            a = int(np.searchsorted(explained, self.n_components - 1e-12) + 1)
            a = min(max(a, 1), max_components)
        else:
            raise ValueError(f"n_components must be an int >= 1 or a fraction in (0, 1); got {self.n_components!r}")
        if self.spe_method not in ("jackson-mudholkar", "box"):
            raise ValueError(f"spe_method must be 'jackson-mudholkar' or 'box'; got {self.spe_method!r}")
        self.components_ = vt[:a].T  # loadings, (n_features, a)
        self.eigenvalues_ = np.maximum(eigenvalues[:a], 1e-12)
        self.residual_eigenvalues_ = eigenvalues[a:]
        self.n_samples_fit_ = int(n)
        self.t2_limit_ = t2_limit(n, a, self.alpha / 2)
        self.spe_limit_ = spe_limit(self.residual_eigenvalues_, self.alpha / 2, self.spe_method)

    @property
    def n_components_(self):
        return self.components_.shape[1]

    def _parts(self, X):
        Z = (X - self.mean_) / self.scale_
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

    def explain(self, X, statistic="auto"):
        """Per-variable contributions.

        ``statistic="t2"``: c_j = z_j * sum_a p_ja t_a / lambda_a (rows sum to T²;
        a contribution can be negative).  ``"spe"``: e_j^2 (rows sum to SPE).
        ``"auto"``: per sample, the statistic that is further beyond its limit,
        divided by that limit, so each row sums to the monitor statistic.
        """
        X = self._check_X(X)
        Z, scores, residual = self._parts(X)
        t2_contribution = Z * ((scores / self.eigenvalues_) @ self.components_.T)
        spe_contribution = residual**2
        if statistic == "t2":
            return t2_contribution
        if statistic == "spe":
            return spe_contribution
        if statistic != "auto":
            raise ValueError(f"statistic must be 't2', 'spe' or 'auto'; got {statistic!r}")
        t2_ratio, spe_ratio = self._ratios(X)
        use_spe = spe_ratio > t2_ratio
        out = t2_contribution / self.t2_limit_
        if self.spe_limit_ > 0:
            out[use_spe] = spe_contribution[use_spe] / self.spe_limit_
        return out

    def limits(self):
        return {
            "t2": self.t2_limit_ * self.threshold_,
            "spe": self.spe_limit_ * self.threshold_,
            "n_components": self.n_components_,
            "explained_variance": float(
                self.eigenvalues_.sum() / (self.eigenvalues_.sum() + self.residual_eigenvalues_.sum())
            ),
        }
