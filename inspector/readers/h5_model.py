"""Keras 2 and Keras 3 ``model.save("x.h5")`` files (and Keras 2.0-2.3 ``Model`` files).

Layout: root attrs ``model_config`` (JSON), ``keras_version``, ``backend``,
``training_config``; group ``model_weights`` with attr ``layer_names`` and one group per
top-level layer whose attr ``weight_names`` lists dataset paths relative to that group
(``dense/kernel:0`` in Keras 2, ``dense/kernel`` in Keras 3; nested models list their inner
layers' weights).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import LayerNode, ModelGraph, WeightInfo
from inspector.readers.keras_config import (
    normalize_training_config,
    parse_root_config,
)
from inspector.readers.optimizer_state import h5_optimizer_iterations
from inspector.readers.pickle_scan import KERAS_GROUPS, scan_h5
from inspector.readers.safe_io import (
    H5Guard,
    H5WeightSource,
    JsonTooLarge,
    LazyH5,
    attr,
    chunked_attr,
    load_json,
)


def load_json_attr(f: h5py.Group, name: str, shown: str) -> Any:
    text = attr(f, name)
    if text is None:
        return None
    try:
        return load_json(text)
    except JsonTooLarge as exc:
        raise KinspectError(shown, f"attribute {name} is too large to parse safely ({exc})",
                            ErrorKind.TOO_LARGE) from exc
    except (TypeError, ValueError) as exc:
        raise KinspectError(shown, f"attribute {name} is not valid JSON",
                            ErrorKind.CORRUPT) from exc


def match_weight(top: LayerNode, weight_name: str) -> tuple[LayerNode, str]:
    """The node below ``top`` that owns a Keras 2/3 h5 weight name, and its short name.

    Scope parts naming a descendant are followed (``gru_cell``-like parts reach the RNN cell);
    parts that name nothing stay in the weight name (``query/kernel`` of attention layers).
    """
    parts = [p for p in weight_name.split("/") if p]
    if not parts:
        return top, weight_name
    var = parts[-1].split(":", 1)[0]
    scopes = parts[:-1]
    if top.name in scopes:  # Keras 3 prefixes the model / layer name(s) before the scope
        scopes = scopes[scopes.index(top.name) + 1:]
    current = top
    leftover: list[str] = []
    for part in scopes:
        nxt = _scope_child(current, part)
        if nxt is None and part.endswith("cell"):
            nxt = next((c for c in current.children if c.role == "cell"), None)
        if nxt is not None:
            current = nxt
            leftover = []
        else:
            leftover.append(part)
    while not leftover and current.children and (
            (current.role == "wrapper" and len(current.children) == 1)
            or (len(current.children) == 1 and current.children[0].role == "cell")):
        current = current.children[0]
    return current, "/".join([*leftover, var])


def _scope_child(node: LayerNode, part: str) -> LayerNode | None:
    """The descendant a weight-name scope part names: a child, or a layer of the model a
    wrapper holds. A wrapper's weight group lists its nested model's weights flat under its
    own name (``time_distributed_1/conv1_bn/gamma:0``, Keras 2.2.4 to 3), so the wrapped
    model is looked through."""
    found = next((c for c in node.children if c.name == part), None)
    if found is None and node.role == "wrapper" and len(node.children) == 1 and (
            node.children[0].role in ("model", "wrapper")):
        return _scope_child(node.children[0], part)
    return found


def h5_weight(guard: H5Guard, lazy: LazyH5, ds: h5py.Dataset, name: str,
              storage_prefix: str = "") -> WeightInfo:
    shape = tuple(int(d) for d in ds.shape)
    ok = guard.dataset_ok(ds)
    return WeightInfo(name=name, shape=shape, dtype=str(ds.dtype),
                      storage_path=storage_prefix + ds.name,
                      source=H5WeightSource(lazy, ds.name, shape, readable=ok))


def attach_h5_weights(graph: ModelGraph, root: LayerNode | None, group: h5py.Group,
                      guard: H5Guard, lazy: LazyH5) -> int:
    """Attach every weight listed under ``group`` (``layer_names``/``weight_names``)."""
    names = chunked_attr(group, "layer_names") or []
    by_name = {c.name: c for c in root.children} if root else {}
    count = 0
    for lname in names:
        lgroup = guard.child(group, str(lname))
        if not isinstance(lgroup, h5py.Group):
            graph.notes.append(f"weights group for layer {lname} is missing")
            continue
        top = root if lname == "top_level_model_weights" else by_name.get(str(lname))
        for wname in chunked_attr(lgroup, "weight_names") or []:
            ds = guard.child(lgroup, str(wname))
            if not isinstance(ds, h5py.Dataset):
                graph.notes.append(f"weight {lname}/{wname} is listed but missing")
                continue
            if top is None:
                short = str(wname).split(":", 1)[0]
                if not short.startswith(f"{lname}/"):
                    short = f"{lname}/{short}"
                graph.loose_weights.append(h5_weight(guard, lazy, ds, short))
                continue
            node, short = match_weight(top, str(wname))
            node.weights.append(h5_weight(guard, lazy, ds, short))
            count += 1
        if top is None and str(lname) not in ("top_level_model_weights",):
            graph.notes.append(f"weights stored for layer {lname} that the config does not have")
    return count


def read_h5_model(path: str | os.PathLike[str], f: h5py.File, file_size: int) -> ModelGraph:
    shown = str(path)
    config = load_json_attr(f, "model_config", shown)
    if not isinstance(config, dict):
        raise KinspectError(shown, "model_config is not a Keras model config",
                            ErrorKind.NOT_A_MODEL)
    root = parse_root_config(config, shown)
    graph = ModelGraph(path=shown, format="keras-h5", root=root, raw_config=config)
    lazy = LazyH5(lambda: h5py.File(Path(path), "r"), f)
    graph.close = lazy.close
    guard = H5Guard(f, file_size, graph.container_issues)
    weights = guard.child(f, "model_weights")
    graph.keras_version = attr(f, "keras_version") or (
        attr(weights, "keras_version") if isinstance(weights, h5py.Group) else None)
    graph.backend = attr(f, "backend") or (
        attr(weights, "backend") if isinstance(weights, h5py.Group) else None)
    graph.class_name = root.class_name
    graph.training_config = normalize_training_config(load_json_attr(f, "training_config", shown))
    if isinstance(weights, h5py.Group):
        attach_h5_weights(graph, root, weights, guard, lazy)
        graph.optimizer_iterations = h5_optimizer_iterations(guard, f)
    else:
        graph.notes.append("the file has no model_weights group: architecture only")
    scan_h5(f, file_size, graph, KERAS_GROUPS)
    return graph
