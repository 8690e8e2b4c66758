"""Keras 2 / Keras 3 model configs -> one normalized LayerNode tree (structure only, no weights).

Every dialect difference is resolved here and nowhere else: object dicts with or without
``module``/``registered_name``, dtype strings vs DTypePolicy dicts, ``batch_input_shape`` vs
``batch_shape``, nested-list ``inbound_nodes`` vs ``args``/``kwargs`` with ``__keras_tensor__``,
the Keras 2 node-index offset of nested models and the many shapes of ``input_layers``.
Unknown layer classes are walked generically; an unknown *structure* raises only when
``KINSPECT_STRICT=1`` (tests), otherwise it is skipped so a report can still be produced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from inspector.graph import CallNode, LayerNode, TensorRef

MODEL_CLASSES = frozenset({"Sequential", "Functional"})
# Built-in RNN layers whose config flattens the cell's; the cell becomes a synthetic child.
RNN_CELLS = {
    "LSTM": "LSTMCell", "GRU": "GRUCell", "SimpleRNN": "SimpleRNNCell",
    "CuDNNLSTM": "LSTMCell", "CuDNNGRU": "GRUCell",
    "ConvLSTM1D": "ConvLSTMCell", "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell",
}
STRUCTURE_KEYS = ("layers", "layer", "backward_layer", "cell", "cells")
# Keras 3 functional configs also list plain ops (``x != 0`` -> NotEqual); not layers.
OPERATION_MODULES = ("keras.src.ops", "keras.ops")
# Top-level packages whose objects a config may name without bringing outside code.
BUILTIN_PACKAGES = frozenset({"keras", "tf_keras", "tensorflow"})
_DROP_KEYS = frozenset({"shared_object_id"})


class ConfigStructureError(ValueError):
    """An unexpected config structure, raised only in strict mode."""


def strict() -> bool:
    return os.environ.get("KINSPECT_STRICT") == "1"


def _unexpected(what: str) -> None:
    if strict():
        raise ConfigStructureError(what)


def in_package(name: str, packages: Iterable[str]) -> bool:
    """``name`` is one of ``packages`` or a dotted submodule of one: ``keras.layers`` is in
    ``keras``, ``keras_evil`` is not (a bare prefix test would let it pass)."""
    return any(name == p or name.startswith(p + ".") for p in packages)


def is_builtin_module(module: Any) -> bool:
    if module is None:
        return True
    if not isinstance(module, str):
        return False
    return in_package(module, BUILTIN_PACKAGES)


def is_builtin_registered_name(registered: Any) -> bool:
    """A ``registered_name`` Keras writes for its own objects (``keras.layers.Dense``,
    ``keras>...``); ``keras_evil>Scale`` is someone else's package."""
    return isinstance(registered, str) and re.split(r"[.>]", registered, maxsplit=1)[0] in (
        BUILTIN_PACKAGES)


def is_object_dict(value: Any) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


def normalize_value(value: Any) -> Any:
    """Recursively normalize config values: object dicts to {class_name, config} (+ custom
    module/registered_name only when they name non-Keras code), tensors to small markers."""
    if isinstance(value, dict):
        if is_object_dict(value):
            cls = value.get("class_name")
            if cls == "__keras_tensor__":
                cfg = value.get("config") or {}
                hist = cfg.get("keras_history") if isinstance(cfg, dict) else None
                return {"__keras_tensor__": list(hist) if isinstance(hist, list) else None}
            if cls in ("__tensor__", "__numpy__", "__bytes__"):
                return {cls: value.get("config")}
            out: dict[str, Any] = {"class_name": cls, "config": normalize_value(value["config"])}
            module = value.get("module")
            registered = value.get("registered_name")
            if not is_builtin_module(module):
                out["module"] = module
            if registered not in (None, cls) and not is_builtin_registered_name(registered):
                out["registered_name"] = registered
            return out
        return {k: normalize_value(v) for k, v in value.items() if k not in _DROP_KEYS}
    if isinstance(value, (list, tuple)):
        return [normalize_value(v) for v in value]
    return value


def policy_name(dtype: Any) -> tuple[str | None, str | None]:
    """(policy name, plain variable dtype) from a dtype string or a policy dict."""
    if isinstance(dtype, str):
        if dtype.startswith("mixed_"):
            return dtype, "float32"
        return dtype, dtype
    if isinstance(dtype, dict):
        cfg = dtype.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if isinstance(name, str):
            return policy_name(name)
        _unexpected(f"dtype policy without a name: {dtype!r}")
    return None, None


