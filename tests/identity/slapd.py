"""A real OpenLDAP server for the tests: Debian's ``/usr/sbin/slapd`` on a free port of
127.0.0.1, in a temporary directory, with an mdb database seeded by ``slapadd``, a TLS
certificate made here with ``cryptography`` for StartTLS, and ``security tls=1`` so that
anything (a bind included) over a connection without TLS is refused: a test that signs
in proves StartTLS was used.

The seeded directory (``dc=batchline,dc=test``):

- ``ou=people``: anna (operators), carl (shift-a, a group inside operators: nested),
  dora (qa), erik (only in loop-a/loop-b, two groups containing each other: no role),
  alice (operators, employeeNumber e4711: the user id of a local account of the tests);
  every password is ``<uid>-Secret-1``; the service account ``cn=reader`` reads;
- ``ou=groups``: batchline-operators, batchline-qa, batchline-supervisors, shift-a,
  loop-a, loop-b (``groupOfNames``).

Tests that change the directory add people of their own (:meth:`Slapd.add_person`) so
tests do not depend on each other.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=batchline,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-Secret-1"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PW = "reader-Secret-1"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def password_of(uid: str) -> str:
    return f"{uid}-Secret-1"


#: the group -> role mapping the tests configure
GROUP_ROLES = {
    group_dn("batchline-operators"): "operator",
    group_dn("batchline-qa"): "qa",
    group_dn("batchline-supervisors"): "supervisor",
}


def _cert_files(where: Path) -> tuple[Path, Path, Path, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and another CA
    (for "a certificate from the wrong CA is refused")."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("Batchline test LDAP CA")
    _, other_cert = ca("Some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = where / "ca.pem", where / "server.pem", where / "server.key", where / "other-ca.pem"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[3].write_bytes(other_cert.public_bytes(pem))
    paths[2].chmod(0o600)
    return paths


def _person_ldif(uid: str, cn: str) -> str:
    return (
        f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn.split()[-1]}\n"
        f"userPassword: {password_of(uid)}\n\n"
    )


def _group_ldif(cn: str, *members: str) -> str:
    return (
        f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n" + "".join(f"member: {m}\n" for m in members) + "\n"
    )


SEED = (
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: batchline\no: Batchline test plant\n\n"
    f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
    f"userPassword: {READER_PW}\n\n"
    f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    + _person_ldif("anna", "Anna Directory")
    + _person_ldif("carl", "Carl Nested")
    + _person_ldif("dora", "Dora Quality")
    + _person_ldif("erik", "Erik Loop")
    + _person_ldif("alice", "Alice Directory").replace("\n\n", "\nemployeeNumber: e4711\n\n")
    + _group_ldif("batchline-operators", person_dn("anna"), group_dn("shift-a"), person_dn("alice"))
    + _group_ldif("shift-a", person_dn("carl"))
    + _group_ldif("batchline-qa", person_dn("dora"))
    + _group_ldif("batchline-supervisors", f"cn=nobody,{SUFFIX}")
    + _group_ldif("loop-a", group_dn("loop-b"), person_dn("erik"))
    + _group_ldif("loop-b", group_dn("loop-a"))
)

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload refint
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
security tls=1
database mdb
maxsize 20000000
suffix "{suffix}"
rootdn "{root}"
rootpw {rootpw}
directory {d}/db
# a renamed or deleted entry is renamed or removed in the groups too, as in a real directory
overlay refint
refint_attributes member
refint_nothing "cn=nobody,{suffix}"
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Slapd:
    """A running slapd; the admin operations go through StartTLS as the root DN."""

    home: Path
    port: int
    process: subprocess.Popen
    ldaps_port: int = 0

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return str(self.home / "ca.pem")

    @property
    def other_ca_file(self) -> str:
        return str(self.home / "other-ca.pem")

    @property
    def bind_secret_ref(self) -> str:
        return f"file:{self.home / 'reader.secret'}"

    def settings(self, **overrides) -> dict:
        """Batchline settings for this directory."""
        return {
            "ldap_url": self.url,
            "ldap_ca_file": self.ca_file,
            "ldap_bind_dn": READER_DN,
            "ldap_bind_secret": self.bind_secret_ref,
            "ldap_user_base": PEOPLE,
            "ldap_group_base": GROUPS,
            "ldap_group_roles": tuple(sorted(GROUP_ROLES.items())),
            "ldap_timeout_seconds": 5.0,
            **overrides,
        }

    def _conn(self):
        import ssl

        from ldap3 import Connection, Server, Tls

        server = Server(self.url, tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file))
        conn = Connection(server, ROOT_DN, ROOT_PW, raise_exceptions=True)
        conn.open()
        conn.start_tls()
        conn.bind()
        return conn

    def add_person(self, uid: str, *groups: str, cn: str | None = None, **attributes: str) -> str:
        from ldap3 import MODIFY_ADD

        conn = self._conn()
        try:
            conn.add(
                person_dn(uid),
                ["inetOrgPerson"],
                {"uid": uid, "cn": cn or uid.title(), "sn": uid, "userPassword": password_of(uid), **attributes},
            )
            for g in groups:
                conn.modify(group_dn(g), {"member": [(MODIFY_ADD, [person_dn(uid)])]})
        finally:
            conn.unbind()
        return person_dn(uid)

    def join(self, uid: str, group: str) -> None:
        from ldap3 import MODIFY_ADD

        conn = self._conn()
        try:
            conn.modify(group_dn(group), {"member": [(MODIFY_ADD, [person_dn(uid)])]})
        finally:
            conn.unbind()

    def leave_group(self, uid: str, group: str) -> None:
        from ldap3 import MODIFY_DELETE

        conn = self._conn()
        try:
            conn.modify(group_dn(group), {"member": [(MODIFY_DELETE, [person_dn(uid)])]})
        finally:
            conn.unbind()

    def rename(self, uid: str, new_uid: str) -> None:
        conn = self._conn()
        try:
            conn.modify_dn(person_dn(uid), f"uid={new_uid}")
        finally:
            conn.unbind()

    def delete(self, uid: str) -> None:
        """``ldapdelete`` against the running server (StartTLS required: -ZZ)."""
        subprocess.run(
            ["ldapdelete", "-ZZ", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW, person_dn(uid)],
            check=True,
            env={**os.environ, "LDAPTLS_CACERT": self.ca_file, "LDAPTLS_REQCERT": "demand"},
            capture_output=True,
            timeout=20,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait(timeout=10)


def available() -> bool:
    return os.access(SLAPD, os.X_OK) and os.access(SLAPADD, os.X_OK) and bool(shutil.which("ldapdelete"))


def start(home: Path) -> Slapd:
    """Seed and start slapd in ``home``; the caller stops it (:meth:`Slapd.stop`)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "db").mkdir()
    _cert_files(home)
    (home / "reader.secret").write_text(READER_PW + "\n")
    (home / "reader.secret").chmod(0o600)
    conf = home / "slapd.conf"
    conf.write_text(CONF.format(d=home, suffix=SUFFIX, root=ROOT_DN, rootpw=ROOT_PW))
    (home / "seed.ldif").write_text(SEED)
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(home / "seed.ldif")], check=True, capture_output=True)
    port, ldaps_port = free_port(), free_port()
    log = open(home / "slapd.log", "wb")  # noqa: SIM115 - open while slapd runs
    process = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/", "-d", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {(home / 'slapd.log').read_text(errors='replace')[-2000:]}")
        try:
            for p in (port, ldaps_port):
                socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
            return Slapd(home, port, process, ldaps_port)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("slapd did not start listening within 20 s")
