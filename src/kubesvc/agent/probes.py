"""Readiness, liveness and startup probes: the spec, the threshold logic, the checks.

The threshold logic (:class:`ProbeTracker`) is pure, so its timing rules are
unit-tested; :func:`check` does one probe against the pod (the agent is in
the node namespace and reaches pod IPs directly; ``exec`` runs in the pod's
namespace).  Messages match upstream's, because they end up in Events.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # httpGet | tcpSocket | exec | grpc
    action: Obj
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, probe: Obj | None) -> ProbeSpec | None:
        if not probe:
            return None
        kind = next((k for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe), None)
        if kind is None:
            return None
        return cls(kind, probe[kind] or {}, float(probe.get("initialDelaySeconds") or 0),
                   float(probe.get("periodSeconds") or 10), float(probe.get("timeoutSeconds") or 1),
                   int(probe.get("successThreshold") or 1), int(probe.get("failureThreshold") or 3))


class ProbeTracker:
    """Turns single results into the probe's verdict with upstream's thresholds.

    Readiness starts failed, liveness starts successful, startup starts failed
    (the kubelet's initial results); a verdict flips only after
    ``successThreshold`` successes or ``failureThreshold`` failures in a row.
    """

    def __init__(self, spec: ProbeSpec, kind: str) -> None:
        self.spec = spec
        self.kind = kind  # readiness | liveness | startup
        self.verdict = kind == "liveness"
        self._run = 0
        self._last: bool | None = None

    def record(self, ok: bool) -> bool:
        """Feed one result; True if the verdict changed."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        need = self.spec.success_threshold if ok else self.spec.failure_threshold
        if ok != self.verdict and self._run >= need:
            self.verdict = ok
            return True
        return False


def _port(action: Obj, ports: dict[str, int]) -> int:
    p = action.get("port")
    if isinstance(p, str) and not p.isdigit():
        if p not in ports:
            raise ValueError(f"unknown named port {p!r}")
        return ports[p]
    return int(p or 0)


def _dial_error(host: str, port: int, e: OSError) -> str:
    what = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host"}.get(
        e.errno or 0, e.strerror or str(e))
    return f"dial tcp {host}:{port}: connect: {what}"


async def _http(action: Obj, pod_ip: str, port: int, timeout: float) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    path = action.get("path") or "/"
    scheme = (action.get("scheme") or "HTTP").lower()
    url = f"{scheme}://{host}:{port}{path}"
    headers = {h.get("name"): h.get("value") for h in action.get("httpHeaders") or []}
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except OSError as e:
        return False, f'Get "{url}": {_dial_error(host, port, e)}'
    try:
        hdrs = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*",
                "Connection": "close", **headers}
        writer.write((f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
                      + "\r\n").encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    except (TimeoutError, OSError):
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    finally:
        writer.close()
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def _tcp(pod_ip: str, port: int, host: str | None, timeout: float) -> tuple[bool, str]:
    host = host or pod_ip
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        return False, _dial_error(host, port, e)
    writer.close()
    return True, ""


async def _exec(command: list[str], netns: str, timeout: float, env: dict[str, str]) -> tuple[bool, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, *command, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL, env=env)
    except OSError as e:
        return False, str(e)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"command {command!r} timed out"
    text = out.decode(errors="replace")
    return proc.returncode == 0, text


async def check(spec: ProbeSpec, *, pod_ip: str, netns: str, ports: dict[str, int],
                env: dict[str, str]) -> tuple[bool, str]:
    """One probe: (success, upstream-style failure message)."""
    try:
        if spec.kind == "httpGet":
            return await _http(spec.action, pod_ip, _port(spec.action, ports), spec.timeout)
        if spec.kind in ("tcpSocket", "grpc"):
            return await _tcp(pod_ip, _port(spec.action, ports), spec.action.get("host"), spec.timeout)
        if spec.kind == "exec":
            return await _exec(list(spec.action.get("command") or []), netns, spec.timeout, env)
    except ValueError as e:
        return False, str(e)
    return False, f"unsupported probe {spec.kind}"
