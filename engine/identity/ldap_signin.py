"""Signing in (a login or a signature's re-authentication) as a person of the LDAP
directory, and the directory sync that deactivates the people who left.

``engine.users.authenticate`` sends here every id whose account comes from the directory,
and every id Batchline does not know while a directory is configured (a first sign-in).
The rules stay the local accounts' ones (``engine.users``): the rate limits first, no
password checked for a locked or deactivated person, a wrong directory password counts
toward the Batchline lockout and is audited with the same words. What differs:

- the directory cannot be reached: 503 ``directory_unavailable`` and nothing is recorded
  as a failed password (the person did nothing wrong);
- the person is found by the directory's id of the entry, so a renamed entry keeps its
  person and a newcomer given a departed person's name gets ``identity_conflict``
  (``engine.identity.people``);
- a person whose entry is gone, or who lost every mapped group, is deactivated at the
  next attempt (audited; their browser sessions end with the flush rule of
  ``engine.sessions``), and by :func:`sync` for those who never try again.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit, lockout, throttle
from ..accounts import USERNAME
from ..models import User, utcnow
from ..runtime import Runtime
from ..users import UNKNOWN, AuthFailed, Person, _failed, count_throttle, count_wrong_password
from . import people
from .ldap_directory import Directory, Entry

SOURCE = "ldap"
GONE = "no longer in the LDAP directory"


class DirectoryConflict(AuthFailed):
    """The directory's person cannot become this Batchline user (``people.IdentityConflict``)."""

    code = "identity_conflict"
    status = 409


def _user(s: Any, user_id: int | None) -> User | None:
    return s.get(User, user_id) if user_id is not None else None


def _refuse(
    rt: Runtime, user_id: int | None, name: str, secret: str, purpose: str, client: str | None, *, wrong: bool
) -> NoReturn:
    """Record a refused attempt as ``engine.users`` does and raise its error: a wrong
    password of an active, unlocked person counts toward their lockout; anything else is
    audited as an unknown id, a deactivated or a locked account."""
    now = utcnow()
    with rt.transaction() as s:
        u = _user(s, user_id)
        if u is not None and wrong and u.active and not lockout.is_locked(u, now):
            failure = count_wrong_password(rt, s, u, purpose, client, now)
        elif u is not None and u.active and not lockout.is_locked(u, now):
            failure = _failed(rt, s, None, name, secret, purpose, client, now)  # not this person's id any more
        else:
            failure = _failed(rt, s, u, name, secret, purpose, client, now)
        count_throttle(rt, s, client, name, u)
    raise failure


def _state(rt: Runtime, name: str, entry: Entry | None) -> tuple[User | None, User | None]:
    """The account holding the typed id and the person the directory's entry belongs to
    (detached snapshots); a lock whose time is over ends here, as for local accounts."""
    now = utcnow()
    with rt.transaction() as s:
        valid = USERNAME.fullmatch(name)
        by_name = s.scalars(select(User).where(User.username == name)).first() if valid else None
        by_id = people.find(s, SOURCE, entry.external_id) if entry is not None else None
        found = {x.id: x for x in (by_name, by_id) if x is not None}.values()
        for u in found:
            lockout.release_if_over(s, u, now)
        s.flush()
        for u in found:
            s.expunge(u)
        return by_name, by_id


def _leave_if_gone(rt: Runtime, d: Directory, u: User | None) -> None:
    """The typed id is a directory person whose entry the directory no longer has: they left."""
    if u is not None and u.source == SOURCE and u.active and u.external_id and d.find_by_id(u.external_id) is None:
        people.leave(rt, SOURCE, u.external_id, reason=GONE)


