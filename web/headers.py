"""How answers travel: the session cookie's flags, HTTPS detection behind a proxy, and
the headers every answer carries.

Why one place for the whole app (API, UI, trend pages, docs): batch records and API
answers must not be stored by a shared tablet's browser or a proxy (``Cache-Control:
no-store``), no answer may be sniffed into another content type (``nosniff``), the
session cookie rides only over HTTPS (``Secure``, unless the demo or an explicit
setting says plain HTTP), never to scripts (``HttpOnly``) nor on another site's POST
(``SameSite=Lax``), and a browser that once reached the server over HTTPS keeps using
HTTPS (``Strict-Transport-Security``). Static files (scripts, styles) may be cached.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.config import Settings

NOSNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")


def install(app: Flask, settings: Settings) -> None:
    app.config.update(
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if settings.trust_forwarded_proto:
        # only the scheme is taken from the proxy (one hop); client addresses are not
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]
    hsts = f"max-age={int(settings.hsts_seconds)}"

    @app.after_request
    def _every_answer(response):
        response.headers.setdefault(*NOSNIFF)
        if not _is_static():
            response.headers[NO_STORE[0]] = NO_STORE[1]
            response.headers.pop("Expires", None)
        if request.is_secure and settings.hsts_seconds > 0:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        return response


def _is_static() -> bool:
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")
