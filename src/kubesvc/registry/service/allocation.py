"""The pure planner that allocates and releases a Service's IPs and ports.

How to call it (registry/service/strategy.py)
---------------------------------------------
Upstream allocates *before* it validates (``BeginCreate``/``BeginUpdate`` run
ahead of ``PrepareFor*`` and ``Validate``), so that is the order that gives
the same error for a bad request::

    # create
    default_service(svc, cfg)                       # defaults.py
    txn = plan_allocations(svc, None, ipallocs, portalloc)   # may raise AllocationError
    errs = validate_service(svc)                    # validation.py
    if errs: txn.rollback(); raise invalid_error("Service", name, errs)
    try:    await store.create(svc)
    except: txn.rollback(); raise
    txn.commit()

    # update (old = the stored object)
    default_service_update(new, old, cfg)
    txn = plan_allocations(new, old, ipallocs, portalloc)    # also drops type-dependent fields
    errs = validate_service_update(new, old)
    ... same rollback / write / commit pattern ...

    # delete: after the object is gone
    plan_allocations(None, old, ipallocs, portalloc).commit()

    # dry run: plan, validate, then always txn.rollback()

``AllocationError.status(name)`` gives the ``StatusError`` to return (422
with field causes, or 500 for an exhausted range, as upstream).  A transaction
allocates at once and defers releases to ``commit()``: a failed write leaks
nothing (``rollback()`` frees what was taken and keeps what was to be
released), a successful one frees what the old object held.  Everything here
is synchronous, so a plan is atomic on the event loop.  At start-up, call
:func:`rebuild` with every stored Service to restore allocator state.

Behaviour follows ``pkg/registry/core/service/storage/alloc.go``: ExternalName
to any type allocates cluster IPs, any type to ExternalName releases them;
headless stays headless; NodePort/LoadBalancer to ClusterIP/ExternalName
releases node ports; ports sharing a number (80/TCP and 80/UDP) share one
node port on create; LoadBalancer with ``allocateLoadBalancerNodePorts:
false`` only honours explicit node ports; ``healthCheckNodePort`` is
allocated for LoadBalancer + ``externalTrafficPolicy: Local``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubesvc.api.errors import FieldError, StatusError, internal_error, invalid, invalid_error
from kubesvc.api.validation.govalue import string_slice
from kubesvc.api.validation.names import ip_family
from kubesvc.registry.service.bitmap import AllocatorError, RestoreResult
from kubesvc.registry.service.defaults import (
    drop_type_dependent_fields,
    init_ip_family_fields,
    normalize_cluster_ips,
    patch_allocated_values,
)
from kubesvc.registry.service.ipallocator import IPAllocator
from kubesvc.registry.service.portallocator import PortAllocator
from kubesvc.registry.service.validation import (
    EXTERNAL_NAME,
    LOAD_BALANCER,
    NODE_PORT,
    NONE,
    cluster_ips,
    needs_health_check,
    ports_of,
    svc_type,
)

Obj = dict[str, Any]
IPAllocators = IPAllocator | Mapping[str, IPAllocator] | Sequence[IPAllocator]


class AllocationError(Exception):
    """A failed plan: field errors (422 Invalid) or an internal failure (500), as upstream."""

    def __init__(self, errors: list[FieldError] | None = None, internal: str | None = None) -> None:
        self.errors = errors or []
        self.internal = internal
        super().__init__(internal or "; ".join(str(e) for e in self.errors))

    def status(self, name: str) -> StatusError:
        if self.internal is not None:
            return internal_error(self.internal)
        return invalid_error("Service", name, self.errors)


def _by_family(ipalloc: IPAllocators) -> dict[str, IPAllocator]:
    """Allocators keyed by family, the cluster's default family first."""
    if isinstance(ipalloc, IPAllocator):
        return {ipalloc.family: ipalloc}
    if isinstance(ipalloc, Mapping):
        return dict(ipalloc)
    return {a.family: a for a in ipalloc}


