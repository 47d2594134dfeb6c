"""Column definitions per resource, in upstream's order, names and priorities.

kubectl upper-cases ``name`` for the header and shows ``priority: 1`` columns
only with ``-o wide``.  Descriptions are our own short wording.
"""

from __future__ import annotations

from typing import Any

Column = dict[str, Any]


def col(name: str, description: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = col("Name", "Name of the object, unique within its namespace.", fmt="name")
AGE = col("Age", "Time since the object was created.")
CONTAINERS = col("Containers", "Names of the containers in the pod template.", priority=1)
IMAGES = col("Images", "Images of the containers in the pod template.", priority=1)

COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "services"): [
        NAME,
        col("Type", "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
        col("Cluster-IP", "The virtual IP inside the cluster that load-balances to the endpoints."),
        col("External-IP", "Addresses reachable from outside the cluster, or the external DNS name."),
        col("Port(s)", "Ports the service exposes, with node ports where allocated."),
        AGE,
        col("Selector", "Labels of the pods that back the service.", priority=1),
    ],
    ("", "pods"): [
        NAME,
        col("Ready", "Ready containers out of all containers of the pod."),
        col("Status", "Summary of the pod's phase and its containers' states."),
        col("Restarts", "Container restarts, and how long ago the last one happened."),
        AGE,
        col("IP", "The pod's primary IP address.", priority=1),
        col("Node", "The node the pod is bound to.", priority=1),
        col("Nominated Node", "The node the scheduler plans to place the pod on after preemption.", priority=1),
        col("Readiness Gates", "Extra readiness conditions satisfied, out of those declared.", priority=1),
    ],
    ("apps", "deployments"): [
        NAME,
        col("Ready", "Ready pods out of desired pods."),
        col("Up-to-date", "Pods running the latest pod template."),
        col("Available", "Pods ready for at least minReadySeconds."),
        AGE, CONTAINERS, IMAGES,
        col("Selector", "Label query selecting the deployment's pods.", priority=1),
    ],
    ("apps", "replicasets"): [
        NAME,
        col("Desired", "Number of pods asked for.", type_="integer"),
        col("Current", "Number of pods that exist.", type_="integer"),
        col("Ready", "Number of pods that are ready.", type_="integer"),
        AGE, CONTAINERS, IMAGES,
        col("Selector", "Label query selecting the replica set's pods.", priority=1),
    ],
    ("", "endpoints"): [
        NAME,
        col("Endpoints", "Addresses and ports backing the service."),
        AGE,
    ],
    ("discovery.k8s.io", "endpointslices"): [
        NAME,
        col("AddressType", "Kind of the addresses in the slice: IPv4, IPv6 or FQDN."),
        col("Ports", "Ports exposed by the endpoints in the slice."),
        col("Endpoints", "Addresses of the endpoints in the slice."),
        AGE,
    ],
    ("", "nodes"): [
        NAME,
        col("Status", "Readiness of the node, and whether scheduling is disabled."),
        col("Roles", "Roles taken from the node's node-role labels."),
        AGE,
        col("Version", "Version of the node agent."),
        col("Internal-IP", "The node's first internal address.", priority=1),
        col("External-IP", "The node's first external address.", priority=1),
        col("OS-Image", "Operating system image reported by the node.", priority=1),
        col("Kernel-Version", "Kernel version reported by the node.", priority=1),
        col("Container-Runtime", "Container runtime and version reported by the node.", priority=1),
    ],
    ("", "namespaces"): [
        NAME,
        col("Status", "Phase of the namespace: Active or Terminating."),
        AGE,
    ],
    ("", "events"): [
        col("Last Seen", "Time since the event was last seen."),
        col("Type", "Normal or Warning."),
        col("Reason", "Short machine-readable cause of the event."),
        col("Object", "The object the event is about, as kind/name."),
        col("Subobject", "Field path within the object, such as one container.", priority=1),
        col("Source", "Component, and host, that reported the event.", priority=1),
        col("Message", "Human-readable description of the event."),
        col("First Seen", "Time since the event was first seen.", priority=1),
        col("Count", "How many times the event has happened.", priority=1),
        col("Name", "Name of the event object.", fmt="name", priority=1),
    ],
    ("", "configmaps"): [
        NAME,
        col("Data", "Number of keys, text and binary."),
        AGE,
    ],
    ("", "serviceaccounts"): [
        NAME,
        col("Secrets", "Number of secrets listed on the service account."),
        AGE,
    ],
    ("coordination.k8s.io", "leases"): [
        NAME,
        col("Holder", "Identity of the current holder of the lease."),
        AGE,
    ],
    ("kubesvc.io", "ipaddresspools"): [
        NAME,
        col("Addresses", "CIDRs and ranges of the pool."),
        col("Auto-Assign", "Whether Services that ask for no address get one from this pool.", type_="boolean"),
        AGE,
        col("Assigned", "Addresses in use by Services.", type_="integer", priority=1),
        col("Available", "Addresses still free.", type_="integer", priority=1),
    ],
}

GENERIC: list[Column] = [NAME, AGE]


def columns(resource_plural: str, group: str) -> list[Column]:
    """The columnDefinitions for a resource; Name and Age for kinds without a printer."""
    return [dict(c) for c in COLUMNS.get((group, resource_plural), GENERIC)]
