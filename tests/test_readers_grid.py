"""The reader grid: every fixture family x container x Keras 2/3 against what Keras reported.

``fixtures/models/<family>/reference_k{2,3}.json`` were written from the live Keras models by
fixtures/make_fixtures.py; the static readers must agree on layer names, classes, edges,
output shapes, parameter counts and weight names without importing TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inspector.graph import LayerNode, ModelGraph
from inspector.readers import open_model, shapes
from inspector.readers.variable_names import known_class

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"
CONTAINERS = {"k3": ("k3.keras", "k3.h5"), "k2": ("k2.h5", "k2.keras")}


def _cases() -> list[Any]:
    cases = []
    for family in sorted(p for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []:
        for version, files in CONTAINERS.items():
            ref = family / f"reference_{version}.json"
            for name in files:
                if ref.is_file() and (family / name).is_file():
                    cases.append(pytest.param(family / name, ref,
                                              id=f"{family.name}/{name}"))
    return cases


CASES = _cases()


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSPECT_STRICT", "1")


def _shape(value: Any) -> Any:
    """Keras 2 reports an InputLayer's output as a one-element list of shapes."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [tuple(v) for v in value]
    return tuple(value) if isinstance(value, list) else value


def _short(weight_name: str) -> str:
    return weight_name.split(":", 1)[0].rsplit("/", 1)[-1]


def _edges(node: LayerNode) -> list[list[list[Any]]]:
    """Every call's input tensors: positional ones, then tensors passed as keyword (masks)."""
    out = []
    for call in node.calls:
        refs = [[r.layer, r.node_index, r.tensor_index] for r in call.inputs]
        for value in call.kwargs.values():
            if isinstance(value, dict) and isinstance(value.get("__keras_tensor__"), list):
                refs.append(list(value["__keras_tensor__"]))
        out.append(refs)
    return out


def _has_rule(node: LayerNode) -> bool:
    return (node.class_name in shapes.PRESERVING or node.class_name in shapes.rules()
            or node.role == "model")


def _check_layer(node: LayerNode, ref: dict[str, Any], keras_zip: bool,
                 unknown_upstream: bool) -> None:
    where = node.path
    assert node.class_name == ref["class_name"], where
    if ref["via"] != "cell":  # our cells are named "cell" (path .../lstm/cell)
        assert node.name == ref["name"], where
    assert node.params.total == ref["params"], where
    assert node.trainable == ref["trainable"], where
    if ref["via"] == "layers" and node.class_name != "InputLayer":
        assert _edges(node) == ref["inbound_refs"], where
    expected = _shape(ref["output_shape"])
    if ref["via"] == "layers":
        # Never a wrong shape; unknown (None) only downstream of a class without a rule.
        assert node.output_shape in (None, expected), where
        if node.output_shape is None:
            assert unknown_upstream, f"{where}: shape not inferred"
    mine = sorted((_short(w.name), w.shape) for _, w in node.all_weights())
    theirs = sorted((_short(n), tuple(s)) for n, s in zip(ref["weights"], ref["weight_shapes"],
                                                          strict=True))
    if keras_zip and any(not known_class(n.class_name) for n in node.walk() if n.weights):
        assert [s for _, s in mine] == [s for _, s in theirs] or sorted(
            s for _, s in mine) == sorted(s for _, s in theirs), where
    else:
        assert mine == theirs, where
    assert len(node.children) == len(ref["layers"]), where
    for child, child_ref in zip(node.children, ref["layers"], strict=True):
        _check_layer(child, child_ref, keras_zip, unknown_upstream)


@pytest.mark.parametrize(("path", "reference"), CASES)
def test_reader_matches_keras(path: Path, reference: Path) -> None:
    ref = json.loads(reference.read_text())
    graph: ModelGraph = open_model(path)
    try:
        assert graph.has_architecture
        assert graph.class_name == ref["class_name"]
        assert len(graph.layers) == ref["layer_count"]
        assert graph.params.as_dict() == ref["params"]
        assert [(s.name, s.shape, s.dtype) for s in graph.inputs] == [
            (i["name"], _shape(i["shape"]), i["dtype"]) for i in ref["inputs"]]
        unknown = any(not _has_rule(n) for n in graph.layers)
        assert [s.name for s in graph.outputs] == [o["name"] for o in ref["outputs"]]
        for spec, out in zip(graph.outputs, ref["outputs"], strict=True):
            assert spec.shape == _shape(out["shape"]) or (unknown and spec.shape is None)
        assert graph.keras_version and graph.keras_version[0] == reference.stem[-1]
        assert not graph.container_issues
        for node, layer_ref in zip(graph.layers, ref["layers"], strict=True):
            _check_layer(node, layer_ref, path.suffix == ".keras", unknown)
    finally:
        if graph.close:
            graph.close()


def test_grid_is_not_empty() -> None:
    assert len(CASES) >= 8, "fixture models are missing: run fixtures/make_fixtures.py"
