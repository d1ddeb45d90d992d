"""Accounts below the web layer (SQLite and PostgreSQL): a lock ends by itself and each
further lock lasts twice as long; the rate limits refuse before any password is checked;
the last administrator stays; reactivation; expired passwords stop tokens; an unknown
id costs what a wrong password costs and is never written into the audit trail."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from engine import users
from engine.errors import Conflict, InvalidInput
from engine.models import AuditEvent, User, utcnow
from tests.support import PASSWORD, make_runtime, person

WRONG = "not the password at all"


def make(db_url, **overrides):
    rt = make_runtime(db_url, **overrides)
    users.create_user(rt, "root", "Root Admin", ["admin"], by="test", password=PASSWORD)
    users.create_user(rt, "op", "Op Erator", ["operator"], by="test", password=PASSWORD)
    users.create_user(rt, "erp", "ERP", ["service"], by="test", kind="service")
    return rt


@pytest.fixture
def acc(db_url):
    rt = make(db_url)
    yield rt
    rt.close()


def fail(rt, username, times, client=None, password=WRONG):
    codes = []
    for _ in range(times):
        with pytest.raises((users.AuthFailed, users.TooManyAttempts)) as exc:
            users.authenticate(rt, username, password, client=client)
        codes.append(exc.value.code)
    return codes


def row(rt, username):
    with rt.transaction() as s:
        return s.scalars(select(User).where(User.username == username)).one()


def audit(rt, **where):
    with rt.transaction() as s:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(stmt))


def end_lock(rt, username):
    """Time passes: the lock's end is now in the past."""
    with rt.transaction() as s:
        s.execute(update(User).where(User.username == username).values(locked_until=utcnow() - timedelta(seconds=1)))


def test_lock_ends_by_itself_and_each_further_lock_lasts_twice_as_long(db_url):
    rt = make(db_url, lockout_minutes=15, lockout_max_minutes=40, throttle_per_account=0)
    try:
        assert fail(rt, "op", 5) == ["auth_failed"] * 4 + ["account_locked"]
        u = row(rt, "op")
        assert u.locked_until - u.locked_at == timedelta(minutes=15) and u.lock_count == 1
        # locked: even the right password is refused, and not checked
        with pytest.raises(users.AuthFailed) as exc:
            users.authenticate(rt, "op", PASSWORD)
        assert exc.value.code == "account_locked" and exc.value.details["locked_until"] == u.locked_until.isoformat()
        assert users.list_users(rt)[1]["locked"] is True
        end_lock(rt, "op")
        assert fail(rt, "op", 5)[-1] == "account_locked"
        u = row(rt, "op")
        assert u.locked_until - u.locked_at == timedelta(minutes=30) and u.lock_count == 2
        end_lock(rt, "op")
        fail(rt, "op", 5)
        u = row(rt, "op")
        assert u.locked_until - u.locked_at == timedelta(minutes=40) and u.lock_count == 3  # capped
        end_lock(rt, "op")
        assert users.authenticate(rt, "op", PASSWORD).username == "op"  # released
        u = row(rt, "op")
        assert (u.failed_logins, u.lock_count, u.locked_at) == (0, 0, None)  # the back-off starts again
        fail(rt, "op", 5)
        u = row(rt, "op")
        assert u.locked_until - u.locked_at == timedelta(minutes=15)
        actions = [e.action for e in audit(rt, object_id="op")]
        assert actions.count("user.locked") == 4 and actions.count("user.lock_expired") == 3
        with rt.transaction() as s:
            events = [t for (t,) in s.execute(text("SELECT type FROM outbox_event"))]
        assert events.count("org.batchline.security.user_locked") == 4
    finally:
        rt.close()


def test_lockout_minutes_zero_locks_until_an_administrator_unlocks(db_url):
    rt = make(db_url, lockout_minutes=0)
    try:
        fail(rt, "op", 5)
        assert row(rt, "op").locked_until is None and row(rt, "op").locked_at is not None
        users.unlock(rt, "op", by="root", reason="called the help desk")
        assert users.authenticate(rt, "op", PASSWORD).username == "op"
    finally:
        rt.close()


def test_admin_unlocks_at_once_and_the_server_operator_breaks_glass(acc):
    fail(acc, "root", 5)
    assert users.unlock(acc, "root", by="uu", reason="identity confirmed")["locked"] is False
    fail(acc, "root", 5)
    with pytest.raises(InvalidInput) as exc:
        users.unlock(acc, "root", local=True, reason="  ")
    assert exc.value.code == "reason_required"
    users.unlock(acc, "root", local=True, reason="every administrator locked out; ticket 4711")
    assert users.authenticate(acc, "root", PASSWORD).username == "root"
    unlocks = audit(acc, action="user.unlock")
    assert unlocks[0].user == "uu"
    assert unlocks[1].user.startswith("local-operator:") and "@" in unlocks[1].user
    assert (
        '"break_glass": true' in unlocks[1].new and unlocks[1].reason == "every administrator locked out; ticket 4711"
    )


