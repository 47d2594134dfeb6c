"""Selectors: grammar, matching, canonical text and upstream's error wording."""

from __future__ import annotations

import pytest

from kubesvc.api.errors import StatusError
from kubesvc.api.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    check_field_selector,
    escape_field_value,
    from_label_selector_dict,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
)

QNAME_RE = "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'"
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    f"alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is {QNAME_RE})"
)

# --------------------------------------------------------------------------
# label selectors: parse -> canonical string

PARSE_OK = [
    ("", ""),
    ("x=a", "x=a"),
    ("x==a", "x==a"),
    ("x!=a", "x!=a"),
    ("x in (b,a)", "x in (a,b)"),
    ("x notin (a)", "x notin (a)"),
    ("x", "x"),
    ("!x", "!x"),
    ("x>1", "x>1"),
    ("x<10", "x<10"),
    ("  x  =  a  ,  y  ", "x=a,y"),
    ("\tx\n in\r(a , b)", "x in (a,b)"),
    ("z=1,a=2", "a=2,z=1"),  # sorted by key
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("x in (a,)", "x in (,a)"),
    ("x in (,a)", "x in (,a)"),
    ("x in (a,a)", "x in (a)"),  # a set
    ("x=", "x="),
    ("x=,y=a", "x=,y=a"),
    ("in in (in)", "in in (in)"),  # keywords become identifiers where a value is expected
    ("notin notin (notin,in)", "notin notin (in,notin)"),
    ("example.com/app-name.x_y=v.1-2_3", "example.com/app-name.x_y=v.1-2_3"),
    ("x,!y,z in (a)", "x,!y,z in (a)"),
]