@dataclass
class Transaction:
    """Allocations made now, releases deferred to :meth:`commit`; :meth:`rollback` undoes."""

    ips: dict[str, IPAllocator]
    ports: PortAllocator
    allocated_ips: list[tuple[str, str]] = field(default_factory=list)
    allocated_ports: list[int] = field(default_factory=list)
    release_ips: list[tuple[str, str]] = field(default_factory=list)
    release_ports: list[int] = field(default_factory=list)
    done: bool = False

    def alloc_ip(self, family: str, ip: str) -> str:
        """Reserve ``ip`` (or the next free one when ``ip`` is empty)."""
        if ip:
            self.ips[family].allocate(ip)
        else:
            ip = self.ips[family].allocate_next()
        self.allocated_ips.append((family, ip))
        return ip

    def alloc_port(self, port: int) -> int:
        """Reserve ``port`` (or the next free one when ``port`` is 0)."""
        if port:
            self.ports.allocate(port)
        else:
            port = self.ports.allocate_next()
        self.allocated_ports.append(port)
        return port

    def defer_ip_release(self, ip: str) -> None:
        fam = ip_family(ip)
        if fam in self.ips:  # a family no longer configured is simply not tracked
            self.release_ips.append((fam, ip))

    def defer_port_release(self, port: int) -> None:
        if port:
            self.release_ports.append(port)

    def commit(self) -> None:
        """The write succeeded: free what the old object held."""
        if self.done:
            return
        self.done = True
        for fam, ip in self.release_ips:
            self.ips[fam].release(ip)
        for port in self.release_ports:
            self.ports.release(port)

    def rollback(self) -> None:
        """The write failed (or was a dry run): free what this plan took."""
        if self.done:
            return
        self.done = True
        for fam, ip in self.allocated_ips:
            self.ips[fam].release(ip)
        for port in self.allocated_ports:
            self.ports.release(port)


def plan_allocations(
    new: Obj | None, old: Obj | None, ipalloc: IPAllocators, portalloc: PortAllocator
) -> Transaction:
    """Decide and perform allocations for a create (old None), update, or delete (new None).

    Mutates ``new`` in place (cluster IPs, ip families, node ports, health
    check port; on update also drops fields the new type does not use).
    Raises :class:`AllocationError`, having rolled back what it took.
    """
    txn = Transaction(_by_family(ipalloc), portalloc)
    try:
        if new is None:
            if old is not None:
                _plan_delete(old, txn)
        elif old is None:
            _plan_create(new, txn)
        else:
            _plan_update(new, old, txn)
    except BaseException:
        txn.rollback()
        raise
    return txn


# --------------------------------------------------------------------------
# create


def _plan_create(svc: Obj, txn: Transaction) -> None:
    normalize_cluster_ips(svc, None)
    errs = init_ip_family_fields(svc, None, list(txn.ips))
    if errs:
        raise AllocationError(errs)
    _alloc_cluster_ips(svc, txn)
    if svc_type(svc) in (NODE_PORT, LOAD_BALANCER):
        _init_node_ports(svc, txn)
    if needs_health_check(svc):
        _alloc_health_check_port(svc, txn)


def _alloc_cluster_ips(svc: Obj, txn: Transaction) -> None:
    """Fill every ``clusterIPs`` slot its ``ipFamilies`` call for (none for ExternalName/headless)."""
    spec = svc["spec"]
    if svc_type(svc) == EXTERNAL_NAME:
        return
    ips = cluster_ips(svc)
    if ips and ips[0] == NONE:
        return
    families = list(spec.get("ipFamilies") or [])
    ips += [""] * (len(families) - len(ips))
    spec["clusterIPs"] = ips
    for i, fam in enumerate(families):
        ips[i] = _alloc_one_ip(svc, fam, ips[i], txn)
    if ips:
        spec["clusterIP"] = ips[0]


def _alloc_one_ip(svc: Obj, family: str, ip: str, txn: Transaction) -> str:
    if family not in txn.ips:  # init_ip_family_fields rejects this first; keep a clear error anyway
        raise AllocationError([invalid("spec.ipFamilies", family, "not configured on this cluster")])
    try:
        return txn.alloc_ip(family, ip)
    except AllocatorError as e:
        if not ip:
            raise AllocationError(internal=f"failed to allocate a serviceIP: {e}") from e
        shown = string_slice(cluster_ips(svc))
        raise AllocationError([invalid("spec.clusterIPs", shown, f"failed to allocate IP {ip}: {e}")]) from e


