"""Guarded HDF5 access: read-only opens, attribute decoding, link-safe traversal, lazy weights.

Keras files are untrusted input. h5py would happily follow soft links, external links (other
files on disk) and external/virtual dataset storage, and would read a dataset that declares
terabytes; every access from the readers goes through this module so none of that happens.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import h5py
import numpy as np

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import ContainerIssue

# A dataset may legitimately be larger than its file only when compressed; beyond this ratio
# (or beyond the file size for uncompressed data) the declared shape is a lie.
COMPRESSED_RATIO_LIMIT = 1024
ABSOLUTE_DATASET_LIMIT = 1 << 34  # 16 GiB, whatever the file size
MAX_DEPTH = 32  # Keras nests a few levels; deeper means a hard-link cycle or a hostile file
# HDF5 inflates a filtered chunk whole to read any part of it: a chunk bigger than this
# per-read budget cannot be streamed, so its dataset is refused (module constant: tests lower it).
MAX_CHUNK_BYTES = 64 << 20
H5Z_DEFLATE, H5Z_SHUFFLE, H5Z_FLETCHER32 = 1, 2, 3
# Parsed JSON costs ~30x its text in Python objects, and each object may become a layer the
# rules walk (~7 KB each): a config is refused past these counts (measured on
# keras.applications: NASNetLarge, 1041 layers, has 20k containers and 87k values).
MAX_JSON_CONTAINERS = 100_000  # objects + arrays
MAX_JSON_VALUES = 2_000_000    # every element and member (~ commas + colons)
MAX_JSON_DEPTH = 256


GCOL = b"GCOL"
_SCAN_BLOCK = 1 << 22


def global_heap_problem(fh: Any) -> str | None:
    """Why a global heap collection in ``fh`` would hang the HDF5 library, or None.

    libhdf5 parses a collection by jumping from object header to object header; a corrupt
    free-space header of size 0 makes that loop spin forever while holding the GIL (seen on
    fuzzed Keras files, on the first read of a string attribute). Collections are found by
    their signature and walked the same way here, in Python, before h5py touches them.
    """
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    offset = 0
    tail = b""
    covered = 0  # collections never overlap: signatures inside a walked one are its data
    while offset < size:
        fh.seek(offset)
        block = tail + fh.read(_SCAN_BLOCK)
        base = offset - len(tail)
        start = 0
        while True:
            i = block.find(GCOL, start)
            if i < 0:
                break
            if base + i >= covered:
                problem, end = _walk_collection(fh, base + i, size)
                if problem:
                    return problem
                covered = max(covered, end)
            start = i + 1
        offset += _SCAN_BLOCK
        tail = block[-3:]
    return None


def _walk_collection(fh: Any, at: int, file_size: int) -> tuple[str | None, int]:
    """(problem, end offset) of the collection at ``at``; (None, at) when it is not one."""
    fh.seek(at)
    header = fh.read(16)
    if len(header) < 16 or header[4] != 1 or header[5:8] != b"\0\0\0":
        return None, at  # the four bytes are data, not a collection header
    length = int.from_bytes(header[8:16], "little")
    if length < 4096 or at + length > file_size:
        return None, at
    fh.seek(at)
    chunk = fh.read(length)
    p = 16
    while p + 16 <= length:
        idx = int.from_bytes(chunk[p:p + 2], "little")
        obj_size = int.from_bytes(chunk[p + 8:p + 16], "little")
        need = obj_size if idx == 0 else 16 + ((obj_size + 7) // 8) * 8
        if need <= 0:
            return f"corrupt HDF5 global heap at byte {at} (object {idx} has size 0)", at
        p += need
    return None, at + length


def open_h5(source: str | os.PathLike[str] | Any, display_path: str) -> h5py.File:
    """Open an HDF5 file (path or file-like object) read-only, or raise a KinspectError."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as fh:
                problem = global_heap_problem(fh)
        else:
            problem = global_heap_problem(source)
            source.seek(0)
    except OSError as exc:
        raise KinspectError(display_path, f"cannot read file ({_short(exc)})",
                            ErrorKind.CORRUPT) from exc
    if problem:
        raise KinspectError(display_path, problem, ErrorKind.CORRUPT)
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise KinspectError(display_path, f"cannot read HDF5 data ({_short(exc)})",
                            ErrorKind.CORRUPT) from exc


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or type(exc).__name__


