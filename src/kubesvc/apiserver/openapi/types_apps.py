"""apps/v1 Deployment and ReplicaSet, and autoscaling/v1 Scale (their /scale subresource)."""

from __future__ import annotations

from kubesvc.apiserver.openapi.dsl import (
    APPS,
    AUTOSCALING,
    CORE,
    INTSTR,
    META,
    Schema,
    boolean,
    i32,
    i64,
    keyed,
    kind,
    list_of,
    obj,
    ref,
    s,
)

A = APPS


def _condition(what: str) -> Schema:
    return obj(f"One condition of a {what}.", {
        "lastTransitionTime": ref(META + "Time", "When the status last changed."),
        "message": s("Human-readable detail."),
        "reason": s("CamelCase cause."),
        "status": s("True, False or Unknown."),
        "type": s("The condition type."),
    }, required=["type", "status"])


SCHEMAS: dict[str, Schema] = {
    A + "Deployment": kind("Declarative updates for pods: keeps a replica set of the current template "
                           "scaled up and rolls older ones down.", "apps", "v1", "Deployment", {
                               "spec": ref(A + "DeploymentSpec", "Desired behaviour of the deployment."),
                               "status": ref(A + "DeploymentStatus", "Observed state. Read-only."),
                           }),
    A + "DeploymentList": list_of(A + "Deployment", "apps", "v1", "Deployment", "deployments"),
    A + "DeploymentSpec": obj("Desired behaviour of a deployment.", {
        "minReadySeconds": i32("Seconds a new pod must be ready before it counts as available."),
        "paused": boolean("Stop rolling out template changes."),
        "progressDeadlineSeconds": i32("Seconds without progress before the rollout is reported failed. "
                                       "Defaults to 600."),
        "replicas": i32("Desired number of pods. Defaults to 1."),
        "revisionHistoryLimit": i32("Old replica sets kept for rollback. Defaults to 10."),
        "selector": ref(META + "LabelSelector", "Selects the deployment's pods; must match the template's "
                                                "labels. Immutable."),
        "strategy": {**ref(A + "DeploymentStrategy", "How old pods are replaced by new ones."),
                     "x-kubernetes-patch-strategy": "retainKeys"},
        "template": ref(CORE + "PodTemplateSpec", "The pods to create."),
    }, required=["selector", "template"]),
    A + "DeploymentStrategy": obj("How a deployment replaces pods.", {
        "rollingUpdate": ref(A + "RollingUpdateDeployment", "Settings for RollingUpdate."),
        "type": s("Recreate kills all old pods first; RollingUpdate replaces them gradually. "
                  "Defaults to RollingUpdate.", enum=["Recreate", "RollingUpdate"]),
    }),
    A + "RollingUpdateDeployment": obj("Limits of a rolling update.", {
        "maxSurge": ref(INTSTR, "Pods allowed above the desired count, as a number or percentage. "
                                "Defaults to 25%."),
        "maxUnavailable": ref(INTSTR, "Pods allowed to be unavailable, as a number or percentage. "
                                      "Defaults to 25%."),
    }),
    A + "DeploymentStatus": obj("Observed state of a deployment.", {
        "availableReplicas": i32("Pods ready for at least minReadySeconds."),
        "collisionCount": i32("Counter used to avoid name collisions of replica sets."),
        "conditions": keyed(A + "DeploymentCondition", "type", "Current conditions, such as Available."),
        "observedGeneration": i64("The generation the controller last acted on."),
        "readyReplicas": i32("Pods that are ready."),
        "replicas": i32("Pods that exist, of every revision."),
        "unavailableReplicas": i32("Pods still needed for full availability."),
        "updatedReplicas": i32("Pods running the current template."),
    }),
    A + "DeploymentCondition": {**_condition("deployment"), "properties": {
        **_condition("deployment")["properties"],
        "lastUpdateTime": ref(META + "Time", "When the condition was last updated."),
    }},
    A + "ReplicaSet": kind("Keeps a number of identical pods running.", "apps", "v1", "ReplicaSet", {
        "spec": ref(A + "ReplicaSetSpec", "Desired behaviour of the replica set."),
        "status": ref(A + "ReplicaSetStatus", "Observed state. Read-only."),
    }),
    A + "ReplicaSetList": list_of(A + "ReplicaSet", "apps", "v1", "ReplicaSet", "replica sets"),
    A + "ReplicaSetSpec": obj("Desired behaviour of a replica set.", {
        "minReadySeconds": i32("Seconds a new pod must be ready before it counts as available."),
        "replicas": i32("Desired number of pods. Defaults to 1."),
        "selector": ref(META + "LabelSelector", "Selects the pods counted; must match the template's labels."),
        "template": ref(CORE + "PodTemplateSpec", "The pods to create when too few exist."),
    }, required=["selector"]),
    A + "ReplicaSetStatus": obj("Observed state of a replica set.", {
        "availableReplicas": i32("Pods ready for at least minReadySeconds."),
        "conditions": keyed(A + "ReplicaSetCondition", "type", "Current conditions."),
        "fullyLabeledReplicas": i32("Pods whose labels match the template's."),
        "observedGeneration": i64("The generation the controller last acted on."),
        "readyReplicas": i32("Pods that are ready."),
        "replicas": i32("Pods that exist."),
    }, required=["replicas"]),
    A + "ReplicaSetCondition": _condition("replica set"),
    AUTOSCALING + "Scale": kind("The scale of a resource: desired and current replicas. Served on /scale.",
                                "autoscaling", "v1", "Scale", {
                                    "spec": ref(AUTOSCALING + "ScaleSpec", "Desired scale."),
                                    "status": ref(AUTOSCALING + "ScaleStatus", "Current scale. Read-only."),
                                }),
    AUTOSCALING + "ScaleSpec": obj("Desired scale.", {"replicas": i32("Desired number of replicas.")}),
    AUTOSCALING + "ScaleStatus": obj("Current scale.", {
        "replicas": i32("Replicas that exist."),
        "selector": s("Label selector of the pods, in string form."),
    }, required=["replicas"]),
}
