"""A person from a directory or an OIDC provider, as a Batchline user.

Why one module: whatever proved who someone is (an LDAP bind, an OIDC ID token), the same
rules decide what Batchline does with it (21 CFR 11.100, 11.300):

- a person is known by their source and the directory's own id for them
  (``external_id``: entryUUID, objectGUID or the OIDC ``sub``), never by name alone. A
  directory that gives a departed person's user name to someone new does not hand the
  newcomer the old person's account, signatures or history: the sign-in is refused with
  ``identity_conflict`` until an administrator decides;
- a user id is unique across all sources: a directory person cannot take the id of a
  local account (a service account, a break-glass admin), nor the other way round;
- roles come from the directory's groups at every sign-in (and sync); a change is audited
  with old and new;
- a person who left the directory (or lost every mapped group) is deactivated at the next
  sign-in attempt or sync, audited with the reason; their id stays taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..errors import Conflict
from ..models import User
from ..runtime import Runtime
from ..users import AuthFailed, Person, as_person

#: who the audit trail names for what a directory decided
DIRECTORY = "directory"


class IdentityConflict(Conflict):
    code = "identity_conflict"


@dataclass(frozen=True)
class DirectoryPerson:
    """What a directory or an OIDC provider says about a person who just proved who they are."""

    source: str  # "ldap" | "oidc"
    external_id: str
    username: str
    printed_name: str
    roles: tuple[str, ...]


def find(s: Session, source: str, external_id: str) -> User | None:
    return s.scalars(select(User).where(User.source == source, User.external_id == external_id)).first()


def _check_names(s: Session, dp: DirectoryPerson) -> User | None:
    """Refuse a user id another person holds; the row itself when it is this very person
    (a concurrent first sign-in of the same person committed between our two reads)."""
    taken = s.scalars(select(User).where(User.username == dp.username)).first()
    if taken is None:
        return None
    if taken.source == dp.source and taken.external_id == dp.external_id:
        return taken
    whose = "a local account" if taken.source == "local" else f"another {taken.source} person"
    raise IdentityConflict(
        f"the user id {dp.username} belongs to {whose} (ids are never reused); an administrator must resolve it",
        code="identity_conflict",
    )


def _create(s: Session, dp: DirectoryPerson) -> User:
    same = _check_names(s, dp)
    if same is not None:
        return same
    u = User(
        username=dp.username,
        printed_name=dp.printed_name,
        roles=list(dp.roles),
        kind="person",
        password_hash=None,
        source=dp.source,
        external_id=dp.external_id,
        created_by=DIRECTORY,
    )
    s.add(u)
    s.flush()
    audit.record(
        s,
        user=DIRECTORY,
        action="user.create",
        object_type="user",
        object_id=dp.username,
        new={"roles": list(dp.roles), "kind": "person", "printed_name": dp.printed_name, "source": dp.source},
        reason=f"first sign-in through {dp.source}",
    )
    return u


def _audit_change(s: Session, u: User, action: str, field: str, old: Any, new: Any, reason: str) -> None:
    """One audited difference between Batchline's row and what the directory says."""
    audit.record(
        s,
        user=DIRECTORY,
        action=action,
        object_type="user",
        object_id=u.username,
        field=field,
        old=old,
        new=new,
        reason=reason,
    )


def _update(s: Session, u: User, dp: DirectoryPerson) -> None:
    if u.username != dp.username:
        # a renamed directory entry keeps its person; the user id shown on their records stays
        _audit_change(
            s,
            u,
            "user.directory_name",
            "directory_username",
            u.username,
            dp.username,
            f"the {dp.source} directory renamed this person; the Batchline user id stays",
        )
    if sorted(u.roles or []) != sorted(dp.roles):
        _audit_change(
            s, u, "user.roles", "roles", list(u.roles or []), list(dp.roles), f"group membership in {dp.source}"
        )
        u.roles = list(dp.roles)
    if u.printed_name != dp.printed_name and dp.printed_name:
        _audit_change(
            s, u, "user.printed_name", "printed_name", u.printed_name, dp.printed_name, f"name in {dp.source}"
        )
        u.printed_name = dp.printed_name


def signed_in(rt: Runtime, dp: DirectoryPerson, *, purpose: str = "login") -> Person:
    """The Batchline person for someone the directory just authenticated: created at
    first sign-in, roles and name kept in step with the directory (audited). A person
    with no mapped role, or deactivated in Batchline, is refused."""
    if not dp.roles:
        leave(rt, dp.source, dp.external_id, reason=f"no group of this person in {dp.source} maps to a role")
        raise AuthFailed("your directory account has no Batchline role; ask your administrator", code="no_role")
    with rt.transaction() as s:
        u = find(s, dp.source, dp.external_id)
        if u is None:
            u = _create(s, dp)
        else:
            _update(s, u, dp)
        if not u.active:
            raise AuthFailed("this account is deactivated; ask your administrator", code="account_inactive")
        if purpose == "login":
            audit.record(
                s, user=u.username, action="auth.login", object_type="user", object_id=u.username, reason=dp.source
            )
        return as_person(u)


def leave(rt: Runtime, source: str, external_id: str, *, reason: str) -> bool:
    """Deactivate the person the directory no longer has (audited); True if it changed."""
    with rt.transaction() as s:
        u = find(s, source, external_id)
        if u is None or not u.active:
            return False
        audit.record(
            s,
            user=DIRECTORY,
            action="user.deactivate",
            object_type="user",
            object_id=u.username,
            field="active",
            old=True,
            new=False,
            reason=reason,
        )
        u.active = False
        return True


def people_of(rt: Runtime, source: str) -> list[dict[str, Any]]:
    """Every person of a source (for a sync): user id, external id, active."""
    with rt.transaction() as s:
        rows = s.scalars(select(User).where(User.source == source).order_by(User.id))
        return [{"username": u.username, "external_id": u.external_id, "active": u.active} for u in rows]


__all__ = ["DirectoryPerson", "IdentityConflict", "find", "leave", "people_of", "signed_in"]
