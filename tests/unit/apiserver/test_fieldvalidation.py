"""Unknown-field detection against the OpenAPI schemas (fieldValidation)."""

from __future__ import annotations

import pytest

from kubesvc.api.errors import StatusError
from kubesvc.api.resources import by_plural
from kubesvc.apiserver.fieldvalidation import check, warning_header

SVC = by_plural("", "v1", "services")
DEPLOY = by_plural("apps", "v1", "deployments")


def _svc(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"any": "thing"}},
            "spec": {"ports": [{"port": 80}], **spec}}


def test_known_fields_pass() -> None:
    assert check(SVC, _svc(selector={"app": "x"}, type="ClusterIP"), "Strict") == []


def test_strict_reports_every_unknown_field_with_its_path() -> None:
    obj = _svc(prots=1)
    obj["spec"]["ports"][0]["bogus"] = True
    with pytest.raises(StatusError) as e:
        check(SVC, obj, "Strict")
    assert e.value.code == 400
    assert e.value.message == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.ports[0].bogus", unknown field "spec.prots"'
    ) or e.value.message == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.prots", unknown field "spec.ports[0].bogus"'
    )


def test_warn_returns_warnings_and_ignore_nothing() -> None:
    assert check(SVC, _svc(prots=1), "Warn") == ['unknown field "spec.prots"']
    assert check(SVC, _svc(prots=1), None) == ['unknown field "spec.prots"']
    assert check(SVC, _svc(prots=1), "Ignore") == []
    assert warning_header(['unknown field "x"']) == '299 - "unknown field \\"x\\""'


def test_maps_and_nested_templates() -> None:
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "annotations": {"a": "b"}},
         "spec": {"selector": {"matchLabels": {"app": "d"}},
                  "template": {"metadata": {"labels": {"app": "d"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx", "imagee": "x"}]}}}}
    assert check(DEPLOY, d, "Warn") == ['unknown field "spec.template.spec.containers[0].imagee"']


def test_patch_only_counts_new_unknown_fields() -> None:
    old = _svc(prots=1)
    new = _svc(prots=1, selector={"a": "b"})
    assert check(SVC, new, "Strict", old=old) == []


def test_bad_mode_is_a_bad_request() -> None:
    with pytest.raises(StatusError):
        check(SVC, _svc(), "Loud")


@pytest.mark.parametrize(("spec", "message"), [
    ({"publishNotReadyAddresses": "yes"},
     "json: cannot unmarshal string into Go struct field ServiceSpec.spec.publishNotReadyAddresses of type bool"),
    ({"ports": [{"port": "80"}]},
     "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"),
    ({"ports": "x"},
     "json: cannot unmarshal string into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort"),
])
def test_wrong_json_types_are_rejected_in_any_mode(spec: dict, message: str) -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}
    for mode in ("Strict", "Warn", "Ignore"):
        with pytest.raises(StatusError) as e:
            check(SVC, obj, mode)
        assert e.value.code == 400
        assert e.value.message == f'Service in version "v1" cannot be handled as a Service: {message}'


def test_int_or_string_and_quantities_take_both() -> None:
    assert check(SVC, _svc(ports=[{"port": 80, "targetPort": "http"}]), "Strict") == []
    assert check(SVC, _svc(ports=[{"port": 80, "targetPort": 8080}]), "Strict") == []
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"selector": {"matchLabels": {"app": "d"}}, "replicas": 2,
                  "template": {"metadata": {"labels": {"app": "d"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx",
                                                        "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}}}
    assert check(DEPLOY, d, "Strict") == []
