"""Change trackers: real changes are recorded, changes that flip back are dropped."""

from __future__ import annotations

import copy

from proxy_builders import endpoint, endpoint_slice, service

from kubesvc.proxy.changes import EndpointsTracker, ServiceTracker, parse_trigger_time


def test_service_change_that_flips_back_is_dropped() -> None:
    t = ServiceTracker()
    a = service()
    assert t.update(None, a)
    t.take()
    b = copy.deepcopy(a)
    b["spec"]["ports"][0]["port"] = 81
    assert t.update(a, b)
    assert not t.update(b, a)
    assert t.take() == set()


def test_irrelevant_service_changes_are_not_changes() -> None:
    t = ServiceTracker()
    a = service()
    t.update(None, a)
    t.take()
    b = copy.deepcopy(a)
    b["metadata"]["labels"] = {"team": "x"}
    assert not t.update(a, b) and t.take() == set()


def test_skipped_service_counts_as_removed() -> None:
    t = ServiceTracker()
    a = service()
    t.update(None, a)
    t.take()
    b = copy.deepcopy(a)
    b["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "x"}
    assert t.update(a, b) and "default/web" not in t.current


def test_endpoint_changes_carry_trigger_times_and_flip_backs_drop() -> None:
    t = EndpointsTracker()
    s1 = endpoint_slice("web", endpoint("10.244.1.5"), trigger="2024-01-02T03:04:05Z")
    assert t.update(None, s1)
    keys, triggers, _ = t.take()
    assert keys == {"default/web"} and triggers == [parse_trigger_time("2024-01-02T03:04:05Z")]
    s2 = copy.deepcopy(s1)
    s2["endpoints"][0]["conditions"]["ready"] = False
    assert t.update(s1, s2)
    assert not t.update(s2, s1)
    assert t.take()[0] == set()


def test_slice_delete_empties_the_service() -> None:
    t = EndpointsTracker()
    s1 = endpoint_slice("web", endpoint("10.244.1.5"))
    t.update(None, s1)
    t.take()
    assert t.update(s1, None) and "default/web" not in t.current


def test_a_sync_takes_the_resource_versions_of_the_slices_it_programs() -> None:
    """What the proxy reports per transaction (bench_proxy's end-to-end latency): the slice
    versions it carried; a change that flipped back carries nothing."""
    t = EndpointsTracker()
    s1 = endpoint_slice("web", endpoint("10.244.1.5"))
    s1["metadata"]["resourceVersion"] = "7"
    t.update(None, s1)
    assert t.take().versions == {"default/web-abc": "7"}
    s2 = copy.deepcopy(s1)
    s2["endpoints"][0]["conditions"]["ready"] = False
    s2["metadata"]["resourceVersion"] = "9"
    t.update(s1, s2)
    s3 = copy.deepcopy(s2)
    s3["metadata"]["resourceVersion"] = "12"  # a later write of the same slice in the same sync
    t.update(s2, s3)
    assert t.take().versions == {"default/web-abc": "12"}
    s4 = copy.deepcopy(s1)
    s4["metadata"]["resourceVersion"] = "13"
    t.update(s3, s4)
    t.update(s4, s3)  # flips back: nothing to program
    assert t.take() == (set(), [], {})
