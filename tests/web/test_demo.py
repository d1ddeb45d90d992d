"""`batchline demo --no-serve` sets a usable plant up, twice without harm."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine import batches, users
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
        # when serving, a simulated bioreactor feeds the demo batch (here: briefly, fast)
        import threading
        import time

        from analytics import equipment

        stop = threading.Event()
        feed = demo.start_equipment_feed(rt, stop, every=0.01)
        deadline = time.monotonic() + 30
        while equipment.sample_count(rt, demo.DEMO_BATCH, "up_production") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        feed.join(10)
        assert not feed.is_alive() and equipment.sample_count(rt, demo.DEMO_BATCH, "up_production") >= 3
    finally:
        rt.close()
        ctx.close()
