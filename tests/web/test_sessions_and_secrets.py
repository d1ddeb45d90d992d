"""Nobody can forge or keep a browser session (issue 8, points 1 and 9).

- the secret key: no default; a key file (0600) made on first start and reused; an
  unsafe key file or a published key stops the app;
- cookies signed with any key published in the repository (forged with Flask's own
  session serializer) get nothing, and neither does a cookie without a live server-side
  session, even one signed with the server's real key;
- logout, deactivation, lockout, a new password and the inactivity timeout end the
  server-side session: a copied cookie replayed afterwards gets nothing;
- the cookie's flags, HSTS over HTTPS, ``nosniff`` and ``no-store`` on every answer,
  ``Allow`` on 405.

Expected values are literals (header values, the reasons stored, the key file's mode).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from engine import secret_key, sessions, users
from engine.config import Settings, load_settings
from engine.models import LoginSession
from engine.vocabulary import SessionEnd
from tests.support import PASSWORD, idle_sessions, make_runtime
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
OLD_DEFAULT_KEY = "dev-insecure-change-me"  # engine/config.py before issue 8
SKIP_DIRS = {".git", "node_modules", ".venv", "var", "test-artifacts", "__pycache__", ".mypy_cache", "vendor"}


# --- helpers -----------------------------------------------------------------------------


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client, username: str = "op", password: str = PASSWORD):
    page = client.get("/login", follow_redirects=True).text  # logged in already: the home page's form
    r = client.post("/login", data={"csrf_token": csrf(page), "username": username, "password": password})
    assert r.status_code == 303, r.text
    return client.get_cookie("session").value


def log_out(client) -> None:
    page = client.get("/").text
    r = client.post("/logout", data={"csrf_token": csrf(page)})
    assert r.status_code == 303 and r.headers["Location"] == "/login"


def replay(app, cookie: str):
    """A fresh client (another computer) sending only the copied cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def logged_in(client) -> bool:
    """Whether the cookie still opens the UI, the API and the trend pages."""
    page = client.get("/batches")
    api = client.get("/api/batches")
    trends = client.get("/trends/")
    if page.status_code == 200:
        assert api.status_code == 200 and trends.status_code in (200, 403)
        return True
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert api.status_code == 401 and api.json["code"] == "auth_required"
    assert trends.status_code == 302 and trends.headers["Location"].startswith("/login")
    return False


def forge(key: str, payload: dict) -> str:
    """A session cookie as Flask itself would sign it with ``key``."""
    forger = Flask("forger")
    forger.secret_key = key
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps(payload)


def reasons(rt, username: str) -> list[str | None]:
    with rt.transaction() as s:
        user_id = s.scalars(select(users.User.id).where(users.User.username == username)).one()
        rows = s.scalars(select(LoginSession).where(LoginSession.user_id == user_id).order_by(LoginSession.created_at))
        return [r.revoked_reason for r in rows]


def repository_keys() -> set[str]:
    """Every string the repository ever gives as a secret key, plus the known published ones."""
    found = {OLD_DEFAULT_KEY, *secret_key.PUBLISHED}
    pattern = re.compile(r"""(?i)secret[_-]?key["']?\s*[:=]\s*["']([^"'\n]{1,200})["']""")
    env = re.compile(r"BATCHLINE_SECRET_KEY=([^\s\"'`]+)")
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".txt", ".sh", ".env", ""}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found.update(m.group(1) for m in pattern.finditer(text))
        found.update(m.group(1) for m in env.finditer(text))
    return {k for k in found if k}


# --- the secret key ------------------------------------------------------------------------


def test_there_is_no_default_secret_key():
    assert Settings().secret_key == ""
    assert OLD_DEFAULT_KEY not in (ROOT / "engine" / "config.py").read_text()
    assert "secret_key='***'" in repr(Settings(secret_key="k" * 40)) and "kkkk" not in repr(
        Settings(secret_key="k" * 40)
    )


def test_first_start_makes_a_0600_key_file_beside_the_sqlite_database_and_reuses_it(tmp_path, sqlite_template):
    db = tmp_path / "plant" / "batchline.db"
    db.parent.mkdir()
    db.write_bytes(sqlite_template.read_bytes())
    rt = make_runtime(f"sqlite:///{db}", secret_key="")
    try:
        app = create_app(runtime=rt)
        key_file = tmp_path / "plant" / "batchline.db.key"
        assert key_file.is_file()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert app.secret_key == key_file.read_text().strip() and len(app.secret_key) >= 60
        assert app.secret_key != OLD_DEFAULT_KEY
        assert app.extensions["batchline_secret_key_source"] == f"generated on first start into key file {key_file}"
        again = create_app(runtime=rt)
        assert again.secret_key == app.secret_key
        assert again.extensions["batchline_secret_key_source"] == f"key file {key_file}"
        assert app.secret_key not in again.extensions["batchline_secret_key_source"]
    finally:
        rt.close()


