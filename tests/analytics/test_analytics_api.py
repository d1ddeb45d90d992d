"""The analytics API (models, train, trends, durations, findings) with its
permissions, and the trend pages (login required, SVG chart, escaping)."""

from __future__ import annotations

from sqlalchemy import text

from analytics.history import write_history
from engine import jobs, users
from tests.support import PASSWORD, browser_login

from .trend_recipe import RECIPE, history, import_trend_recipe, live_step, trained_plant


def _token(rt, username, roles, kind="person"):
    users.create_user(
        rt,
        username,
        username.title(),
        roles,
        by="test",
        **({"password": "a-long-test-password-1"} if kind == "person" else {"kind": kind}),
    )
    return {"Authorization": "Bearer " + users.create_token(rt, username, "tests", by="test")}


def test_models_trends_durations_findings(runtime, client):
    trained_plant(runtime)
    live_step(runtime, "B-HIGH", {"mass_g": 106, "temp_c": 20.0})
    jobs.run_due(runtime)

    r = client.get(f"/api/analytics/models?recipe={RECIPE}")
    assert r.status_code == 200, r.json
    assert sorted((m["parameter"] or "", m["kind"]) for m in r.json) == [
        ("", "DurationMonitor"),
        ("mass_g", "UnivariateMonitor"),
        ("temp_c", "UnivariateMonitor"),
    ]
    assert {m["kind"] for m in r.json} == {"UnivariateMonitor", "DurationMonitor"} and len(r.json) == 3

    r = client.get(f"/api/analytics/trends/{RECIPE}/weigh/mass_g?batch=B-HIGH")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["model"]["limits"]["centre"] is not None and body["unit"] == "g"
    assert len(body["points"]) == 21
    current = [p for p in body["points"] if p["current"]]
    assert [p["batch_id"] for p in current] == ["B-HIGH"] and current[0]["rules"] == [1]
    assert current[0]["training"] is False and body["points"][0]["training"] is True

    r = client.get(f"/api/analytics/durations/{RECIPE}/weigh?batch=B-HIGH")
    assert r.status_code == 200 and r.json["model"]["kind"] == "DurationMonitor"
    assert all(p["value"] > 0 for p in r.json["points"])

    r = client.get(f"/api/analytics/findings?recipe={RECIPE}")
    assert r.status_code == 200
    assert r.json["recipes"][0]["recipe"] == RECIPE and r.json["recipes"][0]["findings"] == 1
    assert r.json["recipes"][0]["action"] == 1 and r.json["recipes"][0]["models"] == 3
    finding = r.json["findings"][0]
    assert finding["batch_id"] == "B-HIGH" and finding["bpmn_id"] == "weigh" and finding["parameter"] == "mass_g"

    assert client.get("/api/analytics/trends/nope/weigh/mass_g").status_code == 404


def test_train_over_the_api_needs_qa(runtime, client):
    trained_plant(runtime)
    r = client.post("/api/analytics/train", json={"recipe": RECIPE}, headers=client.auth["quentin"])
    assert r.status_code == 200, r.json
    assert {m["version"] for m in r.json["models"]} == {2}
    operator = _token(runtime, "op.api", ["operator"])
    assert client.post("/api/analytics/train", json={"recipe": RECIPE}, headers=operator).status_code == 403
    assert client.get("/api/analytics/models", headers=operator).status_code == 200
    service = _token(runtime, "svc.api", ["service"], kind="service")
    r = client.get("/api/analytics/models", headers=service)
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert client.post("/api/analytics/train", json={}, headers=client.auth["quentin"]).status_code == 422


def test_anonymous_is_refused(anon):
    assert anon.get("/api/analytics/findings").status_code == 401
    r = anon.get("/trends/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/trends/")


def _login(client, username):
    browser_login(client, username)


