"""Hostile input never becomes a 500 and never reaches the record: integers beyond 2^63,
JSON nested 5,000 deep, 4,301-digit numbers, lone surrogates and NUL, NaN / Infinity /
1e400, a locked SQLite database, and batch ids that hide or look like something else.

Expected statuses and codes are literals (``docs/security.md``, "Hostile input"); each
refusal is checked to have stored nothing. The engine's rules are tested below the API as
well (``check_batch_id``, ``check_parameters``, ``check_finite``).
"""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from engine import batches, recipe_lifecycle, users
from engine.batches.inputs import check_batch_id, check_parameters
from engine.errors import InvalidInput, NotFound
from engine.finite import check_finite
from tests.support import ACCOUNTS, PASSWORD, approval, make_runtime
from tests.web.through_api import LOOP_BPMN, first_task, import_recipe

BIG = 2**63  # one beyond the largest SQLite INTEGER / PostgreSQL BIGINT
OVER_ID = 2**31  # one beyond PostgreSQL's INTEGER: ids, versions and step numbers are INTEGER columns
HUGE = "9" * 5000  # beyond Python's int-from-text limit (4,300 digits)
SIGNATURE = {"username": "alice", "password": PASSWORD}


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.json
    assert set(body) == {"code", "message", "details"} and body["code"] == code, body
    assert body["message"]
    return body


def post_raw(client, path: str, text: str | bytes):
    return client.post(path, data=text, content_type="application/json")


def strict(text: str):
    """Parse as RFC 8259 JSON: no NaN, no Infinity."""

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# --- integers beyond 2^63 in paths, queries and bodies ---------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("get", f"/api/events?after={BIG}", None, 422, "validation_error"),
        ("get", f"/api/events?after={HUGE}", None, 422, "validation_error"),
        ("get", f"/api/events?limit={BIG}", None, 422, "validation_error"),
        ("get", f"/api/recipes/{BIG}", None, 404, "not_found"),
        ("get", f"/api/recipes/{OVER_ID}", None, 404, "not_found"),
        ("post", f"/api/incidents/{OVER_ID}/retry", None, 404, "not_found"),
        ("get", f"/api/events?after={BIG - 1}", None, 200, None),  # the feed's numbers are BIGINT
        ("get", f"/api/recipes/{HUGE}", None, 404, "not_found"),
        ("get", "/api/recipes/0", None, 404, "not_found"),
        ("get", "/api/recipes/\u0663", None, 404, "not_found"),  # an Arabic-Indic digit 3
        ("post", f"/api/recipes/{BIG}/approve", {"reason": "r"}, 404, "not_found"),
        ("post", f"/api/recipes/{BIG}/retire", {"reason": "r"}, 404, "not_found"),
        ("post", f"/api/incidents/{BIG}/retry", None, 404, "not_found"),
        (
            "post",
            f"/api/batches/B-001/steps/{OVER_ID}/corrections",
            {"field": "reading", "value": 1, "reason": "typo", "signature": SIGNATURE},
            404,
            "not_found",
        ),
        (
            "post",
            f"/api/batches/B-001/steps/{BIG}/corrections",
            {"field": "reading", "value": 1, "reason": "typo", "signature": SIGNATURE},
            404,
            "not_found",
        ),
        (
            "post",
            "/api/batches",
            {"recipe": "sampling_loop", "batch_id": "B-9", "version": BIG},
            422,
            "validation_error",
        ),
        ("post", "/api/batches", {"recipe": BIG, "batch_id": "B-9"}, 422, "validation_error"),
        ("post", "/api/batches", {"recipe": OVER_ID, "batch_id": "B-9"}, 422, "validation_error"),
        (
            "post",
            "/api/batches",
            {"recipe": "sampling_loop", "batch_id": "B-9", "version": OVER_ID},
            422,
            "validation_error",
        ),
        ("post", "/api/batches", {"recipe": 0, "batch_id": "B-9"}, 422, "validation_error"),
        ("get", f"/batches/B-001/steps/{BIG}", None, 404, None),  # the browser's step page
    ],
)
def test_integers_beyond_2_63_are_4xx_never_500(client, batch, method, path, body, status, code):
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + users.create_token(
        client.application.extensions["batchline"], "uu", "t", by="test"
    )
    r = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    if code is None:
        assert r.status_code == status
    else:
        error(r, status, code)
    assert client.get("/api/batches/B-001/steps").json == []