def test_postgresql_keeps_the_key_file_in_key_dir_or_var(tmp_path):
    pg = "postgresql+psycopg://postgres@127.0.0.1:5432/plant"
    assert secret_key.key_file(load_settings(database_url=pg)) == Path("var") / "batchline.key"
    assert secret_key.key_file(load_settings(database_url="sqlite:///:memory:")) == Path("var") / "batchline.key"
    settings = load_settings(database_url=pg, key_dir=str(tmp_path / "keys"))
    key = secret_key.resolve(settings)
    path = tmp_path / "keys" / "batchline.key"
    assert key.source == f"generated on first start into key file {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key.resolve(settings).value == key.value == path.read_text().strip()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_key_file_others_can_read_or_write_stops_the_app(tmp_path, mode):
    settings = load_settings(database_url="sqlite:///:memory:", key_dir=str(tmp_path))
    secret_key.resolve(settings)
    (tmp_path / "batchline.key").chmod(mode)
    with pytest.raises(secret_key.SecretKeyError) as refused:
        secret_key.resolve(settings)
    assert refused.value.code == "secret_key_unsafe"
    assert f"mode {mode:04o}" in refused.value.message and "0600" in refused.value.message


def test_a_key_file_that_is_a_link_or_someone_elses_or_cannot_be_made_stops_the_app(tmp_path):
    settings = load_settings(database_url="sqlite:///:memory:", key_dir=str(tmp_path))
    real = tmp_path / "elsewhere.key"
    real.write_text("x" * 64)
    real.chmod(0o600)
    (tmp_path / "batchline.key").symlink_to(real)
    with pytest.raises(secret_key.SecretKeyError, match="cannot read the key file"):
        secret_key.resolve(settings)
    (tmp_path / "batchline.key").unlink()
    if os.geteuid() == 0:  # only root can give a file away
        real.rename(tmp_path / "batchline.key")
        os.chown(tmp_path / "batchline.key", 12345, 12345)
        with pytest.raises(secret_key.SecretKeyError, match="belongs to another user"):
            secret_key.resolve(settings)
    (tmp_path / "not-a-dir").write_text("")
    blocked = load_settings(database_url="sqlite:///:memory:", key_dir=str(tmp_path / "not-a-dir"))
    with pytest.raises(secret_key.SecretKeyError, match="cannot create the key file") as refused:
        secret_key.resolve(blocked)
    assert refused.value.code == "secret_key_unsafe"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "batchline.key").write_text("short\n")
    (empty / "batchline.key").chmod(0o600)
    with pytest.raises(secret_key.SecretKeyError, match="no usable key"):
        secret_key.resolve(load_settings(database_url="sqlite:///:memory:", key_dir=str(empty)))


@pytest.mark.parametrize("key", [OLD_DEFAULT_KEY, "browser-tests-only", "short-but-random-7f3a"])
def test_a_published_or_short_key_in_the_settings_stops_the_app(tmp_path, key):
    rt = make_runtime(f"sqlite:///{tmp_path}/b.db", secret_key=key)
    try:
        with pytest.raises(secret_key.SecretKeyError) as refused:
            create_app(runtime=rt)
        assert refused.value.code == "secret_key_weak"
    finally:
        rt.close()


def test_a_given_key_is_used_and_no_key_file_is_made(tmp_path):
    key = "a-long-random-key-given-by-the-operator-" + "9" * 20
    rt = make_runtime(f"sqlite:///{tmp_path}/b.db", secret_key=key)
    try:
        app = create_app(runtime=rt)
        assert app.secret_key == key and not (tmp_path / "b.db.key").exists()
        assert app.extensions["batchline_secret_key_source"] == "settings (BATCHLINE_SECRET_KEY or the config file)"
    finally:
        rt.close()


# --- forged cookies ----------------------------------------------------------------------


def test_the_repository_scan_finds_the_old_default_and_the_test_keys():
    keys = repository_keys()
    assert {OLD_DEFAULT_KEY, "browser-tests-only"} <= keys