def _should_allocate_node_ports(svc: Obj) -> bool:
    if svc_type(svc) == NODE_PORT:
        return True
    if svc_type(svc) == LOAD_BALANCER:
        return svc["spec"].get("allocateLoadBalancerNodePorts") is not False
    return False


def _node_port(port: Mapping[str, Any]) -> int:
    value = port.get("nodePort")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _alloc_node_port(port_index: int, wanted: int, txn: Transaction) -> int:
    """One explicit or automatic node port, with upstream's error for each."""
    try:
        return txn.alloc_port(wanted)
    except AllocatorError as e:
        if not wanted:
            raise AllocationError(internal=f"failed to allocate a nodePort: {e}") from e
        raise AllocationError([invalid(f"spec.ports[{port_index}].nodePort", wanted, str(e))]) from e


def _init_node_ports(svc: Obj, txn: Transaction) -> None:
    """initNodePorts: ports with the same number (80/TCP, 80/UDP) share one node port."""
    ports = ports_of(svc)
    by_number: dict[int, int] = {}
    for i, port in enumerate(ports):
        current = _node_port(port)
        if current == 0 and not _should_allocate_node_ports(svc):
            continue  # LoadBalancer without node ports: honour explicit requests only
        number = port.get("port")
        shared = by_number.get(number, 0)
        if shared == 0:
            requested = next((_node_port(p) for p in ports if p.get("port") == number and _node_port(p)), 0)
            got = _alloc_node_port(i, requested, txn)
            port["nodePort"] = by_number[number] = got
        elif current != shared:
            if current == 0:
                port["nodePort"] = shared
            else:
                _alloc_node_port(i, current, txn)


def _alloc_health_check_port(svc: Obj, txn: Transaction) -> None:
    spec = svc["spec"]
    wanted = spec.get("healthCheckNodePort") or 0
    try:
        spec["healthCheckNodePort"] = txn.alloc_port(wanted)
    except AllocatorError as e:
        if wanted:
            raise AllocationError(internal=f"failed to allocate requested HealthCheck NodePort {wanted}: {e}") from e
        raise AllocationError(internal=f"failed to allocate a HealthCheck NodePort 0: {e}") from e


# --------------------------------------------------------------------------
# update


def _plan_update(new: Obj, old: Obj, txn: Transaction) -> None:
    patch_allocated_values(new, old)
    normalize_cluster_ips(new, old)
    errs = init_ip_family_fields(new, old, list(txn.ips))
    if errs:
        raise AllocationError(errs)
    _update_cluster_ips(new, old, txn)
    if svc_type(old) in (NODE_PORT, LOAD_BALANCER) and svc_type(new) not in (NODE_PORT, LOAD_BALANCER):
        for port in _collect_node_ports(old):
            txn.defer_port_release(port)
    if svc_type(new) in (NODE_PORT, LOAD_BALANCER):
        _update_node_ports(new, old, txn)
    if not needs_health_check(old) and needs_health_check(new):
        _alloc_health_check_port(new, txn)
    elif needs_health_check(old) and not needs_health_check(new):
        txn.defer_port_release(old["spec"].get("healthCheckNodePort") or 0)
    drop_type_dependent_fields(new, old)


def _families(svc: Obj) -> list[str]:
    return list((svc.get("spec") or {}).get("ipFamilies") or [])


def _update_cluster_ips(new: Obj, old: Obj, txn: Transaction) -> None:
    """updateClusterIPs: type changes across ExternalName, dual-stack upgrade and downgrade."""
    old_type, new_type = svc_type(old), svc_type(new)
    old_ips = cluster_ips(old)
    if old_type == EXTERNAL_NAME and new_type != EXTERNAL_NAME:
        _alloc_cluster_ips(new, txn)
        return
    if old_ips and old_ips[0] == NONE:
        return  # headless stays headless: nothing was allocated
    if old_type != EXTERNAL_NAME and new_type == EXTERNAL_NAME:
        for ip in old_ips:
            txn.defer_ip_release(ip)
        return
    old_fams, new_fams = _families(old), _families(new)
    if len(old_fams) == 1 and len(new_fams) == 2:
        ips = cluster_ips(new)
        if len(ips) < 2:
            ips.append("")
        new["spec"]["clusterIPs"] = ips
        ips[1] = _alloc_one_ip(new, new_fams[1], ips[1], txn)
    elif len(old_fams) == 2 and len(new_fams) == 1 and len(old_ips) > 1:
        txn.defer_ip_release(old_ips[1])


