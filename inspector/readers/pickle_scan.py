"""Pickle streams other applications hide in HDF5 model files, listed without unpickling.

Keras never reads groups outside its own (``model_weights``, ``optimizer_weights``, layer
groups), but the application that ships a file may keep Python pickles there (medaka stores
``meta/model_function`` and friends as ``np.void(pickle.dumps(...))``) and unpickle them when
it opens the file: whatever those pickles import then runs. The imports are read here with
``pickletools.genops`` over a bounded prefix of the bytes; nothing is ever unpickled.
"""

from __future__ import annotations

import pickle
import pickletools
import re
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from inspector.graph import ContainerIssue, EmbeddedPickle, ModelGraph
from inspector.readers.safe_io import H5Guard

MAX_PICKLE_BYTES = 1 << 20  # bytes read from one dataset or attribute
MAX_OBJECTS = 5000          # groups and datasets examined per file
MAX_IMPORTS = 32            # distinct imports kept per stream
MAX_OPS = 200_000           # opcodes parsed per stream (~0.2 s)
MAX_VLEN_ITEMS = 16         # variable-length datasets: only small ones (first element read)
# Root attributes Keras writes (layer_names may be chunked: layer_names0, layer_names1...).
KERAS_ROOT_ATTRS = re.compile(r"^(model_config|training_config|keras_version|backend|"
                              r"layer_names\d*)$")
KERAS_GROUPS = frozenset({"model_weights", "optimizer_weights"})

_PROTOCOL0 = re.compile(rb"^c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")  # GLOBAL as first opcode
_OLD_STARTS = {b"(", b"]", b"}", b")"}  # MARK, EMPTY_LIST, EMPTY_DICT, EMPTY_TUPLE
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXTS = frozenset({"EXT1", "EXT2", "EXT4"})


