"""The applier: partial syncs touch only changed Services; failures leave the last good table."""

from __future__ import annotations

import pytest
from proxy_builders import LOCAL_IPS, NODE, endpoint, endpoint_slice, endpoints_of, reach, service, verdicts

from kubesvc.proxy.applier import Applier
from kubesvc.proxy.model import merge_slices, service_ports, slice_view
from kubesvc.proxy.nftables import NftError
from kubesvc.proxy.planner import plan
from kubesvc.proxy.proxier import PortIds
from kubesvc.testing.fakenft import FakeNft


class World:
    """Many services, replanned and applied like the proxier does."""

    def __init__(self, n: int = 20) -> None:
        self.fake = FakeNft(local_ips=LOCAL_IPS)
        self.applier = Applier(self.fake)
        self.ids = PortIds()
        self.services = {f"default/s{i}": service(f"s{i}", ip=f"10.0.1.{i}") for i in range(n)}
        self.slices = {k: endpoint_slice(s["metadata"]["name"], endpoint(f"10.244.1.{i + 10}"))
                       for i, (k, s) in enumerate(self.services.items())}

    def sync(self, changed: set[str] | None = None):  # type: ignore[no-untyped-def]
        ports = {k: service_ports(s) for k, s in self.services.items()}
        eps = {k: merge_slices([slice_view(self.slices[k])]) for k in self.services if k in self.slices}
        return self.applier.sync(plan(ports, eps, NODE, self.ids), changed)


def test_a_partial_sync_touches_only_the_changed_service() -> None:
    w = World()
    w.sync()
    before = {n: dict(s.elements) for n, s in w.fake.table().sets.items()}
    w.slices["default/s3"]["endpoints"].append(endpoint("10.244.2.99", "node-2"))
    result = w.sync({"default/s3"})
    assert not result.full
    body = [line for line in result.text.splitlines() if line != "add table ip kubesvc"]
    assert body and all("chain" not in line or "pick-2" in line for line in body)
    after = {n: dict(s.elements) for n, s in w.fake.table().sets.items()}
    changed = {(n, k) for n in after for k in set(after[n]) ^ set(before.get(n, {}))}
    changed |= {(n, k) for n in after for k in after[n] if k in before.get(n, {}) and before[n][k] != after[n][k]}
    pid = w.ids.ids["default/s3:http/tcp"]
    assert changed and all(f"0x{pid:08x}" in k for _, k in changed)
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.3")) == {"10.244.1.13:8080", "10.244.2.99:8080"}
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.4")) == {"10.244.1.14:8080"}


def test_transaction_size_does_not_grow_with_the_number_of_services() -> None:
    sizes = []
    for n in (10, 200):
        w = World(n)
        w.sync()
        w.slices["default/s1"]["endpoints"][0]["conditions"]["ready"] = False
        sizes.append(w.sync({"default/s1"}).size)
    assert sizes[0] == sizes[1]


def test_no_change_means_no_transaction() -> None:
    w = World(3)
    w.sync()
    count = len(w.fake.transactions)
    assert w.sync({"default/s1"}).commands == 0 and len(w.fake.transactions) == count


def test_a_failed_transaction_keeps_the_last_good_rules_and_forces_a_full_sync() -> None:
    w = World(3)
    w.sync()
    dump = w.fake.dump()
    w.services.pop("default/s1")
    w.fake.fail_next = 1
    with pytest.raises(NftError):
        w.sync({"default/s1"})
    assert w.fake.dump() == dump and w.applier.need_full
    result = w.sync({"default/s1"})
    assert result.full
    assert reach(w.fake, "10.244.1.50", "10.0.1.1") == reach(w.fake, "10.244.1.50", "10.0.1.99")


def test_deleting_a_service_removes_all_it_owned() -> None:
    w = World(2)
    w.services["default/s0"]["spec"]["sessionAffinity"] = "ClientIP"
    w.sync()
    assert any(n.startswith("affinity-") for n in w.fake.table().chains)
    w.services.pop("default/s0")
    w.sync({"default/s0"})
    t = w.fake.table()
    assert not any(n.startswith("affinity-") and n not in ("affinity-prerouting", "affinity-output", "affinity-record")
                   for n in (*t.chains, *t.sets))
    assert all("10.0.1.0 " not in k for k in t.sets["service-ips"].elements)


