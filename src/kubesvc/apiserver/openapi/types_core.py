"""core/v1 types other than the Pod family (see types_pod.py).

Service and everything under it is described fully; the rest covers the
fields kubesvc stores and kubectl shows.
"""

from __future__ import annotations

from kubesvc.apiserver.openapi.dsl import (
    CORE,
    INTSTR,
    META,
    QUANTITY,
    Schema,
    arr,
    atomic,
    boolean,
    i32,
    i64,
    keyed,
    kind,
    list_of,
    obj,
    ref,
    s,
    smap,
    strings,
)

C = CORE

_SERVICE = {
    C + "Service": kind(
        "A named, stable address for a set of pods selected by labels, with the ports it exposes and "
        "how traffic reaches them.", "", "v1", "Service", {
            "spec": ref(C + "ServiceSpec", "What the service should be: its type, ports and selector."),
            "status": ref(C + "ServiceStatus", "What the service currently is, such as its load balancer. "
                                               "Read-only."),
        }),
    C + "ServiceList": list_of(C + "Service", "", "v1", "Service", "services"),
    C + "ServiceSpec": obj("The desired shape of a service.", {
        "allocateLoadBalancerNodePorts": boolean(
            "Whether a LoadBalancer service gets node ports allocated. Defaults to true."),
        "clusterIP": s("The virtual IP of the service, allocated when empty; None makes it headless. "
                       "Immutable once set except when changing type."),
        "clusterIPs": strings("The virtual IPs of the service, one per IP family; the first equals clusterIP."),
        "externalIPs": strings("Extra IPs, routed to the nodes from outside, on which the service accepts "
                               "traffic. Not managed by the cluster."),
        "externalName": s("The DNS name an ExternalName service is a CNAME for."),
        "externalTrafficPolicy": s("Whether external traffic may go to endpoints on any node (Cluster) or "
                                   "only to node-local ones, keeping the client IP (Local).",
                                   enum=["Cluster", "Local"]),
        "healthCheckNodePort": i32("Node port for load balancer health checks of a Local-policy service."),
        "internalTrafficPolicy": s("Whether in-cluster traffic may go to any endpoint (Cluster) or only to "
                                   "those on the sending node (Local).", enum=["Cluster", "Local"]),
        "ipFamilies": strings("IP families (IPv4, IPv6) of the service's cluster IPs, in order."),
        "ipFamilyPolicy": s("How many IP families the service uses.",
                            enum=["PreferDualStack", "RequireDualStack", "SingleStack"]),
        "loadBalancerClass": s("Which load balancer implementation handles the service; empty means the "
                               "default one. Immutable."),
        "loadBalancerIP": s("Deprecated: requested load balancer IP, where the implementation supports it."),
        "loadBalancerSourceRanges": strings("Client CIDRs allowed through the load balancer."),
        "ports": keyed(C + "ServicePort", ["port", "protocol"], "The ports the service exposes."),
        "publishNotReadyAddresses": boolean("Whether endpoints that are not ready are published anyway."),
        "selector": smap("Pods whose labels match are the service's endpoints. Empty means endpoints are "
                         "managed by hand.", atomic_map=True),
        "sessionAffinity": s("ClientIP keeps each client on one endpoint; None spreads requests.",
                             enum=["ClientIP", "None"]),
        "sessionAffinityConfig": ref(C + "SessionAffinityConfig", "Settings for session affinity."),
        "trafficDistribution": s("A preference for how traffic is spread over endpoints, such as "
                                 "PreferClose."),
        "type": s("How the service is exposed: ClusterIP (in-cluster virtual IP), NodePort (plus a port on "
                  "every node), LoadBalancer (plus an external load balancer) or ExternalName (a DNS alias).",
                  enum=["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]),
    }),
    C + "ServicePort": obj("One port a service exposes and where it forwards.", {
        "appProtocol": s("The application protocol, such as http or kubernetes.io/h2c, as a hint."),
        "name": s("Name of the port, unique within the service; required when there are several."),
        "nodePort": i32("Port on every node for NodePort and LoadBalancer services; allocated when empty."),
        "port": i32("The port the service listens on."),
        "protocol": s("TCP, UDP or SCTP. Defaults to TCP.", enum=["SCTP", "TCP", "UDP"]),
        "targetPort": ref(INTSTR, "Port number or named container port on the pods. Defaults to port."),
    }, required=["port"]),
    C + "SessionAffinityConfig": obj("Session affinity settings.", {
        "clientIP": ref(C + "ClientIPConfig", "Settings for ClientIP affinity."),
    }),
    C + "ClientIPConfig": obj("ClientIP affinity settings.", {
        "timeoutSeconds": i32("How long a client stays on one endpoint, 1 to 86400. Defaults to 10800."),
    }),
    C + "ServiceStatus": obj("The observed state of a service.", {
        "conditions": keyed(META + "Condition", "type", "Current conditions of the service."),
        "loadBalancer": ref(C + "LoadBalancerStatus", "The load balancer, if one was provisioned."),
    }),
    C + "LoadBalancerStatus": obj("The state of a load balancer.", {
        "ingress": atomic(C + "LoadBalancerIngress", "Addresses where the load balancer accepts traffic."),
    }),
    C + "LoadBalancerIngress": obj("One address of a load balancer.", {
        "hostname": s("DNS name of the load balancer, for hostname-based ones."),
        "ip": s("IP of the load balancer, for IP-based ones."),
        "ipMode": s("VIP: traffic arrives addressed to the IP itself; Proxy: it arrives via a proxy."),
        "ports": atomic(C + "PortStatus", "Status of each service port on this address."),
    }),
    C + "PortStatus": obj("The state of one service port.", {
        "error": s("Why the port is not working, in CamelCase; empty when fine."),
        "port": i32("The port number."),
        "protocol": s("TCP, UDP or SCTP.", enum=["SCTP", "TCP", "UDP"]),
    }, required=["port", "protocol"]),
}

_ENDPOINTS = {
    C + "Endpoints": kind("The legacy list of addresses behind a service, grouped into subsets that share "
                          "ports. EndpointSlice supersedes it.", "", "v1", "Endpoints", {
                              "subsets": atomic(C + "EndpointSubset", "Groups of addresses and ports."),
                          }),
    C + "EndpointsList": list_of(C + "Endpoints", "", "v1", "Endpoints", "endpoints"),
    C + "EndpointSubset": obj("Addresses that all expose the same ports.", {
        "addresses": atomic(C + "EndpointAddress", "Ready addresses."),
        "notReadyAddresses": atomic(C + "EndpointAddress", "Addresses not ready for traffic yet."),
        "ports": atomic(C + "EndpointPort", "Ports on every address of the subset."),
    }),
    C + "EndpointAddress": obj("One endpoint address.", {
        "hostname": s("Hostname of the endpoint."),
        "ip": s("IP of the endpoint."),
        "nodeName": s("Node hosting the endpoint."),
        "targetRef": ref(C + "ObjectReference", "The object, usually a pod, behind the address."),
    }, required=["ip"], map_type="atomic"),
    C + "EndpointPort": obj("One port of an endpoint subset.", {
        "appProtocol": s("The application protocol, as a hint."),
        "name": s("Name of the port, matching the service port's name."),
        "port": i32("The port number."),
        "protocol": s("TCP, UDP or SCTP. Defaults to TCP.", enum=["SCTP", "TCP", "UDP"]),
    }, required=["port"], map_type="atomic"),
    C + "ObjectReference": obj("A reference to another object, or a field of it.", {
        "apiVersion": s("API version of the referent."),
        "fieldPath": s("A field of the referent, such as spec.containers{web}."),
        "kind": s("Kind of the referent."),
        "name": s("Name of the referent."),
        "namespace": s("Namespace of the referent."),
        "resourceVersion": s("The referent's version this reference was made at."),
        "uid": s("UID of the referent."),
    }, map_type="atomic"),
    C + "LocalObjectReference": obj("A reference to an object in the same namespace, by name.", {
        "name": s("Name of the referent."),
    }, map_type="atomic"),
}

_CLUSTER = {
    C + "Namespace": kind("A scope for names; most objects live in one.", "", "v1", "Namespace", {
        "spec": ref(C + "NamespaceSpec", "Desired state of the namespace."),
        "status": ref(C + "NamespaceStatus", "Observed state of the namespace. Read-only."),
    }),
    C + "NamespaceList": list_of(C + "Namespace", "", "v1", "Namespace", "namespaces"),
    C + "NamespaceSpec": obj("Desired state of a namespace.", {
        "finalizers": strings("Must be empty before the namespace is removed."),
    }),
    C + "NamespaceStatus": obj("Observed state of a namespace.", {
        "conditions": keyed(C + "NamespaceCondition", "type", "Current conditions of the namespace."),
        "phase": s("Active, or Terminating while its content is being removed.",
                   enum=["Active", "Terminating"]),
    }),
    C + "NamespaceCondition": obj("One condition of a namespace.", {
        "lastTransitionTime": ref(META + "Time", "When the status last changed."),
        "message": s("Human-readable detail."),
        "reason": s("CamelCase cause."),
        "status": s("True, False or Unknown."),
        "type": s("The condition type."),
    }, required=["type", "status"]),
    C + "Node": kind("A machine, real or virtual, that runs pods.", "", "v1", "Node", {
        "spec": ref(C + "NodeSpec", "How the node should be configured."),
        "status": ref(C + "NodeStatus", "What the node reports about itself. Read-only."),
    }),
    C + "NodeList": list_of(C + "Node", "", "v1", "Node", "nodes"),
    C + "NodeSpec": obj("Desired configuration of a node.", {
        "externalID": s("Deprecated and unused."),
        "podCIDR": s("The pod IP range given to this node."),
        "podCIDRs": arr(s(), "The pod IP ranges given to this node, one per IP family.",
                        list_type="set", strategy="merge"),
        "providerID": s("The node's ID at its infrastructure provider."),
        "taints": atomic(C + "Taint", "Taints that repel pods not tolerating them."),
        "unschedulable": boolean("Whether new pods may not be scheduled here (cordoned)."),
    }),
    C + "Taint": obj("Marks a node so that only pods tolerating it go there.", {
        "effect": s("What happens to pods that do not tolerate the taint.",
                    enum=["NoExecute", "NoSchedule", "PreferNoSchedule"]),
        "key": s("The taint key."),
        "timeAdded": ref(META + "Time", "When a NoExecute taint was added."),
        "value": s("The taint value."),
    }, required=["key", "effect"]),
    C + "NodeStatus": obj("What a node reports about itself.", {
        "addresses": keyed(C + "NodeAddress", "type", "Addresses the node is reachable at."),
        "allocatable": smap("Resources available for pods.", QUANTITY),
        "capacity": smap("Total resources of the node.", QUANTITY),
        "conditions": keyed(C + "NodeCondition", "type", "Current conditions, such as Ready."),
        "daemonEndpoints": ref(C + "NodeDaemonEndpoints", "Ports of the daemons on the node."),
        "images": atomic(C + "ContainerImage", "Images present on the node."),
        "nodeInfo": ref(C + "NodeSystemInfo", "Versions and identifiers of the node's software."),
        "phase": s("Deprecated and unused."),
        "volumesInUse": strings("Volumes in use on the node."),
    }),
    C + "NodeAddress": obj("One address of a node.", {
        "address": s("The address."),
        "type": s("Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS."),
    }, required=["type", "address"]),
    C + "NodeCondition": obj("One condition of a node.", {
        "lastHeartbeatTime": ref(META + "Time", "When the condition was last reported."),
        "lastTransitionTime": ref(META + "Time", "When the status last changed."),
        "message": s("Human-readable detail."),
        "reason": s("CamelCase cause."),
        "status": s("True, False or Unknown."),
        "type": s("Ready, MemoryPressure, DiskPressure, PIDPressure or NetworkUnavailable."),
    }, required=["type", "status"]),
    C + "NodeDaemonEndpoints": obj("Ports of daemons on a node.", {
        "kubeletEndpoint": ref(C + "DaemonEndpoint", "The node agent's port."),
    }),
    C + "DaemonEndpoint": obj("A daemon's port.", {"Port": i32("The port number.")}, required=["Port"]),
    C + "ContainerImage": obj("An image present on a node.", {
        "names": strings("Names and digests of the image."),
        "sizeBytes": i64("Size of the image."),
    }),
    C + "NodeSystemInfo": obj("Versions and identifiers reported by a node.", {
        "architecture": s("CPU architecture."),
        "bootID": s("Boot ID."),
        "containerRuntimeVersion": s("Container runtime name and version."),
        "kernelVersion": s("Kernel version."),
        "kubeProxyVersion": s("Deprecated: proxy version."),
        "kubeletVersion": s("Node agent version."),
        "machineID": s("Machine ID."),
        "operatingSystem": s("Operating system."),
        "osImage": s("Operating system image."),
        "systemUUID": s("System UUID."),
    }, required=["machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                 "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"]),
}

_MISC = {
    C + "Event": kind("A report of something that happened to an object.", "", "v1", "Event", {
        "action": s("What was done, or failed, about the object."),
        "count": i32("How many times the event happened."),
        "eventTime": ref(META + "MicroTime", "When the event first happened, with microseconds."),
        "firstTimestamp": ref(META + "Time", "When the event was first recorded."),
        "involvedObject": ref(C + "ObjectReference", "The object the event is about."),
        "lastTimestamp": ref(META + "Time", "When the event most recently happened."),
        "message": s("Human-readable description."),
        "reason": s("Short CamelCase cause."),
        "related": ref(C + "ObjectReference", "A second object involved, if any."),
        "reportingComponent": s("Component that reported the event."),
        "reportingInstance": s("Instance of the component that reported it."),
        "series": ref(C + "EventSeries", "Data about a repeating event."),
        "source": ref(C + "EventSource", "Component and host that reported the event."),
        "type": s("Normal or Warning."),
    }, required=["metadata", "involvedObject"]),
    C + "EventList": list_of(C + "Event", "", "v1", "Event", "events"),
    C + "EventSource": obj("Where an event came from.", {
        "component": s("Reporting component."),
        "host": s("Node the component runs on."),
    }),
    C + "EventSeries": obj("A repeating event.", {
        "count": i32("Occurrences so far."),
        "lastObservedTime": ref(META + "MicroTime", "Time of the last occurrence."),
    }),
    C + "ConfigMap": kind("Non-secret configuration data for pods to consume.", "", "v1", "ConfigMap", {
        "binaryData": smap("Binary values, base64-encoded; keys must not repeat those of data.",
                           {"type": "string", "format": "byte"}),
        "data": smap("Text values."),
        "immutable": boolean("When true, data cannot change; only deletion is possible."),
    }),
    C + "ConfigMapList": list_of(C + "ConfigMap", "", "v1", "ConfigMap", "config maps"),
    C + "ServiceAccount": kind("An identity for processes that run in pods.", "", "v1", "ServiceAccount", {
        "automountServiceAccountToken": boolean("Whether pods get an API token mounted by default."),
        "imagePullSecrets": atomic(C + "LocalObjectReference", "Secrets used to pull pod images."),
        "secrets": keyed(C + "ObjectReference", "name", "Secrets the account may use; rarely set now."),
    }),
    C + "ServiceAccountList": list_of(C + "ServiceAccount", "", "v1", "ServiceAccount", "service accounts"),
}

SCHEMAS: dict[str, Schema] = {**_SERVICE, **_ENDPOINTS, **_CLUSTER, **_MISC}
