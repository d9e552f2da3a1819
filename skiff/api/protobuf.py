"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts a JSON body would give.

kubectl 1.32's typed clients send ``Content-Type: application/vnd.kubernetes.protobuf`` and client-go has no
JSON fallback for it, so the server must read these bodies. The wire format mirrors apimachinery's protobuf
serializer (``apimachinery/pkg/runtime/serializer/protobuf/protobuf.go``): the magic ``k8s\\x00`` followed by
a ``runtime.Unknown`` envelope ``{typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3,
contentType=4}``; ``raw`` is the gogo-protobuf encoding of the object, described by the table in
`skiff.api.protobuf_types`.

Kubernetes protos use proto2 ``optional`` semantics: a field that is on the wire stays in the dict even when
its value is zero (``replicas: 0``); an absent field stays absent. The one exception mirrors JSON
``omitempty``: gogo always writes non-pointer scalars, so a zero value of a field flagged ``z`` is dropped.
Responses stay JSON; nothing here encodes protobuf.

Pure and synchronous; never mutates its input.
"""

from __future__ import annotations

import base64
import datetime as dt
import struct
from typing import Any, Final

import orjson

from skiff.api.protobuf_types import KINDS, MESSAGES

PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
MAGIC: Final = b"k8s\x00"

_MAX_DEPTH: Final = 100
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Wire types (protobuf encoding spec).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_SCALAR_WIRE: Final[dict[str, int]] = {
    "string": _LEN,
    "bytes": _LEN,
    "int32": _VARINT,
    "int64": _VARINT,
    "uint32": _VARINT,
    "uint64": _VARINT,
    "bool": _VARINT,
    "double": _I64,
    "float": _I32,
}
_SPECIAL: Final = frozenset(
    {"quantity", "time", "microtime", "intorstring", "rawextension", "duration", "fieldsv1", "stringlist"}
)


class ProtobufError(ValueError):
    """The body is not a decodable Kubernetes protobuf message (bad framing, unknown kind, bad field)."""


def decode_request(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00``-framed ``runtime.Unknown`` body into the object's JSON-shaped dict.

    The result carries ``apiVersion``/``kind`` from the envelope (as a JSON body would). Raises
    `ProtobufError` for a missing magic, a compressed payload, an unknown (apiVersion, kind) or a
    malformed message. ``DeleteOptions`` is accepted under any apiVersion, as upstream registers it in
    every group version.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body does not start with the k8s\\x00 magic prefix")
    envelope = _fields(body[len(MAGIC) :], "<envelope>")
    type_meta = _last(envelope, 1, _LEN, "typeMeta")
    tm = _fields(type_meta or b"", "typeMeta")
    api_version = _text(_last(tm, 1, _LEN, "typeMeta.apiVersion") or b"", "typeMeta.apiVersion")
    kind = _text(_last(tm, 2, _LEN, "typeMeta.kind") or b"", "typeMeta.kind")
    encoding = _text(_last(envelope, 3, _LEN, "contentEncoding") or b"", "contentEncoding")
    if encoding:
        raise ProtobufError(f"unsupported protobuf contentEncoding {encoding!r}")
    message = KINDS.get((api_version, kind))
    if message is None and kind == "DeleteOptions":
        message = "meta/v1.DeleteOptions"
    if message is None:
        raise ProtobufError(f"no protobuf message known for apiVersion {api_version!r}, kind {kind!r}")
    raw = _last(envelope, 2, _LEN, "raw") or b""
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(decode_message(message, raw))
    return obj


def decode_message(message: str, data: bytes) -> dict[str, Any]:
    """Decode ``data`` as the table message ``message`` (e.g. ``"core/v1.PodSpec"``) into a JSON dict.

    Unknown field numbers are skipped, as gogo-generated ``Unmarshal`` does.
    """
    if message not in MESSAGES:
        raise ProtobufError(f"unknown protobuf message {message!r}")
    return _message(message, data, "", 0)


# ---------------------------------------------------------------- wire level


def _varint(data: bytes, i: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(data):
            raise ProtobufError(f"{path or '<root>'}: truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"{path or '<root>'}: varint too long")


_Field = tuple[int, int, int | bytes]  # (number, wire type, value: int for varint, bytes otherwise)


def _fields(data: bytes, path: str) -> list[_Field]:
    """Split a message into (number, wire type, value) in wire order; rejects groups and truncation."""
    out: list[_Field] = []
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i, path)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"{path or '<root>'}: invalid field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, i = _varint(data, i, path)
        elif wire == _LEN:
            length, i = _varint(data, i, path)
            if i + length > n:
                raise ProtobufError(f"{path or '<root>'}: field {number} overruns the message")
            value = data[i : i + length]
            i += length
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if i + size > n:
                raise ProtobufError(f"{path or '<root>'}: truncated fixed-width field {number}")
            value = data[i : i + size]
            i += size
        else:
            raise ProtobufError(f"{path or '<root>'}: unsupported wire type {wire} for field {number}")
        out.append((number, wire, value))
    return out


def _last(fields: list[_Field], number: int, wire: int, path: str) -> bytes | None:
    """The last length-delimited occurrence of ``number`` (proto: last one wins), or None."""
    found: bytes | None = None
    for num, w, value in fields:
        if num == number:
            if w != wire or not isinstance(value, bytes):
                raise ProtobufError(f"{path}: wire type {w} where {wire} was expected")
            found = value
    return found


def _text(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtobufError(f"{path}: invalid UTF-8 in string field") from e


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# ---------------------------------------------------------------- table driven decoding


def _message(message: str, data: bytes, path: str, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise ProtobufError(f"{path}: message nesting deeper than {_MAX_DEPTH}")
    spec = MESSAGES[message]
    out: dict[str, Any] = {}
    # A non-repeated embedded message may arrive in pieces; proto merges them, which equals decoding the
    # concatenation. Keys are assigned on first sight so the dict keeps wire (= Go struct) order.
    parts: dict[int, list[bytes]] = {}
    for number, wire, value in _fields(data, path):
        field = spec.get(number)
        if field is None:
            continue
        name, typ, flags = field
        fpath = f"{path}.{name}" if path else name
        if typ.startswith("map:"):
            _, ktyp, vtyp = typ.split(":", 2)
            key, val = _map_entry(ktyp, vtyp, _expect_len(value, wire, fpath), fpath, depth)
            out.setdefault(name, {})[key] = val
        elif "r" in flags:
            out.setdefault(name, []).extend(_repeated(typ, wire, value, fpath, depth))
        elif typ in _SCALAR_WIRE:
            out[name] = _scalar(typ, wire, value, fpath)
        else:
            seen = parts.setdefault(number, [])
            seen.append(_expect_len(value, wire, fpath))
            decoded = _value(typ, b"".join(seen), fpath, depth)
            if "i" in flags and isinstance(decoded, dict):
                out.update(decoded)
            else:
                out[name] = decoded
    for name, typ, flags in spec.values():
        if "z" in flags and typ in _SCALAR_WIRE and name in out and out[name] in ("", 0, False):
            del out[name]
    return out


def _expect_len(value: int | bytes, wire: int, path: str) -> bytes:
    if wire != _LEN or not isinstance(value, bytes):
        raise ProtobufError(f"{path}: wire type {wire} where a length-delimited value was expected")
    return value


def _repeated(typ: str, wire: int, value: int | bytes, path: str, depth: int) -> list[Any]:
    """One wire occurrence of a repeated field: a single element, or a packed run of numeric scalars."""
    if typ in _SCALAR_WIRE and _SCALAR_WIRE[typ] != _LEN and wire == _LEN:
        assert isinstance(value, bytes)
        return _packed(typ, value, path)
    if typ in _SCALAR_WIRE:
        return [_scalar(typ, wire, value, path)]
    return [_value(typ, _expect_len(value, wire, path), path, depth)]


def _packed(typ: str, data: bytes, path: str) -> list[Any]:
    elem_wire = _SCALAR_WIRE[typ]
    out: list[Any] = []
    i = 0
    while i < len(data):
        if elem_wire == _VARINT:
            v, i = _varint(data, i, path)
            out.append(_scalar(typ, _VARINT, v, path))
        else:
            size = 8 if elem_wire == _I64 else 4
            if i + size > len(data):
                raise ProtobufError(f"{path}: truncated packed field")
            out.append(_scalar(typ, elem_wire, data[i : i + size], path))
            i += size
    return out


def _scalar(typ: str, wire: int, value: int | bytes, path: str) -> Any:
    if wire != _SCALAR_WIRE[typ]:
        raise ProtobufError(f"{path}: wire type {wire} does not match field type {typ}")
    if typ == "string":
        assert isinstance(value, bytes)
        return _text(value, path)
    if typ == "bytes":
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode("ascii")
    if typ == "double":
        assert isinstance(value, bytes)
        return struct.unpack("<d", value)[0]
    if typ == "float":
        assert isinstance(value, bytes)
        return struct.unpack("<f", value)[0]
    assert isinstance(value, int)
    if typ == "bool":
        return value != 0
    if typ == "int32":
        return _signed(value, 32)
    if typ == "int64":
        return _signed(value, 64)
    if typ == "uint32":
        return value & 0xFFFFFFFF
    return value & 0xFFFFFFFFFFFFFFFF


def _map_entry(ktyp: str, vtyp: str, entry: bytes, path: str, depth: int) -> tuple[str, Any]:
    """A map entry ``{key=1, value=2}``; a missing half takes its zero value, as in Go maps."""
    key: Any = ""
    val: Any = None
    for number, wire, value in _fields(entry, path):
        if number == 1:
            key = _scalar(ktyp, wire, value, path)
        elif number == 2:
            if vtyp in _SCALAR_WIRE:
                val = _scalar(vtyp, wire, value, path)
            else:
                val = _value(vtyp, _expect_len(value, wire, path), f"{path}[{key!r}]", depth)
    if val is None:
        val = _zero(vtyp, path, depth)
    return str(key), val


def _zero(typ: str, path: str, depth: int) -> Any:
    if typ in ("string", "bytes"):
        return ""
    if typ == "bool":
        return False
    if typ in _SCALAR_WIRE:
        return 0
    return _value(typ, b"", path, depth)


def _value(typ: str, data: bytes, path: str, depth: int) -> Any:
    """Decode a length-delimited message value: a special apimachinery type or a table message."""
    if typ in _SPECIAL:
        return _special(typ, data, path)
    if typ not in MESSAGES:
        raise ProtobufError(f"{path}: no table entry for message {typ!r}")
    return _message(typ, data, path, depth + 1)


# ---------------------------------------------------------------- apimachinery special types


def _special(typ: str, data: bytes, path: str) -> Any:
    fields = _fields(data, path)
    if typ == "quantity":
        # resource.Quantity {string=1}; the zero Quantity marshals to JSON "0".
        return _text(_last(fields, 1, _LEN, path) or b"", path) or "0"
    if typ in ("time", "microtime"):
        seconds = nanos = 0
        for number, wire, value in fields:
            if wire == _VARINT and isinstance(value, int):
                if number == 1:
                    seconds = _signed(value, 64)
                elif number == 2:
                    nanos = _signed(value, 32)
        return format_time(seconds, nanos, micro=typ == "microtime")
    if typ == "intorstring":
        # intstr.IntOrString {type=1 (0 Int, 1 String), intVal=2, strVal=3}.
        kind = int_val = 0
        str_val = ""
        for number, _wire, value in fields:
            if number == 1 and isinstance(value, int):
                kind = _signed(value, 64)
            elif number == 2 and isinstance(value, int):
                int_val = _signed(value, 32)
            elif number == 3 and isinstance(value, bytes):
                str_val = _text(value, path)
        return str_val if kind == 1 else int_val
    if typ == "duration":
        nanos = 0
        for number, wire, value in fields:
            if number == 1 and wire == _VARINT and isinstance(value, int):
                nanos = _signed(value, 64)
        return format_duration(nanos)
    if typ == "stringlist":
        # Named []string types (authentication ExtraValue): {repeated string items=1}.
        return [_text(_expect_len(v, w, path), path) for n, w, v in fields if n == 1]
    # rawextension {raw=1} and metav1.FieldsV1 {Raw=1}: embedded JSON (or a nested protobuf object).
    raw = _last(fields, 1, _LEN, path)
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_request(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ProtobufError(f"{path}: embedded object is neither JSON nor k8s protobuf") from e


def format_time(seconds: int, nanos: int, *, micro: bool = False) -> str | None:
    """metav1.Time (``2006-01-02T15:04:05Z``) or MicroTime (``...05.000000Z``) JSON form; zero → None.

    Mirrors ``Time.MarshalJSON``: the zero time is JSON ``null`` and Time drops sub-second precision.
    """
    if seconds == 0 and nanos == 0:
        return None
    try:
        when = _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as e:
        raise ProtobufError(f"timestamp out of range: {seconds}s") from e
    if micro:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(nanos: int) -> str:
    """Go ``time.Duration.String()``: ``1h2m3.5s``, ``1.5s``, ``500ms``, ``1µs``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _fraction(n, size) + unit
    hours, rem = divmod(n, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h{minutes}m"
    elif minutes:
        out += f"{minutes}m"
    return out + _fraction(rem, 1_000_000_000) + "s"


def _fraction(n: int, unit: int) -> str:
    whole, frac = divmod(n, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")
