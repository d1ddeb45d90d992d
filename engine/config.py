"""Batchline configuration: environment variables with the ``BATCHLINE_`` prefix,
optionally overriding values read from a TOML config file.

Why one small frozen object: every entry point (CLI, web app, worker, tests) builds the
same settings the same way, so a value never differs between the API and the worker.
Precedence, lowest to highest: defaults, the config file (``BATCHLINE_CONFIG`` or
``--config``), environment variables, explicit keyword overrides.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PREFIX = "BATCHLINE_"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/batchline.db"
    #: signs the browser's session cookie. Empty (the default): a random key is made on
    #: first start into a key file with mode 0600 (``engine.secret_key``) and reused.
    #: There is no default key: a key published anywhere would let anyone forge a session.
    secret_key: str = ""
    #: where the generated key file lives when the database is not a SQLite file
    #: (PostgreSQL): default ``var/`` under the working directory
    key_dir: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    #: largest request body the API accepts, in bytes (413 above it)
    max_request_bytes: int = 2_000_000
    #: SQLite: how long a writer waits for the write lock before the API answers 503 database_busy
    sqlite_busy_timeout_seconds: float = 30.0
    #: engine steps run per request before the engine stops and reports a runaway model
    engine_step_budget: int = 10_000
    #: ... and after this much wall time, not counting script calls of 50 ms or more
    #: (those have their own limits below): a runaway gateway loop answers within it
    engine_step_seconds: float = 1.0
    #: recipe scripts and expressions (engine/script_pool.py): CPU seconds and memory
    #: (MB above the worker's own footprint) per script, wall time the server waits,
    #: worker processes per server process, and the size of task data a script may leave
    script_cpu_seconds: int = 5
    script_memory_mb: int = 256
    script_wall_seconds: float = 10.0
    script_workers: int = 2
    script_result_bytes: int = 2_000_000
    #: job executor: how long a worker owns a job before another may take it over
    job_lock_seconds: int = 300
    job_max_attempts: int = 5
    job_backoff_seconds: float = 2.0
    worker_poll_seconds: float = 0.5
    #: each ``batchline worker`` writes its heartbeat row this often; ``/api/ready`` answers
    #: 503 when no running worker beat within worker_heartbeat_max_age_seconds
    #: (0: readiness does not ask for a worker, e.g. a node that runs none)
    worker_heartbeat_seconds: float = 5.0
    worker_heartbeat_max_age_seconds: float = 30.0
    #: ``/metrics`` (Prometheus): when set, a scrape needs ``Authorization: Bearer <token>``;
    #: empty: open (bind the server to a private network or firewall the path)
    metrics_token: str = ""
    #: jobs still pending this many seconds after their due time count as late in ``/metrics``
    job_late_seconds: float = 60.0
    #: loaded workflows kept in memory per process (avoids a reload per step)
    workflow_cache_size: int = 256
    #: outbox delivery: webhook subscriber URLs (comma separated) and their HMAC secret
    webhook_urls: tuple[str, ...] = field(default_factory=tuple)
    webhook_secret: str = ""
    event_source: str = "urn:batchline"
    #: a TOML file of connector instances (engine.connector_file) applied when the server
    #: or the worker starts; empty: none (configure them by API or CLI)
    connectors_file: str = ""
    #: 21 CFR 11.300: lock an account after this many failed logins or signings in a row
    lockout_attempts: int = 5
    #: a lock ends by itself after this long (0: only an administrator unlocks); each further
    #: lock without a successful sign-in in between lasts twice as long, up to lockout_max_minutes
    lockout_minutes: int = 15
    lockout_max_minutes: int = 1440
    #: rate limits on password checks (login, signatures, CLI): at most this many failed
    #: attempts per client address and per account within throttle_window_seconds, then 429
    throttle_window_seconds: int = 60
    throttle_per_address: int = 30
    throttle_per_account: int = 10
    password_min_length: int = 10
    password_max_age_days: int = 180
    #: a continuous session ends after this much inactivity (signing then needs id + password)
    session_timeout_minutes: int = 15
    #: the session cookie is sent over HTTPS only (``Secure``); on unless ``demo`` is set
    #: or this is set off explicitly (plain HTTP on a trusted network)
    session_cookie_secure: bool = True
    #: the demo plant (``batchline demo``): plain HTTP on this computer, so no ``Secure`` cookie
    demo: bool = False
    #: behind a TLS-terminating proxy: believe its ``X-Forwarded-Proto`` (for HTTPS and HSTS)
    trust_forwarded_proto: bool = False
    #: ``Strict-Transport-Security`` max-age sent on answers served over HTTPS
    hsts_seconds: int = 31_536_000
    #: argon2id cost of password hashes
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    # --- the audit trail's key, anchors and the database roles (docs/security.md,
    # "The audit trail and the record"); kept apart from the session secret on purpose:
    # a key that signs cookies never seals the record.
    #: HMAC-SHA256 key of the audit chain (``BATCHLINE_AUDIT_KEY``, 32+ characters); empty:
    #: read from ``audit_key_file``, generated there (0600) on first use
    audit_key: str = field(default="", repr=False)
    #: the audit key file; empty: ``audit.key`` beside the SQLite database (else in ``var/``)
    audit_key_file: str = ""
    #: the append-only file of anchored heads; empty: ``audit-anchors.jsonl`` beside the key file
    audit_anchor_file: str = ""
    #: anchor the head automatically each time this many entries were added (0: only on demand)
    audit_anchor_every: int = 100
    #: an external sink each anchor is also POSTed to (JSON), e.g. a WORM store's intake
    audit_anchor_url: str = ""
    audit_anchor_timeout_seconds: float = 2.0
    #: how long a calibration SOP's calibration holds when neither its form (a
    #: ``calibrated_until`` date field) nor the equipment (``calibration_interval_days``)
    #: says; a daily check holds ``daily_check_hours`` (engine.master_data.equipment_use)
    calibration_days: int = 30
    daily_check_hours: int = 24
    #: equipment classes a batch's end leaves free but not dirty (instruments that hold
    #: no product and are not cleaned in place)
    equipment_not_soiled: tuple[str, ...] = (
        "balance",
        "ph_meter",
        "cell_counter",
        "integrity_tester",
        "suite",
        "cleanroom_suite",
    )
    #: a step takes the equipment it scans and the batch's end leaves it dirty. Off only
    #: for simulations that run batch after batch on one set of equipment (``bench/``):
    #: scans of equipment in maintenance, out of service or in use elsewhere stay refused
    equipment_status_by_use: bool = True
    #: when equipment a step took is released dirty: at the end of the ``batch`` (default:
    #: the library's mAb recipe keeps a media tank from media preparation into production)
    #: or of the ``unit_procedure`` (the call activity) whose step took it
    equipment_released_at: str = "batch"
    #: the site's time zone (IANA name, e.g. "Europe/Zurich"): pages show times in it, with
    #: its abbreviation ("1 Dec 2026, 21:04 CET"); empty: the server's own zone. Records,
    #: the API and exports keep UTC whatever this says
    site_timezone: str = ""
    #: PostgreSQL: the schema owner's URL for ``batchline db upgrade`` when the application
    #: itself runs as ``database_app_role`` (which may not UPDATE or DELETE the record)
    migration_database_url: str = field(default="", repr=False)
    #: PostgreSQL: the role ``db upgrade`` grants the application's rights to
    database_app_role: str = "batchline_app"
    #: archive (engine.archive): a complete batch QA released or rejected this many days
    #: ago moves to the archive on the daily run (0: never automatically; ``batchline
    #: archive run --before DATE`` still works)
    archive_after_days: int = 0
    #: where archive files are written; empty: ``archive/`` beside the audit key file
    archive_dir: str = ""

    # --- LDAP / Active Directory sign-in (engine.identity.ldap_directory, docs/identity.md)
    #: ``ldap://host:port`` or ``ldaps://host:port``; empty: no directory, local accounts only
    ldap_url: str = ""
    #: upgrade an ``ldap://`` connection with StartTLS before any bind (ignored for ``ldaps://``)
    ldap_starttls: bool = True
    #: send passwords over a connection without TLS: refused unless this is set (a lab only)
    ldap_allow_plain: bool = False
    #: CA certificate(s) (PEM) the directory's certificate must chain to; empty: the system's
    ldap_ca_file: str = ""
    #: the service account that searches the directory (empty: an anonymous search) and a
    #: reference to its password: ``env:NAME`` or ``file:/absolute/path`` (never the password)
    ldap_bind_dn: str = ""
    ldap_bind_secret: str = ""
    ldap_user_base: str = ""
    #: ``{username}`` is replaced by the escaped user id (AD: ``(sAMAccountName={username})``)
    ldap_user_filter: str = "(&(objectClass=inetOrgPerson)(uid={username}))"
    #: the directory's never-reassigned id of a person (AD: ``objectGUID``)
    ldap_id_attribute: str = "entryUUID"
    #: the attribute holding the user id (AD: ``sAMAccountName``) and the printed name
    ldap_username_attribute: str = "uid"
    ldap_name_attribute: str = "cn"
    ldap_group_base: str = ""
    ldap_group_filter: str = "(|(objectClass=groupOfNames)(objectClass=group))"
    ldap_member_attribute: str = "member"
    #: group DN -> Batchline role(s): a TOML table ``[batchline.ldap_group_roles]`` or, in
    #: ``BATCHLINE_LDAP_GROUP_ROLES``, a JSON object; kept as (group DN, role) pairs
    ldap_group_roles: tuple[tuple[str, str], ...] = ()
    #: groups of groups: ``search`` (follow ``member`` upwards, OpenLDAP), ``in_chain``
    #: (AD's LDAP_MATCHING_RULE_IN_CHAIN) or ``off``; ``search`` stops at this depth
    ldap_nested_groups: str = "search"
    ldap_nested_depth: int = 5
    #: seconds to connect and to wait for each answer of the directory
    ldap_timeout_seconds: float = 5.0
    # --- OIDC sign-in for the browser (docs/identity.md, "OIDC"); empty issuer: off
    #: the provider's issuer URL (its discovery document is ``<issuer>/.well-known/openid-configuration``)
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    #: where the client secret is: ``env:NAME`` or ``file:/absolute/path`` (never the secret itself)
    oidc_client_secret: str = ""
    #: this server's callback, registered at the provider: https://<host>/login/oidc/callback
    oidc_redirect_url: str = ""
    #: the login page's button says "Sign in with <oidc_display_name>"
    oidc_display_name: str = "your organisation account"
    oidc_username_claim: str = "preferred_username"
    oidc_name_claim: str = "name"
    oidc_groups_claim: str = "groups"
    #: provider group -> Batchline role, as ``group=role`` entries (a group may map to several roles)
    oidc_group_roles: tuple[str, ...] = field(default_factory=tuple)
    oidc_scopes: tuple[str, ...] = ("openid", "profile")
    #: ID token signature algorithms accepted (never ``none``, never an HMAC with the client secret)
    oidc_algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    #: a signature's re-authentication must have happened at the provider within this many seconds
    oidc_reauth_seconds: int = 120
    #: an unused sign-in request (state) or signing grant expires after this many seconds
    oidc_request_seconds: int = 600
    oidc_grant_seconds: int = 300

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def cookie_secure(self) -> bool:
        """Whether the session cookie carries ``Secure`` (never in the demo)."""
        return self.session_cookie_secure and not self.demo

    def __repr__(self) -> str:  # the secret key never reaches a log or a traceback
        shown = ", ".join(
            f"{f.name}={'***' if f.name in SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"


#: settings never shown in a representation
SECRET_FIELDS = frozenset({"secret_key", "webhook_secret", "audit_key", "migration_database_url", "metrics_token"})


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if name == "ldap_group_roles":
        return group_roles(raw)
    if isinstance(default, bool):
        return str(raw).lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        if isinstance(raw, (list, tuple)):
            return tuple(str(x) for x in raw)
        return tuple(x.strip() for x in str(raw).split(",") if x.strip())
    return str(raw)


def group_roles(raw: Any) -> tuple[tuple[str, str], ...]:
    """A group -> role(s) mapping (a TOML table, or JSON text in the environment) as sorted
    (group DN, role) pairs: a frozen setting holds no dict."""
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else {}
    if isinstance(raw, (list, tuple)):
        return tuple(sorted((str(g), str(r)) for g, r in raw))
    if not isinstance(raw, dict):
        raise ValueError("ldap_group_roles maps group DNs to a role or a list of roles")
    pairs = []
    for group, roles in raw.items():
        for role in [roles] if isinstance(roles, str) else list(roles):
            pairs.append((str(group), str(role)))
    return tuple(sorted(pairs))


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, a TOML file, ``BATCHLINE_*`` variables and overrides."""
    base = Settings()
    values: dict[str, Any] = {}
    config_file = config_file or os.environ.get(PREFIX + "CONFIG")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        data = data.get("batchline", data)
        for f in fields(Settings):
            if f.name in data:
                values[f.name] = _coerce(f.name, data[f.name], getattr(base, f.name))
    for f in fields(Settings):
        env = os.environ.get(PREFIX + f.name.upper())
        if env is not None:
            values[f.name] = _coerce(f.name, env, getattr(base, f.name))
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    settings = replace(base, **values)
    if settings.is_sqlite:
        _ensure_sqlite_dir(settings.database_url)
    return settings


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