def test_last_active_admin_stays_and_reactivation_is_audited(acc):
    with pytest.raises(Conflict) as exc:
        users.set_active(acc, "root", False, by="root", reason="leaving")
    assert exc.value.code == "last_admin"
    with pytest.raises(Conflict) as exc:
        users.set_roles(acc, "root", ["operator"], by="root", reason="demote")
    assert exc.value.code == "last_admin"
    users.create_user(acc, "root2", "Second Admin", ["admin"], by="root", password=PASSWORD)
    assert users.set_active(acc, "root", False, by="root2", reason="leaving")["active"] is False
    with pytest.raises(Conflict) as exc:  # root2 is the last one now
        users.set_active(acc, "root2", False, by="root2", reason="me too")
    assert exc.value.code == "last_admin"
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(acc, "root", PASSWORD)
    assert exc.value.code == "account_inactive"
    assert users.reactivate(acc, "root", by="root2", reason="back from leave")["active"] is True
    assert users.authenticate(acc, "root", PASSWORD).username == "root"
    with pytest.raises(Conflict) as exc:
        users.reactivate(acc, "root", by="root2", reason="again")
    assert exc.value.code == "user_active"
    with pytest.raises(Conflict) as exc:  # ids are never reused
        users.create_user(acc, "root", "Someone Else", ["operator"], by="root2", password=PASSWORD)
    assert exc.value.code == "user_exists"
    (entry,) = audit(acc, action="user.reactivate")
    assert (entry.user, entry.object_id, entry.reason, entry.old, entry.new) == (
        "root2",
        "root",
        "back from leave",
        "false",
        "true",
    )


def test_tokens_stop_when_the_password_expires_until_it_is_changed(acc):
    token = users.create_token(acc, "op", "script", by="root")
    service = users.create_token(acc, "erp", "erp", by="root")
    assert users.token_person(acc, token).username == "op"
    with acc.transaction() as s:
        s.execute(update(User).values(password_changed_at=utcnow() - timedelta(days=181)))
    with pytest.raises(users.AuthFailed) as exc:
        users.token_person(acc, token)
    assert exc.value.code == "password_expired"
    assert users.token_person(acc, service).username == "erp"  # no password, nothing expires
    users.set_password(acc, "op", "a brand new passphrase", by="root")
    assert users.token_person(acc, token).username == "op"


def test_unknown_ids_are_not_written_into_the_audit_trail(acc):
    typed = ["<script>alert(1)</script>", PASSWORD, "x" * 150, "admin\u202e"]
    for name in typed:
        with pytest.raises(users.AuthFailed) as exc:
            users.authenticate(acc, name, WRONG, client="10.1.2.3")
        assert exc.value.code == "auth_failed" and exc.value.message == "user id or password is wrong"
    entries = audit(acc, action="auth.login_failed")
    assert [(e.user, e.object_id) for e in entries] == [("unknown", "unknown")] * 4
    for e, name in zip(entries, typed):
        text_of = " ".join(str(v) for v in (e.user, e.object_id, e.field, e.old, e.new, e.reason))
        assert name not in text_of and name[:8] not in text_of
        assert e.reason.startswith("unknown user id (fingerprint ") and e.reason.endswith(" from 10.1.2.3")
        assert f", {len(name)} characters)" in e.reason
    fingerprints = [e.reason.split("fingerprint ")[1][:16] for e in entries]
    assert len(set(fingerprints)) == 4
    with pytest.raises(users.AuthFailed):  # the same id again: the same fingerprint, to correlate
        users.authenticate(acc, typed[0], WRONG)
    assert audit(acc, action="auth.login_failed")[-1].reason.split("fingerprint ")[1][:16] == fingerprints[0]


