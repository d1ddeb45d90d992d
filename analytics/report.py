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
