"""Pod spec defaults and basic validation, shared by pods and pod templates.

Upstream defaults a PodSpec wherever one appears (Pod, and the template of a
Deployment or ReplicaSet), so kubectl shows the same filled-in spec in both
places; this module is that one place.
"""

from __future__ import annotations

from typing import Any

from kubesvc.api import errors
from kubesvc.api.errors import FieldError
from kubesvc.api.validation import names

Obj = dict[str, Any]


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_container(c: Obj) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "image" in c and isinstance(c["image"], str):
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    """Fill upstream's PodSpec defaults in place."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                default_container(c)


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    """The checks every pod needs to be runnable (the full upstream set is larger)."""
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [errors.required(path)]
    containers = spec.get("containers")
    if not containers:
        errs.append(errors.required(f"{path}.containers"))
        return errs
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cp = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            errs.append(errors.invalid(cp, c, "must be an object"))
            continue
        name = c.get("name")
        if not name:
            errs.append(errors.required(f"{cp}.name"))
        else:
            for msg in names.is_dns1123_label(str(name)):
                errs.append(errors.invalid(f"{cp}.name", name, msg))
            if name in seen:
                errs.append(errors.duplicate(f"{cp}.name", name))
            seen.add(name)
        if not c.get("image"):
            errs.append(errors.required(f"{cp}.image"))
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errs.append(errors.invalid(f"{cp}.ports[{j}].containerPort", port, "must be between 1 and 65535, inclusive"))
    rp = spec.get("restartPolicy")
    if rp not in ("Always", "OnFailure", "Never"):
        errs.append(errors.not_supported(f"{path}.restartPolicy", rp, ["Always", "OnFailure", "Never"]))
    return errs
