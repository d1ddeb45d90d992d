"""Detectors on synthetic data: false-alarm rates, detection, run rules, limits."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from analytics import (
    CalibrationWarning,
    DurationMonitor,
    IsolationForestMonitor,
    NotEnoughHistory,
    PCAMonitor,
    UnivariateMonitor,
)
from analytics.base import conformal_threshold
from analytics.univariate import nelson_rules


def normal(n, p=1, seed=0):
    return np.random.default_rng(seed).standard_normal((n, p))


# -- univariate ---------------------------------------------------------------------


def test_univariate_false_alarm_rate_close_to_alpha():
    monitor = UnivariateMonitor(alpha=0.01, rules=(1,)).fit(normal(5000, 1, seed=1) * 3 + 10)
    flagged = monitor.predict(normal(50000, 1, seed=2) * 3 + 10) == -1
    assert 0.007 < flagged.mean() < 0.013


def test_univariate_qn_scale_close_to_sigma():
    monitor = UnivariateMonitor(scale="qn").fit(normal(2000, 2, seed=3) * [2.0, 0.5])
    np.testing.assert_allclose(monitor.scale_, [2.0, 0.5], rtol=0.06)


def test_univariate_robust_to_outliers_in_history():
    history = normal(500, 1, seed=4)
    history[:25] = 50.0  # 5 % gross errors
    monitor = UnivariateMonitor().fit(history)
    assert abs(monitor.centre_[0]) < 0.2 and 0.9 < monitor.scale_[0] < 1.25


def test_univariate_detects_shifted_mean():
    monitor = UnivariateMonitor(alpha=0.01, rules=(1,)).fit(normal(1000, seed=5))
    # the limit is about 2.6 sd (held-out inflation never narrows it): ~92 % of a 4 sd shift
    assert (monitor.predict(normal(1000, seed=6) + 4.0) == -1).mean() > 0.85


def test_run_rule_detects_small_sustained_shift_that_rule_1_misses():
    history = normal(1000, seed=7)
    shifted = normal(200, seed=8) + 1.5
    rule_1 = UnivariateMonitor(alpha=0.0027, rules=(1,)).fit(history)
    rules = UnivariateMonitor(alpha=0.0027, rules=(1, 2)).fit(history)
    assert (rules.predict(shifted) == -1).mean() > (rule_1.predict(shifted) == -1).mean() + 0.3


def fired_rows(z, rule, limit=3.0):
    return np.nonzero(nelson_rules(np.asarray(z, float), limit, (rule,))[rule][:, 0])[0].tolist()


def test_rule_1_fires_beyond_limit_only():
    assert fired_rows([0, 0, 3.01, 0, -3.2], 1) == [2, 4]
    assert fired_rows([0, 2.99, -2.99, 3.0], 1) == []


def test_rule_2_nine_on_one_side():
    assert fired_rows([-0.5] + [0.3] * 9, 2) == [9]
    assert fired_rows([-0.5] + [0.3] * 8 + [-0.2], 2) == []
    assert fired_rows([0.3] * 4 + [0.0] + [0.3] * 5, 2) == []  # a point on the centre breaks it


def test_rule_3_six_steadily_increasing_or_decreasing():
    assert fired_rows([0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == [6]
    assert fired_rows([0.6, 0.5, 0.4, 0.3, 0.2, 0.1], 3) == [5]
    assert fired_rows([0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6], 3) == []  # a tie breaks the trend


def test_rule_4_fourteen_alternating():
    z = [0.5 if i % 2 else -0.5 for i in range(14)]
    assert fired_rows(z, 4) == [13]
    assert fired_rows(z[:13], 4) == []
    assert fired_rows(z[:7] + [z[6]] + z[7:], 4) == []  # a repeat breaks it


def test_rule_5_two_of_three_beyond_two_thirds_of_limit():
    assert fired_rows([0, 2.1, 0, 2.1], 5) == [3]
    assert fired_rows([2.1, 0, 0, 2.1], 5) == []
    assert fired_rows([0, 2.1, -2.1, 0], 5) == []
    assert fired_rows([0, 1.9, 2.1, 0], 5) == []


def test_rule_6_four_of_five_beyond_one_third_of_limit():
    assert fired_rows([0, 1.1, 1.1, 0, 1.1, 1.1], 6) == [5]
    assert fired_rows([1.1, 1.1, 0, 0, 1.1, 1.1], 6) == []
    assert fired_rows([0, 1.1, 1.1, 0, -1.1, 1.1], 6) == []


def test_rule_violations_report_rule_row_and_parameter():
    monitor = UnivariateMonitor(alpha=0.0027, rules=(1, 2)).fit(normal(2000, 2, seed=9))
    X = np.zeros((12, 2))
    X[3, 1] = 10.0
    X[:, 0] = 1.0  # 12 points above the centre
    found = {(v.row, v.parameter, v.rule) for v in monitor.rule_violations(X)}
    assert (3, "x1", 1) in found
    assert {(r, "x0", 2) for r in range(8, 12)} <= found
    assert not any(v.rule == 2 and v.row < 8 for v in monitor.rule_violations(X))
    assert monitor.predict(X).tolist() == [1, 1, 1, -1, 1, 1, 1, 1, -1, -1, -1, -1]


# -- PCA ----------------------------------------------------------------------------


def latent_data(n, seed):
    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(0).standard_normal((3, 8))
    return rng.standard_normal((n, 3)) @ loadings * 2 + rng.standard_normal((n, 8)) * 0.5


@pytest.mark.parametrize("spe_method", ["jackson-mudholkar", "box"])
def test_pca_limits_match_monte_carlo(spe_method):
    monitor = PCAMonitor(alpha=0.1, n_components=3, spe_method=spe_method).fit(latent_data(3000, 1))
    new = latent_data(40000, 2)
    # each statistic gets alpha / 2 = 5 %
    assert abs((monitor.t2(new) > monitor.t2_limit_).mean() - 0.05) < 0.01
    assert abs((monitor.spe(new) > monitor.spe_limit_).mean() - 0.05) < 0.01
    assert abs((monitor.predict(new) == -1).mean() - 0.1) < 0.02


def test_pca_components_by_explained_variance():
    assert PCAMonitor(n_components=0.9).fit(latent_data(500, 3)).n_components_ == 3


def test_pca_spe_catches_broken_correlation_and_explains_it():
    monitor = PCAMonitor(alpha=0.01, n_components=3).fit(latent_data(2000, 4))
    X = latent_data(200, 5)
    X[:, 6] += 8.0  # one sensor off by about 2 of its standard deviations
    assert (monitor.predict(X) == -1).mean() > 0.9
    contributions = monitor.explain(X, statistic="spe")
    assert (contributions.argmax(axis=1) == 6).mean() > 0.9
    np.testing.assert_allclose(contributions.sum(axis=1), monitor.spe(X))
    np.testing.assert_allclose(monitor.explain(X, statistic="t2").sum(axis=1), monitor.t2(X))
    np.testing.assert_allclose(monitor.explain(X).sum(axis=1), monitor.statistic(X))


# -- durations ----------------------------------------------------------------------


def durations(n, seed, factor=1.0):
    rng = np.random.default_rng(seed)
    return np.stack([45 * rng.lognormal(0, 0.12, n), 20 * rng.lognormal(0, 0.15, n)], axis=1) * factor


def test_duration_monitor_flags_slow_and_rushed_steps():
    monitor = DurationMonitor(alpha=0.01).fit(durations(500, 1))
    normal_rate = (monitor.predict(durations(5000, 2)) == -1).mean()
    assert 0.005 < normal_rate < 0.015  # 1 % for the two steps together (family-wise)
    slow, rushed = durations(1000, 3), durations(1000, 4)
    slow[:, 1] *= 2.0
    rushed[:, 0] *= 0.5
    # limits are family-wise over both steps and never narrower than the held-out
    # spread: a doubled or halved step is still flagged in the large majority of rows
    assert (monitor.predict(slow) == -1).mean() > 0.85
    assert (monitor.predict(rushed) == -1).mean() > 0.85
    assert monitor.too_long(slow)[:, 1].mean() > 0.85 and not monitor.too_short(slow)[:, 1].any()
    assert monitor.too_short(rushed)[:, 0].mean() > 0.85 and not monitor.too_long(rushed)[:, 0].any()


def test_duration_monitor_refuses_negative_durations():
    monitor = DurationMonitor().fit(durations(50, 1))
    with pytest.raises(ValueError, match="Negative values"):
        monitor.predict([[-1.0, 20.0]])


# -- isolation forest ---------------------------------------------------------------


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_isolation_forest_scores_equal_scikit_learn(max_features):
    X = latent_data(600, 6)
    monitor = IsolationForestMonitor(n_estimators=50, max_features=max_features, random_state=3).fit(X)
    reference = IsolationForest(n_estimators=50, max_features=max_features, random_state=3).fit(X)
    new = latent_data(300, 7) * 1.5
    np.testing.assert_allclose(monitor.anomaly_score(new), -reference.score_samples(new), rtol=1e-12)


def test_isolation_forest_detects_far_points():
    monitor = IsolationForestMonitor(random_state=0).fit(latent_data(1000, 8))
    assert (monitor.predict(latent_data(200, 9) + 15) == -1).mean() > 0.95


# -- calibration --------------------------------------------------------------------


def test_conformal_threshold_rank():
    assert conformal_threshold(np.arange(1, 51), 0.05) == 49  # k = ceil(0.95 * 51) = 49
    with pytest.warns(CalibrationWarning):
        assert conformal_threshold(np.arange(1, 11), 0.01) == 10


@pytest.mark.parametrize(
    "monitor",
    [
        UnivariateMonitor(rules=(1,)),
        PCAMonitor(n_components=3),
        IsolationForestMonitor(n_estimators=50, random_state=0),
    ],
)
def test_calibrate_sets_false_alarm_rate_per_batch(monitor):
    monitor.fit(latent_data(2000, 10))
    # batches of 30 samples; a batch is a false alarm if any sample is flagged
    monitor.calibrate(latent_data(200 * 30, 11), groups=np.repeat(np.arange(200), 30), alpha=0.1)
    flagged = (monitor.predict(latent_data(1000 * 30, 12)) == -1).reshape(1000, 30).any(axis=1)
    assert 0.05 < flagged.mean() < 0.15


def test_univariate_calibration_accounts_for_run_rules():
    monitor = UnivariateMonitor(rules=(1, 2, 3, 4)).fit(normal(2000, 1, seed=13))
    monitor.calibrate(normal(4000, 1, seed=14), alpha=0.05)
    rate = (monitor.predict(normal(20000, 1, seed=15)) == -1).mean()
    assert 0.035 < rate < 0.065


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [UnivariateMonitor, PCAMonitor, DurationMonitor, IsolationForestMonitor])
def test_bad_input_gives_clear_value_errors(cls):
    X = np.abs(latent_data(100, 16)) + 1
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(np.where(np.eye(100, 8) > 0, np.nan, X))
    monitor = cls().fit(X)
    with pytest.raises(ValueError, match="NaN"):
        monitor.predict(np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match="8 features"):
        monitor.predict(X[:, :5])
    with pytest.raises(ValueError, match="2D array"):
        monitor.predict(X[0])
    with pytest.raises(NotEnoughHistory, match=r"at least \d+ samples .* got 1 sample"):
        cls().fit(X[:1])
    with pytest.raises(ValueError, match="groups must have one label per row"):
        cls().fit(X, groups=np.arange(5))
    with pytest.raises(ValueError, match="alpha"):
        cls(alpha=1.5).fit(X)


# -- stored models of the previous format -------------------------------------------


@pytest.mark.parametrize(
    "monitor, new_attributes",
    [
        (UnivariateMonitor(), ("inflation_", "method_")),
        (DurationMonitor(), ("inflation_", "method_")),
        (PCAMonitor(n_components=2), ("explained_",)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "",
)
def test_format_1_models_still_load(monitor, new_attributes):
    X = np.abs(latent_data(200, 17)) + 1
    data = monitor.fit(X).to_dict()
    data["format"] = 1
    data["params"].pop("lags", None)  # format 1 had no dynamic PCA
    for name in new_attributes:
        del data["state"][name]
    old = type(monitor).from_dict(data)
    assert old.predict(X).shape == (200,)
    if isinstance(monitor, PCAMonitor):
        assert 0 < old.limits()["explained_variance"] <= 1
    else:
        np.testing.assert_array_equal(old.inflation_, np.ones(8))
    data["format"] = 99
    with pytest.raises(ValueError, match="unknown model format"):
        type(monitor).from_dict(data)


def test_dynamic_pca_explains_per_variable_and_round_trips():
    X = latent_data(300, 18)
    monitor = PCAMonitor(alpha=0.05, lags=2).fit(X)
    new = latent_data(50, 19)
    new[:, 2] += 6.0
    contributions = monitor.explain(new)
    assert contributions.shape == (50, 8)  # lagged copies are added onto their variable
    np.testing.assert_allclose(contributions.sum(axis=1), monitor.statistic(new))
    assert (np.abs(monitor.explain(new, statistic="spe")).argmax(axis=1) == 2).mean() > 0.8
    again = PCAMonitor.from_dict(monitor.to_dict())
    np.testing.assert_array_equal(again.predict(new), monitor.predict(new))
    with pytest.raises(ValueError, match="lags"):
        PCAMonitor(lags=-1).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        PCAMonitor(n_components="many").fit(X)