@pytest.mark.parametrize(("text", "canonical"), PARSE_OK)
def test_label_parse_ok(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    # The canonical form parses back to the same selector.
    assert str(parse_label_selector(str(sel))) == canonical


PARSE_ERR = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ("a(b)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("x=a b", "found 'b', expected: ',' or 'end of string'"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("==a", "found '==', expected: !, identifier, or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a,,b", "found ',', expected: identifier after ','"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("!!a", "unable to parse requirement: found '!', expected: identifier"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    ("x=(", "unable to parse requirement: found '(', expected: identifier"),
    (
        "x>a",
        'unable to parse requirement: values[0]: Invalid value: "a": '
        "for 'Gt', 'Lt' operators, the value must be an integer",
    ),
    ("app:monolith", f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {NAME_PART}'),
    ("*bar=x", f'unable to parse requirement: <nil>: Invalid value: "*bar": {NAME_PART}'),
    (
        "a/b/c=d",
        'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        f"(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is {QNAME_RE}) "
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ),
    (
        "Example.com/x",
        'unable to parse requirement: <nil>: Invalid value: "Example.com/x": prefix part a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ),
    ("/x", 'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty'),
    (
        "a" * 64,
        f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": name part must be no more than 63 characters',
    ),
    (
        "a=b_",
        'unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must be an empty string '
        "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ),
    (
        "a=" + "v" * 64,
        f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": must be no more than 63 characters',
    ),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERR)
def test_label_parse_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as ei:
        parse_label_selector(text)
    err = ei.value
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == message
    assert err.status()["message"] == message


# --------------------------------------------------------------------------
# label selectors: matching

LABELS = {"app": "web", "tier": "front", "n": "5", "empty": ""}

MATCHES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),  # != matches an absent key
    ("app in (db,web)", True),
    ("app in (db)", False),
    ("missing in (x)", False),
    ("app notin (db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),  # notin matches an absent key
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("empty=", True),
    ("empty in ()", True),
    ("missing=", False),  # = requires the key
    ("n>4", True),
    ("n>5", False),
    ("n<6", True),
    ("app>1", False),  # not an integer: no match
    ("missing<1", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("app,!missing,tier in (front,back),n>1", True),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_label_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_label_matches_none_labels_is_empty_set() -> None:
    assert parse_label_selector("!a").matches(None)
    assert parse_label_selector("a notin (x)").matches(None)
    assert not parse_label_selector("a").matches(None)
    assert LabelSelector.everything().matches(None)


def test_requires_exact_match() -> None:
    sel = parse_label_selector("a=1,b in (2),c in (3,4),d!=5")
    assert sel.requires_exact_match("a") == "1"
    assert sel.requires_exact_match("b") == "2"
    assert sel.requires_exact_match("c") is None
    assert sel.requires_exact_match("d") is None
    assert sel.requires_exact_match("zz") is None


# --------------------------------------------------------------------------
# nil vs empty


def test_everything_and_nothing() -> None:
    every, nothing = LabelSelector.everything(), LabelSelector.nothing()
    assert every.empty and every.matches({"a": "b"}) and every.matches({})
    assert not nothing.empty and not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert str(every) == "" and str(nothing) == ""
    assert parse_label_selector("") == every
    assert nothing.add(Requirement("a", "exists")) == nothing


@pytest.mark.parametrize(
    ("d", "labels", "expected"),
    [
        (None, {}, False),  # nil selector: nothing
        (None, {"a": "b"}, False),
        ({}, {}, True),  # empty selector: everything
        ({}, {"a": "b"}, True),
        ({"matchLabels": {}, "matchExpressions": []}, {"x": "y"}, True),
        ({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"}, True),
        ({"matchLabels": {"a": "b"}}, {"a": "c"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}, {"a": "y"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        (
            {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]},
            {"a": "b"},
            True,
        ),
    ],
)
def test_from_label_selector_dict(d: dict | None, labels: dict[str, str], expected: bool) -> None:
    assert from_label_selector_dict(d).matches(labels) is expected


def test_from_label_selector_dict_string_and_errors() -> None:
    sel = from_label_selector_dict(
        {
            "matchLabels": {"z": "1"},
            "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}],
        }
    )
    assert str(sel) == "a in (x,y),z=1"
    with pytest.raises(StatusError, match=r'^"Gt" is not a valid label selector operator$'):
        from_label_selector_dict({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(StatusError) as ei:
        from_label_selector_dict({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert (
        ei.value.message
        == "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    )
    with pytest.raises(StatusError) as ei:
        from_label_selector_dict({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
    assert ei.value.message == (
        'values: Invalid value: ["x"]: values set must be empty for exists and does not exist'
    )
    with pytest.raises(StatusError) as ei:
        from_label_selector_dict({"matchLabels": {"a b": "c d"}})
    assert ei.value.message.startswith('[key: Invalid value: "a b": name part must consist')
    assert 'values[0][a b]: Invalid value: "c d": a valid label must' in ei.value.message


def test_selector_from_set() -> None:
    assert selector_from_set(None) == LabelSelector.everything()
    assert selector_from_set({}) == LabelSelector.everything()
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert not sel.matches({"a": "1"})


# --------------------------------------------------------------------------
# field selectors

FIELD_OK = [
    ("", ()),
    ("a=b", (("a", "=", "b"),)),
    ("a==b", (("a", "=", "b"),)),
    ("a!=b", (("a", "!=", "b"),)),
    ("b=1,a!=2", (("a", "!=", "2"), ("b", "=", "1"))),  # sorted as upstream
    ("x=", (("x", "=", ""),)),
    (",,a=b,", (("a", "=", "b"),)),
    ("a=b\\,c", (("a", "=", "b,c"),)),
    ("a=b\\=c\\\\", (("a", "=", "b=c\\"),)),
    (
        "spec.nodeName=node-1,status.phase!=Running",
        (("spec.nodeName", "=", "node-1"), ("status.phase", "!=", "Running")),
    ),
]


@pytest.mark.parametrize(("text", "reqs"), FIELD_OK)
def test_field_parse_ok(text: str, reqs: tuple) -> None:
    sel = parse_field_selector(text)
    assert sel.requirements == reqs
    assert parse_field_selector(str(sel)) == sel


FIELD_ERR = [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize(("text", "message"), FIELD_ERR)
def test_field_parse_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as ei:
        parse_field_selector(text)
    assert (ei.value.code, ei.value.message) == (400, message)


def test_field_matches_and_escape() -> None:
    fields = {"metadata.name": "a", "status.phase": "Running", "spec.nodeName": ""}
    assert parse_field_selector("metadata.name=a").matches(fields)
    assert not parse_field_selector("metadata.name!=a").matches(fields)
    assert parse_field_selector("spec.nodeName=").matches(fields)
    assert parse_field_selector("missing=").matches(fields)  # absent reads as ""
    assert parse_field_selector("status.phase!=Pending,metadata.name==a").matches(fields)
    assert FieldSelector.everything().matches({}) and FieldSelector.everything().empty
    assert parse_field_selector("spec.nodeName=n1").requires_exact_match("spec.nodeName") == "n1"
    assert parse_field_selector("spec.nodeName!=n1").requires_exact_match("spec.nodeName") is None
    assert escape_field_value("a,b=c\\") == "a\\,b\\=c\\\\"


def test_object_fields() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}]},
    }
    got = object_fields(
        pod, ("spec.nodeName", "status.phase", "spec.hostNetwork", "status.podIP", "spec.restartPolicy")
    )
    assert got == {
        "metadata.name": "p",
        "metadata.namespace": "ns",
        "spec.nodeName": "n1",
        "status.phase": "Running",
        "spec.hostNetwork": "false",
        "status.podIP": "10.244.0.5",
        "spec.restartPolicy": "",
    }
    node = {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}
    assert object_fields(node, ("spec.unschedulable",)) == {
        "metadata.name": "n",
        "metadata.namespace": "",
        "spec.unschedulable": "true",
    }
    event = {
        "metadata": {"name": "e", "namespace": "d"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "source": {"component": "kubelet", "host": "n1"},
        "type": "Normal",
        "count": 3,
    }
    got = object_fields(event, ("involvedObject.kind", "source", "type", "reason", "count"))
    assert got["involvedObject.kind"] == "Pod"
    assert got["source"] == "kubelet"
    assert got["type"] == "Normal" and got["reason"] == "" and got["count"] == "3"
    svc = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1"},
    }
    assert parse_field_selector("spec.type=ClusterIP,metadata.namespace=d").matches(
        object_fields(svc, ("spec.type", "spec.clusterIP"))
    )


def test_check_field_selector() -> None:
    ok = parse_field_selector("metadata.name=a,metadata.namespace=b,spec.type=ClusterIP")
    check_field_selector(ok, ("spec.type", "spec.clusterIP"), "services")
    with pytest.raises(StatusError) as ei:
        check_field_selector(parse_field_selector("spec.selector=x,zz=1"), ("spec.type",), "services")
    assert (ei.value.code, ei.value.message) == (400, "field label not supported: spec.selector")
    with pytest.raises(StatusError) as ei:
        check_field_selector(parse_field_selector("foo.bar=baz"), (), "configmaps")
    assert (
        ei.value.message
        == '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    with pytest.raises(StatusError, match="^field label not supported: foo$"):
        check_field_selector(parse_field_selector("foo=1"), (), "secrets")
