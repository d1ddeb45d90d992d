"""False-alarm rates on *unseen* normal data, with the default constructor.

The data are generated here (not the evaluation's processes, which stay an
independent check): unfolded batch trajectories with far more columns than
batches, autocorrelated multivariate series scored on the samples that follow the
training window, and histories of 3 to 60 rows.  A monitor must keep its rate
within 1.5 x alpha on average over seeds, or refuse to fit (NotEnoughHistory).

Tolerance: the rate measured on N test rows has a binomial standard error
sqrt(r (1 - r) / N) at r = 1.5 alpha even if the true rate were exactly 1.5 alpha;
where the rate varies from history to history we use the standard error of the
mean over repetitions instead.  The assertion is mean <= 1.5 alpha + 2 se: it
fails when the rate is credibly above 1.5 alpha.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from analytics import DurationMonitor, IsolationForestMonitor, NotEnoughHistory, PCAMonitor, UnivariateMonitor

# -- data --------------------------------------------------------------------------


def unfolded_batches(n, seed, n_variables=10, n_times=300, shift=0.0):
    """Batch trajectories (n, n_variables * n_times): 3 latent batch factors with
    smooth time profiles, shared loadings, white measurement noise and a slow
    within-batch wander (AR(1), phi 0.95).  ``shift`` adds that many noise
    standard deviations to variable 0 in the second half of the batch."""
    design = np.random.default_rng(1000)
    time = np.linspace(0, 1, n_times)
    profiles = np.stack([np.sin((k + 1) * np.pi * time * design.uniform(0.5, 1.5)) for k in range(3)])
    loadings = design.standard_normal((3, n_variables))
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n, 3))
    X = np.einsum("nk,kv,kt->nvt", factors, loadings, profiles)
    X += 0.3 * rng.standard_normal(X.shape)
    wander = rng.standard_normal(X.shape) * np.sqrt(1 - 0.95**2)
    X += 0.2 * lfilter([1.0], [1.0, -0.95], wander, axis=2)
    X[:, 0, n_times // 2 :] += shift * 0.3
    return X.reshape(n, -1)


def autocorrelated_series(n, seed, n_variables=8, phis=(0.99, 0.9, 0.5), noise_phi=0.7):
    """A stationary multivariate series: latent AR(1) factors (phi up to 0.99, i.e.
    a time constant of 100 samples) loaded on all variables, plus AR(1) noise
    per variable; started after a burn-in of 2,000 samples."""
    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(2000).standard_normal((len(phis), n_variables))
    burn = 2000
    factors = np.column_stack([lfilter([np.sqrt(1 - p**2)], [1.0, -p], rng.standard_normal(n + burn)) for p in phis])
    noise = lfilter(
        [np.sqrt(1 - noise_phi**2)], [1.0, -noise_phi], rng.standard_normal((n + burn, n_variables)), axis=0
    )
    return (factors @ loadings + 0.5 * noise)[burn:]


def latent(n, rng, p=8):
    loadings = np.random.default_rng(3000).standard_normal((3, p))
    return rng.standard_normal((n, 3)) @ loadings * 2 + rng.standard_normal((n, p)) * 0.5


def assert_rate(rates, alpha, n_test, label):
    """Mean rate over seeds <= 1.5 alpha + 2 standard errors (the larger of the
    binomial one at 1.5 alpha and the spread of the per-seed rates)."""
    rates = np.asarray(rates, dtype=float)
    binomial = np.sqrt(1.5 * alpha * (1 - 1.5 * alpha) / (n_test * rates.size))
    spread = rates.std(ddof=1) / np.sqrt(rates.size) if rates.size > 1 else 0.0
    bound = 1.5 * alpha + 2 * max(binomial, spread)
    assert rates.mean() <= bound, f"{label}: mean false-alarm rate {rates.mean():.4f} > {bound:.4f} ({rates})"


def flagged(monitor, X):
    return np.mean(monitor.predict(X) == -1)


MONITORS = {
    "pca": lambda alpha: PCAMonitor(alpha=alpha),
    "univariate": lambda alpha: UnivariateMonitor(alpha=alpha),
    "forest": lambda alpha: IsolationForestMonitor(alpha=alpha, random_state=0),
}

# -- (1) variables >> observations: unfolded batches ---------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("name", sorted(MONITORS))
def test_unfolded_batches_hold_the_rate(name, alpha):
    rates = []
    for seed in range(3):
        monitor = MONITORS[name](alpha).fit(unfolded_batches(50, seed=2 * seed + 1))  # 50 x 3,000
        rates.append(flagged(monitor, unfolded_batches(400, seed=2 * seed + 2)))
    assert_rate(rates, alpha, 400, f"{name} unfolded alpha={alpha}")


def test_pca_fit_on_60_by_4000_is_fast():
    import time

    X = unfolded_batches(60, seed=7, n_variables=10, n_times=400)
    start = time.perf_counter()
    monitor = PCAMonitor().fit(X)
    elapsed = time.perf_counter() - start
    assert monitor.cv_statistic_.shape == (60,)
    assert elapsed < 5.0, f"fit took {elapsed:.1f} s"


# -- (2) autocorrelated series, scored on the samples that follow -------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("name", sorted(MONITORS) + ["pca-lags"])
def test_autocorrelated_series_hold_the_rate(name, alpha):
    make = (lambda a: PCAMonitor(alpha=a, lags=2)) if name == "pca-lags" else MONITORS[name]
    rates = []
    for seed in range(6):
        X = autocorrelated_series(1500, seed)
        monitor = make(alpha).fit(X[:500])
        rates.append(flagged(monitor, X[500:]))
    assert_rate(rates, alpha, 1000, f"{name} autocorrelated alpha={alpha}")


def test_run_rules_are_off_by_default():
    X = autocorrelated_series(1500, 0)
    default = UnivariateMonitor().fit(X[:500])
    assert default.rules == (1,)
    with_rules = UnivariateMonitor(rules=(1, 2, 3, 4)).fit(X[:500])
    # on raw autocorrelated samples, run rules fire on most rows: that is why they are opt-in
    assert flagged(with_rules, X[500:]) > 0.5 > flagged(default, X[500:])


# -- (3) little history --------------------------------------------------------------------

LITTLE = [3, 5, 8, 10, 20, 60]


def little_history_rates(make, draw, n, reps, n_test=1000):
    rates = []
    for rep in range(reps):
        rng = np.random.default_rng(10_000 * n + rep)
        try:
            monitor = make().fit(draw(n, rng))
        except NotEnoughHistory:
            return None
        rates.append(flagged(monitor, draw(n_test, rng)))
    return rates


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n", LITTLE)
def test_univariate_and_durations_with_little_history(n, alpha):
    cases = {
        "univariate, 1 parameter": (
            lambda: UnivariateMonitor(alpha=alpha),
            lambda m, rng: 100 + 2 * rng.standard_normal((m, 1)),
        ),
        "univariate, 4 parameters": (
            lambda: UnivariateMonitor(alpha=alpha),
            lambda m, rng: latent(m, rng, p=4),
        ),
        "durations, 2 steps": (
            lambda: DurationMonitor(alpha=alpha),
            lambda m, rng: np.exp(rng.normal([3.5, 2.0], [0.12, 0.3], (m, 2))),
        ),
    }
    for label, (make, draw) in cases.items():
        rates = little_history_rates(make, draw, n, reps=200)
        assert rates is not None, f"{label} refused {n} rows: the t prediction limit needs only 2"
        assert_rate(rates, alpha, 1000, f"{label}, {n} rows, alpha={alpha}")


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n", LITTLE)
def test_pca_and_forest_with_little_history_hold_or_refuse(n, alpha):
    cases = {
        "pca": (lambda: PCAMonitor(alpha=alpha), latent),
        "forest": (lambda: IsolationForestMonitor(alpha=alpha, n_estimators=50, random_state=0), latent),
    }
    for label, (make, draw) in cases.items():
        rates = little_history_rates(make, draw, n, reps=30 if n < 60 else 15)
        if rates is None:
            with pytest.raises(NotEnoughHistory, match=r"needs at least \d+ samples"):
                make().fit(draw(n, np.random.default_rng(0)))
            continue
        assert_rate(rates, alpha, 1000, f"{label}, {n} rows, alpha={alpha}")


def test_pca_refuses_too_few_rows_and_says_how_many():
    with pytest.raises(NotEnoughHistory, match="needs at least 30 samples"):
        PCAMonitor(alpha=0.01).fit(latent(20, np.random.default_rng(0)))
    PCAMonitor(alpha=0.05).fit(latent(20, np.random.default_rng(0)))  # 20 are enough at 5 %


# -- (4) detection still works ----------------------------------------------------------


def test_pca_detects_a_shift_in_one_variable_of_unfolded_batches():
    monitor = PCAMonitor(alpha=0.01).fit(unfolded_batches(50, seed=11))
    # variable 0 reads 2.4 high (about 7 noise sd) over the second half of the batch.
    # Smaller shifts hide in the within-batch wander: at 4 noise sd about 7 % are flagged
    shifted = unfolded_batches(200, seed=12, shift=8.0)
    assert flagged(monitor, shifted) > 0.9


def test_pca_detects_a_sensor_offset_and_a_correlation_break_in_an_autocorrelated_series():
    X = autocorrelated_series(1500, 21)
    train, new = X[:500], X[500:]
    monitor = PCAMonitor(alpha=0.01).fit(train)
    normal_rate = flagged(monitor, new)
    offset = new.copy()
    offset[:, 3] += 3 * train[:, 3].std()  # one sensor reads 3 sd high
    assert flagged(monitor, offset) > 0.9
    broken = new.copy()
    broken[:, 3] = -broken[:, 3]  # one sensor now moves against the others
    # invisible while the slow factors sit near zero, so not every sample: but far
    # above the normal rate, and more with the dynamics in the model
    assert flagged(monitor, broken) > max(0.2, 10 * normal_rate)
    assert flagged(PCAMonitor(alpha=0.01, lags=2).fit(train), broken) > 0.4


def test_univariate_detects_a_mean_shift_after_little_history():
    rng = np.random.default_rng(31)
    monitor = UnivariateMonitor(alpha=0.01).fit(rng.standard_normal((10, 1)))
    assert flagged(monitor, rng.standard_normal((1000, 1)) + 6.0) > 0.8


def test_held_out_statistics_are_kept_in_units_of_the_limit():
    monitor = PCAMonitor(alpha=0.05).fit(latent(200, np.random.default_rng(41)))
    assert monitor.cv_statistic_.shape == (200,)
    # the limits come from these held-out values: about alpha of them lie beyond 1
    assert 0.0 < np.mean(monitor.cv_statistic_ > 1.0) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)


def test_groups_keep_a_batch_in_one_fold():
    rng = np.random.default_rng(51)
    batch_means = rng.standard_normal((40, 1, 4)) * 2  # each batch sits at its own level
    X = (batch_means + 0.3 * rng.standard_normal((40, 25, 4))).reshape(-1, 4)
    groups = np.repeat(np.arange(40), 25)
    honest = UnivariateMonitor(alpha=0.01).fit(X, groups=groups)
    new = (rng.standard_normal((400, 1, 4)) * 2 + 0.3 * rng.standard_normal((400, 25, 4))).reshape(-1, 4)
    assert flagged(honest, new) <= 0.015 + 2 * np.sqrt(0.015 * 0.985 / 400)


@pytest.mark.parametrize("groups", [np.arange(5), np.zeros((60, 2))], ids=["too short", "2-D"])
def test_bad_groups_are_refused_clearly(groups):
    X = latent(60, np.random.default_rng(61))
    for cls in (UnivariateMonitor, PCAMonitor, IsolationForestMonitor):
        with pytest.raises(ValueError, match="one label per row"):
            cls(alpha=0.05).fit(X, groups=groups)


def test_any_hashable_group_labels_work():
    X = latent(60, np.random.default_rng(61))
    UnivariateMonitor().fit(X, groups=["a", 1] * 30)  # mixed types
    PCAMonitor(alpha=0.05).fit(X, groups=[f"B-{i // 3}" for i in range(60)])


def test_one_group_cannot_be_cross_validated():
    X = latent(60, np.random.default_rng(62))
    with pytest.raises(ValueError, match="at least two"):
        PCAMonitor(alpha=0.05).fit(X, groups=np.zeros(60))
