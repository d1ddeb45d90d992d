"""The evaluation's results as a reader sees them: per process, markdown tables of
false alarms, detection and delays per method (for docs/analytics.md), and a plot."""

from __future__ import annotations

import numpy as np

LABELS = {
    "sensor_bias": "sensor bias",
    "sensor_drift": "sensor drift",
    "feed_fault": "feed fault",
    "kinetic_change": "µmax drop",
    "slow_step": "slow step ×2",
    "rushed_step": "rushed step ×0.5",
}


def label(fault_type):
    return LABELS.get(fault_type, fault_type.replace("_", " "))


def _pct(value, digits=0):
    return f"{100 * value:.{digits}f}%"


def results_table(results):
    """Markdown tables for one process: false alarms and detection, then delays."""
    first = next(iter(results.values()))
    faults = first.fault_types
    head = ["Method", "run FAR (per seed)", "sample FAR"] + [label(f) for f in faults]
    head += ["all faults", "flag before onset"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        per_seed = ", ".join(_pct(v) for v in r.far_per_seed)
        cells = [r.name, f"{_pct(r.run_false_alarm_rate, 1)} ({per_seed})", _pct(r.sample_false_alarm_rate, 2)]
        cells += [_pct(r.detection_rate(f)) for f in faults]
        cells += [f"**{_pct(r.detection_rate())}**", _pct(r.pre_onset_rate())]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Median detection delay after the fault onset (hours; detected runs only):", ""]
    head = ["Method"] + [label(f) for f in faults] + ["all faults"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        cells = [r.name]
        for f in (*faults, None):
            d = r.median_delay(f)
            cells.append("–" if d is None else f"{d:.1f} h")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_tables(all_results, describe=None):
    """One section per process (``describe(name)`` may add a line under its title)."""
    parts = []
    for name, results in all_results.items():
        parts += [f"### Process `{name}`", ""]
        if describe:
            parts += [describe(name), ""]
        parts += [results_table(results), ""]
    return "\n".join(parts).rstrip() + "\n"


def plot_results(all_results, directory):
    """Detection per fault type and method, one panel per process, as a PNG; returns
    the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(all_results), 1, figsize=(11, 4.8 * len(all_results)), squeeze=False)
    for ax, (name, results) in zip(axes[:, 0], all_results.items()):
        faults = next(iter(results.values())).fault_types
        width = 0.8 / len(results)
        x = np.arange(len(faults))
        for i, (method, r) in enumerate(results.items()):
            rates = [r.detection_rate(f) for f in faults]
            ax.bar(x + i * width, rates, width, label=f"{method} (FAR {r.run_false_alarm_rate:.0%})")
        names = [label(f) for f in faults]
        ax.set_xticks(x + width * (len(results) - 1) / 2, names, fontsize=8, rotation=20, ha="right")
        ax.axhline(0.9, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("faulty runs detected online")
        ax.set_title(f"{name}: detection per fault type at the calibrated run false-alarm rate", fontsize=10)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = directory / "analytics-detection.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
