"""The plant's LDAP directory (OpenLDAP or Active Directory) as ``ldap3`` sees it: find a
person's entry, check their password with a bind, and work out their Batchline roles
from their groups.

Why so careful about the wire and the input:

- a password never crosses the network in clear: ``ldap://`` is upgraded with StartTLS
  (certificate checked against ``ldap_ca_file``) before any bind, or ``ldaps://`` is used;
  a plain connection is refused unless ``ldap_allow_plain`` is set explicitly;
- an LDAP simple bind with an empty password is an *unauthenticated* bind that
  "succeeds" (RFC 4513 5.1.2): the caller refuses empty passwords before this module is
  asked, and :meth:`Directory.check_password` refuses them again;
- the typed user id goes into a search filter: it must be a Batchline user id
  (``engine.accounts.USERNAME``) and is escaped (``escape_filter_chars``) all the same;
- a person is known by the directory's own id (``entryUUID``; AD ``objectGUID``), never
  by name: names are reused, those ids are not;
- neither the password nor the service account's secret is logged, audited or shown.

Any failure to reach or use the directory is :class:`DirectoryUnavailable` (503): it is
never counted as a wrong password.
"""

from __future__ import annotations

import logging
import math
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import safe_dn

from .. import secret_refs
from ..accounts import ROLES, USERNAME
from ..config import Settings
from ..users import AuthFailed

log = logging.getLogger("batchline.ldap")

#: Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of groups
IN_CHAIN = "1.2.840.113556.1.4.1941"
#: the LDAP result code of a wrong password (or an unknown, disabled or expired account)
INVALID_CREDENTIALS = 49


class DirectoryUnavailable(AuthFailed):
    """The directory cannot be reached or used: nothing is counted as a failed password."""

    code = "directory_unavailable"
    status = 503


@dataclass(frozen=True)
class Entry:
    """A person's entry: its DN, the directory's id for it, user id and printed name."""

    dn: str
    external_id: str
    username: str
    printed_name: str


def configured(settings: Settings) -> bool:
    return bool(settings.ldap_url)


def unavailable(why: str) -> DirectoryUnavailable:
    log.warning("LDAP directory unavailable: %s", why)
    return DirectoryUnavailable(f"the directory cannot be reached ({why}); try again later or ask your administrator")


def norm_dn(dn: str) -> str:
    """A DN as compared with the configured group mapping (case and spacing do not matter)."""
    try:
        return safe_dn(dn).lower()
    except LDAPException:
        return dn.strip().lower()


def role_map(settings: Settings) -> dict[str, set[str]]:
    """The configured group -> roles mapping; a role Batchline does not know (or ``service``:
    a directory person is a person) is a configuration error."""
    out: dict[str, set[str]] = {}
    for group, role in settings.ldap_group_roles:
        if role not in ROLES or role == "service":
            raise unavailable(f"ldap_group_roles maps {group!r} to {role!r}, not a role of a person")
        out.setdefault(norm_dn(group), set()).add(role)
    return out


def bind_secret(settings: Settings) -> str | None:
    """The service account's password from its reference (``env:NAME``, ``file:/path``);
    an error names the reference, never what it holds."""
    ref = settings.ldap_bind_secret
    if not settings.ldap_bind_dn:
        return None
    try:
        return secret_refs.read(ref, "ldap_bind_secret")
    except secret_refs.SecretReferenceError as exc:
        raise unavailable(str(exc)) from None


def _server(settings: Settings) -> tuple[Server, bool]:
    url = settings.ldap_url
    secure = url.lower().startswith("ldaps://")
    starttls = not secure and settings.ldap_starttls
    if not secure and not starttls and not settings.ldap_allow_plain:
        raise unavailable("passwords would cross the network in clear: use StartTLS or ldaps://")
    tls = None
    if secure or starttls:
        ca = settings.ldap_ca_file or None
        if ca and not Path(ca).is_file():
            raise unavailable(f"ldap_ca_file {ca} is not a file")
        tls = Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT, ca_certs_file=ca)
    try:
        server = Server(url, use_ssl=secure, tls=tls, connect_timeout=settings.ldap_timeout_seconds, get_info="NO_INFO")
    except LDAPException as exc:
        raise unavailable(f"ldap_url is not usable: {exc}") from None
    return server, starttls


