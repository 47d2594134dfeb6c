"""Clearing stale UDP conntrack entries after endpoints change.

UDP has no connection teardown: a client that keeps sending to a Service
keeps its conntrack entry, pinned to the endpoint chosen first, even after
that endpoint is gone (or, if it was rejected while there were no endpoints,
keeps being dropped).  After each successful sync the proxy deletes entries
DNATed to removed endpoints, and entries for frontends that just got their
first endpoint.  :func:`stale_udp` decides (pure); :func:`clear` runs
``conntrack -D`` for each filter.

Packets conntrack marks INVALID are not dropped: upstream's nftables mode
removed the iptables mode's ``ct state invalid drop`` before it went beta
(kubernetes PR 122663), because legitimate traffic on multihomed nodes is
sometimes INVALID; the workaround it offers for the connection resets that
rule was for is ``--conntrack-tcp-be-liberal`` (:func:`set_tcp_be_liberal`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable

from .model import Endpoint, ServicePort
from .netns import exec_prefix

log = logging.getLogger(__name__)
Filter = tuple[str, ...]


def _frontends(sp: ServicePort) -> list[Filter]:
    ips = [sp.cluster_ip, *sp.external_ips, *sp.lb_ips]
    out: list[Filter] = [("--orig-dst", ip, "--orig-port-dst", str(sp.port)) for ip in ips]
    if sp.node_port:
        out.append(("--orig-port-dst", str(sp.node_port)))
    return out


def stale_udp(old: Iterable[tuple[ServicePort, tuple[Endpoint, ...]]],
              new: Iterable[tuple[ServicePort, tuple[Endpoint, ...]]]) -> list[Filter]:
    """conntrack -D filters for one Service's UDP ports, old → new."""
    new_by_key = {sp.key: (sp, eps) for sp, eps in new if sp.protocol == "udp"}
    old_by_key = {sp.key: (sp, eps) for sp, eps in old if sp.protocol == "udp"}
    out: list[Filter] = []
    for key, (sp, eps) in old_by_key.items():
        keep = {e.ip for e in new_by_key.get(key, (sp, ()))[1]}
        for ip in sorted({e.ip for e in eps} - keep):
            out += [(*f, "--dst-nat", ip) for f in _frontends(sp)]
    for key, (sp, eps) in new_by_key.items():
        had = old_by_key.get(key, (sp, ()))[1]
        if eps and not had:
            out += _frontends(sp)
    return out


async def clear(filters: list[Filter], netns: str | None = None) -> int:
    """Run ``conntrack -D -p udp FILTER`` for each; returns how many commands ran."""
    if not filters:
        return 0
    if shutil.which("conntrack") is None:
        log.warning("conntrack not installed: %d stale UDP flows not cleared", len(filters))
        return 0
    for f in filters:
        proc = await asyncio.create_subprocess_exec(
            *exec_prefix(netns), "conntrack", "-D", "-p", "udp", *f,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()  # exit 1 just means nothing matched
    return len(filters)


TCP_BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


async def set_tcp_be_liberal(netns: str | None = None) -> bool:
    """kube-proxy's ``--conntrack-tcp-be-liberal``: conntrack stops marking out-of-window TCP
    packets INVALID (the sysctl is per network namespace: the node's).  True if it is set."""
    proc = await asyncio.create_subprocess_exec(
        *exec_prefix(netns), "sysctl", "-qw", f"{TCP_BE_LIBERAL}=1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        log.warning("cannot set %s: %s", TCP_BE_LIBERAL, err.decode().strip())
        return False
    return True