def test_trend_pages_render(runtime, app):
    trained_plant(runtime)
    live_step(runtime, "B-HIGH", {"mass_g": 106, "temp_c": 20.0})
    live_step(runtime, "B-HTML", {"mass_g": 100, "temp_c": 20.0})
    # batch ids are a safe alphabet now; a row written before that rule (or by someone
    # with database access) must still be shown escaped
    with runtime.transaction() as s:
        s.execute(text("UPDATE batch SET batch_id = 'B-<b>x</b>' WHERE batch_id = 'B-HTML'"))
    jobs.run_due(runtime)
    browser = app.test_client()
    _login(browser, "alice")
    page = browser.get(f"/trends/{RECIPE}/steps/weigh/mass_g?batch=B-HIGH")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "tr-current" in html and "tr-flagged" in html and "centre" in html
    assert "B-HIGH" in html and "<b>x</b>" not in html and "B-&lt;b&gt;x&lt;/b&gt;" in html
    page = browser.get(f"/trends/{RECIPE}/durations/weigh?batch=B-HIGH")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    page = browser.get("/trends/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and RECIPE in html and "out of trend" in html
    assert browser.get("/trends/static/trends.css").status_code == 200
    assert browser.get("/trends/nope/durations/weigh").status_code == 404


def test_trend_pages_need_analytics_read(runtime, app):
    users.create_user(runtime, "adm.only", "Admin Only", ["admin"], by="test", password="a-long-test-password-1")
    browser = app.test_client()
    _login(browser, "adm.only")
    assert browser.get("/trends/").status_code == 403


def _pending_run(runtime, client):
    """Recipe and history; quentin (QA) trains over the API: one pending run."""
    import_trend_recipe(runtime)
    write_history(runtime, RECIPE, history(20), user="demo")
    r = client.post("/api/analytics/train", json={"recipe": RECIPE}, headers=client.auth["quentin"])
    assert r.status_code == 200, r.json
    assert r.json["status"] == "pending"
    return r.json["training_id"]


def _sign(username, password=PASSWORD, **extra):
    return {"signature": {"username": username, "password": password, **extra}, "reason": "report reviewed"}


def test_training_report_and_approval_over_the_api(runtime, client):
    run = _pending_run(runtime, client)
    r = client.get(f"/api/analytics/trainings?recipe={RECIPE}")
    assert r.status_code == 200 and [t["id"] for t in r.json] == [run] and r.json[0]["status"] == "pending"
    r = client.get(f"/api/analytics/trainings/{run}")
    assert r.status_code == 200, r.json
    report = r.json["report"]
    assert r.json["trained_by"] == "quentin" and r.json["active_models"] == 0
    mass = next(m for m in report["models"] if m["parameter"] == "mass_g")
    assert mass["features"][0]["unit"] == "g" and mass["training_batches"] == 20
    assert "false_alarm_rate" in mass["evaluation"]["newest"]
    assert client.get(f"/api/analytics/models?recipe={RECIPE}").json == []  # nothing scores yet

    qa = {"headers": client.auth["qa"]}
    r = client.post(f"/api/analytics/trainings/{run}/approve", json=_sign("qa", meaning="Approved"), **qa)
    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved" and r.json["decision"]["username"] == "qa"
    models = client.get(f"/api/analytics/models?recipe={RECIPE}").json
    assert len(models) == 3 and {m["training_id"] for m in models} == {run}
    detail = client.get(f"/api/analytics/models/{models[0]['id']}").json
    assert detail["training"]["status"] == "approved" and detail["card"]["kind"] == models[0]["kind"]
    assert client.get(f"/api/analytics/trainings/{run}").json["active_models"] == 3

    # replayed: the same signed request again is refused, nothing changes
    r = client.post(f"/api/analytics/trainings/{run}/approve", json=_sign("qa"), **qa)
    assert r.status_code == 409 and r.json["code"] == "training_decided"
    r = client.post(f"/api/analytics/trainings/{run}/reject", json=_sign("qa2"), headers=client.auth["qa2"])
    assert r.status_code == 409 and r.json["code"] == "training_decided"


def test_training_decisions_refuse_bad_requests(runtime, client):
    run = _pending_run(runtime, client)
    url = f"/api/analytics/trainings/{run}/approve"
    qa = {"headers": client.auth["qa"]}
    # segregation of duties: quentin trained the run
    r = client.post(url, json=_sign("quentin"), headers=client.auth["quentin"])
    assert r.status_code == 403 and r.json["code"] == "trainer_cannot_approve"
    # not QA
    r = client.post(url, json=_sign("op"), headers=client.auth["op"])
    assert r.status_code == 403
    # someone else's signature, a wrong password, a wrong meaning
    assert client.post(url, json=_sign("qa2"), **qa).status_code == 403
    r = client.post(url, json=_sign("qa", password="wrong password"), **qa)
    assert r.status_code == 401
    r = client.post(url, json=_sign("qa", meaning="Reviewed"), **qa)
    assert r.status_code == 422 and r.json["code"] == "meaning_invalid"
    # missing fields, wrong types, oversize
    for body in (
        {},
        {"reason": "x"},
        {"signature": {"username": "qa"}, "reason": "x"},
        {"signature": "qa", "reason": "x"},
        {"signature": {"username": "qa", "password": PASSWORD}, "reason": 5},
        {"signature": {"username": "qa", "password": PASSWORD}, "reason": ""},
        {"signature": {"username": "qa", "password": PASSWORD}, "reason": "x" * 2001},
        {"signature": {"username": ["qa"], "password": PASSWORD}, "reason": "x"},
        {"signature": {"username": "qa", "password": "p" * 201}, "reason": "x"},
        [1, 2],
    ):
        r = client.post(url, json=body, **qa)
        assert r.status_code == 422, (body, r.status_code, r.json)
    r = client.post(url, data="not json", headers={**client.auth["qa"], "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    # unknown and impossible ids
    assert client.post("/api/analytics/trainings/999999/approve", json=_sign("qa"), **qa).status_code == 404
    assert client.get("/api/analytics/trainings/0").status_code == 404
    assert client.get("/api/analytics/trainings/abc").status_code == 404
    assert client.get("/api/analytics/trainings?limit=0").status_code == 422
    assert client.get(f"/api/analytics/trainings?recipe={'r' * 201}").status_code == 422
    # none of that decided anything
    assert client.get(f"/api/analytics/trainings/{run}").json["status"] == "pending"
    # a rejection (Rejected) by another QA person
    r = client.post(f"/api/analytics/trainings/{run}/reject", json=_sign("qa", meaning="Rejected"), **qa)
    assert r.status_code == 200 and r.json["status"] == "rejected" and r.json["decision"]["meaning"] == "Rejected"
    assert client.get(f"/api/analytics/models?recipe={RECIPE}").json == []


def test_concurrent_api_approvals_record_one(runtime, app):
    from concurrent.futures import ThreadPoolExecutor

    first = app.test_client()
    tokens = {}
    for name in ("quentin", "qa", "qa2"):
        tokens[name] = {"Authorization": "Bearer " + users.create_token(runtime, name, "tests", by="test")}
    import_trend_recipe(runtime)
    write_history(runtime, RECIPE, history(20), user="demo")
    run = first.post("/api/analytics/train", json={"recipe": RECIPE}, headers=tokens["quentin"]).json["training_id"]

    def approve(name):
        return (
            app.test_client()
            .post(f"/api/analytics/trainings/{run}/approve", json=_sign(name), headers=tokens[name])
            .status_code
        )

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(approve, ["qa", "qa2"]))
    assert codes == [200, 409]
