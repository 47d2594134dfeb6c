"""The cluster's certificates, its admin credentials and the kubeconfig for them.

Why: kubectl and the official client speak only HTTPS to an apiserver and
authenticate with a client certificate or a bearer token, so the first start
must leave a CA, a serving certificate whose SANs cover every address clients
use, and admin credentials on disk, and every later start must reuse them so
kubeconfigs already handed out stay valid.

The layout mirrors kubeadm's ``/etc/kubernetes/pki`` in spirit (ECDSA P-256
keys, a 10-year CA, 1-year leaves), under ``<data-dir>/pki`` (0700; keys and
the token 0600).  Only file I/O happens here; no network.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hmac
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CN = "kubesvc-ca"
SERVER_CN = "kubesvc-apiserver"
ADMIN_USER = "kubesvc-admin"
ADMIN_GROUP = "system:masters"

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "172.18.0.1")
# The in-cluster names of the `kubernetes` Service, and its ClusterIP.
CLUSTER_DNS_NAMES: tuple[str, ...] = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
CLUSTER_SERVICE_IP = "10.0.0.1"

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
# Renew a leaf this long before it expires, on the next start.
RENEW_BEFORE = dt.timedelta(days=30)
# Backdate notBefore so a peer whose clock is a little behind still accepts.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated material, plus the TLS and token helpers built on it."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    token_file: Path
    token: str

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS >= 1.2 with the serving cert; client certs are verified against the CA when presented.

        CERT_OPTIONAL (Go's VerifyClientCertIfGiven) lets token and anonymous
        requests through the handshake; authorization decides later.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """What an in-process component uses to call the apiserver as the admin."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def server_sans(self) -> tuple[list[str], list[str]]:
        """(DNS names, IP addresses) the serving certificate covers."""
        return _sans(_load_cert(self.server_cert))


# --------------------------------------------------------------------------
# files


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(d: Path) -> Iterator[None]:
    """Serialise generation between processes starting at the same time."""
    with os.fdopen(os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_cert(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def _load_key(p: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{p}: not an ECDSA key")
    return key


# --------------------------------------------------------------------------
# certificates


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = _name(CA_CN)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in [*hosts, *CLUSTER_DNS_NAMES, CLUSTER_SERVICE_IP]:
        if h in seen:
            continue
        seen.add(h)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _new_leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_VALIDITY, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def _covers(cert: x509.Certificate, hosts: list[str]) -> bool:
    dns, ips = _sans(cert)
    have = {d.lower() for d in dns} | {str(ipaddress.ip_address(i)) for i in ips}
    for h in hosts:
        try:
            h = str(ipaddress.ip_address(h))
        except ValueError:
            h = h.lower()
        if h not in have:
            return False
    return True


def _leaf_ok(cert_path: Path, key_path: Path, ca: x509.Certificate) -> x509.Certificate | None:
    """The leaf on disk if it is usable: signed by ``ca``, matches its key, not near expiry."""
    if not (cert_path.exists() and key_path.exists()):
        return None
    try:
        cert = _load_cert(cert_path)
        key = _load_key(key_path)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return None
    if cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return None
    return cert


def ensure_pki(data_dir: Path, *, hosts: list[str] | tuple[str, ...] = DEFAULT_HOSTS) -> Pki:
    """Load ``data_dir/pki``, generating whatever is missing, stale or does not fit.

    * CA: generated once; if it is gone or expired everything is reissued.
    * serving cert: reissued when its SANs lack a requested host (the others
      are kept: SANs only grow), when it nears expiry or was not signed by the CA.
    * admin client cert and the bearer token: generated once.
    """
    hosts = list(hosts)
    d = Path(data_dir) / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    p = Pki(
        dir=d,
        ca_cert=d / "ca.crt",
        ca_key=d / "ca.key",
        server_cert=d / "apiserver.crt",
        server_key=d / "apiserver.key",
        client_cert=d / "admin.crt",
        client_key=d / "admin.key",
        token_file=d / "token",
        token="",
    )
    with _locked(d):
        ca, ca_key = _ensure_ca(p)
        _ensure_server(p, ca, ca_key, hosts)
        if _leaf_ok(p.client_cert, p.client_key, ca) is None:
            cert, key = _new_leaf(ca, ca_key, _name(ADMIN_USER, ADMIN_GROUP), ExtendedKeyUsageOID.CLIENT_AUTH)
            _write_atomic(p.client_key, _key_pem(key), 0o600)
            _write_atomic(p.client_cert, _cert_pem(cert), 0o644)
        token = p.token_file.read_text().strip() if p.token_file.exists() else ""
        if not token:
            token = secrets.token_urlsafe(32)
            _write_atomic(p.token_file, token.encode() + b"\n", 0o600)
    return dataclasses.replace(p, token=token)


def _ensure_ca(p: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if p.ca_cert.exists() and p.ca_key.exists():
        ca, ca_key = _load_cert(p.ca_cert), _load_key(p.ca_key)
        if ca.public_key() == ca_key.public_key() and ca.not_valid_after_utc > _now():
            return ca, ca_key
    ca, ca_key = _new_ca()
    _write_atomic(p.ca_key, _key_pem(ca_key), 0o600)
    _write_atomic(p.ca_cert, _cert_pem(ca), 0o644)
    return ca, ca_key


def _ensure_server(
    p: Pki, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: list[str]
) -> None:
    old = _leaf_ok(p.server_cert, p.server_key, ca)
    if old is not None and _covers(old, hosts):
        return
    wanted = list(hosts)
    if old is not None:  # keep the names it already had
        dns, ips = _sans(old)
        wanted += [h for h in [*ips, *dns] if h not in wanted]
    cert, key = _new_leaf(ca, ca_key, _name(SERVER_CN), ExtendedKeyUsageOID.SERVER_AUTH, _san_entries(wanted))
    _write_atomic(p.server_key, _key_pem(key), 0o600)
    _write_atomic(p.server_cert, _cert_pem(cert), 0o644)


# --------------------------------------------------------------------------
# kubeconfig and authentication


def kubeconfig_dict(*, server: str, pki: Pki, name: str = "kubesvc") -> dict[str, Any]:
    """A kubeconfig with embedded (base64 PEM) CA and admin credentials."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": b64(pki.client_cert),
                    "client-key-data": b64(pki.client_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, *, server: str, pki: Pki, name: str = "kubesvc") -> None:
    """Write the admin kubeconfig, 0600, atomically (it holds a private key)."""
    doc = yaml.safe_dump(kubeconfig_dict(server=server, pki=pki, name=name), sort_keys=False)
    _write_atomic(Path(path), doc.encode(), 0o600)


def _peer_cn(peercert: dict[str, Any]) -> str | None:
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                return str(value)
    return None


def authenticate(peercert: dict[str, Any] | None, authorization_header: str | None, pki: Pki) -> str | None:
    """The requesting user's name, or None for an anonymous request.

    ``peercert`` is ``transport.get_extra_info("peercert")``: the ssl module
    fills it only for a certificate that verified against the CA, so its CN
    can be trusted.  Otherwise ``Authorization: Bearer <token>`` with the
    cluster's token is the admin.  A wrong token is simply not authenticated.
    """
    if peercert:
        cn = _peer_cn(peercert)
        if cn:
            return cn
    if authorization_header:
        scheme, _, cred = authorization_header.strip().partition(" ")
        cred = cred.strip()
        if (
            scheme.lower() == "bearer"
            and cred
            and pki.token
            and hmac.compare_digest(cred.encode(), pki.token.encode())
        ):
            return ADMIN_USER
    return None