def pickle_protocol(data: bytes) -> int | None:
    """The protocol ``data`` claims: 2-5 from its PROTO header; 0 for what may be a protocol
    0/1 stream (no header: a GLOBAL or a container opcode first, STOP last), which
    ``inspect_bytes`` only keeps when it parses whole and imports something."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return data[1]
    if data[-1:] == pickle.STOP and (data[:1] in _OLD_STARTS or _PROTOCOL0.match(data[:512])):
        return 0
    return None


def pickle_imports(data: bytes, truncated: bool = False) -> tuple[list[str], bool, str | None]:
    """(``module.name`` imports, parsed to STOP, why it stopped early) of one pickle stream.

    GLOBAL and INST carry their names; STACK_GLOBAL takes them from the two values pushed
    before it, which may come back from the memo (BINGET of a MEMOIZEd string), so the last
    two pushed values and the memo's strings are tracked. Names that are not constants, and
    EXT1/2/4 (copyreg extension codes), are listed as ``<computed>``. ``truncated``: ``data``
    is only a prefix of the stored bytes.
    """
    imports: list[str] = []
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []   # the last two values pushed (str or None)
    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(data)):
            name = op.name
            if name == "STOP":
                return imports, True, None
            if count >= MAX_OPS:
                return imports, False, f"stopped after {MAX_OPS} opcodes"
            pushed: str | None = None
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                _add(imports, module, attr)
            elif name == "STACK_GLOBAL":
                module, attr = [None, None, *recent][-2:]
                _add(imports, module, attr)
            elif name in _EXTS:  # an import named by the loading process's copyreg table
                _add(imports, None, None)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
                continue
            elif name in _PUTS:
                memo[int(arg)] = recent[-1] if recent else None
                continue
            elif name in _GETS:
                pushed = memo.get(int(arg))
            elif isinstance(arg, str):
                pushed = arg
            elif not op.stack_after:
                continue
            recent = [*recent[-1:], pushed]
            if len(imports) >= MAX_IMPORTS:
                return imports, False, f"stopped after {MAX_IMPORTS} imports"
    except (ValueError, EOFError, IndexError, KeyError, TypeError, OverflowError) as exc:
        where = "cut at the read cap" if truncated else f"malformed ({exc})"
        return imports, False, where[:160]
    return imports, False, "cut at the read cap" if truncated else "no STOP opcode"


def _add(imports: list[str], module: Any, attr: Any) -> None:
    full = (f"{module}.{attr}" if isinstance(module, str) and isinstance(attr, str)
            else "<computed>")
    if full not in imports:
        imports.append(full)


def inspect_bytes(data: bytes, location: str, attribute: str | None, size: int,
                  ) -> EmbeddedPickle | None:
    """An EmbeddedPickle when ``data`` (a prefix of ``size`` stored bytes) is a pickle."""
    protocol = pickle_protocol(data)
    if protocol is None:
        return None
    imports, complete, stopped = pickle_imports(data, truncated=size > len(data))
    if protocol == 0 and not (complete and imports):
        return None  # text that merely looks like an old pickle, or plain data
    return EmbeddedPickle(location=location, attribute=attribute, protocol=protocol,
                          size=size, imports=imports, complete=complete, stopped=stopped)


def _byte_like(dt: np.dtype) -> bool:
    """Dtypes serialized objects are stored as: opaque, byte strings, (u)int8, vlen bytes."""
    if dt.kind == "V":
        return dt.fields is None
    if dt.kind in "SU" or (dt.kind in "ui" and dt.itemsize == 1):
        return True
    return dt.kind == "O" and (h5py.check_string_dtype(dt) is not None
                               or h5py.check_vlen_dtype(dt) in (np.uint8, np.int8))


def _to_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind == "O":
            return _to_bytes(value.reshape(-1)[0]) if value.size else None
        return value.tobytes()
    return None


def _dataset_head(guard: H5Guard, ds: h5py.Dataset) -> tuple[bytes, int] | None:
    """(first bytes, stored size) of a byte-like dataset, reading at most MAX_PICKLE_BYTES.

    Variable-length items are read whole (first element only): their bytes sit uncompressed
    in the file's global heap, so they are bounded by the file size.
    """
    dt = ds.dtype
    if not _byte_like(dt) or ds.ndim > 1 or not guard.dataset_ok(ds):
        return None
    if dt.kind == "O":
        if ds.size == 0 or ds.size > MAX_VLEN_ITEMS:
            return None
        data = _to_bytes(ds[()] if ds.ndim == 0 else ds[0])
        return (data[:MAX_PICKLE_BYTES], len(data)) if data else None
    size = int(ds.size) * dt.itemsize
    if ds.ndim == 0:
        if size > MAX_PICKLE_BYTES:
            return None  # one opaque blob cannot be read in part through h5py
        data = _to_bytes(ds[()])
    else:
        data = _to_bytes(ds[:max(1, MAX_PICKLE_BYTES // max(dt.itemsize, 1))])
    return (data[:MAX_PICKLE_BYTES], size) if data else None


def _attr_head(obj: h5py.HLObject, name: str) -> tuple[bytes, int] | None:
    try:
        aid = obj.attrs.get_id(name)
        if aid.get_storage_size() > MAX_PICKLE_BYTES or not _byte_like(aid.dtype):
            return None
        data = _to_bytes(obj.attrs[name])
    except (OSError, RuntimeError, TypeError, ValueError, KeyError, UnicodeError):
        return None
    return (data[:MAX_PICKLE_BYTES], len(data)) if data else None


def _attr_pickles(guard: H5Guard, obj: h5py.HLObject, skip_keras: bool,
                  ) -> Iterator[EmbeddedPickle]:
    try:
        names = list(obj.attrs.keys())
    except (OSError, RuntimeError, ValueError):
        return
    for name in names:
        if skip_keras and KERAS_ROOT_ATTRS.match(name):
            continue
        head = _attr_head(obj, name)
        if head is not None:
            found = inspect_bytes(head[0], guard.prefix + obj.name, name, head[1])
            if found is not None:
                yield found


def _members(guard: H5Guard, obj: h5py.Group | h5py.Dataset, vars_owned: bool, depth: int,
             ) -> Iterator[h5py.Group | h5py.Dataset]:
    """``obj`` and every hard-linked object below it, except Keras 3 variables (members
    ``0``, ``1``... of a ``vars`` group when ``vars_owned``), which are never opened."""
    yield obj
    if not isinstance(obj, h5py.Group) or guard.too_deep(depth, obj):
        return
    keras_vars = vars_owned and obj.name.rsplit("/", 1)[-1] == "vars"
    for name in guard.names(obj):
        if keras_vars and name.isdigit():
            continue
        sub = guard.child(obj, name)
        if sub is not None:
            yield from _members(guard, sub, vars_owned, depth + 1)


def scan_h5(f: h5py.File, file_size: int, graph: ModelGraph, owned: frozenset[str],
            vars_owned: bool = False) -> None:
    """Add to ``graph.embedded_pickles`` the pickles in the datasets and attributes of ``f``
    outside the Keras-owned parts.

    ``owned``: root members Keras writes (their subtrees are skipped); ``vars_owned``: the
    Keras 3 weights layout, where only datasets inside ``vars`` groups are Keras'. A guard of
    its own walks the file (the reader's has marked its groups as walked); links are never
    followed, and what it refuses joins the container issues unless already there.
    """
    issues: list[ContainerIssue] = []
    guard = H5Guard(f, file_size, issues)
    found = graph.embedded_pickles
    found.extend(_attr_pickles(guard, f, skip_keras=True))
    visited = 0
    for key in guard.names(f):
        if key in owned:
            continue
        top = guard.child(f, key)
        if top is None:
            continue
        for obj in _members(guard, top, vars_owned, 1):
            visited += 1
            if visited > MAX_OBJECTS:
                graph.notes.append(f"pickle scan stopped after {MAX_OBJECTS} HDF5 objects")
                break
            found.extend(_attr_pickles(guard, obj, skip_keras=False))
            if not isinstance(obj, h5py.Dataset):
                continue
            head = _dataset_head(guard, obj)
            if head is not None:
                hit = inspect_bytes(head[0], guard.prefix + obj.name, None, head[1])
                if hit is not None:
                    found.append(hit)
        if visited > MAX_OBJECTS:
            break
    known = {(i.kind, i.location) for i in graph.container_issues}
    graph.container_issues.extend(i for i in issues if (i.kind, i.location) not in known)