def test_cookies_signed_with_any_key_in_the_repository_get_nothing(app, runtime):
    assert app.secret_key not in repository_keys()
    now = time.time()
    for key in sorted(repository_keys()):
        for payload in (
            {"user": "uu", "last_seen": now},  # what opened an admin session before issue 8
            {"user": "uu", "last_seen": int(now), "csrf": "x" * 43, "signed_once": True},
            {"sid": "A" * 43, "csrf": "x" * 43, "signed_once": True},
        ):
            forged = replay(app, forge(key, payload))
            assert not logged_in(forged), (key, payload)
            r = forged.get("/api/users")
            assert r.status_code == 401 and r.json["code"] == "auth_required"


def test_even_the_real_key_opens_nothing_without_a_live_server_side_session(app, runtime):
    """A stolen key alone is not enough: the cookie must name a live session row."""
    assert not logged_in(replay(app, forge(app.secret_key, {"user": "uu", "last_seen": time.time()})))
    assert not logged_in(replay(app, forge(app.secret_key, {"sid": "A" * 43})))
    # the control: Flask's serializer with the real key and a live session's token does log in,
    # so the refusals above are the server's doing, not a badly forged cookie
    token = sessions.open_session(runtime, "uu")
    assert logged_in(replay(app, forge(app.secret_key, {"sid": token})))


# --- server-side sessions ----------------------------------------------------------------


def test_the_cookie_holds_only_a_token_and_the_table_only_its_hash(app, runtime):
    browser = app.test_client()
    cookie = log_in(browser, "op")
    content = app.session_interface.get_signing_serializer(app).loads(cookie)
    # after_login: a flag the first page after the login takes (kept form values come back there)
    assert set(content) == {"sid", "csrf", "signed_once", "after_login"}
    with runtime.transaction() as s:
        (row,) = s.scalars(select(LoginSession)).all()
        assert row.id == hashlib.sha256(content["sid"].encode()).hexdigest()
        assert row.revoked_at is None and row.last_seen_at >= row.created_at


def test_logout_revokes_the_session_and_a_copied_cookie_gets_nothing(app, runtime):
    browser = app.test_client()
    cookie = log_in(browser, "op")
    copy = replay(app, cookie)
    assert logged_in(copy)
    log_out(browser)
    assert not logged_in(replay(app, cookie))
    assert not logged_in(copy)
    assert reasons(runtime, "op") == ["logout"]
    with runtime.transaction() as s:
        from engine.models import AuditEvent

        actions = [a for a in s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == "op"))]
    assert actions[-2:] == ["auth.login", "auth.logout"]


def test_a_new_login_is_a_new_session(app, runtime):
    browser = app.test_client()
    first = log_in(browser, "op")
    elsewhere = log_in(app.test_client(), "op")
    second = log_in(browser, "op")
    assert first != second
    assert not logged_in(replay(app, first)) and logged_in(replay(app, second))
    log_out(browser)
    assert not logged_in(replay(app, second))
    assert logged_in(replay(app, elsewhere))  # another tablet's session is its own
    assert reasons(runtime, "op") == ["replaced_by_login", None, "logout"]


@pytest.mark.parametrize("how", ["engine", "api"])
def test_deactivation_ends_every_session_of_the_person(app, runtime, client, how):
    tablets = [app.test_client() for _ in range(2)]
    cookies = [log_in(t, "op") for t in tablets]
    other = app.test_client()
    log_in(other, "sv")
    if how == "engine":
        users.set_active(runtime, "op", False, by="uu", reason="left the company")
    else:
        admin = {"Authorization": "Bearer " + users.create_token(runtime, "uu", "t", by="test")}
        r = client.post("/api/users/op/deactivate", json={"reason": "left the company"}, headers=admin)
        assert r.status_code == 200, r.json
    assert reasons(runtime, "op") == ["account_deactivated", "account_deactivated"]
    assert sessions.live_sessions(runtime, "op") == 0
    for cookie in cookies:
        assert not logged_in(replay(app, cookie))
    assert logged_in(other)  # someone else's session is untouched
    users.set_active(runtime, "op", True, by="uu", reason="back")
    assert not any(logged_in(replay(app, c)) for c in cookies)  # reactivation revives nothing


def test_a_locked_account_loses_its_sessions_and_unlocking_does_not_revive_them(app, runtime):
    browser = app.test_client()
    cookie = log_in(browser, "op")
    for _ in range(runtime.settings.lockout_attempts):
        with pytest.raises(users.AuthFailed):
            users.authenticate(runtime, "op", "wrong password!", purpose="signature")
    assert reasons(runtime, "op") == ["account_locked"]
    users.unlock(runtime, "op", by="uu", reason="verified by phone")
    assert not logged_in(replay(app, cookie))
    assert not logged_in(browser)


