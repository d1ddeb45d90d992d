"""Models survive a JSON round trip unchanged, without pickle."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from analytics import DurationMonitor, IsolationForestMonitor, ModelCard, PCAMonitor, UnivariateMonitor, dumps, loads
from analytics.report import format_models

X = np.abs(np.random.default_rng(0).standard_normal((300, 4)) @ np.diag([1, 2, 3, 4])) + 5
NEW = np.vstack([X[:50], X[:50] * 1.8])

MONITORS = [
    UnivariateMonitor(rules=(1, 2, 3, 4, 5, 6), scale="qn"),
    PCAMonitor(n_components=2, spe_method="box"),
    DurationMonitor(alpha=0.02),
    IsolationForestMonitor(n_estimators=30, max_features=0.75, random_state=1),
]


def only_json_types(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_json_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_json_types(v) for v in value)
    return value is None or type(value) in (int, float, str, bool)


# rules 2-6 on 4 columns of this small sample exceed alpha alone; the warning is expected
@pytest.mark.filterwarnings("ignore::analytics.base.CalibrationWarning")
@pytest.mark.parametrize("monitor", MONITORS, ids=lambda m: type(m).__name__)
def test_round_trip_gives_identical_predictions(monitor):
    monitor.fit(X).calibrate(X[::-1][:120], alpha=0.05)
    data = monitor.to_dict()
    assert only_json_types(data)
    text = dumps(monitor)
    json.loads(text)  # strict JSON
    again = loads(text)
    assert type(again) is type(monitor)
    for method in ("predict", "decision_function", "score_samples", "explain"):
        np.testing.assert_array_equal(getattr(again, method)(NEW), getattr(monitor, method)(NEW))
    assert again.limits() == monitor.limits()


def test_model_card_round_trip_and_report():
    monitor = UnivariateMonitor().fit(X)
    card = ModelCard.for_monitor(
        monitor,
        recipe_id="PEN-FB",
        recipe_version="3",
        step_id="harvest",
        parameter_names=["titre", "biomass", "do", "volume"],
        training_batch_ids=[f"B{i}" for i in range(300)],
        trained_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    again = loads(dumps(card))
    assert again == card
    assert again.trained_at == "2026-01-02T03:04:05+00:00"
    np.testing.assert_array_equal(again.monitor().predict(NEW), monitor.predict(NEW))
    table = format_models(
        [
            again,
            ModelCard.for_monitor(
                PCAMonitor(n_components=2).fit(X),
                recipe_id="PEN-FB",
                recipe_version="3",
                step_id="fed-batch",
                parameter_names="abcd",
                training_batch_ids=["B1"],
            ),
        ]
    )
    assert "PEN-FB v3" in table and "titre" in table and "T² <=" in table
    assert f"{monitor.limits()['upper'][0]:.4g}" in table


def test_card_refuses_mismatched_or_broken_input():
    monitor = PCAMonitor(n_components=2).fit(X)
    with pytest.raises(ValueError, match="parameter names"):
        ModelCard.for_monitor(
            monitor, recipe_id="r", recipe_version="1", step_id="s", parameter_names=["a"], training_batch_ids=[]
        )
    card = ModelCard.for_monitor(
        monitor, recipe_id="r", recipe_version="1", step_id="s", parameter_names="abcd", training_batch_ids=[]
    ).to_dict()
    del card["limits"]
    with pytest.raises(ValueError, match="missing limits"):
        ModelCard.from_dict(card)
    with pytest.raises(ValueError, match="unknown model kind"):
        loads(json.dumps({"kind": "Pickle", "format": 1}))
