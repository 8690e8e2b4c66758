"""SavedModel reader against what Keras itself reported for the same models (reference_*.json).

Weight values are checked against the same model's Keras 2 ``.h5`` (read with h5py), so the
checkpoint table reader, the object-graph key mapping and the data offsets are all exercised.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import LayerNode, ModelGraph
from inspector.readers import open_model
from inspector.readers import protowire as pw
from inspector.readers.savedmodel import read_savedmodel
from inspector.readers.tf_checkpoint import CheckpointBundle

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
K2_FAMILIES = ("mlp", "cnn_bn", "transfer", "rnn")
K3_EXPORT_FAMILIES = ("mlp", "cnn_bn")
WRAPPED_VIA = ("layer", "forward_layer", "backward_layer")


def _reference(family: str, which: str) -> dict[str, Any]:
    return json.loads((MODELS / family / f"reference_{which}.json").read_text())


def _short(weight_name: str) -> str:
    """``bigru/forward_gru/gru_cell/kernel:0`` -> ``kernel``: how WeightInfo names it."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def _subtree_weights(node: LayerNode) -> list[Any]:
    return [w for _n, w in node.all_weights()]


def _check_layer(node: LayerNode, ref: dict[str, Any]) -> None:
    where = node.path
    assert node.class_name == ref["class_name"], where
    if ref["via"] != "cell":  # the synthetic cell node of a flattened RNN config is "cell"
        assert node.name == ref["name"], where
    assert node.params.total == ref["params"], where
    weights = _subtree_weights(node)
    assert [w.name for w in weights] == [_short(n) for n in ref["weights"]], where
    assert [list(w.shape) for w in weights] == ref["weight_shapes"], where
    if ref["output_shape"] is not None and ref["via"] == "layers":
        got = node.output_shape
        got = [list(s) for s in got] if isinstance(got, list) else list(got or [])
        assert got == ref["output_shape"], where
    children = [c for c in ref["layers"] if c["via"] in ("layers", "cell", *WRAPPED_VIA)]
    assert len(node.children) == len(children), where
    for child, child_ref in zip(node.children, children, strict=True):
        _check_layer(child, child_ref)


@pytest.fixture(scope="module", params=K2_FAMILIES)
def k2_graph(request: pytest.FixtureRequest) -> tuple[str, ModelGraph]:
    family = request.param
    return family, read_savedmodel(str(MODELS / family / "k2_savedmodel"))


def test_k2_savedmodel_matches_keras(k2_graph: tuple[str, ModelGraph]) -> None:
    family, graph = k2_graph
    ref = _reference(family, "k2")
    assert graph.format == "savedmodel-keras"
    assert graph.has_architecture
    assert graph.class_name == ref["class_name"]
    assert len(graph.layers) == ref["layer_count"]
    assert graph.params.as_dict() == ref["params"]
    assert [t.name for t in graph.outputs] == [o["name"] for o in ref["outputs"]]
    assert [list(t.shape or ()) for t in graph.inputs] == [i["shape"] for i in ref["inputs"]]
    for node, layer_ref in zip(graph.layers, ref["layers"], strict=True):
        assert layer_ref["via"] == "layers"
        _check_layer(node, layer_ref)
    assert graph.keras_version and graph.backend == "tensorflow"
    serving = (graph.signatures or {}).get("serving_default")
    if serving is None:  # tf_keras saved no traced signature for this model
        assert any("serving_default" in note for note in graph.notes)
    else:
        assert [i["shape"] for i in serving["inputs"].values()] == \
            [i["shape"] for i in ref["inputs"]]
        assert list(serving["outputs"]) == [o["name"] for o in ref["outputs"]]


