"""Fixtures of the directory tests: one real slapd for the session (``tests.identity.slapd``)
and a Batchline runtime configured for it, on SQLite and on PostgreSQL (``db_url``).

Named ``ldap_*`` so the OIDC tests beside them keep the ordinary ``runtime``/``client``."""

from __future__ import annotations

import pytest

from engine import users
from tests.identity import slapd as slapd_server
from tests.support import IN_CI, PASSWORD, make_runtime

#: local accounts beside the directory: a break-glass administrator and a service account
LOCAL = {"root": ["admin"], "alice": ["operator", "supervisor", "qa"], "quentin": ["qa"]}


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    if not slapd_server.available():
        message = f"OpenLDAP's {slapd_server.SLAPD} / slapadd / ldapdelete not installed (make test-services)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the directory tests must run)")
        pytest.skip(message)
    server = slapd_server.start(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def ldap_runtime_for(db_url: str, settings: dict, *, accounts: bool = False):
    """A runtime on ``db_url`` with these directory settings (``accounts``: make the local ones)."""
    rt = make_runtime(db_url, max_request_bytes=200_000, job_max_attempts=1, **settings)
    for name, roles in LOCAL.items() if accounts else ():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    return rt


@pytest.fixture
def ldap_runtime(db_url, slapd):
    rt = ldap_runtime_for(db_url, slapd.settings(), accounts=True)
    yield rt
    rt.close()


@pytest.fixture
def ldap_client(ldap_runtime):
    from web.app import create_app

    app = create_app(runtime=ldap_runtime)
    c = app.test_client()
    return c