def test_a_new_password_ends_the_sessions(app, runtime):
    browser = app.test_client()
    cookie = log_in(browser, "op")
    users.set_password(runtime, "op", "a brand new passphrase", by="uu")
    assert reasons(runtime, "op") == ["password_changed"]
    assert not logged_in(replay(app, cookie))


def test_the_inactivity_timeout_is_kept_on_the_server(app, runtime):
    browser = app.test_client()
    cookie = log_in(browser, "op")
    minutes = runtime.settings.session_timeout_minutes
    # activity keeps the session: twice most of the timeout, with a request in between
    idle_sessions(runtime, "op", minutes * 60 - 60)
    assert logged_in(browser)
    idle_sessions(runtime, "op", minutes * 60 - 60)
    assert logged_in(browser)
    # a whole timeout without a request ends it, whatever the cookie says
    idle_sessions(runtime, "op", minutes * 60 + 5)
    r = browser.get("/batches")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert f"Your session ended after {minutes} minutes without activity." in browser.get(r.headers["Location"]).text
    assert reasons(runtime, "op") == ["timeout"]
    assert not logged_in(replay(app, cookie))


def test_session_rules_below_the_web_layer(runtime):
    token = sessions.open_session(runtime, "op")
    assert sessions.resume(runtime, token).username == "op"
    for bad in (None, "", "x", 12, "A" * 43, token + "x"):
        with pytest.raises(sessions.SessionEnded) as ended:
            sessions.resume(runtime, bad)
        assert ended.value.reason is None
    idle_sessions(runtime, "op", runtime.settings.session_timeout_minutes * 60 + 1)
    with pytest.raises(sessions.SessionEnded) as ended:
        sessions.resume(runtime, token)
    assert ended.value.reason is SessionEnd.TIMEOUT
    with pytest.raises(sessions.SessionEnded) as ended:  # and it stays ended
        sessions.resume(runtime, token)
    assert ended.value.reason is None
    second = sessions.open_session(runtime, "op")
    assert sessions.end(runtime, second) is True
    assert sessions.end(runtime, second) is False
    with pytest.raises(sessions.SessionEnded):
        sessions.resume(runtime, second)
    third = sessions.open_session(runtime, "op")
    users.set_active(runtime, "op", False, by="uu", reason="test")
    with pytest.raises(sessions.SessionEnded):
        sessions.resume(runtime, third)
    assert reasons(runtime, "op") == ["timeout", "logout", "account_deactivated"]


# --- cookie flags and headers ------------------------------------------------------------


def set_cookie_of_login(app) -> str:
    r = app.test_client().get("/login")
    return r.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "overrides,secure",
    [({}, True), ({"demo": True}, False), ({"session_cookie_secure": False}, False)],
)
def test_session_cookie_flags(db_url, overrides, secure):
    rt = make_runtime(db_url, **overrides)
    try:
        cookie = set_cookie_of_login(create_app(runtime=rt))
    finally:
        rt.close()
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("; Secure" in cookie) is secure


def test_the_login_page_says_when_only_https_would_keep_the_login(app, db_url):
    c = app.test_client()
    assert "https_needed" in c.get("/login", base_url="http://mes.plant.example").text
    assert "https_needed" in c.get("/login", base_url="http://10.1.2.3:5000").text
    for fine in ("https://mes.plant.example", "http://127.0.0.1:5000", "http://localhost", "http://[::1]:8000"):
        assert "https_needed" not in c.get("/login", base_url=fine).text, fine
    rt = make_runtime(db_url, session_cookie_secure=False)
    try:
        plain = create_app(runtime=rt).test_client()
        assert "https_needed" not in plain.get("/login", base_url="http://mes.plant.example").text
    finally:
        rt.close()


def test_hsts_only_over_https(app, runtime):
    c = app.test_client()
    assert "Strict-Transport-Security" not in c.get("/api/health").headers
    assert c.get("/api/health", base_url="https://localhost").headers["Strict-Transport-Security"] == "max-age=31536000"
    assert c.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"] == "max-age=31536000"
    # a client's own X-Forwarded-Proto is not believed unless a proxy is trusted
    spoofed = c.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in spoofed.headers


def test_hsts_behind_a_trusted_proxy(db_url):
    rt = make_runtime(db_url, trust_forwarded_proto=True)
    try:
        c = create_app(runtime=rt).test_client()
        proxied = c.get("/api/health", headers={"X-Forwarded-Proto": "https"})
        assert proxied.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in c.get("/api/health").headers
        assert "; Secure" in c.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
    finally:
        rt.close()


