"""The ``erp-b2mml`` connector type: Batchline talking to an ERP in B2MML over HTTP.

A configured instance (``ConnectorConfig``: endpoint = the ERP's base URL, secret = its
bearer token) serves two operations:

- ``confirm_order``: POST the process order's ``OperationsPerformance`` (built and
  validated by ``engine.order_confirmations``) to ``<endpoint>/confirmations``
  (``settings["confirm_order_path"]``) as ``application/xml``;
- ``confirm_consumption`` (the library's ``erp.confirm_consumption`` service tasks):
  POST the goods movement as JSON to ``<endpoint>/goods-movements``
  (``settings["confirm_consumption_path"]``); the answer's
  ``document`` is the task's result.

Every request carries ``Idempotency-Key`` (the task: the same on every retry, so the
ERP acts once) and honours the instance's timeout. Network errors, 5xx, 408 and 429 are
retried by the job executor; other 4xx are not (the request is wrong). Error messages
say what went wrong and never contain the secret.
"""

from __future__ import annotations

from typing import Any

import requests

from engine.connectors import Completed, ConnectorConfig, ConnectorError, ServiceCall

MAX_RESPONSE_BYTES = 1_000_000
PATHS = {"confirm_order": "confirmations", "confirm_consumption": "goods-movements"}


class ErpB2mmlConnector:
    """``factory(config, runtime) -> Connector`` of the connector contract."""

    def __init__(self, config: ConnectorConfig, runtime: Any = None, session: requests.Session | None = None):
        if not config.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"connector {config.name}: the endpoint must be the ERP's http(s) base URL")
        self.config = config
        self.session = session or requests.Session()

    def _url(self, operation: str) -> str:
        path = self.config.settings.get(f"{operation}_path") or PATHS[operation]
        return self.config.endpoint.rstrip("/") + "/" + str(path).lstrip("/")

    def _clean(self, text: str) -> str:
        secret = self.config.secret
        return text.replace(secret, "***") if secret else text

    def call(self, call: ServiceCall) -> Completed:
        operation = call.operation
        if operation not in PATHS:
            raise ConnectorError(
                f"connector {self.config.name} (erp-b2mml) has no operation {operation!r}; "
                f"it has {', '.join(sorted(PATHS))}",
                retry=False,
            )
        headers = {"Idempotency-Key": call.idempotency_key, "Accept": "application/json"}
        if self.config.secret:
            headers["Authorization"] = f"Bearer {self.config.secret}"
        if operation == "confirm_order":
            document = call.params.get("document")
            if not isinstance(document, str) or not document:
                raise ConnectorError("confirm_order needs the OperationsPerformance document", retry=False)
            kwargs: dict[str, Any] = {"data": document.encode("utf-8")}
            headers["Content-Type"] = "application/xml"
        else:
            kwargs = {"json": {k: v for k, v in call.params.items() if k != "document"}}
        url = self._url(operation)
        try:
            resp = self.session.post(url, headers=headers, timeout=self.config.timeout_seconds, **kwargs)
        except requests.RequestException as exc:
            raise ConnectorError(
                self._clean(f"ERP {self.config.name}: POST {url} failed: {type(exc).__name__}: {exc}")
            ) from None
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise ConnectorError(f"ERP {self.config.name}: answer larger than {MAX_RESPONSE_BYTES} bytes", retry=False)
        body = _json(resp)
        if 200 <= resp.status_code < 300:
            return Completed({k: v for k, v in body.items() if isinstance(v, (str, int, float, bool))})
        message = self._clean(
            f"ERP {self.config.name}: POST {url} answered HTTP {resp.status_code}: "
            f"{str(body.get('message') or resp.text)[:300]}"
        )
        raise ConnectorError(message, retry=resp.status_code >= 500 or resp.status_code in (408, 429))


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        value = resp.json() if resp.content else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"result": value}
