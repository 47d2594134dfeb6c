"""``kubesvc demo``: the seed document, end to end, on a real two-node cluster.

Every step prints the command a user would type and what came back, so the
walk-through doubles as a tutorial: pods under a controller, the seed's two
manifests as written, NodePort, LoadBalancer and ExternalName Services, traffic
through each (and how it spreads over the pods), and a pod replaced at a new
address while its Service keeps answering.  Everything is removed at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesvc.api import addressplan
from kubesvc.cli.errors import CliError
from kubesvc.cli.seed import SEED_CLUSTERIP, SEED_TEMPLATE

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

OTHER_TYPES = """\
apiVersion: v1
kind: Service
metadata:
  name: nodeport-service
spec:
  type: NodePort
  selector:
    app: nginx-for-svc
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
    nodePort: 30080
---
apiVersion: v1
kind: Service
metadata:
  name: loadbalancer-service
spec:
  type: LoadBalancer
  selector:
    app: nginx-for-svc
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: externalname-service
spec:
  type: ExternalName
  externalName: clusterip-service.default.svc.cluster.local
"""

CLIENT_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: client
    image: curlimages/curl
    command: ["sleep", "infinity"]
"""


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="walk through the seed document on a real two-node cluster (root)")
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    p.add_argument("--nodes", type=int, default=2, help="nodes to start (default 2)")
    p.add_argument("--data-dir", type=Path, default=None, help="cluster state (default: a new temporary dir)")
    p.add_argument("--requests", type=int, default=20, help="requests sent through each Service (default 20)")


@dataclass
class Demo:
    """A running demo cluster and the helpers each step uses."""

    data_dir: Path
    requests: int
    proc: subprocess.Popen[str] | None = None
    cache: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubesvc-demo-cache-")))
    out: Callable[[str], None] = print

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    # --- printing -------------------------------------------------------------
    def step(self, text: str) -> None:
        self.out(f"\n==> {text}")

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    def show(self, argv: list[str], output: str) -> None:
        self.out("$ " + " ".join(argv))
        for line in output.rstrip("\n").splitlines():
            self.out(line)

    # --- running ----------------------------------------------------------------
    def kubectl(self, *args: str, stdin: str | None = None, quiet: bool = False, check: bool = True) -> str:
        argv = [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache}", *args]
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise CliError(f"kubectl {' '.join(args)} failed: {p.stderr.strip() or p.stdout.strip()}")
        if not quiet:
            self.show(["kubectl", *args] + (["<<EOF"] if stdin else []), p.stdout + p.stderr)
        return p.stdout

    def in_pod(self, pod: str, *argv: str, quiet: bool = True) -> str:
        """Run a program inside a pod's network namespace (kubectl exec is not served yet)."""
        uid = json.loads(self.kubectl("get", "pod", pod, "-o", "json", quiet=True))["metadata"]["uid"]
        from kubesvc.agent.podnet import pod_netns

        cmd = ["ip", "netns", "exec", pod_netns(uid), *argv]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if not quiet:
            self.show([f"(in pod {pod})", *argv], p.stdout + p.stderr)
        return p.stdout

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(CliError):
                if check():
                    return
            time.sleep(0.5)
        raise CliError(f"timed out after {timeout:.0f} s waiting for {what}")

    def pods(self) -> list[dict[str, Any]]:
        items = json.loads(self.kubectl("get", "pods", "-l", "app=nginx-for-svc", "-o", "json", quiet=True))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def hits(self) -> Counter[str]:
        """Requests each nginx pod has logged so far (its access log is on stdout, as nginx's image)."""
        out: Counter[str] = Counter()
        for p in self.pods():
            name = p["metadata"]["name"]
            logs = self.kubectl("logs", name, quiet=True, check=False)
            out[name] = sum(1 for line in logs.splitlines() if '"GET ' in line)
        return out

    def spread(self, label: str, send: Callable[[], bool]) -> None:
        before = self.hits()
        ok = sum(1 for _ in range(self.requests) if send())
        after = self.hits()
        self.say(f"{label}: {ok}/{self.requests} requests answered")
        ips = {p["metadata"]["name"]: p["status"].get("podIP", "?") for p in self.pods()}
        for name in sorted(after):
            self.say(f"  {name} ({ips.get(name, '?')}) answered {after[name] - before.get(name, 0)}")
        if ok != self.requests:
            raise CliError(f"{label}: only {ok} of {self.requests} requests were answered")


