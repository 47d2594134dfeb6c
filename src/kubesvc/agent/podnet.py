"""A pod's network: its own namespace, a veth into the node bridge, an IP.

Each pod gets ``ks-p-<hash>``; the veth's node end ``vp<hash>`` joins the
node's ``cbr0``, the pod end is ``eth0`` with the pod IP and a default route
through the node (10.244.N.1).  ``/etc/netns/<ns>/resolv.conf`` and ``hosts``
are what iproute2 bind-mounts over ``/etc`` in ``ip netns exec``, so each
pod's processes, and only they, see the cluster DNS and their own hostname.

No process is started for it: the agent makes the namespace and talks
netlink itself (:mod:`~kubesvc.agent.rtnl`, a few requests per pod), in worker threads (a namespace switch is per
thread, and the event loop never blocks on it); the pool's size bounds how
many pods are set up at once.  The layout is iproute2's, so ``ip netns``
sees and cleans pod namespaces as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubesvc.agent import nsutil, rtnl, threads
from kubesvc.agent.hostnet import NETNS_CONF_DIR, NODE_BRIDGE, POD_NETNS_PREFIX, kill_pids
from kubesvc.agent.sysexec import Runner
from kubesvc.api import addressplan as plan

# Pods whose namespaces are built at once: the kernel serialises netlink changes (rtnl_lock), so a few
# threads keep it busy, and more only make every pod of a burst finish late.
SETUP_PARALLEL = int(os.environ.get("KUBESVC_POD_SETUP_PARALLEL", "4"))

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

    def __init__(self, runner: Runner | None, pod_cidr: str, conf_dir: Path = NETNS_CONF_DIR,
                 parallel: int = SETUP_PARALLEL) -> None:
        self.parallel = parallel
        self.runner = runner  # kept for callers that pass one; netlink needs no commands
        self.prefix = pod_cidr.split("/")[1]
        self.gateway = pod_cidr.rsplit(".", 1)[0] + ".1"
        self.conf_dir = conf_dir
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="podnet")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: list[rtnl.Rtnl] = []

    def _node_rtnl(self) -> rtnl.Rtnl:
        """This worker thread's netlink socket in the node namespace (made once per thread)."""
        nl: rtnl.Rtnl | None = getattr(self._local, "rtnl", None)
        if nl is None:
            nl = self._local.rtnl = rtnl.Rtnl()
            with self._lock:
                self._sockets.append(nl)
        return nl

    def prestart(self) -> None:
        """Start the worker threads now (see :mod:`kubesvc.agent.threads`)."""
        threads.prestart(self._pool, self.parallel)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def write_files(self, pod: Obj, netns: str, ip: str) -> None:
        d = self.conf_dir / netns
        d.mkdir(parents=True, exist_ok=True)
        host = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
        (d / "resolv.conf").write_text(resolv_conf(pod, host))
        (d / "hosts").write_text(hosts_file(pod, ip))

    def _setup_sync(self, pod: Obj, uid: str, ip: str, before: Sequence[Callable[[], None]] = ()) -> str:
        netns, veth = pod_netns(uid), pod_veth(uid)
        for step in before:
            step()
        if nsutil.netns_path(netns).exists():  # a leftover of a failed try
            self._teardown_sync(uid)
        self.write_files(pod, netns, ip)
        fd = nsutil.create_netns(netns)
        try:
            # Interface indexes come from if_nametoindex (this thread's namespace): a netlink
            # lookup by name dumps every link, and a node has a veth per pod.
            # The node's side, in one request: the veth on the bridge and up, its peer made in the pod as eth0.
            self._node_rtnl().request([rtnl.veth_add(veth, "eth0", fd, socket.if_nametoindex(NODE_BRIDGE))])
            with nsutil.in_netns(fd), rtnl.Rtnl() as nl:  # the pod's side, in one write
                eth0 = socket.if_nametoindex("eth0")
                nl.request([rtnl.link_up(socket.if_nametoindex("lo")), rtnl.addr_add(eth0, ip, int(self.prefix)),
                            rtnl.link_up(eth0), rtnl.default_route(self.gateway)])
        except BaseException:
            os.close(fd)
            self._teardown_sync(uid)
            raise
        os.close(fd)
        return netns

    def _teardown_sync(self, uid: str) -> None:
        netns, veth = pod_netns(uid), pod_veth(uid)
        kill_pids(nsutil.pids_in_netns(netns))
        try:
            idx = socket.if_nametoindex(veth)
        except OSError:
            idx = 0  # gone already (or never made)
        if idx:
            with contextlib.suppress(OSError):  # the pair goes now, not whenever the namespace is freed
                self._node_rtnl().request([rtnl.link_del(idx)])
        try:
            nsutil.delete_netns(netns)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        shutil.rmtree(self.conf_dir / netns, ignore_errors=True)

    async def setup(self, pod: Obj, uid: str, ip: str, before: Sequence[Callable[[], None]] = ()) -> str:
        """Build the pod's namespace from scratch (a leftover of a failed try is removed first).

        ``before``: steps run first in the same worker thread (the agent's state files, written before
        the namespace exists, without file I/O on the event loop).
        """
        return str(await self._in_thread(self._setup_sync, pod, uid, ip, before))

    async def teardown(self, uid: str) -> None:
        """Kill whatever still runs in the namespace, delete the veth pair and the namespace."""
        await self._in_thread(self._teardown_sync, uid)

    async def exists(self, uid: str) -> bool:
        return nsutil.netns_path(pod_netns(uid)).exists()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for nl in self._sockets:
            with contextlib.suppress(Exception):
                nl.close()
        self._sockets.clear()
