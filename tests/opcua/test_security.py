"""Basic256Sha256 SignAndEncrypt against the simulator with certificate trust: a client
whose certificate the server trusts reads and calls; an untrusted one, or one without
security, is refused with an error that says so."""

from __future__ import annotations

import pytest

from engine.connectors import ServiceCall
from integrations.equipment_sim import EquipmentSimulator, client_certificate
from integrations.opcua.connector import OpcUaConnector

from .conftest import config_for, free_port

CLIENT_URI = "urn:batchline:tests:opcua-client"


@pytest.fixture(scope="module")
def secure_sim(tmp_path_factory):
    pki = tmp_path_factory.mktemp("server-pki")
    simulator = EquipmentSimulator("127.0.0.1", free_port(), speed=3600.0, security="sign-encrypt", pki_dir=pki)
    simulator.start()
    yield simulator
    simulator.close()


def _connector(sim, **settings) -> OpcUaConnector:
    return OpcUaConnector(config_for(sim, **settings))


def _read(connector) -> dict:
    return connector.call(ServiceCall("B", "t", "x", "BR-101.read", {"nodes": ["Temperature", "State"]}, "cb")).data


def test_trusted_client_certificate_signs_and_encrypts(secure_sim, tmp_path):
    cert, key = client_certificate(tmp_path / "client", CLIENT_URI)
    secure_sim.trust_client(cert)
    connector = _connector(
        secure_sim,
        security="Basic256Sha256",
        certificate=str(cert),
        private_key=str(key),
        server_certificate=str(secure_sim.server_certificate),
    )
    try:
        data = _read(connector)
        assert isinstance(data["Temperature"], float) and data["State"] in ("Idle", "Complete", "Running")
        policy = connector.link._client.security_policy
        assert policy.URI.endswith("#Basic256Sha256")
        assert connector.link._client.security_policy.Mode.name == "SignAndEncrypt"
        result = connector.call(ServiceCall("B", "t", "x", "BR-101.call", {"method": "BAL-01.Tare"}, "cb"))
        assert result.data["method"] == "BAL-01.Tare"
    finally:
        connector.close()


def test_untrusted_client_certificate_is_refused(secure_sim, tmp_path):
    from engine.connectors import ConnectorError

    cert, key = client_certificate(tmp_path / "stranger", CLIENT_URI, name="stranger")
    connector = _connector(
        secure_sim,
        security="Basic256Sha256",
        certificate=str(cert),
        private_key=str(key),
        server_certificate=str(secure_sim.server_certificate),
    )
    try:
        with pytest.raises(ConnectorError) as err:
            _read(connector)
        assert str(secure_sim.port) in str(err.value) and "trust list" in str(err.value)
        assert err.value.retry is False
    finally:
        connector.close()


def test_no_security_is_refused_by_a_sign_and_encrypt_server(secure_sim):
    from engine.connectors import ConnectorError

    connector = _connector(secure_sim)
    try:
        with pytest.raises(ConnectorError) as err:
            _read(connector)
        assert "offers no endpoint with security None" in str(err.value) and err.value.retry is False
    finally:
        connector.close()


def _encrypted_key(key_path, password: bytes):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    sealed = key_path.with_name("sealed.pem")
    sealed.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return sealed


def test_key_password_is_the_instance_secret_and_never_shown(secure_sim, tmp_path):
    from dataclasses import replace

    from engine.connectors import ConnectorError

    cert, key = client_certificate(tmp_path / "sealed", CLIENT_URI, name="sealed-client")
    secure_sim.trust_client(cert)
    sealed = _encrypted_key(key, b"right-key-password-42")
    config = config_for(
        secure_sim,
        security="Basic256Sha256",
        certificate=str(cert),
        private_key=str(sealed),
        server_certificate=str(secure_sim.server_certificate),
    )
    wrong = OpcUaConnector(replace(config, secret="wrong-key-password-17"))
    try:
        with pytest.raises(ConnectorError) as err:
            _read(wrong)
        assert "wrong-key-password-17" not in str(err.value) and err.value.retry is False
        assert str(secure_sim.port) in str(err.value)
    finally:
        wrong.close()
    right = OpcUaConnector(replace(config, secret="right-key-password-42"))
    try:
        assert isinstance(_read(right)["Temperature"], float)
    finally:
        right.close()
