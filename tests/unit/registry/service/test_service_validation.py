"""Every Service validation rule with upstream's exact text (path, value, message).

Each case starts from a valid Service, changes one thing, applies the
registry's create-time defaults (as the server does before validating) and
compares the rendered errors.
"""

from __future__ import annotations

import copy

import pytest

from kubesvc.api.errors import invalid_error
from kubesvc.registry.service.config import ServiceConfig
from kubesvc.registry.service.defaults import default_service, default_service_update
from kubesvc.registry.service.validation import validate_service, validate_service_update
from kubesvc.testing.messages import CIDR, DNS1035, IP, LABEL, LABEL_VALUE, LB_ONLY, QNAME, RANGE, SUBDOMAIN

CFG = ServiceConfig()



def port_key(protocol: str, port: int) -> str:
    return (
        f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def base() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"selector": {"app": "MyApp"}, "ports": [{"port": 80}]},
    }


def make(spec=None, meta=None, drop=(), defaults=True) -> dict:
    svc = base()
    svc["spec"].update(spec or {})
    svc["metadata"].update(meta or {})
    if defaults:
        default_service(svc, CFG)
    for key in drop:
        svc["spec"].pop(key, None)
    return svc


def errors(svc: dict) -> list[str]:
    return [str(e) for e in validate_service(svc)]


TWO = [{"name": "a", "port": 80}, {"name": "b", "port": 81}]