def test_the_engine_bounds_ids_for_every_caller(runtime):
    from engine import recipes

    for recipe, version in ((OVER_ID, None), (BIG, None), ("sampling_loop", OVER_ID), ("sampling_loop", 0)):
        with pytest.raises(InvalidInput):
            batches.start_batch(runtime, recipe, "B-1", user="alice", version=version)
    with pytest.raises(NotFound):
        recipes.get_version(runtime, OVER_ID)
    with pytest.raises(NotFound):
        recipe_lifecycle.approve(runtime, BIG, signer=users.person(runtime, "quentin"), reason="ok")
    with pytest.raises(NotFound):
        batches.start_batch(runtime, str(OVER_ID), "B-1", user="alice")  # digits as a key: no such recipe


def test_the_bounds_are_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").json
    recipe_id = spec["paths"]["/api/recipes/{recipe_id}"]["parameters"][0]["schema"]
    assert recipe_id == {"type": "integer", "minimum": 1, "maximum": 2147483647}
    version = spec["components"]["schemas"]["BatchStart"]["properties"]["version"]
    assert (version["minimum"], version["maximum"]) == (1, 2147483647)
    after = next(p for p in spec["paths"]["/api/events"]["get"]["parameters"] if p["name"] == "after")
    assert (after["schema"]["minimum"], after["schema"]["maximum"]) == (0, 9223372036854775807)


def test_version_at_the_bound_is_an_ordinary_not_found(client, batch):
    r = client.post(
        "/api/batches",
        json={"recipe": "sampling_loop", "batch_id": "B-9", "version": OVER_ID - 1},
        headers=client.auth["alice"],
    )
    error(r, 404, "recipe_not_found")


# --- JSON depth and number size, before parsing ----------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/batches", "/api/recipes", "/api/batches/B-001/hold", "/api/messages/lims_result"]
)
def test_json_nested_5000_deep_is_400_json_too_deep(client, batch, path):
    body = error(post_raw(client, path, "[" * 5000 + "]" * 5000), 400, "json_too_deep")
    assert body["details"] == {"max_depth": 64}
    deep_value = '{"data": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
    task = first_task(client)
    error(post_raw(client, f"/api/batches/B-001/tasks/{task}/complete", deep_value), 400, "json_too_deep")
    unterminated = '{"reason": "' + "\\" * 1001 + '"}'  # odd backslashes: a string that never ends
    error(post_raw(client, "/api/batches/B-001/hold", unterminated), 400, "json_invalid")
    assert client.get("/api/batches/B-001/steps").json == []


def test_brackets_inside_strings_do_not_count_as_depth(client, batch):
    task = first_task(client)
    text = json.dumps({"data": {"done": False, "note": "[" * 5000 + '"\\' + "{" * 100}})
    r = post_raw(client, f"/api/batches/B-001/tasks/{task}/complete", text)
    assert r.status_code == 200, r.json
    assert r.json["step"]["values"]["note"].startswith("[[[")


def test_64_levels_parse_65_do_not(client, batch):
    at_limit = '{"reason": "x", "extra": ' + "[" * 63 + "]" * 63 + "}"
    error(post_raw(client, "/api/batches/B-001/hold", at_limit), 422, "validation_error")  # parsed; unknown field
    over = '{"reason": "x", "extra": ' + "[" * 64 + "]" * 64 + "}"
    error(post_raw(client, "/api/batches/B-001/hold", over), 400, "json_too_deep")


@pytest.mark.parametrize("digits", [4301, 101])
def test_long_numbers_are_400_json_number_too_large(client, batch, digits):
    text = '{"recipe": "sampling_loop", "batch_id": "B-9", "version": ' + "7" * digits + "}"
    body = error(post_raw(client, "/api/batches", text), 400, "json_number_too_large")
    assert body["details"] == {"max_digits": 100}
    task = first_task(client)
    text = '{"data": {"reading": 1.' + "5" * digits + "}}"
    error(post_raw(client, f"/api/batches/B-001/tasks/{task}/complete", text), 400, "json_number_too_large")
    assert client.get("/api/batches/B-001/steps").json == []


def test_form_files_in_a_recipe_upload_have_the_same_limits(client):
    r = client.post(
        "/api/recipes",
        content_type="multipart/form-data",
        data={
            "bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")],
            "forms": [(io.BytesIO(b'{"id": "f", "components": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "f.json")],
        },
    )
    error(r, 400, "json_too_deep")
    r = client.post(
        "/api/recipes",
        content_type="multipart/form-data",
        data={
            "bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")],
            "forms": [(io.BytesIO(b'{"id": "f", "x": NaN}'), "f.json")],
        },
    )
    error(r, 422, "number_not_finite")
    assert client.get("/api/recipes").json == []


