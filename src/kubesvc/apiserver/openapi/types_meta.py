"""apimachinery types every document needs: ObjectMeta, ListMeta, Status, ..."""

from __future__ import annotations

from kubesvc.apiserver.openapi.dsl import (
    INTSTR,
    META,
    QUANTITY,
    Schema,
    anyobj,
    arr,
    atomic,
    boolean,
    gvk,
    i32,
    i64,
    keyed,
    obj,
    ref,
    s,
    smap,
    strings,
)

SCHEMAS: dict[str, Schema] = {
    META + "ObjectMeta": obj("Metadata every persisted object carries: identity, labels, ownership.", {
        "annotations": smap("Unstructured key/value data kept with the object, not used to select it."),
        "creationTimestamp": ref(META + "Time", "When the server created the object; read-only."),
        "deletionGracePeriodSeconds": i64("Seconds left for graceful termination once deletion started."),
        "deletionTimestamp": ref(META + "Time", "When the object will be removed; set by the server on delete."),
        "finalizers": arr(s(), "Keys that must be cleared before the object is removed.",
                          list_type="set", strategy="merge"),
        "generateName": s("Prefix the server uses to generate a unique name when name is empty."),
        "generation": i64("Sequence number of changes to the desired state; set by the server."),
        "labels": smap("Key/value pairs used to organise and select objects."),
        "managedFields": atomic(META + "ManagedFieldsEntry", "Which field manager owns which fields."),
        "name": s("Name, unique within a namespace; required when creating unless generateName is used."),
        "namespace": s("Namespace the name is scoped to; empty for cluster-scoped objects."),
        "ownerReferences": keyed(META + "OwnerReference", "uid",
                                 "Objects this one depends on; removed with them by the garbage collector."),
        "resourceVersion": s("Opaque version of the object, for optimistic concurrency and watches."),
        "selfLink": s("Deprecated and unset."),
        "uid": s("Unique identifier for this incarnation of the object; set by the server."),
    }),
    META + "ListMeta": obj("Metadata of a list response.", {
        "continue": s("Token to fetch the next page when the list was limited."),
        "remainingItemCount": i64("Items left after this page, when known."),
        "resourceVersion": s("Version of the collection this list reflects; watch from here."),
        "selfLink": s("Deprecated and unset."),
    }),
    META + "Time": {"description": "An RFC 3339 timestamp with second precision.",
                    "type": "string", "format": "date-time"},
    META + "MicroTime": {"description": "An RFC 3339 timestamp with microsecond precision.",
                         "type": "string", "format": "date-time"},
    META + "FieldsV1": {"description": "A set of fields, in the server-side apply trie format.",
                        "type": "object"},
    META + "LabelSelector": obj("A label query; requirements are ANDed, and an empty selector matches all.", {
        "matchExpressions": atomic(META + "LabelSelectorRequirement", "Set-based requirements."),
        "matchLabels": smap("Exact key=value requirements."),
    }, map_type="atomic"),
    META + "LabelSelectorRequirement": obj("One set-based label requirement.", {
        "key": {**s("The label key."), "x-kubernetes-patch-merge-key": "key",
                "x-kubernetes-patch-strategy": "merge"},
        "operator": s("In, NotIn, Exists or DoesNotExist."),
        "values": strings("Values for In and NotIn; must be empty for Exists and DoesNotExist."),
    }, required=["key", "operator"]),
    META + "OwnerReference": obj("Points at an object that owns this one.", {
        "apiVersion": s("API version of the owner."),
        "blockOwnerDeletion": boolean("Whether foreground deletion of the owner waits for this object."),
        "controller": boolean("Whether the owner is the managing controller."),
        "kind": s("Kind of the owner."),
        "name": s("Name of the owner."),
        "uid": s("UID of the owner."),
    }, required=["apiVersion", "kind", "name", "uid"], map_type="atomic"),
    META + "ManagedFieldsEntry": obj("The fields one manager set through one operation.", {
        "apiVersion": s("Version of the schema the fields are expressed in."),
        "fieldsType": s("Format of fieldsV1; always FieldsV1."),
        "fieldsV1": ref(META + "FieldsV1", "The fields owned."),
        "manager": s("Name of the field manager."),
        "operation": s("Apply or Update."),
        "subresource": s("Subresource the change came through, if any."),
        "time": ref(META + "Time", "When the entry last changed."),
    }),
    META + "Condition": obj("One aspect of an object's current state.", {
        "lastTransitionTime": ref(META + "Time", "When the status last changed."),
        "message": s("Human-readable detail."),
        "observedGeneration": i64("The generation the condition was computed from."),
        "reason": s("CamelCase machine-readable cause."),
        "status": s("True, False or Unknown.", enum=["False", "True", "Unknown"]),
        "type": s("The aspect, in CamelCase."),
    }, required=["type", "status", "lastTransitionTime", "reason", "message"]),
    META + "Status": obj("The outcome of an operation that returns no object, and every error.", {
        "apiVersion": s("The versioned schema of this object."),
        "code": i32("HTTP status code."),
        "details": ref(META + "StatusDetails", "Extra data about the failure, by reason."),
        "kind": s("Status."),
        "message": s("Human-readable description."),
        "metadata": ref(META + "ListMeta", "Standard list metadata."),
        "reason": s("Machine-readable cause, such as NotFound or AlreadyExists."),
        "status": s("Success or Failure."),
    }),
    META + "StatusDetails": obj("Which object a Status is about and why it failed.", {
        "causes": atomic(META + "StatusCause", "Individual problems, such as invalid fields."),
        "group": s("API group of the object."),
        "kind": s("Kind (or resource) of the object."),
        "name": s("Name of the object."),
        "retryAfterSeconds": i32("Suggested wait before retrying."),
        "uid": s("UID of the object."),
    }),
    META + "StatusCause": obj("One problem behind a failure.", {
        "field": s("Path of the field at fault, such as spec.ports[0].port."),
        "message": s("Human-readable description."),
        "reason": s("Machine-readable cause."),
    }),
    META + "DeleteOptions": obj("Options for a delete request.", {
        "apiVersion": s("The versioned schema of this object."),
        "dryRun": strings("When set to All, validate the request but persist nothing."),
        "gracePeriodSeconds": i64("Seconds before the object is deleted; zero means now."),
        "ignoreStoreReadErrorWithClusterBreakingPotential": boolean(
            "Delete even when the stored object cannot be read. Dangerous."),
        "kind": s("DeleteOptions."),
        "orphanDependents": boolean("Deprecated: use propagationPolicy."),
        "preconditions": ref(META + "Preconditions", "Conditions that must hold for the delete to go ahead."),
        "propagationPolicy": s("Orphan, Background or Foreground: what happens to dependents."),
    }),
    META + "Preconditions": obj("Must match for an operation to proceed.", {
        "resourceVersion": s("Expected resourceVersion."),
        "uid": s("Expected UID."),
    }),
    META + "Patch": {"description": "A patch body; its format is given by the Content-Type.", "type": "object"},
    META + "WatchEvent": obj("One event of a watch stream.", {
        "object": anyobj("The object: the new state for ADDED and MODIFIED, the last state for DELETED, "
                         "a Status for ERROR."),
        "type": s("ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."),
    }, required=["type", "object"]),
    INTSTR: {"description": "A value that is either an integer or a string, such as a port number or name.",
             "type": "string", "format": "int-or-string"},
    QUANTITY: {"description": "A fixed-point amount with an optional suffix, such as 500m, 2Gi or 1.5.",
               "type": "string"},
}

# DeleteOptions and WatchEvent appear under every group-version's GVK upstream.
_GVS = [("", "v1"), ("apps", "v1"), ("autoscaling", "v1"), ("coordination.k8s.io", "v1"),
        ("discovery.k8s.io", "v1"), ("meta.k8s.io", "v1")]
SCHEMAS[META + "DeleteOptions"]["x-kubernetes-group-version-kind"] = [gvk(g, v, "DeleteOptions") for g, v in _GVS]
SCHEMAS[META + "WatchEvent"]["x-kubernetes-group-version-kind"] = [gvk(g, v, "WatchEvent") for g, v in _GVS]
SCHEMAS[META + "Status"]["x-kubernetes-group-version-kind"] = [gvk("", "v1", "Status")]
