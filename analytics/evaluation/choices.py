"""Which methods the evaluation compares on a process, with the settings chosen on
PenSim validation seeds (100-101, never reported) and then used unchanged on every
other process of the same kind."""

from __future__ import annotations

from ..forest import IsolationForestMonitor
from ..pca import PCAMonitor
from ..univariate import UnivariateMonitor
from .methods import CombinedMethod, DurationMethod, MonitorMethod, PlainPCA
from .online import DynamicResiduals, OnlineMPCA

#: EWMA weight of the online features; lags of the dynamic models (continuous)
SMOOTHING = 0.2
LAGS = 2
#: online MPCA: fraction of variance kept and EWMA of its prediction errors (chosen on
#: PenSim validation seeds 100-101 among 3/5/8/12/20 components and 70-90 %, lambda
#: 0.05-0.35: fewer components or more smoothing missed sensor bias and mumax drops)
MPCA_COMPONENTS = 0.8
MPCA_SMOOTHING = 0.1


def _pca_monitor(lags=0):
    """The project's PCA monitor with its default settings; for a dynamic model the
    lagged columns are built by the features (the monitor is fitted on a thinned set
    of rows, where its own ``lags`` would pair rows hours apart)."""
    return PCAMonitor(), lags


def default_methods(kind, has_durations=False, seed=0, landmark=None, known_at=None):
    """The methods compared on a process of ``kind`` ("batch" or "continuous"); the
    duration monitor and the combinations with it only when the runs have manual-step
    durations. Baselines first. ``landmark`` / ``known_at``: the process's optional
    hooks (see ``PenSimProcess``): batch maturity landmark, when step durations are known."""
    lags = LAGS if kind == "continuous" else 0
    pca, pca_lags = _pca_monitor(lags)
    methods = [
        PlainPCA("spe", kind, SMOOTHING, lags, landmark=landmark),
        PlainPCA("t2", kind, SMOOTHING, lags, landmark=landmark),
        PlainPCA("spe", kind, SMOOTHING, lags, calibrated=False, landmark=landmark),
        PlainPCA("t2", kind, SMOOTHING, lags, calibrated=False, landmark=landmark),
        MonitorMethod(
            "Univariate rule 1 (EWMA features)", UnivariateMonitor(rules=(1,)), kind, SMOOTHING, landmark=landmark
        ),
        MonitorMethod("PCAMonitor T²/SPE (EWMA features)", pca, kind, SMOOTHING, pca_lags, landmark=landmark),
        MonitorMethod(
            "IsolationForest (EWMA features)",
            IsolationForestMonitor(random_state=seed),
            kind,
            SMOOTHING,
            lags,
            landmark=landmark,
        ),
    ]
    if kind == "batch":
        best = OnlineMPCA(n_components=MPCA_COMPONENTS, smoothing=MPCA_SMOOTHING, landmark=landmark)
    else:
        best = DynamicResiduals(order=LAGS, smoothing=SMOOTHING)
    methods.append(best)
    if has_durations:
        pca2, pca2_lags = _pca_monitor(lags)
        methods += [
            DurationMethod(known_at=known_at),
            CombinedMethod(
                "Combined: PCAMonitor + duration",
                [
                    MonitorMethod("PCA", pca2, kind, SMOOTHING, pca2_lags, landmark=landmark),
                    DurationMethod(known_at=known_at),
                ],
            ),
            CombinedMethod(
                f"Combined: {best.name} + duration",
                [
                    OnlineMPCA(n_components=MPCA_COMPONENTS, smoothing=MPCA_SMOOTHING, landmark=landmark)
                    if kind == "batch"
                    else DynamicResiduals(order=LAGS, smoothing=SMOOTHING),
                    DurationMethod(known_at=known_at),
                ],
            ),
        ]
    return methods
