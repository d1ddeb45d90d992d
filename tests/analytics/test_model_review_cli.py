"""`batchline analytics trainings / approve / reject`: QA's e-signature from the command
line, with the password as for every CLI signature."""

from __future__ import annotations

import json

from click.testing import CliRunner

from analytics import catalogue
from analytics.history import write_history
from tests.support import PASSWORD
from web import cli
from web.cli import acting

from .trend_recipe import RECIPE, history, import_trend_recipe


def _run(runtime, *args, env=None, input=None):
    actor = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--user"), None)
    env = {"BATCHLINE_USER": actor, "BATCHLINE_PASSWORD": PASSWORD, **(env or {})}
    return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env, input=input)


def test_trainings_and_approval_from_the_cli(runtime, monkeypatch):
    import_trend_recipe(runtime)
    write_history(runtime, RECIPE, history(20), user="demo")
    trained = _run(runtime, "analytics", "train", "--recipe", RECIPE, "--user", "quentin", "--json")
    assert trained.exit_code == 0, trained.output
    run_id = json.loads(trained.stdout)["training_id"]

    listed = _run(runtime, "analytics", "trainings", "--recipe", RECIPE)
    assert listed.exit_code == 0 and "pending" in listed.stdout and "quentin" in listed.stdout
    shown = _run(runtime, "analytics", "trainings", str(run_id))
    assert shown.exit_code == 0, shown.output
    assert "held out:" in shown.stdout and "mass_g [g]" in shown.stdout and "report SHA-256" in shown.stdout

    mine = _run(runtime, "analytics", "approve", str(run_id), "--user", "quentin")
    assert mine.exit_code != 0 and "trainer_cannot_approve" in mine.stderr
    wrong = _run(runtime, "analytics", "approve", str(run_id), "--user", "qa", env={"BATCHLINE_PASSWORD": "nope"})
    assert wrong.exit_code != 0 and "auth_failed" in wrong.stderr
    assert catalogue.list_models(runtime, RECIPE) == []

    # the password asked on the terminal, as for every CLI signature
    monkeypatch.setattr(acting, "on_terminal", lambda: True)
    signed = _run(
        runtime,
        "analytics",
        "approve",
        str(run_id),
        "--user",
        "qa",
        env={"BATCHLINE_USER": "alice"},
        input=PASSWORD + "\n",
    )
    assert signed.exit_code == 0, signed.output
    assert "Password for qa" in signed.stderr and "approved: signed Approved" in signed.stdout
    assert len(catalogue.list_models(runtime, RECIPE)) == 3

    again = _run(runtime, "analytics", "reject", str(run_id), "--user", "qa2", "--reason", "late", "--json")
    assert again.exit_code != 0 and "training_decided" in again.stderr
    status = json.loads(_run(runtime, "analytics", "trainings", "--json").stdout)
    assert [(r["id"], r["status"], r["decision"]["username"]) for r in status] == [(run_id, "approved", "qa")]
