"""A small real topology for proxy tests: one node namespace, pod namespaces, an outside client.

Every name starts with ``ks-`` plus a per-run tag; :meth:`Lab.close` kills
the servers and deletes the namespaces (which takes their veths with them),
so the machine is left as it was found.  Pods hang off the node on routed
/32 veths (no bridge), so every pod-to-pod packet is routed through the
node's netfilter hooks, as the kernel data plane requires.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

NODE_IP = "172.18.0.2"
CLIENT_IP = "172.18.0.1"
GATEWAY = "10.244.1.1"

SERVER = r"""
import http.server, socketserver, sys
name = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{name} {self.client_address[0]}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True
S(("0.0.0.0", int(sys.argv[2])), H).serve_forever()
"""


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


def root() -> bool:
    return os.geteuid() == 0


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000}")
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)  # name → ip

    @property
    def node(self) -> str:
        return f"ks-pxn{self.tag}"

    @property
    def client(self) -> str:
        return f"ks-pxc{self.tag}"

    def _netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def start(self) -> Lab:
        self._netns(self.node)
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._netns(self.client)
        sh("ip", "-n", self.node, "link", "add", "vc", "type", "veth", "peer", "name", "eth0", "netns", self.client)
        sh("ip", "-n", self.node, "addr", "add", f"{NODE_IP}/24", "dev", "vc")
        sh("ip", "-n", self.node, "link", "set", "vc", "up")
        sh("ip", "-n", self.node, "route", "add", "default", "via", CLIENT_IP)  # the host is the node's gateway
        sh("ip", "-n", self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.client, "link", "set", "eth0", "up")
        sh("ip", "-n", self.client, "route", "add", "default", "via", NODE_IP)
        return self

    def add_pod(self, name: str, ip: str, port: int = 8080) -> str:
        ns = f"ks-pxp{self.tag}-{name}"[:40]
        self._netns(ns)
        veth = f"vp{len(self.pods)}"
        sh("ip", "-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.node, "addr", "add", f"{GATEWAY}/32", "dev", veth)
        sh("ip", "-n", self.node, "link", "set", veth, "up")
        sh("ip", "-n", self.node, "route", "add", f"{ip}/32", "dev", veth)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", GATEWAY, "dev", "eth0")
        sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY)
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name, str(port)]))
        self.pods[name] = ip
        self._wait_listening(ns, port)
        return ns

    def pod_ns(self, name: str) -> str:
        return f"ks-pxp{self.tag}-{name}"[:40]

    @staticmethod
    def _wait_listening(ns: str, port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if f":{port} " in sh("ip", "netns", "exec", ns, "ss", "-ltnH", check=False).stdout:
                return
            time.sleep(0.05)
        raise RuntimeError(f"server in {ns} did not listen")

    def curl(self, ns: str, url: str, timeout: float = 2) -> tuple[int, str]:
        """(curl exit code, body): 0 ok, 7 refused, 28 timed out."""
        p = sh("ip", "netns", "exec", ns, "curl", "-s", "--max-time", str(timeout), url, check=False,
               timeout=timeout + 10)
        return p.returncode, p.stdout.strip()

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
