"""Facts computed once per graph after a reader attached the weights.

Parameter counts follow Keras ``count_params()`` (each layer node exists once, so a shared
layer is counted once; a frozen layer's or model's weights and BN moving statistics are
non-trainable). Output shapes are propagated through the CallNodes from the declared
input shapes with the rules in ``shapes.py``; anything unknown stays None.
"""

from __future__ import annotations

from inspector.graph import (
    ContainerIssue,
    LayerNode,
    ModelGraph,
    ParamCount,
    Shape,
    TensorRef,
    TensorSpec,
)
from inspector.readers import shapes
from inspector.readers.variable_names import is_non_trainable

Outputs = list[Shape | None]

_COMPUTE_DTYPES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def finalize(graph: ModelGraph) -> None:
    """Fill params, weight trainable flags, output shapes, inputs/outputs of ``graph``."""
    for w in graph.loose_weights:
        w.trainable = not is_non_trainable("BatchNormalization", w.name)
    if graph.root is None:
        return
    graph.container_issues.extend(path_collisions(graph.root))
    _mark_trainable(graph.root, True)
    _count(graph.root)
    outputs = propagate(graph.root, None)
    graph.class_name = graph.class_name or graph.root.class_name
    graph.inputs = model_inputs(graph.root)
    refs = output_refs(graph.root)
    by_name = {c.name: c for c in graph.root.children}
    graph.output_layers = [by_name[r.layer].path for r in refs if r.layer in by_name]
    graph.outputs = []
    for i, ref in enumerate(refs):
        layer = by_name.get(ref.layer)
        shape = outputs[i] if i < len(outputs) else None
        graph.outputs.append(TensorSpec(ref.layer, shape, _compute_dtype(layer)))


def path_collisions(root: LayerNode) -> list[ContainerIssue]:
    """Layers whose paths are taken already: findings are pinned to paths, so a crafted name
    such as ``base/bn`` next to a nested ``base`` model could pass one layer's finding off
    as another's."""
    first: dict[str, LayerNode] = {}
    issues: list[ContainerIssue] = []
    for node in root.walk():
        earlier = first.setdefault(node.path, node)
        if earlier is not node:
            issues.append(ContainerIssue(
                "layer-path-collision", node.path,
                f"{node.class_name} {node.name!r} and {earlier.class_name} {earlier.name!r} "
                f"both sit at {node.path}"))
    return issues


def _compute_dtype(layer: LayerNode | None) -> str | None:
    if layer is None:
        return None
    if layer.dtype_policy in _COMPUTE_DTYPES:
        return _COMPUTE_DTYPES[layer.dtype_policy]
    dtype = layer.config.get("dtype")
    return dtype if isinstance(dtype, str) else None


def _mark_trainable(node: LayerNode, parent_trainable: bool) -> None:
    effective = parent_trainable and node.trainable
    for w in node.weights:
        w.trainable = effective and not is_non_trainable(node.class_name, w.name)
    for child in node.children:
        _mark_trainable(child, effective)


def _count(node: LayerNode) -> ParamCount:
    total = ParamCount()
    for w in node.weights:
        n = w.size
        total = total + (ParamCount(n, n, 0) if w.trainable else ParamCount(n, 0, n))
    for child in node.children:
        total = total + _count(child)
    node.params = total
    return total


# ---------------------------------------------------------------- shapes


def model_inputs(model: LayerNode) -> list[TensorSpec]:
    """The declared inputs of a model node (InputLayer children or a Sequential's input)."""
    specs: list[TensorSpec] = []
    if "input_layer" in model.config:
        cfg = model.config["input_layer"]
        shape = cfg.get("batch_shape")
        return [TensorSpec(str(cfg.get("name")), tuple(shape) if isinstance(shape, list) else None,
                           cfg.get("dtype") if isinstance(cfg.get("dtype"), str) else None)]
    by_name = {c.name: c for c in model.children}
    for name, _, _ in model.config.get("input_layers", []):
        layer = by_name.get(name)
        if layer is None:
            specs.append(TensorSpec(name, None))
            continue
        shape = layer.config.get("batch_shape")
        dtype = layer.config.get("dtype")
        specs.append(TensorSpec(name, tuple(shape) if isinstance(shape, list) else None,
                                dtype if isinstance(dtype, str) else None))
    return specs


def output_refs(model: LayerNode) -> list[TensorRef]:
    return [TensorRef(n, ni, ti) for n, ni, ti in model.config.get("output_layers", [])]


def _as_list(out: shapes.Out) -> Outputs:
    if out is None:
        return [None]
    if isinstance(out, list):
        return list(out)
    return [out]