def test_an_unknown_id_costs_what_a_wrong_password_costs(db_url):
    """On main an unknown id answered in 7 ms, a wrong password in 156 ms."""
    rt = make(db_url, argon2_time_cost=2, argon2_memory_kib=32768, throttle_per_address=0, throttle_per_account=0)
    rt_hashes = make_runtime(db_url, argon2_time_cost=2, argon2_memory_kib=32768)
    try:
        users.set_password(rt_hashes, "op", PASSWORD + "!", by="test")  # a hash of the measured cost
        for kind in ("ghost", "op"):  # warm up (dummy hash made once per process)
            with pytest.raises(users.AuthFailed):
                users.authenticate(rt, kind, WRONG, purpose="signature")
        users.unlock(rt, "op", by="test", reason="warm-up")

        def median(username):
            times = []
            for _ in range(4):
                start = time.perf_counter()
                with pytest.raises(users.AuthFailed):
                    users.authenticate(rt, username, WRONG, purpose="signature")
                times.append(time.perf_counter() - start)
            users.unlock(rt, "op", by="test", reason="measured")
            return statistics.median(times)

        unknown = median("no-such-user-here")
        wrong = median("op")
        assert wrong / 3 < unknown < wrong * 3, (unknown, wrong)
        assert unknown > 0.005  # a verification was done at all (argon2 at this cost takes far longer)
    finally:
        rt_hashes.close()
        rt.close()


def test_rate_limits_refuse_before_any_password_is_checked(db_url):
    rt = make(db_url, throttle_per_address=3, throttle_per_account=4, throttle_window_seconds=60, lockout_attempts=50)
    try:
        # a burst from one address, spread over accounts: the 4th attempt is refused
        assert fail(rt, "op", 2, client="10.0.0.1") == ["auth_failed"] * 2
        assert fail(rt, "ghost", 1, client="10.0.0.1") == ["auth_failed"]
        with pytest.raises(users.TooManyAttempts) as exc:
            users.authenticate(rt, "root", PASSWORD, client="10.0.0.1")  # even a right password
        assert exc.value.code == "too_many_attempts" and exc.value.status == 429
        assert 55 <= exc.value.retry_after <= 60 and exc.value.details == {"retry_after_seconds": exc.value.retry_after}
        # another address is not affected, nor another account
        assert users.authenticate(rt, "root", PASSWORD, client="10.0.0.2").username == "root"
        assert users.authenticate(rt, "op", PASSWORD, client="10.0.0.2").username == "op"
        # a throttled attempt neither guessed nor counted
        assert row(rt, "op").failed_logins == 0
        # per account: four addresses, one account -> the account is refused from a fifth
        for n in range(4):
            assert fail(rt, "op", 1, client=f"10.0.1.{n}") == ["auth_failed"]
        with pytest.raises(users.TooManyAttempts):
            users.authenticate(rt, "op", PASSWORD, client="10.0.1.9")
        assert users.authenticate(rt, "root", PASSWORD, client="10.0.1.9").username == "root"
        throttled = audit(rt, action="auth.throttled")
        assert [(e.object_id, e.field) for e in throttled] == [("unknown", "address"), ("op", "account")]
        # the window passes: allowed again
        with rt.transaction() as s:
            s.execute(text("UPDATE auth_failure SET at = :t"), {"t": utcnow() - timedelta(seconds=61)})
        assert users.authenticate(rt, "op", PASSWORD, client="10.0.0.1").username == "op"
    finally:
        rt.close()


def test_an_idempotency_key_is_scoped_to_its_user(rt):
    """On main op.ben, sending op.anna's key with the same body, received op.anna's
    stored answer (scope: the batch only)."""
    from engine import batches
    from tests.engine.engine_helpers import load, ready

    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "IDEM-1", user="sv.sam")
    task_id = ready(rt, "IDEM-1")["take_sample"]["id"]
    data = {"n": 1, "done": False}
    first = batches.complete_task(
        rt, "IDEM-1", task_id, data, user="op.anna", actor=person("op.anna"), idempotency_key="k-1"
    )
    again = batches.complete_task(
        rt, "IDEM-1", task_id, data, user="op.anna", actor=person("op.anna"), idempotency_key="k-1"
    )
    assert again.replayed and again.body == first.body  # the same person repeating: replayed
    assert batches.answered(rt, "IDEM-1", "op.anna", "k-1") and not batches.answered(rt, "IDEM-1", "op.ben", "k-1")
    with pytest.raises(Conflict) as exc:  # another person, same key and body: a request of their own
        batches.complete_task(rt, "IDEM-1", task_id, data, user="op.ben", actor=person("op.ben"), idempotency_key="k-1")
    assert exc.value.code == "task_not_ready"
    next_task = ready(rt, "IDEM-1")["take_sample"]["id"]
    mine = batches.complete_task(
        rt, "IDEM-1", next_task, data, user="op.ben", actor=person("op.ben"), idempotency_key="k-1"
    )
    assert not mine.replayed and mine.body["step"]["user"] == "op.ben" and mine.body["step"]["seq"] == 2
