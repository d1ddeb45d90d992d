"""Run by ``test_old_release_on_new_schema`` in a subprocess with PYTHONPATH set to the
PREVIOUS release's code (``git archive`` of its commit): that release's own engine
imports a recipe, starts a batch, completes and signs its steps (one witnessed) and
runs its own ``audit verify``, against a database the NEW code migrated to its head.

Only names the previous release had are used here. Prints one JSON line: what it did,
or where it failed (the test shows it). Usage: old_release_driver.py DB_URL RECIPES_DIR
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def main(url: str, recipes: Path) -> dict:
    import engine
    from engine import audit, batches, users
    from engine import recipes as recipe_store
    from engine.config import load_settings
    from engine.runtime import Runtime

    done: dict = {"engine": str(Path(engine.__file__).parent), "steps": []}
    settings = load_settings(database_url=url, argon2_time_cost=1, argon2_memory_kib=1024, webhook_urls=())
    rt = Runtime(settings, load_connectors=False)
    try:
        password = "old release password 1"
        users.create_user(rt, "old.op", "Old Operator", ["operator"], by="old.admin", password=password)
        users.create_user(rt, "old.sup", "Old Supervisor", ["supervisor"], by="old.admin", password=password)
        forms = {p.stem: json.loads(p.read_text()) for p in (recipes / "signed_forms").glob("*.json")}
        rv = recipe_store.import_recipe(
            rt, {"signed.bpmn": (recipes / "signed.bpmn").read_bytes()}, forms=forms, user="old.qa"
        )
        recipe_store.set_status(rt, rv.id, "approved", "old.qa2", "approved by the previous release")
        done["recipe_version"] = rv.id
        op = users.authenticate(rt, "old.op", password, purpose="signature")
        sup = users.authenticate(rt, "old.sup", password, purpose="signature")
        for batch_id in ("OLD-1", "OLD-2"):
            batches.start_batch(rt, "signed_steps", batch_id, user="old.sup", parameters={"lot": "L-OLD"})
            tasks = {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(rt, batch_id)}
            out = batches.complete_task(
                rt, batch_id, tasks["weigh"], {"mass_g": 100, "comment": "old node"}, user="old.op", signer=op
            )
            done["steps"].append([batch_id, "weigh"])
            if batch_id == "OLD-1":
                tasks = {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(rt, batch_id)}
                out = batches.complete_task(
                    rt, batch_id, tasks["transfer"], {"transferred": True}, user="old.op", signer=op, witness=sup
                )
                done["steps"].append([batch_id, "transfer"])
            del out
        done["batches"] = {b["batch_id"]: b["state"] for b in batches.list_batches(rt)}
        with rt.transaction() as s:
            result = audit.verify(s)
        done["verify"] = {"ok": result.ok, "entries": result.entries, "problems": result.problems}
        done["ok"] = True
    except Exception as exc:  # noqa: BLE001 - the test reports where the old code failed
        done.update(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        rt.close()
    return done


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2])), default=str))
