"""The cluster's address plan and host-side names, in one place.

Every component and every test reads these instead of repeating literals, so
the plan in DESIGN.md ("Defaults users and tests rely on") has one source.
Kernel mode lays the cluster out on the machine like kind does: the host is
the world outside; each node is a network namespace on a host bridge; each pod
is a network namespace with a veth on its node's bridge.
"""

from __future__ import annotations

import ipaddress

SERVICE_CIDR = "10.0.0.0/16"
KUBERNETES_SERVICE_IP = "10.0.0.1"
CLUSTER_DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
POD_CIDR = "10.244.0.0/16"
NODE_POD_PREFIX = 24
NODE_NETWORK = "172.18.0.0/16"
NODE_NETWORK_GATEWAY = "172.18.0.1"  # the host's address on the host bridge
NODE_PORT_RANGE = (30000, 32767)
LB_POOL = "172.18.255.200-172.18.255.250"

# userspace mode (no root): everything on loopback
USERSPACE_SERVICE_CIDR = "127.10.0.0/16"
USERSPACE_POD_CIDR = "127.244.0.0/16"

# host-side names (kept short: Linux interface names are at most 15 bytes)
HOST_BRIDGE = "kubesvc0"
NETNS_PREFIX = "ks-"  # every network namespace kubesvc creates starts with this
NFT_TABLE = "kubesvc"  # the one nftables table the proxy owns (in each node namespace)


def node_name(index: int) -> str:
    """Nodes are numbered from 1: ``node-1``, ``node-2``..."""
    return f"node-{index}"


def node_ip(index: int) -> str:
    """Node N sits at 172.18.0.(N+1) on the host bridge."""
    return str(ipaddress.ip_network(NODE_NETWORK)[index + 1])


def node_pod_cidr(index: int) -> str:
    """Node N gets 10.244.N.0/24 (node-1 → 10.244.1.0/24)."""
    net = ipaddress.ip_network(POD_CIDR)
    return str(list(net.subnets(new_prefix=NODE_POD_PREFIX))[index])


def node_netns(index: int) -> str:
    return f"{NETNS_PREFIX}node-{index}"