def clean_text(text: str) -> str:
    """``text`` without lone surrogates (JSON ``\\ud800`` escapes, surrogateescape'd bytes),
    which cannot be written as UTF-8; they become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_json(value: Any) -> Any:
    """Recursively apply clean_text to every string (keys included) of parsed JSON."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v)
                for k, v in value.items()}
    return value


class JsonTooLarge(ValueError):
    """JSON text whose parsed form would exceed the object/value/depth budget."""


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_counts(data: bytes) -> str | None:
    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        return f"{containers} JSON objects/arrays (limit {MAX_JSON_CONTAINERS})"
    values = data.count(b",") + data.count(b":")
    if values > MAX_JSON_VALUES:
        return f"about {values} JSON values (limit {MAX_JSON_VALUES})"
    depth = deepest = 0
    for byte in data.translate(None, _NOT_BRACKETS):  # <= 2 * MAX_JSON_CONTAINERS bytes
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        return f"JSON nested {deepest} levels deep (limit {MAX_JSON_DEPTH})"
    return None


def json_budget_problem(data: bytes) -> str | None:
    """Why parsing ``data`` would build too many Python objects or nest too deep, or None.

    A byte cap alone lets 57 MiB of ``{}`` become ~3 GB of dicts. Brackets, commas and colons
    are counted in C (bytes.count/translate); only when the raw counts exceed a limit are the
    strings blanked out and counted again, so brackets inside strings never refuse a file.
    """
    problem = _json_counts(data)
    if problem is None:
        return None
    strings = (data.count(b'"') - data.count(b'\\"')) // 2
    if strings > MAX_JSON_VALUES:  # every string is a key or a value
        return f"about {strings} JSON strings (limit {MAX_JSON_VALUES})"
    return _json_counts(_JSON_STRING.sub(b'""', data))


def load_json(text: str | bytes) -> Any:
    """``json.loads`` whose strings are always encodable; ValueError on bad JSON,
    JsonTooLarge (a ValueError) when it would exceed the object/value/depth budget."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    problem = json_budget_problem(data)
    if problem:
        raise JsonTooLarge(problem)
    return clean_json(json.loads(text))


def decode(value: Any) -> Any:
    """Turn an h5py attribute value into plain Python (str, int, float, list)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [decode(v) for v in value.tolist()] if value.ndim else decode(value.item())
    if isinstance(value, np.generic):
        return decode(value.item())
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def attr(obj: h5py.Group | h5py.Dataset, name: str, default: Any = None) -> Any:
    """One attribute, decoded; ``default`` when absent or unreadable."""
    try:
        if name not in obj.attrs:
            return default
        return decode(obj.attrs[name])
    except (OSError, RuntimeError, TypeError, ValueError, KeyError):  # corrupt metadata
        return default


def chunked_attr(obj: h5py.Group, name: str) -> list[Any] | None:
    """A list attribute Keras may split into ``name0``, ``name1``... when it exceeds 64 KiB."""
    value = attr(obj, name)
    if value is not None:
        return value if isinstance(value, list) else [value]
    parts: list[Any] = []
    index = 0
    while True:
        part = attr(obj, f"{name}{index}")
        if part is None:
            break
        parts.extend(part if isinstance(part, list) else [part])
        index += 1
    return parts if index else None


def _link_issue(link: Any, location: str) -> ContainerIssue | None:
    if isinstance(link, h5py.ExternalLink):
        return ContainerIssue("hdf5-external-link", location,
                              f"external link to {link.filename}:{link.path} (not followed)")
    if isinstance(link, h5py.SoftLink):
        return ContainerIssue("hdf5-soft-link", location,
                              f"soft link to {link.path} (not followed)")
    return None


