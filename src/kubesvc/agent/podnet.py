"""A pod's network: its own namespace, a veth into the node bridge, an IP.

Each pod gets ``ks-p-<hash>``; the veth's node end ``vp<hash>`` joins the
node's ``cbr0``, the pod end is ``eth0`` with the pod IP and a default route
through the node (10.244.N.1).  ``/etc/netns/<ns>/resolv.conf`` and ``hosts``
are what iproute2 bind-mounts over ``/etc`` in ``ip netns exec``, so each
pod's processes, and only they, see the cluster DNS and their own hostname.

Two ``ip -batch`` processes per pod (one in the node namespace, one in the
pod's) keep pod start cheap.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from kubesvc.agent.hostnet import (
    NETNS_CONF_DIR,
    NODE_BRIDGE,
    POD_NETNS_PREFIX,
    kill_pids,
    netns_pids,
    remove_netns,
)
from kubesvc.agent.sysexec import Runner, ip_batch
from kubesvc.api import addressplan as plan

Obj = dict[str, Any]


def pod_hash(uid: str) -> str:
    return hashlib.sha1(uid.encode()).hexdigest()[:10]


def pod_netns(uid: str) -> str:
    return POD_NETNS_PREFIX + pod_hash(uid)


def pod_veth(uid: str) -> str:
    """The node-side end (15-byte interface-name limit: ``vp`` + 10 hex)."""
    return "vp" + pod_hash(uid)


def resolv_conf(pod: Obj, host_resolv: str = "") -> str:
    """Upstream's dnsPolicy: ClusterFirst (default), Default (the node's), None (dnsConfig only)."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst":
        d = plan.CLUSTER_DOMAIN
        servers, searches, options = [plan.CLUSTER_DNS_IP], [f"{ns}.svc.{d}", f"svc.{d}", d], ["ndots:5"]
    elif policy == "Default":
        for line in host_resolv.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(parts[1])
            elif parts and parts[0] in ("search", "domain"):
                searches += parts[1:]
            elif parts and parts[0] == "options":
                options += parts[1:]
    cfg = spec.get("dnsConfig") or {}
    servers += [s for s in cfg.get("nameservers") or [] if s not in servers]
    searches += [s for s in cfg.get("searches") or [] if s not in searches]
    for o in cfg.get("options") or []:
        text = o.get("name", "") + (f":{o['value']}" if o.get("value") is not None else "")
        options = [x for x in options if x.split(":")[0] != o.get("name")] + [text]
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: Obj, ip: str) -> str:
    """The kubelet-managed /etc/hosts: localhost, the pod's own name at its IP, hostAliases."""
    spec = pod.get("spec") or {}
    name = spec.get("hostname") or (pod.get("metadata") or {}).get("name", "")
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters", f"{ip}\t{name}"]
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("\n# Entries added by HostAliases.")
        lines += [f"{a.get('ip')}\t" + "\t".join(a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"


class PodNetwork:
    """Creates and removes pod namespaces on one node (the agent runs inside the node namespace)."""

    def __init__(self, runner: Runner, pod_cidr: str, conf_dir: Path = NETNS_CONF_DIR) -> None:
        self.runner = runner
        self.prefix = pod_cidr.split("/")[1]
        self.gateway = pod_cidr.rsplit(".", 1)[0] + ".1"
        self.conf_dir = conf_dir

    def write_files(self, pod: Obj, netns: str, ip: str) -> None:
        d = self.conf_dir / netns
        d.mkdir(parents=True, exist_ok=True)
        host = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
        (d / "resolv.conf").write_text(resolv_conf(pod, host))
        (d / "hosts").write_text(hosts_file(pod, ip))

    async def setup(self, pod: Obj, uid: str, ip: str) -> str:
        """Build the pod's namespace from scratch (a leftover of a failed try is removed first)."""
        netns, veth = pod_netns(uid), pod_veth(uid)
        if (Path("/run/netns") / netns).exists():
            await self.teardown(uid)
        self.write_files(pod, netns, ip)
        await ip_batch(self.runner, [f"netns add {netns}",
                                     f"link add {veth} type veth peer name eth0 netns {netns}",
                                     f"link set {veth} master {NODE_BRIDGE} up"])
        await ip_batch(self.runner, ["link set lo up", f"addr add {ip}/{self.prefix} dev eth0",
                                     "link set eth0 up", f"route add default via {self.gateway}"], netns=netns)
        return netns

    async def teardown(self, uid: str) -> None:
        """Kill whatever still runs in the namespace, delete it (the veth pair goes with it)."""
        netns = pod_netns(uid)
        kill_pids(await netns_pids(self.runner, netns))
        await remove_netns(self.runner, [netns])  # the veth pair dies with the namespace
        shutil.rmtree(self.conf_dir / netns, ignore_errors=True)

    async def exists(self, uid: str) -> bool:
        return (Path("/run/netns") / pod_netns(uid)).exists()
