"""The watch cache: Services, EndpointSlices (and Pods) from the API into the index.

Informers (list, then watch) convert each object to its slim record as it
arrives (client-go's transform), so neither their stores nor anything
downstream holds a full object: at 10,000 pods that is the difference
between a few megabytes and hundreds, and between a garbage collector that
has little to scan and one that pauses the server.  Pods are watched only
for ``pods verified``.  The index reports itself synced only once *every*
list has landed: until then the server answers SERVFAIL for the zone,
because a name missing from a half-filled cache is not proof that it does
not exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubesvc.api.resources import by_kind
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient

from .index import MemoryIndex
from .records import Pod, Service, Slice, pod_record, service_record, slice_record

log = logging.getLogger(__name__)

SERVICES = by_kind("v1", "Service")
ENDPOINT_SLICES = by_kind("discovery.k8s.io/v1", "EndpointSlice")
PODS = by_kind("v1", "Pod")

Obj = dict[str, Any]


def slim(convert: Callable[[Obj], object]) -> Callable[[Obj], Obj]:
    """The informer transform: the store key (namespace, name) and the record, nothing else."""
    def transform(obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        return {"metadata": {"namespace": meta.get("namespace"), "name": meta.get("name")}, "record": convert(obj)}
    return transform


class WatchCache:
    """Keeps a :class:`MemoryIndex` current from list+watch; ``start()``, then ``stop()``."""

    def __init__(self, client: ApiClient, index: MemoryIndex, *, pods: bool = False) -> None:
        assert SERVICES is not None and ENDPOINT_SLICES is not None and PODS is not None
        self.index = index
        self.services = Informer(client, SERVICES, page_size=1000, transform=slim(service_record))
        self.slices = Informer(client, ENDPOINT_SLICES, page_size=1000, transform=slim(slice_record))
        self.services.add_handler(self._put, lambda _old, new: self._put(new), self._delete)
        self.slices.add_handler(self._put, lambda _old, new: self._put(new), self._delete)
        self.informers = [self.services, self.slices]
        if pods:
            self.pods = Informer(client, PODS, page_size=1000, transform=slim(pod_record))
            self.pods.add_handler(self._put, lambda _old, new: self._put(new), self._delete)
            self.informers.append(self.pods)
        self._sync_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self._sync_task = asyncio.create_task(self._mark_synced(), name="dns-cache-sync")

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.shield(self._sync_task), timeout)  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        await asyncio.gather(*(informer.stop() for informer in self.informers))

    async def _mark_synced(self) -> None:
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
        self.index.mark_synced()
        services, slices, pods = self.index.counts()
        log.info("dns: cache synced (%d services, %d endpointslices, %s pods)", services, slices,
                 pods if len(self.informers) > 2 else "no")

    def _put(self, obj: Obj) -> None:
        rec = obj["record"]
        if isinstance(rec, Service):
            self.index.put_service(rec)
        elif isinstance(rec, Slice):
            self.index.put_slice(rec)
        elif isinstance(rec, Pod):
            self.index.put_pod(rec)

    def _delete(self, obj: Obj) -> None:
        rec = obj["record"]
        if isinstance(rec, Service):
            self.index.delete_service(rec.namespace, rec.name)
        elif isinstance(rec, Slice):
            self.index.delete_slice(rec.namespace, rec.name)
        elif isinstance(rec, Pod):
            self.index.delete_pod(rec.namespace, rec.name)