def test_k2_savedmodel_weight_values_equal_h5(k2_graph: tuple[str, ModelGraph]) -> None:
    """Every layer weight equals the same model's k2.h5 dataset, element for element."""
    family, graph = k2_graph
    ref = _reference(family, "k2")
    checked = 0
    with h5py.File(MODELS / family / "k2.h5", "r") as h5:
        weights_root = h5["model_weights"]
        for node, layer_ref in zip(graph.layers, ref["layers"], strict=True):
            for weight, ref_name in zip(_subtree_weights(node), layer_ref["weights"],
                                        strict=True):
                expected = np.asarray(weights_root[layer_ref["name"]][ref_name])
                assert weight.source is not None, weight.storage_path
                assert weight.dtype == str(expected.dtype)
                np.testing.assert_array_equal(weight.source.read(), expected)
                chunks = list(weight.source.iter_chunks(7))
                assert all(c.size <= 7 for c in chunks)
                np.testing.assert_array_equal(np.concatenate(chunks), expected.reshape(-1))
                assert weight.storage_path.endswith("/.ATTRIBUTES/VARIABLE_VALUE")
                checked += 1
    assert checked == sum(len(layer["weights"]) for layer in ref["layers"])


def _layer_facts(graph: ModelGraph) -> list[tuple[Any, ...]]:
    return [(n.path, n.class_name, n.role, n.trainable, n.output_shape, n.params.as_dict(),
             [(w.name, w.shape, w.dtype, w.trainable) for w in n.weights], n.config,
             [([(r.layer, r.node_index, r.tensor_index) for r in c.inputs], c.kwargs)
              for c in n.calls])
            for n in graph.walk()]


def test_k2_savedmodel_graph_equals_k2_h5_graph(k2_graph: tuple[str, ModelGraph]) -> None:
    """The same model saved as SavedModel and as Keras 2 h5 reads into the same graph:
    configs, calls, shapes, params, weights and the normalized training config."""
    family, graph = k2_graph
    h5_graph = open_model(MODELS / family / "k2.h5")
    try:
        assert _layer_facts(graph) == _layer_facts(h5_graph)
        assert graph.inputs == h5_graph.inputs and graph.outputs == h5_graph.outputs
        assert graph.keras_version == h5_graph.keras_version
        mine, theirs = graph.training_config or {}, h5_graph.training_config or {}
        assert {k: v for k, v in mine.items() if k != "raw"} == \
            {k: v for k, v in theirs.items() if k != "raw"}
    finally:
        if h5_graph.close is not None:
            h5_graph.close()


