"""The link to a quality management system (QMS) and to other event subscribers.

Modules: ``secrets`` (subscriber secrets encrypted at rest under a key file the database
does not hold), ``subscribers`` (configured without code; the per-process list that
``engine.outbox.emit`` matches every event against), ``inbound`` (the QMS's signed
answers: Standard Webhooks verification, replay protection), ``deviations`` (the
deviation linked to an exception: opened, status changed, closed with a CAPA).
docs/security.md, "Subscriber secrets and QMS messages", says what is protected how.
"""
