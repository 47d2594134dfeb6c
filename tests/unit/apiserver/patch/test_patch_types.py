"""JSON patch, JSON merge patch and strategic merge patch, as kubectl sends them."""

from __future__ import annotations

import copy

import orjson
import pytest

from kubesvc.api.errors import StatusError
from kubesvc.apiserver.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch


def svc(**spec_extra):
    spec = {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
        "type": "ClusterIP",
        "clusterIP": "10.0.0.20",
    }
    spec.update(spec_extra)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-svc", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"a": "1"}},
        "spec": spec,
    }


def pod():
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox"},
            ],
            "tolerations": [{"key": "x", "operator": "Exists"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def deployment():
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]},
            },
        },
    }


def smp(obj, patch):
    return apply_patch(STRATEGIC_MERGE_PATCH, obj, orjson.dumps(patch), kind=obj["kind"],
                       api_version=obj["apiVersion"])


# ---------------------------------------------------------------- JSON patch

JSON_PATCH_CASES = [
    ("replace", [{"op": "replace", "path": "/spec/type", "value": "NodePort"}],
     lambda o: o["spec"]["type"] == "NodePort"),
    ("add label", [{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}],
     lambda o: o["metadata"]["labels"] == {"app": "web", "tier": "fe"}),
    ("remove", [{"op": "remove", "path": "/metadata/annotations/a"}],
     lambda o: o["metadata"]["annotations"] == {}),
    ("append item", [{"op": "add", "path": "/spec/ports/-", "value": {"port": 443}}],
     lambda o: [p["port"] for p in o["spec"]["ports"]] == [80, 443]),
    ("test then replace", [{"op": "test", "path": "/spec/clusterIP", "value": "10.0.0.20"},
                           {"op": "replace", "path": "/spec/clusterIP", "value": "None"}],
     lambda o: o["spec"]["clusterIP"] == "None"),
    ("escaped key", [{"op": "add", "path": "/metadata/annotations/x~1y", "value": "z"}],
     lambda o: o["metadata"]["annotations"]["x/y"] == "z"),
]


