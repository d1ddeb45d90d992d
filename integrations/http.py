"""The built-in HTTP connector type: a service task calls an endpoint of another system
(ERP, LIMS, QMS) configured as a connector instance, so the recipe names no URL.

As a type (``batchline.connector_types`` entry point ``http``): the instance's endpoint is
the base URL, its secret (if any) is sent as ``Authorization: Bearer …`` (or in the header
its setting ``auth_header`` names, as is), its ``timeout_seconds`` bounds every request.
Service task parameters (Python expressions in the BPMN, evaluated on the task's data):
``path`` (appended to the endpoint, default none), ``method`` (default POST), ``body``
(a dict sent as JSON), ``headers`` (dict). A ``url`` parameter is refused: the address
belongs to the configuration.

Registered by code without a configuration (``HttpConnector()``, the old
``batchline.connectors`` entry point ``http``), it still takes a ``url`` parameter: kept
for recipes written before connector instances existed.

Every request carries ``Idempotency-Key: batch:task`` (the same on every retry, for the
other system's duplicate check). The answer's JSON object is the task's result. HTTP 202
Accepted means the other system will call back (``POST
/api/batches/{id}/tasks/{task}/callback``): the task waits. 4xx answers are not retried
(the request is wrong); 5xx, 429, timeouts and network errors are retried by the job
executor with backoff. An answer ``{"bpmn_error": "CODE", "message": ...}`` with a 4xx
status raises that BPMN error on the task, for an error boundary event to catch.
"""

from __future__ import annotations

from typing import Any

import requests

from engine.connectors import Completed, ConnectorConfig, ConnectorError, Pending, ServiceCall

MAX_RESPONSE_BYTES = 1_000_000
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def join_path(endpoint: str, path: Any, bpmn_id: str) -> str:
    """``endpoint`` + a relative path from the task; never another host."""
    if path in (None, ""):
        return endpoint
    if not isinstance(path, str) or len(path) > 1000 or "://" in path or ".." in path.split("/"):
        raise ConnectorError(f"service task {bpmn_id}: parameter path must be a relative path", retry=False)
    if any(c.isspace() or ord(c) < 32 for c in path):
        raise ConnectorError(f"service task {bpmn_id}: parameter path must not hold spaces", retry=False)
    return endpoint.rstrip("/") + "/" + path.lstrip("/")


def auth_headers(config: ConnectorConfig | None) -> dict[str, str]:
    if config is None or not config.secret:
        return {}
    header = str(config.settings.get("auth_header") or "Authorization")
    return {header: f"Bearer {config.secret}" if header.lower() == "authorization" else config.secret}


def scrub(text: str, config: ConnectorConfig | None) -> str:
    """An error message without the secret, whatever the other side echoed."""
    if config is not None and config.secret:
        return text.replace(config.secret, "***")
    return text


class HttpConnector:
    endpoint_schemes = ("http", "https")

    def __init__(self, settings: Any = None, runtime: Any = None, session: requests.Session | None = None):
        self.config = settings if isinstance(settings, ConnectorConfig) else None
        self.settings = None if self.config is not None else settings
        self.runtime = runtime
        self.session = session or requests.Session()

    def _url(self, call: ServiceCall) -> str:
        params = call.params
        if self.config is None:
            url = params.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConnectorError(f"service task {call.bpmn_id}: parameter url must be an http(s) URL", retry=False)
            return url
        if "url" in params:
            raise ConnectorError(
                f"service task {call.bpmn_id}: a recipe names no URL; connector {self.config.name!r} has the "
                "endpoint, give only a path",
                retry=False,
            )
        return join_path(self.config.endpoint, params.get("path"), call.bpmn_id)

    def _timeout(self, params: dict[str, Any]) -> float:
        limit = self.config.timeout_seconds if self.config is not None else 10.0
        try:
            asked = float(params.get("timeout", limit))
        except (TypeError, ValueError):
            asked = limit
        return max(0.1, min(asked, limit)) if self.config is not None else asked

    def call(self, call: ServiceCall) -> Completed | Pending:
        params = call.params
        url = self._url(call)
        method = str(params.get("method", "POST")).upper()
        if method not in METHODS:
            raise ConnectorError(f"service task {call.bpmn_id}: method {method[:20]!r} is not supported", retry=False)
        extra = params.get("headers") or {}
        if not isinstance(extra, dict):
            raise ConnectorError(f"service task {call.bpmn_id}: parameter headers must be a dict", retry=False)
        headers = {
            **{str(k): str(v) for k, v in extra.items()},
            "Idempotency-Key": call.idempotency_key,
            "X-Batchline-Callback": call.callback_token,
            **auth_headers(self.config),
        }
        try:
            resp = self.session.request(
                method, url, json=params.get("body"), headers=headers, timeout=self._timeout(params)
            )
        except requests.RequestException as exc:
            raise ConnectorError(
                scrub(f"{method} {url} failed: {exc.__class__.__name__}: {exc}", self.config)
            ) from None
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise ConnectorError(f"{method} {url}: answer larger than {MAX_RESPONSE_BYTES} bytes", retry=False)
        body = _json(resp)
        if resp.status_code == 202:
            return Pending(str(body.get("reference")) if body.get("reference") else None)
        if 200 <= resp.status_code < 300:
            return Completed(body)
        detail = str(body.get("message") or resp.text)[:300]
        message = scrub(f"{method} {url} answered HTTP {resp.status_code}: {detail}", self.config)
        if 400 <= resp.status_code < 500 and body.get("bpmn_error"):
            raise ConnectorError(message, retry=False, bpmn_error=str(body["bpmn_error"]))
        raise ConnectorError(message, retry=resp.status_code >= 500 or resp.status_code == 429)

    def check(self) -> str:
        """Dry connection check: any HTTP answer from the endpoint means it is reachable."""
        if self.config is None:
            raise ConnectorError("the http connector without configuration has no endpoint to check", retry=False)
        try:
            resp = self.session.request(
                "HEAD", self.config.endpoint, headers=auth_headers(self.config), timeout=self.config.timeout_seconds
            )
        except requests.RequestException as exc:
            raise ConnectorError(
                scrub(f"{self.config.endpoint} unreachable: {type(exc).__name__}: {exc}", self.config)
            ) from None
        return f"{self.config.endpoint} answered HTTP {resp.status_code}"


def _json(resp: requests.Response) -> dict[str, Any]:
    if not resp.content:
        return {}
    try:
        value = resp.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"result": value}
