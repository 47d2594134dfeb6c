"""kubectl 1.27 and 1.28 download OpenAPI v2 in protobuf for apply, create and explain.

Against the real ``kubesvc up``: client-side apply (created, unchanged,
configured), a create with an unknown field, and ``explain``.  Because the
server's PATCH operations take ``fieldValidation``, these kubectls leave
validation to the server, as with upstream's API server.  To exercise kubectl's
*client-side* validation against our v2 protobuf, a second test serves the same
document without ``fieldValidation`` (and no v3) from a tiny fake server.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubesvc.apiserver import discovery
from kubesvc.apiserver.openapi.v2 import PB_CT, PB_CT_DEPRECATED, openapi_v2_document
from kubesvc.apiserver.openapi.v2proto import encode_document
from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e
BIN = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONS = ["1.27", "1.28"]

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: {target}
"""
BAD_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  prots:
  - port: 80
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 500m, memory: 128Mi}
"""


def _exe(version: str) -> Path:
    exe = BIN / f"kubectl.{version}"
    if not exe.exists():
        pytest.skip(f"{exe} is not installed")
    return exe


def _run(exe: Path, kubeconfig: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("version", VERSIONS)
def test_apply_create_explain(cluster: Cluster, version: str, tmp_path: Path) -> None:
    exe = _exe(version)
    name = "oa" + version.replace(".", "")

    def k(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = _run(exe, cluster.kubeconfig, tmp_path / "cache", *args)
        if ok:
            assert p.returncode == 0, f"kubectl {version} {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    f = tmp_path / "svc.yaml"
    f.write_text(SERVICE.format(name=name, target=8080))
    p = k("apply", "-f", str(f))
    assert p.stdout.strip() == f"service/{name} created"
    assert p.stderr == ""
    assert k("apply", "-f", str(f)).stdout.strip() == f"service/{name} unchanged"

    f.write_text(SERVICE.format(name=name, target=9090))
    p = k("apply", "-f", str(f))
    assert p.stdout.strip() == f"service/{name} configured"
    assert p.stderr == ""  # no "warning: error calculating patch from openapi spec"
    stored = json.loads(k("get", "svc", name, "-o", "json").stdout)
    assert stored["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090}]

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SERVICE.format(name=name + "-bad"))
    p = k("create", "-f", str(bad), ok=False)
    assert p.returncode == 1
    assert 'unknown field "spec.prots"' in p.stderr, p.stderr
    assert k("get", "svc", name + "-bad", ok=False).returncode == 1

    out = k("explain", "service.spec.ports").stdout
    assert "KIND:       Service" in out
    assert "FIELD: ports <[]" in out
    for field_name in ("appProtocol", "name", "nodePort", "port", "protocol", "targetPort"):
        assert f"\n  {field_name}\t<" in out, out
    assert "port\t<integer> -required-" in out
    k("delete", "svc", name)


# --- client-side validation against our v2 protobuf, on a fake server -------------------


def _without_field_validation(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with no operation taking ``fieldValidation``: kubectl then validates itself."""
    doc = orjson.loads(orjson.dumps(doc))
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "parameters" in op:
                op["parameters"] = [p for p in op["parameters"] if p.get("name") != "fieldValidation"]
    return doc


class _FakeAPI(BaseHTTPRequestHandler):
    """Discovery and ``/openapi/v2`` (protobuf) only; everything else is 404."""

    server: _FakeServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].rstrip("/")
        self.server.seen.append((path, self.headers.get("Accept", "")))
        parts = [p for p in path.split("/") if p]
        ct, doc = "application/json", None
        if path == "/openapi/v2":
            self._send(200, PB_CT, self.server.pb)
            return
        if path == "/version":
            doc = {"major": "1", "minor": "27", "gitVersion": "v1.27.0"}
        elif path == "/api":
            doc = discovery.api_versions(f"127.0.0.1:{self.server.server_address[1]}")
        elif path == "/apis":
            doc = discovery.api_group_list()
        elif len(parts) == 2 and parts[0] == "api":
            doc = discovery.api_resource_list("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2])
        if doc is None:
            doc = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                   "message": "the server could not find the requested resource"}
            self._send(404, ct, orjson.dumps(doc))
            return
        self._send(200, ct, orjson.dumps(doc))

    def _send(self, code: int, ct: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ct)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class _FakeServer(ThreadingHTTPServer):
    seen: list[tuple[str, str]]
    pb: bytes


@pytest.fixture
def fake_kubeconfig(tmp_path: Path) -> Iterator[tuple[Path, _FakeServer]]:
    srv = _FakeServer(("127.0.0.1", 0), _FakeAPI)
    srv.seen = []
    srv.pb = encode_document(_without_field_validation(openapi_v2_document()))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{srv.server_address[1]}"}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
    }))
    try:
        yield kc, srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("version", VERSIONS)
def test_client_side_validation_uses_v2_protobuf(fake_kubeconfig: tuple[Path, _FakeServer], version: str,
                                                 tmp_path: Path) -> None:
    exe = _exe(version)
    kc, srv = fake_kubeconfig
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SERVICE.format(name="bad"))
    p = _run(exe, kc, tmp_path / "cache", "create", "-f", str(bad))
    assert p.returncode == 1
    assert 'error validating data: ValidationError(Service.spec): unknown field "prots"' in p.stderr, p.stderr
    assert ("/openapi/v2", PB_CT_DEPRECATED) in srv.seen

    # Valid manifests pass the same validation (dry run: the fake server stores nothing).
    for i, manifest in enumerate((SERVICE.format(name="good", target=8080),
                                  SERVICE.format(name="named", target="http"), DEPLOYMENT)):
        f = tmp_path / f"good{i}.yaml"
        f.write_text(manifest)
        p = _run(exe, kc, tmp_path / "cache", "create", "--dry-run=client", "-o", "name", "-f", str(f))
        assert p.returncode == 0, f"{manifest}\n{p.stderr}"
        assert p.stdout.strip() in ("service/good", "service/named", "deployment.apps/web")