def test_full_sync_repairs_drift_and_removes_foreign_leftovers() -> None:
    w = World(2)
    w.sync()
    w.fake.apply("add chain ip kubesvc stray\nadd rule ip kubesvc stray drop\n"
                 "delete element ip kubesvc service-ips { 10.0.1.1 . tcp . 80 }\n")
    assert verdicts(reach(w.fake, "10.244.1.50", "10.0.1.1")) == {"REJECT"}
    w.applier.need_full = True
    w.sync()
    assert "stray" not in w.fake.table().chains
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.1")) == {"10.244.1.11:8080"}


def test_full_sync_keeps_affinity_state() -> None:
    from kubesvc.testing.nfttrace import Packet, connect

    w = World(1)
    w.services["default/s0"]["spec"]["sessionAffinity"] = "ClientIP"
    w.slices["default/s0"]["endpoints"].append(endpoint("10.244.2.7", "node-2"))
    w.sync()
    first = connect(w.fake, Packet("10.244.1.50", "10.0.1.0"))
    w.applier.need_full = True
    w.sync()
    assert all(connect(w.fake, Packet("10.244.1.50", "10.0.1.0")) == first for _ in range(10))


def test_a_cluster_ip_reused_by_another_service_in_one_sync() -> None:
    w = World(2)
    w.sync()
    old = w.services.pop("default/s0")
    w.services["default/new"] = service("new", ip=old["spec"]["clusterIP"])
    w.slices["default/new"] = endpoint_slice("new", endpoint("10.244.2.42", "node-2"))
    w.sync({"default/s0", "default/new"})
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.0")) == {"10.244.2.42:8080"}


def test_full_resync_rewrites_trusted_pick_chains_in_turn_and_repairs_them() -> None:
    from kubesvc.proxy.applier import PICK_ROTATE

    w = World(2)
    w.sync()
    w.fake.apply("flush chain ip kubesvc pick-1\n")  # a third party breaks every one-endpoint Service
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.1")) == set()
    rewritten = []
    for _ in range(40 // PICK_ROTATE):
        w.applier.need_full = True
        text = w.sync().text
        picks = {line.split()[4] for line in text.splitlines() if line.startswith("flush chain ip kubesvc pick-")}
        assert len(picks) == PICK_ROTATE
        rewritten.append(picks)
    assert set().union(*rewritten) >= {f"pick-{n}" for n in range(1, 33)}
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.1")) == {"10.244.1.11:8080"}


def test_after_a_failed_transaction_a_full_sync_rewrites_every_chain() -> None:
    w = World(2)
    w.sync()
    w.fake.apply("flush chain ip kubesvc pick-1\n")
    w.fake.fail_next = 1
    w.slices["default/s0"]["endpoints"].append(endpoint("10.244.2.8", "node-2"))
    with pytest.raises(NftError):
        w.sync({"default/s0"})
    text = w.sync({"default/s0"}).text
    assert all(f"flush chain ip kubesvc pick-{n}\n" in text for n in range(1, 33))
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.1")) == {"10.244.1.11:8080"}


def test_per_packet_affinity_hooks_exist_only_while_a_service_has_affinity() -> None:
    from kubesvc.testing.nfttrace import Packet, connect

    hooks = {"affinity-prerouting", "affinity-output"}
    w = World(2)
    w.sync()
    assert not hooks & set(w.fake.table().chains)
    w.services["default/s0"]["spec"]["sessionAffinity"] = "ClientIP"
    w.slices["default/s0"]["endpoints"].append(endpoint("10.244.2.7", "node-2"))
    assert not w.sync({"default/s0"}).full
    assert hooks <= set(w.fake.table().chains)
    first = connect(w.fake, Packet("10.244.1.50", "10.0.1.0"))
    assert all(connect(w.fake, Packet("10.244.1.50", "10.0.1.0")) == first for _ in range(10))
    w.services["default/s0"]["spec"]["sessionAffinity"] = "None"
    w.sync({"default/s0"})
    assert not hooks & set(w.fake.table().chains)
    assert endpoints_of(reach(w.fake, "10.244.1.50", "10.0.1.0")) == {"10.244.1.10:8080", "10.244.2.7:8080"}
