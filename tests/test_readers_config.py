"""Keras 2 / Keras 3 config dialects normalize to the same LayerNode tree."""

from __future__ import annotations

from typing import Any

import pytest

from inspector.readers.keras_config import (
    ConfigStructureError,
    flatten_triples,
    normalize_training_config,
    parse_model_config,
)

K3_INIT = {"module": "keras.initializers", "class_name": "GlorotUniform",
           "config": {"seed": None}, "registered_name": None}
K2_INIT = {"class_name": "GlorotUniform", "config": {"seed": None}}


def _k3_tensor(name: str, node: int = 0, index: int = 0) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "dtype": "float32",
                       "keras_history": [name, node, index]}}


def _dense(name: str, init: dict[str, Any], dtype: Any, **extra: Any) -> dict[str, Any]:
    return {"class_name": "Dense", "config": {"name": name, "trainable": True, "dtype": dtype,
                                              "units": 2, "kernel_initializer": init},
            "name": name, **extra}


def _functional(layers: list[dict[str, Any]], inputs: Any, outputs: Any) -> dict[str, Any]:
    return {"class_name": "Functional", "config": {
        "name": "m", "trainable": True, "layers": layers, "input_layers": inputs,
        "output_layers": outputs}}


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSPECT_STRICT", "1")


def test_keras2_and_keras3_dialects_agree() -> None:
    k2 = _functional([
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4],
                                                "dtype": "float32", "name": "x"},
         "name": "x", "inbound_nodes": []},
        _dense("fc", K2_INIT, {"class_name": "Policy", "config": {"name": "mixed_float16"}},
               inbound_nodes=[[["x", 0, 0, {"training": True}]]]),
    ], [["x", 0, 0]], [["fc", 0, 0]])
    k3 = _functional([
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "dtype": "float32",
                                                "name": "x"},
         "name": "x", "inbound_nodes": []},
        _dense("fc", K3_INIT, {"module": "keras", "class_name": "DTypePolicy",
                               "config": {"name": "mixed_float16"}, "registered_name": None},
               inbound_nodes=[{"args": [_k3_tensor("x")], "kwargs": {"training": True}}]),
    ], ["x", 0, 0], ["fc", 0, 0])
    a = parse_model_config(k2, root_path="model")
    b = parse_model_config(k3, root_path="model")
    for root in (a, b):
        x, fc = root.children
        assert x.config["batch_shape"] == [None, 4] and "batch_input_shape" not in x.config
        assert fc.path == "model/fc"
        assert fc.dtype_policy == "mixed_float16" and fc.config["dtype"] == "float32"
        assert fc.config["kernel_initializer"] == K2_INIT
        assert [(r.layer, r.node_index, r.tensor_index) for r in fc.calls[0].inputs] == [
            ("x", 0, 0)]
        assert fc.calls[0].kwargs == {"training": True}
        assert root.config["input_layers"] == [["x", 0, 0]]
        assert root.config["output_layers"] == [["fc", 0, 0]]


def test_custom_objects_keep_their_origin() -> None:
    layer = _dense("fc", {"module": "my_pkg.init", "class_name": "MyInit", "config": {},
                          "registered_name": "my_pkg>MyInit"}, "float32")
    root = parse_model_config({"class_name": "Sequential", "config": {
        "name": "s", "layers": [layer]}}, root_path="model")
    init = root.children[0].config["kernel_initializer"]
    assert init["module"] == "my_pkg.init" and init["registered_name"] == "my_pkg>MyInit"
    k2_custom = {"class_name": "pkg>Scale", "config": {"name": "scale", "trainable": True,
                                                       "dtype": "float32"}}
    root = parse_model_config({"class_name": "Sequential", "config": {
        "name": "s", "layers": [k2_custom]}}, root_path="model")
    node = root.children[0]
    assert (node.class_name, node.registered_name) == ("Scale", "pkg>Scale")


@pytest.mark.parametrize("spec", [
    ["a", 0, 0], [["a", 0, 0]], {"in": ["a", 0, 0]}, [[["a", 0, 0]]], {"in": [["a", 0, 0]]}])
def test_input_layers_in_every_shape(spec: Any) -> None:
    assert [(r.layer, r.node_index, r.tensor_index) for r in flatten_triples(spec)] == [
        ("a", 0, 0)]


def test_keras2_nested_model_node_offset_is_removed() -> None:
    inner = {"class_name": "Functional", "name": "base", "config": {
        "name": "base", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4],
                                                    "name": "i"}, "name": "i",
             "inbound_nodes": []},
            _dense("d", K2_INIT, "float32", inbound_nodes=[[["i", 0, 0, {}]]])],
        "input_layers": [["i", 0, 0]], "output_layers": [["d", 0, 0]]},
        "inbound_nodes": [[["x", 0, 0, {}]], [["y", 0, 0, {}]]]}
    outer = _functional([
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "x"},
         "name": "x", "inbound_nodes": []},
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "y"},
         "name": "y", "inbound_nodes": []},
        inner,
        {"class_name": "Add", "config": {"name": "add", "trainable": True, "dtype": "float32"},
         "name": "add", "inbound_nodes": [[["base", 1, 0, {}], ["base", 2, 0, {}]]]},
    ], [["x", 0, 0], ["y", 0, 0]], [["add", 0, 0], ["base", 2, 0]])
    root = parse_model_config(outer, root_path="model")
    add = root.children[3]
    assert [r.node_index for r in add.calls[0].inputs] == [0, 1]
    assert root.config["output_layers"] == [["add", 0, 0], ["base", 1, 0]]
    base = root.children[2]
    assert base.role == "model" and base.children[1].path == "model/base/d"


