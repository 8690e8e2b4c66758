"""TensorFlow message pieces shared by the SavedModel and checkpoint readers.

``DataType`` enum values and ``TensorShapeProto`` are written into saved_model.pb, the checkpoint
index and TensorInfo alike; decoding them lives here once. Field numbers follow
tensorflow/core/framework/{types,tensor_shape}.proto.
"""

from __future__ import annotations

from typing import NamedTuple

from . import protowire as pw


class TFDType(NamedTuple):
    name: str  # what WeightInfo/TensorSpec report (numpy-style where numpy has the type)
    numpy: str | None  # numpy dtype code of the stored bytes; None when not numeric storage


# DataType enum -> names. bfloat16 has no numpy type: its 2-byte words are widened on read.
TF_DTYPES: dict[int, TFDType] = {
    1: TFDType("float32", "f4"),
    2: TFDType("float64", "f8"),
    3: TFDType("int32", "i4"),
    4: TFDType("uint8", "u1"),
    5: TFDType("int16", "i2"),
    6: TFDType("int8", "i1"),
    7: TFDType("string", None),
    8: TFDType("complex64", "c8"),
    9: TFDType("int64", "i8"),
    10: TFDType("bool", "?"),
    11: TFDType("qint8", "i1"),
    12: TFDType("quint8", "u1"),
    13: TFDType("qint32", "i4"),
    14: TFDType("bfloat16", "u2"),
    15: TFDType("qint16", "i2"),
    16: TFDType("quint16", "u2"),
    17: TFDType("uint16", "u2"),
    18: TFDType("complex128", "c16"),
    19: TFDType("float16", "f2"),
    20: TFDType("resource", None),
    21: TFDType("variant", None),
    22: TFDType("uint32", "u4"),
    23: TFDType("uint64", "u8"),
}


def dtype_name(enum: int) -> str:
    """The readable name of a DataType value (reference types, enum + 100, map to the base)."""
    base = enum - 100 if enum > 100 else enum
    known = TF_DTYPES.get(base)
    return known.name if known else f"dtype_{enum}"


def decode_shape(raw: memoryview | bytes | None) -> tuple[int | None, ...] | None:
    """A TensorShapeProto as a tuple (``None`` for unknown dims); ``None`` for unknown rank."""
    if raw is None:
        return ()
    fields = pw.parse(raw)
    if pw.get_bool(fields, 3):  # unknown_rank
        return None
    dims: list[int | None] = []
    for dim in pw.get_msgs(fields, 2):
        size = pw.get_sint64(pw.parse(dim), 1)
        dims.append(None if size < 0 else size)
    return tuple(dims)
