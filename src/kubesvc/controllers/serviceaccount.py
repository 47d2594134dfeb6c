"""The service-account controller: every active namespace has a ``default`` ServiceAccount.

kubectl and clients expect it (pods name ``serviceAccountName: default``), and
upstream's controller-manager keeps it there, recreating it if deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from typing import Any

from kubesvc.api.resources import by_plural
from kubesvc.client.controller import Controller
from kubesvc.client.rest import ApiClient, ApiError
from kubesvc.client.sharedinformers import SharedInformerFactory

log = logging.getLogger(__name__)
NAMESPACES = by_plural("", "v1", "namespaces")
SERVICEACCOUNTS = by_plural("", "v1", "serviceaccounts")
DEFAULT = "default"


class ServiceAccountController(Controller):
    """Level-triggered: the key is a namespace name; reconcile ensures its ``default`` SA."""

    name = "serviceaccount"

    def __init__(self, client: ApiClient, *, workers: int = 2, resync_period: float | None = 300.0,
                 factory: SharedInformerFactory | None = None) -> None:
        super().__init__(workers=workers, resync_period=resync_period)
        self.factory = self.informer_factory(client, factory)
        assert NAMESPACES and SERVICEACCOUNTS
        self.client = client
        self.namespaces = self.factory.informer(NAMESPACES)
        self.accounts = self.factory.informer(SERVICEACCOUNTS)
        self.informers += [self.namespaces, self.accounts]
        self.namespaces.add_handler(self._ns_changed, lambda old, new: self._ns_changed(new), None)
        self.accounts.add_handler(None, None, self._sa_deleted)

    def _ns_changed(self, obj: dict[str, Any]) -> None:
        self.enqueue(obj["metadata"]["name"])

    def _sa_deleted(self, obj: dict[str, Any]) -> None:
        if obj["metadata"].get("name") == DEFAULT:
            self.enqueue(obj["metadata"].get("namespace", ""))

    def resync_keys(self) -> Iterable[Hashable]:
        return self.namespaces.store.keys()

    async def reconcile(self, key: Hashable) -> None:
        ns = str(key)
        nsobj = self.namespaces.store.get(ns)
        if nsobj is None or (nsobj.get("status") or {}).get("phase") == "Terminating":
            return
        if self.accounts.store.get_by(ns, DEFAULT) is not None:
            return
        assert SERVICEACCOUNTS is not None
        try:
            await self.client.create(SERVICEACCOUNTS, {"metadata": {"name": DEFAULT, "namespace": ns}}, ns)
        except ApiError as e:
            if e.reason not in ("AlreadyExists", "Forbidden", "NotFound"):
                raise
