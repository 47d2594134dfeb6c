"""Fixtures for client tests: the fake API server, a client for it, test PKI,
and a guard that fails any test leaving asyncio tasks behind."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubesvc.client.config import ClientConfig
from kubesvc.client.rest import ApiClient
from kubesvc.testing.fakeapi import FakeApiServer
from kubesvc.testing.tasks import leftover_tasks


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves asyncio tasks running (they are cancelled first)."""
    yield
    left = await leftover_tasks()
    if left:
        pytest.fail(f"test left {len(left)} asyncio task(s) running: {left}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    async with FakeApiServer(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
async def api(fake: FakeApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(ClientConfig(server=fake.url), timeout=5) as client:
        yield client


@dataclass
class Pki:
    ca_pem: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def server_context(self, tmp_path) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
        """A server context that demands a client certificate signed by the CA."""
        (tmp_path / "srv.crt").write_bytes(self.server_cert)
        (tmp_path / "srv.key").write_bytes(self.server_key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key, issuer_name, issuer_key, *, ca=False, server=False):  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("kubesvc-ca", ca_key, None, None, ca=True)
    srv_key, cli_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    srv = _cert("kube-apiserver", srv_key, ca.subject, ca_key, server=True)
    cli = _cert("kubesvc-admin", cli_key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    return Pki(ca.public_bytes(pem), srv.public_bytes(pem), _key_pem(srv_key), cli.public_bytes(pem),
               _key_pem(cli_key))
