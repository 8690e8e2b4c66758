"""Cheap sniffing of a model path: which container is it, before anything is parsed.

Matching looks at magic bytes and member/object names only (like netron's ``match()``);
opening and parsing belong to the per-format readers.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import h5py

from inspector.errors import ErrorKind, KinspectError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
MODEL_EXTENSIONS = (".h5", ".hdf5", ".keras", ".hdf")

# sniff() reads a file as HDF5 when a superblock starts this early; polyglot() looks further.
SNIFF_USERBLOCK_LIMIT = 1 << 20

# Container kinds returned by sniff().
HDF5 = "hdf5"
ZIP = "zip"
SAVEDMODEL_DIR = "savedmodel-dir"

# What an HDF5 root holds, returned by classify_h5().
H5_MODEL = "h5-model"
H5_WEIGHTS_K2 = "h5-weights-k2"
H5_WEIGHTS_K3 = "h5-weights-k3"


def _head(path: Path, size: int = 8) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _hdf5_superblock(path: Path, file_size: int, limit: int | None = None) -> int | None:
    """First offset where libhdf5 would find a superblock: 0, then 512, 1024, 2048... (a
    user block before it) up to ``limit`` or the end of the file, as libhdf5 searches."""
    offset = 0
    end = file_size if limit is None else min(file_size, limit + 8)
    with open(path, "rb") as fh:
        while offset + 8 <= end:
            fh.seek(offset)
            if fh.read(8) == HDF5_MAGIC:
                return offset
            offset = max(512, offset * 2)
    return None


_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_EOCD_SEARCH = (1 << 16) + _EOCD_SIZE   # the comment is at most 64 KiB, like zipfile's search
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", _EOCD)
_SCAN_CHUNK = 1 << 20


def _zip_directory(path: Path, file_size: int) -> int | None:
    """Offset of the central directory a zip reader finds from the end of the file (what
    ``zipfile.is_zipfile`` and Keras rely on), or None. Reads the tail only: no member list
    is built, so a huge directory costs nothing here."""
    start = max(0, file_size - _EOCD_SEARCH)
    with open(path, "rb") as fh:
        fh.seek(start)
        tail = fh.read(_EOCD_SEARCH)
        pos = tail.rfind(_EOCD)
        if pos < 0 or pos + _EOCD_SIZE > len(tail):
            return None
        size_cd, offset_cd = struct.unpack_from("<LL", tail, pos + 12)
        entries = struct.unpack_from("<H", tail, pos + 10)[0]
        directory = start + pos - size_cd   # as zipfile computes it (prefixed data allowed)
        if entries == 0 or directory < 0:
            return None
        if entries == 0xFFFF or offset_cd == 0xFFFFFFFF:
            return directory   # zip64: the locator says more; a zip reader will try it
        fh.seek(directory)
        return directory if fh.read(4) == b"PK\x01\x02" else None


def _zip_signature_before(path: Path, end: int) -> int | None:
    """Offset of a zip record signature in the first ``end`` bytes (an HDF5 user block)."""
    with open(path, "rb") as fh:
        pos = 0
        while pos < end:
            fh.seek(pos)
            chunk = fh.read(min(_SCAN_CHUNK + 3, end - pos))
            hits = [i for i in (chunk.find(sig) for sig in _ZIP_SIGNATURES) if i >= 0]
            if hits:
                return pos + min(hits)
            pos += _SCAN_CHUNK
    return None


def polyglot(path: str | os.PathLike[str]) -> str | None:
    """Why the file reads as both an HDF5 file and a zip archive, or None when it is one.

    Such a file is an attack on inspectors: kinspect reads one container, Keras picks the
    other by extension (a ``.keras`` name goes to the zip, ``.h5`` to libhdf5). Both
    signatures are looked for wherever the libraries look: the HDF5 superblock at 0 or any
    user-block offset, the zip directory from the end of the file, and any zip record inside
    an HDF5 user block (a zip stored there opens from its start with other zip readers).
    """
    p = Path(path)
    if p.is_dir():
        return None
    try:
        size = p.stat().st_size
        h5_at = _hdf5_superblock(p, size)
        if h5_at is None:
            return None
        directory = _zip_directory(p, size)
        record = None if directory is not None else _zip_signature_before(p, h5_at)
    except OSError:
        return None
    if directory is not None:
        zip_part = f"a zip central directory at byte {directory}"
    elif record is not None:
        zip_part = f"a zip record at byte {record}, inside the HDF5 user block"
    else:
        return None
    return f"HDF5 superblock at byte {h5_at} and {zip_part}"


def sniff(path: str | os.PathLike[str]) -> str:
    """Container kind of ``path``; KinspectError for anything that cannot be a model."""
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise KinspectError(shown, "no such file or directory", ErrorKind.NOT_FOUND)
    if p.is_dir():
        if (p / "saved_model.pb").is_file():
            return SAVEDMODEL_DIR
        raise KinspectError(shown, "directory without saved_model.pb is not a SavedModel",
                            ErrorKind.NOT_A_MODEL)
    try:
        size = p.stat().st_size
        head = _head(p)
    except OSError as exc:
        raise KinspectError(shown, f"cannot read file ({exc.strerror or exc})",
                            ErrorKind.NOT_FOUND) from exc
    if size == 0:
        raise KinspectError(shown, "empty file", ErrorKind.EMPTY)
    if _hdf5_superblock(p, size, limit=SNIFF_USERBLOCK_LIMIT) is not None:
        return HDF5
    if head[:4] in ZIP_MAGICS:
        return ZIP
    name = p.name.lower()
    if name.endswith(".pb"):
        raise KinspectError(shown, "a .pb file alone is not readable: pass the SavedModel "
                            "directory that contains it", ErrorKind.UNSUPPORTED)
    if name.endswith(MODEL_EXTENSIONS):
        what = "zip archive" if name.endswith(".keras") else "HDF5 file"
        raise KinspectError(shown, f"not a {what}: the content does not match the extension",
                            ErrorKind.CORRUPT)
    raise KinspectError(shown, f"unsupported file type '{p.suffix or p.name}' (expected a Keras "
                        ".h5/.keras file or a SavedModel directory)", ErrorKind.UNSUPPORTED)


# What h5py raises on corrupt metadata (RuntimeError: "bad symbol table node signature"...).
H5_ERRORS = (OSError, RuntimeError, ValueError, KeyError, TypeError)


def classify_h5(root: h5py.Group) -> str | None:
    """What a (safely opened) HDF5 root holds: a full model, K2 or K3 weights, or None.

    Corrupt metadata raises one of ``H5_ERRORS``.
    """
    attrs = root.attrs
    if "model_config" in attrs:
        return H5_MODEL
    if "layer_names" in attrs or "layer_names0" in attrs:
        return H5_WEIGHTS_K2
    try:
        keys = set(root.keys())
    except (OSError, ValueError):
        return None
    if "model_weights" in keys:
        mw = root.get("model_weights", getlink=True)
        if isinstance(mw, h5py.HardLink):
            return H5_WEIGHTS_K2
    if keys & {"layers", "_layer_checkpoint_dependencies"}:
        return H5_WEIGHTS_K3
    if "vars" in keys and isinstance(root.get("vars", getlink=True), h5py.HardLink) and (
            root.get("vars", getclass=True) is h5py.Group):
        # Keras 3 save_weights always writes the model's own ``vars`` group; a subclassed
        # model's sublayers sit under attribute names (``block1/layers/conv2d/vars/0``)
        # with no ``layers`` group when every layer is reached through an attribute.
        return H5_WEIGHTS_K3
    return None


ZIP_CONFIG = "config.json"
ZIP_METADATA = "metadata.json"
ZIP_WEIGHTS = "model.weights.h5"
ZIP_WEIGHTS_NPZ = "model.weights.npz"



def looks_like_model(path: str | os.PathLike[str]) -> bool:
    """Should a directory search pick this file? By content, whatever its name: an HDF5 file
    whose root says Keras model or weights, or a zip with the .keras members. Never raises.

    Reads magic bytes, attribute and member *names* only (no attribute values: libhdf5 can
    loop forever on corrupt ones, and this runs in the parent, outside the killable workers).
    """
    try:
        kind = sniff(path)
    except KinspectError:
        return False
    if kind == SAVEDMODEL_DIR:
        return True
    try:
        if kind == ZIP:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
            return ZIP_CONFIG in names or {ZIP_METADATA, ZIP_WEIGHTS} <= names
        with h5py.File(path, "r") as f:
            return classify_h5(f) is not None
    except (zipfile.BadZipFile, EOFError, NotImplementedError, *H5_ERRORS):
        return False