def _call_output(child: LayerNode, in_shapes: Outputs) -> Outputs:
    if child.role == "model":
        return propagate(child, in_shapes)
    return _as_list(shapes.infer(child, in_shapes, model=_nested_output))


def _nested_output(model: LayerNode, in_shapes: Outputs) -> shapes.Out:
    """A nested model's output(s) in the shape-rule form (one shape, or a list of several);
    used for models held by wrappers (``TimeDistributed(mobilenet)``)."""
    outs = propagate(model, in_shapes)
    if len(outs) == 1:
        return outs[0]
    return None if any(o is None for o in outs) else [o for o in outs if o is not None]


def propagate(model: LayerNode, given: Outputs | None) -> Outputs:
    """Output shapes of ``model``; sets output_shape/input_shape of every layer inside it.

    ``given`` are the shapes a parent model feeds in; the model's own declared input shapes
    win, as in Keras where a nested model keeps the graph it was built with.
    """
    declared = [s.shape for s in model_inputs(model)]
    feed = [d if d is not None else (given[i] if given and i < len(given) else None)
            for i, d in enumerate(declared)]
    tensors: dict[tuple[str, int], Outputs] = {}
    names = [name for name, _, _ in model.config.get("input_layers", [])]
    for name, shape in zip(names, feed, strict=False):
        tensors[(name, 0)] = [shape]
    pending = [(child, i) for child in model.children for i in range(len(child.calls))]
    # InputLayer children have no calls: their tensor is the declared shape.
    for child in model.children:
        if child.class_name == "InputLayer":
            key = (child.name, 0)
            tensors.setdefault(key, _as_list(shapes.infer(child, [])))
            child.output_shape = tensors[key][0]
    known = {c.name for c in model.children} | set(names)
    hints = _build_hints(model)
    progress = True
    while pending and progress:
        progress = False
        rest = []
        for child, i in pending:
            refs = child.calls[i].inputs
            if any((r.layer, r.node_index) not in tensors and r.layer in known for r in refs):
                rest.append((child, i))
                continue
            in_shapes = [_lookup(tensors, r) for r in refs]
            out = _call_output(child, in_shapes)
            out = [hints.get((child.name, i, t), o) if o is None else o
                   for t, o in enumerate(out)]
            tensors[(child.name, i)] = out
            if i == 0:
                child.output_shape = out[0] if len(out) == 1 else out
                if child.input_shape is None and in_shapes:
                    child.input_shape = in_shapes[0] if len(in_shapes) == 1 else in_shapes
                _fill_inner(child)
            progress = True
        pending = rest
    for child, _ in pending:
        child.output_shape = None
    return [_lookup(tensors, r) for r in output_refs(model)]


def _build_hints(model: LayerNode) -> dict[tuple[str, int, int], Shape]:
    """Tensor shapes Keras recorded in a consumer's ``build_config`` (its input shape).

    They fill in outputs of layers no rule knows (custom classes); only consumers called once
    count, since a shared layer's build_config describes its first call only.
    """
    hints: dict[tuple[str, int, int], Shape] = {}
    for child in model.children:
        if len(child.calls) != 1 or child.role == "model":
            continue
        refs = child.calls[0].inputs
        built = child.input_shape
        if len(refs) == 1 and isinstance(built, tuple):
            hints[(refs[0].layer, refs[0].node_index, refs[0].tensor_index)] = built
        elif isinstance(built, list) and len(built) == len(refs):
            for r, shape in zip(refs, built, strict=True):
                if isinstance(shape, tuple):
                    hints[(r.layer, r.node_index, r.tensor_index)] = shape
    return hints


def _lookup(tensors: dict[tuple[str, int], Outputs], ref: TensorRef) -> Shape | None:
    outs = tensors.get((ref.layer, ref.node_index))
    if outs is None or not 0 <= ref.tensor_index < len(outs):  # a crafted index: any int
        return None
    return outs[ref.tensor_index]


def _fill_inner(node: LayerNode) -> None:
    """Shapes of wrapped layers and RNN cells, derived from their container's call; a
    wrapped model gets the shapes of its own layers too (propagate fills them)."""
    s = node.input_shape if isinstance(node.input_shape, tuple) else None
    inner_in: Shape | None = None
    if node.class_name == "TimeDistributed" and s is not None and len(s) >= 3:
        inner_in = (s[0], *s[2:])
    elif node.class_name == "Bidirectional":
        inner_in = s
    if inner_in is None or node.role != "wrapper":
        return
    for inner in node.children:
        inner.input_shape = inner_in
        inner.output_shape = shapes.infer(inner, [inner_in], model=_nested_output)
        _fill_inner(inner)
