"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts the server works with.

Why: kubectl 1.32 sends ``application/vnd.kubernetes.protobuf`` bodies for its generator
commands (``create deployment|namespace|service|configmap``) and does not retry in JSON after
a 415. The rest of the server only understands JSON-like dicts, so this module turns the
protobuf envelope into exactly the dict a JSON body for the same object would have given.

Wire format: 4 magic bytes ``k8s\\0`` then a ``runtime.Unknown`` message
{1: typeMeta{1: apiVersion, 2: kind}, 2: raw (the object message), 3: contentEncoding,
4: contentType}. Objects are proto2 messages; their layout comes from the table in
``protobuf_schema.py``. Go-to-JSON rules reproduced here:

* non-pointer scalars are always encoded by Go, even when zero; JSON ``omitempty`` drops them,
  so zero values are dropped unless the Go field is a pointer (flag ``p``);
* Go embedded inline structs (flag ``i``) are flattened into the parent object;
* a handful of apimachinery types have custom JSON forms (Time, MicroTime, IntOrString,
  Quantity, FieldsV1, RawExtension) and are converted in code.

Only decoding is needed: kubectl always accepts JSON responses.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesvc.apiserver.protobuf_schema import KINDS, MESSAGES

__all__ = [
    "MAGIC",
    "PROTOBUF_CONTENT_TYPE",
    "ProtobufError",
    "decode_k8s_protobuf",
    "decode_message",
    "is_protobuf_content_type",
]

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LEN, _SGROUP, _EGROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_NUMERIC = {"int32", "int64", "bool", "double"}
_OMITEMPTY_SCALARS = _NUMERIC | {"string", "bytes"}
# Deep enough for any real object (PodSpec nests ~10 levels) while bounding recursion on
# hostile input.
_MAX_DEPTH = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object this server can decode."""


def is_protobuf_content_type(content_type: str | None) -> bool:
    """True when a Content-Type header names the Kubernetes protobuf media type (parameters ignored)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF_CONTENT_TYPE


# --------------------------------------------------------------------------- wire level


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Return (value, new position) of the base-128 varint at ``pos``."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtobufError("truncated data: varint runs past the end of the message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("malformed varint: more than 10 bytes")


def _iter_fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) for each field of one message.

    The value is an int for varint/fixed wire types and a memoryview for length-delimited ones.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ProtobufError("malformed data: field number 0")
        if wt == _VARINT:
            val, pos = _read_varint(buf, pos)
            yield num, wt, val
        elif wt == _FIXED64:
            if pos + 8 > end:
                raise ProtobufError(f"truncated data: 64-bit field {num} runs past the end")
            yield num, wt, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wt == _FIXED32:
            if pos + 4 > end:
                raise ProtobufError(f"truncated data: 32-bit field {num} runs past the end")
            yield num, wt, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif wt == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > end:
                raise ProtobufError(
                    f"truncated data: field {num} declares {size} bytes but only {end - pos} remain"
                )
            yield num, wt, buf[pos : pos + size]
            pos += size
        else:
            # Groups (3/4) are never produced by go-to-protobuf; anything else is garbage.
            raise ProtobufError(f"unsupported wire type {wt} for field {num}")


def _signed(v: int, bits: int = 64) -> int:
    """Reinterpret an unsigned varint as a two's-complement signed integer."""
    v &= (1 << 64) - 1
    if v >= 1 << 63:
        v -= 1 << 64
    if bits == 32:
        v = (v + (1 << 31)) % (1 << 32) - (1 << 31)
    return v


def _scalar(typ: str, wt: int, val: Any, ctx: str) -> Any:
    """Convert one non-packed wire value to its JSON value for scalar ``typ``."""
    if typ == "string":
        if wt != _LEN:
            raise ProtobufError(f"{ctx}: expected a string, got wire type {wt}")
        try:
            return bytes(val).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtobufError(f"{ctx}: string is not valid UTF-8") from exc
    if typ == "bytes":
        if wt != _LEN:
            raise ProtobufError(f"{ctx}: expected bytes, got wire type {wt}")
        return base64.b64encode(bytes(val)).decode("ascii")  # Go encodes []byte as base64
    if typ == "int32" or typ == "int64":
        if wt != _VARINT:
            raise ProtobufError(f"{ctx}: expected a varint, got wire type {wt}")
        return _signed(val, 32 if typ == "int32" else 64)
    if typ == "bool":
        if wt != _VARINT:
            raise ProtobufError(f"{ctx}: expected a varint, got wire type {wt}")
        return val != 0
    if typ == "double":
        if wt != _FIXED64:
            raise ProtobufError(f"{ctx}: expected a 64-bit value, got wire type {wt}")
        return struct.unpack("<d", val.to_bytes(8, "little"))[0]
    raise ProtobufError(f"{ctx}: unknown scalar type {typ}")


