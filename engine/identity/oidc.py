"""What Batchline believes from an OIDC provider, without the protocol: the settings, the
ID token's claims -> a ``DirectoryPerson`` (``people.signed_in`` does the rest), the
group -> role mapping, and the checks of a signature's re-authentication.

Why apart from the browser flow (``web.ui.oidc``): these are the rules an auditor reads
(who becomes which user with which roles, what proves presence at signing); the flow
only carries tokens. Decisions:

- a person is ``issuer + "|" + sub``: ``sub`` is the provider's never-reassigned id and
  is unique only within its issuer, so a second provider (or a new issuer URL) never
  inherits someone's account. A name (``preferred_username``) may be reassigned by the
  provider; it only chooses the Batchline user id at the first sign-in;
- roles come only from mapped groups; a person none of whose groups maps is refused and
  deactivated (``people.signed_in``);
- a signature needs a re-authentication at the provider (``prompt=login``,
  ``max_age=0``) whose ``auth_time`` is at most ``oidc_reauth_seconds`` old and whose
  ``sub`` is the signer's: a session cookie alone never signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import audit, secret_refs
from ..accounts import ROLES, USERNAME
from ..config import Settings
from ..models import User
from ..runtime import Runtime
from ..users import AuthFailed
from .people import DirectoryPerson

SOURCE = "oidc"
#: a role the provider can never grant: service accounts use API tokens, not people
NOT_MAPPABLE = frozenset({"service"})


class OidcRefused(AuthFailed):
    """The provider's answer is not believed, or the person may not sign in or sign."""

    code = "oidc_refused"


class OidcNotConfigured(Exception):
    """The OIDC settings are missing or wrong; the message names the setting."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret_ref: str
    redirect_url: str
    display_name: str
    username_claim: str
    name_claim: str
    groups_claim: str
    group_roles: dict[str, tuple[str, ...]]
    scopes: tuple[str, ...]
    algorithms: tuple[str, ...]
    reauth_seconds: int
    request_seconds: int
    grant_seconds: int

    def client_secret(self) -> str:
        """The client secret, read from its reference now (never kept in the settings)."""
        try:
            return secret_refs.read(self.client_secret_ref, "oidc_client_secret")
        except secret_refs.SecretReferenceError as exc:
            raise OidcNotConfigured(str(exc)) from None


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer)


def config_of(settings: Settings) -> OidcConfig:
    """The OIDC settings, checked; ``OidcNotConfigured`` names what is wrong."""
    issuer = settings.oidc_issuer.rstrip("/")
    if not issuer.startswith(("https://", "http://")):
        raise OidcNotConfigured("oidc_issuer is the provider's https:// issuer URL")
    for name in ("oidc_client_id", "oidc_client_secret", "oidc_redirect_url"):
        if not getattr(settings, name):
            raise OidcNotConfigured(f"{name} is not set")
    ref = settings.oidc_client_secret
    if not (ref.startswith("env:") or (ref.startswith("file:") and Path(ref[5:]).is_absolute())):
        raise OidcNotConfigured("oidc_client_secret is env:NAME or file:/absolute/path")
    if "openid" not in settings.oidc_scopes:
        raise OidcNotConfigured("oidc_scopes must include openid")
    algorithms = tuple(a for a in settings.oidc_algorithms if a)
    if not algorithms or any(a.lower() == "none" or a.upper().startswith("HS") for a in algorithms):
        raise OidcNotConfigured("oidc_algorithms lists asymmetric signature algorithms only (never none or HS*)")
    return OidcConfig(
        issuer=issuer,
        client_id=settings.oidc_client_id,
        client_secret_ref=ref,
        redirect_url=settings.oidc_redirect_url,
        display_name=settings.oidc_display_name,
        username_claim=settings.oidc_username_claim,
        name_claim=settings.oidc_name_claim,
        groups_claim=settings.oidc_groups_claim,
        group_roles=group_roles(settings.oidc_group_roles),
        scopes=tuple(settings.oidc_scopes),
        algorithms=algorithms,
        reauth_seconds=settings.oidc_reauth_seconds,
        request_seconds=settings.oidc_request_seconds,
        grant_seconds=settings.oidc_grant_seconds,
    )


def group_roles(entries: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``("ops=operator", "ops=trainer", "qa-team=qa")`` -> {group: roles}."""
    mapping: dict[str, list[str]] = {}
    for entry in entries:
        group, sep, role = entry.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or role not in ROLES or role in NOT_MAPPABLE:
            raise OidcNotConfigured(
                f"oidc_group_roles entry {entry!r}: write group=role with a role of "
                + ", ".join(r for r in ROLES if r not in NOT_MAPPABLE)
            )
        mapping.setdefault(group, [])
        if role not in mapping[group]:
            mapping[group].append(role)
    return {g: tuple(r) for g, r in mapping.items()}


