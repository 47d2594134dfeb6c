"""discovery.k8s.io/v1 EndpointSlice and coordination.k8s.io/v1 Lease."""

from __future__ import annotations

from kubesvc.apiserver.openapi.dsl import (
    COORDINATION,
    CORE,
    DISCOVERY,
    META,
    Schema,
    arr,
    atomic,
    boolean,
    i32,
    kind,
    list_of,
    obj,
    ref,
    s,
    smap,
)

D = DISCOVERY

SCHEMAS: dict[str, Schema] = {
    D + "EndpointSlice": kind("A subset of the endpoints of a service, all of one address type. The "
                              "kubernetes.io/service-name label names the service.", "discovery.k8s.io",
                              "v1", "EndpointSlice", {
                                  "addressType": s("Type of every address in the slice. Immutable.",
                                                   enum=["FQDN", "IPv4", "IPv6"]),
                                  "endpoints": atomic(D + "Endpoint", "The endpoints; at most 1000."),
                                  "ports": atomic(D + "EndpointPort", "Ports every endpoint exposes; empty "
                                                                      "means all ports."),
                              }, required=["addressType", "endpoints"]),
    D + "EndpointSliceList": list_of(D + "EndpointSlice", "discovery.k8s.io", "v1", "EndpointSlice",
                                     "endpoint slices"),
    D + "Endpoint": obj("One backend of a service.", {
        "addresses": arr(s(), "Addresses of the endpoint, all of the slice's type; consumers use the first.",
                         list_type="set"),
        "conditions": ref(D + "EndpointConditions", "Readiness of the endpoint."),
        "deprecatedTopology": smap("Deprecated topology labels."),
        "hints": ref(D + "EndpointHints", "Hints for topology-aware routing."),
        "hostname": s("Hostname of the endpoint, for DNS."),
        "nodeName": s("Node hosting the endpoint."),
        "targetRef": ref(CORE + "ObjectReference", "The object, usually a pod, behind the endpoint."),
        "zone": s("Zone the endpoint is in."),
    }, required=["addresses"]),
    D + "EndpointConditions": obj("Readiness of an endpoint.", {
        "ready": boolean("Whether it should receive new traffic: serving and not terminating, unless the "
                         "service publishes not-ready addresses."),
        "serving": boolean("Whether it passes readiness checks, terminating or not."),
        "terminating": boolean("Whether it is shutting down."),
    }),
    D + "EndpointHints": obj("Topology hints.", {
        "forZones": atomic(D + "ForZone", "Zones that should route to this endpoint."),
    }),
    D + "ForZone": obj("A zone, for hints.", {"name": s("Name of the zone.")}, required=["name"]),
    D + "EndpointPort": obj("A port of the endpoints in a slice.", {
        "appProtocol": s("The application protocol, as a hint."),
        "name": s("Name, matching the service port's name."),
        "port": i32("Port number; empty means all ports."),
        "protocol": s("TCP, UDP or SCTP. Defaults to TCP.", enum=["SCTP", "TCP", "UDP"]),
    }, map_type="atomic"),
    COORDINATION + "Lease": kind("A lock with a holder and an expiry, for leader election and heartbeats.",
                                 "coordination.k8s.io", "v1", "Lease", {
                                     "spec": ref(COORDINATION + "LeaseSpec", "The lease."),
                                 }),
    COORDINATION + "LeaseList": list_of(COORDINATION + "Lease", "coordination.k8s.io", "v1", "Lease", "leases"),
    COORDINATION + "LeaseSpec": obj("Who holds a lease and until when.", {
        "acquireTime": ref(META + "MicroTime", "When the current holder acquired it."),
        "holderIdentity": s("Identity of the holder."),
        "leaseDurationSeconds": i32("Seconds candidates wait after the last renewal before taking over."),
        "leaseTransitions": i32("Times the lease changed holders."),
        "preferredHolder": s("Holder the lease should move to."),
        "renewTime": ref(META + "MicroTime", "When the holder last renewed it."),
        "strategy": s("How the holder is chosen in coordinated election."),
    }),
}
