"""Basic256Sha256 SignAndEncrypt with a certificate trust list: a trusted client gets in,
an untrusted one is refused (and its certificate lands in rejected/ for review), a client
without security is refused, even one that skips the endpoint check."""

from __future__ import annotations

import time

import pytest
from asyncua import Client, ua

from integrations.equipment_sim import NAMESPACE_URI, EquipmentSimulator, client_certificate

from .conftest import free_port, run, ua_tool

TOOL_URI = "urn:example.org:FreeOpcUa:opcua-asyncio"  # the application URI of asyncua's CLI tools


@pytest.fixture(scope="module")
def secure_sim(tmp_path_factory):
    pki = tmp_path_factory.mktemp("pki")
    with EquipmentSimulator("127.0.0.1", free_port(), security="sign-encrypt", pki_dir=pki) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clients")
    return {
        "trusted": client_certificate(folder, "urn:batchline:test:trusted", "trusted"),
        "stranger": client_certificate(folder, "urn:batchline:test:stranger", "stranger"),
        "tool": client_certificate(folder, TOOL_URI, "uatool"),
    }


async def read_state(sim, cert_key, uri):
    client = Client(sim.endpoint, timeout=5)
    client.application_uri = uri
    cert, key = cert_key
    await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key},{sim.server_certificate}")
    async with client:
        idx = await client.get_namespace_index(NAMESPACE_URI)
        return await client.get_node(ua.NodeId("BR-101.State", idx)).read_value()


def test_server_certificate_and_folders_are_made_on_first_start(secure_sim):
    pki = secure_sim.pki
    assert pki.cert.is_file() and pki.key.is_file() and pki.trusted.is_dir()
    assert pki.key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only


def test_trusted_client_connects_with_sign_and_encrypt(secure_sim, certificates):
    secure_sim.trust_client(certificates["trusted"][0])
    assert run(read_state(secure_sim, certificates["trusted"], "urn:batchline:test:trusted")) == "Idle"


def test_untrusted_client_is_refused_and_its_certificate_kept_for_review(secure_sim, certificates):
    with pytest.raises(ua.uaerrors.BadSecurityChecksFailed):
        run(read_state(secure_sim, certificates["stranger"], "urn:batchline:test:stranger"))
    assert any(p.name.startswith("stranger-") for p in secure_sim.pki.rejected.iterdir())


def test_certificate_uri_must_match_the_client(secure_sim, certificates):
    secure_sim.trust_client(certificates["trusted"][0])
    with pytest.raises(ua.uaerrors.BadCertificateUriInvalid):
        run(read_state(secure_sim, certificates["trusted"], "urn:someone:else"))


def test_asyncua_cli_tool_reads_over_sign_and_encrypt_once_trusted(secure_sim, certificates):
    cert, key = certificates["tool"]
    args = [
        "-u",
        secure_sim.endpoint,
        "-n",
        "ns=2;s=BR-101.State",
        "--security",
        f"Basic256Sha256,SignAndEncrypt,{cert},{key}",
    ]
    refused = ua_tool("uaread", *args)
    assert refused.returncode == 1 and "BadSecurityChecksFailed" in refused.stderr
    secure_sim.trust_client(cert)
    accepted = ua_tool("uaread", *args)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "Idle"


def test_a_certificate_copied_into_trusted_by_hand_is_picked_up(secure_sim, tmp_path):
    cert, key = client_certificate(tmp_path, "urn:batchline:test:by-hand", "byhand")
    (secure_sim.pki.trusted / "byhand.der").write_bytes(cert.read_bytes())
    time.sleep(1.3)  # the trust list is re-read every second
    assert run(read_state(secure_sim, (cert, key), "urn:batchline:test:by-hand")) == "Idle"


def test_client_without_security_is_refused(secure_sim):
    plain = ua_tool("uaread", "-u", secure_sim.endpoint, "-n", "ns=2;s=BR-101.State")
    assert plain.returncode == 1 and "No matching endpoints" in plain.stderr


def test_client_skipping_the_endpoint_check_gets_nothing_unsecured(secure_sim):
    """asyncua's server would otherwise fall back to an unsecured channel."""

    async def sneak():
        client = Client(secure_sim.endpoint, timeout=5)
        await client.connect_socket()
        try:
            await client.send_hello()
            await client.open_secure_channel()
            endpoints = await client.get_endpoints()  # discovery stays possible
            params = ua.CreateSessionParameters(
                ClientDescription=ua.ApplicationDescription(
                    ApplicationUri="urn:x", ApplicationType=ua.ApplicationType.Client
                ),
                EndpointUrl=secure_sim.endpoint,
                SessionName="sneak",
                ClientNonce=b"n" * 32,
                RequestedSessionTimeout=60_000,
            )
            await client.uaclient.create_session(params)
            await client.uaclient.activate_session(
                ua.ActivateSessionParameters(UserIdentityToken=ua.AnonymousIdentityToken(PolicyId="anonymous"))
            )
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.get_node("ns=2;s=BR-101.State").read_value()
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.get_node("ns=2;s=BR-101").call_method("2:Abort")
            return endpoints
        finally:
            client.disconnect_socket()

    endpoints = run(sneak())
    assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
    assert {e.SecurityPolicyUri for e in endpoints} == {"http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"}


def test_both_serves_none_and_sign_and_encrypt(tmp_path, certificates):
    with EquipmentSimulator("127.0.0.1", free_port(), security="both", pki_dir=tmp_path / "pki") as sim:
        assert ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.State")).stdout.strip() == "Idle"
        with pytest.raises(ua.uaerrors.BadSecurityChecksFailed):
            run(read_state(sim, certificates["stranger"], "urn:batchline:test:stranger"))
        sim.trust_client(certificates["trusted"][0])
        assert run(read_state(sim, certificates["trusted"], "urn:batchline:test:trusted")) == "Idle"


def test_security_needs_a_pki_folder():
    from integrations.equipment_sim import SimulatorError

    with pytest.raises(SimulatorError, match="PKI"):
        EquipmentSimulator("127.0.0.1", 1, security="sign-encrypt")
    with pytest.raises(SimulatorError, match="security must be one of"):
        EquipmentSimulator("127.0.0.1", 1, security="basic128")
