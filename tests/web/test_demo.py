"""`batchline demo --no-serve` sets a usable plant up, twice without harm."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine import batches, users
from forms import load_form
from web import cli, demo


def test_demo_plant(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    runner = CliRunner()
    first = runner.invoke(cli.main, ["demo", "--no-serve"], env={"BATCHLINE_DATABASE_URL": url})
    assert first.exit_code == 0, first.output
    assert "op.anna" in first.output and "anna-demo-2026" in first.output
    # it ends with commands a newcomer can paste into another shell
    try_this = first.stdout.split("try this (in another shell, in this directory):\n", 1)[1].splitlines()
    assert try_this[:2] == [
        f"  export BATCHLINE_DATABASE_URL={url}",
        "  export BATCHLINE_USER=op.anna BATCHLINE_PASSWORD=anna-demo-2026",
    ]
    assert f"  batchline batch tasks {demo.DEMO_BATCH}" in try_this
    assert f"  batchline batch exceptions {demo.DEMO_BATCH}" in try_this
    again = runner.invoke(cli.main, ["demo", "--no-serve", "--json"], env={"BATCHLINE_DATABASE_URL": url})
    assert again.exit_code == 0, again.output  # idempotent
    answer = json.loads(again.stdout)
    assert answer["batch"] == demo.DEMO_BATCH and answer["url"] is None
    assert {"username": "op.anna", "password": "anna-demo-2026"}.items() <= answer["people"][0].items()
    assert "export BATCHLINE_USER=op.anna BATCHLINE_PASSWORD=anna-demo-2026" in answer["try"]
    ctx = cli.CliContext()
    from engine.config import load_settings
    from engine.runtime import Runtime

    rt = Runtime(load_settings(database_url=url), load_connectors=False)
    try:
        info = batches.get_batch(rt, demo.DEMO_BATCH)
        assert info["state"] == "running" and info["recipe"]["recipe"] == "mab_upstream"
        assert [t["bpmn_id"] for t in batches.ready_tasks(rt, demo.DEMO_BATCH)]  # something to do at once
        person = users.authenticate(rt, "op.anna", "anna-demo-2026")
        assert person.roles == ("operator",)
        listed = batches.list_batches(rt)
        assert len([b for b in listed if not b["parameters"].get("demo_history")]) == 2
        assert len(listed) == 2 + demo.HISTORY_BATCHES  # the demo history is written once
        # QA's review: the default rules in force (two QA people) and a batch awaiting review
        from engine.quality import rules

        (ruleset,) = rules.list_rule_sets(rt)
        assert (ruleset["status"], ruleset["created_by"], ruleset["approved_by"]) == ("approved", "qa.quinn", "qa.rita")
        assert batches.get_batch(rt, "MAB-DEMO-000")["state"] == "complete"
        found = {e["category"]: e for e in batches.exceptions(rt, "MAB-DEMO-000")}
        assert set(found) == {"limit.action", "event.documentation", "oot.value"}
        assert found["limit.action"]["status"] == "open" and found["oot.value"]["status"] == "open"
        assert found["oot.value"]["limits"]["upper"] < found["oot.value"]["value"]
        closed = found["event.documentation"]
        assert closed["status"] == "closed" and closed["rule_set_version"] == ruleset["version"]
        assert [(d["decision"], d["username"]) for d in closed["dispositions"]] == [("auto_close", "system")]
        from sqlalchemy import select

        from engine.models import AuditEvent

        with rt.transaction() as s:
            trail = s.execute(select(AuditEvent.action, AuditEvent.user).where(AuditEvent.object_id == "MAB-DEMO-000"))
            assert ("exception.auto_closed", "system") in set(trail)
        from analytics import catalogue

        models = catalogue.list_models(rt, "mab_upstream")  # out-of-trend models trained on it
        assert any(m["kind"] == "TimeSeriesModel" and m["bpmn_id"] == "up_production" for m in models)
        from analytics import model_review  # they score: Quinn trained them, Rita approved (e-signed)

        run = model_review.list_trainings(rt, "mab_upstream")[0]
        assert (run["status"], run["trained_by"], run["decision"]["username"]) == ("approved", "qa.quinn", "qa.rita")
        assert {m["training_id"] for m in models} == {run["id"]}
        with rt.transaction() as s:
            signed = s.scalars(select(AuditEvent).where(AuditEvent.action == "analytics.training.approved")).one()
            assert signed.user == "qa.rita" and signed.object_id == str(run["id"])
        # genealogy: the reviewed demo batch produced its HCCF from the cell bank and media
        from engine import genealogy

        hccf = genealogy.trace(rt, "MAB-DEMO-000-MAB-01-HCCF", "backward", 1)
        assert hccf["root"]["status"] == "quarantine" and hccf["root"]["unit"] == "L"
        inputs = {n["lot_id"] for n in hccf["nodes"] if n["type"] == "lot"}
        assert {demo.lot_for("WCB-CHO-MAB01"), demo.lot_for("MED-CD-CHO")} <= inputs
        # when serving, a simulated bioreactor feeds the demo batch (here: briefly, fast)
        import threading
        import time

        from analytics import equipment

        # ... once its production unit procedure runs: the batch is in its first steps, so
        # nothing is sent yet (a production T² finding during media prep was the defect)
        stop = threading.Event()
        feed = demo.start_equipment_feed(rt, stop, every=0.01)
        time.sleep(0.5)
        stop.set()
        feed.join(10)
        assert not feed.is_alive() and equipment.sample_count(rt, demo.DEMO_BATCH, "up_production") == 0
        assert equipment.running_since(rt, demo.DEMO_BATCH, "up_production") is None
        click_through(rt)
    finally:
        rt.close()
        ctx.close()


def click_through(rt, steps: int = 6, seconds: tuple[float, float] = (20.0, 8.0)):
    """A person clicking through the demo batch: each task opened, its form filled in
    ``seconds`` (to sign, per field: a quick typist) and signed. Against the demo history
    (time at the task: reading, entering, signing) that is quick but not unusual: no
    "shorter than usual" finding, unlike the defect (every step flagged). Steps done with
    the task open for tens of minutes (charging media, inoculating...) would rightly be
    flagged; they come later. Six steps: the seventh waits for a hold timer, which
    SpiffWorkflow times on the real clock."""
    from analytics import nominal
    from analytics.jobs import install
    from engine import jobs
    from tests.analytics.trend_recipe import clock_moved
    from web import demo_review

    install(rt)
    systems = nominal.Systems()
    systems.connect(rt)  # ERP and LIMS answer at once
    crew = demo_review.crew(demo.PEOPLE, demo.lot_for, demo.equipment_for)
    done: list[str] = []
    for i in range(steps):
        for _ in range(50):  # service tasks and timers (30 s in the demo) run between steps
            tasks = batches.ready_tasks(rt, demo.DEMO_BATCH)
            if tasks:
                break
            with clock_moved(i * 2.0 + 5):
                jobs.run_due(rt)
            if systems.pending:
                result = {"sample_id": systems.pending.pop(0), "titre": 4.8, "bioburden": 0}
                batches.deliver_message(rt, "lims_result", result, user="svc.lims")
        assert tasks, f"the demo batch waits after {done}"
        task = tasks[0]
        form = load_form(task["form_definition"]) if task.get("form_definition") else None
        values = nominal.valid_values(form, crew) if form else {}
        signer, witness = crew.signers(task, form)
        with clock_moved(i * 2.0):
            batches.open_task(rt, demo.DEMO_BATCH, task["id"], user=signer.username)
        took = seconds[0] + seconds[1] * (len([f for f in form.fields if not f.is_calculated]) if form else 0)
        with clock_moved(i * 2.0 + took / 60):
            batches.complete_task(
                rt,
                demo.DEMO_BATCH,
                task["id"],
                values,
                user=signer.username,
                signer=signer,
                witness=witness,
                actor=signer,
            )
        done.append(task["bpmn_id"])
    with clock_moved(steps * 2.0 + 5):  # the scoring jobs, due after the last step
        while jobs.run_due(rt):
            pass
    raised = [e for e in batches.exceptions(rt, demo.DEMO_BATCH) if e["category"] == "oot.duration"]
    assert raised == [], [(e["details"]["bpmn_id"], e["details"]["value"], e["details"]["lower"]) for e in raised]
    assert not [e for e in batches.exceptions(rt, demo.DEMO_BATCH) if (e["parameter"] or "").startswith("up_")]
    return done
