"""Throughput of the out-of-trend monitors at a realistic size: fitting on the
history of one recipe step and scoring new data (samples per second).

Size: 50 batches x 301 hourly samples x 8 variables for the time-series monitors
(15,050 rows, what the evaluation fits on); 500 batches x 8 parameters for the
end-of-batch monitors; 500 batches x 4 steps for the duration monitor.
Run: python bench/analytics.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics import DurationMonitor, IsolationForestMonitor, PCAMonitor, UnivariateMonitor  # noqa: E402
from analytics.simulator import simulate_batches  # noqa: E402


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((50 * 301, 8)) @ rng.standard_normal((8, 8))
    parameters = rng.standard_normal((500, 8)) * [1, 2, 3, 4, 5, 6, 7, 8] + 50
    durations = rng.lognormal(3.0, 0.15, (500, 4))
    cases = [
        ("UnivariateMonitor rules 1-4", UnivariateMonitor(), parameters),
        ("UnivariateMonitor rule 1", UnivariateMonitor(rules=(1,)), series),
        ("PCAMonitor", PCAMonitor(), series),
        ("DurationMonitor", DurationMonitor(), durations),
        ("IsolationForestMonitor", IsolationForestMonitor(random_state=0), series),
    ]
    print(f"{'method':30s} {'rows x cols':>12s} {'fit (samples/s)':>16s} {'score (samples/s)':>18s}")
    for name, monitor, X in cases:
        fit = best_of(lambda m=monitor, X=X: m.fit(X))
        score = best_of(lambda m=monitor, X=X: m.predict(X))
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(f"{name:30s} {shape:>12s} {X.shape[0] / fit:16,.0f} {X.shape[0] / score:18,.0f}")
    start = time.perf_counter()
    simulate_batches(100, 0)
    print(f"\nsimulator: 100 batches x 300 h in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