def _collect_node_ports(svc: Obj) -> list[int]:
    return [np for np in (_node_port(p) for p in ports_of(svc)) if np]


def _update_node_ports(new: Obj, old: Obj, txn: Transaction) -> None:
    """updateNodePorts: keep existing ports, allocate new ones, release the ones dropped."""
    old_numbers = _collect_node_ports(old)
    seen: list[tuple[str, int]] = []
    allocated_here: set[int] = set()
    for i, port in enumerate(ports_of(new)):
        node_port = _node_port(port)
        if node_port == 0 and not _should_allocate_node_ports(new):
            continue
        if node_port:
            if node_port not in old_numbers and node_port not in allocated_here:
                _alloc_node_port(i, node_port, txn)
                allocated_here.add(node_port)
        else:
            node_port = port["nodePort"] = _alloc_node_port(i, 0, txn)
        key = (port.get("protocol") or "", node_port)
        if key in seen:
            raise AllocationError(internal=f"duplicate nodePort: {{{key[0]} {key[1]}}}")
        seen.append(key)
    new_numbers = _collect_node_ports(new)
    for number in old_numbers:
        if number not in new_numbers:
            txn.defer_port_release(number)


# --------------------------------------------------------------------------
# delete


def _plan_delete(old: Obj, txn: Transaction) -> None:
    """releaseAllocatedResources: cluster IPs, node ports and the health check port."""
    ips = cluster_ips(old)
    if svc_type(old) != EXTERNAL_NAME and not (ips and ips[0] == NONE):
        for ip in ips:
            txn.defer_ip_release(ip)
    for port in _collect_node_ports(old):
        txn.defer_port_release(port)
    if needs_health_check(old):
        txn.defer_port_release(old["spec"].get("healthCheckNodePort") or 0)


# --------------------------------------------------------------------------
# start-up rebuild


@dataclass(frozen=True)
class RepairProblem:
    """One stored value the allocators could not take back."""

    service: str  # namespace/name
    field: str  # spec.clusterIPs[0], spec.ports[1].nodePort, spec.healthCheckNodePort
    value: str | int
    problem: str  # RestoreResult.DUPLICATE | RestoreResult.OUT_OF_RANGE | "family not configured"


def _key(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def rebuild(services: Iterable[Obj], ipalloc: IPAllocators, portalloc: PortAllocator) -> list[RepairProblem]:
    """Restore allocator state from stored Services; report what could not be restored.

    Older Services (by ``creationTimestamp``, then key) claim first, so on a
    duplicate the newer Service is the one reported; the caller decides how to
    fix it (upstream's repair controller reports, then re-allocates).
    """
    allocs = _by_family(ipalloc)
    problems: list[RepairProblem] = []
    ordered = sorted(services, key=lambda s: (str((s.get("metadata") or {}).get("creationTimestamp") or ""), _key(s)))
    for svc in ordered:
        ips = cluster_ips(svc)
        if svc_type(svc) != EXTERNAL_NAME and not (ips and ips[0] == NONE):
            for i, ip in enumerate(ips):
                alloc = allocs.get(ip_family(ip) or "")
                result = alloc.restore(ip) if alloc else "family not configured"
                if result != RestoreResult.RESTORED:
                    problems.append(RepairProblem(_key(svc), f"spec.clusterIPs[{i}]", ip, result))
        restored_here: set[int] = set()
        for i, port in enumerate(ports_of(svc)):
            number = _node_port(port)
            if number and number not in restored_here:  # 80/TCP and 80/UDP may share one
                restored_here.add(number)
                result = portalloc.restore(number)
                if result != RestoreResult.RESTORED:
                    problems.append(RepairProblem(_key(svc), f"spec.ports[{i}].nodePort", number, result))
        hc = (svc.get("spec") or {}).get("healthCheckNodePort") or 0
        if needs_health_check(svc) and hc:
            result = portalloc.restore(hc)
            if result != RestoreResult.RESTORED:
                problems.append(RepairProblem(_key(svc), "spec.healthCheckNodePort", hc, result))
    return problems