# --- text: valid UTF-8, no lone surrogates, no NUL ---------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"recipe": "sampling_loop", "batch_id": "\\ud800"}',
        '{"recipe": "sampling_loop", "batch_id": "B-9", "parameters": {"note": "a\\udfffb"}}',
        '{"recipe": "sampling_loop", "batch_id": "B-9", "parameters": {"\\ud800": 1}}',
        '{"recipe": "sampling_loop", "batch_id": "B-9", "parameters": {"note": "a\\u0000b"}}',
        b'{"recipe": "sampling_loop", "batch_id": "B-\xed\xa0\x80"}',  # a surrogate as UTF-8 bytes
        b'{"recipe": "sampling_loop", "batch_id": "B-\xff"}',
    ],
)
def test_unstorable_text_is_422_text_invalid(client, batch, text):
    error(post_raw(client, "/api/batches", text), 422, "text_invalid")
    assert [b["batch_id"] for b in client.get("/api/batches").json] == ["B-001"]


def test_unstorable_text_anywhere_in_a_request(client, batch):
    task = first_task(client)
    error(
        post_raw(client, f"/api/batches/B-001/tasks/{task}/complete", '{"data": {"note": "\\ud83d"}}'),
        422,
        "text_invalid",
    )
    error(post_raw(client, "/api/batches/B-001/hold", '{"reason": "\\udc00"}'), 422, "text_invalid")
    error(client.get("/api/batches/B%00"), 422, "text_invalid")
    error(client.get("/api/batches?state=%00"), 422, "text_invalid")
    error(client.get("/api/analytics/findings?recipe=a%00b"), 422, "text_invalid")
    assert client.get("/api/batches/B-001/steps").json == []
    assert client.get("/api/batches/B-001").json["state"] == "running"


# --- NaN, Infinity, 1e400 ----------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1E+999"])
def test_non_finite_numbers_are_422_everywhere(client, batch, number):
    start = '{"recipe": "sampling_loop", "batch_id": "B-9", "parameters": {"x": ' + number + "}}"
    error(post_raw(client, "/api/batches", start), 422, "number_not_finite")
    task = first_task(client)
    step = '{"data": {"reading": ' + number + ', "done": false}}'
    error(post_raw(client, f"/api/batches/B-001/tasks/{task}/complete", step), 422, "number_not_finite")
    message = '{"payload": {"batch_id": "B-001", "ph": ' + number + "}}"
    error(post_raw(client, "/api/messages/lims_result", message), 422, "number_not_finite")
    assert client.get("/api/batches/B-001/steps").json == []
    assert [b["batch_id"] for b in client.get("/api/batches").json] == ["B-001"]


def test_the_engine_refuses_non_finite_values_from_any_caller(runtime):
    """Below the API: the CLI and Python callers reach these checks directly."""
    with pytest.raises(InvalidInput) as nan:
        check_parameters({"x": float("nan")})
    assert nan.value.code == "number_not_finite" and nan.value.details == {"field": "x"}
    with pytest.raises(InvalidInput) as inf:
        check_finite({"a": [1, {"b": float("-inf")}]}, "data")
    assert inf.value.code == "number_not_finite" and inf.value.details == {"field": "a[1].b"}
    with pytest.raises(InvalidInput) as big:
        check_parameters({"n": 2**63})
    assert big.value.code == "number_not_finite"
    assert check_parameters({"n": 2**63 - 1, "x": 1.5, "s": "t", "b": True, "z": None})["n"] == 2**63 - 1
    with pytest.raises(InvalidInput) as nul:
        check_parameters({"s": "a\x00b"})
    assert nul.value.code == "parameters_invalid"

    from tests.support import approved_recipe, read_recipe

    approved_recipe(runtime, read_recipe("loop.bpmn"), user="alice", approver="quentin")
    with pytest.raises(InvalidInput) as started:
        batches.start_batch(runtime, "sampling_loop", "B-1", user="alice", parameters={"x": float("inf")})
    assert started.value.code == "number_not_finite"
    batches.start_batch(runtime, "sampling_loop", "B-2", user="alice")
    task = batches.ready_tasks(runtime, "B-2")[0]["id"]
    with pytest.raises(InvalidInput) as step:
        batches.complete_task(runtime, "B-2", task, {"reading": float("nan"), "done": False}, user="alice")
    assert step.value.code == "number_not_finite"
    assert batches.steps(runtime, "B-2") == []
    assert [b["batch_id"] for b in batches.list_batches(runtime)] == ["B-2"]


