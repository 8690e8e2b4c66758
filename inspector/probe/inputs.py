"""Probe inputs: random batches from the model's input specs, and the user's real inputs.

Random inputs come in four value ranges because a model only works on the range it was
trained on: running all four is how the probe measures scale sensitivity instead of guessing.
Every second sample of an input with more than one axis (image, sequence, video) is
"structured": a per-sample level per channel mixed with i.i.d. noise, in the same range.
i.i.d. noise averages out over hundreds of pixels or steps, so a healthy model whose signal
is a global statistic (mean colour, mean level: global pooling) would see the same input in
every i.i.d. sample and look collapsed.
Id inputs (integer inputs, and float inputs that feed an Embedding: Keras' default
``Input`` dtype is float32) get ids below the ``input_dim`` of the Embedding they feed (the
smallest one when unknown) so the model never sees an out-of-vocabulary id. NumPy only,
except image decoding, which uses TensorFlow (the child imports it anyway) so the resize
matches what a TF input pipeline does.

``--inputs`` is read as untrusted too: only regular files (a link is followed only to one;
FIFOs and devices are refused), each file and all arrays together under a byte cap, npz
members checked against the cap by their header and by what actually inflates, image sizes
read from headers before decoding.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

DISTRIBUTIONS = ("uniform01", "uniform0_255", "uniform_m1_1", "normal")
TOKEN_IDS = "token_ids"
# How progress lines and messages name each input range.
RANGE_LABELS = {"uniform01": "[0,1]", "uniform0_255": "[0,255]", "uniform_m1_1": "[-1,1]",
                "normal": "N(0,1)", TOKEN_IDS: "token ids", "real": "real inputs"}
DEFAULT_DIM = 16          # length used for a None time / spatial dimension
DEFAULT_VOCAB = 2         # int input with no Embedding to bound it: ids 0/1 are always valid
# Structured samples (see _structured): the share of a sample that is its levels, at least
# STRUCTURED_MIN_WEIGHT so the levels dominate the noise; every STRUCTURED_EVERY-th row
# (odd rows), so every prefix the checks take holds both kinds.
STRUCTURED_EVERY = 2
STRUCTURED_MIN_WEIGHT = 0.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_INPUT_FILE_BYTES = 256 << 20   # one .npy / .npz / .csv / image file on disk
MAX_INPUT_ARRAY_BYTES = 1 << 30    # every array read from --inputs, together, in memory
MAX_CSV_VALUES = 8_000_000         # parsed as Python floats first: ~32 bytes each
MAX_NPZ_MEMBERS = 1000
MAX_INPUT_SAMPLES = 100_000
MAX_IMAGES = 10_000
MAX_IMAGE_PIXELS = 50_000_000      # per decoded image (about PIL's bomb limit)


class InputsError(Exception):
    """A problem with ``--inputs`` the user must fix (shape, format, empty directory)."""


@dataclass
class InputSpec:
    """One model input as the loaded model declares it (batch dimension included)."""

    name: str
    shape: list[int | None]
    dtype: str
    vocab: int | None = None     # exclusive upper bound for integer ids
    low: int = 0                 # 1 when id 0 is an Embedding's mask (padding) value
    feeds_embedding: bool = False   # token ids even when declared float (Keras' default)
    free_dim: int = DEFAULT_DIM     # length given to None axes (see probe.free_length)

    @property
    def is_int(self) -> bool:
        return "int" in self.dtype or self.dtype == "bool"

    @property
    def is_ids(self) -> bool:
        """Whether random values must be token ids rather than a value range."""
        return self.is_int or self.feeds_embedding

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model was built for (``batch_shape``; stateful RNNs need it)."""
        first = self.shape[0] if self.shape else None
        return int(first) if isinstance(first, int) and first > 0 else None

    def concrete(self) -> tuple[int, ...]:
        """The per-sample shape with None dimensions replaced by ``free_dim``."""
        return tuple(self.free_dim if d is None else int(d) for d in self.shape[1:])

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "vocab": self.vocab, "lowest_id": self.low if self.is_ids else None,
                "token_ids": self.is_ids, "generated_shape": list(self.concrete())}


