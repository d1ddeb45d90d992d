"""Signing in as a person of a real OpenLDAP directory (SQLite and PostgreSQL): the first
sign-in makes the person with the roles of their groups (nested ones too), role changes
are audited, StartTLS is used and checked, wrong passwords count toward the Batchline
lockout, empty passwords and hostile user ids never reach the directory, and a directory
that is down stops only its own people."""

from __future__ import annotations

import threading

import pytest

from engine import users
from engine.identity import people
from engine.identity.ldap_directory import Directory, DirectoryUnavailable
from tests.identity.conftest import ldap_runtime_for
from tests.identity.ldap_helpers import account, actions, failures_counted, new_uid, trail
from tests.identity.slapd import free_port, password_of
from tests.support import PASSWORD


def test_first_sign_in_creates_the_person_with_the_roles_of_their_groups(ldap_runtime):
    rt = ldap_runtime
    assert account(rt, "anna") is None
    p = users.authenticate(rt, "anna", password_of("anna"), client="10.0.0.7")
    assert (p.username, p.printed_name, p.roles, p.kind) == ("anna", "Anna Directory", ("operator",), "person")
    u = account(rt, "anna")
    assert u.source == "ldap" and u.external_id and u.password_hash is None and u.active
    assert actions(rt, "anna") == ["user.create", "auth.login"]
    # the next sign-in finds the same person (by the directory's id), no second account
    again = users.authenticate(rt, "anna", password_of("anna"))
    assert again == p and account(rt, "anna").id == u.id


def test_a_group_inside_a_mapped_group_gives_its_role_and_a_loop_of_groups_ends(ldap_runtime):
    rt = ldap_runtime
    assert users.authenticate(rt, "carl", password_of("carl")).roles == ("operator",)  # shift-a is in operators
    with pytest.raises(users.AuthFailed) as exc:  # erik: only loop-a <-> loop-b, no mapped group
        users.authenticate(rt, "erik", password_of("erik"))
    assert exc.value.code == "no_role" and account(rt, "erik") is None


def test_a_depth_bound_stops_the_search_for_groups_of_groups(ldap_runtime, slapd):
    shallow = ldap_runtime_for(ldap_runtime.settings.database_url, slapd.settings(ldap_nested_depth=1))
    try:
        with pytest.raises(users.AuthFailed) as exc:
            users.authenticate(shallow, "carl", password_of("carl"))
        assert exc.value.code == "no_role"
    finally:
        shallow.close()


def test_a_change_of_groups_changes_the_roles_at_the_next_sign_in_audited(ldap_runtime, slapd):
    rt = ldap_runtime
    uid = new_uid()
    slapd.add_person(uid, "batchline-operators")
    assert users.authenticate(rt, uid, password_of(uid)).roles == ("operator",)
    slapd.join(uid, "batchline-qa")
    assert users.authenticate(rt, uid, password_of(uid), purpose="signature").roles == ("operator", "qa")
    change = [e for e in trail(rt, uid) if e.action == "user.roles"]
    assert len(change) == 1 and change[0].user == people.DIRECTORY
    assert '"operator"' in change[0].old and '"qa"' in change[0].new


def test_starttls_is_used_and_a_certificate_from_another_ca_is_refused(ldap_runtime, slapd):
    rt = ldap_runtime
    url = rt.settings.database_url
    # the test slapd refuses any operation without TLS (security tls=1): this sign-in went over StartTLS
    assert users.authenticate(rt, "dora", password_of("dora")).roles == ("qa",)
    for settings in (
        slapd.settings(ldap_ca_file=slapd.other_ca_file),  # not our CA: the TLS handshake fails
        slapd.settings(ldap_starttls=False, ldap_allow_plain=True),  # in clear: the directory refuses
        slapd.settings(ldap_starttls=False),  # in clear without ldap_allow_plain: Batchline refuses
    ):
        other = ldap_runtime_for(url, settings)
        try:
            before = failures_counted(other)
            with pytest.raises(DirectoryUnavailable) as exc:
                users.authenticate(other, "dora", password_of("dora"))
            assert exc.value.status == 503 and exc.value.code == "directory_unavailable"
            assert password_of("dora") not in exc.value.message
            assert failures_counted(other) == before and account(other, "dora").failed_logins == 0
        finally:
            other.close()


def test_ldaps_works_and_checks_the_certificate_too(ldap_runtime, slapd):
    url = ldap_runtime.settings.database_url
    for ca, works in ((slapd.ca_file, True), (slapd.other_ca_file, False)):
        other = ldap_runtime_for(url, slapd.settings(ldap_url=slapd.ldaps_url, ldap_ca_file=ca))
        try:
            if works:
                assert users.authenticate(other, "dora", password_of("dora")).roles == ("qa",)
            else:
                with pytest.raises(DirectoryUnavailable):
                    users.authenticate(other, "dora", password_of("dora"))
        finally:
            other.close()


