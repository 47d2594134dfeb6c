"""The table's fixed shape: names, mark bits and the shared (static) chains.

Layout, chosen for what changes cost in the kernel (issue 6 measured it): no
chain per Service or per endpoint.  A Service is a handful of map elements:

* ``service-ips`` / ``external-ips`` / ``service-nodeports`` map a frontend
  (``ip . proto . port`` or ``proto . nodePort``) to a service-port id, which
  the packet carries in ``meta mark`` through our chains (a scratch register);
* ``pools`` maps an endpoint pool id (the service-port id, plus a bit for the
  local-policy pool) to its verdict: ``goto pick-N``, ``drop`` or reject;
* ``pick-N`` (one chain per endpoint count, shared by every Service) DNATs via
  ``meta mark . numgen random mod N`` into the ``endpoints-PROTO`` map (one map
  per protocol: nft 1.0.6 cannot re-read a ``typeof ... th dport`` map from
  the kernel, so the value type names the protocol).

So one endpoint change is a few element deletes/adds and never makes nft load
chains in proportion to the cluster.  The ``pick-N`` chains for N up to
``PICK_PRESET`` always exist: adding a rule makes nft read the maps it names
(with their elements), so an endpoint count change must not add a chain.  Only Services with sessionAffinity get
chains of their own (a lookup chain per pool and a record chain), because the
per-endpoint affinity sets need per-endpoint rules.  Masquerading is decided
per connection with a ct mark bit (set before DNAT) and, for hairpin, a set of
``pool . endpoint . endpoint`` looked up in postrouting.

Family ``ip``: the cluster is single-stack IPv4, and one family keeps map key
types simple; an ``ip6`` table would be a second planner run.
"""

from __future__ import annotations

import base64
import hashlib

from .ruleset import Chain, SetDef

FAMILY = "ip"
PROTOCOLS = ("tcp", "udp", "sctp")
MASQ_CT_BIT = 0x4000  # ct mark bit: masquerade this connection in postrouting
LOCAL_POOL_BIT = 0x400000  # meta mark bit: the local-policy pool of a service port
MAX_PORT_ID = LOCAL_POOL_BIT - 1
PICK_PRESET = 32  # pick-1..pick-32 always exist: an endpoint count change never adds a chain
L4 = "meta l4proto { tcp, udp, sctp }"
FRONT = "ip daddr . meta l4proto . th dport"

SERVICES, CLUSTER_IP, EXTERNAL, EXTERNAL_LOCAL = "services", "cluster-ip", "external", "external-local"
PICK, REJECT, MASQUERADING = "pick", "reject-chain", "masquerading"
CLUSTER_IPS, SERVICE_IPS, EXTERNAL_IPS, NODEPORTS = "cluster-ips", "service-ips", "external-ips", "service-nodeports"
FIREWALL_IPS, FIREWALL_ALLOW, ETP_LOCAL = "firewall-ips", "firewall-allow", "etp-local"
NODEPORT_IPS = "nodeport-ips"
POOLS, ENDPOINTS, HAIRPIN, AFFINITY_RECORD = "pools", "endpoints", "hairpin", "affinity-record"

STATIC_SETS = {s.name: s for s in (
    SetDef(CLUSTER_IPS, "type ipv4_addr;"),
    SetDef(SERVICE_IPS, "type ipv4_addr . inet_proto . inet_service : mark;", is_map=True),
    SetDef(EXTERNAL_IPS, "type ipv4_addr . inet_proto . inet_service : mark;", is_map=True),
    SetDef(NODEPORTS, "type inet_proto . inet_service : mark;", is_map=True),
    SetDef(NODEPORT_IPS, "type ipv4_addr;"),
    SetDef(FIREWALL_IPS, "type ipv4_addr . inet_proto . inet_service;"),
    SetDef(FIREWALL_ALLOW, "type ipv4_addr . inet_proto . inet_service . ipv4_addr; flags interval;"),
    SetDef(ETP_LOCAL, "type mark;"),
    SetDef(POOLS, "type mark : verdict;", is_map=True),
    *(SetDef(f"{ENDPOINTS}-{p}", f"typeof meta mark . numgen random mod 2 : ip daddr . {p} dport;", is_map=True)
      for p in PROTOCOLS),
    SetDef(HAIRPIN, "type mark . ipv4_addr . ipv4_addr;"),
    SetDef(AFFINITY_RECORD, "type mark : verdict;", is_map=True),
)}


