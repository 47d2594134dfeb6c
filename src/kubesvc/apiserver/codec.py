"""Request bodies in, response bodies out.

Bodies arrive as JSON (also with no Content-Type at all: the official Python
client sends none), YAML, or Kubernetes protobuf (kubectl 1.32's generator
commands).  Answers are always JSON; the only negotiation is *what* to send:
the object itself, a ``meta.k8s.io/v1`` Table (kubectl's server-side printing),
or PartialObjectMetadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from kubesvc.api import errors

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode_object(content_type: str | None, body: bytes) -> dict[str, Any]:
    """Decode a create/update body into an object dict, or raise a 4xx Status."""
    mt = media_type(content_type)
    if not body.strip():
        raise errors.bad_request("the body of the request was empty")
    if mt in ("", JSON, "*/*", "text/plain"):
        obj = _json(body)
    elif mt in ("application/yaml", "application/x-yaml", "text/yaml"):
        obj = _yaml(body)
    elif mt == PROTOBUF:
        from kubesvc.apiserver.protobuf import ProtobufError, decode_k8s_protobuf

        try:
            obj = decode_k8s_protobuf(body)
        except ProtobufError as e:
            raise errors.bad_request(f"unable to decode protobuf body: {e}") from None
    else:
        raise errors.unsupported_media_type(mt)
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON or YAML object")
    return obj


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"the body of the request could not be decoded as JSON: {e}") from None


def _yaml(body: bytes) -> Any:
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"the body of the request could not be decoded as YAML: {e}") from None


def decode_apply(body: bytes) -> dict[str, Any]:
    """Server-side apply bodies: YAML (of which JSON is a subset)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = _yaml(body)
    if not isinstance(obj, dict):
        raise errors.bad_request("the apply configuration must be an object")
    return obj


@dataclass(frozen=True)
class Wanted:
    """What the client asked to receive."""

    as_table: bool = False
    partial_metadata: bool = False


def negotiate(accept: str | None) -> Wanted:
    """Pick the first acceptable form in the Accept header, as upstream does."""
    for part in (accept or "").split(","):
        params = {}
        pieces = [p.strip() for p in part.split(";")]
        for p in pieces[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip()] = v.strip()
        as_ = params.get("as")
        if as_ == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return Wanted(as_table=True)
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and params.get("g") == "meta.k8s.io":
            return Wanted(partial_metadata=True)
        if as_ is None and pieces[0] in (JSON, "*/*", "application/*", PROTOBUF, "application/yaml", ""):
            return Wanted()
    return Wanted()


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
