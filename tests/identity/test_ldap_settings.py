"""The directory's settings: the group mapping from a TOML table or JSON in the
environment, the service account's secret by reference (an error names the reference,
never the secret), a mapping to a role no person may have, and logs without passwords."""

from __future__ import annotations

import logging

import pytest

from engine import users
from engine.config import load_settings
from tests.identity.conftest import ldap_runtime_for
from tests.identity.slapd import READER_PW, password_of


def test_the_group_mapping_comes_from_a_toml_table_or_json(tmp_path, monkeypatch):
    config = tmp_path / "batchline.toml"
    config.write_text(
        "[batchline]\n"
        'ldap_url = "ldaps://ldap.example:636"\n'
        "[batchline.ldap_group_roles]\n"
        '"cn=qa,ou=groups,dc=x" = "qa"\n'
        '"cn=leads,ou=groups,dc=x" = ["operator", "supervisor"]\n'
    )
    s = load_settings(config, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    assert s.ldap_url == "ldaps://ldap.example:636" and s.ldap_starttls is True
    assert s.ldap_group_roles == (
        ("cn=leads,ou=groups,dc=x", "operator"),
        ("cn=leads,ou=groups,dc=x", "supervisor"),
        ("cn=qa,ou=groups,dc=x", "qa"),
    )
    monkeypatch.setenv("BATCHLINE_LDAP_GROUP_ROLES", '{"cn=ops,dc=x": "operator"}')
    monkeypatch.setenv("BATCHLINE_LDAP_STARTTLS", "false")
    s = load_settings(config, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    assert s.ldap_group_roles == (("cn=ops,dc=x", "operator"),) and s.ldap_starttls is False
    monkeypatch.setenv("BATCHLINE_LDAP_GROUP_ROLES", '["not", "a mapping"]')
    with pytest.raises((ValueError, TypeError)):
        load_settings(config, database_url=f"sqlite:///{tmp_path / 'a.db'}")


def test_the_service_secret_is_a_reference(ldap_runtime, slapd, monkeypatch, tmp_path, caplog):
    url = ldap_runtime.settings.database_url
    monkeypatch.setenv("LDAP_READER_SECRET", READER_PW)
    by_env = ldap_runtime_for(url, slapd.settings(ldap_bind_secret="env:LDAP_READER_SECRET"))
    try:
        assert users.authenticate(by_env, "dora", password_of("dora")).roles == ("qa",)
    finally:
        by_env.close()
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-reader-password")
    caplog.set_level(logging.DEBUG)
    for ref, says in (
        ("env:LDAP_NOT_SET", "env:LDAP_NOT_SET"),
        (f"file:{tmp_path / 'missing'}", "cannot be read"),
        (f"file:{wrong}", "bind was refused"),
        ("plain-password-here", "env:NAME or file:"),
    ):
        other = ldap_runtime_for(url, slapd.settings(ldap_bind_secret=ref))
        try:
            with pytest.raises(users.AuthFailed) as exc:
                users.authenticate(other, "dora", password_of("dora"))
            assert exc.value.code == "directory_unavailable" and says in exc.value.message
        finally:
            other.close()
    for secret in ("not-the-reader-password", "plain-password-here", password_of("dora"), READER_PW):
        assert secret not in caplog.text


def test_a_mapping_to_a_role_no_person_may_have_is_refused(ldap_runtime, slapd):
    for role in ("service", "superuser"):
        other = ldap_runtime_for(
            ldap_runtime.settings.database_url,
            slapd.settings(ldap_group_roles=(("cn=batchline-qa,ou=groups,dc=batchline,dc=test", role),)),
        )
        try:
            with pytest.raises(users.AuthFailed) as exc:
                users.authenticate(other, "dora", password_of("dora"))
            assert exc.value.code == "directory_unavailable" and role in exc.value.message
        finally:
            other.close()
