"""Server-side apply and managedFields bookkeeping."""

from __future__ import annotations

import copy

import pytest

from kubesvc.api.errors import StatusError
from kubesvc.apiserver.patch import server_side_apply, update_managed_fields
from kubesvc.apiserver.patch.apply import fields_from_json, fields_to_json, path_string

T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"
PORT80 = 'k:{"port":80,"protocol":"TCP"}'


def manifest(**spec):
    base = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ssa-svc", "namespace": "default", "labels": {"app": "web"}},
            "spec": base}


def defaulted(obj):
    """What the registry would add after the patch layer (defaults, identity)."""
    obj = copy.deepcopy(obj)
    obj["metadata"].setdefault("uid", "u-1")
    obj["metadata"].setdefault("resourceVersion", "1")
    obj["metadata"].setdefault("creationTimestamp", T0)
    spec = obj["spec"]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("clusterIP", "10.0.0.20")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports", []):
        p.setdefault("protocol", "TCP")
    obj.setdefault("status", {"loadBalancer": {}})
    return obj


def ssa(live, applied, manager="kubectl", force=False, now=T1):
    return server_side_apply(live, applied, manager=manager, force=force, kind="Service", api_version="v1",
                             now=now)


def entry(obj, manager, operation="Apply"):
    found = [e for e in obj["metadata"].get("managedFields", [])
             if e["manager"] == manager and e["operation"] == operation]
    assert len(found) <= 1
    return found[0] if found else None


def test_create_records_apply_entry():
    out = ssa(None, manifest(), now=T0)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080}]
    assert out["metadata"]["name"] == "ssa-svc"
    assert out["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:ports": {PORT80: {".": {}, "f:port": {}, "f:targetPort": {}}},
                       "f:selector": {}},
        },
    }]


def test_reapply_same_is_unchanged():
    live = defaulted(ssa(None, manifest(), now=T0))
    out = ssa(live, manifest(), now=T1)
    assert out == live
    assert entry(out, "kubectl")["time"] == T0


def test_apply_removing_field_removes_it():
    live = defaulted(ssa(None, manifest(externalName="x.example"), now=T0))
    out = ssa(live, manifest(), now=T1)
    assert "externalName" not in out["spec"]
    assert out["spec"]["clusterIP"] == "10.0.0.20"  # defaulted, owned by nobody: kept
    assert entry(out, "kubectl")["time"] == T1


def test_apply_removing_label_and_port():
    applied = manifest(ports=[{"port": 80}, {"port": 443}])
    applied["metadata"]["labels"]["tier"] = "fe"
    live = defaulted(ssa(None, applied, now=T0))
    out = ssa(live, manifest(ports=[{"port": 443}]), now=T1)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["ports"] == [{"port": 443, "protocol": "TCP"}]
    fields = entry(out, "kubectl")["fieldsV1"]
    assert list(fields["f:spec"]["f:ports"]) == ['k:{"port":443,"protocol":"TCP"}']


def test_apply_changes_value_and_merges_ports_by_port_and_protocol():
    live = defaulted(ssa(None, manifest(), now=T0))
    out = ssa(live, manifest(ports=[{"port": 80, "targetPort": 9090}, {"port": 53, "protocol": "UDP"}]), now=T1)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"},
                                    {"port": 53, "protocol": "UDP"}]


def client_side_created():
    """A Service created by `kubectl apply` (client side): manager kubectl-client-side-apply, Update."""
    obj = defaulted(manifest())
    update_managed_fields(None, obj, manager="kubectl-client-side-apply", operation="Update",
                          api_version="v1", now=T0)
    return obj


def test_update_records_changed_fields():
    obj = client_side_created()
    (e,) = obj["metadata"]["managedFields"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["time"]) == (
        "kubectl-client-side-apply", "Update", "v1", T0)
    assert e["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:clusterIP": {},
            "f:ports": {".": {}, PORT80: {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
            "f:selector": {},
            "f:sessionAffinity": {},
            "f:type": {},
        },
    }  # status.loadBalancer is a value struct, always present: nothing recorded for it


def test_conflict_with_other_manager():
    live = client_side_created()
    with pytest.raises(StatusError) as info:
        ssa(live, manifest(selector={"app": "web2"}))
    err = info.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                           "using v1: .spec.selector")
    assert err.details["causes"] == [{"reason": "FieldManagerConflict",
                                      "message": 'conflict with "kubectl-client-side-apply" using v1',
                                      "field": ".spec.selector"}]


def test_several_conflicts_message():
    live = client_side_created()
    with pytest.raises(StatusError) as info:
        ssa(live, manifest(selector={"app": "web2"}, ports=[{"port": 80, "targetPort": 1}]))
    assert info.value.message == (
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using v1:\n"
        "- .spec.ports[port=80,protocol=\"TCP\"].targetPort\n- .spec.selector")


def test_same_value_is_shared_not_a_conflict():
    live = client_side_created()
    out = ssa(live, manifest())
    assert "f:selector" in entry(out, "kubectl")["fieldsV1"]["f:spec"]
    assert "f:selector" in entry(out, "kubectl-client-side-apply", "Update")["fieldsV1"]["f:spec"]


