"""`kubesvc up` as a user runs it: files, health, restart, refusal, clean stop."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from kubesvc.testing.cluster import Cluster, start_cluster

pytestmark = pytest.mark.e2e


def _get(c: Cluster, path: str, *, cert: bool = True) -> tuple[int, bytes]:
    pki = c.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{c.port}{path}", context=ctx, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_kubeconfig_names_and_tls(cluster: Cluster) -> None:
    """The kubeconfig has cluster, user and context `kubesvc` and points at https."""
    kc = yaml.safe_load(cluster.kubeconfig.read_text())
    assert kc["current-context"] == "kubesvc"
    assert [c["name"] for c in kc["clusters"]] == ["kubesvc"]
    assert [u["name"] for u in kc["users"]] == ["kubesvc"]
    assert kc["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{cluster.port}"
    assert oct(cluster.kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_health_and_version(cluster: Cluster) -> None:
    """/livez, /readyz, /healthz answer ok; /version reports v1.32 (kubectl's dispatcher needs it)."""
    for path in ("/livez", "/readyz", "/healthz"):
        assert _get(cluster, path) == (200, b"ok")
    code, body = _get(cluster, "/readyz?verbose")
    assert code == 200 and b"readyz check passed" in body
    code, body = _get(cluster, "/version")
    v = json.loads(body)
    assert (v["major"], v["minor"]) == ("1", "32") and v["gitVersion"].startswith("v1.32.")


def test_requests_without_credentials_are_refused(cluster: Cluster) -> None:
    """No client certificate and no token: 401 Status; health stays public."""
    code, body = _get(cluster, "/api/v1/namespaces", cert=False)
    assert code == 401
    assert json.loads(body)["reason"] == "Unauthorized"
    assert _get(cluster, "/healthz", cert=False)[0] == 200


def test_second_up_on_same_data_dir_refuses(cluster: Cluster) -> None:
    """A second `up` on a data dir in use prints one line and exits non-zero."""
    p = subprocess.run([sys.executable, "-m", "kubesvc", "up", "--data-dir", str(cluster.data_dir),
                        "--port", "0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "already in use" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_system_namespaces_and_kubernetes_service(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in out
    svc = json.loads(cluster.kubectl("get", "svc", "kubernetes", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.0.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443


def test_restart_keeps_state(tmp_path: Path) -> None:
    """Objects survive a clean stop and start on the same data dir; resourceVersion keeps growing."""
    c = start_cluster(tmp_path / "data", tmp_path / "cache")
    try:
        c.kubectl("create", "configmap", "keep-me", "--from-literal=a=b")
        rv1 = int(json.loads(c.kubectl("get", "cm", "keep-me", "-o", "json").stdout)["metadata"]["resourceVersion"])
    finally:
        assert c.stop() == 0
    c2 = start_cluster(tmp_path / "data", tmp_path / "cache", port=c.port)
    try:
        cm = json.loads(c2.kubectl("get", "cm", "keep-me", "-o", "json").stdout)
        assert cm["data"] == {"a": "b"}
        # watch history is not kept across restarts: a watch from before it gets 410 Expired
        code, body = _get(c2, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=2")
        event = json.loads(body.splitlines()[0])
        assert code == 200 and event["type"] == "ERROR"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        assert event["object"]["message"].startswith("too old resource version")
        c2.kubectl("create", "configmap", "after", "--from-literal=x=y")
        rv2 = int(json.loads(c2.kubectl("get", "cm", "after", "-o", "json").stdout)["metadata"]["resourceVersion"])
        assert rv2 > rv1
    finally:
        assert c2.stop() == 0
    assert not any(p.name.endswith("-journal") for p in (tmp_path / "data").iterdir())
    assert os.path.exists(tmp_path / "data" / "state.db")