CASES = [
    # --- the seed's manifests and other valid shapes
    ("seed template", dict(spec={"type": "ClusterIP", "clusterIP": "10.0.10.10"}), []),
    ("headless without ports", dict(spec={"clusterIP": "None", "ports": []}), []),
    ("externalName with trailing dot", dict(spec={"type": "ExternalName", "externalName": "foo.example.com.", "ports": []}), []),
    ("same port, two protocols", dict(spec={"ports": [{"name": "t", "port": 80}, {"name": "u", "port": 80, "protocol": "UDP"}]}), []),
    ("PreferClose", dict(spec={"trafficDistribution": "PreferClose"}), []),
    ("publishNotReadyAddresses", dict(spec={"publishNotReadyAddresses": True}), []),
    ("ClientIP 86400", dict(spec={"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86400}}}), []),
    ("appProtocol prefixed", dict(spec={"ports": [{"port": 80, "appProtocol": "kubernetes.io/h2c"}]}), []),
    ("named targetPort", dict(spec={"ports": [{"port": 80, "targetPort": "http"}]}), []),
    ("source ranges padded", dict(spec={"type": "LoadBalancer", "loadBalancerSourceRanges": [" 10.0.0.0/8 "]}), []),
    ("externalIPs on ClusterIP", dict(spec={"externalIPs": ["203.0.113.250"]}), []),
    # --- metadata
    ("name starts with digit", dict(meta={"name": "1kubernetes"}), [f'metadata.name: Invalid value: "1kubernetes": {DNS1035}']),
    ("name upper case", dict(meta={"name": "My-Svc"}), [f'metadata.name: Invalid value: "My-Svc": {DNS1035}']),
    ("name too long", dict(meta={"name": "a" * 64}), [f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters']),
    ("name missing", dict(meta={"name": ""}), ["metadata.name: Required value: name or generateName is required"]),
    ("namespace missing", dict(meta={"namespace": ""}), ["metadata.namespace: Required value"]),
    ("label value", dict(meta={"labels": {"app": "my app"}}), [f'metadata.labels: Invalid value: "my app": {LABEL_VALUE}']),
    (
        "topology annotations disagree",
        dict(meta={"annotations": {"service.kubernetes.io/topology-mode": "Auto", "service.kubernetes.io/topology-aware-hints": "Disabled"}}),
        ['metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified'],
    ),
    # --- ports
    ("ports required", dict(spec={"ports": []}), ["spec.ports: Required value"]),
    ("names required", dict(spec={"ports": [{"port": 80}, {"port": 81}]}), ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ("name not a label", dict(spec={"ports": [{"name": "HTTP", "port": 80}]}), [f'spec.ports[0].name: Invalid value: "HTTP": {LABEL}']),
    ("name with dots", dict(spec={"ports": [{"name": "a.b", "port": 80}]}), ['spec.ports[0].name: Invalid value: "a.b": must not contain dots']),
    ("duplicate names", dict(spec={"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}), ['spec.ports[1].name: Duplicate value: "a"']),
    ("port zero", dict(spec={"ports": [{"port": 0, "targetPort": 80}]}), [f"spec.ports[0].port: Invalid value: 0: {RANGE}"]),
    ("port too big, targetPort defaulted from it", dict(spec={"ports": [{"port": 65536}]}), [f"spec.ports[0].port: Invalid value: 65536: {RANGE}", f"spec.ports[0].targetPort: Invalid value: 65536: {RANGE}"]),
    ("protocol unsupported", dict(spec={"ports": [{"port": 80, "protocol": "HTTP"}]}), ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("targetPort too big", dict(spec={"ports": [{"port": 80, "targetPort": 70000}]}), [f"spec.ports[0].targetPort: Invalid value: 70000: {RANGE}"]),
    ("targetPort upper case", dict(spec={"ports": [{"port": 80, "targetPort": "Http"}]}), ['spec.ports[0].targetPort: Invalid value: "Http": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)']),
    ("targetPort all digits", dict(spec={"ports": [{"port": 80, "targetPort": "8080"}]}), ['spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)']),
    ("targetPort double hyphen", dict(spec={"ports": [{"port": 80, "targetPort": "a--b"}]}), ['spec.ports[0].targetPort: Invalid value: "a--b": must not contain consecutive hyphens']),
    ("targetPort leading hyphen", dict(spec={"ports": [{"port": 80, "targetPort": "-ab"}]}), ['spec.ports[0].targetPort: Invalid value: "-ab": must not begin or end with a hyphen']),
    ("targetPort too long", dict(spec={"ports": [{"port": 80, "targetPort": "abcdefghijklmnop"}]}), ['spec.ports[0].targetPort: Invalid value: "abcdefghijklmnop": must be no more than 15 characters']),
    ("appProtocol", dict(spec={"ports": [{"port": 80, "appProtocol": "a/b/c"}]}), [f'spec.ports[0].appProtocol: Invalid value: "a/b/c": {QNAME}']),
    ("duplicate port+protocol", dict(spec={"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}), [f"spec.ports[1]: Duplicate value: {port_key('TCP', 80)}"]),
    # --- selector and session affinity
    ("selector value", dict(spec={"selector": {"app": "my app"}}), [f'spec.selector: Invalid value: "my app": {LABEL_VALUE}']),
    ("affinity unsupported", dict(spec={"sessionAffinity": "Sticky"}), ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']),
    ("timeout zero", dict(spec={"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}), ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"]),
    ("timeout too long", dict(spec={"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}}), ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"]),
    # --- cluster IPs and families
    ("clusterIPs first must match", dict(spec={"clusterIP": "10.0.10.10", "clusterIPs": ["10.0.10.11"]}), ['spec.clusterIPs: Invalid value: []string{"10.0.10.11"}: first value must match `clusterIP`']),
    ("clusterIP not an IP", dict(spec={"clusterIP": "abc"}), [f'spec.clusterIPs[0]: Invalid value: "abc": {IP}']),
    ("None not alone", dict(spec={"clusterIP": "None", "clusterIPs": ["None", "10.0.0.5"]}), ['spec.clusterIPs: Invalid value: []string{"None", "10.0.0.5"}: \'None\' must be the first and only value']),
    ("two IPv4 clusterIPs", dict(spec={"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5", "10.0.0.6"], "ipFamilyPolicy": "PreferDualStack"}), ['spec.clusterIPs: Invalid value: []string{"10.0.0.5", "10.0.0.6"}: may specify no more than one IP for each IP family']),
    (
        "three clusterIPs",
        dict(spec={"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5", "2001:db8::5", "10.0.0.6"], "ipFamilyPolicy": "PreferDualStack"}),
        [
            'spec.clusterIPs: Invalid value: []string{"10.0.0.5", "2001:db8::5", "10.0.0.6"}: may only hold up to 2 values',
            'spec.clusterIPs: Invalid value: []string{"10.0.0.5", "2001:db8::5", "10.0.0.6"}: may specify no more than one IP for each IP family',
        ],
    ),
    ("family unsupported", dict(spec={"ipFamilies": ["IPv5"]}), ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"']),
    ("family duplicate", dict(spec={"ipFamilies": ["IPv4", "IPv4"], "ipFamilyPolicy": "PreferDualStack"}), ['spec.ipFamilies[1]: Duplicate value: "IPv4"']),
    ("policy unsupported", dict(spec={"ipFamilyPolicy": "Dual"}), ['spec.ipFamilyPolicy: Unsupported value: "Dual": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"']),
    ("IP does not match family", dict(spec={"clusterIP": "2001:db8::1", "ipFamilies": ["IPv4"]}), ['spec.clusterIPs[0]: Invalid value: "2001:db8::1": expected an IPv4 value as indicated by `ipFamilies[0]`']),
    # --- type-specific
    ("NodePort headless", dict(spec={"type": "NodePort", "clusterIP": "None"}), ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]),
    ("LoadBalancer headless", dict(spec={"type": "LoadBalancer", "clusterIP": "None"}), ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"]),
    ("externalName required", dict(spec={"type": "ExternalName", "ports": []}), ["spec.externalName: Required value"]),
    ("externalName not a subdomain", dict(spec={"type": "ExternalName", "externalName": "Foo_bar", "ports": []}), [f'spec.externalName: Invalid value: "Foo_bar": {SUBDOMAIN}']),
    ("ExternalName with clusterIP", dict(spec={"type": "ExternalName", "externalName": "a.b", "clusterIP": "10.0.0.5"}), ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    (
        "ExternalName with families",
        dict(spec={"type": "ExternalName", "externalName": "a.b", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
        ["spec.ipFamilies: Forbidden: may not be set for ExternalName services", "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"],
    ),
    # --- external IPs
    ("externalIP not an IP", dict(spec={"externalIPs": ["abc"]}), [f'spec.externalIPs[0]: Invalid value: "abc": {IP}']),
    ("externalIP loopback", dict(spec={"externalIPs": ["127.0.0.1"]}), ['spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)']),
    ("externalIP unspecified", dict(spec={"externalIPs": ["0.0.0.0"]}), ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)']),
    ("externalIP link-local", dict(spec={"externalIPs": ["169.254.1.1"]}), ['spec.externalIPs[0]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)']),
    ("externalIP link-local multicast", dict(spec={"externalIPs": ["224.0.0.5"]}), ['spec.externalIPs[0]: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)']),
    # --- type and node ports
    ("type unsupported", dict(spec={"type": "Foo"}), ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']),
    ("nodePort on ClusterIP", dict(spec={"ports": [{"port": 80, "nodePort": 30080}]}), ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("duplicate nodePort", dict(spec={"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}]}), ["spec.ports[1].nodePort: Duplicate value: 30080"]),
    ("same nodePort, two protocols", dict(spec={"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 80, "nodePort": 30080, "protocol": "UDP"}]}), []),
    # --- load balancer fields
    ("source ranges on ClusterIP", dict(spec={"loadBalancerSourceRanges": ["10.0.0.0/8"]}), [f"spec.LoadBalancerSourceRanges: Forbidden: {LB_ONLY}"]),
    ("source range not a CIDR", dict(spec={"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]}), [f'spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": {CIDR}']),
    (
        "source range annotation",
        dict(spec={"type": "LoadBalancer"}, meta={"annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, foo"}}),
        [f'metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: "foo": {CIDR}'],
    ),
    (
        "source range annotation on ClusterIP",
        dict(meta={"annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}}),
        [f"metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Forbidden: {LB_ONLY}"],
    ),
    ("allocateLoadBalancerNodePorts on NodePort", dict(spec={"type": "NodePort", "allocateLoadBalancerNodePorts": False}), [f"spec.allocateLoadBalancerNodePorts: Forbidden: {LB_ONLY}"]),
    ("allocateLoadBalancerNodePorts missing", dict(spec={"type": "LoadBalancer"}, drop=["allocateLoadBalancerNodePorts"]), ["allocateLoadBalancerNodePorts: Required value"]),
    ("loadBalancerClass on ClusterIP", dict(spec={"loadBalancerClass": "example.com/lb"}), [f"spec.loadBalancerClass: Forbidden: {LB_ONLY}"]),
    ("loadBalancerClass not qualified", dict(spec={"type": "LoadBalancer", "loadBalancerClass": "a/b/c"}), [f'spec.loadBalancerClass: Invalid value: "a/b/c": {QNAME}']),
    # --- traffic policies
    ("ETP on ClusterIP", dict(spec={"externalTrafficPolicy": "Cluster"}), ['spec.externalTrafficPolicy: Invalid value: "Cluster": may only be set for externally-accessible services']),
    ("ETP unsupported", dict(spec={"type": "NodePort", "externalTrafficPolicy": "Global"}), ['spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", "Local"']),
    ("ETP missing", dict(spec={"type": "NodePort"}, drop=["externalTrafficPolicy"]), ["spec.externalTrafficPolicy: Required value"]),
    ("HC port not needed", dict(spec={"type": "NodePort", "healthCheckNodePort": 30000}), ["spec.healthCheckNodePort: Invalid value: 30000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"]),
    ("HC port required", dict(spec={"type": "LoadBalancer", "externalTrafficPolicy": "Local"}), ["spec.healthCheckNodePort: Required value"]),
    ("HC port range", dict(spec={"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 70000}), [f"spec.healthCheckNodePort: Invalid value: 70000: {RANGE}"]),
    ("ITP unsupported", dict(spec={"internalTrafficPolicy": "Foo"}), ['spec.internalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"']),
    ("ITP missing", dict(drop=["internalTrafficPolicy"]), ["spec.internalTrafficPolicy: Required value"]),
    ("trafficDistribution", dict(spec={"trafficDistribution": "Nearest"}), ['spec.trafficDistribution: Unsupported value: "Nearest": supported values: "PreferClose"']),
]


@pytest.mark.parametrize("case,kw,expected", CASES, ids=[c[0] for c in CASES])
def test_rule(case, kw, expected):
    assert errors(make(**kw)) == expected


# --- rules that only show before defaulting


@pytest.mark.parametrize(
    "spec,expected",
    [
        ({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80, "targetPort": 80}]}, ["spec.ports[0].protocol: Required value"]),
        ({"sessionAffinity": "None", "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}, ["spec.type: Required value"]),
        ({"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}, ["spec.sessionAffinity: Required value"]),
        (
            {"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
            ["spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP"],
        ),
        (
            {"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {}}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
            ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Required value: when session affinity type is ClientIP"],
        ),
        (
            {"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "sessionAffinity": "None", "sessionAffinityConfig": {}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
            ["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"],
        ),
        (
            {"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "sessionAffinity": "None", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
            ['spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: must be empty when `clusterIP` is not specified'],
        ),
    ],
)
def test_rule_without_defaults(spec, expected):
    svc = base()
    svc["spec"] = dict(spec)
    assert errors(svc) == expected


def test_many_errors_keep_upstream_order_in_one_message():
    svc = make(meta={"name": "Bad"}, spec={"type": "Foo", "ports": [{"port": 0, "targetPort": 80, "protocol": "HTTP"}]})
    msg = invalid_error("Service", "Bad", validate_service(svc)).message
    assert msg == (
        f'Service "Bad" is invalid: [metadata.name: Invalid value: "Bad": {DNS1035}, '
        f"spec.ports[0].port: Invalid value: 0: {RANGE}, "
        'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP", '
        'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]'
    )


# --------------------------------------------------------------------------
# update


def stored(spec=None) -> dict:
    svc = make(spec={"clusterIP": "10.0.10.10", **(spec or {})})
    svc["metadata"].update(uid="u1", resourceVersion="1")
    return svc


def update_errors(old: dict, change) -> list[str]:
    new = copy.deepcopy(old)
    change(new)
    default_service_update(new, old, CFG)
    return [str(e) for e in validate_service_update(new, old)]


def test_update_unchanged_is_valid():
    assert update_errors(stored(), lambda s: None) == []


def test_update_clusterip_immutable():
    def change(s):
        s["spec"]["clusterIP"] = "10.0.10.11"

    assert update_errors(stored(), change) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.0.10.11"}: may not change once set'
    ]


def test_update_clusterip_to_headless_rejected():
    def change(s):
        s["spec"]["clusterIP"] = "None"

    assert update_errors(stored(), change) == ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set']


def test_update_reapplying_manifest_without_clusterip_keeps_it():
    old = stored()
    new = base()
    new["metadata"].update(uid="u1", resourceVersion="1")
    default_service_update(new, old, CFG)
    assert validate_service_update(new, old) == []
    assert new["spec"]["clusterIP"] == "10.0.10.10" and new["spec"]["clusterIPs"] == ["10.0.10.10"]


def test_update_to_external_name_allowed():
    def change(s):
        s["spec"].update(type="ExternalName", externalName="foo.example.com")
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            s["spec"].pop(k)

    assert update_errors(stored(), change) == []


def test_update_name_immutable():
    def change(s):
        s["metadata"]["name"] = "other"

    assert update_errors(stored(), change) == ['metadata.name: Invalid value: "other": field is immutable']


def test_update_load_balancer_class_immutable():
    old = stored({"type": "LoadBalancer", "loadBalancerClass": "a.io/x"})

    def change(s):
        s["spec"]["loadBalancerClass"] = "b.io/x"

    assert update_errors(old, change) == ['spec.loadBalancerClass: Invalid value: "b.io/x": may not change once set']


def test_update_load_balancer_class_error_reported_once():
    old = stored({"type": "LoadBalancer", "loadBalancerClass": "a.io/x"})

    def change(s):
        s["spec"]["loadBalancerClass"] = "a/b/c"

    assert update_errors(old, change) == [
        'spec.loadBalancerClass: Invalid value: "a/b/c": may not change once set',
        f'spec.loadBalancerClass: Invalid value: "a/b/c": {QNAME}',
    ]


def test_update_health_check_port_immutable():
    old = stored({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30001})

    def change(s):
        s["spec"]["healthCheckNodePort"] = 30002

    assert update_errors(old, change) == ["spec.healthCheckNodePort: Forbidden: field is immutable"]


def test_update_ip_family_change():
    def change(s):
        s["spec"]["ipFamilies"] = ["IPv6"]

    errs = update_errors(stored(), change)
    assert errs[0] == 'spec.ipFamilies[0]: Invalid value: []core.IPFamily{"IPv6"}: may not change once set'
