"""The evaluation's results as a reader sees them: markdown tables of false alarms,
detection rates and delays per method (for docs/analytics.md), and the plots."""

from __future__ import annotations

import numpy as np

from ..simulator import FAULT_TYPES

FAULT_LABELS = {
    "sensor_bias": "sensor bias",
    "sensor_drift": "sensor drift",
    "feed_fault": "feed fault",
    "kinetic_change": "µmax drop",
    "slow_step": "slow step ×2",
    "rushed_step": "rushed step ×0.5",
}


def results_table(results):
    """Markdown tables: false alarms and detection per method, then delays."""
    head = ["Method", "batch FAR", "sample FAR"] + [FAULT_LABELS[f] for f in FAULT_TYPES] + ["all faults"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        per_seed = ", ".join(f"{v:.0%}" for v in r.batch_far_per_seed)
        cells = [
            r.name,
            f"{r.batch_false_alarm_rate:.1%} ({per_seed})",
            f"{r.sample_false_alarm_rate:.2%}" if r.level == "series" else "(per batch)",
        ]
        cells += [f"{r.detection_rate(f):.0%}" for f in FAULT_TYPES]
        cells.append(f"{r.detection_rate():.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Median detection delay from fault onset (hours; time series methods only - "
        "batch-level methods decide at the end of the batch, the duration monitor when the "
        "step closes):",
        "",
    ]
    head = ["Method"] + [FAULT_LABELS[f] for f in FAULT_TYPES if f not in ("slow_step", "rushed_step")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        if r.level != "series":
            continue
        cells = [r.name]
        for f in FAULT_TYPES:
            if f in ("slow_step", "rushed_step"):
                continue
            d = r.median_delay(f)
            cells.append("–" if d is None else f"{d:.0f} h")
        lines.append("| " + " | ".join(cells) + " |")
    pca_methods = [
        n for n in ("PCA T²/SPE (time series, EWMA)", "PCA T²/SPE (unfolded time series, end of batch)") if n in results
    ]
    if pca_methods:
        first = results[pca_methods[0]]
        sensors = sorted({t for (f, t) in first.by_target if f in ("sensor_bias", "sensor_drift")})
        lines += [
            "",
            "Sensor faults by sensor (detected / faulty batches):",
            "",
            "| method | fault | " + " | ".join(sensors) + " |",
            "|---|---|" + "---|" * len(sensors),
        ]
        for name in pca_methods:
            for f in ("sensor_bias", "sensor_drift"):
                cells = []
                for t in sensors:
                    n, d = results[name].by_target.get((f, t), (0, 0))
                    cells.append(f"{d}/{n}" if n else "–")
                lines.append(f"| {name} | {FAULT_LABELS[f]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(results, examples, directory):
    """Detection-rate bars and example control charts as PNG files; returns their
    paths relative to ``directory``'s parent (for markdown links)."""
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(10, 6.5))
    names = list(results)
    width = 0.8 / len(names)
    x = np.arange(len(FAULT_TYPES))
    for i, name in enumerate(names):
        rates = [results[name].detection_rate(f) for f in FAULT_TYPES]
        ax.bar(x + i * width, rates, width, label=f"{name} (FAR {results[name].batch_false_alarm_rate:.0%})")
    ax.set_xticks(x + width * (len(names) - 1) / 2, [FAULT_LABELS[f] for f in FAULT_TYPES])
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    ax.set_ylabel("faulty batches detected")
    ax.set_ylim(0, 1.05)
    ax.set_title("Detection rate per fault type at equal batch false-alarm rate")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.tight_layout()
    path = directory / "analytics-detection.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    if examples:
        fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.2 * len(examples)), sharex=True)
        for ax, (label, (batch, times, statistic)) in zip(np.atleast_1d(axes), examples.items()):
            ax.semilogy(times, np.maximum(statistic, 1e-3), linewidth=1)
            ax.axhline(1.0, color="red", linewidth=1)
            if batch.fault is not None:
                ax.axvline(batch.fault.onset, color="black", linestyle=":")
                title = f"{FAULT_LABELS[label]} ({batch.fault.target}, magnitude {batch.fault.magnitude:.3g})"
            else:
                title = "normal batch"
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("stat / limit")
        np.atleast_1d(axes)[-1].set_xlabel("batch time (h); dotted: fault onset, red: limit")
        fig.suptitle("PCA time-series monitor: max(T², SPE) relative to the calibrated limit", fontsize=10)
        fig.tight_layout()
        path = directory / "analytics-charts.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