@pytest.mark.parametrize("name,ops,check", JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(name, ops, check):
    original = svc()
    before = copy.deepcopy(original)
    out = apply_patch(JSON_PATCH, original, orjson.dumps(ops), kind="Service", api_version="v1")
    assert check(out)
    assert original == before


JSON_PATCH_FAILURES = [
    ("test fails", [{"op": "test", "path": "/spec/type", "value": "NodePort"}], 422,
     "testing value /spec/type failed: test failed"),
    ("remove missing", [{"op": "remove", "path": "/metadata/labels/nope"}], 422,
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value"),
    ("replace missing", [{"op": "replace", "path": "/spec/nope", "value": 1}], 422,
     "replace operation does not apply: doc is missing key: /spec/nope: missing value"),
    ("add under missing", [{"op": "add", "path": "/spec/a/b", "value": 1}], 422,
     'add operation does not apply: doc is missing path: "/spec/a/b": missing value'),
    ("unknown op", [{"op": "frob", "path": "/spec"}], 422, "Unexpected kind: frob"),
]


@pytest.mark.parametrize("name,ops,code,cause", JSON_PATCH_FAILURES, ids=[c[0] for c in JSON_PATCH_FAILURES])
def test_json_patch_failures(name, ops, code, cause):
    with pytest.raises(StatusError) as info:
        apply_patch(JSON_PATCH, svc(), orjson.dumps(ops), kind="Service", api_version="v1")
    err = info.value
    assert err.code == code and err.reason == "Invalid"
    assert err.message == "the server rejected our request due to an error in our request"
    assert err.details["causes"][0]["message"] == cause


@pytest.mark.parametrize("body,message", [
    (b'{"op": "add"}', "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    (b"xyz", "invalid character 'x' looking for beginning of value"),
    (b"", "unexpected end of JSON input"),
])
def test_json_patch_bad_body(body, message):
    with pytest.raises(StatusError) as info:
        apply_patch(JSON_PATCH, svc(), body, kind="Service", api_version="v1")
    assert (info.value.code, info.value.message) == (400, message)


# --------------------------------------------------------------- merge patch

MERGE_CASES = [
    ("label added", {"metadata": {"labels": {"tier": "fe"}}},
     lambda o: o["metadata"]["labels"] == {"app": "web", "tier": "fe"}),
    ("null deletes", {"metadata": {"annotations": {"a": None}}},
     lambda o: o["metadata"]["annotations"] == {}),
    ("list replaced", {"spec": {"ports": [{"port": 443}]}},
     lambda o: o["spec"]["ports"] == [{"port": 443}]),
    ("map replaces scalar", {"spec": {"type": {"x": None, "y": 1}}},
     lambda o: o["spec"]["type"] == {"y": 1}),
]


@pytest.mark.parametrize("name,patch,check", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_patch(name, patch, check):
    original = svc()
    before = copy.deepcopy(original)
    out = apply_patch(MERGE_PATCH, original, orjson.dumps(patch), kind="Service", api_version="v1")
    assert check(out)
    assert original == before


def test_merge_patch_must_be_object():
    with pytest.raises(StatusError) as info:
        apply_patch(MERGE_PATCH, svc(), b"[1]", kind="Service", api_version="v1")
    assert info.value.code == 400


# ---------------------------------------------------- strategic merge patch


def test_kubectl_client_side_apply_patch():
    """The exact shape kubectl apply sends (kubectl-surface.md section 2.7)."""
    live = svc()
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{old}\n"}
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{new}\n"},
                     "labels": {"app": "web2"}},
        "spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 80, "targetPort": 9090}],
                 "selector": {"app": "web2"}},
    }
    out = smp(live, patch)
    assert out["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 9090}]
    assert out["spec"]["selector"] == {"app": "web2"}
    assert out["metadata"]["labels"] == {"app": "web2"}
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{new}\n"}
    assert out["spec"]["clusterIP"] == "10.0.0.20"
    assert not any(k.startswith("$") for k in out["spec"])


def test_set_element_order_reorders_and_keeps_server_only_items():
    live = svc(ports=[{"port": 80, "name": "a"}, {"port": 81, "name": "b"}, {"port": 82, "name": "c"}])
    patch = {"spec": {"$setElementOrder/ports": [{"port": 82}, {"port": 80}, {"port": 90}],
                      "ports": [{"port": 90, "name": "new"}]}}
    out = smp(live, patch)
    # The ordered items follow $setElementOrder; the server-only item (81) is
    # interleaved by its live position: it was before 82, so it stays before it.
    assert [p["port"] for p in out["spec"]["ports"]] == [81, 82, 80, 90]
    assert out["spec"]["ports"][3] == {"port": 90, "name": "new"}


def test_set_element_order_server_only_item_after():
    live = svc(ports=[{"port": 80}, {"port": 81}])
    patch = {"spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 80, "targetPort": 1}]}}
    out = smp(live, patch)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 1}, {"port": 81}]


def test_set_element_order_primitive_list():
    obj = pod()
    out = smp(obj, {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})
    assert out["metadata"]["finalizers"] == ["b", "a"]


def test_set_element_order_adds_item_in_order():
    live = svc()
    patch = {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                      "ports": [{"port": 443, "targetPort": 8443}]}}
    out = smp(live, patch)
    assert [p["port"] for p in out["spec"]["ports"]] == [443, 80]


