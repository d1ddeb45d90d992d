"""scikit-learn's own estimator checks.  The few checks that cannot pass are listed
with the reason; everything else must pass."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from analytics import DurationMonitor, IsolationForestMonitor, PCAMonitor, UnivariateMonitor

SEQUENCE = "run rules 2-4 look at previous rows by design: a row's verdict depends on its predecessors"
NEGATIVE = "check_outliers_* feed negative blob data; durations cannot be negative (tag positive_only)"
FEW_ROWS = (
    "fits on 10-15 rows; the monitor refuses them (NotEnoughHistory): its limits come from held-out rows "
    "and an extreme quantile of 10 held-out values does not hold the false-alarm rate"
)
FEW_ROWS_CHECKS = {
    name: FEW_ROWS
    for name in (
        "check_classifier_data_not_an_array",
        "check_estimators_nan_inf",
        "check_fit2d_1feature",
        "check_n_features_in_after_fitting",
    )
}

CASES = [
    # alpha=0.05: check_outliers_train wants at least one flagged point among its 300
    # training points, which at alpha=0.01 depends on luck with 3 Gaussian blobs
    (UnivariateMonitor(alpha=0.05, rules=(1,)), {}),
    (
        UnivariateMonitor(alpha=0.05, rules=(1, 2, 3, 4)),
        {"check_methods_subset_invariance": SEQUENCE, "check_methods_sample_order_invariance": SEQUENCE},
    ),
    # n_components=1: with the default 90 % variance both blob dimensions are kept,
    # SPE has nothing to watch and T² of a 3-blob mixture never leaves its limit
    (PCAMonitor(alpha=0.05, n_components=1), FEW_ROWS_CHECKS),
    (PCAMonitor(alpha=0.05), FEW_ROWS_CHECKS),
    (DurationMonitor(alpha=0.05), {"check_outliers_train": NEGATIVE, "check_outliers_fit_predict": NEGATIVE}),
    (IsolationForestMonitor(n_estimators=20, random_state=0), FEW_ROWS_CHECKS),
]


@pytest.mark.parametrize("estimator,expected", CASES, ids=lambda v: type(v).__name__)
def test_check_estimator(estimator, expected):
    # some of scikit-learn's checks draw from numpy's global generator: seed it, or whether
    # a run rule fires on their random rows (an expected failure) depends on test order
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None)
    failed = sorted({r["check_name"] for r in results if r["status"] == "failed"})
    assert failed == [], failed
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    # a listed check may pass on a lucky draw of scikit-learn's random rows (a run rule
    # need not fire); it must never fail unlisted, and no check outside the list may xfail
    assert xfailed <= set(expected), xfailed - set(expected)
    assert xfailed or not expected, "every expected failure now passes: update the list"