def _packed(typ: str, data: memoryview, ctx: str) -> list[Any]:
    """Decode a packed repeated numeric field."""
    out: list[Any] = []
    if typ == "double":
        if len(data) % 8:
            raise ProtobufError(f"{ctx}: packed doubles are not a multiple of 8 bytes")
        return [v for (v,) in struct.iter_unpack("<d", bytes(data))]
    pos = 0
    while pos < len(data):
        v, pos = _read_varint(data, pos)
        out.append(_scalar(typ, _VARINT, v, ctx))
    return out


def _is_zero(v: Any) -> bool:
    """Zero value in the Go sense for a decoded scalar (what ``omitempty`` drops)."""
    return v is None or v == "" or v is False or (v == 0 and not isinstance(v, bool))


# --------------------------------------------------------------------------- special types


def _fields_dict(data: memoryview) -> dict[int, Any]:
    """Last-wins map of field number -> raw wire value, for the tiny special messages."""
    return {num: val for num, _wt, val in _iter_fields(data)}


def _time(data: memoryview, micro: bool) -> str | None:
    """meta.Time / meta.MicroTime {1 seconds, 2 nanos} -> RFC 3339 string; empty -> null."""
    f = _fields_dict(data)
    if not f:
        return None  # a zero Go time.Time marshals to JSON null
    seconds = _signed(int(f.get(1, 0)))
    nanos = _signed(int(f.get(2, 0)), 32)
    try:
        t = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as exc:
        raise ProtobufError(f"timestamp out of range: {seconds}s") from exc
    # Explicit widths: strftime("%Y") does not zero-pad years below 1000 on glibc.
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{base}.{t.microsecond:06d}Z" if micro else f"{base}Z"


def _int_or_string(data: memoryview) -> int | str:
    """intstr.IntOrString {1 type (0 int, 1 string), 2 intVal, 3 strVal} -> int or str."""
    f = _fields_dict(data)
    if f.get(1, 0) == 1:
        return _scalar("string", _LEN, f.get(3, memoryview(b"")), "IntOrString.strVal")
    return _signed(int(f.get(2, 0)), 32)


def _quantity(data: memoryview) -> str:
    """resource.Quantity {1 string} -> its canonical string (zero quantity is "0")."""
    f = _fields_dict(data)
    s = _scalar("string", _LEN, f[1], "Quantity.string") if 1 in f else ""
    return s or "0"


def _raw_json(data: memoryview, what: str) -> Any:
    """meta.FieldsV1 / runtime.RawExtension {1 raw JSON bytes} -> parsed JSON (empty -> null)."""
    f = _fields_dict(data)
    raw = bytes(f.get(1, b""))
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtobufError(f"{what}: embedded raw value is not JSON") from exc


_SPECIAL: dict[str, Callable[[memoryview], Any]] = {
    "meta.Time": lambda d: _time(d, micro=False),
    "meta.MicroTime": lambda d: _time(d, micro=True),
    "intstr.IntOrString": _int_or_string,
    "resource.Quantity": _quantity,
    "meta.FieldsV1": lambda d: _raw_json(d, "FieldsV1"),
    "runtime.RawExtension": lambda d: _raw_json(d, "RawExtension"),
}


# --------------------------------------------------------------------------- messages


def _value(typ: str, wt: int, val: Any, ctx: str, depth: int) -> Any:
    """Decode one (non-repeated) wire value of ``typ``: a scalar, special type or message."""
    if typ in _SPECIAL or typ in MESSAGES:
        if wt != _LEN:
            raise ProtobufError(f"{ctx}: expected an embedded message, got wire type {wt}")
        if typ in _SPECIAL:
            return _SPECIAL[typ](val)
        return _message(typ, val, depth + 1)
    return _scalar(typ, wt, val, ctx)


def _map_entry(key_t: str, val_t: str, data: memoryview, ctx: str, depth: int) -> tuple[Any, Any]:
    """Decode a map entry message {1 key, 2 value}; missing parts take their zero value."""
    key: Any = None
    value: Any = None
    for num, wt, val in _iter_fields(data):
        if num == 1:
            key = _value(key_t, wt, val, ctx + ".key", depth)
        elif num == 2:
            value = _value(val_t, wt, val, ctx + ".value", depth)
    if key is None:
        key = "" if key_t == "string" else 0
    if value is None:
        if val_t in _SPECIAL or val_t in MESSAGES:
            value = _value(val_t, _LEN, memoryview(b""), ctx, depth)
        else:
            value = {"string": "", "bytes": "", "bool": False}.get(val_t, 0)
    return str(key), value


