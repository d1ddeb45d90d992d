"""Online detectors designed for the evaluation (on PenSim only, then run unchanged
on the other processes).

``OnlineMPCA`` - batch processes.  Batch-wise unfolded PCA (Nomikos & MacGregor
1994) learns how a normal batch's deviations from the mean trajectory evolve over
the whole batch: a batch that runs a little high from the start and stays high is
normal; a step or a bend in the middle is not.  Online the rest of the batch is not
known yet, so the scores are estimated from the partial trajectory (projection to
the model plane, with the normal scores' spread as prior so early estimates shrink
to zero), and each new sample is compared with what the model predicted for it from
the samples before.  Statistics: T² of the estimated scores, and SPE of the
EWMA-filtered one-step prediction errors.  Both change in spread as the batch
advances, so each is divided by its typical value at that sample time, measured on
fit batches the model did not see (K-fold over the fit batches, contiguous folds).

``DynamicResiduals`` - continuous processes.  Autocorrelated, cross-correlated
samples: a ridge vector-autoregression on the standardised values gives one-step
prediction errors that are close to independent; their EWMA shows a persistent
shift.  Together with the EWMA of the standardised level (Mahalanobis distance),
each divided by its typical value on held-out fit windows.
"""

from __future__ import annotations

import numpy as np

from .features import LevelReference, TrajectoryReference, ewma, on_run_times, with_lags
from .methods import Method


def _smooth(values, width):
    """Moving average along axis 0 (edges padded) - for per-time scales."""
    if width <= 1:
        return values
    kernel = np.ones(width) / width
    padded = np.pad(values, ((width // 2, width // 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(values.shape[1])], axis=1)[
        : len(values)
    ]


def _folds(n, k):
    """Contiguous folds of range(n) (time order kept)."""
    return [f for f in np.array_split(np.arange(n), min(k, n)) if f.size]


class OnlineMPCA(Method):
    def __init__(
        self, name="Online MPCA (partial trajectory)", n_components=0.8, smoothing=0.1, folds=5, smooth=9, landmark=None
    ):
        self.name, self.n_components, self.smoothing, self.folds, self.smooth = (
            name,
            n_components,
            smoothing,
            folds,
            smooth,
        )
        self.landmark = landmark

    def _model(self, Z):
        B, T, V = Z.shape
        U = Z.reshape(B, T * V)
        centre = U.mean(axis=0)
        _, s, vt = np.linalg.svd(U - centre, full_matrices=False)
        eig = s**2 / (B - 1)
        a = self.n_components
        if a < 1:  # the fewest components explaining that fraction of the variance
            a = int(np.searchsorted(np.cumsum(eig) / eig.sum(), a) + 1)
        a = max(1, min(int(a), B - 2))
        self.components_ = a
        sigma2 = max(eig[a:].sum() / (T * V), 1e-9)
        return {"centre": centre.reshape(T, V), "P": vt[:a].T.reshape(T, V, a), "eig": eig[:a], "sigma2": sigma2}

    def _raw(self, m, Z):
        """(B, T, 2): T² of the scores and SPE of the smoothed prediction errors,
        each from the samples before (scores) / up to (errors) that time."""
        P, eig, sigma2 = m["P"], m["eig"], m["sigma2"]
        T, a = P.shape[0], P.shape[2]
        D = Z[:, :T] - m["centre"][: Z.shape[1]]
        T = D.shape[1]
        P = P[:T]
        gram = np.einsum("tva,tvb->tab", P, P).cumsum(axis=0)
        proj = np.einsum("btv,tva->bta", D, P).cumsum(axis=1)
        gram = np.concatenate([np.zeros((1, a, a)), gram[:-1]])  # samples before t
        proj = np.concatenate([np.zeros((D.shape[0], 1, a)), proj[:, :-1]], axis=1)
        precision = gram / sigma2 + np.diag(1.0 / eig)[None]
        scores = np.linalg.solve(precision[None], proj[..., None] / sigma2)[..., 0]
        t2 = (scores**2 / eig).sum(axis=-1)
        errors = D - np.einsum("bta,tva->btv", scores, P)
        spe = (ewma(errors, self.smoothing) ** 2).sum(axis=-1)
        return np.stack([t2, spe], axis=-1)

    def fit(self, runs):
        self.reference = TrajectoryReference(runs, landmark=self.landmark)
        Z = np.stack([self.reference.standardise(r)[0] for r in runs])
        held_out = []
        for fold in _folds(len(Z), self.folds):
            rest = np.setdiff1d(np.arange(len(Z)), fold)
            held_out.append(self._raw(self._model(Z[rest]), Z[fold]))
        typical = np.concatenate(held_out).mean(axis=0)  # (T, 2)
        typical = _smooth(typical, self.smooth)
        self.scale = np.maximum(typical, 1e-3 * typical.mean(axis=0) + 1e-12)
        self.model = self._model(Z)
        return self

    def statistic(self, run):
        z, known = self.reference.standardise(run)
        raw = self._raw(self.model, z[None])[0]
        return on_run_times(run, known, (raw / self.scale[: len(raw)]).max(axis=1))


class DynamicResiduals(Method):
    def __init__(self, name="Dynamic residuals (VAR + EWMA) and level", order=2, smoothing=0.2, ridge=1e-2, folds=5):
        self.name, self.order, self.smoothing, self.ridge, self.folds = name, order, smoothing, ridge, folds

    def _design(self, z):
        return with_lags(z, self.order)[:, z.shape[1] :]

    def _fit_parts(self, Zs):
        X = np.vstack([self._design(z) for z in Zs])
        Y = np.vstack(Zs)
        X1 = np.hstack([X, np.ones((len(X), 1))])
        W = np.linalg.solve(X1.T @ X1 + self.ridge * len(X) * np.eye(X1.shape[1]), X1.T @ Y)
        res = np.vstack([ewma(self._errors(W, z), self.smoothing) for z in Zs])
        lev = np.vstack([ewma(z, self.smoothing) for z in Zs])
        inv = [np.linalg.pinv(np.cov(p, rowvar=False) + 1e-6 * np.eye(p.shape[1])) for p in (res, lev)]
        return {"W": W, "inv": inv}

    def _errors(self, W, z):
        X1 = np.hstack([self._design(z), np.ones((len(z), 1))])
        return z - X1 @ W

    def _raw(self, m, z):
        res = ewma(self._errors(m["W"], z), self.smoothing)
        lev = ewma(z, self.smoothing)
        return np.stack([np.einsum("ti,ij,tj->t", p, inv, p) for p, inv in zip((res, lev), m["inv"])], axis=1)

    def fit(self, runs):
        self.reference = LevelReference(runs)
        Zs = [self.reference.standardise(r)[0] for r in runs]
        held_out = []
        for fold in _folds(len(Zs), self.folds):
            m = self._fit_parts([Zs[i] for i in range(len(Zs)) if i not in set(fold.tolist())])
            held_out += [self._raw(m, Zs[i]) for i in fold]
        self.scale = np.maximum(np.vstack(held_out).mean(axis=0), 1e-12)
        self.model = self._fit_parts(Zs)
        return self

    def statistic(self, run):
        z, known = self.reference.standardise(run)
        return on_run_times(run, known, (self._raw(self.model, z) / self.scale).max(axis=1))