def mark(value: int) -> str:
    return f"0x{value:08x}"


def short_hash(text: str) -> str:
    """Eight base32 characters of sha256: readable, deterministic chain/set names."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def pick_chain(n: int) -> str:
    return f"pick-{n}"


def static_chains(pod_cidr: str, cluster_cidr: str, pick_sizes: frozenset[int],
                  affinity: bool = True, nodeport_ips: tuple[str, ...] | None = None) -> dict[str, Chain]:
    """The shared chains; they change only with the node's CIDRs, the set of pool sizes,
    whether any Service has sessionAffinity, and whether NodePorts are limited to the
    addresses in ``nodeport-ips`` (``--nodeport-addresses``) or open on every local one.

    Packets of an established connection never enter a ``nat`` chain (conntrack
    replays the NAT it recorded), so all Service work is done once per
    connection.  The two ``affinity-*`` filter chains are the exception: a
    filter hook sees every packet (it returns at once, ``ct state new`` being
    its first test), so they exist only while some Service has affinity.
    """
    masq = f"ct mark set ct mark | {mark(MASQ_CT_BIT)}"
    chains = [
        Chain("nat-prerouting", (f"jump {SERVICES}",), "type nat hook prerouting priority dstnat"),
        Chain("nat-output", (f"jump {SERVICES}",), "type nat hook output priority -100"),
        Chain("nat-postrouting", (f"jump {MASQUERADING}",), "type nat hook postrouting priority srcnat"),
    ]
    if affinity:
        chains += [
            Chain("affinity-prerouting", (f"ct state new ct status dnat meta mark vmap @{AFFINITY_RECORD}",),
                  "type filter hook prerouting priority dstnat + 10"),
            Chain("affinity-output", (f"ct state new ct status dnat meta mark vmap @{AFFINITY_RECORD}",),
                  "type filter hook output priority -90"),
        ]
    chains += [
        Chain(SERVICES, (
            f"{FRONT} @{FIREWALL_IPS} {FRONT} . ip saddr != @{FIREWALL_ALLOW} drop",
            f"meta mark set {FRONT} map @{SERVICE_IPS} goto {CLUSTER_IP}",
            f"meta mark set {FRONT} map @{EXTERNAL_IPS} goto {EXTERNAL}",
            ("fib daddr type local ip daddr != 127.0.0.0/8" if nodeport_ips is None else f"ip daddr @{NODEPORT_IPS}")
            + f" meta mark set meta l4proto . th dport map @{NODEPORTS} goto {EXTERNAL}",
            f"ip daddr @{CLUSTER_IPS} goto {REJECT}",
        )),
        Chain(CLUSTER_IP, ((f"ip saddr != {cluster_cidr} {masq}",) if cluster_cidr else ()) + (f"goto {PICK}",)),
        Chain(EXTERNAL, (f"meta mark @{ETP_LOCAL} goto {EXTERNAL_LOCAL}", f"{masq} goto {PICK}")),
        Chain(EXTERNAL_LOCAL, ((f"ip saddr {pod_cidr} goto {PICK}",) if pod_cidr else ()) + (
            f"fib saddr type local {masq} goto {PICK}",
            f"meta mark set meta mark | {mark(LOCAL_POOL_BIT)} goto {PICK}",
        )),
        Chain(PICK, (f"meta mark vmap @{POOLS}",)),
        Chain(REJECT, ("meta l4proto tcp reject with tcp reset", "reject")),
        Chain(MASQUERADING, (
            f"ct mark & {mark(MASQ_CT_BIT)} == {mark(MASQ_CT_BIT)} masquerade fully-random",
            f"ct status dnat meta mark . ip saddr . ip daddr @{HAIRPIN} masquerade fully-random",
        )),
    ]
    for n in sorted(pick_sizes | set(range(1, PICK_PRESET + 1))):
        chains.append(Chain(pick_chain(n), tuple(
            f"meta l4proto {p} dnat to meta mark . numgen random mod {n} map @{ENDPOINTS}-{p}" for p in PROTOCOLS)))
    return {c.name: c for c in chains}
