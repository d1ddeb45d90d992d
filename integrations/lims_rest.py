"""The ``lims-rest`` connector type: registers samples in a LIMS over a small REST
contract (docs/connectors.md, "LIMS REST contract").

Out, for a service task ``<instance>.sample_request`` (``<instance>.sample`` too, the
library recipes' older name)::

    POST {endpoint}/samples
    Authorization: Bearer <the instance's secret>
    Idempotency-Key: <batch>:<task>            (the same on every retry)
    {"batch": "MAB-001", "sample_point": "pre-harvest", "tests": ["titre", "bioburden"],
     "order": "PO-1", "specifications": {"titre": {"low": 4.0, "high": 6.0, "unit": "g/L"}}}
    -> 201 {"sample_id": "S-000123"}   (200 with the same sample for a repeated key)

The task completes with ``{"sample_id": ..., "status": "registered"}``; the batch then
waits for the ``lims_result`` message, which the LIMS sends to ``POST /api/lims/results``
(``engine.lims``). The specification limits sent are kept with the sample id, so a result
is checked against them even when the LIMS does not echo them.

Errors: a 4xx answer is not retried (the request is wrong, the message says why); 5xx,
429, timeouts (the instance's ``timeout_seconds``) and refused connections are retried by
the job executor and become an incident with the real error when it gives up. The secret
is never in a message.
"""

from __future__ import annotations

from typing import Any

import requests

from engine import lims
from engine.connectors import Completed, ConnectorConfig, ConnectorError, ServiceCall

from .http import auth_headers, scrub

OPERATIONS = frozenset({"sample_request", "sample"})
MAX_ANSWER = 100_000


def _tests(value: Any, bpmn_id: str) -> list[str]:
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in value):
        raise ConnectorError(f"service task {bpmn_id}: parameter tests names at least one test", retry=False)
    return value


def _specs(value: Any, bpmn_id: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConnectorError(
            f"service task {bpmn_id}: parameter specifications maps a test to {{low, high, unit}}", retry=False
        )
    return {str(k): {f: v[f] for f in ("low", "high", "unit") if f in v} for k, v in value.items()}


class LimsRestConnector:
    endpoint_schemes = ("http", "https")

    def __init__(self, config: ConnectorConfig, runtime: Any = None, session: requests.Session | None = None):
        self.config = config
        self.runtime = runtime
        self.session = session or requests.Session()

    def _url(self, path: str) -> str:
        return self.config.endpoint.rstrip("/") + path

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = self._url(path)
        try:
            return self.session.request(method, url, timeout=self.config.timeout_seconds, **kw)
        except requests.RequestException as exc:
            raise ConnectorError(
                scrub(f"LIMS {self.config.name!r}: {method} {url} failed: {type(exc).__name__}: {exc}", self.config)
            ) from None

    def call(self, call: ServiceCall) -> Completed:
        if call.operation not in OPERATIONS:
            raise ConnectorError(
                f"LIMS {self.config.name!r} has no operation {call.operation!r} (it offers sample_request)",
                retry=False,
            )
        p = call.params
        specs = _specs(p.get("specifications"), call.bpmn_id)
        body = {
            "batch": str(p.get("batch") or call.batch_id),
            "sample_point": str(p.get("sample_point") or ""),
            "tests": _tests(p.get("tests") or p.get("test"), call.bpmn_id),
            "order": p.get("order") if isinstance(p.get("order"), str) else None,
            "specifications": specs,
        }
        headers = {"Idempotency-Key": call.idempotency_key, **auth_headers(self.config)}
        resp = self._request("POST", "/samples", json=body, headers=headers)
        answer = _json(resp)
        if resp.status_code in (200, 201):
            sample_id = answer.get("sample_id")
            if not isinstance(sample_id, str) or not 0 < len(sample_id) <= 100:
                raise ConnectorError(f"LIMS {self.config.name!r} answered without a sample_id", retry=False)
            if self.runtime is not None:
                lims.record_sample(
                    self.runtime,
                    sample_id=sample_id,
                    connector=self.config.name,
                    batch_id=call.batch_id,
                    task_key=call.idempotency_key,
                    specs=specs,
                )
            return Completed({"sample_id": sample_id, "status": "registered"})
        detail = scrub(str(answer.get("message") or resp.text)[:300], self.config)
        message = f"LIMS {self.config.name!r}: POST {self._url('/samples')} answered HTTP {resp.status_code}: {detail}"
        raise ConnectorError(message, retry=resp.status_code >= 500 or resp.status_code == 429)

    def check(self) -> str:
        """Dry check: ``GET {endpoint}/health`` must answer 200 with the secret accepted."""
        resp = self._request("GET", "/health", headers=auth_headers(self.config))
        if resp.status_code != 200:
            raise ConnectorError(f"LIMS {self.config.name!r}: GET /health answered HTTP {resp.status_code}")
        return f"LIMS {self.config.name!r} is reachable"


def _json(resp: requests.Response) -> dict[str, Any]:
    if not resp.content or len(resp.content) > MAX_ANSWER:
        return {}
    try:
        value = resp.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
