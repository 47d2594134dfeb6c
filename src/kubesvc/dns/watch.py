"""The watch cache: Services and EndpointSlices from the API into the index.

Two informers (list, then watch) convert each object to its slim record on
ingest, so nothing downstream touches a full object.  The index reports
itself synced only once *both* lists have landed: until then the server
answers SERVFAIL for the zone, because a name missing from a half-filled
cache is not proof that it does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubesvc.api.resources import by_kind
from kubesvc.client.informer import Informer
from kubesvc.client.rest import ApiClient

from .index import MemoryIndex
from .records import service_record, slice_record

log = logging.getLogger(__name__)

SERVICES = by_kind("v1", "Service")
ENDPOINT_SLICES = by_kind("discovery.k8s.io/v1", "EndpointSlice")


class WatchCache:
    """Keeps a :class:`MemoryIndex` current from list+watch; ``start()``, then ``stop()``."""

    def __init__(self, client: ApiClient, index: MemoryIndex) -> None:
        assert SERVICES is not None and ENDPOINT_SLICES is not None
        self.index = index
        self.services = Informer(client, SERVICES, page_size=1000)
        self.slices = Informer(client, ENDPOINT_SLICES, page_size=1000)
        self.services.add_handler(self._put_service, lambda _old, new: self._put_service(new), self._del_service)
        self.slices.add_handler(self._put_slice, lambda _old, new: self._put_slice(new), self._del_slice)
        self._sync_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.services.start()
        self.slices.start()
        self._sync_task = asyncio.create_task(self._mark_synced(), name="dns-cache-sync")

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.shield(self._sync_task), timeout)  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        await asyncio.gather(self.services.stop(), self.slices.stop())

    async def _mark_synced(self) -> None:
        await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())
        self.index.mark_synced()
        services, slices = self.index.counts()
        log.info("dns: cache synced (%d services, %d endpointslices)", services, slices)

    def _put_service(self, obj: dict[str, Any]) -> None:
        self.index.put_service(service_record(obj))

    def _del_service(self, obj: dict[str, Any]) -> None:
        rec = service_record(obj)
        self.index.delete_service(rec.namespace, rec.name)

    def _put_slice(self, obj: dict[str, Any]) -> None:
        self.index.put_slice(slice_record(obj))

    def _del_slice(self, obj: dict[str, Any]) -> None:
        rec = slice_record(obj)
        self.index.delete_slice(rec.namespace, rec.name)
