"""``kubectl exec``, ``attach`` and ``port-forward`` against a real one-node cluster (root).

Over websockets (kubectl 1.32's default) and over plain SPDY/3.1 (1.32 with its
websocket feature gates off, and kubectl 1.27, which knows nothing else).
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from agent_helpers import netns_names, pod_ready, run_pod, wait_for

from kubesvc.agent.hostnet import LOCK_FILE
from kubesvc.testing.cluster import KUBECTL, Cluster, free_port, start_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]

OLD_KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.27")  # speaks only SPDY for exec, attach, port-forward
# How kubectl reaches exec/attach/port-forward: 1.32's websockets, 1.32 with them off (plain SPDY), kubectl 1.27
HOW = ["ws", "spdy", "1.27"]

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
        # a server on the pod's loopback only: port-forward reaches it, the pod's IP does not
        run_pod(c, "loopback", "node-1", "busybox", command=["python3", "-m", "http.server", "--bind", "127.0.0.1",
                                                              "8081", "--directory", "/usr/share/doc"])
        run_pod(c, "ticker", "node-1", "busybox",
                command=["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"])
        for how in HOW:
            run_pod(c, f"att-{how}", "node-1", "busybox", extra={"stdin": True, "stdinOnce": True}, command=[
                "sh", "-c", 'echo ready; while read l; do echo "got $l"; done; echo bye'])
        c.kubectl("apply", "-f", "-", input=SVC)
        wait_for(lambda: all(pod_ready(c, n) for n in ("web", "client", "loopback", "ticker")), 60, "pods Ready")
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


def _kubectl(c: Cluster, how: str, *args: str, input: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """kubectl as ``how`` says: the dispatcher's 1.32, the same with websockets off, or the 1.27 binary."""
    exe = str(OLD_KUBECTL) if how == "1.27" else KUBECTL
    if how == "1.27" and not OLD_KUBECTL.exists():
        pytest.skip(f"{OLD_KUBECTL} is not installed")
    env = {**os.environ, **({"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
                            if how == "spdy" else {})}
    return subprocess.run([exe, f"--kubeconfig={c.kubeconfig}", f"--cache-dir={c.cache_dir}", *args], input=input,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _popen(c: Cluster, how: str, out: IO[str], *args: str) -> subprocess.Popen[str]:
    exe = str(OLD_KUBECTL) if how == "1.27" else KUBECTL
    if how == "1.27" and not OLD_KUBECTL.exists():
        pytest.skip(f"{OLD_KUBECTL} is not installed")
    env = {**os.environ, **({"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
                            if how == "spdy" else {})}
    return subprocess.Popen([exe, f"--kubeconfig={c.kubeconfig}", f"--cache-dir={c.cache_dir}", *args], stdout=out,
                            stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.parametrize("how", ["spdy", "1.27"])
def test_exec_over_spdy(c1: Cluster, how: str) -> None:
    p = _kubectl(c1, how, "exec", "client", "--", "sh", "-c", "hostname; echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout.split() == ["client", "out"]
    assert "err" in p.stderr and "command terminated with exit code 3" in p.stderr
    p = _kubectl(c1, how, "exec", "-i", "client", "--", "cat", input="hello stdin\n" * 5000)
    assert p.returncode == 0 and p.stdout == "hello stdin\n" * 5000, p.stderr
    p = _kubectl(c1, how, "exec", "client", "--", "curl", "-s", "-m", "5", "http://web-svc")
    assert p.returncode == 0 and "Welcome to nginx!" in p.stdout, p.stderr
    p = _kubectl(c1, how, "exec", "client", "-c", "nope", "--", "true")
    assert p.returncode != 0 and "container nope is not valid for pod client" in p.stderr


@pytest.mark.parametrize("how", ["spdy", "1.27"])
def test_exec_tty_over_spdy(c1: Cluster, how: str) -> None:
    """``-it`` over SPDY: a pty in the pod, the terminal's size through the resize stream, the exit code."""
    exe = str(OLD_KUBECTL) if how == "1.27" else KUBECTL
    if not os.path.exists(exe):
        pytest.skip(f"{exe} is not installed")
    env = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false " if how == "spdy" else ""
    kc = f"{env}{exe} --kubeconfig={c1.kubeconfig} --cache-dir={c1.cache_dir}"
    cmd = (f"(printf 'tty; stty size; exit 4\\n'; sleep 3) | "
           f"script -qec \"stty rows 33 cols 77; {kc} exec -it client -- sh\" /dev/null")
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
    assert p.returncode == 4, p.stdout + p.stderr
    assert "/dev/pts/" in p.stdout and "33 77" in p.stdout, p.stdout


def _forward(c: Cluster, how: str, target: str, ports: list[str], log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as out:
        pf = _popen(c, how, out, "port-forward", target, *ports)
    wait_for(lambda: log.read_text().count("Forwarding from 127.0.0.1") == len(ports) or pf.poll() is not None,
             30, "port-forward")
    assert pf.poll() is None, log.read_text()
    return pf


@pytest.mark.parametrize("how", ["spdy", "1.27"])
@pytest.mark.parametrize("target", ["pod/web", "svc/web-svc"])
def test_port_forward_over_spdy(c1: Cluster, how: str, target: str, tmp_path: Path) -> None:
    port = free_port()
    pf = _forward(c1, how, target, [f"{port}:80"], tmp_path / "pf.log")
    try:
        for _ in range(3):
            assert "Welcome to nginx!" in _get(port)
        time.sleep(0.5)
        assert pf.poll() is None, (tmp_path / "pf.log").read_text()
        assert (tmp_path / "pf.log").read_text().count("Handling connection") == 3
    finally:
        pf.terminate()
        pf.wait(10)


@pytest.mark.parametrize("how", HOW)
def test_port_forward_reaches_the_pods_loopback(c1: Cluster, how: str, tmp_path: Path) -> None:
    """As upstream: the port on the pod's own 127.0.0.1, which the pod's IP does not offer."""
    pod = pod_ready(c1, "loopback")
    assert pod is not None
    direct = c1.kubectl("exec", "client", "--", "curl", "-s", "-m", "3", f"http://{pod['status']['podIP']}:8081/",
                        check=False)
    assert direct.returncode != 0, "the test server is not bound to loopback only"
    port = free_port()
    pf = _forward(c1, how, "pod/loopback", [f"{port}:8081"], tmp_path / "pf.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"Directory listing" in r.read()
    finally:
        pf.terminate()
        pf.wait(10)


@pytest.mark.parametrize("how", ["ws", "spdy"])
def test_port_forward_closed_port_says_connection_refused(c1: Cluster, how: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "pf.log"
    pf = _forward(c1, how, "pod/web", [f"{port}:9999"], log)
    try:
        with pytest.raises(OSError):
            _get(port)
        wait_for(lambda: "connection refused" in log.read_text(), 10, "the error from the pod")
        text = log.read_text()
        assert "error forwarding port 9999 to pod web" in text and "127.0.0.1:9999: connect: connection refused" in text
    finally:
        pf.terminate()
        pf.wait(10)


@pytest.mark.parametrize("how", HOW)
def test_attach_streams_output_from_now_on(c1: Cluster, how: str, tmp_path: Path) -> None:
    before = c1.kubectl("logs", "ticker").stdout.split()
    last = int(before[-1])
    log = tmp_path / "attach.log"
    with open(log, "w") as out:
        p = _popen(c1, how, out, "attach", "ticker")
    try:
        wait_for(lambda: log.read_text().count("tick ") >= 5 or p.poll() is not None, 30, "ticks through attach")
        assert p.poll() is None, log.read_text()
    finally:
        p.terminate()
        p.wait(10)
    ticks = [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("tick ")]
    assert ticks[0] >= last, f"attach showed output from before it attached: {ticks[:3]} (last logged {last})"
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks


@pytest.mark.parametrize("how", HOW)
def test_attach_stdin(c1: Cluster, how: str) -> None:
    """``attach -i`` to a ``stdin: true, stdinOnce: true`` container: input in, output out; EOF ends it."""
    wait_for(lambda: pod_ready(c1, f"att-{how}"), 60, f"att-{how} Ready")
    time.sleep(0.3)  # the container's first line is out: attach shows only what comes after
    p = _kubectl(c1, how, "attach", "-i", f"att-{how}", input="hello\nworld\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == ["got hello", "got world", "bye"], p.stdout

    def restarted() -> bool:  # restartPolicy Always: a new container, with a new stdin that stays open
        pod = pod_ready(c1, f"att-{how}")
        return bool(pod and pod["status"]["containerStatuses"][0]["restartCount"] == 1)
    wait_for(restarted, 60, f"att-{how} to restart")
    time.sleep(0.5)
    assert c1.kubectl("logs", f"att-{how}").stdout.splitlines() == ["ready"]
    previous = c1.kubectl("logs", "--previous", f"att-{how}").stdout.splitlines()
    assert previous == ["ready", "got hello", "got world", "bye"]


def test_attach_errors(c1: Cluster) -> None:
    p = c1.kubectl("attach", "client", "-c", "nope", check=False)
    assert p.returncode != 0 and "container nope not found in pod client" in p.stderr
    raw = c1.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/client/attach?container=nope&stdout=true",
                     check=False)
    assert raw.returncode != 0 and "container nope is not valid for pod client" in raw.stderr