def _shape_list(value: Any) -> tuple[int | None, ...] | None:
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, int) for v in value):
        return tuple(value)
    return None


def normalize_layer_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Normalized flat config (structure keys removed) and the layer's dtype policy name."""
    out: dict[str, Any] = {}
    policy: str | None = None
    for key, value in cfg.items():
        if key in STRUCTURE_KEYS and (is_object_dict(value) or (
                isinstance(value, list) and value and all(is_object_dict(v) for v in value))):
            continue
        if key in _DROP_KEYS:
            continue
        if key == "dtype":
            policy, plain = policy_name(value)
            out["dtype"] = plain if plain is not None else normalize_value(value)
            continue
        if key == "batch_input_shape":
            out["batch_shape"] = normalize_value(value)
            continue
        out[key] = normalize_value(value)
    return out, policy


# ---------------------------------------------------------------- tensor references


def _is_triple(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) in (3, 4)
            and isinstance(value[0], str) and isinstance(value[1], int)
            and isinstance(value[2], int))


def flatten_triples(value: Any) -> list[TensorRef]:
    """``input_layers``/``output_layers`` in any shape Keras writes (triple, list, dict, nested)."""
    if _is_triple(value):
        return [TensorRef(value[0], value[1], value[2])]
    if isinstance(value, dict):
        refs: list[TensorRef] = []
        for v in value.values():
            refs.extend(flatten_triples(v))
        return refs
    if isinstance(value, (list, tuple)):
        refs = []
        for v in value:
            refs.extend(flatten_triples(v))
        return refs
    if value is not None:
        _unexpected(f"unrecognized input/output layer spec: {value!r}")
    return []