def test_cli_refuses_non_finite_params_and_data(runtime):
    from click.testing import CliRunner

    from web import cli

    runner = CliRunner()

    def run(*args):
        env = {"BATCHLINE_USER": args[-1], "BATCHLINE_PASSWORD": PASSWORD}  # the one acting: --user, last
        return runner.invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    assert run("recipe", "import", str(_loop_path()), "--user", "uu").exit_code == 0
    approved = run("recipe", "approve", "sampling_loop", "--reason", "ok", "--user", "qa2")
    assert approved.exit_code == 0, approved.output
    for value in ("nan", "inf", "-Infinity", "1e400"):
        r = run("batch", "start", "sampling_loop", "--batch-id", "B-9", "--param", f"x={value}", "--user", "uu")
        assert r.exit_code == 2 and r.stderr.startswith("error [number_not_finite]"), r.output
    assert run("batch", "start", "sampling_loop", "--batch-id", "B-1", "--user", "uu").exit_code == 0
    for data in ('{"reading": NaN, "done": false}', '{"reading": 1e400, "done": false}'):
        r = run("batch", "complete", "B-1", "take_sample", "--data", data, "--user", "uu")
        assert r.exit_code == 2 and r.stderr.startswith("error [number_not_finite]"), r.output
    r = run("batch", "start", "sampling_loop", "--batch-id", "a/b", "--user", "uu")
    assert r.exit_code == 2 and r.stderr.startswith("error [batch_id_invalid]"), r.output
    r = run("recipe", "approve", "²", "--reason", "ok", "--user", "qa2")
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = run("incident", "retry", str(BIG), "--user", "uu")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert batches.steps(runtime, "B-1") == []


def _loop_path():
    from tests.support import RECIPES

    return RECIPES / "loop.bpmn"


def test_answers_are_standard_json_even_for_a_stored_nan(app):
    """A record written before non-finite numbers were refused is still answered as
    RFC 8259 JSON (the value as text), never as the bare NaN strict clients reject."""
    text = app.json.dumps({"values": {"a": float("nan"), "b": [float("inf"), 1.5]}})
    assert strict(text) == {"values": {"a": "nan", "b": ["inf", 1.5]}}
    with app.test_request_context():
        response = app.json.response({"x": float("-inf")})
    assert strict(response.get_data(as_text=True)) == {"x": "-inf"}
    assert strict(app.json.dumps({"x": 1.0})) == {"x": 1.0}


def test_the_record_is_standard_json(client, batch):
    task = first_task(client)
    r = client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"reading": 1e300, "done": False}})
    assert r.status_code == 200, r.json
    steps = strict(client.get("/api/batches/B-001/steps").get_data(as_text=True))
    assert steps[0]["values"] == {"reading": 1e300, "done": False}


# --- batch ids ------------------------------------------------------------------------

ALLOWED = (
    "a batch id has 1 to 100 characters: letters of one script, digits 0-9, '-', '_' and '.', "
    "starting with a letter or digit, without '..'"
)


@pytest.mark.parametrize(
    "batch_id",
    [
        "a/b",
        "../B-001",
        "B..001",
        "..",
        ".hidden",
        "<script>alert(1)</script>",
        "B-\u202e100-A",  # right-to-left override: shows as "B-A-001"
        "B-\u2066100",  # left-to-right isolate
        "M\u0410B-DEMO-001",  # a Cyrillic capital A among Latin letters
        "\u0392-001x",  # a Greek capital beta, then a Latin x
        "B 001",
        "B\t001",
        "B-001\u200b",  # zero-width space
        "B-\u0301001",  # a lone combining accent
        "B%2F001",
        "B?x",
        "B#1",
        "",
        "x" * 101,
        "\ud800",
        "B\x00",
    ],
)
def test_unsafe_batch_ids_are_refused_below_the_api(batch_id):
    with pytest.raises(InvalidInput) as refused:
        check_batch_id(batch_id)
    assert refused.value.code == "batch_id_invalid"
    assert refused.value.details["allowed"] == ALLOWED
    assert ALLOWED in refused.value.message


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("MAB-DEMO-001", "MAB-DEMO-001"),
        ("B-001", "B-001"),
        ("B-2024-001", "B-2024-001"),
        ("MAB-HIST-001", "MAB-HIST-001"),
        ("SIM-7-00001", "SIM-7-00001"),
        ("lot_7.2", "lot_7.2"),
        ("x" * 100, "x" * 100),
        ("\uff2d\uff21\uff22-\uff10\uff10\uff11", "MAB-001"),  # full-width letters and digits, NFKC
        ("Charge-\u00c4-7", "Charge-\u00c4-7"),
        ("Charge-A\u0308-7", "Charge-\u00c4-7"),  # A + combining diaeresis composes to Ä
        ("\u041f\u0430\u0440\u0442\u0438\u044f-7", "\u041f\u0430\u0440\u0442\u0438\u044f-7"),  # Cyrillic only
        ("\u30d0\u30c3\u30c1\u756a\u53f7-7", "\u30d0\u30c3\u30c1\u756a\u53f7-7"),  # Katakana with Han
    ],
)
def test_safe_batch_ids_are_kept_nfkc_normalised(given, stored):
    assert check_batch_id(given) == stored


