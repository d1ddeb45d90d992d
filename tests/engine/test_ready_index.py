"""The ready-task index (``engine.batches.ready_index``) on SQLite and PostgreSQL: after
random steps, holds, reassignments and aborts across several batches it says exactly what
loading every workflow says (the old ``my_tasks``, kept here as the oracle); a held
batch's tasks stay listed with the hold; a reassignment moves the task; pages have no
duplicates and no gaps while steps are completed concurrently; a missing or stale index
is rebuilt on first use; hostile page parameters are refused with 422."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select, update

from engine import batches, duties, qualifications, recipes
from engine.batches import ready_index
from engine.models import Batch, ReadyTask
from engine.users import Person
from tests.support import approved_recipe, read_recipe

from .duty_tables import recipe_files

OP = Person("op", "Op", ("operator",))
SV = Person("sv", "Sv", ("supervisor",))
QA = Person("qa", "Qa", ("qa",))
UU = Person("uu", "Uu", ("operator", "supervisor", "qa", "admin"))
PEOPLE = (OP, SV, QA, UU)
#: what the oracle and the index must agree on, per task
KEYS = (
    "id",
    "bpmn_id",
    "name",
    "process",
    "process_name",
    "role",
    "assigned_to",
    "qual",
    "blocked",
    "batch_id",
    "batch_kind",
    "subject",
    "form",
    "form_definition",
    "instructions",
    "iteration",
    "batch_state",
)


def oracle(rt, person: Person) -> list[tuple]:
    """The old ``my_tasks``: load every running (and held) batch's workflow and keep the
    tasks the person may do."""
    on = qualifications.today()
    out = []
    with rt.transaction() as s:
        held = qualifications.held(s, person.username)
        listed = list(
            s.execute(
                select(Batch.batch_id, Batch.kind, Batch.subject_type, Batch.subject_id, Batch.state)
                .where(Batch.state.in_(("running", "held")))
                .order_by(Batch.id)
            )
        )
    for batch_id, kind, subject_type, subject_id, state in listed:
        subject = {"type": subject_type, "id": subject_id} if subject_type else None
        for t in batches.ready_tasks(rt, batch_id):
            mine = t["assigned_to"] == person.username if t["assigned_to"] else duties.may_complete(person, t["role"])
            if mine:
                missing = duties.missing_qualifications(held, t.get("qual") or (), on)
                blocked = "; ".join(duties.describe_missing(m) for m in missing) or None
                item = {**t, "batch_id": batch_id, "batch_kind": kind, "subject": subject, "blocked": blocked}
                item["batch_state"] = state
                out.append(_key(item))
    return sorted(out)


def _key(item: dict) -> tuple:
    return tuple(repr(item.get(k)) for k in KEYS)


def indexed(rt, person: Person) -> list[tuple]:
    return sorted(_key(t) for t in batches.my_tasks(rt, person))


def agree(rt) -> None:
    # every writer kept the index in its own transaction: nothing is left to rebuild
    assert ready_index.refresh_stale(rt) == 0
    for person in PEOPLE:
        assert indexed(rt, person) == oracle(rt, person), person.username


@pytest.fixture
def plant(runtime):
    """Two batches of the duties recipe (every task role, all tasks waiting at once) and
    two of the loop recipe (each step makes a new task)."""
    files, forms = recipe_files()
    approved_recipe(runtime, files, forms=forms, user="qa.author")
    recipes.import_recipe(runtime, read_recipe("loop.bpmn"), user="qa.author", approve=True)
    for i in range(2):
        batches.start_batch(runtime, "duties", f"D-{i}", user="sv")
        batches.start_batch(runtime, "sampling_loop", f"L-{i}", user="sv", parameters={"done": False})
    return runtime


def complete_one(rt, batch_id: str, rng: random.Random) -> bool:
    """Complete a random task of the batch that needs no signature, by someone who may."""
    tasks = [t for t in batches.ready_tasks(rt, batch_id) if not t["form"] or batch_id.startswith("L-")]
    doable = [t for t in tasks if t["role"] in ("operator", "supervisor", "qa")]
    if not doable:
        return False
    t = rng.choice(doable)
    who = Person(t["assigned_to"], "x", ("operator", "supervisor", "qa")) if t["assigned_to"] else UU
    data = {"reading": rng.randint(1, 9), "done": False} if batch_id.startswith("L-") else {}
    batches.complete_task(rt, batch_id, t["id"], data, user=who.username, actor=who)
    return True


def test_the_index_says_what_the_workflows_say_after_random_changes(plant):
    rt = plant
    rng = random.Random(13)
    agree(rt)
    ids = ["D-0", "D-1", "L-0", "L-1"]
    for _round in range(24):
        batch_id = rng.choice(ids)
        state = batches.get_batch(rt, batch_id)["state"]
        action = rng.choice(["step", "step", "step", "hold", "reassign"])
        if state == "held":
            batches.change_state(rt, batch_id, "resume", user="sv", reason="cleared")
        elif action == "step":
            complete_one(rt, batch_id, rng)
        elif action == "hold":
            batches.change_state(rt, batch_id, "hold", user="sv", reason="pressure alarm")
        else:
            ops = [t for t in batches.ready_tasks(rt, batch_id) if t["role"] == "operator"]
            if ops:
                target = rng.choice(["op", "sv", "alice"])
                batches.reassign(rt, batch_id, rng.choice(ops)["id"], target, by="sv", reason="shift change")
        agree(rt)
    batches.change_state(rt, "D-1", "abort", user="sv", reason="contaminated")
    agree(rt)
    with rt.transaction() as s:
        pk = s.scalar(select(Batch.id).where(Batch.batch_id == "D-1"))
        assert s.scalar(select(func.count()).select_from(ReadyTask).where(ReadyTask.batch_pk == pk)) == 0


def test_a_held_batch_keeps_its_tasks_with_the_hold(plant):
    rt = plant
    before = {t["id"] for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-0"}
    assert before
    batches.change_state(rt, "L-0", "hold", user="sv", reason="pressure alarm")
    held = [t for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-0"]
    assert {t["id"] for t in held} == before
    for t in held:
        assert t["batch_state"] == "held"
        assert t["hold"]["by"] == "sv" and t["hold"]["reason"] == "pressure alarm" and t["hold"]["at"]
    running = [t for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-1"]
    assert running and all(t["batch_state"] == "running" and t["hold"] is None for t in running)
    batches.change_state(rt, "L-0", "resume", user="sv", reason="cleared")
    assert all(t["hold"] is None for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-0")


def test_a_reassignment_moves_the_task(plant):
    rt = plant
    (task,) = [t for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-0"]
    batches.reassign(rt, "L-0", task["id"], "sv", by="alice", reason="op is in the gowning room")
    assert task["id"] not in {t["id"] for t in batches.my_tasks(rt, OP)}
    (moved,) = [t for t in batches.my_tasks(rt, SV) if t["id"] == task["id"]]
    assert moved["assigned_to"] == "sv" and moved["assignment_reason"] == "op is in the gowning room"
    # only the assignee: another supervisor no longer sees it
    assert task["id"] not in {t["id"] for t in batches.my_tasks(rt, Person("sv2", "Sv2", ("supervisor",)))}
    out = batches.complete_task(rt, "L-0", task["id"], {"reading": 1, "done": False}, user="sv", actor=SV)
    (nxt,) = out.body["next_tasks"]
    mine = {t["id"]: t for t in batches.my_tasks(rt, OP)}
    assert task["id"] not in mine and mine[nxt["id"]]["assigned_to"] is None
    agree(rt)


def test_a_missing_or_stale_index_is_rebuilt_on_first_use(plant):
    rt = plant
    expected = {p.username: oracle(rt, p) for p in PEOPLE}
    with rt.transaction() as s:  # as after the upgrade: no index, no indexed revision
        s.execute(ReadyTask.__table__.delete())
        s.execute(update(Batch).values(ready_revision=None))
    assert {p.username: indexed(rt, p) for p in PEOPLE} == expected
    # a previous release changed a batch (revision bumped, index not touched)
    (task,) = [t for t in batches.my_tasks(rt, OP) if t["batch_id"] == "L-1"]
    batches.complete_task(rt, "L-1", task["id"], {"reading": 2, "done": False}, user="op", actor=OP)
    with rt.transaction() as s:
        s.execute(update(Batch).where(Batch.batch_id == "L-1").values(ready_revision=Batch.revision - 5))
        s.execute(ReadyTask.__table__.delete().where(ReadyTask.batch_id == "L-1"))
    assert ready_index.refresh_stale(rt) == 1
    agree(rt)


def test_pages_have_no_duplicates_and_no_gaps_while_steps_complete(plant):
    rt = plant
    first = {t["id"] for t in batches.my_tasks(rt, UU)}
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker():
        rng = random.Random(7)
        try:
            while not stop.is_set():
                complete_one(rt, rng.choice(["L-0", "L-1", "D-0", "D-1"]), rng)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        seen: list[str] = []
        after = None
        for _ in range(500):
            page = batches.task_page(rt, UU, limit=3, after=after)
            assert len(page.items) <= 3
            seen += [t["id"] for t in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        else:
            pytest.fail("the pages never ended")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    last = {t["id"] for t in batches.my_tasks(rt, UU)}
    assert len(seen) == len(set(seen)), "a task was listed twice"
    assert first & last <= set(seen), "a task waiting all along was skipped"
    assert first - last, "the worker completed nothing: the test proved nothing"


def test_the_api_pages_and_refuses_hostile_parameters(plant, client):
    auth = client.auth["uu"]
    everything = client.get("/api/tasks?limit=200", headers=auth)
    assert everything.status_code == 200 and "X-Next-After" not in everything.headers
    total = [t["id"] for t in everything.get_json()]
    assert len(total) > 5
    got, url = [], "/api/tasks?limit=4"
    while url:
        r = client.get(url, headers=auth)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert isinstance(body, list) and len(body) <= 4
        got += [t["id"] for t in body]
        link = r.headers.get("Link")
        if link is None:
            assert "X-Next-After" not in r.headers
            break
        assert link.endswith('>; rel="next"') and f"after={r.headers['X-Next-After']}" in link
        url = link[1 : link.index(">")].replace("http://localhost", "")
    assert got == total
    item = everything.get_json()[0]
    assert {"batch_state", "hold", "assignment_reason", "blocked", "batch_id", "batch_kind", "subject"} <= set(item)
    for bad in (
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=abc",
        "limit=1.5",
        "limit=" + "9" * 40,
        "after=-1",
        "after=x",
        "after=" + "9" * 30,
        "after=1%20OR%201=1",
        "after=1e3",
        "limit=5&limit=abc",
    ):
        r = client.get(f"/api/tasks?{bad}", headers=auth)
        assert r.status_code == 422, (bad, r.status_code)
        body = r.get_json()
        name = bad.split("=")[0]
        assert body["code"] == "validation_error" and name in body["message"] and name in body["details"]["fields"]
    # a parameter the endpoint does not know is ignored, as everywhere in the API
    assert client.get("/api/tasks?unknown=1", headers=auth).status_code == 200
    assert client.get("/api/tasks?after=999999999", headers=auth).get_json() == []
    spec = client.get("/api/openapi.json").get_json()
    op = spec["paths"]["/api/tasks"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"limit", "after"}
    assert {"Link", "X-Next-After"} <= set(op["responses"]["200"]["headers"])


def test_the_home_page_lists_my_tasks_a_page_at_a_time(plant, app):
    from tests.support import browser_login

    rt = plant
    for i in range(2, 3):  # more tasks than one page holds, fewer than two
        batches.start_batch(rt, "duties", f"D-{i}", user="sv")
    mine = [t["id"] for t in batches.my_tasks(rt, UU)]
    assert batches.PAGE_DEFAULT < len(mine) <= 2 * batches.PAGE_DEFAULT
    web = app.test_client()
    browser_login(web, "uu")
    first = web.get("/").get_data(as_text=True)
    assert first.count('class="task-link"') == batches.PAGE_DEFAULT and 'rel="next"' in first
    cursor = batches.task_page(rt, UU, limit=batches.PAGE_DEFAULT).next_after
    second = web.get(f"/?after={cursor}").get_data(as_text=True)
    assert second.count('class="task-link"') == len(mine) - batches.PAGE_DEFAULT and 'rel="next"' not in second
    assert web.get("/?after=%00").status_code == 422  # (the app refuses control characters anywhere)
    for hostile in ("-1", "x", "9" * 40, "1%20OR%201=1", "\u00b2"):
        r = web.get(f"/?after={hostile}")
        assert r.status_code == 200 and r.get_data(as_text=True).count('class="task-link"') == batches.PAGE_DEFAULT
    end = web.get("/?after=999999999").get_data(as_text=True)
    assert "No more tasks" in end