def roles_for(cfg: OidcConfig, groups: Any) -> tuple[str, ...]:
    """The Batchline roles of the provider's groups (unmapped groups give nothing)."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return ()
    roles: list[str] = []
    for group in groups:
        for role in cfg.group_roles.get(group, ()) if isinstance(group, str) else ():
            if role not in roles:
                roles.append(role)
    return tuple(sorted(roles))


def external_id(cfg: OidcConfig, sub: Any) -> str:
    if not isinstance(sub, str) or not 1 <= len(sub) <= 255 or any(ord(c) < 32 for c in sub):
        raise OidcRefused("the provider's answer has no usable subject (sub)", code="oidc_claims")
    ext = f"{cfg.issuer}|{sub}"
    if len(ext) > 300:
        raise OidcRefused("the provider's issuer and subject are too long to keep", code="oidc_claims")
    return ext


def person_from_claims(cfg: OidcConfig, claims: dict[str, Any]) -> DirectoryPerson:
    """The person an ID token (already verified) describes."""
    ext = external_id(cfg, claims.get("sub"))
    name = claims.get(cfg.username_claim)
    username = name.strip().lower() if isinstance(name, str) else ""
    if not USERNAME.fullmatch(username):
        raise OidcRefused(
            f"the provider's {cfg.username_claim} is not a usable user id (2 to 64 of a-z, 0-9, '.', '_', '-')",
            code="oidc_claims",
        )
    printed = claims.get(cfg.name_claim)
    printed = printed.strip()[:200] if isinstance(printed, str) and printed.strip() else username
    return DirectoryPerson(
        source=SOURCE,
        external_id=ext,
        username=username,
        printed_name=printed,
        roles=roles_for(cfg, claims.get(cfg.groups_claim)),
    )


def check_reauth(cfg: OidcConfig, claims: dict[str, Any], signer: User, now: datetime | None = None) -> datetime:
    """A signature's re-authentication: the signer's own ``sub`` and a fresh ``auth_time``.
    Returns the authentication time."""
    now = now or datetime.now(UTC)
    if signer.source != SOURCE or signer.external_id != external_id(cfg, claims.get("sub")):
        raise OidcRefused(
            f"you confirmed your identity as someone else at the provider; sign in there as {signer.username}",
            code="oidc_other_person",
        )
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        raise OidcRefused("the provider did not say when you signed in (auth_time)", code="oidc_auth_time")
    at = datetime.fromtimestamp(auth_time, UTC)
    age = (now - at).total_seconds()
    if age > cfg.reauth_seconds or age < -60:
        raise OidcRefused(
            "the provider did not ask for your password just now; confirm your identity again",
            code="oidc_stale_auth",
        )
    return at


def signing_refused(rt: Runtime, username: str, why: str) -> None:
    """A signature's re-authentication at the provider that did not prove the signer
    present now (another person, a stale authentication): audited like a wrong password."""
    with rt.transaction() as s:
        audit.record(
            s,
            user=username,
            action="auth.signature_failed",
            object_type="user",
            object_id=username,
            reason=f"OIDC re-authentication refused: {why}",
        )


def refuse_password_signature(rt: Runtime, username: Any) -> None:
    """An OIDC person has no password in Batchline: a signature with id + password (the
    API, the CLI) is refused with a clear way forward, audited."""
    if not isinstance(username, str) or not 0 < len(username) <= 100:
        return
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is None or u.source != SOURCE:
            return
        audit.record(
            s,
            user=u.username,
            action="auth.signature_failed",
            object_type="user",
            object_id=u.username,
            reason="OIDC person: a password signature is not possible",
        )
    raise OidcRefused(
        f"{username} signs in with the organisation's sign-in (OIDC) and has no Batchline password; "
        "sign this in the browser, where the sign dialog confirms your identity with the provider",
        code="sign_in_browser",
    )


__all__ = [
    "SOURCE",
    "OidcConfig",
    "OidcNotConfigured",
    "OidcRefused",
    "check_reauth",
    "config_of",
    "enabled",
    "external_id",
    "group_roles",
    "person_from_claims",
    "refuse_password_signature",
    "roles_for",
    "signing_refused",
]
