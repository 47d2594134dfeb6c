"""``kubectl exec`` and ``kubectl port-forward`` against a real one-node cluster (root)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import netns_names, pod_ready, run_pod, wait_for

from kubesvc.agent.hostnet import LOCK_FILE
from kubesvc.testing.cluster import KUBECTL, Cluster, free_port, start_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]

SVC = """{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-svc"},
 "spec": {"selector": {"test": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}"""


@pytest.fixture(scope="module")
def c1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("needs root: nodes and pods are network namespaces")
    base = tmp_path_factory.mktemp("execpf")
    c = start_cluster(base / "data", base / "kcache", "--nodes", "1", timeout=180)
    ours: set[str] = set()
    try:
        wait_for(lambda: c.kubectl("get", "node", "node-1", check=False).returncode == 0, 60, "node-1")
        run_pod(c, "web", "node-1", "nginx", extra={"ports": [{"containerPort": 80}]})
        run_pod(c, "client", "node-1", "curlimages/curl", command=["sleep", "3600"])
        c.kubectl("apply", "-f", "-", input=SVC)
        wait_for(lambda: pod_ready(c, "web") and pod_ready(c, "client"), 60, "pods Ready")
        ours = {n for n in netns_names() if n.startswith(("ks-node-", "ks-p-"))}
        yield c
    finally:
        rc = c.stop(timeout=60)
        assert rc == 0, f"kubesvc up exited with {rc}:\n" + "".join(c.output)
    left = ours & netns_names()
    assert not {n for n in left if n.startswith("ks-p-")}, f"pod namespaces left behind: {left}"
    owner = LOCK_FILE.read_text().strip() if LOCK_FILE.exists() else ""
    if not owner or owner == str(c.proc.pid):  # unless another cluster took the network since
        assert not left, f"node namespaces left behind: {left}"


def test_exec_curl_service(c1: Cluster) -> None:
    def answered() -> bool:
        p = c1.kubectl("exec", "client", "--", "curl", "-s", "-m", "3", "http://web-svc", check=False)
        return p.returncode == 0 and "Welcome to nginx!" in p.stdout
    wait_for(answered, 30, "the Service to answer through kubectl exec")


def test_exec_output_and_hostname(c1: Cluster) -> None:
    p = c1.kubectl("exec", "client", "--", "sh", "-c", "hostname; echo out; echo err >&2")
    assert p.stdout.split() == ["client", "out"]
    assert "err" in p.stderr


def test_exec_stdin(c1: Cluster) -> None:
    p = c1.kubectl("exec", "-i", "client", "--", "cat", input="hello stdin\n")
    assert p.stdout == "hello stdin\n"


def test_exec_exit_code(c1: Cluster) -> None:
    p = c1.kubectl("exec", "client", "--", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3, p.stderr
    assert "command terminated with exit code 3" in p.stderr


def test_exec_missing_container(c1: Cluster) -> None:
    p = c1.kubectl("exec", "client", "-c", "nope", "--", "true", check=False)
    assert p.returncode != 0
    assert "container nope is not valid for pod client" in p.stderr


def test_exec_missing_command(c1: Cluster) -> None:
    p = c1.kubectl("exec", "client", "--", "no-such-program-here", check=False)
    assert p.returncode != 0
    assert "executable file not found" in p.stderr


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        return r.read().decode()


@pytest.mark.parametrize("target", ["pod/web", "svc/web-svc"])
def test_port_forward(c1: Cluster, target: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "pf.log"
    with open(log, "w") as out:
        pf = subprocess.Popen([KUBECTL, f"--kubeconfig={c1.kubeconfig}", f"--cache-dir={c1.cache_dir}",
                               "port-forward", target, f"{port}:80"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Forwarding from" in log.read_text() or pf.poll() is not None, 30, "port-forward")
        assert pf.poll() is None, log.read_text()
        for _ in range(2):
            assert "Welcome to nginx!" in _get(port)
        time.sleep(0.5)
        assert pf.poll() is None, log.read_text()
        assert log.read_text().count("Handling connection") == 2
    finally:
        pf.terminate()
        pf.wait(10)


def test_exec_tty(c1: Cluster) -> None:
    """``-it`` under a terminal (script(1) gives kubectl one): a pty in the pod, exit code passed on."""
    kc = f"{KUBECTL} --kubeconfig={c1.kubeconfig} --cache-dir={c1.cache_dir}"
    cmd = f"(printf 'tty; exit 4\\n'; sleep 3) | script -qec \"{kc} exec -it client -- sh\" /dev/null"
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    assert p.returncode == 4, p.stdout + p.stderr
    assert "/dev/pts/" in p.stdout
