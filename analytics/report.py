"""Listing of trained out-of-trend models and their limits, for QA review and the
`batchline analytics report` command: a plain-text table, or JSON (``--json``)."""

from __future__ import annotations


def _number(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _together(names):
    names = list(names)
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} parameters: {names[0]}, {names[1]}, ..."


def _limit_rows(card):
    """One row per parameter with its limits, or one row for the whole model."""
    limits = card.limits
    names = card.parameter_names
    if card.kind == "UnivariateMonitor":
        return [
            (name, f"{_number(lo)} .. {_number(hi)}", f"centre {_number(c)}, rules {limits['rules']}")
            for name, lo, hi, c in zip(names, limits["lower"], limits["upper"], limits["centre"])
        ]
    if card.kind == "DurationMonitor":
        return [
            (name, f"{_number(lo)} .. {_number(hi)}", f"median {_number(m)}")
            for name, lo, hi, m in zip(names, limits["lower"], limits["upper"], limits["median"])
        ]
    if card.kind == "PCAMonitor":
        return [
            (
                _together(names),
                f"T² <= {_number(limits['t2'])}, SPE <= {_number(limits['spe'])}",
                f"{limits['n_components']} components, {limits['explained_variance']:.0%} variance",
            )
        ]
    if card.kind == "TimeSeriesModel":
        return [
            (
                _together(names),
                f"T² <= {_number(limits['t2'])}, SPE <= {_number(limits['spe'])}",
                f"{limits['n_components']} components; t_hours {_number(limits['grid_start'])} + "
                f"{_number(limits['grid_step'])} x {limits['grid_points']}",
            )
        ]
    return [(_together(names), "; ".join(f"{k} {_number(v)}" for k, v in limits.items()), "")]


def format_models(cards) -> str:
    """A table of models (recipe, step, kind, training) and their limits."""
    header = ("recipe", "step", "model", "ver", "trained (UTC)", "batches", "parameter", "limits", "notes")
    rows = []
    for card in cards:
        for parameter, limit, note in _limit_rows(card):
            rows.append(
                (
                    f"{card.recipe_id} v{card.recipe_version}",
                    card.step_id,
                    card.kind,
                    str(card.version),
                    card.trained_at[:19],
                    str(len(card.training_batch_ids)),
                    parameter,
                    limit,
                    note,
                )
            )
    if not rows:
        return "no models"
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def models_json(cards) -> list[dict]:
    """The models as plain data: what the table shows, with the limits as stored (the
    fitted model itself is left out: it is large and not for reading)."""
    return [
        {
            "recipe": card.recipe_id,
            "recipe_version": card.recipe_version,
            "step": card.step_id,
            "model": card.kind,
            "version": card.version,
            "trained_at": card.trained_at,
            "training_batches": len(card.training_batch_ids),
            "parameters": list(card.parameter_names),
            "limits": card.limits,
        }
        for card in cards
    ]


def _rate(value):
    return "-" if value is None else f"{value:.0%}"


def format_trainings(runs) -> str:
    """A table of training runs: status, who trained, models, worst held-out false alarms."""
    header = (
        "id",
        "recipe",
        "status",
        "trained (UTC)",
        "by",
        "batches",
        "models",
        "no history",
        "worst FA",
        "decided by",
    )
    rows = [
        (
            str(r["id"]),
            f"{r['recipe']} v{r['recipe_version']}",
            r["status"],
            r["trained_at"][:19],
            r["trained_by"],
            str(r["batches"]),
            str(r["models"]),
            str(r["not_enough_history"]),
            _rate(r["worst_false_alarm_rate"]),
            (r["decision"] or {}).get("username", ""),
        )
        for r in runs
    ]
    if not rows:
        return "no training runs"
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def format_training(run) -> str:
    """One run's evaluation report as text: per model its features, limits, training
    batches and false alarms on held-out batches; what had not enough history."""
    report = run["report"]
    d = run["decision"]
    out = [
        f"training run {run['id']}: {run['recipe']} v{run['recipe_version']}, {run['status']}",
        f"trained by {run['trained_by']} at {run['trained_at'][:19]} UTC on {run['batches']} batch(es)"
        + (" (released only)" if run["released_only"] else " (every completed batch)"),
        f"report SHA-256 {run['report_hash']}",
    ]
    if d:
        out.append(
            f"{d['meaning']} by {d['printed_name']} ({d['username']}) at {d['signed_at'][:19]} UTC: {d['reason']}"
        )
    out.append("")
    for m in report["models"]:
        newest = m["evaluation"].get("newest", {})
        cv = m["evaluation"].get("cross_validated", {})
        names = ", ".join(f"{f['parameter']}{' [' + f['unit'] + ']' if f['unit'] else ''}" for f in m["features"])
        limits = "; ".join(f"{k} {_number(v)}" for k, v in m["limits"].items() if v is not None and k != "rules")
        out.append(f"{m['bpmn_id']} / {m['kind']} v{m['version']}{' (active)' if m.get('active') else ''}: {names}")
        out.append(f"  limits: {limits}")
        out.append(f"  trained on {m['training_batches']} batch(es)")
        if newest.get("false_alarm_rate") is not None:
            out.append(
                f"  held out: {newest['false_alarms']} false alarm(s) in the newest {newest['held_out_batches']} "
                f"batch(es) ({_rate(newest['false_alarm_rate'])}; nominal {_rate(m['nominal_false_alarm_rate'])})"
            )
        elif newest:
            out.append(f"  held out: not measured ({newest.get('reason', '')})")
        else:
            out.append(f"  held out: {m['evaluation'].get('method', '')}")
        if cv.get("false_alarm_rate") is not None:
            out.append(f"  {cv['method']}: {cv['false_alarms']} of {cv['held_out']} ({_rate(cv['false_alarm_rate'])})")
    if report["not_enough_history"]:
        out.append("")
        out.append("not enough history:")
        for s in report["not_enough_history"]:
            out.append(f"  {s['bpmn_id']}{' / ' + s['parameter'] if s['parameter'] else ''}: {s['reason']}")
    return "\n".join(out)
