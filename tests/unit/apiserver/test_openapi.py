"""OpenAPI v3 documents: what kubectl validation, explain and apply rely on."""

from __future__ import annotations

import orjson
import pytest

from kubesvc.api.resources import RESOURCES, group_versions
from kubesvc.apiserver.openapi import (
    document_hash,
    gv_path,
    lookup,
    openapi_v3_document,
    openapi_v3_document_bytes,
    openapi_v3_index,
)
from kubesvc.apiserver.openapi.dsl import REF_PREFIX
from kubesvc.apiserver.openapi.paths import schema_name

GVS = group_versions()


def _prefix(group: str, version: str) -> str:
    return "/" + gv_path(group, version)


def _item_path(res) -> str:
    p = _prefix(res.group, res.version)
    if res.namespaced:
        return f"{p}/namespaces/{{namespace}}/{res.plural}/{{name}}"
    return f"{p}/{res.plural}/{{name}}"


def _walk_refs(node, out: list[str]) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            out.append(node["$ref"])
        for v in node.values():
            _walk_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk_refs(v, out)


def test_index_lists_every_group_version_with_its_hash() -> None:
    idx = openapi_v3_index()
    assert set(idx["paths"]) == {gv_path(g, v) for g, v in GVS}
    assert "api/v1" in idx["paths"] and "apis/apps/v1" in idx["paths"]
    for g, v in GVS:
        url = idx["paths"][gv_path(g, v)]["serverRelativeURL"]
        assert url == f"/openapi/v3/{gv_path(g, v)}?hash={document_hash(g, v)}"
        assert lookup(url.split("?")[0]) == (g, v)
    assert lookup("apis/nope/v1") is None


def test_documents_are_cached_and_stable() -> None:
    assert openapi_v3_document("", "v1") is openapi_v3_document("", "v1")
    body = openapi_v3_document_bytes("apps", "v1")
    assert orjson.loads(body) == openapi_v3_document("apps", "v1")
    assert document_hash("apps", "v1") != document_hash("", "v1")
    with pytest.raises(KeyError):
        openapi_v3_document("nope", "v1")


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.qualified)
def test_item_patch_has_field_validation_and_gvk(res) -> None:
    doc = openapi_v3_document(res.group, res.version)
    patch = doc["paths"][_item_path(res)]["patch"]
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    assert patch["x-kubernetes-group-version-kind"] == {"group": res.group, "version": res.version,
                                                        "kind": res.kind}
    assert patch["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.qualified)
def test_every_resource_has_collection_item_and_subresource_paths(res) -> None:
    paths = openapi_v3_document(res.group, res.version)["paths"]
    item = _item_path(res)
    coll = item.rsplit("/", 1)[0]
    assert set(paths[coll]) >= {"get", "post", "delete", "parameters"}
    assert set(paths[item]) >= {"get", "put", "patch", "delete"}
    for method in ("post", "put", "patch"):
        op = paths[coll if method == "post" else item][method]
        assert {"fieldValidation", "dryRun", "fieldManager"} <= {p["name"] for p in op["parameters"]}
    if res.namespaced:
        assert paths[f"{_prefix(res.group, res.version)}/{res.plural}"]["get"]["operationId"].endswith(
            "ForAllNamespaces")
    for sub in ("status", "scale"):
        if sub in res.subresources:
            ops = paths[f"{item}/{sub}"]
            assert set(ops) >= {"get", "put", "patch"}
            assert "fieldValidation" in {p["name"] for p in ops["patch"]["parameters"]}
    if "scale" in res.subresources:
        assert paths[f"{item}/scale"]["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"


@pytest.mark.parametrize("gv", GVS, ids=lambda gv: gv_path(*gv))
def test_every_ref_resolves(gv) -> None:
    doc = openapi_v3_document(*gv)
    refs: list[str] = []
    _walk_refs(doc, refs)
    schemas = doc["components"]["schemas"]
    assert refs
    for r in refs:
        assert r.startswith(REF_PREFIX)
        assert r[len(REF_PREFIX):] in schemas, r


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.qualified)
def test_top_level_kinds_carry_their_gvk(res) -> None:
    schemas = openapi_v3_document(res.group, res.version)["components"]["schemas"]
    for kind in (res.kind, res.kind + "List"):
        s = schemas[schema_name(res.group, res.version, kind)]
        assert {"group": res.group, "version": res.version, "kind": kind} in s["x-kubernetes-group-version-kind"]
        assert s["description"]
        assert {"apiVersion", "kind", "metadata"} <= set(s["properties"])


def test_all_schemas_well_formed() -> None:
    for g, v in GVS:
        for name, s in openapi_v3_document(g, v)["components"]["schemas"].items():
            assert s.get("description"), name
            assert "type" in s, name
            for field, prop in (s.get("properties") or {}).items():
                assert "type" in prop or "allOf" in prop, (name, field)
            for req in s.get("required") or []:
                assert req in s["properties"], (name, req)


def test_scale_is_in_the_apps_document() -> None:
    schemas = openapi_v3_document("apps", "v1")["components"]["schemas"]
    scale = schemas["io.k8s.api.autoscaling.v1.Scale"]
    assert scale["x-kubernetes-group-version-kind"] == [{"group": "autoscaling", "version": "v1", "kind": "Scale"}]
    assert "io.k8s.api.autoscaling.v1.ScaleSpec" in schemas


def test_service_schema_details() -> None:
    schemas = openapi_v3_document("", "v1")["components"]["schemas"]
    spec = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]
    ports = spec["ports"]
    assert ports["items"]["allOf"] == [{"$ref": REF_PREFIX + "io.k8s.api.core.v1.ServicePort"}]
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["x-kubernetes-patch-strategy"] == "merge"
    assert spec["selector"]["additionalProperties"]["type"] == "string"
    assert schemas["io.k8s.api.core.v1.ServicePort"]["required"] == ["port"]
    assert schemas["io.k8s.api.core.v1.Service"]["properties"]["spec"]["allOf"][0]["$ref"].endswith(
        ".ServiceSpec")
    port = schemas["io.k8s.api.core.v1.ServicePort"]["properties"]
    assert port["targetPort"]["allOf"][0]["$ref"].endswith("intstr.IntOrString")


def test_pod_and_meta_schema_details() -> None:
    schemas = openapi_v3_document("", "v1")["components"]["schemas"]
    podspec = schemas["io.k8s.api.core.v1.PodSpec"]
    assert podspec["required"] == ["containers"]
    assert podspec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert podspec["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    container = schemas["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    assert container["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["properties"]["env"]["x-kubernetes-list-map-keys"] == ["name"]
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"
    assert meta["finalizers"]["x-kubernetes-list-type"] == "set"
    for name in ("ListMeta", "Time", "LabelSelector", "OwnerReference", "ManagedFieldsEntry", "Condition"):
        assert f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}" in schemas, name
    assert "io.k8s.apimachinery.pkg.api.resource.Quantity" in schemas
    apps = openapi_v3_document("apps", "v1")["components"]["schemas"]
    assert apps["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == ["selector", "template"]
    assert "io.k8s.api.core.v1.PodSpec" in apps
