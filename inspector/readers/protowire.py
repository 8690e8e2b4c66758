"""A minimal protobuf wire-format decoder, so SavedModel files can be read without TensorFlow.

There are no generated TensorFlow message classes without TensorFlow itself, so readers decode
the few fields they need by field number. Decoding is schema-driven by the caller and never
recursive here: a message is split into its top-level fields, and the caller decides which
length-delimited fields to split further. Every length is checked against the buffer, so a
truncated or hostile file raises :class:`WireError` (never ``IndexError``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

# Wire types.
VARINT = 0
FIXED64 = 1
LEN = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

Value = int | memoryview
Fields = dict[int, list[Value]]

_MAX_FIELD = (1 << 29) - 1


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Value]]:
    """Yield (field number, wire type, value) for each top-level field of one message.

    Varints come back as unsigned ints (64-bit wrapped), fixed32/fixed64 as unsigned ints,
    length-delimited fields as zero-copy memoryviews. Groups (obsolete) are rejected.
    """
    buf = data if isinstance(data, memoryview) else memoryview(data)
    if buf.ndim != 1 or buf.itemsize != 1:
        buf = buf.cast("B")
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD:
            raise WireError(f"invalid field number {number}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield number, wire, value & 0xFFFFFFFFFFFFFFFF
        elif wire == LEN:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise WireError(f"field {number} length {length} runs past the end")
            yield number, wire, buf[pos:pos + length]
            pos += length
        elif wire == FIXED64:
            if end - pos < 8:
                raise WireError("truncated fixed64")
            yield number, wire, struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == FIXED32:
            if end - pos < 4:
                raise WireError("truncated fixed32")
            yield number, wire, struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire} for field {number}")


def parse(data: bytes | memoryview) -> Fields:
    """Group a message's top-level fields by number, in order of appearance."""
    fields: Fields = {}
    for number, _wire, value in iter_fields(data):
        fields.setdefault(number, []).append(value)
    return fields


def _last(fields: Fields, number: int) -> Value | None:
    values = fields.get(number)
    return values[-1] if values else None


def get_int(fields: Fields, number: int, default: int = 0) -> int:
    """A scalar integer field (proto3: the last occurrence wins)."""
    value = _last(fields, number)
    if value is None:
        return default
    if not isinstance(value, int):
        raise WireError(f"field {number} is not an integer")
    return value


def get_sint64(fields: Fields, number: int, default: int = 0) -> int:
    """An ``int64``/``int32`` field: varints carry negatives as 64-bit two's complement."""
    value = get_int(fields, number, default)
    return value - (1 << 64) if value >= 1 << 63 else value


def get_bool(fields: Fields, number: int) -> bool:
    return bool(get_int(fields, number, 0))


def get_bytes(fields: Fields, number: int) -> memoryview | None:
    value = _last(fields, number)
    if value is None:
        return None
    if isinstance(value, int):
        raise WireError(f"field {number} is not length-delimited")
    return value


def get_str(fields: Fields, number: int, default: str = "") -> str:
    raw = get_bytes(fields, number)
    if raw is None:
        return default
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"field {number} is not valid UTF-8") from exc


def get_msgs(fields: Fields, number: int) -> list[memoryview]:
    """Every occurrence of a repeated (or scalar) message field, undecoded."""
    out: list[memoryview] = []
    for value in fields.get(number, []):
        if isinstance(value, int):
            raise WireError(f"field {number} is not length-delimited")
        out.append(value)
    return out


def get_msg(fields: Fields, number: int) -> Fields | None:
    """A singular sub-message, decoded one level; ``None`` when absent."""
    raw = get_bytes(fields, number)
    return None if raw is None else parse(raw)


def get_packed_ints(fields: Fields, number: int) -> list[int]:
    """A repeated integer field, accepting both packed and unpacked encodings."""
    out: list[int] = []
    for value in fields.get(number, []):
        if isinstance(value, int):
            out.append(value)
            continue
        pos, end = 0, len(value)
        while pos < end:
            item, pos = read_varint(value, pos, end)
            out.append(item)
    return out


def get_map(fields: Fields, number: int) -> dict[str, memoryview]:
    """A ``map<string, Message>`` field: entries are messages with key = 1, value = 2."""
    out: dict[str, memoryview] = {}
    for entry in get_msgs(fields, number):
        item = parse(entry)
        out[get_str(item, 1)] = get_bytes(item, 2) or memoryview(b"")
    return out
