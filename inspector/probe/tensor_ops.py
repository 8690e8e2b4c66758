"""Layer-output summaries computed with TensorFlow ops (imported by the probe child only).

A ResNet50 activation on a few samples is tens of MB: NumPy reduces it on one core and, on
a GPU, would first copy it to the host. TensorFlow reduces it where it lives, on every core,
and only the per-channel extremes and the unit sample are copied out. Same numbers as
:class:`inspector.probe.layer_pass.ArrayOps` (tests compare the two).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inspector.probe.layer_pass import ArrayOps, Summary, unit_step


class TensorOps(ArrayOps):
    def __init__(self, tf: Any) -> None:
        self.tf = tf

    def summarize(self, value: Any) -> Summary | None:
        tf = self.tf
        if not tf.is_tensor(value) or isinstance(value, tf.SparseTensor | tf.RaggedTensor):
            return super().summarize(value)
        if not tf.executing_eagerly():       # a layer called inside someone's tf.function
            return None
        dtype, rank = value.dtype, value.shape.rank
        if rank is None or rank < 1 or not (dtype.is_floating or dtype.is_integer
                                            or dtype.is_bool):
            return None
        shape = tuple(int(d) for d in value.shape)
        if shape[0] < 1:
            return None
        x = value if dtype == tf.float32 else tf.cast(value, tf.float32)
        flat = tf.reshape(x, (shape[0], -1))
        sample = flat[:, :: unit_step(int(flat.shape[1]))]
        units = tf.reshape(x, (-1, shape[-1])) if rank >= 2 else tf.reshape(x, (-1, 1))
        if int(tf.size(units)) == 0:
            empty = np.zeros(0, "float32")
            return Summary(shape, sample.numpy(), empty, empty, 0, 0)
        col_max = tf.reduce_max(units, axis=0).numpy()
        col_min = tf.reduce_min(units, axis=0).numpy()
        nan = inf = 0
        # NaN and Inf reach the extremes (TensorFlow's CPU max/min propagate NaN, as the tests
        # check): count them only then. GPU kernels make no such promise: check there.
        nonfinite = not (np.isfinite(col_max).all() and np.isfinite(col_min).all())
        if not nonfinite and "GPU" in str(getattr(value, "device", "")).upper():
            nonfinite = not bool(tf.reduce_all(tf.math.is_finite(x)))
        if nonfinite:
            nan = int(tf.math.count_nonzero(tf.math.is_nan(x)))
            inf = int(tf.math.count_nonzero(tf.math.is_inf(x)))
            sample = tf.where(tf.math.is_finite(sample), sample, tf.zeros_like(sample))
        return Summary(shape, sample.numpy(), col_max, col_min, nan, inf)