def test_force_moves_ownership():
    live = client_side_created()
    out = ssa(live, manifest(selector={"app": "web2"}), force=True)
    assert out["spec"]["selector"] == {"app": "web2"}
    assert "f:selector" in entry(out, "kubectl")["fieldsV1"]["f:spec"]
    other = entry(out, "kubectl-client-side-apply", "Update")["fieldsV1"]["f:spec"]
    assert "f:selector" not in other and "f:type" in other
    # The other manager still owns targetPort, so dropping it from the apply keeps it.
    out = defaulted(out)
    again = ssa(out, manifest(selector={"app": "web2"}, ports=[{"port": 80}]), now=T2)
    assert again["spec"]["ports"][0]["targetPort"] == 8080


def test_field_owned_by_other_manager_survives_drop():
    live = defaulted(ssa(None, manifest(), now=T0))
    update = copy.deepcopy(live)
    update["metadata"]["labels"]["app"] = "web"  # unchanged
    update["metadata"]["annotations"] = {"note": "x"}
    update_managed_fields(live, update, manager="kubectl-edit", operation="Update", api_version="v1", now=T1)
    assert entry(update, "kubectl-edit", "Update")["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}}}
    # kubectl's apply never owned the annotation: it stays when kubectl re-applies without it.
    out = ssa(update, manifest(), now=T2)
    assert out["metadata"]["annotations"] == {"note": "x"}


def test_update_takes_fields_from_other_managers():
    live = defaulted(ssa(None, manifest(), now=T0))
    edited = copy.deepcopy(live)
    edited["spec"]["selector"] = {"app": "other"}
    update_managed_fields(live, edited, manager="kubectl-edit", operation="Update", api_version="v1", now=T1)
    assert "f:selector" not in entry(edited, "kubectl")["fieldsV1"]["f:spec"]
    assert entry(edited, "kubectl-edit", "Update")["fieldsV1"] == {"f:spec": {"f:selector": {}}}
    # Entries are sorted: Apply before Update.
    assert [e["operation"] for e in edited["metadata"]["managedFields"]] == ["Apply", "Update"]


def test_update_without_change_keeps_entries():
    live = client_side_created()
    same = copy.deepcopy(live)
    update_managed_fields(live, same, manager="kubectl-edit", operation="Update", api_version="v1", now=T1)
    assert same == live


def test_update_removal_drops_field_from_all_managers():
    live = client_side_created()
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]
    update_managed_fields(live, new, manager="kubectl-edit", operation="Update", api_version="v1", now=T1)
    e = entry(new, "kubectl-client-side-apply", "Update")
    assert "f:metadata" not in e["fieldsV1"]
    assert entry(new, "kubectl-edit", "Update") is None


def test_managed_fields_reset():
    live = client_side_created()
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    new["spec"]["selector"] = {"app": "x"}
    update_managed_fields(live, new, manager="m", operation="Update", api_version="v1", now=T1)
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["m"]


@pytest.mark.parametrize("applied,message", [
    ({**manifest(), "apiVersion": "v2"},
     "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"),
    ({**manifest(), "metadata": {"name": "x", "managedFields": [{"manager": "a"}]}},
     "metadata.managedFields must be nil"),
    (manifest(ports=[{"targetPort": 1}]),
     "failed to create typed patch object (default/ssa-svc; /v1, Kind=Service): .spec.ports: element 0: "
     'associative list with keys has an element that omits key field "port" (and doesn\'t have default value)'),
    (manifest(ports=[{"port": 1}, {"port": 1, "protocol": "TCP"}]),
     "failed to create typed patch object (default/ssa-svc; /v1, Kind=Service): .spec.ports: "
     'duplicate entries for key [port=1,protocol="TCP"]'),
])
def test_bad_applied_config(applied, message):
    with pytest.raises(StatusError) as info:
        ssa(None, applied)
    assert (info.value.code, info.value.message) == (400, message)


def test_live_without_managed_fields_is_owned_before_first_apply():
    live = defaulted(manifest())
    with pytest.raises(StatusError) as info:
        ssa(live, manifest(selector={"app": "x"}))
    assert 'conflict with "before-first-apply" using v1: .spec.selector' in info.value.message


def test_deployment_containers_by_name():
    def dep(image, extra=None):
        containers = [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]
        if extra:
            containers.append(extra)
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": containers}}}}

    kw = {"manager": "kubectl", "force": False, "kind": "Deployment", "api_version": "apps/v1"}
    first = server_side_apply(None, dep("nginx:1", {"name": "side", "image": "b"}), now=T0, **kw)
    f = first["metadata"]["managedFields"][0]["fieldsV1"]
    containers = f["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers) == {'k:{"name":"nginx"}', 'k:{"name":"side"}'}
    assert containers['k:{"name":"nginx"}']["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert f["f:spec"]["f:selector"] == {}
    second = server_side_apply(first, dep("nginx:2"), now=T1, **kw)
    assert second["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:2", "ports": [{"containerPort": 80}]}]


def test_fields_v1_round_trip_and_path_text():
    raw = {"f:metadata": {"f:finalizers": {'v:"a"': {}}},
           "f:spec": {"f:ports": {".": {}, PORT80: {".": {}, "f:port": {}}}, "f:x": {"i:0": {}}}}
    paths = fields_from_json(raw)
    assert fields_to_json(paths) == raw
    assert sorted(path_string(p) for p in paths) == [
        '.metadata.finalizers[="a"]', ".spec.ports", '.spec.ports[port=80,protocol="TCP"]',
        '.spec.ports[port=80,protocol="TCP"].port', ".spec.x[0]"]