@pytest.mark.parametrize("batch_id", ["a/b", "..", "<script>", "B-\u202e100", "M\u0410B-001"])
def test_unsafe_batch_ids_are_422_over_the_api(client, batch, batch_id):
    r = client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": batch_id})
    body = error(r, 422, "batch_id_invalid")
    assert body["details"]["allowed"] == ALLOWED
    assert [b["batch_id"] for b in client.get("/api/batches").json] == ["B-001"]


def test_a_full_width_batch_id_is_stored_normalised(client, batch):
    r = client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": "\uff22-\uff12"})
    assert r.status_code == 201, r.json
    assert r.json["batch_id"] == "B-2"
    assert client.get("/api/batches/B-2").status_code == 200


# --- a busy database is 503 with Retry-After -----------------------------------------------


@pytest.fixture
def busy_app(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    rt = make_runtime(db_url, sqlite_busy_timeout_seconds=0.3)
    for name, roles in ACCOUNTS.items():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    from web.app import create_app

    yield create_app(runtime=rt), rt, db_url.split("///", 1)[1]
    rt.close()


def test_database_locked_is_503_with_retry_after(busy_app):
    app, rt, path = busy_app
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + users.create_token(rt, "alice", "t", by="test")
    quentin = {"Authorization": "Bearer " + users.create_token(rt, "quentin", "t", by="test")}
    recipe = client.post("/api/recipes", json={"bpmn": {"loop.bpmn": LOOP_BPMN}}).json["id"]
    assert (
        client.post(f"/api/recipes/{recipe}/approve", json=approval("quentin", "ok"), headers=quentin).status_code
        == 200
    )

    other_writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    other_writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        r = client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": "B-1"})
        body = error(r, 503, "database_busy")
        assert r.headers["Retry-After"] == "2"
        assert body["details"] == {"retry_after": 2}
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    assert client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": "B-1"}).status_code == 201


# --- 405 names the methods ----------------------------------------------------------------


def test_405_carries_allow(client):
    r = client.put("/api/batches")
    body = error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert body["details"] == {"allowed": ["GET", "HEAD", "OPTIONS", "POST"]}
    r = client.delete("/api/recipes/1")
    assert error(r, 405, "method_not_allowed") and r.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_import_recipe_helper_is_unaffected(client):
    """The ordinary path still works end to end after the guards (a control)."""
    assert import_recipe(client)["status"] == "effective"


# --- two requests racing for the same unique key --------------------------------------------


def test_racing_creations_are_409_never_500(app):
    """Twelve administrators create the same user id at once: the engine's existence check
    passes for several of them on PostgreSQL, and the database's unique key refuses all
    but one insert. Exactly one 201; the others 409 (``user_exists`` or ``concurrent_change``)."""
    import threading

    rt = app.extensions["batchline"]
    header = {"Authorization": "Bearer " + users.create_token(rt, "uu", "t", by="test")}
    barrier = threading.Barrier(12)
    answers: list[tuple[int, str | None]] = []

    def create():
        client = app.test_client()
        barrier.wait()
        r = client.post(
            "/api/users",
            json={"username": "racer", "printed_name": "Racer", "roles": ["operator"], "password": "a" * 12 + "Z9!"},
            headers=header,
        )
        answers.append((r.status_code, (r.json or {}).get("code")))

    threads = [threading.Thread(target=create) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 12
    assert sorted(status for status, _ in answers) == [201] + [409] * 11, answers
    assert {code for status, code in answers if status == 409} <= {"user_exists", "concurrent_change"}