def _curl(url: str, argv_prefix: tuple[str, ...] = ()) -> bool:
    p = subprocess.run([*argv_prefix, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.strip() == "200"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _cluster(demo: Demo, nodes: int, keep: bool) -> Iterator[None]:
    port = _free_port()
    log_path = demo.data_dir / "up.log"
    demo.data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "kubesvc", "up", "--nodes", str(nodes), "--data-dir", str(demo.data_dir),
            "--port", str(port)]
    demo.show(["kubesvc", "up", "--nodes", str(nodes), "--data-dir", str(demo.data_dir)], f"(log: {log_path})")
    log_file = open(log_path, "w")  # noqa: SIM115 - the child writes to it for its whole life
    demo.proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=keep)
    try:
        demo.wait("the cluster to start", lambda: "kubesvc is up" in log_path.read_text(), timeout=120)
        yield
    finally:
        if not keep:
            demo.proc.send_signal(signal.SIGTERM)
            try:
                demo.proc.wait(60)
            except subprocess.TimeoutExpired:
                demo.proc.kill()
        log_file.close()


def run_demo(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise CliError("kubesvc demo needs root: nodes and pods are network namespaces (run it with sudo)")
    if not os.path.exists(KUBECTL):
        raise CliError("kubesvc demo drives the cluster with kubectl, which is not installed")
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="kubesvc-demo-"))).absolute()
    demo = Demo(data_dir, args.requests)
    demo.step(f"Start a cluster: {args.nodes} nodes (network namespaces), each with an agent and a proxy")
    try:
        with _cluster(demo, args.nodes, args.keep):
            _walk(demo, args.nodes)
            if args.keep:
                assert demo.proc is not None
                demo.step("The cluster keeps running")
                demo.say(f"export KUBECONFIG={demo.kubeconfig}")
                demo.say(f"stop it with: kill {demo.proc.pid}")
            else:
                demo.step("Clean up: stop the cluster (nodes, pods, rules and routes go with it)")
    finally:
        shutil.rmtree(demo.cache, ignore_errors=True)
        if not args.keep and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    if not args.keep:
        demo.say("done: nothing is left running")
    return 0


