"""Every Service validation rule of issue 3, applied as a manifest with the real kubectl.

Each case is a manifest (YAML, as a user pastes it) fed to ``kubectl apply -f -``
or ``kubectl create -f -``; the test compares kubectl's whole error output with
what kubectl prints against upstream's API server: ``The Service "<name>" is
invalid: <field path>: <type>: <value>: <message>`` (one cause on the line, or
``\\n* `` before each of several).  Upstream's messages come from
pkg/apis/core/validation and the service registry's allocators (see
/work/shared/upstream/service-behaviour.md §1.2, §1.3, §1.5, §1.6).

Rules upstream's defaulting makes unreachable through the API (a missing
``type``, ``protocol``, ``sessionAffinity``, ``internalTrafficPolicy``,
``externalTrafficPolicy``, ``allocateLoadBalancerNodePorts``; a
``sessionAffinityConfig`` with ``None``, which the defaulter drops) are shown
as accepted-and-defaulted here, and their messages are covered by
tests/unit/registry/service/test_service_validation.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from kubesvc.testing.cluster import Cluster
from kubesvc.testing.messages import CIDR, DNS1035, IP, LABEL, LABEL_VALUE, LB_ONLY, QNAME, RANGE, SUBDOMAIN

pytestmark = pytest.mark.e2e

TIMEOUT = "must be greater than 0 and less than 86400"
HC_ONLY = "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
NOT_IN_RANGE = "the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.0.0.0/16"
PORT_NOT_IN_RANGE = "provided port is not in the valid range. The range of valid ports is 30000-32767"


def port_key(protocol: str, port: int, name: str = "") -> str:
    """How upstream prints a duplicate ServicePort (Go's %#v of the internal type)."""
    return (
        f'core.ServicePort{{Name:"{name}", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


@dataclass
class Case:
    id: str
    spec: dict[str, Any]
    errors: list[str]
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: manifests (spec dicts, keyed by Service name) applied first; the case's Service may be one of them (update)
    before: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a check on the stored object when the case is accepted
    stored: dict[str, Any] = field(default_factory=dict)
    verb: str = "apply"
    #: kubectl's whole error output, for failures that are not a 422 Invalid
    raw: str = ""


def manifest(name: str, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, **(meta or {})}, "spec": spec}
    return yaml.safe_dump(doc, sort_keys=False)


def svc(**spec: Any) -> dict[str, Any]:
    """A ClusterIP Service with the seed's selector and one port, changed by ``spec``."""
    base: dict[str, Any] = {"selector": {"app": "MyApp"}, "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]}
    base.update(spec)
    return base


def lb(**spec: Any) -> dict[str, Any]:
    return svc(type="LoadBalancer", **spec)


def np_(**spec: Any) -> dict[str, Any]:
    return svc(type="NodePort", **spec)


P = [{"port": 80}]
EN = {"type": "ExternalName", "externalName": "db.example.com"}

CASES: list[Case] = [
    # --- metadata.name: DNS-1035 label
    Case("name starts with a digit", svc(), [f'metadata.name: Invalid value: "1kubernetes": {DNS1035}'], name="1kubernetes"),
    Case("name upper case", svc(), [f'metadata.name: Invalid value: "My-Svc": {DNS1035}'], name="My-Svc"),
    Case("name with a dot", svc(), [f'metadata.name: Invalid value: "my.svc": {DNS1035}'], name="my.svc", verb="create"),
    Case("name too long", svc(), [f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters'], name="a" * 64),
    Case("label value", svc(), [f'metadata.labels: Invalid value: "my app": {LABEL_VALUE}'], meta={"labels": {"app": "my app"}}),
    Case(
        "topology annotations disagree", svc(),
        ['metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match '
         "annotations[service.kubernetes.io/topology-aware-hints] when both are specified"],
        meta={"annotations": {"service.kubernetes.io/topology-mode": "Auto", "service.kubernetes.io/topology-aware-hints": "Disabled"}},
    ),
    # --- ports: required unless headless or ExternalName
    Case("ports required", svc(ports=[]), ["spec.ports: Required value"]),
    Case("ports omitted", {"selector": {"app": "MyApp"}}, ["spec.ports: Required value"], verb="create"),
    Case("headless needs no ports", {"clusterIP": "None", "selector": {"app": "MyApp"}}, [], stored={"clusterIP": "None"}),
    Case("ExternalName needs no ports", dict(EN), [], stored={"type": "ExternalName"}),
    # --- port names: required and unique when more than one, DNS-1123 labels
    Case("names required when two ports", svc(ports=[{"port": 80}, {"port": 443}]),
         ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    Case("name not a label", svc(ports=[{"name": "HTTP", "port": 80}]), [f'spec.ports[0].name: Invalid value: "HTTP": {LABEL}']),
    Case("name with dots", svc(ports=[{"name": "a.b", "port": 80}]), ['spec.ports[0].name: Invalid value: "a.b": must not contain dots'], verb="create"),
    Case("duplicate names", svc(ports=[{"name": "web", "port": 80}, {"name": "web", "port": 81}]), ['spec.ports[1].name: Duplicate value: "web"']),
    # --- port numbers 1-65535, protocols, duplicate port+protocol
    Case("port zero", svc(ports=[{"port": 0, "targetPort": 80}]), [f"spec.ports[0].port: Invalid value: 0: {RANGE}"]),
    Case("port too big (targetPort defaults to it)", svc(ports=[{"port": 65536}]),
         [f"spec.ports[0].port: Invalid value: 65536: {RANGE}", f"spec.ports[0].targetPort: Invalid value: 65536: {RANGE}"], verb="create"),
    Case("protocol unsupported", svc(ports=[{"port": 80, "protocol": "HTTP"}]),
         ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    Case("protocol lower case", svc(ports=[{"port": 53, "protocol": "udp"}]),
         ['spec.ports[0].protocol: Unsupported value: "udp": supported values: "SCTP", "TCP", "UDP"']),
    Case("SCTP accepted", svc(ports=[{"port": 80, "protocol": "SCTP"}]), [], stored={"ports": [{"port": 80, "protocol": "SCTP", "targetPort": 80}]}),
    Case("duplicate port+protocol", svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
         [f"spec.ports[1]: Duplicate value: {port_key('TCP', 80)}"]),
    Case("same port, TCP and UDP", svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}]), []),
    # --- targetPort: a number or an IANA service name
    Case("targetPort too big", svc(ports=[{"port": 80, "targetPort": 70000}]), [f"spec.ports[0].targetPort: Invalid value: 70000: {RANGE}"]),
    Case("targetPort upper case", svc(ports=[{"port": 80, "targetPort": "Http"}]),
         ['spec.ports[0].targetPort: Invalid value: "Http": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)']),
    Case("targetPort digits as a string", svc(ports=[{"port": 80, "targetPort": "8080"}]),
         ['spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)'], verb="create"),
    Case("targetPort double hyphen", svc(ports=[{"port": 80, "targetPort": "a--b"}]),
         ['spec.ports[0].targetPort: Invalid value: "a--b": must not contain consecutive hyphens']),
    Case("targetPort leading hyphen", svc(ports=[{"port": 80, "targetPort": "-ab"}]),
         ['spec.ports[0].targetPort: Invalid value: "-ab": must not begin or end with a hyphen']),
    Case("targetPort longer than 15", svc(ports=[{"port": 80, "targetPort": "abcdefghijklmnop"}]),
         ['spec.ports[0].targetPort: Invalid value: "abcdefghijklmnop": must be no more than 15 characters']),
    Case("targetPort name accepted", svc(ports=[{"port": 80, "targetPort": "http-alt"}]), [],
         stored={"ports": [{"port": 80, "protocol": "TCP", "targetPort": "http-alt"}]}),
    # --- appProtocol: a qualified name
    Case("appProtocol not qualified", svc(ports=[{"port": 80, "appProtocol": "a/b/c"}]),
         [f'spec.ports[0].appProtocol: Invalid value: "a/b/c": {QNAME}']),
    Case("appProtocol prefixed accepted", svc(ports=[{"port": 80, "appProtocol": "kubernetes.io/h2c"}]), []),
    # --- nodePort: NodePort/LoadBalancer only, unique, in range
    Case("nodePort on ClusterIP", svc(ports=[{"port": 80, "nodePort": 30080}]),
         ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    # upstream allocates before it validates, so on create the second request of a
    # nodePort fails in the allocator (alloc.go initNodePorts), not as Duplicate
    Case("duplicate nodePort", np_(ports=[{"name": "a", "port": 80, "nodePort": 30180}, {"name": "b", "port": 81, "nodePort": 30180}]),
         ["spec.ports[1].nodePort: Invalid value: 30180: provided port is already allocated"]),
    Case("same nodePort for TCP and UDP of one port", np_(ports=[{"name": "a", "port": 53, "nodePort": 30182},
                                                          {"name": "b", "port": 53, "protocol": "UDP", "nodePort": 30182}]), []),
    Case("nodePort out of range", np_(ports=[{"port": 80, "nodePort": 40000}]),
         [f"spec.ports[0].nodePort: Invalid value: 40000: {PORT_NOT_IN_RANGE}"]),
    Case("nodePort already allocated", np_(ports=[{"port": 80, "nodePort": 30181}]),
         ["spec.ports[0].nodePort: Invalid value: 30181: provided port is already allocated"],
         before={"holds-30181": np_(ports=[{"port": 80, "nodePort": 30181}])}, verb="create"),
    # --- clusterIP / clusterIPs
    Case("clusterIP not an IP", svc(clusterIP="abc"), [f'spec.clusterIPs[0]: Invalid value: "abc": {IP}']),
    Case("clusterIP out of range", svc(clusterIP="10.1.0.5"),
         ['spec.clusterIPs: Invalid value: []string{"10.1.0.5"}: failed to allocate IP 10.1.0.5: ' + NOT_IN_RANGE.format(ip="10.1.0.5")]),
    Case("clusterIP network address", svc(clusterIP="10.0.0.0"),
         ['spec.clusterIPs: Invalid value: []string{"10.0.0.0"}: failed to allocate IP 10.0.0.0: ' + NOT_IN_RANGE.format(ip="10.0.0.0")]),
    Case("clusterIP already allocated", svc(clusterIP="10.0.10.20"),
         ['spec.clusterIPs: Invalid value: []string{"10.0.10.20"}: failed to allocate IP 10.0.10.20: provided IP is already allocated'],
         before={"holds-10-0-10-20": svc(clusterIP="10.0.10.20")}),
    Case("'None' not alone", svc(clusterIP="None", clusterIPs=["None", "10.0.0.5"]),
         ['spec.clusterIPs: Invalid value: []string{"None", "10.0.0.5"}: \'None\' must be the first and only value']),
    Case("first clusterIPs must match clusterIP", svc(clusterIP="10.0.10.10", clusterIPs=["10.0.10.11"]),
         ['spec.clusterIPs: Invalid value: []string{"10.0.10.11"}: first value must match `clusterIP`']),
    Case("clusterIPs without clusterIP", svc(clusterIPs=["10.0.10.12"]),
         ['spec.clusterIPs: Invalid value: []string{"10.0.10.12"}: must be empty when `clusterIP` is not specified'], verb="create"),
    Case("two IPv4 clusterIPs", svc(clusterIP="10.0.0.5", clusterIPs=["10.0.0.5", "10.0.0.6"], ipFamilyPolicy="PreferDualStack"),
         ['spec.clusterIPs: Invalid value: []string{"10.0.0.5", "10.0.0.6"}: may specify no more than one IP for each IP family']),
    Case("IPv6 clusterIP on a single-stack cluster", svc(clusterIP="2001:db8::1"),
         ['spec.clusterIPs[0]: Invalid value: []string{"2001:db8::1"}: IPv6 is not configured on this cluster']),
    Case("clusterIP does not match ipFamilies", svc(clusterIP="2001:db8::1", ipFamilies=["IPv4"]),
         ['spec.clusterIPs[0]: Invalid value: "2001:db8::1": expected an IPv4 value as indicated by `ipFamilies[0]`']),
    Case("ipFamilies unsupported", svc(ipFamilies=["IPv5"]), ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"']),
    Case("ipFamilyPolicy unsupported", svc(ipFamilyPolicy="Dual"),
         ['spec.ipFamilyPolicy: Unsupported value: "Dual": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"']),
    Case("RequireDualStack on a single-stack cluster", svc(ipFamilyPolicy="RequireDualStack"),
         ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services']),
    Case("NodePort may not be headless", np_(clusterIP="None"),
         ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]),
    Case("LoadBalancer may not be headless", lb(clusterIP="None"),
         ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"], verb="create"),
    # --- clusterIP immutable on update, except across ExternalName
    Case("clusterIP immutable", svc(clusterIP="10.0.10.31"),
         ['spec.clusterIPs[0]: Invalid value: []string{"10.0.10.31"}: may not change once set'],
         name="upd-ip", before={"upd-ip": svc(clusterIP="10.0.10.30")}),
    Case("ClusterIP to headless rejected", svc(clusterIP="None"),
         ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set'],
         name="upd-headless", before={"upd-headless": svc()}),
    Case("ClusterIP to ExternalName releases the IP", dict(EN), [], name="upd-to-en",
         before={"upd-to-en": svc(clusterIP="10.0.10.32")}, stored={"type": "ExternalName", "clusterIP": None}),
    Case("ExternalName to ClusterIP with a chosen IP", svc(clusterIP="10.0.10.33"), [], name="upd-from-en",
         before={"upd-from-en": dict(EN)}, stored={"clusterIP": "10.0.10.33", "clusterIPs": ["10.0.10.33"]}),
    # --- externalName
    Case("externalName required", {"type": "ExternalName"}, ["spec.externalName: Required value"]),
    Case("externalName not a subdomain", {"type": "ExternalName", "externalName": "Foo_bar"},
         [f'spec.externalName: Invalid value: "Foo_bar": {SUBDOMAIN}']),
    Case("externalName trailing dot accepted", {"type": "ExternalName", "externalName": "foo.example.com."}, [],
         stored={"externalName": "foo.example.com."}),
    Case("ExternalName with clusterIP", {**EN, "clusterIP": "10.0.10.40"}, ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    Case("ExternalName with ipFamilies", {**EN, "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
         ["spec.ipFamilies: Forbidden: may not be set for ExternalName services",
          "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"], verb="create"),
    # --- selector
    Case("selector value", svc(selector={"app": "my app"}), [f'spec.selector: Invalid value: "my app": {LABEL_VALUE}']),
    Case("selector key", svc(selector={"a/b/c": "x"}), [f'spec.selector: Invalid value: "a/b/c": {QNAME}']),
    # --- session affinity
    Case("sessionAffinity unsupported", svc(sessionAffinity="Sticky"),
         ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']),
    Case("timeoutSeconds zero", svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
         [f"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: {TIMEOUT}"]),
    Case("timeoutSeconds over a day", svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}}),
         [f"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: {TIMEOUT}"], verb="create"),
    Case("ClientIP defaults timeoutSeconds", svc(sessionAffinity="ClientIP"), [],
         stored={"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
    Case("config with None is dropped by the defaulter", svc(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}), [],
         stored={"sessionAffinity": "None", "sessionAffinityConfig": None}),
    # --- externalIPs
    Case("externalIP not an IP", svc(externalIPs=["abc"]), [f'spec.externalIPs[0]: Invalid value: "abc": {IP}']),
    Case("externalIP loopback", svc(externalIPs=["127.0.0.1"]),
         ['spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)']),
    Case("externalIP unspecified", svc(externalIPs=["0.0.0.0"]), ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)']),
    Case("externalIP link-local", svc(externalIPs=["169.254.1.1"]),
         ['spec.externalIPs[0]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)']),
    Case("externalIP link-local multicast", svc(externalIPs=["224.0.0.5"]),
         ['spec.externalIPs[0]: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'],
         verb="create"),
    # --- type
    Case("type unsupported", svc(type="Foo"),
         ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']),
    # --- externalTrafficPolicy: only where externally accessible
    Case("externalTrafficPolicy on ClusterIP", svc(externalTrafficPolicy="Cluster"),
         ['spec.externalTrafficPolicy: Invalid value: "Cluster": may only be set for externally-accessible services']),
    Case("externalTrafficPolicy unsupported", np_(externalTrafficPolicy="Global"),
         ['spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", "Local"']),
    Case("externalTrafficPolicy with externalIPs", svc(externalIPs=["203.0.113.9"], externalTrafficPolicy="Local"), [],
         stored={"externalTrafficPolicy": "Local"}),
    Case("internalTrafficPolicy unsupported", svc(internalTrafficPolicy="Foo"),
         ['spec.internalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"']),
    # --- healthCheckNodePort
    Case("healthCheckNodePort on NodePort", np_(healthCheckNodePort=30190), [f"spec.healthCheckNodePort: Invalid value: 30190: {HC_ONLY}"]),
    Case("healthCheckNodePort with Cluster policy", lb(healthCheckNodePort=30191), [f"spec.healthCheckNodePort: Invalid value: 30191: {HC_ONLY}"]),
    # allocation runs first, so an out-of-range port is the allocator's InternalError (alloc.go allocHealthCheckNodePort)
    Case("healthCheckNodePort out of range", lb(externalTrafficPolicy="Local", healthCheckNodePort=70000),
         [], raw='Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed to allocate '
                 f"requested HealthCheck NodePort 70000: {PORT_NOT_IN_RANGE}", verb="create"),
    Case("healthCheckNodePort immutable", lb(externalTrafficPolicy="Local", healthCheckNodePort=30193),
         ["spec.healthCheckNodePort: Forbidden: field is immutable"],
         name="upd-hc", before={"upd-hc": lb(externalTrafficPolicy="Local", healthCheckNodePort=30192)}),
    # --- loadBalancerSourceRanges
    Case("source ranges on ClusterIP", svc(loadBalancerSourceRanges=["10.0.0.0/8"]), [f"spec.LoadBalancerSourceRanges: Forbidden: {LB_ONLY}"]),
    Case("source range not a CIDR", lb(loadBalancerSourceRanges=["10.0.0.0/33"]),
         [f'spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": {CIDR}']),
    Case("source range annotation", lb(), [f'metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: "foo": {CIDR}'],
         meta={"annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, foo"}}),
    Case("source range annotation on ClusterIP", svc(), [f"metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Forbidden: {LB_ONLY}"],
         meta={"annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}}, verb="create"),
    Case("source ranges padded accepted", lb(loadBalancerSourceRanges=[" 192.0.2.0/24 "]), []),
    # --- allocateLoadBalancerNodePorts
    Case("allocateLoadBalancerNodePorts on NodePort", np_(allocateLoadBalancerNodePorts=False), [f"spec.allocateLoadBalancerNodePorts: Forbidden: {LB_ONLY}"]),
    Case("allocateLoadBalancerNodePorts on ClusterIP", svc(allocateLoadBalancerNodePorts=True), [f"spec.allocateLoadBalancerNodePorts: Forbidden: {LB_ONLY}"]),
    # --- loadBalancerClass
    Case("loadBalancerClass on ClusterIP", svc(loadBalancerClass="example.com/lb"), [f"spec.loadBalancerClass: Forbidden: {LB_ONLY}"]),
    Case("loadBalancerClass not qualified", lb(loadBalancerClass="a/b/c"), [f'spec.loadBalancerClass: Invalid value: "a/b/c": {QNAME}']),
    Case("loadBalancerClass immutable", lb(loadBalancerClass="b.example.com/lb"),
         ['spec.loadBalancerClass: Invalid value: "b.example.com/lb": may not change once set'],
         name="upd-lbc", before={"upd-lbc": lb(loadBalancerClass="a.example.com/lb")}),
    # --- trafficDistribution, publishNotReadyAddresses
    Case("trafficDistribution unsupported", svc(trafficDistribution="Nearest"),
         ['spec.trafficDistribution: Unsupported value: "Nearest": supported values: "PreferClose"']),
    Case("trafficDistribution PreferClose", svc(trafficDistribution="PreferClose"), [], stored={"trafficDistribution": "PreferClose"}),
    Case("publishNotReadyAddresses", svc(publishNotReadyAddresses=True), [], stored={"publishNotReadyAddresses": True}),
    # --- several errors in one manifest, in upstream's order
    Case("several errors", svc(type="Foo", ports=[{"port": 0, "targetPort": 80, "protocol": "HTTP"}]),
         [f'metadata.name: Invalid value: "Bad": {DNS1035}',
          f"spec.ports[0].port: Invalid value: 0: {RANGE}",
          'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
          'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'],
         name="Bad"),
]


def kubectl_invalid(name: str, errors: list[str]) -> str:
    """kubectl's rendering of a 422 Invalid Status (cmdutil.CheckErr + MultilineError)."""
    head = f'The Service "{name}" is invalid: '
    if len(errors) == 1:
        return head + errors[0]
    return head + "\n" + "\n".join(f"* {e}" for e in errors)


def _ids() -> list[str]:
    return [c.id for c in CASES]


def test_enough_cases() -> None:
    assert len([c for c in CASES if c.errors or c.raw]) >= 45


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_validation_rule(cluster: Cluster, case: Case) -> None:
    name = case.name or ("v-" + re.sub(r"[^a-z0-9]+", "-", case.id.lower()))[:40].strip("-")
    created = []
    try:
        for other, spec in case.before.items():
            cluster.kubectl("apply", "-f", "-", input=manifest(other, spec))
            created.append(other)
        args = ("apply", "-f", "-") if case.verb == "apply" else ("create", "-f", "-")
        p = cluster.kubectl(*args, input=manifest(name, case.spec, case.meta), check=False)
        if case.errors or case.raw:
            assert p.returncode == 1, p.stdout
            assert p.stderr.strip() == (case.raw or kubectl_invalid(name, case.errors))
            return
        assert p.returncode == 0, p.stderr
        created.append(name)
        stored = json.loads(cluster.kubectl("get", "svc", name, "-o", "json").stdout)["spec"]
        for key, want in case.stored.items():
            assert stored.get(key) == want, (key, stored)
    finally:
        if created:
            cluster.kubectl("delete", "svc", *dict.fromkeys(created), "--wait=false", check=False)


def test_released_ip_is_free_again(cluster: Cluster) -> None:
    """A rejected create leaks nothing: the IP it asked for can be taken right after."""
    bad = svc(clusterIP="10.0.10.50", sessionAffinity="Sticky")
    p = cluster.kubectl("create", "-f", "-", input=manifest("leak-check", bad), check=False)
    assert p.returncode == 1 and "spec.sessionAffinity: Unsupported value" in p.stderr
    ok = cluster.kubectl("create", "-f", "-", input=manifest("leak-check", svc(clusterIP="10.0.10.50")))
    assert ok.stdout.strip() == "service/leak-check created"
    cluster.kubectl("delete", "svc", "leak-check")
