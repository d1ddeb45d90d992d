"""Batchline configuration: environment variables with the ``BATCHLINE_`` prefix,
optionally overriding values read from a TOML config file.

Why one small frozen object: every entry point (CLI, web app, worker, tests) builds the
same settings the same way, so a value never differs between the API and the worker.
Precedence, lowest to highest: defaults, the config file (``BATCHLINE_CONFIG`` or
``--config``), environment variables, explicit keyword overrides.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PREFIX = "BATCHLINE_"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/batchline.db"
    secret_key: str = "dev-insecure-change-me"
    host: str = "127.0.0.1"
    port: int = 5000
    #: largest request body the API accepts, in bytes (413 above it)
    max_request_bytes: int = 2_000_000
    #: SQLite: how long a writer waits for the write lock before the API answers 503 database_busy
    sqlite_busy_timeout_seconds: float = 30.0
    #: engine steps run per request before the engine stops and reports a runaway model
    engine_step_budget: int = 10_000
    #: job executor: how long a worker owns a job before another may take it over
    job_lock_seconds: int = 300
    job_max_attempts: int = 5
    job_backoff_seconds: float = 2.0
    worker_poll_seconds: float = 0.5
    #: loaded workflows kept in memory per process (avoids a reload per step)
    workflow_cache_size: int = 256
    #: outbox delivery: webhook subscriber URLs (comma separated) and their HMAC secret
    webhook_urls: tuple[str, ...] = field(default_factory=tuple)
    webhook_secret: str = ""
    event_source: str = "urn:batchline"
    #: 21 CFR 11.300: lock an account after this many failed logins or signings in a row
    lockout_attempts: int = 5
    password_min_length: int = 10
    password_max_age_days: int = 180
    #: a continuous session ends after this much inactivity (signing then needs id + password)
    session_timeout_minutes: int = 15
    #: argon2id cost of password hashes
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _coerce(name: str, raw: Any, default: Any) -> Any:
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
