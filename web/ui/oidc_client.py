"""Talking to the OIDC provider: its discovery document and keys, the authorization URL
(code flow, PKCE S256, state, nonce), the token exchange and the ID token's check.

Why here and checked this strictly: the ID token is the only proof of who signed in. It
is believed only when its signature verifies with a key from the provider's JWKS under
an allowed asymmetric algorithm (never ``none``, never HS* with the client secret), it
was issued by the configured issuer to this client (``iss``, ``aud``, ``azp``), it has
not expired, and it carries the nonce this server sent. authlib builds the request
(``prepare_grant_uri``, the S256 challenge); joserfc (authlib's JOSE library) verifies.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from engine.identity.oidc import OidcConfig, OidcRefused

TIMEOUT = 10.0
#: how long discovery and keys are reused before they are fetched again
CACHE_SECONDS = 300
#: clock difference tolerated with the provider
LEEWAY = 60


class ProviderUnreachable(Exception):
    """The provider did not answer as an OIDC provider does."""


@dataclass
class _Provider:
    fetched: float
    metadata: dict[str, Any]
    keys: KeySet


_cache: dict[str, _Provider] = {}
_lock = threading.Lock()


def _get_json(url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(url, timeout=TIMEOUT, follow_redirects=False)
        answer.raise_for_status()
        data = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnreachable(f"{url}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ProviderUnreachable(f"{url}: not a JSON object")
    return data


def _load(cfg: OidcConfig) -> _Provider:
    metadata = _get_json(cfg.issuer + "/.well-known/openid-configuration")
    if str(metadata.get("issuer", "")).rstrip("/") != cfg.issuer:
        raise ProviderUnreachable("the discovery document names another issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise ProviderUnreachable(f"the discovery document has no {key}")
    try:
        keys = KeySet.import_key_set(_get_json(metadata["jwks_uri"]))  # type: ignore[arg-type]
    except (ValueError, KeyError, jose_errors.JoseError) as exc:
        raise ProviderUnreachable(f"the provider's keys cannot be read ({type(exc).__name__})") from None
    return _Provider(time.monotonic(), metadata, keys)


def provider(cfg: OidcConfig, *, refresh: bool = False) -> _Provider:
    with _lock:
        known = _cache.get(cfg.issuer)
        if refresh or known is None or time.monotonic() - known.fetched > CACHE_SECONDS:
            known = _cache[cfg.issuer] = _load(cfg)
        return known


def authorization_url(cfg: OidcConfig, state: str, nonce: str, code_verifier: str, *, reauth: bool = False) -> str:
    """Where the browser goes to sign in; ``reauth``: the provider must ask again now."""
    extra: dict[str, Any] = {
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    if reauth:
        extra.update(prompt="login", max_age=0)
    return prepare_grant_uri(
        provider(cfg).metadata["authorization_endpoint"],
        client_id=cfg.client_id,
        response_type="code",
        redirect_uri=cfg.redirect_url,
        scope=" ".join(cfg.scopes),
        state=state,
        **extra,
    )


def exchange(cfg: OidcConfig, code: str, code_verifier: str) -> str:
    """The ID token for an authorization code (the client authenticates with its secret)."""
    try:
        answer = httpx.post(
            provider(cfg).metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": cfg.redirect_url,
                "code_verifier": code_verifier,
            },
            auth=(cfg.client_id, cfg.client_secret()),
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise ProviderUnreachable(f"token endpoint: {type(exc).__name__}") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        raise OidcRefused(
            "the provider did not accept this sign-in (the code is used or expired); please sign in again",
            code="oidc_code_refused",
        )
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise OidcRefused("the provider's answer has no ID token", code="oidc_no_id_token")
    return id_token


def verify(cfg: OidcConfig, id_token: str, nonce: str, keys: KeySet | None = None) -> dict[str, Any]:
    """The ID token's claims once it proved itself (see the module's docstring)."""
    refused = OidcRefused("the provider's answer could not be verified; sign in again", code="oidc_invalid_token")
    if len(id_token) > 20_000:
        raise refused
    key_set = keys or provider(cfg).keys
    try:
        try:
            token = jwt.decode(id_token, key_set, algorithms=list(cfg.algorithms))
        except (jose_errors.InvalidKeyIdError, jose_errors.MissingKeyError, ValueError):
            if keys is not None:
                raise
            # the provider may have rotated its keys since they were fetched
            token = jwt.decode(id_token, provider(cfg, refresh=True).keys, algorithms=list(cfg.algorithms))
        if token.header.get("alg") not in cfg.algorithms:
            raise refused
        claims = token.claims
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": cfg.issuer},
            aud={"essential": True, "value": cfg.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(claims)
    except (jose_errors.JoseError, ValueError, TypeError):
        raise refused from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != cfg.client_id:
        raise refused
    return dict(claims)


__all__ = ["ProviderUnreachable", "authorization_url", "exchange", "provider", "verify"]
