"""Probe inputs: random batches from the model's input specs, and the user's real inputs.

Random inputs come in four value ranges because a model only works on the range it was
trained on: running all four is how the probe measures scale sensitivity instead of guessing.
Integer inputs (token ids for an Embedding) get ids below the smallest ``input_dim`` so the
model never sees an out-of-vocabulary id. NumPy only, except image decoding, which uses
TensorFlow (the child imports it anyway) so the resize matches what a TF input pipeline does.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DISTRIBUTIONS = ("uniform01", "uniform0_255", "uniform_m1_1", "normal")
TOKEN_IDS = "token_ids"
DEFAULT_DIM = 16          # length used for a None time / spatial dimension
DEFAULT_VOCAB = 2         # int input with no Embedding to bound it: ids 0/1 are always valid
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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

    @property
    def is_int(self) -> bool:
        return "int" in self.dtype or self.dtype == "bool"

    def concrete(self) -> tuple[int, ...]:
        """The per-sample shape with None dimensions replaced by DEFAULT_DIM."""
        return tuple(DEFAULT_DIM if d is None else int(d) for d in self.shape[1:])

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "vocab": self.vocab, "lowest_id": self.low if self.is_int else None,
                "generated_shape": list(self.concrete())}


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
    """All-integer models get token ids only: value ranges mean nothing for ids."""
    if specs and all(s.is_int for s in specs):
        return (TOKEN_IDS,)
    return DISTRIBUTIONS


def random_batch(specs: list[InputSpec], distribution: str, n: int,
                 seed: int) -> list[np.ndarray]:
    """``n`` samples for every input; a fixed seed per distribution keeps runs reproducible."""
    offset = (*DISTRIBUTIONS, TOKEN_IDS).index(distribution)
    rng = np.random.default_rng([seed, offset])
    out = []
    for spec in specs:
        shape = (n, *spec.concrete())
        if spec.is_int:
            high = max(spec.low + 1, spec.vocab or DEFAULT_VOCAB)
            out.append(rng.integers(spec.low, high, size=shape).astype(_np_dtype(spec.dtype)))
        else:
            out.append(_floats(rng, distribution, shape).astype(_np_dtype(spec.dtype)))
    return out


def _floats(rng: np.random.Generator, distribution: str, shape: tuple[int, ...]) -> np.ndarray:
    if distribution == "uniform01":
        return rng.uniform(0.0, 1.0, size=shape)
    if distribution == "uniform0_255":
        return rng.uniform(0.0, 255.0, size=shape)
    if distribution == "uniform_m1_1":
        return rng.uniform(-1.0, 1.0, size=shape)
    return rng.standard_normal(size=shape)


def _np_dtype(dtype: str) -> str:
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
    _check_shapes(real, specs)
    if not real.duplicates:
        real.duplicates = find_duplicates(real.arrays, _row_names(real))
    return real


def _row_names(real: RealInputs) -> list[str]:
    if len(real.names) == real.count:
        return real.names
    return [f"row {i}" for i in range(real.count)]


def _npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputsError(f"--inputs {p}: cannot read as .npy without pickle: {exc}") from None


def _npz(p: Path, specs: list[InputSpec]) -> RealInputs:
    """Arrays matched to inputs by name, else taken in file order."""
    try:
        with np.load(p, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise InputsError(f"--inputs {p}: cannot read as .npz without pickle: {exc}") from None
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
    with p.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row:
                continue
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if i == 0:
                    continue
                raise InputsError(f"--inputs {p}: row {i + 1} is not numeric") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise InputsError(f"--inputs {p}: expected numeric rows of equal length")
    return np.asarray(rows, dtype="float32")


def _images(directory: Path, specs: list[InputSpec]) -> RealInputs:
    """Decode and resize every image to the (single, image-shaped) input with TensorFlow."""
    files = sorted(f for f in directory.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputsError(f"--inputs {directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(specs) != 1 or len(specs[0].shape) != 4:
        raise InputsError(f"--inputs {directory}: images need one input of shape "
                          f"(batch, height, width, channels); the model expects "
                          f"{[tuple(s.shape) for s in specs]}")
    import tensorflow as tf

    height, width, channels = specs[0].concrete()
    notes: set[str] = set()
    arrays = []
    for f in files:
        try:
            img = tf.io.decode_image(f.read_bytes(), expand_animations=False)
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
    real.duplicates = _duplicate_files(files) or find_duplicates([batch], names)
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


def _duplicate_files(files: list[Path]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(hashlib.sha256(f.read_bytes()).hexdigest(), []).append(f.name)
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


def _check_shapes(real: RealInputs, specs: list[InputSpec]) -> None:
    if len(real.arrays) != len(specs):
        raise InputsError(f"--inputs {real.source}: the model has {len(specs)} inputs, "
                          f"{len(real.arrays)} given")
    counts = {int(a.shape[0]) if a.ndim else 0 for a in real.arrays}
    for a, spec in zip(real.arrays, specs, strict=False):
        want = tuple(spec.shape[1:])
        got = tuple(a.shape[1:])
        fits = a.ndim == len(spec.shape) and all(
            w is None or w == g for w, g in zip(want, got, strict=True))
        if not fits:
            expected = "(N, " + ", ".join("?" if d is None else str(d) for d in want) + ")"
            raise InputsError(f"--inputs {real.source}: input '{spec.name}' expects shape "
                              f"{expected}, given {tuple(a.shape)}")
    if len(counts) != 1 or 0 in counts:
        raise InputsError(f"--inputs {real.source}: every input needs the same number of "
                          f"samples (got {sorted(counts)})")
    real.arrays = [a.astype(_np_dtype(s.dtype)) for a, s in zip(real.arrays, specs, strict=False)]
