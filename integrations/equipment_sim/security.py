"""Certificates and trust for the simulator: Basic256Sha256 SignAndEncrypt, and only for
clients whose certificate an administrator has put in the trust list.

PKI folder layout (``--pki DIR``, created on first start)::

    own/cert.der            the server's certificate (self-signed, made on first start)
    own/private/key.pem     its private key (mode 0600)
    trusted/                client certificates (DER or PEM) that may connect
    rejected/               certificates of refused clients, to review and move to trusted/

A client is checked twice: when it opens a secure channel (its certificate must be in
``trusted/``, whatever it later sends) and when it creates a session (validity dates,
trust, and the certificate's URI must equal the client's application URI). asyncua's
default accepts any certificate; this does not. ``trusted/`` is re-read when it changes,
so trusting a client needs no restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import PermissionRuleset
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

log = logging.getLogger("batchline.equipment_sim.security")
MODES = ("none", "sign-encrypt", "both")
POLICIES = {
    "none": [ua.SecurityPolicyType.NoSecurity],
    "sign-encrypt": [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
    "both": [ua.SecurityPolicyType.NoSecurity, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
}
SUBJECT = {"organizationName": "Batchline", "countryName": "CH"}


class Pki:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.cert = self.root / "own" / "cert.der"
        self.key = self.root / "own" / "private" / "key.pem"
        self.trusted = self.root / "trusted"
        self.rejected = self.root / "rejected"

    def create(self) -> None:
        for folder in (self.key.parent, self.trusted, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.key.parent, 0o700)

    async def server_certificate(self, application_uri: str, host: str) -> None:
        """Make the server's key and certificate unless valid ones exist."""
        self.create()
        await cert_gen.setup_self_signed_certificate(
            self.key,
            self.cert,
            application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH],
            {**SUBJECT, "commonName": "Batchline equipment simulator"},
        )
        os.chmod(self.key, 0o600)

    def trust(self, certificate: str | Path | bytes) -> Path:
        """Put a client certificate (path or DER/PEM bytes) into ``trusted/``."""
        data = Path(certificate).read_bytes() if isinstance(certificate, str | Path) else certificate
        cert = _load(data)
        self.trusted.mkdir(parents=True, exist_ok=True)
        path = self.trusted / f"{_name(cert)}.der"
        path.write_bytes(cert.public_bytes(Encoding.DER))
        return path


def _load(data: bytes) -> x509.Certificate:
    return (
        x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )


def _name(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in (str(cn[0].value) if cn else "client"))[:40]
    return f"{label}-{hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()[:12]}"  # noqa: S324 (a file name)


class FolderTrustStore(TrustStore):
    """asyncua's TrustStore, tolerant of an empty folder (trust nobody) and of a file that
    is not a certificate (skipped with a warning) instead of failing the start."""

    async def load_trust(self) -> None:
        certs = []
        for location in self.trust_locations:
            for path in sorted(Path(location).glob("*")):
                if not path.is_file() or path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
                    continue
                try:
                    certs.append(_load(path.read_bytes()))
                except ValueError:
                    log.warning("%s is not a certificate; ignored", path)
        self._trust_store = x509.verification.Store(certs) if certs else None


class TrustList:
    """The ``trusted/`` folder as a trust store, re-read when the folder changes."""

    def __init__(self, pki: Pki):
        self.pki = pki
        self.store = FolderTrustStore([pki.trusted], [])
        self._seen: tuple | None = None

    def _signature(self) -> tuple:
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.pki.trusted.glob("*") if p.is_file()))

    async def refresh(self) -> None:
        signature = self._signature()
        if signature != self._seen:
            await self.store.load()
            self._seen = signature

    def trusted(self, der: bytes) -> bool:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        try:
            return self.store.is_trusted(cert)
        except Exception:  # a malformed certificate is simply not trusted
            return False

    def reject(self, der: bytes) -> None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return
        self.pki.rejected.mkdir(parents=True, exist_ok=True)
        path = self.pki.rejected / f"{_name(cert)}.der"
        if not path.exists():
            path.write_bytes(der)
        log.warning("refused an untrusted client certificate; to trust it move %s to %s", path, self.pki.trusted)