def test_a_wrong_directory_password_counts_toward_the_lockout_audited(ldap_runtime):
    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    for n in range(1, 5):
        with pytest.raises(users.AuthFailed) as exc:
            users.authenticate(rt, "anna", "not her password", client="10.1.1.1")
        assert exc.value.code == "auth_failed" and account(rt, "anna").failed_logins == n
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, "anna", "not her password", purpose="signature")
    assert exc.value.code == "account_locked"
    # locked: even the right password is not checked (not sent to the directory)
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, "anna", password_of("anna"))
    assert exc.value.code == "account_locked"
    events = trail(rt, "anna")
    wrong = [e.reason for e in events if e.action in ("auth.login_failed", "auth.signature_failed")]
    assert wrong[:5] == [f"wrong password ({n} in a row)" + (" from 10.1.1.1" if n < 5 else "") for n in range(1, 6)]
    assert "user.locked" in [e.action for e in events]
    assert all("not her password" not in (e.reason or "") for e in events)
    users.unlock(rt, "anna", by="root", reason="forgot her new password")
    assert users.authenticate(rt, "anna", password_of("anna")).username == "anna"
    assert account(rt, "anna").failed_logins == 0


def test_a_wrong_password_at_a_first_sign_in_is_an_unknown_id_in_the_trail(ldap_runtime):
    rt = ldap_runtime
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, "dora", "guess")
    assert exc.value.code == "auth_failed" and account(rt, "dora") is None
    assert actions(rt, "unknown") == ["auth.login_failed"] and failures_counted(rt) == 1


def test_an_empty_password_is_refused_before_any_bind(ldap_runtime, slapd):
    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    # a directory nobody listens on: an empty password never tries to reach it
    down = ldap_runtime_for(rt.settings.database_url, slapd.settings(ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    try:
        for name in ("anna", "dora"):
            for empty in ("", None, 0, []):
                with pytest.raises(users.AuthFailed) as exc:
                    users.authenticate(down, name, empty)
                assert exc.value.code == "auth_failed"  # not directory_unavailable
    finally:
        down.close()
    assert account(rt, "anna").failed_logins == 4  # counted like any wrong password
    # and the directory itself never sees an empty password as a bind
    with Directory(rt.settings) as d:
        entry = d.find("anna")
        assert entry is not None and d.check_password(entry, "") is False


@pytest.mark.parametrize(
    "name",
    ["*", ")(uid=*", "anna)(uid=*", "an*", "anna\x00", "ännä", "anna*)(|(uid=*", "(uid=anna)", "ANNA", "a" * 200],
)
def test_a_hostile_user_id_never_matches_an_entry(ldap_runtime, name):
    rt = ldap_runtime
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, name, password_of("anna"))
    assert exc.value.code == "auth_failed"
    assert account(rt, "anna") is None
    with Directory(rt.settings) as d:
        assert d.find(name) is None


def test_a_directory_that_is_down_stops_only_its_own_people(ldap_runtime, slapd):
    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    down = ldap_runtime_for(rt.settings.database_url, slapd.settings(ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    try:
        before = failures_counted(down)
        assert users.authenticate(down, "root", PASSWORD).roles == ("admin",)  # break glass
        for name in ("anna", "someone"):
            with pytest.raises(DirectoryUnavailable) as exc:
                users.authenticate(down, name, password_of("anna"))
            assert exc.value.status == 503 and "directory cannot be reached" in exc.value.message
        assert failures_counted(down) == before and account(down, "anna").failed_logins == 0
        assert "auth.login_failed" not in actions(down, "anna")
    finally:
        down.close()


def test_concurrent_first_sign_ins_of_one_person_make_one_account(ldap_runtime, slapd):
    rt = ldap_runtime
    uid = new_uid()
    slapd.add_person(uid, "batchline-qa")
    results: list = []
    start = threading.Barrier(4)

    def sign_in():
        start.wait()
        try:
            results.append(users.authenticate(rt, uid, password_of(uid)))
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=sign_in) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, users.Person) and r.username == uid for r in results), results
    assert len(results) == 4 and actions(rt, uid).count("user.create") == 1


def test_an_oversized_password_is_a_wrong_one_never_sent_whole(ldap_runtime):
    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    for huge in (password_of("anna") + "x" * 5000, password_of("anna") + "\x00"):
        with pytest.raises(users.AuthFailed) as exc:
            users.authenticate(rt, "anna", huge)
        assert exc.value.code == "auth_failed"
    assert account(rt, "anna").failed_logins == 2