def _k3_tensors(value: Any, out: list[TensorRef]) -> None:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            cfg = value.get("config")
            hist = cfg.get("keras_history") if isinstance(cfg, dict) else None
            if _is_triple(hist):
                out.append(TensorRef(hist[0], hist[1], hist[2]))
            else:
                _unexpected(f"keras tensor without keras_history: {value!r}")
            return
        for v in value.values():
            _k3_tensors(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _k3_tensors(v, out)


def parse_inbound_node(node: Any) -> CallNode | None:
    """One call of a layer, from a Keras 3 dict or a Keras 2 list of [name, node, tensor, kw]."""
    if isinstance(node, dict) and ("args" in node or "kwargs" in node):
        inputs: list[TensorRef] = []
        _k3_tensors(node.get("args", []), inputs)
        kwargs = node.get("kwargs") or {}
        return CallNode(inputs, normalize_value(kwargs) if isinstance(kwargs, dict) else {})
    if isinstance(node, (list, tuple)):
        entries = [node] if node and isinstance(node[0], str) else list(node)
        inputs = []
        kwargs: dict[str, Any] = {}
        for entry in entries:
            if not _is_triple(entry):
                _unexpected(f"unrecognized Keras 2 inbound entry: {entry!r}")
                continue
            inputs.append(TensorRef(entry[0], entry[1], entry[2]))
            if len(entry) == 4 and isinstance(entry[3], dict):
                kwargs.update(normalize_value(entry[3]))
        return CallNode(inputs, kwargs)
    _unexpected(f"unrecognized inbound node: {node!r}")
    return None


# ---------------------------------------------------------------- layer tree


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _layer_name(d: dict[str, Any], hint: str) -> str:
    cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
    name = d.get("name") or cfg.get("name")
    return name if isinstance(name, str) and name else hint


def _is_model(class_name: str, cfg: dict[str, Any]) -> bool:
    layers = cfg.get("layers")
    return class_name in MODEL_CLASSES or (
        isinstance(layers, list) and all(is_object_dict(x) for x in layers) and bool(layers))


def _is_operation(d: dict[str, Any], module: str | None) -> bool:
    """Keras 3 ops nodes: module ``keras.src.ops...``; legacy h5 drops the module, but an op's
    config holds only its name while every Layer config has ``trainable`` and ``dtype``."""
    if module is not None:
        return in_package(module, OPERATION_MODULES)
    nodes = d.get("inbound_nodes")
    k3_nodes = bool(nodes) and all(isinstance(n, dict) for n in nodes)
    return k3_nodes and set(d["config"]) <= {"name"}


def parse_model_config(model_config: dict[str, Any], *, root_path: str) -> LayerNode:
    """The LayerNode tree of a saved model config; ``root_path`` names the root node."""
    model_config = _legacy_sequential(model_config)
    if not is_object_dict(model_config) or not isinstance(model_config.get("config"), dict):
        raise ConfigStructureError("model config has no class_name/config")
    return _parse_layer(model_config, prefix=None, path=root_path, hint=root_path)


def _legacy_sequential(d: Any) -> Any:
    """Keras 2.0-2.1 wrote a Sequential's config as the bare list of its layers (no name, no
    ``layers`` key); the same entry in today's shape, its layer dicts shared (not copied)."""
    if (is_object_dict(d) and d["class_name"] == "Sequential"
            and isinstance(d["config"], list)):
        config: dict[str, Any] = {"layers": d["config"]}
        if isinstance(d.get("name"), str):
            config["name"] = d["name"]
        return {**d, "config": config}
    return d


def _parse_layer(d: Any, *, prefix: str | None, path: str | None = None,
                 hint: str = "layer") -> LayerNode:
    d = _legacy_sequential(d)
    if not is_object_dict(d) or not isinstance(d.get("config"), dict):
        _unexpected(f"layer entry without class_name/config: {str(d)[:200]}")
        name = hint
        return LayerNode(name=name, path=path or _join(prefix, name), class_name="Unknown",
                         config={})
    class_name = str(d["class_name"])
    raw = d["config"]
    registered_hint: str | None = None
    if ">" in class_name:  # Keras 2 writes registered custom classes as "package>Name"
        registered_hint = class_name
        class_name = class_name.rsplit(">", 1)[-1]
    elif class_name == "Model":  # Keras 2.0-2.3 files; loaded as Functional today
        registered_hint = class_name
        class_name = "Functional"
    name = _layer_name(d, hint)
    node_path = path or _join(prefix, name)
    config, policy = normalize_layer_config(raw)
    module = d.get("module") if isinstance(d.get("module"), str) else None
    registered = d.get("registered_name") if isinstance(d.get("registered_name"), str) else None
    registered = registered or registered_hint
    node = LayerNode(name=name, path=node_path, class_name=class_name, config=config,
                     module=module, registered_name=registered,
                     trainable=raw.get("trainable", True) is not False, dtype_policy=policy,
                     raw=d)
    build = d.get("build_config")
    if isinstance(build, dict):
        shape = build.get("input_shape")
        node.input_shape = _shape_list(shape) or (
            [s for s in (_shape_list(x) for x in shape) if s is not None]
            if isinstance(shape, list) and shape and all(isinstance(x, list) for x in shape)
            else None)

    if _is_operation(d, module):
        node.role = "operation"
    elif _is_model(class_name, raw):
        node.role = "model"
        _parse_model_body(node, raw)
        if "trainable" not in raw and node.children:
            # Keras 2 omits a nested model's flag; freezing it froze every layer inside.
            node.trainable = any(c.trainable for c in node.children)
    elif is_object_dict(raw.get("layer")):
        node.role = "wrapper"
        _parse_wrapper(node, raw)
    elif class_name in RNN_CELLS and "cell" not in raw:
        cell = LayerNode(name="cell", path=_join(node_path, "cell"),
                         class_name=RNN_CELLS[class_name], config=dict(config),
                         trainable=node.trainable, dtype_policy=policy, role="cell")
        node.children.append(cell)
    else:
        _parse_generic_children(node, raw)

    for inbound in d.get("inbound_nodes") or []:
        call = parse_inbound_node(inbound)
        if call is not None:
            node.calls.append(call)
    for child in node.children:
        child.parent = node
    return node


def _parse_generic_children(node: LayerNode, raw: dict[str, Any]) -> None:
    """Cells of RNN layers / StackedRNNCells and nested layers of unknown classes."""
    cell = raw.get("cell")
    if is_object_dict(cell):
        child = _parse_layer(cell, prefix=node.path, path=_join(node.path, "cell"), hint="cell")
        child.role = "cell"
        node.children.append(child)
    elif isinstance(cell, list):
        for i, c in enumerate(cell):
            child = _parse_layer(c, prefix=node.path, path=_join(node.path, f"cell_{i}"),
                                 hint=f"cell_{i}")
            child.role = "cell"
            node.children.append(child)
    cells = raw.get("cells")
    if isinstance(cells, list):
        for i, c in enumerate(cells):
            if is_object_dict(c):
                child = _parse_layer(c, prefix=node.path, path=_join(node.path, f"cell_{i}"),
                                     hint=f"cell_{i}")
                child.role = "cell"
                node.children.append(child)


def _parse_wrapper(node: LayerNode, raw: dict[str, Any]) -> None:
    inner = raw["layer"]
    if node.class_name == "Bidirectional":
        inner_name = _layer_name(inner, "layer")
        base = inner_name.removeprefix("forward_")
        forward = _parse_layer(inner, prefix=node.path, hint=f"forward_{base}")
        forward.name = f"forward_{base}"
        _rename(forward, _join(node.path, forward.name))
        backward_dict = raw.get("backward_layer")
        if is_object_dict(backward_dict):
            backward = _parse_layer(backward_dict, prefix=node.path, hint=f"backward_{base}")
            if not backward.name.startswith("backward_"):
                backward.name = f"backward_{base}"
                _rename(backward, _join(node.path, backward.name))
        else:
            backward = _parse_layer(inner, prefix=node.path, hint=f"backward_{base}")
            backward.name = f"backward_{base}"
            backward.config["go_backwards"] = not bool(backward.config.get("go_backwards"))
            _rename(backward, _join(node.path, backward.name))
        node.children.extend([forward, backward])
    else:
        node.children.append(_parse_layer(inner, prefix=node.path, hint="layer"))


def _rename(node: LayerNode, new_path: str) -> None:
    old = node.path
    for sub in node.walk():
        sub.path = new_path + sub.path[len(old):]


def _parse_model_body(node: LayerNode, raw: dict[str, Any]) -> None:
    entries = raw.get("layers") or []
    if not isinstance(entries, list):
        _unexpected(f"model {node.name}: 'layers' is not a list")
        entries = []
    functional = "input_layers" in raw or any(
        isinstance(e, dict) and "inbound_nodes" in e for e in entries)
    if node.class_name == "Sequential" or not functional:
        _parse_sequential(node, raw, entries)
        return
    used: set[str] = set()
    for i, entry in enumerate(entries):
        child = _parse_layer(entry, prefix=node.path, hint=f"layer_{i}")
        if child.name in used:
            _unexpected(f"duplicate layer name {child.name} in {node.path}")
        used.add(child.name)
        node.children.append(child)
    inputs = flatten_triples(raw.get("input_layers"))
    outputs = flatten_triples(raw.get("output_layers"))
    _remove_node_offsets(node, outputs)
    node.config["input_layers"] = [[r.layer, r.node_index, r.tensor_index] for r in inputs]
    node.config["output_layers"] = [[r.layer, r.node_index, r.tensor_index] for r in outputs]


def _remove_node_offsets(model: LayerNode, outputs: list[TensorRef]) -> None:
    """Keras 2 counts a nested model's own construction node: references to its first call in
    the parent say node 1. Shift such references so node_index counts parent calls only."""
    refs: dict[str, list[TensorRef]] = {}
    for child in model.children:
        for call in child.calls:
            for ref in call.inputs:
                refs.setdefault(ref.layer, []).append(ref)
    for ref in outputs:
        refs.setdefault(ref.layer, []).append(ref)
    by_name = {c.name: c for c in model.children}
    for name, lst in refs.items():
        target = by_name.get(name)
        if target is None:
            _unexpected(f"{model.path}: reference to unknown layer {name}")
            continue
        if target.role != "model":
            continue
        ncalls = len(target.calls)
        highest = max(r.node_index for r in lst)
        if ncalls and highest >= ncalls:
            offset = highest - ncalls + 1
            for r in lst:
                r.node_index = max(0, r.node_index - offset)


def _parse_sequential(node: LayerNode, raw: dict[str, Any], entries: list[Any]) -> None:
    input_cfg: dict[str, Any] | None = None
    children: list[LayerNode] = []
    for i, entry in enumerate(entries):
        if is_object_dict(entry) and entry.get("class_name") == "InputLayer":
            if not isinstance(entry["config"], dict):
                _unexpected(f"InputLayer config is not an object: {str(entry)[:200]}")
                continue
            cfg, _ = normalize_layer_config(entry["config"])
            input_cfg = cfg
            continue
        children.append(_parse_layer(entry, prefix=node.path, hint=f"layer_{i}"))
    if input_cfg is None:
        shape = None
        dtype = None
        if children and isinstance(entries, list):
            first = next((e for e in entries if is_object_dict(e)), None)
            if first is not None:
                fcfg = first["config"] if isinstance(first["config"], dict) else {}
                shape = fcfg.get("batch_input_shape") or fcfg.get("batch_shape")
                dtype = policy_name(fcfg.get("dtype"))[1]
        if shape is None:
            bis = raw.get("build_input_shape")
            shape = bis if _shape_list(bis) is not None else None
        if shape is None and isinstance(node.input_shape, tuple):
            shape = list(node.input_shape)
        if shape is not None and children:
            input_cfg = {"name": f"{children[0].name}_input", "batch_shape": list(shape),
                         "dtype": dtype or "float32"}
    if input_cfg is not None:
        node.config["input_layer"] = input_cfg
        batch = _shape_list(input_cfg.get("batch_shape"))
        if batch is not None:
            node.input_shape = batch
    input_name = input_cfg.get("name") if input_cfg else None
    previous: str | None = input_name if isinstance(input_name, str) else None
    for child in children:
        if not child.calls:
            child.calls.append(CallNode([TensorRef(previous)] if previous else []))
        previous = child.name
    node.children.extend(children)
    node.config["input_layers"] = [[input_name, 0, 0]] if isinstance(input_name, str) else []
    node.config["output_layers"] = [[children[-1].name, 0, 0]] if children else []


# ---------------------------------------------------------------- training config


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def normalize_optimizer(opt: Any) -> dict[str, Any] | None:
    """{class_name, config, learning_rate} from a string, a Keras 2 or a Keras 3 optimizer."""
    if opt is None:
        return None
    if isinstance(opt, str):
        return {"class_name": opt, "config": {}, "learning_rate": None}
    if not is_object_dict(opt):
        _unexpected(f"unrecognized optimizer: {str(opt)[:200]}")
        return {"class_name": None, "config": normalize_value(opt), "learning_rate": None}
    cls = str(opt["class_name"]).removeprefix("Custom>")
    cfg = normalize_value(opt["config"]) if isinstance(opt["config"], dict) else {}
    lr_raw = cfg.get("learning_rate", cfg.get("lr"))
    lr: Any = _number(lr_raw)
    if lr is None and isinstance(lr_raw, dict):
        lr = lr_raw
    return {"class_name": cls, "config": cfg, "learning_rate": lr}


def _metric(value: Any) -> Any:
    """Keras 2 h5 stores compiled metric objects; a MeanMetricWrapper is its name."""
    if is_object_dict(value) and value.get("class_name") == "MeanMetricWrapper":
        cfg = value.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
            return cfg["name"]
    if isinstance(value, list):
        return [_metric(v) for v in value]
    if isinstance(value, dict) and not is_object_dict(value):
        return {k: _metric(v) for k, v in value.items()}
    return normalize_value(value)


def normalize_metrics(metrics: Any) -> Any:
    """Metric names; Keras 2's per-output list of one single-output model is unwrapped."""
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        metrics = metrics[0]
    return _metric(metrics)


def normalize_training_config(raw: Any) -> dict[str, Any] | None:
    """Keras 2/3 h5 ``training_config`` or ``.keras`` ``compile_config`` -> one shape."""
    if not isinstance(raw, dict):
        return None
    opt = raw.get("optimizer_config", raw.get("optimizer"))
    return {
        "loss": normalize_value(raw.get("loss")),
        "optimizer": normalize_optimizer(opt),
        "metrics": normalize_metrics(raw.get("metrics")),
        "raw": raw,
    }


def parse_root_config(model_config: dict[str, Any], shown: str) -> LayerNode:
    """The model's layer tree rooted at ROOT_PATH; a malformed structure is a clean CORRUPT."""
    from inspector.errors import ErrorKind, KinspectError
    from inspector.graph import ROOT_PATH

    try:
        return parse_model_config(model_config, root_path=ROOT_PATH)
    except ConfigStructureError as exc:
        raise KinspectError(shown, f"unrecognized model config ({exc})",
                            ErrorKind.CORRUPT) from exc
