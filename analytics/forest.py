"""Isolation-forest out-of-trend monitor: scikit-learn's IsolationForest, with its
threshold set for a target false-alarm rate so it can be compared with the
statistical monitors on equal terms.

Why the trees are copied out of scikit-learn: storing a model must not need pickle
(pickles are code, and break across library versions).  After fitting, each tree is
kept as plain arrays and scored here; scikit-learn is only needed to train.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from .base import Monitor
from .limits import cv_folds, heldout_limit, log_normal_quantile


def average_path_length(n):
    """Expected depth of an unsuccessful search in a binary search tree of n
    points, c(n) (Liu, Ting & Zhou 2008) - the depth still to go in a leaf that
    holds n training samples."""
    n = np.asarray(n, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestMonitor(Monitor):
    """Isolation forest with an alpha-based threshold.

    ``fit`` sets the threshold on held-out anomaly scores: the rows are split
    into 5 contiguous folds (or folds of whole ``groups``), a forest fitted on
    the other folds scores each, and the limit is the normal prediction limit of
    the log scores, never below their conformal rank quantile.  Training
    scores would be optimistic - the trees have seen those rows - and would not
    show how far an autocorrelated process wanders.

    The statistic is the isolation-forest anomaly score 2^(-E[h]/c(psi)) divided by
    the threshold score.

    ``random_state`` defaults to 0, not None: a GMP model must be reproducible — the
    same history trained twice gives the same trees, limits and findings, so a QA
    reviewer can re-create what an approved model version did.
    """

    _state_attributes = {"max_samples_": None, "score_limit_": None}

    def __init__(self, alpha=0.01, n_estimators=100, max_samples="auto", max_features=1.0, random_state=0):
        self.alpha = alpha
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state

    _min_samples = 20
    _folds = 5

    def _forest(self, X):
        return IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(X)

    def _fit(self, X, groups=None):
        heldout = np.empty(X.shape[0])
        for test in cv_folds(X.shape[0], groups, n_splits=self._folds):
            train = np.setdiff1d(np.arange(X.shape[0]), test)
            heldout[test] = -self._forest(X[train]).score_samples(X[test])
        forest = self._forest(X)
        subset = forest._max_features != X.shape[1]
        self.trees_ = []
        for estimator, features in zip(forest.estimators_, forest.estimators_features_):
            tree = estimator.tree_
            feature = tree.feature.copy()
            if subset:
                inner = feature >= 0
                feature[inner] = np.asarray(features)[feature[inner]]
            self.trees_.append(
                {
                    "left": tree.children_left.astype(np.int64),
                    "right": tree.children_right.astype(np.int64),
                    "feature": feature.astype(np.int64),
                    "threshold": tree.threshold.astype(np.float64),
                    "n_node_samples": tree.n_node_samples.astype(np.int64),
                }
            )
        self.max_samples_ = int(forest.max_samples_)
        self._prepare()
        self.score_limit_ = heldout_limit(heldout, self.alpha, fit=log_normal_quantile)
        self.cv_statistic_ = heldout / self.score_limit_

    def _prepare(self):
        """Stack all trees into one node table so that every tree is walked at
        once (a loop over depth, not over trees)."""
        sizes = [len(t["left"]) for t in self.trees_]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        left = np.concatenate([np.where(t["left"] >= 0, t["left"] + o, -1) for t, o in zip(self.trees_, offsets)])
        right = np.concatenate([np.where(t["right"] >= 0, t["right"] + o, -1) for t, o in zip(self.trees_, offsets)])
        self._nodes = {
            "root": offsets,
            "left": left,
            "right": right,
            "feature": np.concatenate([np.maximum(t["feature"], 0) for t in self.trees_]),
            "threshold": np.concatenate([t["threshold"] for t in self.trees_]),
            "leaf_extra": np.concatenate([average_path_length(t["n_node_samples"]) for t in self.trees_]),
        }

    def _anomaly_score(self, X):
        # scikit-learn compares float32 features with float64 thresholds
        X = X.astype(np.float32).astype(np.float64)
        nodes = self._nodes
        n, n_trees = X.shape[0], len(nodes["root"])
        depth_sum = np.empty(n)
        chunk = max(1, 2_000_000 // max(n_trees, 1))
        flat = X.ravel()
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            node = np.tile(nodes["root"], stop - start)  # row-major (row, tree)
            base = np.repeat(np.arange(start, stop) * X.shape[1], n_trees)
            depth = np.zeros(node.size)
            active = np.arange(node.size)
            while active.size:
                here = node[active]
                left = nodes["left"][here]
                internal = left >= 0
                active, here, left = active[internal], here[internal], left[internal]
                go_left = flat[base[active] + nodes["feature"][here]] <= nodes["threshold"][here]
                node[active] = np.where(go_left, left, nodes["right"][here])
                depth[active] += 1
            total = depth + nodes["leaf_extra"][node]
            depth_sum[start:stop] = total.reshape(stop - start, n_trees).sum(axis=1)
        denominator = n_trees * float(average_path_length([self.max_samples_])[0])
        if denominator == 0:
            return np.ones(n)
        return 2.0 ** (-depth_sum / denominator)

    def anomaly_score(self, X):
        """Raw isolation-forest anomaly score in (0, 1] (= -IsolationForest.score_samples)."""
        return self._anomaly_score(self._check_X(X))

    def _statistic(self, X):
        return self._anomaly_score(X) / self.score_limit_

    def explain(self, X):
        """Per-variable contribution: how much the anomaly score drops when the
        variable is replaced by its training median (one variable at a time).
        Model-agnostic and approximate - isolation forests have no exact
        decomposition."""
        X = self._check_X(X)
        base = self._statistic(X)
        out = np.empty_like(X)
        for j in range(X.shape[1]):
            replaced = X.copy()
            replaced[:, j] = self.median_[j] if hasattr(self, "median_") else 0.0
            out[:, j] = base - self._statistic(replaced)
        return out

    def fit(self, X, y=None, groups=None):
        super().fit(X, y, groups)
        self.median_ = np.median(self._check_X(X), axis=0)
        return self

    def limits(self):
        return {"anomaly_score": self.score_limit_ * self.threshold_}

    def to_dict(self):
        data = super().to_dict()
        data["state"]["median_"] = self.median_.tolist()
        data["state"]["trees_"] = [
            {k: v.tolist() for k, v in tree.items() if k != "leaf_extra"} for tree in self.trees_
        ]
        return data

    def _stored_params(self):
        params = self.get_params()
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None  # a RandomState object is not data
        return params

    def _restore(self, state):
        self.median_ = np.asarray(state["median_"], dtype=np.float64)
        self.trees_ = [
            {
                "left": np.asarray(t["left"], dtype=np.int64),
                "right": np.asarray(t["right"], dtype=np.int64),
                "feature": np.asarray(t["feature"], dtype=np.int64),
                "threshold": np.asarray(t["threshold"], dtype=np.float64),
                "n_node_samples": np.asarray(t["n_node_samples"], dtype=np.float64).astype(np.int64),
            }
            for t in state["trees_"]
        ]
        self._prepare()
