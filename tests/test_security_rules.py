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

from inspector.graph import CallNode, ContainerIssue, LayerNode, ModelGraph
from inspector.rules import keras_builtins
from inspector.rules.bytecode_scan import decode_marshalled, scan_code


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


def test_container_issues() -> None:
    graph = chain(layer("d", "Dense", units=2))
    graph.container_issues = [
        ContainerIssue("hdf5-external-link", "/model_weights/d", "external link"),
        ContainerIssue("hdf5-soft-link", "/model_weights/e", "soft link"),
        ContainerIssue("hdf5-virtual-dataset", "/x", "virtual"),
        ContainerIssue("zip-unexpected-member", "extra.txt", "member not written by Keras"),
    ]
    assert sorted(rules(graph, "untrusted-module-reference")) == [
        ("error", None), ("error", None), ("warning", None)]


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