class ChannelRefused(ua.uaerrors.BadSecurityChecksFailed, ua.uaerrors.BadRequestTooLarge):
    """Refuses a secure channel with a TCP Error message ``BadSecurityChecksFailed`` (what
    OPC UA Part 6 asks for an untrusted certificate) and closes the connection. asyncua's
    processor answers an OpenSecureChannel with such a message only for this error class,
    hence the odd base; any other exception leaves the client waiting for its timeout."""

    code = ua.StatusCodes.BadSecurityChecksFailed

    def __str__(self) -> str:
        return "the client certificate is not trusted by this server (see its pki rejected/ folder)"


# defining the class registered it as *the* class of its status code (asyncua builds client
# errors from that table): give the code back to asyncua's own class
ua.uaerrors.UaStatusCodeError._subclasses[ua.StatusCodes.BadSecurityChecksFailed] = ua.uaerrors.BadSecurityChecksFailed


class TrustedChannels:
    """Wraps an asyncua SecurityPolicyFactory: a secure channel opens only for a client
    certificate in the trust list (checked before any session exists)."""

    def __init__(self, factory, trust: TrustList):
        self.factory, self.trust = factory, trust
        self.mode = factory.mode

    def matches(self, uri, mode=None):
        return self.factory.matches(uri, mode)

    def create(self, peer_certificate):
        if self.factory.mode != ua.MessageSecurityMode.None_:
            if not peer_certificate or not self.trust.trusted(peer_certificate):
                if peer_certificate:
                    self.trust.reject(peer_certificate)
                raise ChannelRefused()
        return self.factory.create(peer_certificate)


class DiscoveryOnly(PermissionRuleset):
    """No service at all (GetEndpoints and FindServers are not checked by asyncua)."""

    def check_validity(self, user, action_type_id, body):
        return False


class NoUnsecuredChannels:
    """An unsecured channel for discovery only, on a server meant to be SignAndEncrypt
    only. Without it asyncua falls back to an unsecured channel when no endpoint matches,
    and a client that skips the endpoint check could read, write and call methods; with
    it every such request is answered BadUserAccessDenied."""

    mode = ua.MessageSecurityMode.None_

    def matches(self, uri, mode=None):
        return uri == SecurityPolicyNone.URI or not uri

    def create(self, peer_certificate):
        return SecurityPolicyNone(
            peer_certificate, None, None, ua.MessageSecurityMode.None_, permission_ruleset=DiscoveryOnly()
        )


def session_validator(trust: TrustList) -> CertificateValidator:
    """CreateSession check: dates, the URI in the certificate, and trust."""
    options = (
        CertificateValidatorOptions.TIME_RANGE
        | CertificateValidatorOptions.URI
        | CertificateValidatorOptions.TRUSTED
        | CertificateValidatorOptions.PEER_CLIENT
    )

    class Validator(CertificateValidator):
        async def validate(self, cert, app_description):
            await trust.refresh()
            try:
                await super().validate(cert, app_description)
            except ServiceError as exc:
                if exc.code == ua.StatusCodes.BadCertificateUntrusted:
                    trust.reject(cert.public_bytes(Encoding.DER))
                else:
                    log.warning("refused a client certificate: %s", ua.StatusCode(exc.code).name)
                raise

    return Validator(options, trust.store)


def client_certificate(folder: str | Path, application_uri: str, name: str = "batchline-client") -> tuple[Path, Path]:
    """Make a client certificate and key (DER cert, PEM key) in ``folder``: for tests, the
    demo and anyone trying the simulator. Returns (certificate, key)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        name,
        SUBJECT,
        [x509.UniformResourceIdentifier(application_uri), x509.DNSName(socket.gethostname())],
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=365,
    )
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    os.chmod(key_path, 0o600)
    return cert_path, key_path
