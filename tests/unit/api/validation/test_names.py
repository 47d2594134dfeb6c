"""Upstream's validation strings, word for word (they are what kubectl prints)."""

from __future__ import annotations

import pytest

from kubesvc.api.errors import invalid_error
from kubesvc.api.validation import names
from kubesvc.api.validation.meta import (
    name_is_dns1035_label,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesvc.testing.messages import DNS1035, LABEL, SUBDOMAIN

QNAME_PART = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    "fn,value,expected",
    [
        (names.is_dns1123_label, "my-name", []),
        (names.is_dns1123_label, "123-abc", []),
        (names.is_dns1123_label, "My_Name", [LABEL]),
        (names.is_dns1123_label, "a.b", ["must not contain dots"]),
        (names.is_dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
        (names.is_dns1123_label, "-" * 64, ["must be no more than 63 characters", LABEL]),
        (names.is_dns1123_subdomain, "example.com", []),
        (names.is_dns1123_subdomain, "Example.com", [SUBDOMAIN]),
        (names.is_dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
        (names.is_dns1035_label, "my-name", []),
        (names.is_dns1035_label, "1kubernetes", [DNS1035]),
        (names.is_dns1035_label, "ends-", [DNS1035]),
        (names.is_qualified_name, "app", []),
        (names.is_qualified_name, "example.com/MyName", []),
        (names.is_qualified_name, "bad key", ["name part " + QNAME_PART]),
        (names.is_qualified_name, "/name", ["prefix part must be non-empty"]),
        (names.is_qualified_name, "Bad_Prefix/name", ["prefix part " + SUBDOMAIN]),
        (names.is_qualified_name, "example.com/", ["name part must be non-empty", "name part " + QNAME_PART]),
        (names.is_qualified_name, "x" * 64, ["name part must be no more than 63 characters"]),
        (
            names.is_qualified_name,
            "a/b/c",
            ["a qualified name " + QNAME_PART + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"],
        ),
        (names.is_valid_label_value, "", []),
        (names.is_valid_label_value, "MyApp", []),
        (names.is_valid_label_value, "my app", [LABEL_VALUE]),
        (names.is_valid_label_value, "a" * 64, ["must be no more than 63 characters"]),
        (names.is_valid_port_num, 0, ["must be between 1 and 65535, inclusive"]),
        (names.is_valid_port_num, 65535, []),
        (names.is_iana_svc_name, "http", []),
        (names.is_iana_svc_name, "Http", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
        (names.is_iana_svc_name, "8080", ["must contain at least one letter (a-z)"]),
        (names.is_iana_svc_name, "a--b", ["must not contain consecutive hyphens"]),
        (names.is_iana_svc_name, "-ab", ["must not begin or end with a hyphen"]),
        (names.is_iana_svc_name, "abcdefghijklmnop", ["must be no more than 15 characters"]),
        (names.is_valid_ip, "10.0.0.1", []),
        (names.is_valid_ip, "010.000.000.001", []),  # Go's sloppy parser takes leading zeros
        (names.is_valid_ip, "2001:db8::1", []),
        (names.is_valid_ip, "fe80::1%eth0", ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
        (names.is_valid_ip, "10.0.0", ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
        (names.is_valid_cidr, "10.0.0.1/8", []),
        (names.is_valid_cidr, "10.0.0.0/33", ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
        (names.is_valid_cidr, "10.0.0.0", ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
    ],
)
def test_string_checks(fn, value, expected):
    assert fn(value) == expected


def test_ip_family_treats_mapped_ipv4_as_ipv4():
    assert names.ip_family("::ffff:10.0.0.1") == "IPv4"
    assert names.ip_family("2001:db8::1") == "IPv6"
    assert names.ip_family("nope") is None


@pytest.mark.parametrize(
    "ip,detail",
    [
        ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
        ("::", "may not be unspecified (::)"),
        ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        ("169.254.1.1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("224.0.0.5", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
        ("ff02::1", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ],
)
def test_non_special_ip(ip, detail):
    errs = names.validate_non_special_ip(ip, "spec.externalIPs[0]")
    assert [str(e) for e in errs] == [f'spec.externalIPs[0]: Invalid value: "{ip}": {detail}']


def test_non_special_ip_accepts_ordinary_addresses():
    assert names.validate_non_special_ip("203.0.113.250", "x") == []


# --------------------------------------------------------------------------
# ObjectMeta


def _meta(**kw):
    base = {"name": "svc", "namespace": "default"}
    base.update(kw)
    return base


def _strs(errs):
    return [str(e) for e in errs]


def test_object_meta_valid():
    assert validate_object_meta(_meta(labels={"app": "x"}), True, name_is_dns1035_label) == []


def test_object_meta_name_required():
    assert _strs(validate_object_meta({"namespace": "default"}, True, name_is_dns1035_label)) == [
        "metadata.name: Required value: name or generateName is required"
    ]


def test_object_meta_bad_name_and_generate_name():
    errs = validate_object_meta(_meta(name="1x", generateName="2x-"), True, name_is_dns1035_label)
    assert _strs(errs) == [
        f'metadata.generateName: Invalid value: "2x-": {DNS1035}',
        f'metadata.name: Invalid value: "1x": {DNS1035}',
    ]


def test_generate_name_may_end_with_dash():
    assert validate_object_meta(_meta(name="web-abcde", generateName="web-"), True, name_is_dns1035_label) == []


def test_namespace_required_and_forbidden():
    assert _strs(validate_object_meta({"name": "a"}, True, name_is_dns_subdomain)) == [
        "metadata.namespace: Required value"
    ]
    assert _strs(validate_object_meta({"name": "a", "namespace": "x"}, False, name_is_dns_subdomain)) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]


def test_labels_and_annotations():
    errs = validate_object_meta(
        _meta(labels={"bad key": "my app"}, annotations={"a/b/c": "v"}), True, name_is_dns1035_label
    )
    assert _strs(errs) == [
        f'metadata.labels: Invalid value: "bad key": name part {QNAME_PART}',
        f'metadata.labels: Invalid value: "my app": {LABEL_VALUE}',
        'metadata.annotations: Invalid value: "a/b/c": a qualified name '
        + QNAME_PART
        + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ]


def test_annotation_keys_are_case_insensitive_and_size_limited():
    assert validate_object_meta(_meta(annotations={"Example.COM/Key": "v"}), True, name_is_dns1035_label) == []
    errs = validate_object_meta(_meta(annotations={"big": "x" * (256 * 1024)}), True, name_is_dns1035_label)
    assert _strs(errs) == ["metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_finalizers_and_owner_references():
    errs = validate_object_meta(
        _meta(finalizers=["a/b/c"], ownerReferences=[{"apiVersion": "", "kind": "Pod", "name": "p", "uid": "u"}]),
        True,
        name_is_dns1035_label,
    )
    strs = _strs(errs)
    assert strs[0] == 'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty'
    assert strs[1].startswith('metadata.finalizers: Invalid value: "a/b/c": a qualified name')


def test_meta_update_immutable_fields():
    old = _meta(uid="u1", creationTimestamp="2024-01-02T03:04:05Z")
    new = _meta(name="other", uid="u2", creationTimestamp="2024-01-02T03:04:06Z")
    assert _strs(validate_object_meta_update(new, old)) == [
        'metadata.name: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
        "metadata.creationTimestamp: Invalid value: 2024-01-02 03:04:06 +0000 UTC: field is immutable",
    ]


def test_meta_update_resource_version_opt_in():
    assert validate_object_meta_update(_meta(), _meta()) == []
    assert _strs(validate_object_meta_update(_meta(), _meta(), check_resource_version=True)) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update'
    ]


def test_aggregate_message_shape():
    errs = validate_object_meta(_meta(name="1x", labels={"a": "b c"}), True, name_is_dns1035_label)
    msg = invalid_error("Service", "1x", errs).message
    assert msg.startswith('Service "1x" is invalid: [metadata.name: Invalid value: "1x": a DNS-1035 label')
    assert msg.endswith("]")
