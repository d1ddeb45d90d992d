"""``GET /api/batches/{batch_id}/tasks/{task_id}``: one waiting task; opened by someone
who may complete tasks, its first opening is recorded once (a step's duration runs from
it). Bad ids, other batches' tasks, finished tasks and concurrent opens are answered."""

from __future__ import annotations

import threading

from sqlalchemy import select

from engine import users
from engine.models import TaskTime
from tests.support import PASSWORD


def _task_id(client, batch_id="B-001"):
    (task,) = client.get(f"/api/batches/{batch_id}/tasks").json
    return task["id"]


def _opened(runtime):
    with runtime.transaction() as s:
        return list(s.scalars(select(TaskTime).where(TaskTime.kind == "opened")))


def test_the_first_opening_is_recorded_once(client, runtime, batch):
    task_id = _task_id(client)
    first = client.get(f"/api/batches/B-001/tasks/{task_id}", headers=client.auth["op"])
    assert first.status_code == 200, first.json
    assert first.json["id"] == task_id and first.json["first_open"] is True and first.json["opened_by"] == "op"
    again = client.get(f"/api/batches/B-001/tasks/{task_id}", headers=client.auth["sv"])  # a replay, someone else
    assert again.status_code == 200 and again.json["first_open"] is False
    assert again.json["opened_at"] == first.json["opened_at"] and again.json["opened_by"] == "op"
    assert len(_opened(runtime)) == 1


def test_a_reader_who_cannot_complete_tasks_records_nothing(client, runtime, batch):
    users.create_user(runtime, "svc.x", "Service", ["service"], by="test", password=PASSWORD)
    token = {"Authorization": "Bearer " + users.create_token(runtime, "svc.x", "t", by="test")}
    r = client.get(f"/api/batches/B-001/tasks/{_task_id(client)}", headers=token)
    assert r.status_code == 200 and r.json["opened_at"] is None and r.json["first_open"] is False
    assert _opened(runtime) == []


def test_bad_ids_and_finished_tasks(client, anon, batch):
    task_id = _task_id(client)
    assert anon.get(f"/api/batches/B-001/tasks/{task_id}").status_code == 401
    assert client.get(f"/api/batches/NOPE/tasks/{task_id}").status_code == 404
    assert client.get("/api/batches/B-001/tasks/00000000-0000-4000-8000-000000000000").status_code == 404
    for bad in ("not-a-uuid", "1" * 5000, "%00", "' OR 1=1 --"):
        r = client.get(f"/api/batches/B-001/tasks/{bad}")
        assert r.status_code in (404, 422), (bad, r.status_code)
    assert client.get(f"/api/batches/B-001/tasks/{task_id}", query_string={"x": "y" * 10_000}).status_code in (
        200,
        414,
        431,
    )


def test_concurrent_opens_record_one(app, runtime, batch, client):
    task_id = _task_id(client)
    headers = client.auth["op"]
    answers = []

    def open_once():
        with app.test_client() as c:
            answers.append(c.get(f"/api/batches/B-001/tasks/{task_id}", headers=headers))

    threads = [threading.Thread(target=open_once) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [a.status_code for a in answers] == [200] * 6
    assert sum(a.json["first_open"] for a in answers) == 1
    assert len({a.json["opened_at"] for a in answers}) == 1 and len(_opened(runtime)) == 1
