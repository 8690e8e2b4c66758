"""Which model inputs carry token ids, and how many ids each Embedding they feed accepts.

Read from the static graph (never TensorFlow), for the probe plan. An input feeding an
Embedding must get in-vocabulary ids even when it is declared float32 (Keras' default Input
dtype: random floats in 0..255 would be out-of-vocabulary ids and make every call fail), and
each input gets its own Embedding's ``input_dim``: the smallest of all would leave a larger
vocabulary mostly unprobed. Inputs this cannot trace (Embeddings inside nested models)
keep the probe's fallback, the smallest ``input_dim`` of the model.
"""

from __future__ import annotations

from typing import Any

from inspector.graph import LayerNode, ModelGraph

EMBEDDINGS = frozenset({"Embedding"})
# Layers that move ids around without changing their values: an Embedding behind one of
# them still reads the model input's values as ids.
PASS_THROUGH = frozenset({"Reshape", "Flatten", "Permute", "RepeatVector", "Masking",
                          "Identity", "Cropping1D", "TimeDistributed"})
MAX_HOPS = 8


def _source_input(node: LayerNode, siblings: dict[str, LayerNode],
                  inputs: set[str]) -> str | None:
    """The model input whose values reach ``node``'s first call unchanged, if any."""
    current: LayerNode | None = node
    for _ in range(MAX_HOPS):
        if current is None or not current.calls or len(current.calls[0].inputs) != 1:
            return None
        name = current.calls[0].inputs[0].layer
        if name in inputs:
            return name
        current = siblings.get(name)
        if current is not None and current.class_name not in PASS_THROUGH:
            return None
    return None


def token_inputs(graph: ModelGraph) -> dict[str, dict[str, Any]]:
    """{input name: {"vocab": smallest input_dim it feeds, "mask_zero": any masks id 0}}."""
    if graph.root is None:
        return {}
    inputs = {t.name for t in graph.inputs}
    siblings = {c.name: c for c in graph.root.children}
    found: dict[str, dict[str, Any]] = {}
    for node in graph.root.children:
        dim = node.config.get("input_dim")
        if node.class_name not in EMBEDDINGS or not isinstance(dim, int) or dim < 1:
            continue
        source = _source_input(node, siblings, inputs)
        if source is None:
            continue
        entry = found.setdefault(source, {"vocab": dim, "mask_zero": False})
        entry["vocab"] = min(entry["vocab"], dim)
        entry["mask_zero"] = entry["mask_zero"] or bool(node.config.get("mask_zero"))
    return found
