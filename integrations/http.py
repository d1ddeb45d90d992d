"""The built-in HTTP connector: a service task calls a URL (ERP, LIMS, QMS endpoints).

Service task parameters (Python expressions in the BPMN, evaluated on the task's data):
``url`` (required), ``method`` (default POST), ``body`` (a dict sent as JSON),
``headers`` (dict), ``timeout`` (seconds). The answer's JSON object is the task's
result. HTTP 202 Accepted means the other system will call back
(``POST /api/batches/{id}/tasks/{task}/callback``): the task waits. 4xx answers are
not retried (the request is wrong); 5xx, 429 and network errors are retried by the job
executor with backoff. An answer ``{"bpmn_error": "CODE", "message": ...}`` with a 4xx
status raises that BPMN error on the task, for an error boundary event to catch.
"""

from __future__ import annotations

from typing import Any

import requests

from engine.connectors import Completed, ConnectorError, Pending, ServiceCall

MAX_RESPONSE_BYTES = 1_000_000


class HttpConnector:
    def __init__(self, settings: Any = None, session: requests.Session | None = None):
        self.settings = settings
        self.session = session or requests.Session()

    def call(self, call: ServiceCall) -> Completed | Pending:
        params = call.params
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConnectorError(f"service task {call.bpmn_id}: parameter url must be an http(s) URL", retry=False)
        method = str(params.get("method", "POST")).upper()
        headers = {
            "Idempotency-Key": f"{call.batch_id}:{call.task_id}",
            "X-Batchline-Callback": call.callback_token,
            **(params.get("headers") or {}),
        }
        try:
            resp = self.session.request(
                method, url, json=params.get("body"), headers=headers, timeout=float(params.get("timeout", 10))
            )
        except requests.RequestException as exc:
            raise ConnectorError(f"{method} {url} failed: {exc.__class__.__name__}: {exc}") from exc
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise ConnectorError(f"{method} {url}: answer larger than {MAX_RESPONSE_BYTES} bytes", retry=False)
        body = _json(resp)
        if resp.status_code == 202:
            return Pending(str(body.get("reference")) if body.get("reference") else None)
        if 200 <= resp.status_code < 300:
            return Completed(body)
        message = f"{method} {url} answered HTTP {resp.status_code}: {str(body.get('message') or resp.text)[:300]}"
        if 400 <= resp.status_code < 500 and body.get("bpmn_error"):
            raise ConnectorError(message, retry=False, bpmn_error=str(body["bpmn_error"]))
        raise ConnectorError(message, retry=resp.status_code >= 500 or resp.status_code == 429)


def _json(resp: requests.Response) -> dict[str, Any]:
    if not resp.content:
        return {}
    try:
        value = resp.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"result": value}
