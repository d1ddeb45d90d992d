"""The demo's partner LIMS: ``integrations.partner_lims`` in a thread of the demo
process, configured as the connector instance ``lims`` (type ``lims-rest``), so the
library recipes' ``lims.sample`` tasks reach it instead of the in-process simulator.

The shared secret is made new at each start (stored encrypted, never readable back) and
the LIMS answers with a fresh API token of the demo's ``svc.lims`` service account.
Call ``start(rt, batchline_url)`` once the web server listens; ``stop()`` the answer at
exit.
"""

from __future__ import annotations

import secrets

from engine import connector_config, users
from engine.errors import BatchlineError, NotFound
from engine.runtime import Runtime
from integrations.partner_lims import PartnerLims, start_partner_lims

NAME = "lims"
#: who configures the demo LIMS (the demo plant's administrator) and whose token it uses
ADMIN = "admin"
SERVICE_ACCOUNT = "svc.lims"


def start(rt: Runtime, batchline_url: str, *, port: int = 0, delay: float = 5.0) -> PartnerLims:
    """Start the partner LIMS and point the ``lims`` connector at it."""
    try:
        token = users.create_token(rt, SERVICE_ACCOUNT, "demo partner LIMS", by=ADMIN)
    except BatchlineError:  # a database seeded without the demo's service account
        users.create_user(rt, SERVICE_ACCOUNT, "LIMS interface", ["service"], by=ADMIN, kind="service")
        token = users.create_token(rt, SERVICE_ACCOUNT, "demo partner LIMS", by=ADMIN)
    secret = secrets.token_urlsafe(32)
    lims = start_partner_lims(port, batchline_url, token, secret, delay=delay)
    fields = {"endpoint": lims.url, "secret": secret, "timeout_seconds": 5.0}
    try:
        connector_config.update(rt, NAME, by=ADMIN, type="lims-rest", enabled=True, **fields)
    except NotFound:
        connector_config.add(rt, name=NAME, type="lims-rest", by=ADMIN, **fields)
    return lims