def test_every_api_answer_and_page_has_nosniff_and_no_store(app, client, anon):
    browser = app.test_client()
    log_in(browser, "op")
    answers = {
        "health": anon.get("/api/health"),
        "list": client.get("/api/batches"),
        "openapi": anon.get("/api/openapi.json"),
        "401": anon.get("/api/batches"),
        "404": client.get("/api/batches/NOPE-1"),
        "405": client.delete("/api/health"),
        "422": client.post("/api/batches", json={"nonsense": 1}),
        "unknown path": anon.get("/api/no/such/thing"),
        "login page": anon.get("/login"),
        "redirect to login": anon.get("/batches"),
        "batch list page": browser.get("/batches"),
        "page 404": browser.get("/batches/NOPE-1"),
        "trends": browser.get("/trends/"),
        "api docs": anon.get("/api/docs"),
    }
    for name, r in answers.items():
        assert r.headers.get("X-Content-Type-Options") == "nosniff", name
        assert r.headers.get("Cache-Control") == "no-store", name
    static = anon.get("/static/ui/ui.css")
    assert static.status_code == 200 and static.headers["X-Content-Type-Options"] == "nosniff"
    assert static.headers.get("Cache-Control") != "no-store"  # scripts and styles may be cached


def test_405_answers_carry_allow(app, client, anon):
    r = client.delete("/api/health")
    assert r.status_code == 405 and r.json["code"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    assert r.mimetype == "application/json"
    r = client.put("/api/batches")
    assert r.status_code == 405 and set(r.headers["Allow"].replace(" ", "").split(",")) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    }
    r = anon.get("/logout")
    assert r.status_code == 405 and set(r.headers["Allow"].replace(" ", "").split(",")) == {"OPTIONS", "POST"}


# --- batchline serve, as a real process ---------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batchline(tmp_path, *args, env=None, **kwargs):
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_")}
    clean.update(PYTHONPATH=str(ROOT), BATCHLINE_DATABASE_URL=f"sqlite:///{tmp_path}/var/plant.db", **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", *args],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _serve_until_up(tmp_path) -> tuple[str, str]:
    """Start ``batchline serve``, wait for it to answer, stop it; returns its stderr and the URL it used."""
    import urllib.request

    port = _free_port()
    server = _batchline(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as answer:
                    assert answer.headers["X-Content-Type-Options"] == "nosniff"
                    assert answer.headers["Cache-Control"] == "no-store"
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    return err, f"http://127.0.0.1:{port}"


def test_serve_makes_the_key_file_says_where_the_key_came_from_and_refuses_an_unsafe_one(tmp_path):
    upgrade = _batchline(tmp_path, "db", "upgrade")
    assert upgrade.wait(timeout=120) == 0, upgrade.communicate()
    key_file = tmp_path / "var" / "plant.db.key"
    assert not key_file.exists()

    err, _ = _serve_until_up(tmp_path)
    assert f"secret key: generated on first start into key file {key_file}" in err
    assert "session cookie: Secure" in err
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) >= 60
    assert key not in err

    err, _ = _serve_until_up(tmp_path)
    assert f"secret key: key file {key_file}" in err and key not in err
    assert key_file.read_text().strip() == key  # reused, not replaced

    key_file.chmod(0o644)
    refused = _batchline(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(_free_port()))
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2, out + err
    assert "error [secret_key_unsafe]" in err and "mode 0644" in err and "serving on" not in out + err
    assert key not in out + err

    key_file.chmod(0o600)
    weak = _batchline(tmp_path, "serve", "--port", str(_free_port()), env={"BATCHLINE_SECRET_KEY": OLD_DEFAULT_KEY})
    out, err = weak.communicate(timeout=60)
    assert weak.returncode == 2 and "error [secret_key_weak]" in err, out + err

    # the audit key is checked at start-up too, not at the first step (a 503 then)
    err, _ = _serve_until_up(tmp_path)
    audit_key = next(line for line in err.splitlines() if line.startswith("audit key: key file "))
    audit_file = Path(audit_key.removeprefix("audit key: key file "))
    assert stat.S_IMODE(audit_file.stat().st_mode) == 0o600
    audit_file.chmod(0o644)
    exposed = _batchline(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(_free_port()))
    out, err = exposed.communicate(timeout=60)
    assert exposed.returncode == 2 and "error [audit_key_exposed]" in err and "serving on" not in out + err, out + err
    audit_file.chmod(0o600)
