"""Cheap sniffing of a model path: which container is it, before anything is parsed.

Matching looks at magic bytes and member/object names only (like netron's ``match()``);
opening and parsing belong to the per-format readers.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import h5py

from inspector.errors import ErrorKind, KinspectError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
MODEL_EXTENSIONS = (".h5", ".hdf5", ".keras", ".hdf")

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


def _hdf5_at_userblock(path: Path, file_size: int) -> bool:
    """HDF5 allows the superblock at 0, 512, 1024, 2048... (a user block before it)."""
    offset = 512
    with open(path, "rb") as fh:
        while offset + 8 <= file_size and offset <= (1 << 20):
            fh.seek(offset)
            if fh.read(8) == HDF5_MAGIC:
                return True
            offset *= 2
    return False


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
    if head.startswith(HDF5_MAGIC) or _hdf5_at_userblock(p, size):
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