def _message(name: str, data: memoryview, depth: int = 0) -> dict[str, Any]:
    """Decode one message of the schema table into a JSON-shaped dict."""
    if depth > _MAX_DEPTH:
        raise ProtobufError(f"message nesting deeper than {_MAX_DEPTH} levels")
    fields = MESSAGES[name]
    out: dict[str, Any] = {}
    inline: list[dict[str, Any]] = []
    for num, wt, val in _iter_fields(data):
        spec = fields.get(num)
        if spec is None:
            continue  # unknown field number in a known message: skip, as proto2 readers do
        jname, typ, flags = spec
        ctx = f"{name}.{jname}"
        if typ.startswith("map<"):
            key_t, val_t = typ[4:-1].split(",", 1)
            if wt != _LEN:
                raise ProtobufError(f"{ctx}: expected a map entry, got wire type {wt}")
            k, v = _map_entry(key_t, val_t, val, ctx, depth)
            out.setdefault(jname, {})[k] = v
        elif "r" in flags:
            lst = out.setdefault(jname, [])
            if wt == _LEN and typ in _NUMERIC:
                lst.extend(_packed(typ, val, ctx))
            else:
                lst.append(_value(typ, wt, val, ctx, depth))
        elif "i" in flags:
            inline.append(_value(typ, wt, val, ctx, depth))
        else:
            out[jname] = _value(typ, wt, val, ctx, depth)  # proto2: the last occurrence wins
    for jname, typ, flags in fields.values():
        if jname in out and typ in _OMITEMPTY_SCALARS:
            if "r" not in flags and "p" not in flags and _is_zero(out[jname]):
                del out[jname]  # Go omitempty on a non-pointer field
    for sub in inline:
        for k, v in sub.items():
            out.setdefault(k, v)
    return out


def decode_message(name: str, data: bytes | memoryview) -> dict[str, Any]:
    """Decode raw bytes of the schema message ``name`` (e.g. ``"apps.Deployment"``) to a dict.

    Exposed for tests and for callers that already unwrapped ``runtime.Unknown``.
    """
    if name not in MESSAGES:
        raise ProtobufError(f"unknown protobuf message {name!r}")
    return _message(name, memoryview(data))


def decode_k8s_protobuf(body: bytes) -> dict[str, Any]:
    """Decode a whole ``application/vnd.kubernetes.protobuf`` body into a JSON-like dict.

    The result carries ``apiVersion`` and ``kind`` from the envelope's TypeMeta followed by the
    object's fields, i.e. the same dict ``json.loads`` of the equivalent JSON body would give.
    Raises ProtobufError on bad magic, truncated or malformed data, or a kind not in the table.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtobufError("protobuf body must be bytes")
    buf = memoryview(body)
    if len(buf) < len(MAGIC) or bytes(buf[: len(MAGIC)]) != MAGIC:
        raise ProtobufError("not a Kubernetes protobuf body: missing the 'k8s\\x00' magic prefix")
    api_version = kind = content_encoding = ""
    raw = memoryview(b"")
    for num, wt, val in _iter_fields(buf[len(MAGIC) :]):
        if num == 1 and wt == _LEN:
            for tnum, twt, tval in _iter_fields(val):
                if tnum == 1:
                    api_version = _scalar("string", twt, tval, "TypeMeta.apiVersion")
                elif tnum == 2:
                    kind = _scalar("string", twt, tval, "TypeMeta.kind")
        elif num == 2 and wt == _LEN:
            raw = val
        elif num == 3 and wt == _LEN:
            content_encoding = _scalar("string", wt, val, "Unknown.contentEncoding")
    if content_encoding:
        raise ProtobufError(f"unsupported protobuf contentEncoding {content_encoding!r}")
    if not kind:
        raise ProtobufError("protobuf envelope has no kind in its TypeMeta")
    msg = KINDS.get((api_version, kind))
    if msg is None and kind == "DeleteOptions":
        msg = "meta.DeleteOptions"  # clients tag DeleteOptions with the group they talk to
    if msg is None:
        raise ProtobufError(f"unknown kind for protobuf decoding: {api_version or '<none>'}/{kind}")
    obj = _message(msg, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}
