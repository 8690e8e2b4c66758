"""Layer types beyond the committed fixtures, saved by live Keras 3 and tf_keras in a child
process and read back statically: params, classes, shapes and weight names must agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.readers import open_model

pytestmark = [pytest.mark.tf, pytest.mark.slow]

BUILD = r'''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
flavor, out = sys.argv[1], sys.argv[2]
if flavor == "k2":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    from tf_keras import layers as L
else:
    import keras
    from keras import layers as L
import numpy as np

def mixed():
    keras.mixed_precision.set_global_policy("mixed_float16")
    i = keras.Input((8, 3))
    x = L.Conv1D(4, 3, padding="causal", dilation_rate=2)(i)
    x = L.UpSampling1D(2)(x)
    x = L.GRU(5, return_sequences=True)(x)
    x = L.MultiHeadAttention(2, 3)(x, x)
    x = L.GlobalMaxPooling1D()(x)
    x = L.Dense(3)(x)
    x = L.Activation("softmax", dtype="float32")(x)
    m = keras.Model(i, x)
    keras.mixed_precision.set_global_policy("float32")
    return m

def nested_shared():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.Dense(3, name="idense")(inner_in), name="inner")
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    ya, yb = inner(a), inner(b)
    n = L.Normalization(axis=-1)
    n.adapt(np.random.rand(10, 6).astype("float32"))
    z = n(L.Concatenate()([ya, yb]))
    z = L.Flatten()(L.Permute((2, 1))(L.Reshape((2, 3))(z)))
    return keras.Model([a, b], [z, yb])

def conv_first():
    i = keras.Input((3, 12, 12))
    x = L.Conv2D(4, 3, strides=2, data_format="channels_first", padding="same")(i)
    x = L.ZeroPadding2D(1, data_format="channels_first")(x)
    x = L.Conv2DTranspose(2, 3, strides=2, data_format="channels_first")(x)
    x = L.Cropping2D(((1, 0), (0, 2)), data_format="channels_first")(x)
    x = L.AveragePooling2D(2, data_format="channels_first")(x)
    x = L.GlobalAveragePooling2D(data_format="channels_first")(x)
    return keras.Model(i, x)

def shape_of(layer):
    o = layer.output
    if isinstance(o, (list, tuple)):
        return [list(t.shape) for t in o]
    return list(o.shape)

ref = {}
for name, build in [("mixed", mixed), ("nested_shared", nested_shared), ("conv", conv_first)]:
    keras.backend.clear_session()
    m = build()
    m.save(os.path.join(out, name + ".h5"))
    m.save(os.path.join(out, name + ".keras"))
    ref[name] = {
        "total": int(m.count_params()),
        "trainable": int(sum(int(np.prod(v.shape)) for v in m.trainable_weights)),
        "layers": [[l.name, type(l).__name__, int(l.count_params()), shape_of(l),
                    [v.name.split(":")[0].rsplit("/", 1)[-1] for v in l.weights],
                    getattr(getattr(l, "dtype_policy", None), "name", None)]
                   for l in m.layers]}
with open(os.path.join(out, "ref.json"), "w") as fh:
    json.dump(ref, fh)
'''


def _norm(shape: object) -> object:
    if isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], list):
        shape = shape[0]
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return [tuple(s) for s in shape]
    return tuple(shape) if isinstance(shape, list) else shape


@pytest.mark.parametrize("flavor", ["k3", "k2"])
def test_live_models_read_back_statically(tmp_path: Path, flavor: str) -> None:
    proc = subprocess.run([sys.executable, "-c", BUILD, flavor, str(tmp_path)],
                          capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = json.loads((tmp_path / "ref.json").read_text())
    for name, expected in ref.items():
        for ext in ("h5", "keras"):
            graph = open_model(tmp_path / f"{name}.{ext}")
            try:
                where = f"{name}.{ext}"
                assert (graph.params.total, graph.params.trainable) == (
                    expected["total"], expected["trainable"]), where
                assert len(graph.layers) == len(expected["layers"]), where
                for node, (lname, cls, params, shape, weights, policy) in zip(
                        graph.layers, expected["layers"], strict=True):
                    assert (node.name, node.class_name, node.params.total) == (
                        lname, cls, params), where
                    assert node.output_shape == _norm(shape), f"{where}: {lname}"
                    mine = [w.name.rsplit("/", 1)[-1] for _, w in node.all_weights()]
                    assert mine == weights, f"{where}: {lname}"
                    if policy and node.role == "layer" and node.class_name != "InputLayer":
                        assert node.dtype_policy == policy, f"{where}: {lname}"
            finally:
                if graph.close:
                    graph.close()
