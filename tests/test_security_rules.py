"""Security rules on hand-built configs, the bytecode scan, and the built-in name tables.

Marshalled code here is produced with ``marshal.dumps`` of code compiled in the test (writing
bytes, never loading them); the rules only ever scan such bytes.
"""

from __future__ import annotations

import base64
import marshal
from typing import Any

import pytest
from test_weight_rules import chain, findings, layer

from inspector.graph import (
    CONTAINER_ISSUE_KINDS,
    ROOT_PATH,
    CallNode,
    ContainerIssue,
    LayerNode,
    ModelGraph,
)
from inspector.readers.keras_config import (
    is_builtin_module,
    is_builtin_registered_name,
    normalize_training_config,
    normalize_value,
    parse_model_config,
)
from inspector.rules import keras_builtins
from inspector.rules.bytecode_scan import decode_marshalled, func_load_bytes, scan_code


def _b64_code(source: str) -> str:
    code = compile(source, "<fixture>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


BENIGN = _b64_code("lambda x: x * 2.5")
RISKY = _b64_code("lambda x: __import__('os').system('true') or x")


def rules(graph: ModelGraph, rule: str) -> list[tuple[str, str | None]]:
    return [(f.severity, f.layer) for f in findings(graph, rule)]


def with_training(graph: ModelGraph, raw: dict[str, Any]) -> ModelGraph:
    graph.training_config = {"loss": None, "optimizer": None, "metrics": None, "raw": raw}
    return graph


# --------------------------------------------------------------------------- bytecode scan


def test_scan_finds_names_and_constants_without_loading() -> None:
    raw = decode_marshalled(RISKY)
    assert raw is not None
    summary = scan_code(raw)
    assert {"__import__", "system", "x"} <= set(summary.names)
    assert {"os", "true"} <= set(summary.names + summary.strings)
    assert {"__import__", "os", "system"} <= set(summary.risky)
    assert summary.size == len(raw)


@pytest.mark.parametrize("value", [
    "aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgY29kZQ==",  # base64 of plain text
    "not base64 at all, spaces and commas!",
    "4wEAAA==",  # too short
    12345,
])
def test_decode_marshalled_rejects_non_code(value: Any) -> None:
    assert decode_marshalled(value) is None


# --------------------------------------------------------------------------- lambda-layer


def test_keras2_lambda_severity_follows_the_names_in_the_code() -> None:
    benign = layer("lam", "Lambda", function=[BENIGN, None, None], function_type="lambda",
                   module="__main__")
    assert rules(chain(benign), "lambda-layer") == [("warning", "model/lam")]
    risky = layer("lam", "Lambda", function=[RISKY, None, None], function_type="lambda")
    (f,) = findings(chain(risky), "lambda-layer")
    assert f.severity == "error" and "system" in f.evidence["risky_names"]
    assert f.evidence["form"] == "Keras 2 marshalled bytecode"


def test_keras3_lambda_and_named_function() -> None:
    k3 = layer("lam", "Lambda", function={"class_name": "__lambda__",
                                          "config": {"code": BENIGN, "defaults": None,
                                                     "closure": None}})
    (f,) = findings(chain(k3), "lambda-layer")
    assert f.evidence["form"] == "Keras 3 __lambda__ bytecode" and f.evidence["code_bytes"] > 0
    named = layer("lam", "Lambda", function="scale_fn", function_type="function")
    (f,) = findings(chain(named), "lambda-layer")
    assert f.evidence["form"] == "named function" and f.evidence["function"] == "scale_fn"


def test_marshalled_code_elsewhere_is_found() -> None:
    custom = layer("odd", "kinspect>Odd", hook=BENIGN)
    (f,) = findings(chain(custom), "lambda-layer")
    assert f.evidence["where"] == "config.hook"
    loss = {"class_name": "__lambda__", "config": {"value": [RISKY, None, None]}}
    graph = with_training(chain(layer("d", "Dense", units=2)), {"loss": loss})
    assert rules(graph, "lambda-layer") == [("error", None)]


# --------------------------------------------------------------------------- custom-object


def test_builtins_are_not_custom_objects() -> None:
    ops_node = layer("ne", "NotEqual")
    ops_node.role = "operation"
    ops_node.module = "keras.src.ops.numpy"
    graph = chain(layer("d", "Dense", units=2, activation="relu",
                        kernel_initializer={"class_name": "GlorotUniform", "config": {}}),
                  ops_node)
    raw = {"loss": {"out": "sparse_categorical_crossentropy", "aux": "mse"},
           "optimizer_config": {"class_name": "Custom>Adam", "config": {}},
           "metrics": [[{"class_name": "MeanMetricWrapper",
                         "config": {"name": "out_accuracy", "fn": "sparse_categorical_accuracy"}}],
                       ["AUC", "top_k_categorical_accuracy"]]}
    assert findings(with_training(graph, raw), "custom-object") == []


def test_custom_objects_are_reported_by_kind() -> None:
    scale = layer("scale", "Scale")
    scale.module, scale.registered_name = "my_layers", "pkg>Scale"
    graph = chain(scale, layer("d", "Dense", units=2, activation="my_swish",
                               kernel_initializer={"class_name": "OrthoPlus", "config": {}}))
    raw = {"loss": "<lambda>", "metrics": [{"class_name": "function", "config": "pkg>f1",
                                            "module": "builtins"}]}
    found = findings(with_training(graph, raw), "custom-object")
    kinds = sorted((f.evidence["kind"], str(f.evidence["name"])) for f in found)
    assert kinds == [("activation", "my_swish"), ("initializer", "OrthoPlus"),
                     ("layer", "Scale"), ("loss", "<lambda>"), ("metric", "pkg>f1")]


# --------------------------------------------------------------------------- untrusted refs


@pytest.mark.parametrize(("obj", "severity"), [
    ({"class_name": "Popen", "module": "subprocess", "config": {}}, "error"),
    ({"class_name": "function", "module": "builtins", "config": "eval"}, "error"),
    ({"class_name": "function", "config": "get_file"}, "error"),  # module keras, normalized
    ({"class_name": "function", "module": "os.path", "config": "join"}, "error"),
    ({"class_name": "function", "module": "evil_pkg", "config": "act"}, "warning"),
    ({"class_name": "Thing", "module": "evil_pkg", "config": {}}, "warning"),
    ({"class_name": "Thing", "module": "my_pkg", "config": {}, "registered_name": "p>Thing"},
     None),
    ({"class_name": "function", "module": "builtins", "config": "relu"}, None),
])
def test_module_references_in_object_dicts(obj: dict[str, Any], severity: str | None) -> None:
    graph = chain(layer("d", "Dense", units=2, activation=obj))
    expected = [] if severity is None else [(severity, "model/d")]
    assert rules(graph, "untrusted-module-reference") == expected


def test_dangerous_references_are_not_also_custom_objects() -> None:
    graph = chain(layer("d", "Dense", units=2, activation={
        "class_name": "function", "module": "builtins", "config": "exec"}))
    assert findings(graph, "custom-object") == []


def test_keras2_lambda_module_fields() -> None:
    globals_only = layer("lam", "Lambda", function=[BENIGN, None, None],
                         function_type="lambda", module="my_pkg.layers")
    assert rules(chain(globals_only), "untrusted-module-reference") == []
    os_globals = layer("lam", "Lambda", function=[BENIGN, None, None],
                       function_type="lambda", module="os")
    assert rules(chain(os_globals), "untrusted-module-reference") == [("error", "model/lam")]
    named = layer("lam", "Lambda", function="trigger", function_type="function",
                  module="payload_pkg")
    assert rules(chain(named), "untrusted-module-reference") == [("warning", "model/lam")]


def test_module_in_a_lambda_closure() -> None:
    loss = {"class_name": "__lambda__", "config": {"value": [BENIGN, None, [
        {"module": "builtins", "class_name": "module", "config": "socket"}]]}}
    graph = with_training(chain(layer("d", "Dense", units=2)), {"loss": loss})
    assert rules(graph, "untrusted-module-reference") == [("error", None)]
    assert findings(graph, "custom-object") == []


@pytest.mark.parametrize(("vocab", "severity"), [
    ("vocab.txt", "warning"), ("/etc/hosts", "error"), ("../up/vocab.txt", "error"),
    ("gs://bucket/vocab.txt", "error"), (["a", "b"], None), (None, None),
])
def test_vocabulary_paths(vocab: Any, severity: str | None) -> None:
    graph = chain(layer("lookup", "StringLookup", vocabulary=vocab))
    expected = [] if severity is None else [(severity, "model/lookup")]
    assert rules(graph, "untrusted-module-reference") == expected


# HDF5 links h5py would follow: untrusted-module-reference reports them, at the severity
# the kind table (graph.CONTAINER_ISSUE_KINDS) gives them.
LINK_KINDS = ("hdf5-external-link", "hdf5-external-storage", "hdf5-virtual-dataset",
              "hdf5-soft-link")


def test_container_issues() -> None:
    graph = chain(layer("d", "Dense", units=2))
    graph.container_issues = [
        ContainerIssue("hdf5-external-link", "/model_weights/d", "external link"),
        ContainerIssue("hdf5-soft-link", "/model_weights/e", "soft link"),
        ContainerIssue("hdf5-virtual-dataset", "/x", "virtual"),
        ContainerIssue("hdf5-external-storage", "/model_weights/f", "external storage"),
        ContainerIssue("zip-unexpected-member", "extra.txt", "member not written by Keras"),
    ]
    assert sorted(rules(graph, "untrusted-module-reference")) == [
        ("error", None), ("error", None), ("error", None), ("warning", None)]


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_link_kinds_are_reported_at_their_table_severity(kind: str) -> None:
    info = CONTAINER_ISSUE_KINDS.get(kind)
    assert info is not None and info.rule == "untrusted-module-reference", kind
    graph = chain(layer("d", "Dense", units=2))
    graph.container_issues = [ContainerIssue(kind, "/model_weights/d", "link")]
    hits = findings(graph, "untrusted-module-reference")
    assert [(f.severity, f.evidence["kind"]) for f in hits] == [(info.severity, kind)]
    assert hits[0].evidence["why"] == f"{kind}: link"


def test_only_link_kinds_go_to_untrusted_module_reference() -> None:
    assert sorted(k for k, info in CONTAINER_ISSUE_KINDS.items()
                  if info.rule == "untrusted-module-reference") == sorted(LINK_KINDS)


def test_nested_and_wrapped_layers_are_walked() -> None:
    inner = layer("lam", "Lambda", function=[BENIGN, None, None], function_type="lambda")
    wrapper = layer("td", "TimeDistributed")
    wrapper.role = "wrapper"
    wrapper.children = [inner]
    inner.parent = wrapper
    base = LayerNode(name="base", path="base", class_name="Sequential", config={},
                     role="model", children=[wrapper], calls=[CallNode()])
    wrapper.parent = base
    graph = chain(base)
    inner.path = "model/base/td/lam"
    assert rules(graph, "lambda-layer") == [("warning", "model/base/td/lam")]


# --------------------------------------------------------------------------- name tables


@pytest.mark.tf
def test_builtin_tables_cover_the_installed_public_api() -> None:
    """Every public class of the installed Keras 3 / tf.keras is known (no false positives
    after a Keras upgrade goes unnoticed)."""
    import inspect

    keras = pytest.importorskip("keras")
    tf_keras = pytest.importorskip("tf_keras")
    tables = {"layers": keras_builtins.LAYERS, "losses": keras_builtins.LOSSES,
              "metrics": keras_builtins.METRICS, "optimizers": keras_builtins.OPTIMIZERS,
              "initializers": keras_builtins.INITIALIZERS,
              "regularizers": keras_builtins.REGULARIZERS,
              "constraints": keras_builtins.CONSTRAINTS}
    missing = []
    for root in (keras, tf_keras):
        for name, table in tables.items():
            module = getattr(root, name)
            for attr in dir(module):
                if not attr.startswith("_") and inspect.isclass(getattr(module, attr)) \
                        and attr not in table:
                    missing.append(f"{root.__name__}.{name}.{attr}")
        for attr in dir(root.activations):
            obj = getattr(root.activations, attr)
            if not attr.startswith("_") and inspect.isfunction(obj) \
                    and attr not in keras_builtins.FUNCTIONS \
                    and attr not in ("get", "serialize", "deserialize"):
                missing.append(f"{root.__name__}.activations.{attr}")
    assert not missing, missing


# --------------------------------------------------------------------------- issue 10


@pytest.mark.parametrize(("module", "builtin"), [
    ("keras", True), ("keras.layers", True), ("keras.src.ops.numpy", True),
    ("tf_keras", True), ("tf_keras.src.engine.functional", True),
    ("tensorflow", True), ("tensorflow.python.keras", True), (None, True),
    ("keras_x", False), ("kerasx.layers", False), ("tf_keras_x", False),
    ("tensorflow_x", False), ("tensorflowx.layers", False), ("keras_hub", False),
    ("__main__", False), ("", False), (["keras"], False),
])
def test_builtin_modules_are_whole_dotted_packages(module: Any, builtin: bool) -> None:
    assert is_builtin_module(module) is builtin


def test_keras_prefixed_packages_are_not_keras() -> None:
    """Normalization keeps a look-alike module and registered name; the ops test too."""
    obj = {"class_name": "Dense", "module": "tf_keras_x", "config": {},
           "registered_name": "keras_x>Dense"}
    assert normalize_value(obj) == {"class_name": "Dense", "config": {}, "module": "tf_keras_x",
                                    "registered_name": "keras_x>Dense"}
    assert is_builtin_registered_name("keras.layers.Dense")
    assert not is_builtin_registered_name("keras_x>Dense")
    scale = layer("scale", "Scale", units=2)
    scale.registered_name = "keras_evil>Scale"
    assert [f.evidence["reason"] for f in findings(chain(scale), "custom-object")] == [
        "registered as keras_evil>Scale"]
    model = raw_graph([{"module": "keras.src.opsx", "class_name": "NotEqual",
                        "config": {"name": "ne"}, "inbound_nodes": []}])
    assert model.root is not None and model.root.children[0].role != "operation"


def _code_bytes(source: str) -> bytes:
    return marshal.dumps(compile(source, "<fixture>", "eval").co_consts[0])


@pytest.mark.parametrize("encode", [
    lambda raw: base64.b64encode(raw).decode(),
    lambda raw: base64.encodebytes(raw).decode(),  # newlines, as func_dump writes
    lambda raw: "!".join(base64.b64encode(raw).decode()),  # stray characters are dropped
    lambda raw: raw.decode("latin-1"),  # the marshal bytes themselves
], ids=["strict", "lines", "stray", "raw"])
def test_decode_marshalled_reads_every_encoding_func_load_reads(encode: Any) -> None:
    raw = _code_bytes("lambda x: __import__('os').system('true') or x")
    text = encode(raw)
    assert func_load_bytes(text) == raw  # what Keras would unmarshal
    assert decode_marshalled(text) == raw
    assert "system" in scan_code(raw).risky


@pytest.mark.parametrize("value", [
    "categorical_crossentropy_and_more", "conv2d_transpose_layer_1", "c" * 64,
    base64.b64encode(_code_bytes("lambda x: x")).decode().rstrip("="),  # func_load fails too
])
def test_decode_marshalled_leaves_text_alone(value: str) -> None:
    assert decode_marshalled(value) is None


@pytest.mark.parametrize("encode", [
    lambda b64: b64, lambda b64: "!".join(b64),
    lambda b64: base64.b64decode(b64).decode("latin-1"),
], ids=["strict", "stray", "raw"])
def test_cell_wrapper_functions_are_lambda_layers(encode: Any) -> None:
    code = encode(RISKY)
    cell = layer("cell", "ResidualWrapper", residual_fn=[code, None, None],
                 residual_fn_type="lambda", residual_fn_module="__main__")
    (f,) = findings(chain(cell), "lambda-layer")
    assert f.severity == "error" and f.evidence["where"] == "config.residual_fn"
    assert "system" in f.evidence["risky_names"]


def test_declared_lambda_counts_whatever_it_holds() -> None:
    cell = layer("cell", "DropoutWrapper", dropout_fn="not decodable at all",
                 dropout_fn_type="lambda")
    (f,) = findings(chain(cell), "lambda-layer")
    assert f.severity == "warning" and f.evidence["code_bytes"] == 0
    assert f.evidence["form"] == "dropout_fn_type: lambda"
    mask = layer("lam", "Lambda", function="scale", function_type="function", mask=BENIGN,
                 mask_type="lambda")
    wheres = sorted(str(f.evidence.get("where")) for f in findings(chain(mask), "lambda-layer"))
    assert wheres == ["None", "config.mask"]  # the Lambda itself, and its mask function
    named = layer("cell", "ResidualWrapper", residual_fn="my_fn", residual_fn_type="function")
    assert findings(chain(named), "lambda-layer") == []


def test_main_is_not_a_safe_module() -> None:
    for obj in ({"class_name": "function", "module": "__main__", "config": "relu"},
                {"class_name": "GlorotUniform", "module": "__main__", "config": {}}):
        graph = chain(layer("d", "Dense", units=2, activation=obj))
        (f,) = findings(graph, "untrusted-module-reference")
        assert f.severity == "warning" and "__main__" in f.message
    dense = layer("d", "Dense", units=2)
    dense.module = "__main__"
    assert rules(chain(dense), "untrusted-module-reference") == [("warning", "model/d")]
    # A Keras 2 lambda only borrows __main__'s globals: lambda-layer says it all.
    lam = layer("lam", "Lambda", function=[BENIGN, None, None], function_type="lambda",
                module="__main__")
    assert rules(chain(lam), "untrusted-module-reference") == []


@pytest.mark.parametrize(("cls", "config", "severity"), [
    ("TFSMLayer", {"filepath": "/srv/models/sm", "call_endpoint": "serve"}, "error"),
    ("TFSMLayer", {"filepath": "exported", "call_endpoint": "serve"}, "warning"),
    ("TFSMLayer", {"call_endpoint": "serve"}, "warning"),
    ("ReloadedLayer", {"filepath": "https://example.invalid/sm"}, "error"),
    ("Dense", {"units": 2, "weights_file": "C:\\w.bin"}, "error"),
    ("Dense", {"units": 2, "vocab_path": "vocab.txt"}, "warning"),
    ("Dense", {"units": 2, "profile": "/etc/passwd"}, None),  # not a path key
])
def test_layers_that_load_outside_files(cls: str, config: dict[str, Any],
                                        severity: str | None) -> None:
    graph = chain(layer("ext", cls, **config))
    expected = [] if severity is None else [(severity, "model/ext")]
    assert rules(graph, "untrusted-module-reference") == expected


def raw_graph(layers: list[dict[str, Any]], **top: Any) -> ModelGraph:
    """A graph the way readers build it: the parsed tree plus the config as stored."""
    source = {"module": "keras.layers", "class_name": "InputLayer", "name": "x",
              "config": {"name": "x", "batch_shape": [None, 2]}, "inbound_nodes": []}
    cfg = {"module": "keras.src.models.functional", "class_name": "Functional",
           "config": {"name": "m", "layers": [source, *layers], "input_layers": [["x", 0, 0]],
                      "output_layers": []}, **top}
    graph = ModelGraph(path="m.keras", format="keras-zip",
                       root=parse_model_config(cfg, root_path=ROOT_PATH), raw_config=cfg)
    if "compile_config" in top:
        graph.training_config = normalize_training_config(top["compile_config"])
    return graph


def _dense(name: str, **extra: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "Dense", "name": name,
            "config": {"name": name, "units": 2}, "registered_name": None, **extra}


EVIL = {"module": "evil_pkg", "class_name": "Thing", "config": {}, "registered_name": None}


@pytest.mark.parametrize(("entry", "where"), [
    (_dense("d", inbound_nodes=[{"args": [EVIL], "kwargs": {}}]), "inbound_nodes[0].args[0]"),
    (_dense("d", inbound_nodes=[{"args": [], "kwargs": {"k": {"v": [EVIL]}}}]),
     "inbound_nodes[0].kwargs.k.v[0]"),
    (_dense("d", inbound_nodes=[[["x", 0, 0, {"hook": EVIL}]]]), "inbound_nodes[0][0][3].hook"),
    (_dense("d", compile_config={"loss": EVIL}), "compile_config.loss"),
    (_dense("d", extra_field={"deep": EVIL}), "extra_field.deep"),
    ({**_dense("d"), "config": {"name": "d", "units": 2, "dtype": {
        **EVIL, "class_name": "DTypePolicy", "config": {"name": "float32"}}}}, "config.dtype"),
    ({**_dense("d"), "config": {"name": "d", "units": 2, "backward_layer": EVIL}},
     "config.backward_layer"),
])
def test_raw_config_is_walked_everywhere(entry: dict[str, Any], where: str) -> None:
    graph = raw_graph([entry])
    (f,) = findings(graph, "untrusted-module-reference")
    assert (f.layer, f.evidence["where"], f.severity) == ("model/d", where, "warning")


def test_raw_walk_reports_each_object_once() -> None:
    """Sequential InputLayer entries belong to the model; the root compile config is the
    training config; an LSTM's synthesized cell and a Bidirectional's backward copy repeat
    what is walked already."""
    seq = {"module": "keras", "class_name": "Sequential", "name": "seq", "config": {
        "name": "seq", "layers": [{**EVIL, "class_name": "InputLayer",
                                   "config": {"name": "in", "batch_shape": [None, 2]}},
                                  _dense("inner")]}}
    lstm = {"module": "keras.layers", "class_name": "LSTM", "name": "lstm",
            "config": {"name": "lstm", "units": 2, "activation": EVIL}}
    bidi = {"module": "keras.layers", "class_name": "Bidirectional", "name": "bidi",
            "config": {"name": "bidi", "layer": {**lstm, "name": "fwd",
                                                 "config": {**lstm["config"], "name": "fwd"}}}}
    graph = raw_graph([seq, lstm, bidi], compile_config={"loss": EVIL})
    found = sorted((f.layer or "", f.evidence["where"])
                   for f in findings(graph, "untrusted-module-reference"))
    assert found == [("", "training_config.loss"),
                     ("model/bidi/forward_fwd", "config.activation"),
                     ("model/lstm", "config.activation"), ("model/seq", "config.layers[0]")]
