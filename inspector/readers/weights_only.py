"""Weights-only HDF5: Keras 2 ``save_weights`` output and Keras 3 ``.weights.h5``.

There is no architecture, so the graph has no root; tensors go to ``loose_weights`` with the
most human name the storage path allows (``dense/kernel``; ``dense/var_0`` when a Keras 3
group's class cannot be told from its name).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from inspector.graph import ModelGraph
from inspector.readers.h5_model import attach_h5_weights, h5_weight
from inspector.readers.keras_config import RNN_CELLS
from inspector.readers.keras_zip import CONTAINER_KEYS, own_vars, to_snake_case
from inspector.readers.pickle_scan import KERAS_GROUPS, scan_h5
from inspector.readers.safe_io import H5Guard, LazyH5, attr, chunked_attr
from inspector.readers.variable_names import known_class, variable_names

NO_ARCHITECTURE = ("weights-only file: it stores tensors without the model architecture, so "
                   "layer classes, configs, edges and output shapes are unknown")

_CELL_OWNERS = {to_snake_case(k): v for k, v in RNN_CELLS.items()}


def _graph(path: str | os.PathLike[str], f: h5py.File, fmt: str) -> tuple[ModelGraph, LazyH5]:
    graph = ModelGraph(path=str(path), format=fmt, root=None, has_architecture=False)
    graph.notes.append(NO_ARCHITECTURE)
    lazy = LazyH5(lambda: h5py.File(Path(path), "r"), f)
    graph.close = lazy.close
    return graph, lazy


def read_k2_weights(path: str | os.PathLike[str], f: h5py.File, file_size: int) -> ModelGraph:
    graph, lazy = _graph(path, f, "keras-h5-weights")
    guard = H5Guard(f, file_size, graph.container_issues)
    group = f
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs:
        mw = guard.child(f, "model_weights")
        if isinstance(mw, h5py.Group):
            group = mw
    graph.keras_version = attr(group, "keras_version")
    graph.backend = attr(group, "backend")
    attach_h5_weights(graph, None, group, guard, lazy)
    graph.notes = [n for n in graph.notes if not n.startswith("weights stored for layer")]
    layers = {str(n) for n in chunked_attr(group, "layer_names") or []}
    scan_h5(f, file_size, graph, KERAS_GROUPS | (layers if group is f else set()))
    return graph


def _class_for(snake: str) -> str | None:
    base = snake
    parts = snake.rsplit("_", 1)
    if len(parts) == 2 and parts[1].isdigit():
        base = parts[0]
    for cls in _KNOWN_SNAKE:
        if to_snake_case(cls) == base:
            return cls
    return None


_KNOWN_SNAKE = [c for c in ("Dense", "EinsumDense", "Embedding", "BatchNormalization",
                            "LayerNormalization", "GroupNormalization", "Normalization",
                            "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
                            "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D",
                            "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "PReLU")
                if known_class(c)]


def _class_for_vars(guard: H5Guard, group: h5py.Group) -> str | None:
    """Class from the layer name Keras 3 records on a ``vars`` group (``batch_normalization_1``):
    a subclassed model's groups are named after its attributes (``block1/bn``), not classes."""
    vars_group = guard.child(group, "vars")
    name = attr(vars_group, "name") if isinstance(vars_group, h5py.Group) else None
    return _class_for(name) if isinstance(name, str) else None


def read_k3_weights(path: str | os.PathLike[str], f: h5py.File, file_size: int) -> ModelGraph:
    graph, lazy = _graph(path, f, "keras-weights-h5")
    guard = H5Guard(f, file_size, graph.container_issues)
    _walk_k3(graph, f, "", guard, lazy, owner=None)
    scan_h5(f, file_size, graph, frozenset(), vars_owned=True)
    return graph


def _walk_k3(graph: ModelGraph, group: h5py.Group, prefix: str, guard: H5Guard,
             lazy: LazyH5, owner: str | None, depth: int = 0) -> None:
    if guard.too_deep(depth, group):
        return
    datasets = own_vars(guard, group)
    if datasets and not prefix.startswith(("optimizer", "seed_generator")) and (
            "/seed_generator" not in prefix):
        cls = (_class_for(owner) if owner else None) or _class_for_vars(guard, group)
        if owner == "cell" and prefix.count("/") >= 1:
            parent = prefix.split("/")[-2]
            base = parent.rsplit("_", 1)[0] if parent.rsplit("_", 1)[-1].isdigit() else parent
            cls = _CELL_OWNERS.get(base)
        names = None
        if cls is not None:
            names = variable_names(cls, {}, len(datasets))
        names = names or [f"var_{i}" for i in range(len(datasets))]
        graph.loose_weights.extend(
            h5_weight(guard, lazy, ds, f"{prefix}/{name}" if prefix else name)
            for ds, name in zip(datasets, names, strict=False))
    for key in guard.names(group):
        if key == "vars":
            continue
        if not prefix and key == "optimizer":
            graph.notes.append("optimizer state stored alongside the weights (not listed)")
            continue
        sub = guard.child(group, key)
        if not isinstance(sub, h5py.Group):
            continue
        if key in CONTAINER_KEYS:
            _walk_k3(graph, sub, prefix, guard, lazy, owner=None, depth=depth + 1)
        else:
            _walk_k3(graph, sub, f"{prefix}/{key}" if prefix else key, guard, lazy, owner=key,
                     depth=depth + 1)
