"""The real kubectl against `kubesvc up`: the commands issue 2 names, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kubesvc.cli.seed import SEED_CLUSTERIP
from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e

SEED_SVC = SEED_CLUSTERIP


def lines(out: str) -> list[list[str]]:
    return [ln.split() for ln in out.strip().splitlines()]


def test_get_services_table_and_wide(cluster: Cluster) -> None:
    """Server-side printing: upstream's columns for services, and SELECTOR with -o wide."""
    out = cluster.kubectl("get", "svc").stdout
    assert lines(out)[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = next(r for r in lines(out) if r[0] == "kubernetes")
    assert row[1:5] == ["ClusterIP", "10.0.0.1", "<none>", "443/TCP"]
    wide = cluster.kubectl("get", "svc", "-o", "wide").stdout
    assert lines(wide)[0][-1] == "SELECTOR"


def test_create_apply_twice_and_describe(cluster: Cluster, tmp_path: Path) -> None:
    """The seed's ClusterIP manifest verbatim: apply creates, re-apply is unchanged, a change configures."""
    f = tmp_path / "svc.yaml"
    f.write_text(SEED_SVC)
    assert cluster.kubectl("apply", "-f", str(f)).stdout.strip() == "service/clusterip-service created"
    assert cluster.kubectl("apply", "-f", str(f)).stdout.strip() == "service/clusterip-service unchanged"
    f.write_text(SEED_SVC.replace("targetPort: 80", "targetPort: 8080"))
    assert cluster.kubectl("apply", "-f", str(f)).stdout.strip() == "service/clusterip-service configured"
    svc = json.loads(cluster.kubectl("get", "svc", "clusterip-service", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["clusterIP"].startswith("10.0.")
    assert "kubectl.kubernetes.io/last-applied-configuration" in svc["metadata"]["annotations"]
    desc = cluster.kubectl("describe", "svc", "clusterip-service").stdout
    assert "Selector:" in desc and "app=nginx-for-svc" in desc
    assert "TargetPort:" in desc and "8080/TCP" in desc
    cluster.kubectl("delete", "-f", str(f))


def test_create_f_conflict_and_not_found_messages(cluster: Cluster, tmp_path: Path) -> None:
    """Errors read as upstream's: AlreadyExists and NotFound."""
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\ndata:\n  a: b\n")
    cluster.kubectl("create", "-f", str(f))
    p = cluster.kubectl("create", "-f", str(f), check=False)
    assert p.returncode == 1
    assert f'Error from server (AlreadyExists): error when creating "{f}": configmaps "dup" already exists' in p.stderr
    p = cluster.kubectl("get", "svc", "nope", check=False)
    assert p.returncode == 1
    assert 'Error from server (NotFound): services "nope" not found' in p.stderr
    cluster.kubectl("delete", "cm", "dup")


def test_server_side_apply(cluster: Cluster, tmp_path: Path) -> None:
    """apply --server-side creates, then updates, and records the field manager."""
    f = tmp_path / "ssa.yaml"
    f.write_text(SEED_SVC.replace("clusterip-service", "ssa-svc"))
    out = cluster.kubectl("apply", "--server-side", "-f", str(f)).stdout.strip()
    assert out == "service/ssa-svc serverside-applied"
    f.write_text(SEED_SVC.replace("clusterip-service", "ssa-svc").replace("port: 80\n", "port: 81\n"))
    cluster.kubectl("apply", "--server-side", "-f", str(f))
    svc = json.loads(cluster.kubectl("get", "svc", "ssa-svc", "-o", "json", "--show-managed-fields").stdout)
    assert [p["port"] for p in svc["spec"]["ports"]] == [81]
    assert any(m["manager"] == "kubectl" and m["operation"] == "Apply" for m in svc["metadata"]["managedFields"])
    cluster.kubectl("delete", "svc", "ssa-svc")


def test_generator_commands_send_protobuf(cluster: Cluster) -> None:
    """create deployment|namespace|service|configmap: kubectl 1.32 sends protobuf bodies."""
    cluster.kubectl("create", "namespace", "gen")
    cluster.kubectl("-n", "gen", "create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    cluster.kubectl("-n", "gen", "create", "service", "clusterip", "cs1", "--tcp=80:8080")
    cluster.kubectl("-n", "gen", "create", "service", "nodeport", "np1", "--tcp=80:8080", "--node-port=30080")
    cluster.kubectl("-n", "gen", "create", "configmap", "cm1", "--from-literal=a=b")
    d = json.loads(cluster.kubectl("-n", "gen", "get", "deploy", "web", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 2
    np1 = json.loads(cluster.kubectl("-n", "gen", "get", "svc", "np1", "-o", "json").stdout)
    assert np1["spec"]["type"] == "NodePort" and np1["spec"]["ports"][0]["nodePort"] == 30080
    out = cluster.kubectl("-n", "gen", "get", "svc", "np1").stdout
    assert "80:30080/TCP" in out


def test_label_annotate_scale_expose(cluster: Cluster) -> None:
    cluster.kubectl("create", "deployment", "lab", "--image=nginx", "--replicas=1", "--port=80")
    cluster.kubectl("label", "deploy", "lab", "tier=web")
    cluster.kubectl("annotate", "deploy", "lab", "note=hello")
    assert cluster.kubectl("scale", "deploy", "lab", "--replicas=3").stdout.strip() == "deployment.apps/lab scaled"
    d = json.loads(cluster.kubectl("get", "deploy", "lab", "-o", "json").stdout)
    assert d["metadata"]["labels"]["tier"] == "web"
    assert d["metadata"]["annotations"]["note"] == "hello"
    assert d["spec"]["replicas"] == 3
    assert d["metadata"]["generation"] == 2
    assert cluster.kubectl("expose", "deploy", "lab", "--port=80").stdout.strip() == "service/lab exposed"
    svc = json.loads(cluster.kubectl("get", "svc", "lab", "-o", "json").stdout)
    assert svc["spec"]["selector"] == {"app": "lab"}
    out = cluster.kubectl("get", "deploy,svc", "-l", "app=lab", "-o", "name").stdout.split()
    assert "deployment.apps/lab" in out and "service/lab" in out
    cluster.kubectl("delete", "svc,deploy", "-l", "app=lab")


def test_get_output_formats(cluster: Cluster) -> None:
    p = cluster.kubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
    assert p.stdout == "10.0.0.1"
    y = cluster.kubectl("get", "svc", "kubernetes", "-o", "yaml").stdout
    assert "clusterIP: 10.0.0.1" in y
    out = cluster.kubectl("get", "svc", "-A", "--show-labels").stdout
    assert lines(out)[0][0] == "NAMESPACE" and lines(out)[0][-1] == "LABELS"
    assert "component=apiserver,provider=kubernetes" in out
    raw = json.loads(cluster.kubectl("get", "--raw", "/api/v1/namespaces/default/services/kubernetes").stdout)
    assert raw["metadata"]["name"] == "kubernetes"


def test_edit_with_editor(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "ed", "--from-literal=a=b")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^  a: b$/  a: edited/' \"$1\"\n")
    editor.chmod(0o755)
    env = {**os.environ, "KUBE_EDITOR": str(editor)}
    p = subprocess.run(["kubectl", f"--kubeconfig={cluster.kubeconfig}", f"--cache-dir={cluster.cache_dir}",
                        "edit", "cm", "ed"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "configmap/ed edited" in p.stdout
    cm = json.loads(cluster.kubectl("get", "cm", "ed", "-o", "json").stdout)
    assert cm["data"]["a"] == "edited"
    cluster.kubectl("delete", "cm", "ed")


def test_explain_service(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "service").stdout
    assert "KIND:" in out and "Service" in out and "spec" in out
    out = cluster.kubectl("explain", "service.spec.ports").stdout
    assert "ports" in out and "targetPort" in out


def test_delete_all_and_watch(cluster: Cluster) -> None:
    """`get -w` prints the list then changes; delete --all empties a namespace's configmaps."""
    cluster.kubectl("create", "namespace", "w")
    proc = subprocess.Popen(["kubectl", f"--kubeconfig={cluster.kubeconfig}", f"--cache-dir={cluster.cache_dir}",
                             "-n", "w", "get", "cm", "-w", "--request-timeout=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time

        time.sleep(1.5)
        cluster.kubectl("-n", "w", "create", "configmap", "seen", "--from-literal=a=b")
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "seen" in out
    cluster.kubectl("-n", "w", "delete", "cm", "--all")
    p = cluster.kubectl("-n", "w", "get", "cm")
    assert "seen" not in p.stdout


def test_categories_all_and_short_names(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "all").stdout
    assert "service/kubernetes" in out
    for short in ("svc", "ns", "deploy", "rs", "po", "ep", "cm", "sa", "no", "ev"):
        cluster.kubectl("get", short)


def test_bad_input_is_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    """Invalid manifests get upstream's 422 message, one line, no crash."""
    f = tmp_path / "bad.yaml"
    f.write_text(SEED_SVC.replace("port: 80\n", "port: 0\n").replace("clusterip-service", "bad-svc"))
    p = cluster.kubectl("create", "-f", str(f), check=False)
    assert p.returncode == 1
    assert 'The Service "bad-svc" is invalid' in p.stderr
    assert "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in p.stderr
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    p = cluster.kubectl("create", "-f", str(f), check=False)
    assert p.returncode == 1 and "metadata.name: Invalid value" in p.stderr
    assert cluster.kubectl("get", "--raw", "/livez").stdout == "ok"


def test_unknown_fields_strict_and_warn(cluster: Cluster, tmp_path: Path) -> None:
    """kubectl sends fieldValidation=Strict: a typo fails with upstream's message; --validate=warn warns."""
    f = tmp_path / "typo.yaml"
    f.write_text(SEED_SVC.replace("clusterip-service", "typo-svc").replace("  selector:", "  selectr:\n    a: b\n  selector:"))
    p = cluster.kubectl("create", "-f", str(f), check=False)
    assert p.returncode == 1
    assert ('Service in version "v1" cannot be handled as a Service: strict decoding error: '
            'unknown field "spec.selectr"') in p.stderr
    p = cluster.kubectl("create", "-f", str(f), "--validate=warn")
    assert 'unknown field "spec.selectr"' in p.stderr
    cluster.kubectl("delete", "svc", "typo-svc")
