"""The OIDC rules without the provider: the settings' checks, claims -> person, the
group -> role mapping, the re-authentication's freshness, and the ID token's check
against tokens made here (signed with a key this test owns) — every way a token can lie:
another issuer, another audience, expired, ``alg: none``, an HMAC with the client
secret, a wrong nonce, a tampered payload, a key the provider never published."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from engine.config import load_settings
from engine.identity import oidc
from engine.identity.oidc import OidcNotConfigured, OidcRefused
from engine.models import User
from web.ui.oidc_client import verify

ISSUER = "https://login.example.org/realms/plant"
NONCE = "n-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


@pytest.fixture(scope="module")
def keys(key) -> KeySet:
    return KeySet.import_key_set({"keys": [key.as_dict(private=False)]})


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> oidc.OidcConfig:
    secret = tmp_path_factory.mktemp("oidc") / "secret"
    secret.write_text("s3cret-value\n")
    settings = load_settings(
        database_url="sqlite:///:memory:",
        oidc_issuer=ISSUER + "/",
        oidc_client_id="batchline",
        oidc_client_secret=f"file:{secret}",
        oidc_redirect_url="https://mes.example.org/login/oidc/callback",
        oidc_group_roles=("ops=operator", "ops=trainer", "qa=qa", "/plant/sup=supervisor"),
    )
    return oidc.config_of(settings)


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "batchline",
        "sub": "248289761001",
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "auth_time": now,
        "preferred_username": "Jane.Doe",
        "name": "Jane Doe",
        "groups": ["ops", "canteen"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(key, body: dict, alg: str = "RS256", kid: str = "k1") -> str:
    return jwt.encode({"alg": alg, "kid": kid}, body, key)


def test_a_good_token_is_believed(cfg, key, keys):
    got = verify(cfg, signed(key, claims()), NONCE, keys=keys)
    assert got["sub"] == "248289761001"
    person = oidc.person_from_claims(cfg, got)
    assert person.username == "jane.doe" and person.printed_name == "Jane Doe"
    assert person.external_id == f"{ISSUER}|248289761001" and person.source == "oidc"
    assert person.roles == ("operator", "trainer")


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "https://evil.example.org"},
        {"iss": None},
        {"aud": "other-app"},
        {"aud": ["other-app", "third"]},
        {"aud": ["batchline", "other-app"]},  # several audiences and no azp naming us
        {"exp": int(time.time()) - 120},
        {"exp": None},
        {"nonce": "another-nonce"},
        {"nonce": None},
        {"sub": None},
        {"iat": None},
    ],
)
def test_a_lying_token_is_refused(cfg, key, keys, changes):
    with pytest.raises(OidcRefused) as refused:
        verify(cfg, signed(key, claims(**changes)), NONCE, keys=keys)
    assert refused.value.code == "oidc_invalid_token"


def test_several_audiences_with_our_azp_are_believed(cfg, key, keys):
    verify(cfg, signed(key, claims(aud=["batchline", "api"], azp="batchline")), NONCE, keys=keys)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_an_hmac_with_the_secret_and_a_tampered_payload_are_refused(cfg, key, keys):
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims()) + "."
    hmac = jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key(b"s3cret-value" * 3))
    header, _, signature = signed(key, claims()).split(".")
    tampered = f"{header}.{_b64(claims(groups=['qa']))}.{signature}"
    other_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    for token in (unsigned, hmac, tampered, signed(other_key, claims()), "not.a.token", "x" * 30_000):
        with pytest.raises(OidcRefused):
            verify(cfg, token, NONCE, keys=keys)


def test_settings_are_checked():
    def config(**values):
        base = dict(
            database_url="sqlite:///:memory:",
            oidc_issuer=ISSUER,
            oidc_client_id="batchline",
            oidc_client_secret="env:OIDC_SECRET",
            oidc_redirect_url="https://mes/login/oidc/callback",
        )
        return oidc.config_of(load_settings(**{**base, **values}))

    assert config().scopes == ("openid", "profile")
    for bad, words in [
        ({"oidc_issuer": "login.example.org"}, "https://"),
        ({"oidc_client_id": ""}, "oidc_client_id"),
        ({"oidc_client_secret": "plain-secret"}, "env:NAME"),
        ({"oidc_client_secret": "file:relative/path"}, "env:NAME"),
        ({"oidc_redirect_url": ""}, "oidc_redirect_url"),
        ({"oidc_scopes": ("profile",)}, "openid"),
        ({"oidc_algorithms": ("RS256", "none")}, "never none"),
        ({"oidc_algorithms": ("HS256",)}, "never none"),
        ({"oidc_group_roles": ("ops",)}, "group=role"),
        ({"oidc_group_roles": ("ops=wizard",)}, "group=role"),
        ({"oidc_group_roles": ("ops=service",)}, "group=role"),
    ]:
        with pytest.raises(OidcNotConfigured, match=words):
            config(**bad)


def test_the_client_secret_is_read_from_its_reference(cfg, monkeypatch):
    assert cfg.client_secret() == "s3cret-value"
    env = replace(cfg, client_secret_ref="env:BL_OIDC_TEST_SECRET")
    monkeypatch.delenv("BL_OIDC_TEST_SECRET", raising=False)
    with pytest.raises(OidcNotConfigured, match="not set"):
        env.client_secret()
    monkeypatch.setenv("BL_OIDC_TEST_SECRET", "from-env")
    assert env.client_secret() == "from-env"
    with pytest.raises(OidcNotConfigured, match="cannot be read"):
        replace(cfg, client_secret_ref="file:/nonexistent/secret").client_secret()


@pytest.mark.parametrize(
    "groups, roles",
    [
        (["ops"], ("operator", "trainer")),
        (["qa", "ops", "qa"], ("operator", "qa", "trainer")),
        ("qa", ("qa",)),
        (["/plant/sup"], ("supervisor",)),
        (["canteen"], ()),
        ([], ()),
        (None, ()),
        ({"ops": True}, ()),
        ([["ops"], 3, None], ()),
    ],
)
def test_groups_map_to_roles(cfg, groups, roles):
    assert oidc.roles_for(cfg, groups) == roles


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"preferred_username": None}, "oidc_claims"),
        ({"preferred_username": "x"}, "oidc_claims"),
        ({"preferred_username": "jane doe"}, "oidc_claims"),
        ({"preferred_username": "jane@example.org"}, "oidc_claims"),
        ({"preferred_username": 42}, "oidc_claims"),
        ({"sub": ""}, "oidc_claims"),
        ({"sub": "a" * 256}, "oidc_claims"),
        ({"sub": "bad\nsub"}, "oidc_claims"),
        ({"sub": 12345}, "oidc_claims"),
    ],
)
def test_unusable_claims_are_refused(cfg, changes, code):
    with pytest.raises(OidcRefused) as refused:
        oidc.person_from_claims(cfg, claims(**changes))
    assert refused.value.code == code


def test_a_missing_name_falls_back_to_the_user_id(cfg):
    assert oidc.person_from_claims(cfg, claims(name=None)).printed_name == "jane.doe"
    assert oidc.person_from_claims(cfg, claims(name="  ")).printed_name == "jane.doe"


def test_the_reauthentication_must_be_the_signer_and_fresh(cfg):
    signer = User(username="jane.doe", source="oidc", external_id=f"{ISSUER}|248289761001")
    now = datetime.now(UTC)
    assert oidc.check_reauth(cfg, claims(), signer, now) <= now
    fresh_edge = int((now - timedelta(seconds=cfg.reauth_seconds - 5)).timestamp())
    oidc.check_reauth(cfg, claims(auth_time=fresh_edge), signer, now)
    for changes, code in [
        ({"sub": "someone-else"}, "oidc_other_person"),
        ({"auth_time": int((now - timedelta(seconds=cfg.reauth_seconds + 5)).timestamp())}, "oidc_stale_auth"),
        ({"auth_time": int((now + timedelta(minutes=10)).timestamp())}, "oidc_stale_auth"),
        ({"auth_time": None}, "oidc_auth_time"),
        ({"auth_time": "now"}, "oidc_auth_time"),
        ({"auth_time": True}, "oidc_auth_time"),
    ]:
        with pytest.raises(OidcRefused) as refused:
            oidc.check_reauth(cfg, claims(**changes), signer, now)
        assert refused.value.code == code, changes
    local = User(username="jane.doe", source="local", external_id=None)
    with pytest.raises(OidcRefused):
        oidc.check_reauth(cfg, claims(), local, now)
