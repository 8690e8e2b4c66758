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
from dataclasses import dataclass
from typing import BinaryIO

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


# ---------------------------------------------------------------- messages still on disk

WINDOW = 64 * 1024  # bytes fetched per read while walking a message that lives on disk


class ReadCapError(WireError):
    """The cap on bytes read from one file was reached before the message was walked."""


class FileBudget:
    """One open file read by wire fields, with a cap on the bytes readers take from it.

    Large files (a saved_model.pb padded with a gigabyte-long unknown field) are never read
    whole: fields are walked in windows, fields nobody asks for are skipped by seeking, and
    every byte handed to a caller counts against ``limit``.
    """

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle = handle
        self.limit = limit
        self.used = 0

    def charge(self, count: int) -> None:
        if self.used + count > self.limit:
            raise ReadCapError(f"reading {count} more bytes would pass the {self.limit}-byte "
                               f"read cap ({self.used} bytes read so far)")
        self.used += count

    def fetch(self, offset: int, length: int) -> memoryview:
        """Raw bytes at ``offset`` (not charged: callers charge what they keep)."""
        self.handle.seek(offset)
        data = self.handle.read(length)
        if len(data) != length:
            raise WireError(f"file ends {length - len(data)} bytes inside a field")
        return memoryview(data)


@dataclass(frozen=True)
class Span:
    """A length-delimited field left on disk; read with :func:`load` or walked with
    :func:`fields_of` only when a caller needs it."""

    budget: FileBudget
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length


Lazy = int | memoryview | Span


def open_span(budget: FileBudget, size: int) -> Span:
    """The whole file as one message."""
    return Span(budget, 0, size)


def load(value: Lazy, limit: int | None = None) -> memoryview:
    """A length-delimited field's bytes, read from disk (and charged) when still there."""
    if isinstance(value, int):
        raise WireError("expected a length-delimited field, found an integer")
    if limit is not None and len(value) > limit:
        raise ReadCapError(f"a {len(value)}-byte field exceeds the {limit}-byte limit")
    if isinstance(value, memoryview):
        return value
    value.budget.charge(value.length)
    return value.budget.fetch(value.offset, value.length)


def fields_of(value: Lazy) -> Iterator[tuple[int, int, Lazy]]:
    """The top-level fields of a message in memory or on disk. On disk, fields that fit in a
    read window come back as memoryviews (charged), bigger ones as unread :class:`Span`s."""
    if isinstance(value, int):
        raise WireError("expected a message, found an integer")
    if isinstance(value, memoryview):
        yield from iter_fields(value)
        return
    budget, pos, end = value.budget, value.offset, value.offset + value.length
    while pos < end:
        chunk = budget.fetch(pos, min(WINDOW, end - pos))
        whole = pos + len(chunk) == end
        cpos = 0
        while cpos < len(chunk):
            try:
                number, wire, item, after = _field_at(chunk, cpos)
            except _NeedMore as need:
                if whole:
                    raise WireError(str(need)) from None
                if need.length is None or need.header + need.length <= WINDOW:
                    if cpos == 0:  # a full window always holds a header or a small field
                        raise WireError(str(need)) from None
                    break  # refill from this field's start
                start = pos + cpos
                if start + need.header + need.length > end:
                    raise WireError(f"field {need.number} length {need.length} runs past "
                                    "the end") from None
                budget.charge(need.header)
                yield need.number, LEN, Span(budget, start + need.header, need.length)
                cpos += need.header + need.length
                break
            budget.charge(after - cpos)
            yield number, wire, item
            cpos = after
        pos += cpos


class _NeedMore(Exception):
    """The field at this position does not fit in the current window."""

    def __init__(self, number: int, header: int, length: int | None) -> None:
        super().__init__(f"field {number} is truncated")
        self.number, self.header, self.length = number, header, length


def _field_at(buf: memoryview, pos: int) -> tuple[int, int, Value, int]:
    """One field at ``pos``: (number, wire type, value, next position)."""
    end = len(buf)
    try:
        key, cur = read_varint(buf, pos, end)
    except WireError as exc:
        if "truncated" in str(exc):
            raise _NeedMore(0, 0, None) from None
        raise
    number, wire = key >> 3, key & 7
    if number == 0 or number > _MAX_FIELD:
        raise WireError(f"invalid field number {number}")
    try:
        if wire == VARINT:
            value, cur = read_varint(buf, cur, end)
            return number, wire, value & 0xFFFFFFFFFFFFFFFF, cur
        if wire == LEN:
            length, body = read_varint(buf, cur, end)
            if length > end - body:
                raise _NeedMore(number, body - pos, length)
            return number, wire, buf[body:body + length], body + length
    except WireError as exc:
        if "truncated" in str(exc):
            raise _NeedMore(number, 0, None) from None
        raise
    size = {FIXED64: 8, FIXED32: 4}.get(wire)
    if size is None:
        raise WireError(f"unsupported wire type {wire} for field {number}")
    if end - cur < size:
        raise _NeedMore(number, 0, None)
    return number, wire, struct.unpack_from("<Q" if size == 8 else "<I", buf, cur)[0], cur + size


def parse_lazy(value: Lazy) -> dict[int, list[Lazy]]:
    """Like :func:`parse` for a message in memory or on disk (big fields stay on disk)."""
    fields: dict[int, list[Lazy]] = {}
    for number, _wire, item in fields_of(value):
        fields.setdefault(number, []).append(item)
    return fields