class Directory:
    """One conversation with the directory: a service connection (searches) and, for a
    password check, a connection of its own bound as the person. Use as a context manager."""

    def __init__(self, settings: Settings):
        if not configured(settings):
            raise unavailable("no directory is configured")
        self.settings = settings
        self.roles = role_map(settings)
        self.server, self.starttls = _server(settings)
        self.conn: Connection | None = None

    def __enter__(self) -> Directory:
        self.conn = self._connect(self.settings.ldap_bind_dn or None, bind_secret(self.settings))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.conn is not None:
            try:
                self.conn.unbind()
            except LDAPException:  # pragma: no cover - closing a broken connection
                pass

    def _connect(self, user: str | None, password: str | None, *, person: bool = False) -> Connection | None:
        """A connection upgraded to TLS and bound; None for a person's wrong password."""
        conn = Connection(
            self.server,
            user=user,
            password=password,
            authentication="SIMPLE" if user else "ANONYMOUS",
            receive_timeout=max(1, math.ceil(self.settings.ldap_timeout_seconds)),
            read_only=True,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if self.starttls and not conn.start_tls():
                raise unavailable(f"StartTLS refused: {conn.result.get('description')}")
            if conn.bind():
                return conn
            result = conn.result or {}
        except LDAPException as exc:
            raise unavailable(f"{type(exc).__name__}: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise unavailable(f"{type(exc).__name__}: {exc}") from None
        conn.unbind()
        if person and result.get("result") == INVALID_CREDENTIALS:
            return None
        who = "the person's" if person else "the service account's"
        raise unavailable(f"{who} bind was refused: {result.get('description')} {result.get('message') or ''}".strip())

    def _search(self, base: str, flt: str, attributes: list[str], *, scope: Any = SUBTREE, limit: int = 0) -> list:
        assert self.conn is not None
        try:
            ok = self.conn.search(
                base,
                flt,
                search_scope=scope,
                attributes=attributes,
                size_limit=limit,
                time_limit=int(self.settings.ldap_timeout_seconds) or 1,
            )
        except LDAPException as exc:
            raise unavailable(f"search failed: {type(exc).__name__}: {exc}") from None
        code = (self.conn.result or {}).get("result", 0)
        if not ok and code not in (0, 4, 32):  # success, size limit, no such object
            raise unavailable(f"search refused: {self.conn.result.get('description')}")
        return [r for r in self.conn.response or [] if r.get("type") == "searchResEntry"]

    def _entry(self, row: dict) -> Entry:
        s = self.settings
        raw = row.get("raw_attributes", {})
        ident = raw.get(s.ldap_id_attribute) or []
        if not ident:
            raise unavailable(f"the entry {row['dn']} has no {s.ldap_id_attribute}")
        if s.ldap_id_attribute.lower() == "objectguid":
            external_id = str(uuid.UUID(bytes_le=bytes(ident[0])))
        else:
            external_id = bytes(ident[0]).decode("utf-8").lower()
        names = raw.get(s.ldap_username_attribute) or [b""]
        printed = raw.get(s.ldap_name_attribute) or [b""]
        return Entry(
            dn=row["dn"],
            external_id=external_id,
            username=bytes(names[0]).decode("utf-8", "replace").strip().lower(),
            printed_name=bytes(printed[0]).decode("utf-8", "replace").strip()[:200],
        )

    def _attributes(self) -> list[str]:
        s = self.settings
        return [s.ldap_id_attribute, s.ldap_username_attribute, s.ldap_name_attribute]

    def find(self, username: str) -> Entry | None:
        """The entry of a user id; None if there is none (or more than one: ambiguous)."""
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            return None
        flt = self.settings.ldap_user_filter.replace("{username}", escape_filter_chars(username))
        rows = self._search(self.settings.ldap_user_base, flt, self._attributes(), limit=2)
        if len(rows) != 1:
            if rows:
                log.warning("LDAP: %d entries match one user id; refused", len(rows))
            return None
        return self._entry(rows[0])

    def find_by_id(self, external_id: str) -> Entry | None:
        """The entry the directory knows by this id (renamed or not); None when it is gone."""
        attr = self.settings.ldap_id_attribute
        if attr.lower() == "objectguid":
            try:
                value = escape_bytes(uuid.UUID(external_id).bytes_le)
            except ValueError:
                return None
        else:
            value = escape_filter_chars(external_id)
        rows = self._search(self.settings.ldap_user_base, f"({attr}={value})", self._attributes(), limit=2)
        return self._entry(rows[0]) if len(rows) == 1 else None

    def check_password(self, entry: Entry, password: str) -> bool:
        """Bind as the person: True for the right password, False for a wrong one."""
        if not isinstance(password, str) or not password or "\x00" in password:
            return False  # an empty password would be an unauthenticated bind that "succeeds"
        conn = self._connect(entry.dn, password, person=True)
        if conn is None:
            return False
        conn.unbind()
        return True

    def groups_of(self, dn: str) -> set[str]:
        """Every group the entry is a member of, through groups of groups as configured."""
        s = self.settings
        member = s.ldap_member_attribute
        if s.ldap_nested_groups == "in_chain":
            flt = f"(&{s.ldap_group_filter}({member}:{IN_CHAIN}:={escape_filter_chars(dn)}))"
            return {norm_dn(r["dn"]) for r in self._search(s.ldap_group_base, flt, [])}
        seen: set[str] = set()
        frontier = [dn]
        depth = s.ldap_nested_depth if s.ldap_nested_groups == "search" else 1
        for _ in range(max(depth, 1)):
            if not frontier:
                break
            anyof = "".join(f"({member}={escape_filter_chars(d)})" for d in frontier)
            found = {r["dn"] for r in self._search(s.ldap_group_base, f"(&{s.ldap_group_filter}(|{anyof}))", [])}
            frontier = [g for g in found if norm_dn(g) not in seen]  # a cycle ends here
            seen.update(norm_dn(g) for g in frontier)
        return seen

    def roles_of(self, entry: Entry) -> tuple[str, ...]:
        """The Batchline roles the entry's groups map to (sorted; empty: none)."""
        roles: set[str] = set()
        for group in self.groups_of(entry.dn):
            roles |= self.roles.get(group, set())
        return tuple(sorted(roles))


__all__ = ["Directory", "DirectoryUnavailable", "Entry", "configured"]
