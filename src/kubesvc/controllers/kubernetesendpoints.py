"""Endpoints and EndpointSlice of the ``kubernetes`` Service: where the API server is.

Upstream the API server itself keeps these (pkg/controlplane/reconcilers,
``EndpointsAdapter``): Endpoints ``default/kubernetes`` labelled
``endpointslice.kubernetes.io/skip-mirror=true`` (so the mirroring controller
leaves it), and EndpointSlice ``default/kubernetes`` labelled only
``kubernetes.io/service-name=kubernetes`` -- no managed-by label and no owner,
since no controller owns it.  Here a small controller does the same from
outside, given the advertised address and port, and repairs both whenever they
drift (an edit, a delete, a restart on another port).  Any other slice claiming
the Service is deleted, as upstream.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import Resource, by_plural
from kubesvc.client.controller import Controller
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

from .endpointslice.model import LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR, family_of, port_key

Obj = dict[str, Any]
NAMESPACE = "default"
NAME = "kubernetes"
KEY = f"{NAMESPACE}/{NAME}"


def _res(group: str, plural: str) -> Resource:
    r = by_plural(group, "v1", plural)
    assert r is not None
    return r


ENDPOINTS = _res("", "endpoints")
SLICES = _res("discovery.k8s.io", "endpointslices")


def desired_endpoints(ip: str, port: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {LABEL_SKIP_MIRROR: "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def desired_slice(ip: str, port: int) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {LABEL_SERVICE_NAME: NAME}},
            "addressType": family_of(ip) or "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}


def _endpoints_ok(cur: Obj, want: Obj) -> bool:
    return (cur.get("subsets") == want["subsets"]
            and ((cur.get("metadata") or {}).get("labels") or {}) == want["metadata"]["labels"])


def _slice_ok(cur: Obj, want: Obj) -> bool:
    eps = [(e.get("addresses"), (e.get("conditions") or {}).get("ready")) for e in cur.get("endpoints") or []]
    return (cur.get("addressType") == want["addressType"]
            and eps == [(want["endpoints"][0]["addresses"], True)]
            and port_key(cur.get("ports")) == port_key(want["ports"])
            and ((cur.get("metadata") or {}).get("labels") or {}) == want["metadata"]["labels"])


class KubernetesEndpointsController(Controller):
    """One key; any event on the two objects (or a resync every ``resync_period``) checks both."""

    name = "kubernetes-endpoints"

    def __init__(self, client: ApiClient, address: str, port: int, *, resync_period: float | None = 10.0,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=1, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        self.client = client
        self.address = address
        self.port = port
        self.endpoints = self.factory.informer(ENDPOINTS, namespace=NAMESPACE, field_selector=f"metadata.name={NAME}")
        self.slices = self.factory.informer(SLICES, namespace=NAMESPACE, label_selector=f"{LABEL_SERVICE_NAME}={NAME}")
        self.informers += [self.endpoints, self.slices]
        for inf in self.informers:
            inf.add_handler(self._poke, lambda old, new: self._poke(new), self._poke)

    def _poke(self, _obj: Obj) -> None:
        self.enqueue(KEY)

    def resync_keys(self) -> Iterable[Hashable]:
        return [KEY]

    async def start(self) -> None:
        await super().start()
        self.enqueue(KEY)

    async def reconcile(self, key: Hashable) -> None:
        await self._sync_endpoints()
        await self._sync_slices()

    async def _sync_endpoints(self) -> None:
        want = desired_endpoints(self.address, self.port)
        cur = self.endpoints.store.get(KEY)
        if cur is None:
            await self._create(ENDPOINTS, want)
        elif not _endpoints_ok(cur, want):
            want["metadata"]["resourceVersion"] = cur["metadata"].get("resourceVersion", "")
            await self.client.replace(ENDPOINTS, want, NAMESPACE)

    async def _sync_slices(self) -> None:
        want = desired_slice(self.address, self.port)
        slices = self.slices.store.list()
        for s in slices:
            if s["metadata"]["name"] != NAME or s.get("addressType") != want["addressType"]:
                await self._delete(s["metadata"]["name"])
        cur = self.slices.store.get(KEY)
        if cur is None:
            await self._create(SLICES, want)
        elif cur.get("addressType") != want["addressType"]:
            return  # deleted above (address type is immutable); recreated on the delete event
        elif not _slice_ok(cur, want):
            want["metadata"]["resourceVersion"] = cur["metadata"].get("resourceVersion", "")
            await self.client.replace(SLICES, want, NAMESPACE)

    async def _create(self, resource: Resource, body: Obj) -> None:
        try:
            await self.client.create(resource, body, NAMESPACE)
        except ApiError as e:
            if e.reason != "AlreadyExists":  # the cache is behind; the watch will bring it
                raise

    async def _delete(self, name: str) -> None:
        try:
            await self.client.delete(SLICES, name, NAMESPACE)
        except ApiError as e:
            if e.code != 404:
                raise