SMP_CASES = [
    ("null deletes key", svc, {"spec": {"clusterIP": None}},
     lambda o: "clusterIP" not in o["spec"]),
    ("selector map merged", svc, {"spec": {"selector": {"tier": "fe"}}},
     lambda o: o["spec"]["selector"] == {"app": "web", "tier": "fe"}),
    ("$patch replace map", svc, {"spec": {"selector": {"$patch": "replace", "tier": "fe"}}},
     lambda o: o["spec"]["selector"] == {"tier": "fe"}),
    ("$patch delete map", svc, {"metadata": {"labels": {"$patch": "delete"}}},
     lambda o: o["metadata"]["labels"] == {}),
    ("ports merged by port", svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
     lambda o: [p["port"] for p in o["spec"]["ports"]] == [443, 80]
     and o["spec"]["ports"][1]["targetPort"] == 8080),
    ("port field null", svc, {"spec": {"ports": [{"port": 80, "targetPort": None}]}},
     lambda o: o["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]),
    ("$patch delete port", svc, {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}},
     lambda o: o["spec"]["ports"] == []),
    ("$patch replace list", svc, {"spec": {"ports": [{"$patch": "replace"}, {"port": 1}]}},
     lambda o: o["spec"]["ports"] == [{"port": 1}]),
    ("externalIPs atomic", lambda: svc(externalIPs=["1.1.1.1"]), {"spec": {"externalIPs": ["2.2.2.2"]}},
     lambda o: o["spec"]["externalIPs"] == ["2.2.2.2"]),
    ("containers by name", pod, {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
     lambda o: [(c["name"], c["image"]) for c in o["spec"]["containers"]]
     == [("app", "nginx:2"), ("sidecar", "busybox")] and o["spec"]["containers"][0]["ports"]),
    ("container added", pod, {"spec": {"containers": [{"name": "new", "image": "x"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["new", "app", "sidecar"]),
    ("env by name", pod,
     {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]}},
     lambda o: o["spec"]["containers"][0]["env"]
     == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]),
    ("env item deleted", pod,
     {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}},
     lambda o: o["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]),
    ("container ports by containerPort", pod,
     {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443}]}]}},
     lambda o: o["spec"]["containers"][0]["ports"] == [{"containerPort": 443}, {"containerPort": 80}]),
    ("container deleted", pod, {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["app"]),
    ("tolerations replaced", pod, {"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}},
     lambda o: o["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}]),
    ("finalizers are a set", pod, {"metadata": {"finalizers": ["b", "c"]}},
     lambda o: o["metadata"]["finalizers"] == ["a", "b", "c"]),
    ("$deleteFromPrimitiveList", pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
     lambda o: o["metadata"]["finalizers"] == ["b"]),
    ("volumes $retainKeys", pod,
     {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}},
     lambda o: o["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/x"}}]),
    ("deployment template containers", deployment,
     {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}},
     lambda o: o["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx:2"}]),
    ("rollout restart", deployment,
     {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}},
     lambda o: o["spec"]["template"]["metadata"]
     == {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}),
    ("strategy $retainKeys", deployment,
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
     lambda o: o["spec"]["strategy"] == {"type": "Recreate"}),
    ("new list with directives", lambda: {"kind": "Pod", "apiVersion": "v1", "spec": {}},
     {"spec": {"containers": [{"name": "a", "image": "x", "env": None}]}},
     lambda o: o["spec"]["containers"] == [{"name": "a", "image": "x"}]),
]


@pytest.mark.parametrize("name,make,patch,check", SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(name, make, patch, check):
    original = make()
    before = copy.deepcopy(original)
    out = smp(original, patch)
    assert check(out), out
    assert original == before


def test_node_addresses_and_conditions_merge_by_type():
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                                     {"type": "Hostname", "address": "n"}],
                       "conditions": [{"type": "Ready", "status": "False"}]}}
    out = smp(node, {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                                "conditions": [{"type": "Ready", "status": "True"}]}})
    assert out["status"]["addresses"] == [{"type": "InternalIP", "address": "10.0.0.2"},
                                          {"type": "Hostname", "address": "n"}]
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}]


def test_owner_references_merge_by_uid():
    obj = svc()
    obj["metadata"]["ownerReferences"] = [{"uid": "1", "name": "a"}]
    out = smp(obj, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}})
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["2", "1"]


@pytest.mark.parametrize("patch,message", [
    ({"spec": {"ports": [{"targetPort": 1}]}}, "map: map[targetPort:1] does not contain declared merge key: port"),
    ({"spec": {"$patch": "frob"}}, "unknown patch type: frob in map: map[$patch:frob]"),
    ({"spec": {"ports": [{"port": 80, "$patch": "merge"}]}}, "merging lists cannot yet be specified in the patch"),
    ({"spec": {"ports": [{"$patch": "delete"}]}}, "map: map[$patch:delete] does not contain declared merge key: port"),
])
def test_strategic_merge_patch_errors(patch, message):
    with pytest.raises(StatusError) as info:
        smp(svc(), patch)
    assert (info.value.code, info.value.message) == (400, message)


def test_strategic_patch_body_must_be_object():
    with pytest.raises(StatusError) as info:
        apply_patch(STRATEGIC_MERGE_PATCH, svc(), b"[]", kind="Service", api_version="v1")
    assert info.value.message == "json: cannot unmarshal array into Go value of type map[string]interface {}"


def test_unknown_patch_type():
    with pytest.raises(StatusError) as info:
        apply_patch("text/plain", svc(), b"{}", kind="Service", api_version="v1")
    assert info.value.code == 415