@dataclass
class RealInputs:
    """The user's inputs, one array per model input, plus what was done to them."""

    arrays: list[np.ndarray]
    source: str
    names: list[str]
    notes: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays else 0

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "count": self.count, "notes": list(self.notes),
                "duplicates": [list(g) for g in self.duplicates],
                "shapes": [list(a.shape) for a in self.arrays]}


def distributions_for(specs: list[InputSpec]) -> tuple[str, ...]:
    """Models whose inputs are all ids get token ids only: value ranges mean nothing for ids."""
    if specs and all(s.is_ids for s in specs):
        return (TOKEN_IDS,)
    return DISTRIBUTIONS


def random_batch(specs: list[InputSpec], distribution: str, n: int,
                 seed: int) -> list[np.ndarray]:
    """``n`` samples for every input; a fixed seed per distribution keeps runs reproducible.
    Float inputs with more than one axis get structured odd rows (see _structured), drawn
    from a second stream so the i.i.d. rows stay the same whatever the structure."""
    offset = (*DISTRIBUTIONS, TOKEN_IDS).index(distribution)
    rng = np.random.default_rng([seed, offset])
    levels = np.random.default_rng([seed, offset, 1])
    out = []
    for spec in specs:
        shape = (n, *spec.concrete())
        if spec.is_ids:
            high = max(spec.low + 1, spec.vocab or DEFAULT_VOCAB)
            out.append(rng.integers(spec.low, high, size=shape).astype(numpy_dtype(spec.dtype)))
            continue
        values = _floats(rng, distribution, shape)
        rows = slice(1, None, STRUCTURED_EVERY)
        if len(shape) >= 3 and values[rows].size:
            values[rows] = _structured(levels, distribution, values[rows].shape)
        out.append(values.astype(numpy_dtype(spec.dtype)))
    return out


def _structured(rng: np.random.Generator, distribution: str,
                shape: tuple[int, ...]) -> np.ndarray:
    """Samples that differ globally: ``a * level + (1 - a) * noise`` with ``a`` per sample in
    [STRUCTURED_MIN_WEIGHT, 1], the level per sample and channel (last axis) itself a mix of
    one level for all channels and one per channel, and the noise i.i.d. Every term is a draw
    of ``distribution`` and the weights are convex, so values stay in its range."""
    n = shape[0]
    one = (n, *(1,) * (len(shape) - 1))
    share = rng.uniform(0.0, 1.0, size=one)
    level = (share * _floats(rng, distribution, one)
             + (1.0 - share) * _floats(rng, distribution, (*one[:-1], shape[-1])))
    weight = rng.uniform(STRUCTURED_MIN_WEIGHT, 1.0, size=one)
    return weight * level + (1.0 - weight) * _floats(rng, distribution, shape)


def _floats(rng: np.random.Generator, distribution: str, shape: tuple[int, ...]) -> np.ndarray:
    if distribution == "uniform01":
        return rng.uniform(0.0, 1.0, size=shape)
    if distribution == "uniform0_255":
        return rng.uniform(0.0, 255.0, size=shape)
    if distribution == "uniform_m1_1":
        return rng.uniform(-1.0, 1.0, size=shape)
    return rng.standard_normal(size=shape)


def numpy_dtype(dtype: str) -> str:
    """The numpy dtype fed for a declared Keras input dtype: one numpy lacks (bfloat16) or
    does not know becomes float32, which Keras casts on the way in."""
    if dtype in ("bfloat16", "float16", "half"):
        return "float32"      # Keras casts; numpy has no bfloat16
    if dtype == "bool":
        return "bool"
    return dtype if dtype in np.sctypeDict else "float32"


# ----------------------------------------------------------------------------- real inputs