def _walk(demo: Demo, nodes: int) -> None:
    demo.wait(f"{nodes} Ready nodes", lambda: demo.kubectl(
        "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        quiet=True).split().count("True") == nodes)
    demo.kubectl("get", "nodes", "-o", "wide")

    demo.step("Run the pods the Service will reach: a Deployment of 2 nginx replicas labelled app=nginx-for-svc")
    argv = ["kubesvc", "run", "nginx-for-service", "--image=nginx", "--replicas=2", "--port=80",
            "--labels=app=nginx-for-svc"]
    p = subprocess.run([sys.executable, "-m", "kubesvc", *argv[1:], "--kubeconfig", str(demo.kubeconfig)],
                       capture_output=True, text=True, timeout=60)
    demo.show(argv, p.stdout + p.stderr)
    if p.returncode != 0:
        raise CliError("kubesvc run failed")
    demo.kubectl("rollout", "status", "deployment/nginx-for-service", "--timeout=90s")
    demo.kubectl("get", "pods", "-o", "wide")

    demo.step("The seed's template, as written: clusterIP 10.0.10.10 is taken as asked")
    demo.kubectl("apply", "-f", "-", stdin=SEED_TEMPLATE)
    demo.step("The seed's ClusterIP Service, as written: the cluster picks the address")
    demo.kubectl("apply", "-f", "-", stdin=SEED_CLUSTERIP)
    demo.step("The other types: NodePort 30080, LoadBalancer, ExternalName")
    demo.kubectl("apply", "-f", "-", stdin=OTHER_TYPES)
    lb_ip = _wait_lb(demo)
    demo.kubectl("get", "svc", "-o", "wide")
    demo.kubectl("get", "endpoints", "clusterip-service")

    demo.step("A client pod to send requests from inside the cluster")
    demo.kubectl("apply", "-f", "-", stdin=CLIENT_POD)
    demo.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    _traffic(demo, nodes, lb_ip)

    demo.step("Pods come and go: delete one and watch the Service follow its replacement")
    victim = demo.pods()[0]
    old_ips = {p["status"].get("podIP") for p in demo.pods()}
    demo.kubectl("delete", "pod", victim["metadata"]["name"], "--wait=true")
    demo.wait("the replacement pod to be Ready", lambda: len([
        p for p in demo.pods() if any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in p["status"].get("conditions", []))]) == 2)
    demo.kubectl("get", "pods", "-o", "wide")
    new_ips = {p["status"].get("podIP") for p in demo.pods()} - old_ips
    demo.say(f"the replacement runs at a new address: {', '.join(sorted(new_ips)) or '(same address reused)'}")
    demo.wait("the endpoints to follow", lambda: all(ip in demo.kubectl(
        "get", "endpoints", "clusterip-service", "-o", "jsonpath={.subsets[*].addresses[*].ip}", quiet=True)
        for ip in new_ips))
    demo.kubectl("get", "endpoints", "clusterip-service")
    demo.spread("ClusterIP after the replacement (from the client pod)",
                lambda: _curl("http://clusterip-service/", _pod_prefix(demo, "client")))


def _wait_lb(demo: Demo) -> str | None:
    def ingress() -> str:
        return demo.kubectl("get", "svc", "loadbalancer-service", "-o",
                            "jsonpath={.status.loadBalancer.ingress[0].ip}", quiet=True).strip()

    with contextlib.suppress(CliError):
        demo.wait("an EXTERNAL-IP for loadbalancer-service", lambda: bool(ingress()), timeout=20)
    ip = ingress()
    if not ip:
        demo.say("loadbalancer-service has no EXTERNAL-IP (no LoadBalancer controller answered): it stays <pending>")
    return ip or None


def _pod_prefix(demo: Demo, pod: str) -> tuple[str, ...]:
    uid = json.loads(demo.kubectl("get", "pod", pod, "-o", "json", quiet=True))["metadata"]["uid"]
    from kubesvc.agent.podnet import pod_netns

    return ("ip", "netns", "exec", pod_netns(uid))


def _traffic(demo: Demo, nodes: int, lb_ip: str | None) -> None:
    client = _pod_prefix(demo, "client")
    demo.step("ClusterIP, from inside the cluster: the client pod calls the Service by name")
    demo.in_pod("client", "cat", "/etc/resolv.conf", quiet=False)
    demo.spread("http://clusterip-service/", lambda: _curl("http://clusterip-service/", client))
    demo.step("ClusterIP from the host (outside the cluster): not reachable, as the seed says")
    cip = demo.kubectl("get", "svc", "clusterip-service", "-o", "jsonpath={.spec.clusterIP}", quiet=True)
    reached = _curl(f"http://{cip}/")
    demo.say(f"curl http://{cip}/ from the host: {'answered (unexpected!)' if reached else 'no answer'}")
    demo.step("NodePort from the host: the same port on every node")
    for i in range(1, nodes + 1):
        ip = addressplan.node_ip(i)
        demo.spread(f"http://{ip}:30080/ ({addressplan.node_name(i)})", lambda ip=ip: _curl(f"http://{ip}:30080/"))
    if lb_ip:
        demo.step("LoadBalancer from the host: the EXTERNAL-IP kubectl shows")
        demo.spread(f"http://{lb_ip}/", lambda: _curl(f"http://{lb_ip}/"))
    demo.step("ExternalName: the name is a CNAME to spec.externalName")
    out = demo.in_pod("client", "dig", "+search", "+noall", "+answer", "externalname-service")
    demo.show(["(in pod client)", "dig", "+search", "externalname-service"], out)
    if "CNAME" not in out:
        raise CliError("externalname-service did not resolve to a CNAME")
    demo.spread("http://externalname-service/ (through the CNAME)",
                lambda: _curl("http://externalname-service/", client))
    demo.step("And the seed's template Service: it selects app=MyApp, which no pod has, so it has no endpoints")
    demo.kubectl("get", "endpoints", "my-service")
    refused = not _curl("http://10.0.10.10/", client)
    demo.say(f"curl http://10.0.10.10/ from the client pod: {'refused at once (no endpoints)' if refused else 'answered?'}")