@pytest.mark.parametrize("variant", ["rnn/k2_savedmodel", "cnn_bn/k3_export"])
def test_checkpoint_keys_derived_without_object_graph(variant: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints without _CHECKPOINTABLE_OBJECT_GRAPH: keys derived from the object routes
    are the ones TensorFlow wrote."""
    def keys(graph: ModelGraph) -> list[str]:
        return [w.storage_path for _n, w in graph.all_weights()]

    expected = keys(read_savedmodel(str(MODELS / variant)))
    monkeypatch.setattr(CheckpointBundle, "read_string_scalar", lambda self, key: None)
    assert keys(read_savedmodel(str(MODELS / variant))) == expected
    assert all(expected)


def test_k2_savedmodel_training_config() -> None:
    graph = read_savedmodel(str(MODELS / "mlp" / "k2_savedmodel"))
    assert graph.training_config is not None
    assert graph.training_config["optimizer"]["class_name"]
    assert graph.training_config["loss"] is not None


@pytest.mark.parametrize("family", K3_EXPORT_FAMILIES)
def test_k3_export_signatures_and_variables(family: str) -> None:
    ref = _reference(family, "k3")
    graph = read_savedmodel(str(MODELS / family / "k3_export"))
    assert graph.format == "savedmodel"
    assert graph.root is None and not graph.has_architecture
    serving = graph.signatures["serving_default"]
    assert [i["shape"] for i in serving["inputs"].values()] == [i["shape"] for i in ref["inputs"]]
    assert [o["shape"] for o in serving["outputs"].values()] == \
        [o["shape"] for o in ref["outputs"]]
    assert all(i["dtype"] == "float32" for i in serving["inputs"].values())
    assert [t.shape for t in graph.inputs] == [tuple(i["shape"]) for i in ref["inputs"]]
    # Every Keras weight (Keras 3 variable.path) is listed once, with its shape, whatever
    # else the export tracks (a Dropout's seed generator state, for instance).
    listed = {w.name: w for w in graph.loose_weights}
    assert len(listed) == len(graph.loose_weights)
    for layer in ref["layers"]:
        for name, shape in zip(layer["weights"], layer["weight_shapes"], strict=True):
            weight = listed[name]
            assert list(weight.shape) == shape, name
            assert weight.source is not None and list(weight.source.read().shape) == shape
    extra = set(listed) - {n for layer in ref["layers"] for n in layer["weights"]}
    assert all("seed_generator" in n for n in extra), extra


def test_k3_export_values_equal_k3_weights_h5() -> None:
    """Every exported variable holds the same numbers as the model's Keras 3 ``.weights.h5``
    (where Keras 3 stores a layer's variables by index under its class's snake-case name)."""
    ref = _reference("cnn_bn", "k3")
    graph = read_savedmodel(str(MODELS / "cnn_bn" / "k3_export"))
    by_name = {w.name: w for w in graph.loose_weights}
    groups = {"Conv2D": "conv2d", "BatchNormalization": "batch_normalization", "Dense": "dense"}
    checked = 0
    with h5py.File(MODELS / "cnn_bn" / "k3.weights.h5", "r") as h5:
        for layer in ref["layers"]:
            for index, name in enumerate(layer["weights"]):
                expected = np.asarray(h5[f"layers/{groups[layer['class_name']]}/vars/{index}"])
                source = by_name[name].source
                assert source is not None
                np.testing.assert_array_equal(source.read(), expected)
                checked += 1
    assert checked == 8


# ---------------------------------------------------------------- bad input


def _copy(tmp_path: Path, family: str = "mlp", variant: str = "k2_savedmodel") -> Path:
    target = tmp_path / variant
    shutil.copytree(MODELS / family / variant, target)
    return target


def _truncate(path: Path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_directory_without_saved_model_pb(tmp_path: Path) -> None:
    with pytest.raises(KinspectError) as err:
        read_savedmodel(str(tmp_path))
    assert err.value.kind is ErrorKind.NOT_A_MODEL
    assert "saved_model.pb" in err.value.message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(KinspectError) as err:
        read_savedmodel(str(tmp_path / "nope"))
    assert err.value.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize("variant", ["k2_savedmodel", "k3_export"])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.97])
def test_truncated_saved_model_pb(tmp_path: Path, variant: str, fraction: float) -> None:
    model = _copy(tmp_path, variant=variant)
    pb = model / "saved_model.pb"
    _truncate(pb, int(pb.stat().st_size * fraction))
    with pytest.raises(KinspectError):
        read_savedmodel(str(model))


def test_random_bytes_saved_model_pb(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    (model / "saved_model.pb").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(KinspectError):
        read_savedmodel(str(model))


@pytest.mark.parametrize("keep", [0, 10, 47, 200, -1])
def test_truncated_variables_index(tmp_path: Path, keep: int) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    _truncate(index, keep if keep >= 0 else index.stat().st_size - 1)
    with pytest.raises(KinspectError) as err:
        read_savedmodel(str(model))
    assert "variables.index" in err.value.path


def test_flipped_byte_in_index_block_fails_checksum(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    data = bytearray(index.read_bytes())
    data[40] ^= 0x55
    index.write_bytes(bytes(data))
    with pytest.raises(KinspectError, match="checksum"):
        read_savedmodel(str(model))


def test_truncated_data_shard(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    shard = model / "variables" / "variables.data-00000-of-00001"
    _truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(KinspectError, match="past the end"):
        read_savedmodel(str(model))


def test_symlinked_shard_is_reported_and_read(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    shard = model / "variables" / "variables.data-00000-of-00001"
    elsewhere = tmp_path / "elsewhere.bin"
    shard.rename(elsewhere)
    shard.symlink_to(elsewhere)
    graph = read_savedmodel(str(model))
    issues = [(i.kind, i.location) for i in graph.container_issues]
    assert issues == [("savedmodel-symlink", "variables/variables.data-00000-of-00001")]
    assert "outside" in graph.container_issues[0].detail
    assert all(w.source is not None for _n, w in graph.all_weights())


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize("member", ["variables/variables.data-00000-of-00001",
                                    "variables/variables.index", "keras_metadata.pb"])
def test_fifo_member_is_refused_without_blocking(tmp_path: Path, member: str) -> None:
    model = _copy(tmp_path)
    (model / member).unlink()
    os.mkfifo(model / member)
    with pytest.raises(KinspectError, match="regular file"):
        read_savedmodel(str(model))


def test_corrupt_keras_metadata(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    meta = model / "keras_metadata.pb"
    _truncate(meta, meta.stat().st_size // 2)
    with pytest.raises(KinspectError):
        read_savedmodel(str(model))


def test_missing_variables_still_reads_structure(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    shutil.rmtree(model / "variables")
    graph = read_savedmodel(str(model))
    weights = [w for _n, w in graph.all_weights()]
    assert weights and all(w.source is None for w in weights)
    assert graph.params.as_dict() == _reference("mlp", "k2")["params"]
    assert any("variables.index" in n for n in graph.notes)


def test_protowire_decodes_what_protobuf_encodes() -> None:
    """Cross-check against the protobuf runtime on messages it ships (no TF protos needed)."""
    from google.protobuf import descriptor_pb2, wrappers_pb2

    field_proto = descriptor_pb2.FieldDescriptorProto(name="kernel", number=150, label=3)
    fields = pw.parse(field_proto.SerializeToString())
    assert pw.get_str(fields, 1) == "kernel" and pw.get_int(fields, 3) == 150
    assert pw.get_int(fields, 4) == 3 and pw.get_bytes(fields, 2) is None
    negative = wrappers_pb2.Int64Value(value=-5).SerializeToString()
    assert pw.get_sint64(pw.parse(negative), 1) == -5
    double = pw.get_int(pw.parse(wrappers_pb2.DoubleValue(value=1.5).SerializeToString()), 1)
    assert struct.unpack("<d", double.to_bytes(8, "little"))[0] == 1.5
    single = pw.get_int(pw.parse(wrappers_pb2.FloatValue(value=-2.0).SerializeToString()), 1)
    assert struct.unpack("<f", single.to_bytes(4, "little"))[0] == -2.0
    enum = descriptor_pb2.EnumDescriptorProto(name="E", value=[
        descriptor_pb2.EnumValueDescriptorProto(name=n, number=k) for k, n in enumerate("ab")])
    values = [pw.parse(v) for v in pw.get_msgs(pw.parse(enum.SerializeToString()), 2)]
    assert [(pw.get_str(v, 1), pw.get_int(v, 2)) for v in values] == [("a", 0), ("b", 1)]
    packed = descriptor_pb2.SourceCodeInfo.Location(path=[1, 300, 2]).SerializeToString()
    assert pw.get_packed_ints(pw.parse(packed), 1) == [1, 300, 2]
    entry = _field(1, b"key") + _field(2, _field(1, 7))
    assert {k: bytes(v) for k, v in pw.get_map(pw.parse(_field(9, entry)), 9).items()} == \
        {"key": _field(1, 7)}


@pytest.mark.parametrize("data", [b"\x08", b"\x08\x80", b"\x12\x05ab", b"\x0d\x01",
                                  b"\x09\x01\x02", b"\x0b", b"\x00\x01",
                                  b"\x08" + b"\xff" * 11 + b"\x01"])
def test_protowire_truncated_or_invalid(data: bytes) -> None:
    with pytest.raises(pw.WireError):
        pw.parse(data)


def test_protowire_type_confusion_is_a_wire_error() -> None:
    fields = pw.parse(_field(1, 5) + _field(2, b"x"))
    with pytest.raises(pw.WireError):
        pw.get_str(fields, 1)
    with pytest.raises(pw.WireError):
        pw.get_int(fields, 2)
    with pytest.raises(pw.WireError):
        pw.get_str(pw.parse(_field(3, b"\xff\xfe")), 3)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_protowire_rejects_garbage_cleanly(data: bytes) -> None:
    try:
        for _number, _wire, value in pw.iter_fields(data):
            if isinstance(value, memoryview):
                assert len(value) <= len(data)
    except pw.WireError:
        pass


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_files_raise_only_kinspect_error(tmp_path: Path,
                                                 edits: list[tuple[int, int]]) -> None:
    """Random byte edits in saved_model.pb / variables.index never leak a raw exception."""
    model = tmp_path / "m"
    if model.exists():
        shutil.rmtree(model)
    shutil.copytree(MODELS / "rnn" / "k2_savedmodel", model)
    for target in (model / "saved_model.pb", model / "variables" / "variables.index"):
        data = bytearray(target.read_bytes())
        for pos, value in edits:
            data[pos % len(data)] = value
        target.write_bytes(bytes(data))
    try:
        graph = read_savedmodel(str(model))
    except KinspectError:
        return
    for _node, weight in graph.all_weights():
        if weight.source is not None:
            with contextlib.suppress(KinspectError):
                weight.source.read()


def test_bundle_entries_cover_every_variable() -> None:
    bundle = CheckpointBundle(str(MODELS / "cnn_bn" / "k2_savedmodel" / "variables" /
                                  "variables"))
    graph = read_savedmodel(str(MODELS / "cnn_bn" / "k2_savedmodel"))
    keys = [w.storage_path for _n, w in graph.all_weights()]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert bundle.entries[key].offset + bundle.entries[key].size <= os.path.getsize(
            bundle.data_path(0))


# ---------------------------------------------------------------- crafted files


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _rewrite_metadata(model: Path, edit: Any) -> None:
    """Re-encode keras_metadata.pb after ``edit(node_path, metadata) -> metadata | None``."""
    nodes = []
    for raw in pw.get_msgs(pw.parse((model / "keras_metadata.pb").read_bytes()), 1):
        fields = pw.parse(raw)
        path = pw.get_str(fields, 3)
        text = edit(path, json.loads(pw.get_str(fields, 5)))
        if text is None:
            continue
        body = (_field(2, pw.get_int(fields, 2)) + _field(3, path.encode())
                + _field(4, pw.get_str(fields, 4).encode()) + _field(5, text.encode()))
        nodes.append(_field(1, body))
    (model / "keras_metadata.pb").write_bytes(b"".join(nodes))


def test_subclassed_style_metadata_lists_sub_layers(tmp_path: Path) -> None:
    """Without a layer graph in model_config, the direct sub-layers come from their metadata."""
    model = _copy(tmp_path)

    def edit(path: str, meta: dict[str, Any]) -> str:
        if path == "root":
            meta["model_config"] = {"class_name": "MyModel", "config": {}}
            meta["class_name"] = "MyModel"
        return json.dumps(meta)

    _rewrite_metadata(model, edit)
    graph = read_savedmodel(str(model))
    ref = _reference("mlp", "k2")
    assert graph.class_name == "MyModel"
    assert [n.name for n in graph.layers] == [layer["name"] for layer in ref["layers"]]
    assert graph.params.as_dict() == ref["params"]
    assert any("subclassed" in n for n in graph.notes)


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000 + "]" * 100_000])
def test_bad_metadata_json(tmp_path: Path, text: str) -> None:
    model = _copy(tmp_path)
    _rewrite_metadata(model, lambda path, meta: text if path == "root" else json.dumps(meta))
    with pytest.raises(KinspectError):
        read_savedmodel(str(model))


def test_metadata_without_root_object(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    _rewrite_metadata(model, lambda path, meta: None if path == "root" else json.dumps(meta))
    with pytest.raises(KinspectError, match="root"):
        read_savedmodel(str(model))


def test_compressed_index_block_is_unsupported(tmp_path: Path) -> None:
    model = _copy(tmp_path)
    index = model / "variables" / "variables.index"
    data = bytearray(index.read_bytes())
    footer = memoryview(bytes(data[-48:]))
    _meta_offset, pos = pw.read_varint(footer, 0, 48)
    _meta_size, pos = pw.read_varint(footer, pos, 48)
    index_offset, pos = pw.read_varint(footer, pos, 48)
    index_size, _ = pw.read_varint(footer, pos, 48)
    data[index_offset + index_size] = 1  # the block trailer's compression byte: snappy
    index.write_bytes(bytes(data))
    with pytest.raises(KinspectError, match="snappy") as err:
        read_savedmodel(str(model))
    assert err.value.kind is ErrorKind.UNSUPPORTED


@pytest.mark.parametrize(("enum", "stored", "expected"), [
    (14, np.array([0x3F80, 0xC000], "<u2"), np.array([1.0, -2.0], "f4")),  # bfloat16
    (19, np.array([1.5, -0.25], "<f2"), np.array([1.5, -0.25], "f2")),
    (9, np.array([-3, 1 << 40], "<i8"), np.array([-3, 1 << 40], "i8")),
    (10, np.array([1, 0], "u1"), np.array([True, False])),
])
def test_tensor_source_dtypes(tmp_path: Path, enum: int, stored: np.ndarray,
                              expected: np.ndarray) -> None:
    from inspector.readers.tf_checkpoint import BundleEntry, TensorSource
    from inspector.readers.tf_proto import dtype_name

    data = tmp_path / "x.data-00000-of-00001"
    data.write_bytes(b"\0" * 3 + stored.tobytes())
    entry = BundleEntry("x", dtype_name(enum), enum, (2,), 0, 3, stored.nbytes)
    source = TensorSource(str(data), entry)
    np.testing.assert_array_equal(source.read(), expected)
    assert source.read().dtype == expected.dtype
    np.testing.assert_array_equal(np.concatenate(list(source.iter_chunks(1))), expected)


_PLAIN_TF_SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tensorflow.compat.v1 as tf1

class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.reshape(tf.range(6, dtype=tf.float32), (3, 2)), name="w")
        self.b = tf.Variable(tf.zeros((2,)), name="Variable")
        self.c = tf.Variable(tf.zeros((2,)), name="Variable")
        self.h = tf.Variable(tf.constant([1.5, -2.0], tf.bfloat16), name="h")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def __call__(self, x):
        return {"y": x @ self.w + self.b + self.c}

tf.saved_model.save(M(), sys.argv[1])
with tf1.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
    x = tf1.placeholder(tf.float32, [None, 3], name="x")
    w = tf1.Variable(tf.reshape(tf.range(6, dtype=tf.float32), (3, 2)), name="layer/w")
    y = tf1.matmul(x, w, name="y")
    sess.run(tf1.global_variables_initializer())
    tf1.saved_model.simple_save(sess, sys.argv[2], {"x": x}, {"y": y})
"""


@pytest.fixture(scope="module")
def plain_tf_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tf.Module saved with tf.saved_model.save and a TF1 simple_save model (in a child
    process, so this test process never imports TensorFlow)."""
    out = tmp_path_factory.mktemp("plain_tf")
    module, tf1 = out / "module", out / "tf1"
    done = subprocess.run([sys.executable, "-c", _PLAIN_TF_SCRIPT, str(module), str(tf1)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return module, tf1


_XY_SIGNATURE = {"serving_default": {
    "inputs": {"x": {"dtype": "float32", "shape": [None, 3]}},
    "outputs": {"y": {"dtype": "float32", "shape": [None, 2]}}}}


@pytest.mark.tf
def test_plain_tf_module_savedmodel(plain_tf_models: tuple[Path, Path]) -> None:
    """Signatures + every variable once, including two distinct variables TF named alike
    (same name, same zero values) and a bfloat16 one."""
    graph = read_savedmodel(str(plain_tf_models[0]))
    assert graph.format == "savedmodel" and graph.root is None
    assert graph.signatures == _XY_SIGNATURE
    assert [(w.name, w.shape, w.dtype) for w in graph.loose_weights] == [
        ("w", (3, 2), "float32"), ("Variable", (2,), "float32"),
        ("Variable", (2,), "float32"), ("h", (2,), "bfloat16")]
    values = {w.storage_path: w.source.read() for w in graph.loose_weights if w.source}
    np.testing.assert_array_equal(values["w/.ATTRIBUTES/VARIABLE_VALUE"],
                                  np.arange(6, dtype="f4").reshape(3, 2))
    np.testing.assert_array_equal(values["h/.ATTRIBUTES/VARIABLE_VALUE"], [1.5, -2.0])


@pytest.mark.tf
def test_tf1_savedmodel_lists_checkpoint_tensors(plain_tf_models: tuple[Path, Path]) -> None:
    graph = read_savedmodel(str(plain_tf_models[1]))
    assert graph.format == "savedmodel" and graph.signatures == _XY_SIGNATURE
    assert [(w.name, w.shape, w.storage_path) for w in graph.loose_weights] == [
        ("layer/w", (3, 2), "layer/w")]
    source = graph.loose_weights[0].source
    assert source is not None
    np.testing.assert_array_equal(source.read(), np.arange(6, dtype="f4").reshape(3, 2))
    assert any("TF1" in n for n in graph.notes)


# ---------------------------------------------------------------- no TensorFlow


def test_reading_savedmodels_never_imports_tensorflow(tmp_path: Path) -> None:
    canaries = sorted(str(p) for p in (ROOT / "fixtures" / "hostile").glob("**/saved_model.pb"))
    dirs = sorted(str(p) for p in MODELS.glob("*/k2_savedmodel")) + \
        sorted(str(p) for p in MODELS.glob("*/k3_export")) + \
        [os.path.dirname(p) for p in canaries]
    assert len(dirs) >= len(K2_FAMILIES) + len(K3_EXPORT_FAMILIES)
    script = (
        "import sys\n"
        "from inspector.readers.savedmodel import read_savedmodel\n"
        f"for d in {dirs!r}:\n"
        "    g = read_savedmodel(d)\n"
        "    for _n, w in g.all_weights():\n"
        "        if w.source is not None:\n"
        "            w.source.read()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('tensorflow', 'keras', 'tf_keras', 'kinspect_canary'))\n"
        "print(','.join(bad) or 'clean')\n"
    )
    # The canary payload is importable, so a reader that imported it would be caught.
    payload = ROOT / "fixtures" / "hostile" / "payload"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "KINSPECT_CANARY_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(payload),
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"


# ---------------------------------------------------------------- protowire on disk


def _tree(value: pw.Lazy, depth: int = 0) -> list[Any]:
    """A message's fields three levels deep, read through the on-disk/in-memory walker."""
    out: list[Any] = []
    for number, _wire, item in pw.fields_of(value):
        if isinstance(item, int):
            out.append((number, item))
            continue
        sub = None
        if depth < 3:
            with contextlib.suppress(pw.WireError):
                sub = _tree(item, depth + 1)
        out.append((number, bytes(pw.load(item)), sub))
    return out


@pytest.mark.parametrize("window", [64, 1000, pw.WINDOW])
def test_protowire_on_disk_walk_matches_in_memory(monkeypatch: pytest.MonkeyPatch,
                                                  window: int) -> None:
    monkeypatch.setattr(pw, "WINDOW", window)
    path = MODELS / "cnn_bn" / "k2_savedmodel" / "saved_model.pb"
    data = path.read_bytes()
    with open(path, "rb") as handle:
        on_disk = _tree(pw.open_span(pw.FileBudget(handle, 1 << 30), len(data)))
    assert on_disk == _tree(memoryview(data))


def test_protowire_big_field_stays_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "m.pb"
    big = 5 * pw.WINDOW
    target.write_bytes(_field(1, 7) + _field(3, b"x" * big) + _field(2, b"tail"))
    with open(target, "rb") as handle:
        budget = pw.FileBudget(handle, 1 << 20)
        fields = pw.parse_lazy(pw.open_span(budget, target.stat().st_size))
        span = fields[3][0]
        assert isinstance(span, pw.Span) and len(span) == big
        assert budget.used < 64  # the big field was never read
        assert bytes(fields[2][0]) == b"tail"
        with pytest.raises(pw.ReadCapError):
            pw.load(span, limit=big - 1)
        budget.limit = budget.used + 10
        with pytest.raises(pw.ReadCapError):
            pw.load(span)


@pytest.mark.parametrize("data", [_field(3, b"x" * 200_000)[:-1], b"\x1a\xff\xff\xff\x7f"])
def test_protowire_on_disk_truncation_is_a_wire_error(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "t.pb"
    target.write_bytes(data)
    with open(target, "rb") as handle, pytest.raises(pw.WireError):
        list(pw.fields_of(pw.open_span(pw.FileBudget(handle, 1 << 30), len(data))))


def test_oversized_variables_index_is_refused_unread(tmp_path: Path) -> None:
    from inspector.readers import tf_checkpoint

    model = _copy(tmp_path)
    with open(model / "variables" / "variables.index", "r+b") as handle:
        handle.truncate(tf_checkpoint.MAX_INDEX_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(KinspectError) as err:
        read_savedmodel(str(model))
    assert err.value.kind is ErrorKind.TOO_LARGE