def test_sequential_gets_chained_calls_and_input_spec() -> None:
    root = parse_model_config({"class_name": "Sequential", "config": {"name": "s", "layers": [
        _dense("a", K2_INIT, "float32") | {"config": {
            "name": "a", "units": 3, "batch_input_shape": [None, 5], "dtype": "float32"}},
        _dense("b", K2_INIT, "float32")]}}, root_path="model")
    a, b = root.children
    assert root.config["input_layer"]["batch_shape"] == [None, 5]
    assert a.calls[0].inputs[0].layer == "a_input"
    assert b.calls[0].inputs[0].layer == "a"
    assert root.config["output_layers"] == [["b", 0, 0]]


def test_wrappers_and_rnn_cells_become_children() -> None:
    gru = {"class_name": "GRU", "config": {"name": "gru", "units": 4, "trainable": True,
                                           "dtype": "float32", "return_sequences": True}}
    bidi = {"class_name": "Bidirectional", "config": {"name": "bi", "layer": gru,
                                                      "merge_mode": "concat"}}
    td = {"class_name": "TimeDistributed", "config": {"name": "td", "layer": _dense(
        "dense", K2_INIT, "float32")}}
    rnn = {"class_name": "RNN", "config": {"name": "rnn", "cell": {
        "class_name": "StackedRNNCells", "config": {"cells": [
            {"class_name": "LSTMCell", "config": {"name": "c0", "units": 2}},
            {"class_name": "LSTMCell", "config": {"name": "c1", "units": 2}}]}}}}
    root = parse_model_config({"class_name": "Sequential", "config": {
        "name": "s", "layers": [bidi, td, rnn]}}, root_path="model")
    bi, tdn, rn = root.children
    assert [c.path for c in bi.walk()] == [
        "model/bi", "model/bi/forward_gru", "model/bi/forward_gru/cell",
        "model/bi/backward_gru", "model/bi/backward_gru/cell"]
    assert bi.children[1].config["go_backwards"] is True
    assert bi.children[0].children[0].class_name == "GRUCell"
    assert "layer" not in bi.config
    assert tdn.role == "wrapper" and tdn.children[0].path == "model/td/dense"
    assert [c.path for c in rn.walk()] == ["model/rnn", "model/rnn/cell",
                                           "model/rnn/cell/cell_0", "model/rnn/cell/cell_1"]


def test_unknown_class_is_walked_generically() -> None:
    odd = {"class_name": "MyBlock", "config": {"name": "blk", "alpha": 0.5,
                                               "layer": _dense("inner", K2_INIT, "float32")}}
    root = parse_model_config({"class_name": "Sequential", "config": {
        "name": "s", "layers": [odd]}}, root_path="model")
    blk = root.children[0]
    assert blk.config["alpha"] == 0.5 and blk.children[0].path == "model/blk/inner"


def test_unknown_structure_raises_only_in_strict_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _functional([{"class_name": "Dense", "config": {"name": "d"}, "name": "d",
                        "inbound_nodes": [{"weird": 1}]}], [["d", 0, 0]], [["d", 0, 0]])
    with pytest.raises(ConfigStructureError):
        parse_model_config(bad, root_path="model")
    monkeypatch.delenv("KINSPECT_STRICT")
    root = parse_model_config(bad, root_path="model")
    assert root.children[0].calls == []


def test_training_config_shapes_agree() -> None:
    k2 = {"loss": "mse", "metrics": [["accuracy"]], "optimizer_config": {
        "class_name": "Custom>Adam", "config": {"name": "Adam", "learning_rate": 0.001}}}
    k3 = {"loss": "mse", "metrics": [["accuracy"]], "optimizer": {
        "module": "keras.optimizers", "class_name": "Adam",
        "config": {"name": "adam", "learning_rate": 0.001}, "registered_name": None}}
    for raw in (k2, k3):
        tc = normalize_training_config(raw)
        assert tc is not None and tc["raw"] is raw
        assert tc["loss"] == "mse" and tc["metrics"] == ["accuracy"]
        assert tc["optimizer"]["class_name"] == "Adam"
        assert tc["optimizer"]["learning_rate"] == pytest.approx(0.001)
    sched = normalize_training_config({"optimizer": {"class_name": "SGD", "config": {
        "learning_rate": {"class_name": "ExponentialDecay", "config": {"decay_steps": 10}}}}})
    assert sched is not None
    assert sched["optimizer"]["learning_rate"]["class_name"] == "ExponentialDecay"
    assert normalize_training_config({"optimizer": "adam"})["optimizer"] == {
        "class_name": "adam", "config": {}, "learning_rate": None}
