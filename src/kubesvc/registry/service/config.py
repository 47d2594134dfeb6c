"""Cluster-wide settings the Service registry depends on.

These are the apiserver flags upstream reads (``--service-cluster-ip-range``,
``--service-node-port-range``) plus the DNS zone; defaults follow DESIGN.md
(10.0.0.0/16 so the seed's ``clusterIP: 10.0.10.10`` is valid as written).
A second CIDR of the other family makes the cluster dual-stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubesvc.api.validation.names import parse_cidr


@dataclass(frozen=True)
class ServiceConfig:
    service_cidr: str = "10.0.0.0/16"
    #: optional second range of the other family (dual-stack); None = single-stack
    secondary_service_cidr: str | None = None
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"

    def __post_init__(self) -> None:
        fams = []
        for cidr in self.service_cidrs:
            net = parse_cidr(cidr)
            if net is None:
                raise ValueError(f"invalid service CIDR {cidr!r}")
            fams.append(net.version)
        if len(set(fams)) != len(fams):
            raise ValueError("the secondary service CIDR must be of the other IP family")
        lo, hi = self.node_port_range
        if not (0 < lo <= hi <= 65535):
            raise ValueError(f"invalid node port range {lo}-{hi}")

    @property
    def service_cidrs(self) -> tuple[str, ...]:
        """Primary first, as ``--service-cluster-ip-range`` lists them."""
        if self.secondary_service_cidr:
            return (self.service_cidr, self.secondary_service_cidr)
        return (self.service_cidr,)

    @property
    def ip_families(self) -> tuple[str, ...]:
        """Configured families, the cluster default (the primary range's) first."""
        out = []
        for cidr in self.service_cidrs:
            net = parse_cidr(cidr)
            assert net is not None
            out.append("IPv4" if net.version == 4 else "IPv6")
        return tuple(out)

    @property
    def default_ip_family(self) -> str:
        return self.ip_families[0]

    @property
    def node_port_range_text(self) -> str:
        """``30000-32767``, as upstream's net.PortRange prints in errors."""
        lo, hi = self.node_port_range
        return f"{lo}-{hi}"
