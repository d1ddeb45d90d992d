"""Command line for QA's decision on a training run (``batchline analytics trainings``,
``approve``, ``reject``), beside `train` and `report` in ``analytics.cli``.

The decision is an e-signature: ``--user`` signs in with their password as for every
batchline signature (``$BATCHLINE_PASSWORD`` only for ``$BATCHLINE_USER``, else asked on
the terminal) and must hold analytics.approve; the engine refuses the person who trained
the run (``analytics.model_review``). ``analytics.cli`` hands this module its group and
helpers (``install``): no import back, so no cycle."""

from __future__ import annotations

from types import SimpleNamespace

import click

USER_HELP = (
    "Who signs (QA, not who trained). Default: $BATCHLINE_USER; the password is $BATCHLINE_PASSWORD when "
    "signing as $BATCHLINE_USER, else asked on the terminal."
)
ID = click.IntRange(1, 2**31 - 1)


def install(group: click.Group, **helpers) -> None:
    """Add `trainings`, `approve` and `reject` to the analytics ``group``; ``helpers`` are
    analytics.cli's ``runtime``, ``as_json``, ``print_json``, ``json_option`` and
    ``batchline`` (the batchline command's context object, which signs people in)."""
    h = SimpleNamespace(**helpers)

    def signer(user):
        """The signer, re-authenticated by the batchline command (password prompt)."""
        outer = h.batchline()
        if outer is None or not hasattr(outer, "acting"):
            raise click.UsageError("signing needs the batchline command: run `batchline analytics approve ...`")
        return outer.acting(user, "analytics.approve")

    @group.command("trainings")
    @click.argument("training_id", type=ID, required=False)
    @click.option("--recipe", help="Only this recipe's training runs.")
    @h.json_option
    def trainings_command(training_id, recipe):
        """The training runs (newest first; pending ones wait for QA's approval), or with
        TRAINING_ID that run's evaluation report."""
        from .model_review import get_training, list_trainings
        from .report import format_training, format_trainings

        rt = h.runtime()
        data = get_training(rt, training_id) if training_id else list_trainings(rt, recipe)
        if h.as_json():
            h.print_json(data)
        else:
            click.echo(format_training(data) if training_id else format_trainings(data))

    def decide(action, training_id, user, reason):
        from .model_review import approve, reject

        who = signer(user)
        decided = (approve if action == "approve" else reject)(h.runtime(), training_id, signer=who, reason=reason)
        if h.as_json():
            h.print_json(decided)
            return
        d = decided["decision"]
        click.echo(
            f"training run {decided['id']} of {decided['recipe']} {decided['status']}: signed {d['meaning']} by "
            f"{d['printed_name']} ({d['username']}) at {d['signed_at'][:19]} UTC"
            + (f"; its {decided['models']} model(s) score from now on" if decided["status"] == "approved" else "")
        )

    @group.command("approve")
    @click.argument("training_id", type=ID)
    @click.option("--user", envvar="BATCHLINE_USER", required=True, help=USER_HELP)
    @click.option(
        "--reason",
        default="evaluation report reviewed",
        show_default=True,
        help="Why (what in the report was checked); in the audit trail.",
    )
    @h.json_option
    def approve_command(training_id, user, reason):
        """Approve training run TRAINING_ID with your e-signature (Approved): its models
        score from now on, replacing the versions in force."""
        decide("approve", training_id, user, reason)

    @group.command("reject")
    @click.argument("training_id", type=ID)
    @click.option("--user", envvar="BATCHLINE_USER", required=True, help=USER_HELP)
    @click.option("--reason", required=True, help="Why the models must not score; in the audit trail.")
    @h.json_option
    def reject_command(training_id, user, reason):
        """Reject training run TRAINING_ID with your e-signature (Rejected): its models
        never score; the versions in force go on."""
        decide("reject", training_id, user, reason)
