"""People leave the directory, are renamed, or their name goes to someone new (a real
slapd; SQLite and PostgreSQL): a person whose entry is gone, or who lost every mapped
group, is deactivated at their next sign-in attempt and by the sync, audited, with their
sessions ended; a renamed entry keeps its person; a departed person's user id is never
handed to a newcomer, and a directory person never takes a local account's id."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine import sessions, users
from engine.identity import people
from engine.identity.ldap_signin import DirectoryConflict, sync
from tests.identity.conftest import ldap_runtime_for
from tests.identity.ldap_helpers import account, actions, new_uid, trail
from tests.identity.slapd import free_port, password_of
from tests.support import PASSWORD


def _deactivation(rt, uid: str):
    rows = [e for e in trail(rt, uid) if e.action == "user.deactivate"]
    assert len(rows) == 1, [e.action for e in trail(rt, uid)]
    assert rows[0].user == people.DIRECTORY
    return rows[0]


def test_a_person_removed_from_the_directory_is_deactivated_at_the_next_attempt(ldap_runtime, slapd):
    rt = ldap_runtime
    uid = new_uid()
    slapd.add_person(uid, "batchline-operators")
    users.authenticate(rt, uid, password_of(uid))
    token = sessions.open_session(rt, uid)
    assert sessions.live_sessions(rt, uid) == 1
    slapd.delete(uid)  # ldapdelete against the running server
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, uid, password_of(uid))
    assert exc.value.code == "account_inactive"
    assert not account(rt, uid).active
    assert "no longer in the LDAP directory" in _deactivation(rt, uid).reason
    assert sessions.live_sessions(rt, uid) == 0
    with pytest.raises(sessions.SessionEnded):
        sessions.resume(rt, token)


def test_a_person_who_lost_every_mapped_group_is_deactivated(ldap_runtime, slapd):
    rt = ldap_runtime
    uid = new_uid()
    slapd.add_person(uid, "batchline-qa")
    users.authenticate(rt, uid, password_of(uid))
    slapd.leave_group(uid, "batchline-qa")
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, uid, password_of(uid))
    assert exc.value.code == "no_role" and not account(rt, uid).active
    assert "no group" in _deactivation(rt, uid).reason


def test_the_sync_deactivates_who_left_and_follows_group_changes(ldap_runtime, slapd):
    rt = ldap_runtime
    gone, moved, stays = new_uid("g"), new_uid("m"), new_uid("s")
    for uid in (gone, moved, stays):
        slapd.add_person(uid, "batchline-operators")
        users.authenticate(rt, uid, password_of(uid))
    users.authenticate(rt, "anna", password_of("anna"))
    sid = sessions.open_session(rt, gone)
    slapd.delete(gone)
    slapd.join(moved, "batchline-qa")
    changes = {c["username"]: c for c in sync(rt)}
    assert changes[gone]["change"] == "deactivated" and not account(rt, gone).active
    assert changes[moved] == {
        "username": moved,
        "change": "updated",
        "old": {"roles": ["operator"], "printed_name": moved.title()},
        "new": {"roles": ["operator", "qa"], "printed_name": moved.title()},
    }
    assert stays not in changes and "anna" not in changes
    assert "user.roles" in actions(rt, moved)
    _deactivation(rt, gone)
    assert sessions.live_sessions(rt, gone) == 0
    with pytest.raises(sessions.SessionEnded):
        sessions.resume(rt, sid)
    assert sync(rt) == []  # nothing more to change
    # the CLI prints what it changed
    from web import cli

    slapd.delete(moved)
    result = CliRunner().invoke(cli.main, ["user", "sync-directory"], obj=cli.CliContext(runtime=rt))
    assert result.exit_code == 0, result.output
    assert f"{moved}: deactivated" in result.output
    result = CliRunner().invoke(cli.main, ["user", "sync-directory", "--json"], obj=cli.CliContext(runtime=rt))
    assert result.exit_code == 0 and '"changes": []' in result.output


def test_the_sync_needs_the_directory(ldap_runtime, slapd):
    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    down = ldap_runtime_for(rt.settings.database_url, slapd.settings(ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(users.AuthFailed) as exc:
            sync(down)
        assert exc.value.code == "directory_unavailable"
        assert account(down, "anna").active  # an outage deactivates nobody
    finally:
        down.close()


def test_a_renamed_entry_keeps_its_person(ldap_runtime, slapd):
    rt = ldap_runtime
    old = new_uid("r")
    new = old + "x"
    slapd.add_person(old, "batchline-operators")
    first = users.authenticate(rt, old, password_of(old))
    slapd.rename(old, new)
    # the password stays the entry's: userPassword moved with it
    again = users.authenticate(rt, new, password_of(old))
    assert again.username == old and again.roles == first.roles
    assert account(rt, new) is None and account(rt, old).active
    assert "user.directory_name" in actions(rt, old)
    # the old name is no entry any more: an unknown id, and nobody is deactivated for it
    with pytest.raises(users.AuthFailed) as exc:
        users.authenticate(rt, old, password_of(old))
    assert exc.value.code == "auth_failed" and account(rt, old).active
    assert sync(rt) == []


def test_a_newcomer_with_a_departed_persons_user_id_gets_identity_conflict(ldap_runtime, slapd):
    rt = ldap_runtime
    uid = new_uid("d")
    slapd.add_person(uid, "batchline-qa")
    users.authenticate(rt, uid, password_of(uid))
    departed = account(rt, uid)
    slapd.delete(uid)
    slapd.add_person(uid, "batchline-operators", cn="Someone Else")  # same uid, new entryUUID
    for _ in range(2):
        with pytest.raises(DirectoryConflict) as exc:
            users.authenticate(rt, uid, password_of(uid))
        assert exc.value.code == "identity_conflict" and exc.value.status == 409
    account_id = account(rt, uid)
    assert account_id.id == departed.id and account_id.external_id == departed.external_id
    assert account_id.roles == ["qa"] and not account_id.active  # the departed one left, audited
    _deactivation(rt, uid)
    assert [e.reason for e in trail(rt, uid) if e.action == "auth.login_failed"][0].startswith("identity conflict")


def test_a_directory_person_never_takes_a_local_accounts_id(ldap_runtime, slapd):
    rt = ldap_runtime
    # a directory signed in by employee number, whose entry's uid is a local account's id
    by_number = ldap_runtime_for(
        rt.settings.database_url,
        slapd.settings(ldap_user_filter="(&(objectClass=inetOrgPerson)(employeeNumber={username}))"),
    )
    try:
        with pytest.raises(DirectoryConflict) as exc:
            users.authenticate(by_number, "e4711", password_of("alice"))
        assert exc.value.code == "identity_conflict" and "local account" in exc.value.message
    finally:
        by_number.close()
    alice = account(rt, "alice")
    assert alice.source == "local" and alice.external_id is None and alice.active
    # typed as "alice", the local account answers with its local password only
    with pytest.raises(users.AuthFailed):
        users.authenticate(rt, "alice", password_of("alice"))
    assert account(rt, "alice").failed_logins == 1
    assert users.authenticate(rt, "alice", PASSWORD).username == "alice"