def authenticate(rt: Runtime, name: str, secret: str, *, purpose: str, client: str | None) -> Person:
    """Check a directory person's password (``engine.users.authenticate`` calls this)."""
    with rt.transaction() as s:
        throttle.check(s, rt.settings, client, name)
    if not secret or not USERNAME.fullmatch(name):
        # never to the directory: an empty password is an unauthenticated bind that "succeeds",
        # and an id Batchline cannot have has no business in a search filter
        by_name, _ = _state(rt, name, None)
        _refuse(rt, by_name.id if by_name else None, name, secret, purpose, client, wrong=True)
    with Directory(rt.settings) as d:
        entry = d.find(name)
        by_name, person = _state(rt, name, entry)
        if entry is None:
            _leave_if_gone(rt, d, by_name)
            _refuse(rt, by_name.id if by_name else None, name, secret, purpose, client, wrong=False)
        if person is not None and (not person.active or lockout.is_locked(person, utcnow())):
            _refuse(rt, person.id, name, secret, purpose, client, wrong=False)  # no password is checked
        if by_name is not None and (person is None or by_name.id != person.id):
            _leave_if_gone(rt, d, by_name)
        if not d.check_password(entry, secret):
            _refuse(rt, person.id if person else None, name, secret, purpose, client, wrong=True)
        roles = d.roles_of(entry)
    if not USERNAME.fullmatch(entry.username):
        raise AuthFailed(
            f"the directory's user id of this person is not a Batchline user id ({USERNAME.pattern}); "
            "ask your administrator",
            code="directory_username_invalid",
        )
    dp = people.DirectoryPerson(SOURCE, entry.external_id, entry.username, entry.printed_name or entry.username, roles)
    signed = _signed_in(rt, dp, purpose, client)
    with rt.transaction() as s:
        u = people.find(s, SOURCE, entry.external_id)
        if u is not None:
            lockout.succeeded(u)
            throttle.forget_account(s, u.username)
        throttle.forget_account(s, name)
    return signed


def _signed_in(rt: Runtime, dp: people.DirectoryPerson, purpose: str, client: str | None) -> Person:
    """``people.signed_in``; the loser of two concurrent first sign-ins of one person finds
    the winner's account on its second try. A conflict of ids is audited and refused."""
    for attempt in (1, 2):
        try:
            return people.signed_in(rt, dp, purpose=purpose)
        except IntegrityError:
            if attempt == 2:
                raise
        except people.IdentityConflict as exc:
            with rt.transaction() as s:
                audit.record(
                    s,
                    user=UNKNOWN,
                    action=f"auth.{purpose}_failed",
                    object_type="user",
                    object_id=dp.username,
                    reason=f"identity conflict: {exc.message} (directory id {dp.external_id})"
                    + (f" from {client[:100]}" if client else ""),
                )
            raise DirectoryConflict(exc.message) from None
    raise AssertionError("unreachable")  # pragma: no cover


def sync(rt: Runtime) -> list[dict[str, Any]]:
    """Bring every directory person in step with the directory: deactivate those whose
    entry is gone or who lost every mapped group, update roles and names (all audited
    by ``engine.identity.people``). What changed, one dict per person."""
    changes: list[dict[str, Any]] = []
    with Directory(rt.settings) as d:
        for row in people.people_of(rt, SOURCE):
            if not row["active"] or not row["external_id"]:
                continue
            entry = d.find_by_id(row["external_id"])
            if entry is None:
                if people.leave(rt, SOURCE, row["external_id"], reason=GONE):
                    changes.append({"username": row["username"], "change": "deactivated", "reason": GONE})
                continue
            before = _snapshot(rt, row["external_id"])
            roles = d.roles_of(entry)
            dp = people.DirectoryPerson(SOURCE, entry.external_id, entry.username, entry.printed_name, roles)
            try:
                people.signed_in(rt, dp, purpose="sync")
            except AuthFailed as exc:  # no mapped role any more: deactivated by people.signed_in
                changes.append({"username": row["username"], "change": "deactivated", "reason": exc.message})
                continue
            after = _snapshot(rt, row["external_id"])
            if after != before:
                changes.append({"username": row["username"], "change": "updated", "old": before, "new": after})
    return changes


def _snapshot(rt: Runtime, external_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        u = people.find(s, SOURCE, external_id)
        assert u is not None
        return {"roles": sorted(u.roles or []), "printed_name": u.printed_name}


__all__ = ["DirectoryConflict", "authenticate", "sync"]
