"""The indexes DNS answers read: one dict lookup per question.

:class:`Index` is the read interface the pure answering step depends on, and
nothing more; :class:`MemoryIndex` is the one implementation, fed by the
watch cache in production and by hand (a static fake) in the table tests.
Slices are kept per service and merged on read, because a service's
endpoints span many slices and any one of them may change alone.  Pods are
kept (as namespace, name and addresses) only for ``pods verified``.

A write that leaves a record as it was (a Pod's status heartbeat, a label
change) is not a change: listeners are told only when an answer may differ,
so the server's answer cache is not dropped for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .records import Endpoint, Pod, Service, Slice, endpoint_hostname

Key = tuple[str, str]  # (namespace, name), lower-case


class Index(Protocol):
    """What the answering step may ask of the cache."""

    @property
    def synced(self) -> bool: ...

    @property
    def serial(self) -> int: ...

    def service(self, namespace: str, name: str) -> Service | None: ...

    def endpoints(self, namespace: str, name: str) -> list[Endpoint]: ...

    def has_namespace(self, namespace: str) -> bool: ...

    def has_pod(self, namespace: str, ip: str) -> bool:
        """Whether a pod in ``namespace`` has the address ``ip`` (canonical text)."""
        ...

    def reverse(self, ip: str) -> list[tuple[str, str, str]]:
        """``(namespace, service, hostname)`` for an address; hostname "" for a clusterIP."""
        ...


class MemoryIndex:
    """Services and slices by key, plus reverse maps kept in step on every write."""

    def __init__(self, *, synced: bool = True, serial: int = 1) -> None:
        self._synced = synced
        self.serial = serial
        self._services: dict[Key, Service] = {}
        self._slices: dict[Key, Slice] = {}
        self._slices_by_service: dict[Key, set[str]] = {}
        self._by_cluster_ip: dict[str, set[Key]] = {}
        self._by_endpoint_ip: dict[str, set[tuple[str, str, str]]] = {}
        self._namespaces: dict[str, int] = {}
        self._pods: dict[Key, Pod] = {}
        self._pods_by_ip: dict[str, set[Key]] = {}
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ reads

    @property
    def synced(self) -> bool:
        return self._synced

    def service(self, namespace: str, name: str) -> Service | None:
        return self._services.get((namespace, name))

    def endpoints(self, namespace: str, name: str) -> list[Endpoint]:
        out: list[Endpoint] = []
        for slice_name in sorted(self._slices_by_service.get((namespace, name), ())):
            out.extend(self._slices[(namespace, slice_name)].endpoints)
        return out

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def has_pod(self, namespace: str, ip: str) -> bool:
        return any(ns == namespace for ns, _ in self._pods_by_ip.get(ip, ()))

    def reverse(self, ip: str) -> list[tuple[str, str, str]]:
        out = [(ns, name, "") for ns, name in self._by_cluster_ip.get(ip, ())]
        out += self._by_endpoint_ip.get(ip, ())
        return sorted(out)

    def counts(self) -> tuple[int, int, int]:
        return len(self._services), len(self._slices), len(self._pods)

    # ------------------------------------------------------------------ writes

    def on_change(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after every write that changes a record (the server drops its answer cache)."""
        self._listeners.append(fn)

    def mark_synced(self) -> None:
        self._synced = True
        self._changed()

    def put_service(self, svc: Service) -> None:
        key = (svc.namespace, svc.name)
        if self._services.get(key) == svc:
            return
        self._drop_service(key)
        self._services[key] = svc
        self._namespaces[svc.namespace] = self._namespaces.get(svc.namespace, 0) + 1
        for ip in svc.cluster_ips:
            self._by_cluster_ip.setdefault(ip, set()).add(key)
        self._changed()

    def delete_service(self, namespace: str, name: str) -> None:
        if self._drop_service((namespace, name)):
            self._changed()

    def put_slice(self, sl: Slice) -> None:
        key = (sl.namespace, sl.name)
        if self._slices.get(key) == sl:
            return
        self._drop_slice(key)
        self._slices[key] = sl
        if sl.service:
            self._slices_by_service.setdefault((sl.namespace, sl.service), set()).add(sl.name)
        for ep in sl.endpoints:
            for ip in ep.addresses:
                self._by_endpoint_ip.setdefault(ip, set()).add((sl.namespace, sl.service, endpoint_hostname(ep, ip)))
        self._changed()

    def delete_slice(self, namespace: str, name: str) -> None:
        if self._drop_slice((namespace, name)):
            self._changed()

    def put_pod(self, pod: Pod) -> None:
        key = (pod.namespace, pod.name)
        if self._pods.get(key) == pod:
            return
        self._drop_pod(key)
        self._pods[key] = pod
        for ip in pod.ips:
            self._pods_by_ip.setdefault(ip, set()).add(key)
        self._changed()

    def delete_pod(self, namespace: str, name: str) -> None:
        if self._drop_pod((namespace, name)):
            self._changed()

    def _drop_pod(self, key: Key) -> bool:
        old = self._pods.pop(key, None)
        if old is None:
            return False
        for ip in old.ips:
            _discard(self._pods_by_ip, ip, key)
        return True

    def _drop_service(self, key: Key) -> bool:
        old = self._services.pop(key, None)
        if old is None:
            return False
        left = self._namespaces[old.namespace] - 1
        if left:
            self._namespaces[old.namespace] = left
        else:
            del self._namespaces[old.namespace]
        for ip in old.cluster_ips:
            _discard(self._by_cluster_ip, ip, key)
        return True

    def _drop_slice(self, key: Key) -> bool:
        old = self._slices.pop(key, None)
        if old is None:
            return False
        if old.service:
            _discard(self._slices_by_service, (old.namespace, old.service), old.name)
        for ep in old.endpoints:
            for ip in ep.addresses:
                _discard(self._by_endpoint_ip, ip, (old.namespace, old.service, endpoint_hostname(ep, ip)))
        return True

    def _changed(self) -> None:
        self.serial += 1
        for fn in self._listeners:
            fn()


def _discard(index: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]
