"""Static cost of one forward pass, estimated from the model graph alone.

The probe sizes its extra checks by how expensive the model is. Timing a predict() to decide
made the probe's own sample counts depend on how busy the machine was (the same model got
big-model sizes on a loaded CI runner and small ones on a quiet laptop), so the estimate is
taken from the saved shapes instead: multiply-accumulates per sample, the figure FLOP
counters report, without importing TensorFlow.
"""

from __future__ import annotations

from inspector.graph import LayerNode, ModelGraph, Shape

# Layers whose "kernel" is a lookup table, not a matrix multiplied by every input.
_LOOKUP_CLASSES = frozenset({"Embedding", "ReversibleEmbedding", "CategoryEncoding"})


def _positions(shape: Shape | list[Shape] | None) -> int:
    """How many times a kernel is applied per sample: the product of the output's axes
    between batch and channels (1 for a plain Dense output)."""
    if not isinstance(shape, tuple) or len(shape) < 3:
        return 1
    n = 1
    for d in shape[1:-1]:
        n *= int(d) if isinstance(d, int) and d > 0 else 1
    return n


def _cell_positions(cell: LayerNode) -> int:
    """How many times an RNN cell's matrices are applied per sample: once per time step (and
    per spatial position of a ConvLSTM), from the input shape of the RNN layer running it."""
    rnn = cell.parent
    while rnn is not None and rnn.role == "cell":  # a cell of StackedRNNCells
        rnn = rnn.parent
    shape = rnn.input_shape if rnn is not None else None
    if not isinstance(shape, tuple) or len(shape) < 3:
        return 1
    n = 1
    for d in shape[1:-1]:  # time, then a ConvLSTM's spatial axes
        n *= int(d) if isinstance(d, int) and d > 0 else 1
    return n


def _layer_macs(node: LayerNode) -> int:
    if node.class_name in _LOOKUP_CLASSES:
        out = node.output_shape
        return _positions(out) * (out[-1] if isinstance(out, tuple) and out and
                                  isinstance(out[-1], int) else 1)
    # Matrices (rank >= 2: kernels, recurrent kernels, depthwise/pointwise kernels) are
    # multiplied at every output position; vectors (biases, BN statistics) are negligible.
    kernel = sum(w.size for w in node.weights if len(w.shape) >= 2)
    if node.role == "cell":
        return kernel * _cell_positions(node)
    return kernel * _positions(node.output_shape)


def macs_per_sample(graph: ModelGraph) -> int:
    """Estimated multiply-accumulates for one sample (ResNet50 at 224x224: about 4e9).

    Shared layers count once per call. Without an architecture (weights-only files, bare
    SavedModels) every stored matrix counts once, a lower bound that still orders models
    by size.
    """
    if graph.root is None or not graph.has_architecture:
        return sum(w.size for _node, w in graph.all_weights() if len(w.shape) >= 2)
    return sum(_layer_macs(node) * max(1, len(node.calls)) for node in graph.walk())
