"""Bad input over raw HTTPS: every answer is a 4xx metav1.Status, never a 500, never a dead server."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e


def call(c: Cluster, method: str, path: str, body: bytes | None = None,
         ct: str | None = "application/json") -> tuple[int, dict[str, Any], dict[str, str]]:
    pki = c.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.port}{path}", data=body, method=method)
    if ct:
        req.add_header("Content-Type", ct)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


CM = "/api/v1/namespaces/default/configmaps"

CASES = [
    ("malformed json", "POST", CM, b'{"metadata": {"name": ', "application/json", 400, "BadRequest"),
    ("malformed yaml", "POST", CM, b"metadata: [unclosed", "application/yaml", 400, "BadRequest"),
    ("not an object", "POST", CM, b"[1,2,3]", "application/json", 400, "BadRequest"),
    ("empty body", "POST", CM, b"", "application/json", 400, "BadRequest"),
    ("wrong apiVersion", "POST", CM, b'{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}',
     "application/json", 400, "BadRequest"),
    ("wrong kind", "POST", CM, b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}',
     "application/json", 400, "BadRequest"),
    ("unsupported media type", "POST", CM, b"x", "text/csv", 415, "UnsupportedMediaType"),
    ("bad protobuf", "POST", CM, b"k8s\x00\xff\xff", "application/vnd.kubernetes.protobuf", 400, "BadRequest"),
    ("invalid name", "POST", CM, b'{"metadata":{"name":"Not_Valid"}}', "application/json", 422, "Invalid"),
    ("missing name", "POST", CM, b'{"metadata":{}}', "application/json", 422, "Invalid"),
    ("unknown resource", "GET", "/api/v1/namespaces/default/widgets", None, None, 404, "NotFound"),
    ("unknown group version", "GET", "/apis/apps/v9/deployments", None, None, 404, "NotFound"),
    ("bad label selector", "GET", CM + "?labelSelector=a%20in%20(", None, None, 400, "BadRequest"),
    ("bad field selector", "GET", CM + "?fieldSelector=spec.nope%3Dx", None, None, 400, "BadRequest"),
    ("bad limit", "GET", CM + "?limit=abc", None, None, 400, "BadRequest"),
    ("bad continue", "GET", CM + "?limit=1&continue=garbage", None, None, 400, "BadRequest"),
    ("namespace missing", "POST", "/api/v1/namespaces/nowhere/configmaps", b'{"metadata":{"name":"x"}}',
     "application/json", 404, "NotFound"),
    ("bad json patch", "PATCH", "/api/v1/namespaces/default/services/kubernetes", b'{"op":"add"}',
     "application/json-patch+json", 400, "BadRequest"),
    ("json patch test fails", "PATCH", "/api/v1/namespaces/default/services/kubernetes",
     b'[{"op":"test","path":"/spec/type","value":"NodePort"}]', "application/json-patch+json", 422, "Invalid"),
    ("bad merge patch", "PATCH", "/api/v1/namespaces/default/services/kubernetes", b"{not json",
     "application/merge-patch+json", 400, "BadRequest"),
    ("apply without fieldManager", "PATCH", "/api/v1/namespaces/default/configmaps/x",
     b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}', "application/apply-patch+yaml", 400,
     "BadRequest"),
    ("method not allowed", "POST", "/api/v1/namespaces/default/services/kubernetes", b"{}", "application/json",
     405, "MethodNotAllowed"),
    ("bad propagation policy", "DELETE", CM + "/nope", b'{"propagationPolicy":"Sideways"}', "application/json",
     422, "Invalid"),
]


@pytest.mark.parametrize(("what", "method", "path", "body", "ct", "code", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_status(cluster: Cluster, what: str, method: str, path: str, body: bytes | None,
                                 ct: str | None, code: int, reason: str) -> None:
    got, status, _ = call(cluster, method, path, body, ct)
    assert (got, status.get("kind"), status.get("reason")) == (code, "Status", reason), status
    assert status["message"]


def test_body_over_3_mib_is_refused(cluster: Cluster) -> None:
    body = json.dumps({"metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}).encode()
    got, status, _ = call(cluster, "POST", CM, body)
    assert got == 413 and status["reason"] == "RequestEntityTooLarge"


def test_server_still_healthy_after_bad_input(cluster: Cluster) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"


def test_list_paging_with_limit_and_continue(cluster: Cluster) -> None:
    for i in range(7):
        call(cluster, "POST", "/api/v1/namespaces/default/configmaps", json.dumps({"metadata": {"name": f"page-{i}", "labels": {"page": "yes"}}}).encode())
    names: list[str] = []
    cont = ""
    pages = 0
    while True:
        q = "?labelSelector=page%3Dyes&limit=3" + (f"&continue={cont}" if cont else "")
        got, lst, _ = call(cluster, "GET", CM + q)
        assert got == 200
        names += [i["metadata"]["name"] for i in lst["items"]]
        pages += 1
        cont = lst["metadata"].get("continue", "")
        if not cont:
            break
    assert sorted(names) == [f"page-{i}" for i in range(7)] and pages == 3
    call(cluster, "DELETE", CM + "?labelSelector=page%3Dyes", None, None)
    got, lst, _ = call(cluster, "GET", CM + "?labelSelector=page%3Dyes")
    assert lst["items"] == []