def load_real_inputs(path: str, specs: list[InputSpec]) -> RealInputs:
    """Read ``--inputs``; raises InputsError with the expected and the given shape on mismatch."""
    p = Path(path)
    if not p.exists():
        raise InputsError(f"--inputs {path}: no such file or directory")
    if p.is_dir():
        real = _images(p, specs)
    elif p.suffix == ".npy":
        real = RealInputs([_npy(p)], str(p), [p.name])
    elif p.suffix == ".npz":
        real = _npz(p, specs)
    elif p.suffix == ".csv":
        real = RealInputs([_csv(p)], str(p), [p.name])
    else:
        raise InputsError(f"--inputs {path}: expected an image directory, .npy, .npz or .csv")
    samples = max((int(a.shape[0]) for a in real.arrays if a.ndim), default=0)
    if samples > MAX_INPUT_SAMPLES:  # each sample costs a hash and a name, whatever its size
        raise InputsError(f"--inputs {path}: {samples} samples (limit {MAX_INPUT_SAMPLES})")
    _check_shapes(real, specs)
    if not real.duplicates:
        real.duplicates = find_duplicates(real.arrays, _row_names(real))
    return real


def _row_names(real: RealInputs) -> list[str]:
    if len(real.names) == real.count:
        return real.names
    return [f"row {i}" for i in range(real.count)]


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, limit: int | None = None) -> IO[bytes]:
    """``path`` opened for reading when it is a regular file of at most ``limit`` bytes
    (default MAX_INPUT_FILE_BYTES).

    A link is followed only to a regular file. The type is checked before opening (a FIFO
    would block, /dev/zero never ends) and again on the open descriptor, opened with
    O_NONBLOCK so a FIFO swapped in between cannot block either.
    """
    try:
        before = os.stat(path)
    except OSError as exc:
        raise InputsError(f"--inputs {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(before.st_mode):
        raise InputsError(f"--inputs {path}: {_file_kind(before.st_mode)}, not a regular "
                          "file; refused")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputsError(f"--inputs {path}: cannot read it ({exc.strerror})") from None
    opened = os.fstat(fd)
    limit = MAX_INPUT_FILE_BYTES if limit is None else limit
    if not stat.S_ISREG(opened.st_mode) or opened.st_size > limit:
        os.close(fd)
        why = (f"{opened.st_size} bytes, over the {limit}-byte limit"
               if stat.S_ISREG(opened.st_mode) else f"{_file_kind(opened.st_mode)}; refused")
        raise InputsError(f"--inputs {path}: {why}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_npy(fh: IO[bytes], where: str, budget: int) -> np.ndarray:
    """One .npy array from a stream, without pickle; its header's size must fit ``budget``
    and the stream must really hold that many bytes (read in blocks, never more)."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputsError(f"{where}: not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise InputsError(f"{where}: object arrays need pickle; refused")
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * dtype.itemsize
    if nbytes > budget:
        raise InputsError(f"{where}: the array declares {nbytes} bytes, over the "
                          f"{budget}-byte limit for --inputs")
    buffer = bytearray(nbytes)
    got = 0
    try:
        while got < nbytes:
            block = fh.read(min(1 << 24, nbytes - got))
            if not block:
                break
            buffer[got:got + len(block)] = block
            got += len(block)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputsError(f"{where}: cannot read the array ({exc})") from None
    if got < nbytes:
        raise InputsError(f"{where}: truncated: the header declares {nbytes} bytes, "
                          f"the file holds {got}")
    array = np.frombuffer(buffer, dtype=dtype, count=count)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _npy(p: Path) -> np.ndarray:
    with open_regular(p) as fh:
        return read_npy(fh, f"--inputs {p}", MAX_INPUT_ARRAY_BYTES)


def _npz_arrays(p: Path) -> dict[str, np.ndarray]:
    """Every ``.npy`` member, each checked by its zip header, its npy header and the bytes
    that actually inflate against what is left of MAX_INPUT_ARRAY_BYTES."""
    budget = MAX_INPUT_ARRAY_BYTES
    stored: dict[str, np.ndarray] = {}
    with open_regular(p) as fh:
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputsError(f"--inputs {p}: not a readable .npz ({exc})") from None
        with archive:
            infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            if len(infos) > MAX_NPZ_MEMBERS:
                raise InputsError(f"--inputs {p}: {len(infos)} arrays (limit "
                                  f"{MAX_NPZ_MEMBERS})")
            for info in infos:
                where = f"--inputs {p}: {info.filename}"
                if info.file_size > budget:
                    raise InputsError(f"{where}: declares {info.file_size} bytes, over the "
                                      f"{budget} bytes left for --inputs")
                try:
                    member = archive.open(info)
                except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
                    raise InputsError(f"{where}: cannot read it ({exc})") from None
                with member:
                    # zipfile stops at the declared file_size, so nothing inflates past it
                    array = read_npy(member, where, min(budget, info.file_size))
                budget -= array.nbytes
                stored[info.filename.removesuffix(".npy")] = array
    return stored


def _npz(p: Path, specs: list[InputSpec]) -> RealInputs:
    """Arrays matched to inputs by name, else taken in file order."""
    stored = _npz_arrays(p)
    if all(s.name in stored for s in specs):
        arrays = [stored[s.name] for s in specs]
    elif len(stored) >= len(specs):
        arrays = list(stored.values())[: len(specs)]
    else:
        raise InputsError(f"--inputs {p}: the model has {len(specs)} inputs "
                          f"({', '.join(s.name for s in specs)}), the file {len(stored)} arrays")
    return RealInputs(arrays, str(p), [p.name])


def _csv(p: Path) -> np.ndarray:
    """Numeric rows; a first row that is not numeric is taken as a header."""
    rows: list[list[float]] = []
    values = 0
    with open_regular(p) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
        try:
            for i, row in enumerate(csv.reader(fh)):
                if not row:
                    continue
                values += len(row)
                if values > MAX_CSV_VALUES:
                    raise InputsError(f"--inputs {p}: more than {MAX_CSV_VALUES} values")
                try:
                    rows.append([float(v) for v in row])
                except ValueError:
                    if i == 0:
                        continue
                    raise InputsError(f"--inputs {p}: row {i + 1} is not numeric") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputsError(f"--inputs {p}: not a readable CSV ({exc})") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise InputsError(f"--inputs {p}: expected numeric rows of equal length")
    return np.asarray(rows, dtype="float32")


def _images(directory: Path, specs: list[InputSpec]) -> RealInputs:
    """Decode and resize every image to the (single, image-shaped) input with TensorFlow."""
    files: list[Path] = []
    for f in directory.iterdir():
        if f.suffix.lower() in IMAGE_SUFFIXES:
            files.append(f)
            if len(files) > MAX_IMAGES:
                raise InputsError(f"--inputs {directory}: more than {MAX_IMAGES} images")
    files.sort()
    if not files:
        raise InputsError(f"--inputs {directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(specs) != 1 or len(specs[0].shape) != 4:
        raise InputsError(f"--inputs {directory}: images need one input of shape "
                          f"(batch, height, width, channels); the model expects "
                          f"{[tuple(s.shape) for s in specs]}")
    height, width, channels = specs[0].concrete()
    if len(files) * height * width * channels * 4 > MAX_INPUT_ARRAY_BYTES:
        raise InputsError(f"--inputs {directory}: {len(files)} images of {height}x{width}x"
                          f"{channels} floats exceed the {MAX_INPUT_ARRAY_BYTES}-byte limit")
    import tensorflow as tf

    notes: set[str] = set()
    arrays = []
    contents: list[bytes] = []
    for f in files:
        with open_regular(f) as fh:
            data = fh.read(MAX_INPUT_FILE_BYTES + 1)
        pixels = image_pixels(data, tf)
        if pixels is None or pixels > MAX_IMAGE_PIXELS:
            raise InputsError(f"--inputs {f}: " + ("image size unreadable from its header"
                              if pixels is None else f"{pixels} pixels (limit "
                              f"{MAX_IMAGE_PIXELS}); refused before decoding"))
        contents.append(data)
        try:
            img = tf.io.decode_image(data, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as exc:
            raise InputsError(f"--inputs {f}: cannot decode image: {exc}") from None
        h, w, c = (int(d) for d in img.shape)
        if c != channels:
            notes.add(f"channels {c} -> {channels}")
            img = _convert_channels(tf, img, c, channels)
        img = tf.cast(img, "float32")
        if (h, w) != (height, width):
            notes.add(f"resized {h}x{w} -> {height}x{width}")
            img = tf.image.resize(img, (height, width))
        arrays.append(img.numpy())
    names = [f.name for f in files]
    batch = np.stack(arrays).astype("float32")
    real = RealInputs([batch], str(directory), names, notes=sorted(notes))
    real.duplicates = _duplicate_files(names, contents) or find_duplicates([batch], names)
    real.notes.append("pixel values fed as decoded (0..255)")
    return real


def _convert_channels(tf: Any, img: Any, have: int, want: int) -> Any:
    if have == 4:
        img, have = img[..., :3], 3
    if have == 3 and want == 1:
        return tf.image.rgb_to_grayscale(img)
    if have == 1 and want == 3:
        return tf.image.grayscale_to_rgb(img)
    if have == want:
        return img
    raise InputsError(f"cannot convert {have}-channel images to {want} channels")


def image_pixels(data: bytes, tf: Any = None) -> int | None:
    """Width x height from a PNG, GIF or BMP header (JPEG through TensorFlow's header
    parser when ``tf`` is given); None when the header says nothing readable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
    elif data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
    elif data[:2] == b"\xff\xd8" and tf is not None:
        try:
            height, width = (int(v) for v in tf.image.extract_jpeg_shape(data)[:2])
        except (tf.errors.InvalidArgumentError, ValueError):
            return None
    else:
        return None
    return abs(int(width)) * abs(int(height))


def _duplicate_files(names: list[str], contents: list[bytes]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for name, data in zip(names, contents, strict=True):
        groups.setdefault(hashlib.sha256(data).hexdigest(), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def find_duplicates(arrays: list[np.ndarray], names: list[str]) -> list[list[str]]:
    """Groups of identical samples (all inputs equal), named by file or row."""
    groups: dict[str, list[str]] = {}
    n = int(arrays[0].shape[0]) if arrays else 0
    for i in range(n):
        h = hashlib.sha256()
        for a in arrays:
            h.update(np.ascontiguousarray(a[i]).tobytes())
        groups.setdefault(h.hexdigest(), []).append(names[i] if i < len(names) else f"row {i}")
    return [g for g in groups.values() if len(g) > 1]


def _fits(a: np.ndarray, spec: InputSpec) -> bool:
    return a.ndim == len(spec.shape) and all(
        w is None or w == g for w, g in zip(spec.shape[1:], a.shape[1:], strict=True))


def _fit_trailing_one(a: np.ndarray, spec: InputSpec, notes: list[str]) -> np.ndarray:
    """``a`` with a trailing axis of length 1 added or dropped when that alone makes it fit
    the input, as Keras itself does when it calls a functional model (``(N, 784)`` for
    ``(N, 784, 1)``); a note says so. Any other mismatch is left for the shape error."""
    if a.ndim < 1 or _fits(a, spec):
        return a
    fitted = None
    if a.ndim + 1 == len(spec.shape) and spec.shape[-1] == 1:
        fitted = a[..., np.newaxis]
    elif a.ndim == len(spec.shape) + 1 and a.shape[-1] == 1 and a.ndim > 2:
        fitted = a[..., 0]
    if fitted is None or not _fits(fitted, spec):
        return a
    notes.append(f"input '{spec.name}': shape {tuple(a.shape)} reshaped to "
                 f"{tuple(fitted.shape)} (a trailing axis of 1, as Keras accepts)")
    return fitted


def _check_shapes(real: RealInputs, specs: list[InputSpec]) -> None:
    if len(real.arrays) != len(specs):
        raise InputsError(f"--inputs {real.source}: the model has {len(specs)} inputs, "
                          f"{len(real.arrays)} given")
    real.arrays = [_fit_trailing_one(a, spec, real.notes) for a, spec
                   in zip(real.arrays, specs, strict=False)]
    counts = {int(a.shape[0]) if a.ndim else 0 for a in real.arrays}
    for a, spec in zip(real.arrays, specs, strict=False):
        want = tuple(spec.shape[1:])
        if not _fits(a, spec):
            expected = "(N, " + ", ".join("?" if d is None else str(d) for d in want) + ")"
            raise InputsError(f"--inputs {real.source}: input '{spec.name}' expects shape "
                              f"{expected}, given {tuple(a.shape)}")
    if len(counts) != 1 or 0 in counts:
        raise InputsError(f"--inputs {real.source}: every input needs the same number of "
                          f"samples (got {sorted(counts)})")
    real.arrays = [a.astype(numpy_dtype(s.dtype)) for a, s in zip(real.arrays, specs, strict=False)]
