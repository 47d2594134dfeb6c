"""PKI: generation, reload, kubeconfig, authentication, and real clients over TLS."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubesvc.api.errors import unauthorized
from kubesvc.apiserver.pki import (
    ADMIN_USER,
    Pki,
    authenticate,
    ensure_pki,
    write_kubeconfig,
)

KUBECTL = "/usr/bin/kubectl"
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _cert(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def _files(pki: Pki) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(pki.dir.iterdir()) if not p.name.startswith(".")}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path)


# --------------------------------------------------------------------------
# generation and reload


def test_generates_ca_server_client_and_token(pki: Pki) -> None:
    assert oct(pki.dir.stat().st_mode & 0o777) == "0o700"
    for key in (pki.ca_key, pki.server_key, pki.client_key, pki.token_file):
        assert oct(key.stat().st_mode & 0o777) == "0o600", key
    assert len(pki.token) >= 32 and pki.token_file.read_text().strip() == pki.token

    ca = _cert(pki.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubesvc-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    life = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=3640) < life < dt.timedelta(days=3660)

    server = _cert(pki.server_cert)
    server.verify_directly_issued_by(ca)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    dns, ips = pki.server_sans()
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"} <= set(dns)
    assert "kubernetes.default.svc.cluster.local" in dns
    assert {"127.0.0.1", "172.18.0.1", "10.0.0.1"} <= set(ips)
    assert server.not_valid_after_utc - server.not_valid_before_utc < dt.timedelta(days=370)

    client = _cert(pki.client_cert)
    client.verify_directly_issued_by(ca)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubesvc-admin"
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_reload_is_stable(tmp_path: Path, pki: Pki) -> None:
    before = _files(pki)
    again = ensure_pki(tmp_path)
    assert again == pki
    assert _files(again) == before


def test_new_host_reissues_only_the_serving_cert(tmp_path: Path, pki: Pki) -> None:
    before = _files(pki)
    grown = ensure_pki(tmp_path, hosts=["127.0.0.1", "10.9.8.7", "node-a.example"])
    after = _files(grown)
    assert after["ca.crt"] == before["ca.crt"] and after["admin.crt"] == before["admin.crt"]
    assert after["token"] == before["token"]
    assert after["apiserver.crt"] != before["apiserver.crt"]
    dns, ips = grown.server_sans()
    assert "node-a.example" in dns and "localhost" in dns  # old names are kept
    assert {"10.9.8.7", "172.18.0.1", "10.0.0.1"} <= set(ips)
    # Now covered: a further call with a subset changes nothing.
    ensure_pki(tmp_path, hosts=["10.9.8.7"])
    assert _files(grown) == after


def test_ipv6_host_is_an_ip_san(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=["::1", "localhost"])
    _, ips = p.server_sans()
    assert ipaddress.ip_address("::1") in {ipaddress.ip_address(i) for i in ips}


def test_lost_ca_reissues_everything(tmp_path: Path, pki: Pki) -> None:
    before = _files(pki)
    pki.ca_key.unlink()
    again = ensure_pki(tmp_path)
    after = _files(again)
    assert after["ca.crt"] != before["ca.crt"]
    assert after["apiserver.crt"] != before["apiserver.crt"]
    assert after["admin.crt"] != before["admin.crt"]
    _cert(again.server_cert).verify_directly_issued_by(_cert(again.ca_cert))
    _cert(again.client_cert).verify_directly_issued_by(_cert(again.ca_cert))


# --------------------------------------------------------------------------
# kubeconfig


def test_kubeconfig_yaml(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "sub" / "kubeconfig"
    write_kubeconfig(path, server="https://127.0.0.1:6443", pki=pki)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "kubesvc"
    assert [c["name"] for c in doc["clusters"]] == ["kubesvc"]
    assert [u["name"] for u in doc["users"]] == ["kubesvc"]
    assert doc["contexts"] == [{"name": "kubesvc", "context": {"cluster": "kubesvc", "user": "kubesvc"}}]
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert.read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == pki.client_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == pki.client_key.read_bytes()
    # No stray temp files are left beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["kubeconfig"]


def test_kubeconfig_loads_in_official_client(tmp_path: Path, pki: Pki) -> None:
    from kubernetes import client, config

    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server="https://127.0.0.1:6443", pki=pki)
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == "https://127.0.0.1:6443"
    assert Path(cfg.ssl_ca_cert).read_bytes() == pki.ca_cert.read_bytes()
    assert Path(cfg.cert_file).read_bytes() == pki.client_cert.read_bytes()


# --------------------------------------------------------------------------
# authenticate (pure)


def test_authenticate(pki: Pki) -> None:
    peer = {"subject": ((("organizationName", "system:masters"),), (("commonName", "alice"),))}
    assert authenticate(peer, None, pki) == "alice"
    assert authenticate(peer, "Bearer wrong", pki) == "alice"  # the certificate wins
    assert authenticate(None, f"Bearer {pki.token}", pki) == ADMIN_USER
    assert authenticate({}, f"bearer  {pki.token} ", pki) == ADMIN_USER
    assert authenticate(None, "Bearer wrong", pki) is None
    assert authenticate(None, "Bearer ", pki) is None
    assert authenticate(None, f"Basic {pki.token}", pki) is None
    assert authenticate(None, None, pki) is None
    assert authenticate({"subject": ()}, None, pki) is None


# --------------------------------------------------------------------------
# end to end: a tiny HTTPS server that echoes the authenticated user


class EchoServer:
    """aiohttp on 127.0.0.1:<random> in its own thread and loop, so blocking clients can call it."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        user = authenticate(peercert, request.headers.get("Authorization"), self.pki)
        if user is None:
            return web.json_response(unauthorized().status(), status=401)
        if request.path.rstrip("/") == "/version":  # the Python client asks for /version/
            return web.json_response(VERSION)
        return web.Response(text=user)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.pki.server_ssl_context())
            await site.start()
            self.port = self._runner.addresses[0][1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __enter__(self) -> EchoServer:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture
def server(pki: Pki) -> Iterator[EchoServer]:
    with EchoServer(pki) as s:
        yield s


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_curl_with_client_cert(server: EchoServer, pki: Pki) -> None:
    r = _curl(
        "--cacert",
        str(pki.ca_cert),
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
        server.url + "/",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["kubesvc-admin", "200"]


@needs_curl
def test_curl_with_token(server: EchoServer, pki: Pki) -> None:
    r = _curl("--cacert", str(pki.ca_cert), "-H", f"Authorization: Bearer {pki.token}", server.url + "/")
    assert r.stdout.splitlines() == ["kubesvc-admin", "200"], r.stderr


@needs_curl
def test_curl_anonymous_and_wrong_token_get_401(server: EchoServer, pki: Pki) -> None:
    for extra in ([], ["-H", "Authorization: Bearer nope"]):
        r = _curl("--cacert", str(pki.ca_cert), *extra, server.url + "/")
        body, code = r.stdout.rsplit("\n", 1)
        assert code == "401", r.stderr
        assert '"reason":"Unauthorized"' in body.replace(" ", "")


@needs_curl
def test_curl_by_dns_name_verifies(server: EchoServer, pki: Pki) -> None:
    # "localhost" is a SAN: hostname verification passes without -k.
    r = _curl(
        "--cacert",
        str(pki.ca_cert),
        "-H",
        f"Authorization: Bearer {pki.token}",
        f"https://localhost:{server.port}/",
    )
    if r.returncode == 7:  # localhost resolved to ::1 only; nothing listens there
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    assert r.stdout.splitlines() == ["kubesvc-admin", "200"], r.stderr


@needs_curl
def test_curl_with_foreign_client_cert_is_refused(tmp_path: Path, server: EchoServer, pki: Pki) -> None:
    other = ensure_pki(tmp_path / "other")  # a different CA
    r = _curl(
        "--cacert",
        str(pki.ca_cert),
        "--cert",
        str(other.client_cert),
        "--key",
        str(other.client_key),
        server.url,
    )
    assert r.returncode != 0  # the handshake fails: a presented cert must verify


def test_python_client_context(server: EchoServer, pki: Pki) -> None:
    import http.client

    ctx = pki.client_ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"kubesvc-admin")
    finally:
        conn.close()
    assert pki.server_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_official_client_connects(tmp_path: Path, server: EchoServer, pki: Pki) -> None:
    from kubernetes import client, config

    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server=server.url, pki=pki)
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        if hasattr(api, "param_serialize"):  # client >= 31 (openapi-generator 7)
            method, url, headers, body, post = api.param_serialize(
                "GET", "/whoami", auth_settings=["BearerToken"]
            )
            resp = api.call_api(method, url, header_params=headers, body=body, post_params=post)
            status, data = resp.status, resp.read()
        else:  # older clients
            resp = api.call_api("/whoami", "GET", _preload_content=False, _return_http_data_only=True)
            status, data = resp.status, resp.data
        assert (status, data) == (200, b"kubesvc-admin")
        info = client.VersionApi(api).get_code()
        assert (info.major, info.minor, info.git_version) == ("1", "32", "v1.32.0")


@pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason=f"{KUBECTL} is not installed")
def test_kubectl_get_raw(tmp_path: Path, server: EchoServer, pki: Pki) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server=server.url, pki=pki)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    r = subprocess.run(
        [KUBECTL, "--kubeconfig", str(path), "get", "--raw", "/whoami"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "kubesvc-admin"
