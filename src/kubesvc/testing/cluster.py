"""A real ``kubesvc up`` in a subprocess, for whole-cluster tests and benchmarks.

Tests drive it with the real kubectl and the official Python client; the
helpers here only start, reach and stop it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running ``kubesvc up`` and helpers to talk to it."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[str]
    cache_dir: Path
    output: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if not os.path.exists(KUBECTL):
            pytest.skip("kubectl is not installed (/usr/bin/kubectl)")
        cmd = [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def client(self):  # type: ignore[no-untyped-def]
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_cluster(data_dir: Path, cache_dir: Path, *extra: str, port: int | None = None,
                  timeout: float = 30, command: str = "up") -> Cluster:
    """``kubesvc up`` (or, with ``command="apiserver"``, the API server alone, for tests that run controllers)."""
    port = port or free_port()
    if command == "up" and not any(a == "--nodes" or a.startswith("--nodes=") for a in extra):
        extra = ("--nodes", "0", *extra)  # no node network unless a test asks for one (one per machine)
    cmd = [sys.executable, "-m", "kubesvc", command, "--data-dir", str(data_dir), "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    c = Cluster(data_dir, port, proc, cache_dir)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        c.output.append(line)
        if "kubesvc is up" in line:
            os.set_blocking(proc.stdout.fileno(), False)
            return c
    c.stop(signal.SIGKILL)
    raise AssertionError("kubesvc up did not start:\n" + "".join(c.output))


