"""Whether two ``.keras`` archives hold the same model, read without loading either.

The probe's round trip saves the loaded model to a new ``.keras``. When that archive holds
what the user's ``.keras`` held, as far as ``load_model(compile=False)`` reads it (the same
config and bit-identical weights and assets), loading it would run the very deserialization
that built the model under test from the very same input, so the reload and its comparison
are skipped: on a ResNet50 that is ~1.7 s of Keras object construction. The compile config
and optimizer state are not compared: the probe loads with ``compile=False``, which ignores
both (and the resaved model has neither). Anything else (another Keras version, a config that
changed on the way, an ``.h5`` source) gets the full reload.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from inspector.readers.keras_zip import weights_opener

# Python object ids Keras writes so shared objects (dtype policies, initializers) are
# deserialized once; their values mean nothing and sharing such objects cannot change outputs.
IGNORED_CONFIG_KEYS = frozenset({"shared_object_id"})
# Top-level parts load_model(compile=False) never reads.
UNREAD_CONFIG_KEYS = frozenset({"compile_config"})
UNREAD_WEIGHT_GROUPS = frozenset({"optimizer"})
CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
METADATA = "metadata.json"
MAX_JSON_BYTES = 64 << 20       # larger configs are not compared (the full reload runs)
CHUNK = 1 << 20


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k not in IGNORED_CONFIG_KEYS}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _config(archive: zipfile.ZipFile) -> Any:
    value = _json(archive, CONFIG)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in UNREAD_CONFIG_KEYS}
    return _canonical(value)


def _datasets(h5: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}
    for top in h5:
        if top in UNREAD_WEIGHT_GROUPS:
            continue
        item = h5[top]
        if isinstance(item, h5py.Dataset):
            found[top] = item
        else:
            item.visititems(lambda name, obj, top=top: found.__setitem__(f"{top}/{name}", obj)
                            if isinstance(obj, h5py.Dataset) else None)
    return found


def _same_weights(a_path: Path, a: zipfile.ZipFile, b_path: Path, b: zipfile.ZipFile) -> bool:
    """Byte-identical members, or the same datasets with bit-identical values outside the
    groups the loader skips (a compiled source carries its optimizer state)."""
    if _same_bytes(a, b, WEIGHTS):
        return True
    owned: list[Any] = []
    files = []
    try:
        for path, archive in ((a_path, a), (b_path, b)):
            files.append(weights_opener(str(path), archive.getinfo(WEIGHTS), owned)())
        left, right = (_datasets(f) for f in files)
        if left.keys() != right.keys():
            return False
        for name, ds in left.items():
            other = right[name]
            if ds.shape != other.shape or ds.dtype != other.dtype:
                return False
            if np.asarray(ds[()]).tobytes() != np.asarray(other[()]).tobytes():
                return False
        return True
    finally:
        for handle in [*files, *owned]:
            handle.close()


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    if archive.getinfo(name).file_size > MAX_JSON_BYTES:
        raise ValueError(f"{name} is larger than {MAX_JSON_BYTES >> 20} MB")
    return json.loads(archive.read(name))


def _same_bytes(a: zipfile.ZipFile, b: zipfile.ZipFile, name: str) -> bool:
    if a.getinfo(name).file_size != b.getinfo(name).file_size:
        return False
    with a.open(name) as fa, b.open(name) as fb:
        while True:
            block = fa.read(CHUNK)
            if block != fb.read(CHUNK):
                return False
            if not block:
                return True


def archive_difference(original: Path, saved: Path) -> str | None:
    """None when ``saved`` holds the same model as ``original``; otherwise the first
    difference found, in words."""
    try:
        with zipfile.ZipFile(original) as a, zipfile.ZipFile(saved) as b:
            names = set(a.namelist())
            if names != set(b.namelist()):
                return "the saved archive has other members"
            for name in sorted(names):
                if name == METADATA:
                    if _json(a, name).get("keras_version") != _json(b, name).get(
                            "keras_version"):
                        return "written by another Keras version"
                elif name == CONFIG:
                    if _config(a) != _config(b):
                        return f"{name} changed"
                elif name == WEIGHTS:
                    if not _same_weights(original, a, saved, b):
                        return f"{name} changed"
                elif not _same_bytes(a, b, name):
                    return f"{name} changed"
    except (OSError, ValueError, KeyError, AttributeError, TypeError, RuntimeError,
            zipfile.BadZipFile) as exc:
        return f"not comparable ({type(exc).__name__})"
    return None
