"""A container's environment, computed as the kubelet does.

Order and precedence follow upstream: the service variables of the pod's
namespace (and the master ``kubernetes`` Service) come first when
``enableServiceLinks`` is true (the ``kubernetes`` ones always), then
``envFrom``, then ``env`` entries, each of which may expand ``$(NAME)`` from
the ones before it.  Pure functions over plain dicts; the caller fetches
ConfigMaps and Secrets and passes them in.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


class EnvError(Exception):
    """A required reference is missing (upstream: CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Upstream's ``$(VAR)`` expansion: known names replaced, ``$$`` escapes, unknown left as is."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, text)


def _env_name(svc_name: str) -> str:
    return svc_name.upper().replace("-", "_")


def service_env(services: Iterable[Obj]) -> dict[str, str]:
    """``<SVC>_SERVICE_HOST``, ``_SERVICE_PORT[_<NAME>]`` and the docker-link ``<SVC>_PORT...`` set."""
    out: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: (s.get("metadata") or {}).get("name", "")):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        n = _env_name((svc.get("metadata") or {}).get("name", ""))
        out[f"{n}_SERVICE_HOST"] = ip
        out[f"{n}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{n}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port"))
        first = ports[0]
        out[f"{n}_PORT"] = f"{(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            prefix = f"{n}_PORT_{p.get('port')}_{proto.upper()}"
            out[prefix] = f"{proto.lower()}://{ip}:{p.get('port')}"
            out[f"{prefix}_PROTO"] = proto.lower()
            out[f"{prefix}_PORT"] = str(p.get("port"))
            out[f"{prefix}_ADDR"] = ip
    return out


def pod_services(pod: Obj, services: Iterable[Obj]) -> list[Obj]:
    """Which Services feed a pod's environment: its namespace's (if links are on) and default/kubernetes."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    for s in services:
        m = s.get("metadata") or {}
        if m.get("namespace") == "default" and m.get("name") == "kubernetes":
            chosen.setdefault("kubernetes", s)
        elif links and m.get("namespace") == ns:
            chosen[m.get("name", "")] = s
    return list(chosen.values())


def field_ref(pod: Obj, path: str) -> str:
    """The downward API: the fields upstream allows in ``valueFrom.fieldRef``."""
    m, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": m.get("name"), "metadata.namespace": m.get("namespace"),
              "metadata.uid": m.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.podIP": st.get("podIP"),
              "status.hostIP": st.get("hostIP"),
              "status.podIPs": ",".join(p.get("ip", "") for p in st.get("podIPs") or []),
              "status.hostIPs": ",".join(p.get("ip", "") for p in st.get("hostIPs") or [])}
    if path in simple:
        return str(simple[path] or "")
    mm = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if mm:
        return str((m.get(mm.group(1)) or {}).get(mm.group(2), ""))
    raise EnvError(f"unsupported fieldRef {path!r}")


Lookup = Callable[[str, str], Obj | None]  # (kind, name) → ConfigMap/Secret in the pod's namespace


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def _value_from(pod: Obj, vf: Obj, lookup: Lookup) -> str | None:
    if "fieldRef" in vf:
        return field_ref(pod, (vf["fieldRef"] or {}).get("fieldPath", ""))
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if key in vf:
            ref = vf[key] or {}
            obj = lookup(kind, ref.get("name", ""))
            data = _data(obj, kind) if obj else None
            if data is None or ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                what = "configmap" if kind == "ConfigMap" else "secret"
                if data is None:
                    raise EnvError(f'{what} "{ref.get("name")}" not found')
                raise EnvError(f"couldn't find key {ref.get('key')} in {kind} {pod['metadata'].get('namespace')}/{ref.get('name')}")
            return data[ref["key"]]
    if "resourceFieldRef" in vf:
        return "0"
    return None


def container_env(pod: Obj, container: Obj, services: Iterable[Obj], lookup: Lookup) -> dict[str, str]:
    """The final environment of one container (before the runtime adds PATH and HOSTNAME)."""
    env: dict[str, str] = service_env(pod_services(pod, services))
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if key in src:
                ref = src[key] or {}
                obj = lookup(kind, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
                env.update({prefix + k: v for k, v in _data(obj, kind).items()})
    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "valueFrom" in e:
            v = _value_from(pod, e["valueFrom"] or {}, lookup)
            if v is not None:
                env[name] = v
        else:
            env[name] = expand(str(e.get("value", "")), env)
    return env


def expand_argv(argv: list[str], env: dict[str, str]) -> list[str]:
    return [expand(a, env) for a in argv]
