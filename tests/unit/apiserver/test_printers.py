"""Server-side printing: the exact cells kubectl will show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubesvc.api.resources import RESOURCES, by_plural
from kubesvc.apiserver.printers import columns, human_duration, row, to_table

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", age: float = 30, **extra: object) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), **extra}


M, H, D, Y = 60, 3600, 86400, 365 * 86400


@pytest.mark.parametrize("seconds,want", [
    (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (0.9, "0s"), (45, "45s"), (119, "119s"),
    (120, "2m"), (150, "2m30s"), (9 * M + 59, "9m59s"), (10 * M, "10m"), (179 * M, "179m"),
    (3 * H, "3h"), (3 * H + 20 * M, "3h20m"), (7 * H + 59 * M, "7h59m"), (8 * H, "8h"), (47 * H, "47h"),
    (2 * D, "2d"), (2 * D + 3 * H, "2d3h"), (7 * D + 23 * H, "7d23h"), (8 * D, "8d"), (45 * D, "45d"),
    (729 * D, "729d"), (2 * Y, "2y"), (2 * Y + 30 * D, "2y30d"), (8 * Y, "8y"), (20 * Y + 5 * D, "20y"),
])
def test_human_duration(seconds: float, want: str) -> None:
    assert human_duration(seconds) == want


def svc(spec: dict, status: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": spec,
            "status": status or {}}


@pytest.mark.parametrize("obj,want", [
    (svc({"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
          "ports": [{"port": 443, "protocol": "TCP"}]}),
     ["web", "ClusterIP", "10.0.0.1", "<none>", "443/TCP", "30s", "<none>"]),
    (svc({"type": "NodePort", "clusterIPs": ["10.0.0.7"], "selector": {"b": "2", "app": "web"},
          "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
     ["web", "NodePort", "10.0.0.7", "<none>", "80:30080/TCP,53/UDP", "30s", "app=web,b=2"]),
    (svc({"type": "ClusterIP", "clusterIPs": ["None"], "ports": []}),
     ["web", "ClusterIP", "None", "<none>", "<none>", "30s", "<none>"]),
    (svc({"type": "ExternalName", "externalName": "db.example.com"}),
     ["web", "ExternalName", "<none>", "db.example.com", "<none>", "30s", "<none>"]),
    (svc({"type": "LoadBalancer", "clusterIPs": ["10.0.0.9"], "ports": [{"port": 80, "protocol": "TCP",
                                                                        "nodePort": 31000}]}),
     ["web", "LoadBalancer", "10.0.0.9", "<pending>", "80:31000/TCP", "30s", "<none>"]),
    (svc({"type": "LoadBalancer", "clusterIPs": ["10.0.0.9"], "externalIPs": ["1.2.3.4"]},
         {"loadBalancer": {"ingress": [{"ip": "172.18.255.201"}, {"hostname": "lb.example"},
                                       {"ip": "172.18.255.200"}]}}),
     ["web", "LoadBalancer", "10.0.0.9", "172.18.255.200,172.18.255.201,lb.example,1.2.3.4", "<none>",
      "30s", "<none>"]),
    (svc({"type": "ClusterIP", "clusterIPs": ["10.0.0.2"], "externalIPs": ["5.6.7.8", "1.1.1.1"]}),
     ["web", "ClusterIP", "10.0.0.2", "5.6.7.8,1.1.1.1", "<none>", "30s", "<none>"]),
])
def test_service_rows(obj: dict, want: list) -> None:
    assert row(obj, NOW) == want


def cstatus(name: str = "c", *, ready: bool = True, restarts: int = 0, state: dict | None = None,
            last_finished: float | None = None) -> dict:
    st: dict = {"name": name, "ready": ready, "restartCount": restarts,
                "state": state if state is not None else {"running": {"startedAt": ts(10)}}}
    if last_finished is not None:
        st["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ts(last_finished)}}
    return st


def pod(containers: int = 1, statuses: list | None = None, phase: str = "Running", *, init: list | None = None,
        init_statuses: list | None = None, conditions: list | None = None, deleting: bool = False,
        reason: str | None = None, spec_extra: dict | None = None, status_extra: dict | None = None) -> dict:
    m = meta("web-1", 300)
    if deleting:
        m["deletionTimestamp"] = ts(1)
    status: dict = {"phase": phase, "containerStatuses": statuses or [], "conditions": conditions or []}
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if reason:
        status["reason"] = reason
    status.update(status_extra or {})
    spec: dict = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    spec.update(spec_extra or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec, "status": status}


@pytest.mark.parametrize("obj,ready,status,restarts", [
    (pod(1, [cstatus()]), "1/1", "Running", "0"),
    (pod(2, [cstatus("a"), cstatus("b", ready=False)]), "1/2", "Running", "0"),
    (pod(1, [], phase="Pending"), "0/1", "Pending", "0"),
    (pod(1, [cstatus(ready=False, restarts=3, last_finished=300,
                     state={"waiting": {"reason": "CrashLoopBackOff"}})]), "0/1", "CrashLoopBackOff",
     "3 (5m ago)"),
    (pod(1, [cstatus(ready=False, state={"waiting": {"reason": "ContainerCreating"}})], phase="Pending"),
     "0/1", "ContainerCreating", "0"),
    (pod(1, [cstatus(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
         phase="Succeeded"), "0/1", "Completed", "0"),
    (pod(1, [cstatus(ready=False, state={"terminated": {"exitCode": 2}})], phase="Failed"),
     "0/1", "ExitCode:2", "0"),
    (pod(1, [cstatus(ready=False, state={"terminated": {"exitCode": 0, "signal": 9}})], phase="Failed"),
     "0/1", "Signal:9", "0"),
    (pod(1, [cstatus()], deleting=True), "1/1", "Terminating", "0"),
    (pod(1, [cstatus(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
         phase="Succeeded", deleting=True), "0/1", "Completed", "0"),
    (pod(1, [cstatus()], deleting=True, reason="NodeLost"), "1/1", "Unknown", "0"),
    (pod(1, [], phase="Pending", reason="Evicted"), "0/1", "Evicted", "0"),
    (pod(1, [], phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                              "reason": "SchedulingGated"}]), "0/1", "SchedulingGated", "0"),
    # init containers
    (pod(1, [cstatus(ready=False, state={"waiting": {"reason": "PodInitializing"}})], phase="Pending",
         init=[{"name": "i"}], init_statuses=[cstatus("i", ready=False,
                                                       state={"waiting": {"reason": "PodInitializing"}})]),
     "0/1", "Init:0/1", "0"),
    (pod(1, [], phase="Pending", init=[{"name": "i"}, {"name": "j"}],
         init_statuses=[cstatus("i", state={"terminated": {"exitCode": 0}}),
                        cstatus("j", ready=False, state={"running": {}})]),
     "0/1", "Init:1/2", "0"),
    (pod(1, [], phase="Pending", init=[{"name": "i"}],
         init_statuses=[cstatus("i", ready=False, restarts=2, last_finished=60,
                                state={"waiting": {"reason": "CrashLoopBackOff"}})]),
     "0/1", "Init:CrashLoopBackOff", "2 (60s ago)"),
    (pod(1, [], phase="Pending", init=[{"name": "i"}],
         init_statuses=[cstatus("i", ready=False, state={"terminated": {"exitCode": 3}})]),
     "0/1", "Init:ExitCode:3", "0"),
    (pod(1, [], phase="Pending", init=[{"name": "i"}],
         init_statuses=[cstatus("i", ready=False, state={"terminated": {"exitCode": 1, "reason": "Error"}})]),
     "0/1", "Init:Error", "0"),
    # a sidecar (restartable init container) counts towards READY
    (pod(1, [cstatus()], init=[{"name": "side", "restartPolicy": "Always"}],
         init_statuses=[{**cstatus("side"), "started": True}]), "2/2", "Running", "0"),
    # Completed with a container still running: NotReady unless the pod is Ready
    (pod(2, [cstatus("a"), cstatus("b", ready=False,
                                   state={"terminated": {"exitCode": 0, "reason": "Completed"}})]),
     "1/2", "NotReady", "0"),
    (pod(2, [cstatus("a"), cstatus("b", ready=False,
                                   state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
         conditions=[{"type": "Ready", "status": "True"}]), "1/2", "Running", "0"),
])
def test_pod_status(obj: dict, ready: str, status: str, restarts: str) -> None:
    cells = row(obj, NOW)
    assert cells[1:4] == [ready, status, restarts]
    assert cells[4] == "5m"


def test_pod_wide_cells() -> None:
    p = pod(1, [cstatus()], spec_extra={"nodeName": "node-1", "readinessGates": [
        {"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]},
        status_extra={"podIPs": [{"ip": "10.244.1.5"}], "podIP": "10.244.1.5"},
        conditions=[{"type": "example.com/a", "status": "True"}, {"type": "example.com/b", "status": "False"}])
    assert row(p, NOW)[5:] == ["10.244.1.5", "node-1", "<none>", "1/2"]
    assert row(pod(1, []), NOW)[5:] == ["<none>", "<none>", "<none>", "<none>"]


def deployment(replicas: int | None = 3) -> dict:
    spec: dict = {"selector": {"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                    {"key": "canary", "operator": "DoesNotExist"}]},
                  "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                       {"name": "side", "image": "busybox"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", 3 * H), "spec": spec,
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2, "replicas": 3}}


def test_deployment_and_replicaset_rows() -> None:
    assert row(deployment(), NOW) == [
        "web", "2/3", 3, 2, "3h", "nginx,side", "nginx:1.27,busybox", "app=web,!canary,tier in (a,b)"]
    assert row(deployment(None), NOW)[1] == "2/1"
    rs = {**deployment(), "apiVersion": "apps/v1", "kind": "ReplicaSet"}
    assert row(rs, NOW) == [
        "web", 3, 3, 2, "3h", "nginx,side", "nginx:1.27,busybox", "app=web,!canary,tier in (a,b)"]
    rs["spec"] = {**rs["spec"], "selector": {}}
    assert row(rs, NOW)[-1] == "<none>"


def endpoints(subsets: list) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("web"), "subsets": subsets}


@pytest.mark.parametrize("subsets,want", [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "ports": [{"port": 80}]}],
     "10.244.1.5:80,10.244.2.7:80"),
    ([{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "ports": [{"port": 80}, {"port": 443}]}],
     "10.244.1.5:80,10.244.2.7:80,10.244.1.5:443 + 1 more..."),
    ([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(3)], "ports": [{"port": 80}]}],
     "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80"),
    ([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}], "10.0.0.1,fd00::1"),
    ([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80"),
    ([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], ""),
])
def test_endpoints_rows(subsets: list, want: str) -> None:
    assert row(endpoints(subsets), NOW) == ["web", want, "30s"]


@pytest.mark.parametrize("ports,eps,want_ports,want_eps", [
    ([], [], "<unset>", "<unset>"),
    ([{"port": 80, "name": "http"}, {"name": "dns"}, {}], [{"addresses": ["10.0.0.1"]},
                                                          {"addresses": ["10.0.0.2"], "conditions": {}}],
     "80,dns,*", "10.0.0.1,10.0.0.2"),
    ([{"port": p} for p in range(1, 6)], [{"addresses": [f"10.0.0.{i}"]} for i in range(5)],
     "1,2,3 + 2 more...", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."),
])
def test_endpointslice_rows(ports: list, eps: list, want_ports: str, want_eps: str) -> None:
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("web-abc"),
          "addressType": "IPv4", "ports": ports, "endpoints": eps}
    assert row(es, NOW) == ["web-abc", "IPv4", want_ports, want_eps, "30s"]


def node(ready: str | None = "True", unschedulable: bool = False, labels: dict | None = None) -> dict:
    conds = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conds.append({"type": "Ready", "status": ready})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "creationTimestamp": ts(2 * D),
                                                             "labels": labels or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conds, "addresses": [{"type": "Hostname", "address": "node-1"},
                                                          {"type": "InternalIP", "address": "172.18.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian", "kernelVersion": "6.1"}}}


@pytest.mark.parametrize("obj,status,roles", [
    (node(), "Ready", "<none>"),
    (node("False"), "NotReady", "<none>"),
    (node("Unknown"), "NotReady", "<none>"),
    (node(None), "Unknown", "<none>"),
    (node(unschedulable=True), "Ready,SchedulingDisabled", "<none>"),
    (node(labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x",
                  "kubernetes.io/role": "worker"}), "Ready", "control-plane,worker"),
])
def test_node_rows(obj: dict, status: str, roles: str) -> None:
    assert row(obj, NOW) == ["node-1", status, roles, "2d", "v1.32.0", "172.18.0.2", "<none>", "Debian", "6.1",
                             "<unknown>"]


def test_simple_kinds() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("default", 45 * D),
          "status": {"phase": "Active"}}
    assert row(ns, NOW) == ["default", "Active", "45d"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
          "binaryData": {"c": "AA=="}}
    assert row(cm, NOW) == ["cfg", 3, "30s"]
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")}
    assert row(sa, NOW) == ["default", 0, "30s"]
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta("node-1"),
             "spec": {"holderIdentity": "node-1"}}
    assert row(lease, NOW) == ["node-1", "node-1", "30s"]
    assert row({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta("l")}, NOW)[1] == ""
    other = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta("w", 2 * Y)}
    assert row(other, NOW) == ["w", "2y"]
    assert row({"metadata": {"name": "n"}}, NOW) == ["n", "<unknown>"]


def test_event_rows() -> None:
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": meta("my-svc.17a"),
          "involvedObject": {"kind": "Service", "name": "my-svc", "namespace": "default"},
          "reason": "EnsuringLoadBalancer", "message": "Ensuring load balancer\n", "type": "Normal",
          "source": {"component": "service-controller"}, "firstTimestamp": ts(90), "lastTimestamp": ts(2),
          "count": 4}
    assert row(ev, NOW) == ["2s", "Normal", "EnsuringLoadBalancer", "service/my-svc", "",
                            "service-controller", "Ensuring load balancer", "90s", 4, "my-svc.17a"]
    new_style = {"apiVersion": "v1", "kind": "Event", "metadata": meta("e"), "type": "Warning",
                 "involvedObject": {"kind": "Node", "fieldPath": "spec"}, "eventTime": "2025-01-10T11:59:00.000000Z",
                 "reportingComponent": "kubelet", "reportingInstance": "node-1"}
    assert row(new_style, NOW) == ["60s", "Warning", "", "node", "spec", "kubelet, node-1", "", "60s", 1, "e"]
    series = {**new_style, "series": {"count": 7, "lastObservedTime": "2025-01-10T11:59:50.000000Z"}}
    assert row(series, NOW)[0] == "10s" and row(series, NOW)[8] == 7


def test_columns_match_rows_for_every_resource() -> None:
    for res in RESOURCES:
        cols = columns(res.plural, res.group)
        assert cols[0]["name"] in ("Name", "Last Seen")
        assert any(c["format"] == "name" for c in cols)
        for c in cols:
            assert set(c) == {"name", "type", "format", "description", "priority"}
        cells = row({"apiVersion": res.api_version, "kind": res.kind, "metadata": meta("a")}, NOW)
        assert len(cells) == len(cols), res.plural


def test_column_names() -> None:
    def names(plural: str, group: str = "") -> list:
        return [(c["name"], c["priority"]) for c in columns(plural, group)]
    assert names("services") == [("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0),
                                 ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    assert [n for n, p in names("pods") if p == 1] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [n for n, p in names("events") if p == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert [n for n, _ in names("serviceaccounts")] == ["Name", "Secrets", "Age"]
    assert [n for n, _ in names("widgets", "example.com")] == ["Name", "Age"]


def test_to_table_shapes() -> None:
    objs = [svc({"type": "ClusterIP", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 443, "protocol": "TCP"}]})]
    objs[0]["metadata"]["labels"] = {"component": "apiserver"}
    t = to_table(by_plural("", "v1", "services"), objs, now=NOW, resource_version="105")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "105"}
    assert len(t["columnDefinitions"]) == 7
    assert t["rows"][0]["cells"][:5] == ["web", "ClusterIP", "10.0.0.1", "<none>", "443/TCP"]
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": objs[0]["metadata"]}
    full = to_table("services", objs, now=NOW, include_object="Object", resource_version="1",
                    continue_token="abc")
    assert full["rows"][0]["object"] is objs[0] and full["metadata"]["continue"] == "abc"
    bare = to_table(("", "services"), objs, now=NOW, include_object="None", with_columns=False)
    assert bare["rows"][0]["object"] is None and bare["columnDefinitions"] is None
    dep = to_table("deployments.apps", [deployment()], now=NOW, resource_version="1")
    assert dep["rows"][0]["cells"][1] == "2/3"
    done = to_table("pods", [pod(1, [], phase="Succeeded")], now=NOW)
    assert done["rows"][0]["conditions"][0]["reason"] == "Succeeded"
    assert to_table("pods", [], now=NOW)["rows"] == []
