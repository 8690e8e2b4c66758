"""Read a TensorFlow checkpoint bundle (``variables.index`` + ``variables.data-*``) statically.

The index is a LevelDB-style table: a 48-byte footer points at an index block whose entries
point at data blocks; block entries are prefix-compressed keys with restart points, and every
block is followed by a compression byte and a masked CRC32C. Each value is a BundleEntryProto
(dtype, shape, shard, offset, size) locating raw little-endian tensor bytes in a data shard.
Values are never loaded up front: each tensor gets a :class:`TensorSource` that seeks and
reads in chunks when statistics ask for it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import ErrorKind, KinspectError
from . import protowire as pw
from .tf_proto import TF_DTYPES, decode_shape, dtype_name

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_INDEX_BYTES = 256 << 20  # an index far beyond any real model's is refused, not slurped
_CHUNK_BYTES_CAP = 1 << 24


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli), used for table blocks; pure Python, so only for small blocks."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


class _TableReader:
    """Walk the (key, value) pairs of one table file held in memory."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = memoryview(data)

    def fail(self, message: str, kind: ErrorKind = ErrorKind.CORRUPT) -> KinspectError:
        return KinspectError(self.path, message, kind)

    def _handle(self, raw: memoryview, pos: int = 0) -> tuple[int, int, int]:
        offset, pos = pw.read_varint(raw, pos, len(raw))
        size, pos = pw.read_varint(raw, pos, len(raw))
        return offset, size, pos

    def _block(self, offset: int, size: int) -> memoryview:
        end = offset + size
        if end + BLOCK_TRAILER_SIZE > len(self.data) - FOOTER_SIZE:
            raise self.fail(f"block at {offset} (+{size} bytes) runs past the table")
        kind = self.data[end]
        if kind != 0:
            name = "snappy" if kind == 1 else f"type {kind}"
            raise self.fail(f"compressed checkpoint index blocks ({name}) are not supported",
                            ErrorKind.UNSUPPORTED)
        stored = struct.unpack_from("<I", self.data, end + 1)[0]
        if crc32c(self.data[offset:end + 1]) != unmask_crc(stored):
            raise self.fail(f"checksum mismatch in block at {offset}")
        return self.data[offset:end]

    def _entries(self, block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
        if len(block) < 4:
            raise self.fail("block too short for its restart count")
        restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
        limit = len(block) - 4 - 4 * restarts
        if restarts == 0 or limit < 0:
            raise self.fail("bad restart array in block")
        key = b""
        pos = 0
        while pos < limit:
            shared, pos = pw.read_varint(block, pos, limit)
            unshared, pos = pw.read_varint(block, pos, limit)
            value_len, pos = pw.read_varint(block, pos, limit)
            if shared > len(key) or unshared + value_len > limit - pos:
                raise self.fail("block entry runs past its block")
            key = key[:shared] + bytes(block[pos:pos + unshared])
            pos += unshared
            yield key, block[pos:pos + value_len]
            pos += value_len

    def items(self) -> Iterator[tuple[bytes, memoryview]]:
        if len(self.data) < FOOTER_SIZE:
            raise self.fail("checkpoint index is shorter than its footer")
        footer = self.data[len(self.data) - FOOTER_SIZE:]
        if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != TABLE_MAGIC:
            raise self.fail("not a TensorFlow checkpoint index (bad table magic)")
        _meta_off, _meta_size, pos = self._handle(footer)
        index_off, index_size, _ = self._handle(footer, pos)
        for _sep, handle in self._entries(self._block(index_off, index_size)):
            offset, size, _ = self._handle(handle)
            yield from self._entries(self._block(offset, size))


@dataclass(frozen=True)
class BundleEntry:
    """Where one saved tensor lives and what it is."""

    key: str
    dtype: str
    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int = 0
    sliced: bool = False

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class TensorSource:
    """Lazy reader of one tensor's bytes in a data shard (a ``WeightSource``)."""

    def __init__(self, data_path: str, entry: BundleEntry, byteorder: str = "<") -> None:
        code = TF_DTYPES[entry.dtype_enum].numpy
        if code is None:
            raise ValueError(f"{entry.dtype} has no numeric storage")
        self.data_path = data_path
        self.entry = entry
        self.stored = np.dtype(code).newbyteorder(byteorder) if code != "?" else np.dtype("?")
        self.bfloat16 = entry.dtype == "bfloat16"

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        if self.bfloat16:  # bfloat16 = the upper half of a float32
            return (raw.astype("<u4") << 16).view("<f4")
        return raw.astype(self.stored.newbyteorder("="), copy=False)

    def _read_exact(self, handle: BinaryIO, count: int) -> np.ndarray:
        want = count * self.stored.itemsize
        raw = handle.read(want)
        if len(raw) != want:
            raise KinspectError(self.data_path, f"tensor {self.entry.key!r} is truncated")
        return self._convert(np.frombuffer(raw, dtype=self.stored))

    def _open(self) -> BinaryIO:
        try:
            handle = open(self.data_path, "rb")  # noqa: SIM115 - closed by callers' with
        except OSError as exc:
            raise KinspectError(self.data_path, f"cannot read checkpoint data: {exc.strerror}",
                                ErrorKind.NOT_FOUND) from exc
        handle.seek(self.entry.offset)
        return handle

    def read(self) -> np.ndarray:
        with self._open() as handle:
            return self._read_exact(handle, self.entry.numel).reshape(self.entry.shape)

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        step = max(1, min(max_elements, _CHUNK_BYTES_CAP // self.stored.itemsize))
        remaining = self.entry.numel
        with self._open() as handle:
            while remaining > 0:
                count = min(step, remaining)
                yield self._read_exact(handle, count)
                remaining -= count


class CheckpointBundle:
    """The tensors of one checkpoint prefix (``<dir>/variables/variables``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self.entries: dict[str, BundleEntry] = {}
        self.num_shards = 1
        self.byteorder = "<"
        self._load()

    def _fail(self, message: str, kind: ErrorKind = ErrorKind.CORRUPT) -> KinspectError:
        return KinspectError(self.index_path, message, kind)

    def _load(self) -> None:
        if not os.path.isfile(self.index_path):
            raise self._fail("checkpoint index is missing or not a regular file",
                             ErrorKind.NOT_FOUND)
        try:
            size = os.path.getsize(self.index_path)
            if size > MAX_INDEX_BYTES:
                raise self._fail(f"checkpoint index of {size} bytes is too large",
                                 ErrorKind.TOO_LARGE)
            with open(self.index_path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise self._fail(f"cannot read checkpoint index: {exc.strerror}",
                             ErrorKind.NOT_FOUND) from exc
        try:
            header_seen = False
            for key, value in _TableReader(self.index_path, data).items():
                if key == b"":
                    self._read_header(value)
                    header_seen = True
                    continue
                entry = self._read_entry(key.decode("utf-8", "replace"), value)
                self.entries[entry.key] = entry
        except pw.WireError as exc:
            raise self._fail(f"malformed checkpoint index entry: {exc}") from exc
        if not header_seen:
            raise self._fail("checkpoint index has no bundle header")
        self._check_shards()

    def _read_header(self, value: memoryview) -> None:
        fields = pw.parse(value)
        self.num_shards = pw.get_int(fields, 1)
        if pw.get_int(fields, 2) == 1:
            self.byteorder = ">"
        if not 1 <= self.num_shards <= 100_000:
            raise self._fail(f"implausible shard count {self.num_shards}")

    def _read_entry(self, key: str, value: memoryview) -> BundleEntry:
        fields = pw.parse(value)
        enum = pw.get_int(fields, 1)
        shape = decode_shape(pw.get_bytes(fields, 2)) or ()
        if any(d is None for d in shape):
            raise self._fail(f"tensor {key!r} has an unknown dimension")
        return BundleEntry(
            key=key, dtype=dtype_name(enum), dtype_enum=enum,
            shape=tuple(int(d) for d in shape if d is not None),
            shard_id=pw.get_int(fields, 3), offset=pw.get_sint64(fields, 4),
            size=pw.get_sint64(fields, 5), crc32c=pw.get_int(fields, 6),
            sliced=bool(fields.get(7)))

    def data_path(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def _check_shards(self) -> None:
        """Every entry must lie inside an existing shard, so later reads cannot surprise."""
        sizes: dict[int, int] = {}
        for entry in self.entries.values():
            if entry.sliced:
                continue
            if not 0 <= entry.shard_id < self.num_shards:
                raise self._fail(f"tensor {entry.key!r} names shard {entry.shard_id} "
                                 f"of {self.num_shards}")
            if entry.shard_id not in sizes:
                path = self.data_path(entry.shard_id)
                if not os.path.isfile(path):  # missing, or a FIFO/device that could block
                    raise self._fail(f"checkpoint data file {os.path.basename(path)} is "
                                     "missing or not a regular file")
                sizes[entry.shard_id] = os.path.getsize(path)
            if entry.offset < 0 or entry.size < 0 or \
                    entry.offset + entry.size > sizes[entry.shard_id]:
                raise self._fail(f"tensor {entry.key!r} lies past the end of "
                                 f"{os.path.basename(self.data_path(entry.shard_id))}")
            code = TF_DTYPES.get(entry.dtype_enum)
            if code and code.numpy and entry.size != entry.numel * np.dtype(code.numpy).itemsize:
                raise self._fail(f"tensor {entry.key!r}: {entry.size} bytes do not match "
                                 f"shape {list(entry.shape)} of {entry.dtype}")

    def source(self, key: str) -> TensorSource | None:
        """A lazy value reader, or ``None`` for strings/resources and sliced tensors."""
        entry = self.entries.get(key)
        known = TF_DTYPES.get(entry.dtype_enum) if entry is not None else None
        if entry is None or entry.sliced or known is None or known.numpy is None:
            return None
        return TensorSource(self.data_path(entry.shard_id), entry, self.byteorder)

    def read_string_scalar(self, key: str, limit: int = 1 << 28) -> bytes | None:
        """A scalar DT_STRING tensor (varint length, 4-byte checksum, then the bytes)."""
        entry = self.entries.get(key)
        if entry is None or entry.dtype != "string" or entry.shape != () or entry.sliced:
            return None
        if entry.size > limit:
            raise self._fail(f"{key} of {entry.size} bytes is too large", ErrorKind.TOO_LARGE)
        try:
            with open(self.data_path(entry.shard_id), "rb") as handle:
                handle.seek(entry.offset)
                raw = memoryview(handle.read(entry.size))
        except OSError as exc:
            raise self._fail(f"cannot read {key}: {exc.strerror or exc}") from exc
        try:
            length, pos = pw.read_varint(raw, 0, len(raw))
        except pw.WireError as exc:
            raise self._fail(f"{key}: {exc}") from exc
        pos += 4
        if pos + length > len(raw):
            raise self._fail(f"{key} is truncated")
        return bytes(raw[pos:pos + length])
