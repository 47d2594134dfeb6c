"""ObjectMeta validation (``k8s.io/apimachinery/pkg/api/validation/objectmeta.go``).

Every kind runs these rules on create and update, in upstream's order, so a
request with several metadata problems gets the same list kubectl shows
against a real cluster.  Metadata arrives as the plain JSON dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kubesvc.api.errors import FieldError, forbidden, invalid, required, too_long
from kubesvc.api.validation import names
from kubesvc.api.validation.govalue import GoValue, go_quote

#: (name, is_prefix) -> messages; is_prefix is True when checking generateName
NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)  # 256 KiB
FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"
FINALIZER_ORPHAN = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"


# --------------------------------------------------------------------------
# name functions (apimachinery's NameIs* with generateName masking)


def _mask_trailing_dash(name: str) -> str:
    """A generateName prefix may end in '-': check it as if a character followed."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return names.is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return names.is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return names.is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


# --------------------------------------------------------------------------
# pieces


def validate_labels(labels: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """Keys are qualified names, values label values (both reported at ``path``)."""
    errs: list[FieldError] = []
    for k, v in (labels or {}).items():
        errs += [invalid(path, k, m) for m in names.is_qualified_name(k)]
        v = v if isinstance(v, str) else str(v)
        errs += [invalid(path, v, m) for m in names.is_valid_label_value(v)]
    return errs


def validate_annotations(annotations: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """Keys are qualified names (case-insensitive); the total size is at most 256 KiB."""
    errs: list[FieldError] = []
    total = 0
    for k, v in (annotations or {}).items():
        errs += [invalid(path, k, m) for m in names.is_qualified_name(k.lower())]
        total += len(k.encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    """schema.ParseGroupVersion, with errors mapped to an empty version as upstream ignores them."""
    if not api_version:
        return "", ""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", ""


def _validate_owner_reference(ref: Mapping[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    api_version = str(ref.get("apiVersion") or "")
    group, version = _split_api_version(api_version)
    kind = str(ref.get("kind") or "")
    if not version:
        errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
    if not kind:
        errs.append(invalid(f"{path}.kind", kind, "must not be empty"))
    if not ref.get("name"):
        errs.append(invalid(f"{path}.name", str(ref.get("name") or ""), "must not be empty"))
    if not ref.get("uid"):
        errs.append(invalid(f"{path}.uid", str(ref.get("uid") or ""), "must not be empty"))
    if group == "" and version == "v1" and kind == "Event":
        errs.append(invalid(path, GoValue(_owner_ref_text(ref)), "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def _owner_ref_text(ref: Mapping[str, Any]) -> str:
    """Close to Go's %#v of a v1.OwnerReference (pointer fields print as values, not addresses)."""
    return (
        f"v1.OwnerReference{{APIVersion:{go_quote(str(ref.get('apiVersion') or ''))}, "
        f"Kind:{go_quote(str(ref.get('kind') or ''))}, Name:{go_quote(str(ref.get('name') or ''))}, "
        f"UID:{go_quote(str(ref.get('uid') or ''))}}}"
    )


def validate_owner_references(refs: Sequence[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or []:
        if not isinstance(ref, Mapping):
            continue
        errs += _validate_owner_reference(ref, path)
        if ref.get("controller") is True:
            current = f"{ref.get('kind') or ''}/{ref.get('name') or ''}"
            if first_controller:
                text = "[]v1.OwnerReference{" + ", ".join(
                    _owner_ref_text(r) for r in refs or [] if isinstance(r, Mapping)
                ) + "}"
                errs.append(
                    invalid(
                        path,
                        GoValue(text),
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Sequence[Any] | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    items = [str(f) for f in finalizers or []]
    for f in items:
        errs += [invalid(path, f, m) for m in names.is_qualified_name(f)]
    if FINALIZER_ORPHAN in items and FINALIZER_DELETE_DEPENDENTS in items:
        errs.append(
            invalid(
                path,
                GoValue("[]string{" + ", ".join(go_quote(f) for f in items) + "}"),
                f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set",
            )
        )
    return errs


def _validate_common(meta: Mapping[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    ns = meta.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(required(f"{path}.namespace"))
        else:
            errs += [invalid(f"{path}.namespace", ns, m) for m in name_is_dns_label(ns, False)]
    elif ns:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation") or 0
    if isinstance(generation, int) and generation < 0:
        errs.append(invalid(f"{path}.generation", generation, IS_NEGATIVE))
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return errs


# --------------------------------------------------------------------------
# entry points


def validate_object_meta(
    meta: Mapping[str, Any] | None, namespaced: bool, name_fn: NameFn, path: str = "metadata"
) -> list[FieldError]:
    """ValidateObjectMeta: run on create, after generateName has produced a name."""
    meta = meta or {}
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs += [invalid(f"{path}.generateName", generate_name, m) for m in name_fn(generate_name, True)]
    name = meta.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in name_fn(name, False)]
    return errs + _validate_common(meta, namespaced, path)


def _go_time(value: Any) -> Any:
    """metav1.Time prints through time.Time.String(): ``2024-01-02 03:04:05 +0000 UTC``."""
    if not value:
        return GoValue("0001-01-01 00:00:00 +0000 UTC")
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return GoValue(t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"))


def _immutable(new: Any, old: Any, path: str, shown: Any = None) -> list[FieldError]:
    if (new or None) == (old or None):
        return []
    return [invalid(path, new if shown is None else shown, FIELD_IMMUTABLE)]


def validate_object_meta_update(
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    path: str = "metadata",
    *,
    check_resource_version: bool = False,
) -> list[FieldError]:
    """ValidateObjectMetaUpdate: identity fields are immutable; labels etc. re-checked.

    Upstream also rejects an update without ``resourceVersion``, but its store
    fills that in first for kinds that allow unconditional updates; pass
    ``check_resource_version=True`` only if the caller has not done so.
    """
    new, old = new or {}, old or {}
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        extra = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if extra:
            listed = "[]string{" + ", ".join(go_quote(str(f)) for f in extra) + "}"
            errs.append(
                forbidden(
                    f"{path}.finalizers",
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {listed}",
                )
            )
    if check_resource_version and not new.get("resourceVersion"):
        errs.append(invalid(f"{path}.resourceVersion", "", "must be specified for an update"))
    if (new.get("generation") or 0) < (old.get("generation") or 0):
        errs.append(invalid(f"{path}.generation", new.get("generation") or 0, "must not be decremented"))
    errs += _immutable(new.get("name") or "", old.get("name") or "", f"{path}.name")
    errs += _immutable(new.get("namespace") or "", old.get("namespace") or "", f"{path}.namespace")
    errs += _immutable(new.get("uid") or "", old.get("uid") or "", f"{path}.uid")
    nc, oc = new.get("creationTimestamp"), old.get("creationTimestamp")
    errs += _immutable(nc, oc, f"{path}.creationTimestamp", _go_time(nc))
    nd, od = new.get("deletionTimestamp"), old.get("deletionTimestamp")
    errs += _immutable(nd, od, f"{path}.deletionTimestamp", _go_time(nd) if nd else GoValue("null"))
    ng, og = new.get("deletionGracePeriodSeconds"), old.get("deletionGracePeriodSeconds")
    if ng != og:
        errs.append(invalid(f"{path}.deletionGracePeriodSeconds", ng, FIELD_IMMUTABLE))
    errs += validate_labels(new.get("labels"), f"{path}.labels")
    errs += validate_annotations(new.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_finalizers(new.get("finalizers"), f"{path}.finalizers")
    return errs
