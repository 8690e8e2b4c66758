"""``.keras`` archives (Keras 3, tf.keras 2.13+): config.json + metadata.json + model.weights.h5.

Variables are stored by index under ``layers/<snake_class_name>/vars/<i>`` (``layers`` may be
``_layer_checkpoint_dependencies`` in tf.keras archives); indices are mapped back to Keras
variable names with ``variable_names.py``. The archive is opened read-only, checked against
zip bombs before anything is read, and nothing is ever extracted under a member's name.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

import h5py

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import (
    ContainerIssue,
    LayerNode,
    ModelGraph,
    WeightInfo,
    unsafe_member_name,
)
from inspector.readers.detect import ZIP_CONFIG, ZIP_METADATA, ZIP_WEIGHTS, ZIP_WEIGHTS_NPZ
from inspector.readers.h5_model import h5_weight
from inspector.readers.keras_config import (
    normalize_training_config,
    parse_root_config,
)
from inspector.readers.optimizer_state import keras_zip_optimizer_iterations
from inspector.readers.safe_io import (
    H5Guard,
    JsonTooLarge,
    LazyH5,
    attr,
    global_heap_problem,
    load_json,
)
from inspector.readers.variable_names import SUBOBJECTS, subobject_names, variable_names

MAX_MEMBERS = 10_000
MAX_CONFIG_BYTES = 64 << 20
MAX_METADATA_BYTES = 1 << 20
MAX_RATIO = 200
MAX_TOTAL_BYTES = 1 << 36
# A deflated model.weights.h5 must be inflated to a temp file for h5py; the copy stops at
# SPOOL_FACTOR x the archive's size (and MAX_SPOOL_BYTES), measured while inflating, because
# the sizes in the zip headers are the attacker's word. Keras itself stores members.
SPOOL_FACTOR = 2
SPOOL_FLOOR = 16 << 20  # small legit archives may compress 3x+; 16 MiB of disk is harmless
MAX_SPOOL_BYTES = 1 << 34
WEIGHTS_PREFIX = f"{ZIP_WEIGHTS}:"
CONTAINER_KEYS = ("layers", "_layer_checkpoint_dependencies")
SKIP_SUBGROUPS = frozenset({"vars", "cell", "layer", "forward_layer", "backward_layer",
                            "layers", "_layer_checkpoint_dependencies"})


def to_snake_case(name: str) -> str:
    """Keras' own class-name -> group-name conversion (``SimpleRNN`` -> ``simple_rnn``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class _Window(io.RawIOBase):
    """Read-only, seekable view of ``length`` bytes at ``offset`` of a file (a stored member)."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._offset + self._pos)
        got = self._fh.readinto(view[:n]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        super().close()


def _data_offset(path: str, info: zipfile.ZipInfo) -> int:
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError("bad local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


class SpoolTooLarge(ValueError):
    """The weights member inflated past the temp-file budget."""


def spool_limit(archive_size: int) -> int:
    """Most bytes a deflated member may inflate to on disk."""
    return min(MAX_SPOOL_BYTES, max(SPOOL_FLOOR, SPOOL_FACTOR * archive_size))


def _check_bombs(zf: zipfile.ZipFile, shown: str, archive_size: int
                 ) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise KinspectError(shown, f"archive has {len(infos)} members (zip bomb guard)",
                            ErrorKind.TOO_LARGE)
    total = 0
    for info in infos:
        total += info.file_size
        if info.header_offset + info.compress_size > archive_size:
            raise KinspectError(
                shown, f"member {info.filename!r} declares {info.compress_size} compressed "
                f"bytes past the end of the {archive_size}-byte archive (lying zip header)",
                ErrorKind.CORRUPT)
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise KinspectError(
                shown, f"member {info.filename!r} expands {info.compress_size} -> "
                f"{info.file_size} bytes (zip bomb guard)", ErrorKind.TOO_LARGE)
    if total > MAX_TOTAL_BYTES:
        raise KinspectError(shown, f"archive declares {total} uncompressed bytes",
                            ErrorKind.TOO_LARGE)
    return infos


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, shown: str) -> bytes:
    if info.file_size > cap:
        raise KinspectError(shown, f"{info.filename} is {info.file_size} bytes (limit {cap})",
                            ErrorKind.TOO_LARGE)
    try:
        with zf.open(info) as fh:
            data = fh.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError,
            NotImplementedError) as exc:
        raise KinspectError(shown, f"cannot read {info.filename} ({exc})",
                            ErrorKind.CORRUPT) from exc
    if len(data) > cap:
        raise KinspectError(shown, f"{info.filename} is larger than declared",
                            ErrorKind.TOO_LARGE)
    return data


def _checked_h5(fh: Any) -> h5py.File:
    problem = global_heap_problem(fh)
    if problem:
        raise ValueError(problem)
    fh.seek(0)
    return h5py.File(fh, "r")


def weights_opener(path: str, info: zipfile.ZipInfo, owned: list[Any],
                   limit: int | None = None) -> Callable[[], h5py.File]:
    """Lazy opener of the weights member: a window for stored members, else a spooled copy
    of at most ``limit`` bytes (default: spool_limit of the archive), counted as it inflates.

    The raw file objects go to ``owned`` so LazyH5.close() can close them after h5py.
    """
    cap = spool_limit(os.path.getsize(path)) if limit is None else limit
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        offset = _data_offset(path, info)

        def open_window() -> h5py.File:
            window = _Window(path, offset, info.file_size)
            owned.append(window)
            return _checked_h5(window)
        return open_window

    def open_spooled() -> h5py.File:
        tmp: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by LazyH5.close()
        owned.append(tmp)
        written = 0
        with zipfile.ZipFile(path) as again, again.open(info.filename) as src:
            while True:
                block = src.read(min(1 << 20, cap + 1 - written))
                if not block:
                    break
                written += len(block)
                if written > cap:
                    raise SpoolTooLarge(f"inflates past {cap} bytes (the temp-file cap: "
                                        f"{SPOOL_FACTOR}x the archive, at least "
                                        f"{SPOOL_FLOOR >> 20} MiB); not extracted")
                tmp.write(block)
        if written > info.file_size:
            raise ValueError("weights member larger than declared")
        return _checked_h5(tmp)
    return open_spooled


def read_keras_zip(path: str | os.PathLike[str]) -> ModelGraph:
    shown = str(path)
    try:
        zf = zipfile.ZipFile(path, "r")
        archive_size = os.path.getsize(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise KinspectError(shown, f"not a readable zip archive ({exc})",
                            ErrorKind.CORRUPT) from exc
    with zf:
        infos = {i.filename: i for i in _check_bombs(zf, shown, archive_size)}
        if ZIP_CONFIG not in infos:
            kind = "a .keras archive" if ZIP_WEIGHTS in infos else "a zip archive"
            raise KinspectError(shown, f"{kind} without config.json is not a Keras model",
                                ErrorKind.NOT_A_MODEL)
        try:
            config = load_json(_read_member(zf, infos[ZIP_CONFIG], MAX_CONFIG_BYTES, shown))
        except JsonTooLarge as exc:
            raise KinspectError(shown, f"config.json is too large to parse safely ({exc})",
                                ErrorKind.TOO_LARGE) from exc
        except ValueError as exc:
            raise KinspectError(shown, "config.json is not valid JSON",
                                ErrorKind.CORRUPT) from exc
        metadata: dict[str, Any] = {}
        if ZIP_METADATA in infos:
            try:
                meta = load_json(_read_member(zf, infos[ZIP_METADATA], MAX_METADATA_BYTES,
                                               shown))
                metadata = meta if isinstance(meta, dict) else {}
            except ValueError:
                metadata = {}
        if not isinstance(config, dict) or "class_name" not in config:
            raise KinspectError(shown, "config.json is not a Keras model config",
                                ErrorKind.NOT_A_MODEL)
        root = parse_root_config(config, shown)
        graph = ModelGraph(path=shown, format="keras-zip", root=root, raw_config=config)
        graph.keras_version = metadata.get("keras_version") if isinstance(
            metadata.get("keras_version"), str) else None
        # Keras 3 and tf.keras metadata.json hold only keras_version and date_saved; a
        # writer that records the backend (there or in config.json) is believed, otherwise
        # it stays unknown (None) rather than guessed: the archive is backend-neutral.
        graph.backend = next((v for v in (metadata.get("backend"), config.get("backend"))
                              if isinstance(v, str) and v), None)
        graph.class_name = root.class_name
        compile_config = config.get("compile_config")
        graph.training_config = normalize_training_config(compile_config)
        for name in infos:
            if name not in (ZIP_CONFIG, ZIP_METADATA, ZIP_WEIGHTS) and not (
                    name.startswith("assets/") and not unsafe_member_name(name)):
                graph.container_issues.append(ContainerIssue(
                    "zip-unexpected-member", name, "member not written by Keras"))
        if ZIP_WEIGHTS in infos:
            info = infos[ZIP_WEIGHTS]
            owned: list[Any] = []
            try:
                opener = weights_opener(shown, info, owned)
                wfile = opener()
            except SpoolTooLarge as exc:
                for obj in owned:
                    obj.close()
                graph.container_issues.append(ContainerIssue(
                    "zip-member-too-large", ZIP_WEIGHTS, str(exc)))
                graph.notes.append(f"{ZIP_WEIGHTS} was not extracted: architecture only")
                return graph
            except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
                for obj in owned:
                    obj.close()
                raise KinspectError(shown, f"{ZIP_WEIGHTS} is not readable HDF5 ({exc})",
                                    ErrorKind.CORRUPT) from exc
            lazy = LazyH5(opener, wfile)
            lazy.owned = owned
            graph.close = lazy.close
            # the header's size is the attacker's word: the guard's ratios use what is real
            real_size = min(info.file_size, archive_size if info.compress_type ==
                            zipfile.ZIP_STORED else spool_limit(archive_size))
            guard = H5Guard(wfile, real_size, graph.container_issues,
                            prefix=WEIGHTS_PREFIX)
            keras3 = not (graph.keras_version or "3").startswith("2")
            attach_zip_weights(root, wfile, guard, lazy, keras3, graph.notes)
            graph.optimizer_iterations = keras_zip_optimizer_iterations(guard, wfile)
        elif ZIP_WEIGHTS_NPZ in infos:
            graph.notes.append("weights are stored as .npz; not read (never unpickled)")
        else:
            graph.notes.append("the archive has no model.weights.h5: architecture only")
    return graph


def _container(guard: H5Guard, group: h5py.Group) -> h5py.Group | None:
    for key in CONTAINER_KEYS:
        obj = guard.child(group, key)
        if isinstance(obj, h5py.Group):
            return obj
    return None


def own_vars(guard: H5Guard, group: h5py.Group) -> list[h5py.Dataset]:
    """Datasets ``vars/0``, ``vars/1``... in index order."""
    vars_group = guard.child(group, "vars")
    if not isinstance(vars_group, h5py.Group):
        return []
    out = []
    for key in sorted((k for k in guard.names(vars_group) if k.isdigit()), key=int):
        ds = guard.child(vars_group, key)
        if isinstance(ds, h5py.Dataset):
            out.append(ds)
    return out


def _named(node: LayerNode, datasets: list[h5py.Dataset], guard: H5Guard, lazy: LazyH5,
           keras3: bool, prefix: str = "") -> list[WeightInfo]:
    names = variable_names(node.class_name, node.config, len(datasets), keras3=keras3)
    if names is None:
        names = [f"var_{i}" for i in range(len(datasets))]
    return [h5_weight(guard, lazy, ds, prefix + name, WEIGHTS_PREFIX)
            for ds, name in zip(datasets, names, strict=False)]


def attach_zip_weights(node: LayerNode, group: h5py.Group, guard: H5Guard, lazy: LazyH5,
                       keras3: bool, notes: list[str]) -> None:
    """Attach the indexed variables below ``group`` to ``node`` and its descendants."""
    node.weights.extend(_named(node, own_vars(guard, group), guard, lazy, keras3))
    if node.role == "model":
        container = _container(guard, group)
        if container is None:
            return
        available = set(guard.names(container))
        by_var_name: dict[str, str] = {}
        for key in available:
            sub = guard.child(container, f"{key}/vars")
            if isinstance(sub, h5py.Group):
                name = attr(sub, "name")
                if isinstance(name, str):
                    by_var_name[name] = key
        used: dict[str, int] = {}
        for child in node.children:
            snake = to_snake_case(child.class_name)
            if snake in used:
                used[snake] += 1
                snake = f"{snake}_{used[snake]}"
            else:
                used[snake] = 0
            key = snake if snake in available else by_var_name.get(child.name, child.name)
            sub = guard.child(container, key) if key in available else None
            if isinstance(sub, h5py.Group):
                attach_zip_weights(child, sub, guard, lazy, keras3, notes)
            elif child.class_name != "InputLayer" and child.role != "operation":
                notes.append(f"no stored variables found for layer {child.path}")
        return
    mapping: dict[str, LayerNode] = {}
    if node.class_name == "Bidirectional" and len(node.children) == 2:
        mapping = {"forward_layer": node.children[0], "backward_layer": node.children[1]}
    elif node.role == "wrapper" and node.children:
        mapping = {"layer": node.children[0]}
    cells = [c for c in node.children if c.role == "cell"]
    if len(cells) == 1:
        mapping["cell"] = cells[0]
    for key, child in mapping.items():
        sub = guard.child(group, key)
        if isinstance(sub, h5py.Group):
            attach_zip_weights(child, sub, guard, lazy, keras3, notes)
    order = list(SUBOBJECTS.get(node.class_name, {}))
    for key in sorted(guard.names(group), key=lambda k: (
            order.index(k.lstrip("_")) if k.lstrip("_") in order else len(order), k)):
        if key in SKIP_SUBGROUPS or key in mapping or key.startswith("seed_generator"):
            continue
        sub = guard.child(group, key)
        if isinstance(sub, h5py.Group):
            _attach_unmapped(node, sub, key, guard, lazy, keras3)


def _attach_unmapped(node: LayerNode, group: h5py.Group, prefix: str, guard: H5Guard,
                     lazy: LazyH5, keras3: bool, depth: int = 0) -> None:
    """Sub-objects the config does not describe: attention projections get their Keras names
    (``query/kernel``), anything else ``sub/var_i``."""
    if guard.too_deep(depth, group):
        return
    datasets = own_vars(guard, group)
    known = subobject_names(node.class_name, node.config, prefix, len(datasets))
    scope, names = known if known else (prefix, [f"var_{i}" for i in range(len(datasets))])
    node.weights.extend(
        h5_weight(guard, lazy, ds, f"{scope}/{name}", WEIGHTS_PREFIX)
        for ds, name in zip(datasets, names, strict=True))
    for key in guard.names(group):
        if key == "vars" or key.startswith("seed_generator"):
            continue
        sub = guard.child(group, key)
        if isinstance(sub, h5py.Group):
            _attach_unmapped(node, sub, f"{prefix}/{key}", guard, lazy, keras3, depth + 1)