class H5Guard:
    """Link-safe access below one HDF5 file; records what it refused in ``issues``."""

    def __init__(self, file: h5py.File, file_size: int, issues: list[ContainerIssue],
                 prefix: str = "") -> None:
        self.file = file
        self.file_size = max(int(file_size), 1)
        self.issues = issues
        self.prefix = prefix
        self._seen: set[tuple[str, str]] = set()
        self._walked: set[tuple[int, int]] = set()

    def _flag(self, issue: ContainerIssue) -> None:
        key = (issue.kind, issue.location)
        if key not in self._seen:
            self._seen.add(key)
            self.issues.append(issue)

    def child(self, group: h5py.Group, name: str) -> h5py.Group | h5py.Dataset | None:
        """``group[name]`` (a slash path is walked part by part) through hard links only."""
        current: Any = group
        for part in [p for p in name.split("/") if p]:
            if not isinstance(current, h5py.Group):
                return None
            try:
                link = current.get(part, getlink=True)
            except (KeyError, OSError, RuntimeError, ValueError):
                return None
            location = self.prefix + f"{current.name.rstrip('/')}/{part}"
            if link is None:
                return None
            issue = _link_issue(link, location)
            if issue is not None:
                self._flag(issue)
                return None
            try:
                current = current[part]
            except (KeyError, OSError, RuntimeError, ValueError):
                return None
        return current

    def names(self, group: h5py.Group) -> list[str]:
        try:
            return list(group.keys())
        except (OSError, RuntimeError, ValueError):
            return []

    def too_deep(self, depth: int, group: h5py.Group) -> bool:
        """True (and flagged) for a group already walked (hard links can form cycles) or
        nested past MAX_DEPTH: the caller must not descend into it."""
        try:
            key = (group.id.fileno, h5py.h5o.get_info(group.id).addr)
        except (AttributeError, OSError, RuntimeError, ValueError, TypeError):
            key = None
        if key is not None and key in self._walked:
            self._flag(ContainerIssue("hdf5-link-cycle", self.prefix + group.name,
                                      "group reached a second time through a hard link; "
                                      "not walked again"))
            return True
        if key is not None:
            self._walked.add(key)
        if depth <= MAX_DEPTH:
            return False
        self._flag(ContainerIssue(
            "hdf5-deep-nesting", self.prefix + group.name,
            f"groups nested deeper than {MAX_DEPTH} levels; not walked further"))
        return True

    def walk(self, group: h5py.Group, depth: int = 0
             ) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
        """Every hard-linked object below ``group`` (relative path, object), sorted by name."""
        if self.too_deep(depth, group):
            return
        for name in self.names(group):
            obj = self.child(group, name)
            if obj is None:
                continue
            yield name, obj
            if isinstance(obj, h5py.Group):
                for sub, sub_obj in self.walk(obj, depth + 1):
                    yield f"{name}/{sub}", sub_obj

    def dataset_ok(self, ds: h5py.Dataset) -> bool:
        """False (and flagged) for external/virtual storage and absurd declared sizes."""
        location = self.prefix + ds.name
        try:
            if ds.is_virtual:
                self._flag(ContainerIssue("hdf5-virtual-dataset", location,
                                          "virtual dataset (maps other files; not read)"))
                return False
            if ds.external:
                files = ", ".join(str(e[0]) for e in ds.external)
                self._flag(ContainerIssue("hdf5-external-storage", location,
                                          f"data stored in external file(s) {files} (not read)"))
                return False
            declared = int(ds.size) * int(ds.dtype.itemsize)
            compressed = ds.compression is not None or bool(ds.id.get_create_plist().get_nfilters())
        except (OSError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            self._flag(ContainerIssue("hdf5-unreadable-dataset", location, _short(exc)))
            return False
        limit = self.file_size * (COMPRESSED_RATIO_LIMIT if compressed else 1) + 4096
        if declared > min(limit, ABSOLUTE_DATASET_LIMIT) and declared > 4096:
            self._flag(ContainerIssue(
                "hdf5-oversized-dataset", location,
                f"declares {declared} bytes in a {self.file_size}-byte file (not read)"))
            return False
        if compressed:
            try:
                problem = chunk_problem(ds)
            except (OSError, RuntimeError, ValueError, TypeError, AttributeError,
                    zlib.error) as exc:
                problem = f"chunk index unreadable ({_short(exc)})"
            if problem:
                self._flag(ContainerIssue("hdf5-oversized-chunk", location,
                                          f"{problem}; stats skipped"))
                return False
        return True


def chunk_bytes(ds: h5py.Dataset) -> int | None:
    """Bytes of one whole chunk of ``ds`` once unfiltered; None for contiguous storage."""
    if not ds.chunks:
        return None
    size = int(ds.dtype.itemsize)
    for d in ds.chunks:
        size *= int(d)
    return size


def chunk_problem(ds: h5py.Dataset) -> str | None:
    """Why reading a filtered dataset could inflate more than MAX_CHUNK_BYTES at once.

    HDF5 decompresses a whole chunk to read any element of it, and its deflate filter grows
    the output buffer for as long as the stream goes on, whatever size the chunk declares.
    So the declared chunk size must fit the budget, and every stored deflate chunk is
    inflated here first (bounded by ``max_length``) to prove it stops at that size.
    """
    one = chunk_bytes(ds)
    if one is None:
        return None
    if one > MAX_CHUNK_BYTES:
        return (f"one chunk inflates to {one} bytes, over the {MAX_CHUNK_BYTES}-byte "
                "per-read budget (HDF5 cannot read part of a compressed chunk)")
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if H5Z_DEFLATE not in filters:
        return None  # other filters bound their output by the chunk size (lzf: ~100x)
    if not set(filters) <= {H5Z_DEFLATE, H5Z_SHUFFLE, H5Z_FLETCHER32}:
        return f"deflate combined with filters {filters} cannot be checked before reading"
    deflate_bit = 1 << filters.index(H5Z_DEFLATE)
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
        if mask & deflate_bit:
            continue  # stored uncompressed: HDF5 reads exactly its bytes
        inflater = zlib.decompressobj()
        if len(inflater.decompress(raw, one + 1)) > one:
            return (f"chunk {i} inflates past its declared {one} bytes "
                    "(a deflate bomb under a small chunk size)")
    return None


class LazyH5:
    """Opens an HDF5 file on first use and keeps it open until ``close()``.

    ``opener`` returns the h5py.File (from a path or from a zip member); weights of a whole
    model share one instance so streaming statistics do not reopen the file per tensor.
    """

    def __init__(self, opener: Callable[[], h5py.File], file: h5py.File | None = None) -> None:
        self._opener = opener
        self._file: h5py.File | None = file
        # File-like objects under an h5py.File opened from Python objects (zip members);
        # h5py does not close them itself.
        self.owned: list[Any] = []

    def get(self) -> h5py.File:
        if self._file is None:
            self._file = self._opener()
        return self._file

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self._file = None
            while self.owned:
                self.owned.pop().close()


class H5WeightSource:
    """WeightSource over one dataset: whole reads for small tensors, slices for big ones."""

    def __init__(self, lazy: LazyH5, dataset_path: str, shape: tuple[int, ...],
                 readable: bool = True) -> None:
        self.lazy = lazy
        self.dataset_path = dataset_path
        self.shape = tuple(int(d) for d in shape)
        self.readable = readable

    def _dataset(self) -> h5py.Dataset:
        if not self.readable:
            raise ValueError(f"{self.dataset_path}: dataset refused by the container guard")
        obj = self.lazy.get().get(self.dataset_path)
        if not isinstance(obj, h5py.Dataset):
            raise ValueError(f"{self.dataset_path}: not a dataset")
        return obj

    def read(self) -> np.ndarray:
        ds = self._dataset()
        return np.asarray(ds[()])

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        ds = self._dataset()
        max_elements = max(1, int(max_elements))
        if not self.shape:
            yield np.asarray(ds[()]).reshape(-1)
            return
        one = chunk_bytes(ds)
        if one is not None and one > max_elements * int(ds.dtype.itemsize):
            # Slices smaller than a chunk would inflate that chunk once per slice: read
            # whole chunks (the guard keeps each within MAX_CHUNK_BYTES) and split them.
            for where in ds.iter_chunks():
                flat = np.asarray(ds[where]).reshape(-1)
                for start in range(0, flat.size, max_elements):
                    yield flat[start:start + max_elements]
            return
        yield from _slices(ds, (), self.shape, max_elements)


def _slices(ds: h5py.Dataset, prefix: tuple[int, ...], shape: tuple[int, ...],
            max_elements: int) -> Iterator[np.ndarray]:
    """Flat chunks of ``ds[prefix]`` (sub-array of ``shape``) of at most max_elements values."""
    if not shape:
        yield np.asarray(ds[prefix]).reshape(-1)
        return
    row = 1
    for d in shape[1:]:
        row *= d
    if row == 0 or shape[0] == 0:
        return
    if row <= max_elements:
        step = max(1, max_elements // row)
        for start in range(0, shape[0], step):
            stop = min(shape[0], start + step)
            yield np.asarray(ds[(*prefix, slice(start, stop))]).reshape(-1)
        return
    for i in range(shape[0]):
        yield from _slices(ds, (*prefix, i), shape[1:], max_elements)
