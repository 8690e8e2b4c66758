"""Rules on how the layers are put together: mistakes that leave a model linear, random,
unstable or unable to express its classes, readable from the saved config alone.

Each rule is one of the common Keras bugs seen in StackOverflow questions ("my model
predicts the same class", "loss is nan after a few steps"); none reads a weight value.
"""

from __future__ import annotations

from collections.abc import Iterator

from inspector.graph import LayerNode, ModelGraph
from inspector.rules.layer_facts import (
    ACTIVATION_LAYERS,
    AFFINE_CLASSES,
    BN_CLASSES,
    DROPOUT_CLASSES,
    PASS_THROUGH,
    PROBABILITY,
    RELU_LIKE,
    SOFTMAX_LIKE,
    activation_name,
    applied_activation,
    consumers,
    final_activation,
    model_output,
    output_nodes,
    producer,
    producers,
    reported,
    shape_of,
)
from inspector.rules.registry import Hit, RuleContext, register

# Layers that are linear (affine) at inference and own no nonlinearity: a model made only
# of these and linear Dense/Conv layers computes one affine map of its input.
_LINEAR_CLASSES = frozenset({
    "InputLayer", "Flatten", "Reshape", "Permute", "RepeatVector", "Identity",
    "ActivityRegularization", "GaussianNoise", "BatchNormalization", "SyncBatchNormalization",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Add", "Subtract", "Average",
    "Concatenate", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Rescaling",
    "Normalization", "Embedding",
}) | DROPOUT_CLASSES
# Random at training time, identity (or a fixed scaling) at inference.
RANDOM_CLASSES = DROPOUT_CLASSES | frozenset({"GaussianNoise"})
_POOLING = frozenset({
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
})
_RECURRENT = frozenset({
    "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "ConvLSTM1D",
    "ConvLSTM2D", "ConvLSTM3D", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell",
    "LSTMV1", "GRUV1", "PeepholeLSTMCell",
})
# State activations that keep the recurrent state bounded, and gate activations in [0, 1].
_BOUNDED_STATE = frozenset({"tanh", "softsign", "sigmoid", "hard_sigmoid", "hard_tanh",
                            "relu6"})
_GATES = frozenset({"sigmoid", "hard_sigmoid", "sparse_sigmoid"})
# sigmoid-bottleneck: at most this many sigmoid units fed by at least RATIO x as many inputs.
BOTTLENECK_MAX_UNITS = 4
BOTTLENECK_RATIO = 8


def _leaf_layers(graph: ModelGraph) -> Iterator[LayerNode]:
    """Layers that compute something themselves: nested models and wrappers are walked
    into, an RNN stands for its cell."""
    for node in graph.walk():
        if node.role not in ("model", "wrapper", "cell"):
            yield node


def _is_affine(node: LayerNode) -> bool:
    """A Dense/Conv layer, or a wrapper (TimeDistributed) applying one."""
    if node.role == "wrapper" and node.children and node.class_name != "Bidirectional":
        return node.children[0].class_name in AFFINE_CLASSES
    return node.class_name in AFFINE_CLASSES


def _in_graph(node: LayerNode) -> LayerNode:
    """The node that stands for ``node`` in its model's call graph (a wrapped layer's
    wrapper)."""
    while node.parent is not None and node.parent.role == "wrapper":
        node = node.parent
    return node


def _owns_weights(node: LayerNode) -> bool:
    return _is_affine(node) or any(n.weights for n in node.walk())


def _output_activation_nodes(graph: ModelGraph) -> set[int]:
    """The layers applying each output's final activation (where a nonlinearity belongs)."""
    return {id(final_activation(out)[0]) for out in output_nodes(graph)}


def _sources(node: LayerNode) -> list[LayerNode]:
    """Layers feeding ``node``, nested models resolved to their output layers."""
    found = producers(node) or []
    resolved = []
    for src in found:
        if src.role == "model":
            src = model_output(src) or src
        resolved.append(src)
    return resolved


def _affine_depths(graph: ModelGraph) -> dict[int, int]:
    """Longest chain of affine layers ending at each layer (inclusive), by node id.

    Keras lists layers in call order, so one pass in file order sees every source first
    (a source seen later counts as depth 0: an underestimate, never a false chain)."""
    depth: dict[int, int] = {}
    for node in graph.walk():
        if node.role == "model" or (node.parent is not None and node.parent.role == "wrapper"):
            continue
        below = max((depth.get(id(_in_graph(s)), 0) for s in _sources(node)), default=0)
        depth[id(node)] = below + (1 if _is_affine(node) else 0)
    return depth


@register(
    "KIN070", "no-nonlinearity", "warning",
    "the model is linear: {depth} stacked Dense/Conv layers ({layers}) with no activation "
    "between them compute a single {final} layer",
    "Give the hidden Dense/Conv layers an activation (activation='relu'), or use one layer.",
)
def no_nonlinearity(ctx: RuleContext) -> Iterator[Hit]:
    """Two or more stacked Dense/Conv layers and no nonlinearity anywhere before the output.

    Why: a composition of affine maps is one affine map. ``Dense(64)`` then ``Dense(10,
    activation="softmax")`` (``activation`` defaults to None, i.e. linear) is exactly a
    single-layer logistic regression with more parameters: it cannot learn XOR, curved class
    boundaries or anything a hidden layer is for, and accuracy plateaus at the linear model's.
    The activation of the output layer (softmax, sigmoid) does not count: it shapes the
    output, it adds no hidden nonlinearity. Layers that are affine at inference (Flatten,
    Reshape, BatchNormalization, average pooling, Add/Concatenate, Dropout, Rescaling...) are
    looked through; any other layer (max pooling, LayerNormalization, RNNs, attention, custom
    layers) counts as a nonlinearity, so the rule stays quiet on what it cannot judge. A
    single Dense/Conv layer (logistic or linear regression) is a legitimate model and is
    not reported; a deliberately linear stack (a linear autoencoder reproducing PCA) can
    ignore the warning.

    Fix: give the hidden layers an activation, e.g. ``Dense(64, activation="relu")``.

    Example: ``Sequential([Dense(128), Dense(64), Dense(10, activation="softmax")])``.
    """
    graph = ctx.graph
    if graph.root is None:
        return
    allowed = _output_activation_nodes(graph)
    affine: list[LayerNode] = []
    for node in _leaf_layers(graph):
        act = applied_activation(node)
        if act is not None and act != "linear" and (
                id(node) in allowed or id(_in_graph(node)) in allowed):
            if _is_affine(node):
                affine.append(node)
            continue
        if _is_affine(node) and act == "linear":
            affine.append(node)
        elif node.class_name in _LINEAR_CLASSES or (
                node.class_name == "Activation" and act == "linear"):
            continue
        else:
            return  # a nonlinearity, or a layer whose effect is unknown
    depths = _affine_depths(graph)
    depth = max((depths.get(id(_in_graph(n)), 0) for n in affine), default=0)
    if depth < 2:
        return
    finals = sorted({final_activation(o)[1] or "?" for o in output_nodes(graph)})
    final = "/".join(finals) if finals != ["linear"] else "linear"
    yield Hit(None, {"depth": depth, "layers": ", ".join(n.path for n in affine[:6]),
                     "final": final, "affine_layers": [n.path for n in affine]})


def _output_path(out: LayerNode) -> list[LayerNode]:
    """From the output back to the last layer that is not a pass-through or an activation
    layer (that layer included, first in the list)."""
    chain = [out]
    current = out
    for _ in range(64):
        if current.class_name not in PASS_THROUGH and current.class_name not in ACTIVATION_LAYERS:
            break
        before = producer(current)
        if before is None:
            break
        chain.append(before)
        current = before
    return chain[::-1]


@register(
    "KIN071", "dropout-on-output", "warning",
    "{layer}: {class_name} sits {where} (output {output}): {why}",
    "Put Dropout/noise before the last Dense layer (Dropout -> Dense(K) -> softmax), never "
    "between it and the output.",
)
def dropout_on_output(ctx: RuleContext) -> Iterator[Hit]:
    """A Dropout or noise layer between the last weighted layer and the model's output.

    Why: dropout is meant for hidden features. Placed after the last Dense/Conv layer, as in
    ``Dense(10) -> Dropout(0.5) -> Activation("softmax")``, it zeroes class logits at random
    during training: the loss sees a logit of 0 for classes that were dropped, the gradient
    for those classes is lost, and the loss is noisy for every sample. After a softmax or
    sigmoid it is worse: the dropped probabilities are 0 and the kept ones are scaled by
    ``1 / (1 - rate)``, so the training targets are compared with values that do not sum to
    1 (cross-entropy of a dropped true class is ``-log(0)``, clipped to a huge constant). At
    inference the layer is the identity, so nothing looks wrong there: the damage is in what
    the model learned. Dropout, SpatialDropout, AlphaDropout, GaussianDropout and
    GaussianNoise are checked; a ReLU output followed by Dropout is left to
    ``relu-output-head``.

    Fix: move the Dropout before the last Dense layer.

    Example: ``Dense(10)``, ``Dropout(0.5)``, ``Activation("softmax")``; fix: ``Dropout(0.5)``,
    ``Dense(10)``, ``Activation("softmax")``.
    """
    seen: set[int] = set()
    for out in output_nodes(ctx.graph):
        chain = _output_path(out)
        weighted = chain[0]
        if not _owns_weights(weighted) or weighted.class_name in RANDOM_CLASSES:
            continue
        act_index = next((i for i, n in enumerate(chain)
                          if applied_activation(n) not in ("linear", None)), None)
        act = applied_activation(chain[act_index]) if act_index is not None else "linear"
        for i, node in enumerate(chain[1:], start=1):
            if node.class_name not in RANDOM_CLASSES or id(node) in seen:
                continue
            if act_index is None:
                where, why = ("after the last weighted layer", "it drops or perturbs the "
                              "logits / predictions themselves during training")
            elif i < act_index:
                where, why = (f"between {weighted.path} and the output {act}",
                              f"class scores are dropped at random before the {act}")
            elif act in PROBABILITY | SOFTMAX_LIKE:
                where, why = (f"after the output {act}",
                              "it perturbs the probabilities themselves during training "
                              "(they leave [0, 1] or stop summing to 1) and the loss compares "
                              "those with the targets")
            else:
                continue
            seen.add(id(node))
            yield Hit(node, {"class_name": node.class_name, "where": where, "why": why,
                             "output": out.path, "weighted_layer": weighted.path,
                             "activation": act})


@register(
    "KIN072", "recurrent-relu", "warning",
    "{layer}: {class_name} with {key}='{activation}': {why}",
    "Keep the defaults: activation='tanh', recurrent_activation='sigmoid' (also the only "
    "setting that runs on the fast cuDNN kernel).",
)
def recurrent_relu(ctx: RuleContext) -> Iterator[Hit]:
    """A recurrent layer whose state activation is unbounded (relu...) or whose gates are not
    squashed into [0, 1].

    Why: an RNN applies its recurrent kernel once per time step. With ``tanh`` the state stays
    in [-1, 1]; with ``relu`` (or elu, linear, softplus...) nothing bounds it, so whenever the
    recurrent kernel amplifies (spectral radius > 1, which training easily reaches) the state
    and its gradients grow geometrically with the sequence length: the loss turns NaN after a
    few batches, or the model only works on sequences as short as the ones it was trained on.
    An LSTM's cell state has the same problem through ``activation``. Gates
    (``recurrent_activation``) must lie in [0, 1] to mean "how much to keep"; an unbounded
    gate multiplies the state. Keras also runs LSTM/GRU on the fast cuDNN kernel only with
    the default tanh/sigmoid. ReLU with an identity recurrent initializer (the IRNN recipe of
    Le et al., 2015) is deliberate and not reported.

    Fix: use ``activation="tanh"`` (the default) and ``recurrent_activation="sigmoid"``;
    for a ReLU RNN, initialize the recurrent kernel to the identity and clip gradients.

    Example: ``LSTM(50, activation="relu")`` from a time-series tutorial; fix: ``LSTM(50)``.
    """
    seen: set[tuple[str, str]] = set()
    for node in ctx.graph.walk():
        if node.class_name not in _RECURRENT:
            continue
        cfg = node.config
        checks = [("activation", _BOUNDED_STATE,
                   "the recurrent state is unbounded and can explode over time steps")]
        if "recurrent_activation" in cfg:
            checks.append(("recurrent_activation", _GATES,
                           "gates outside [0, 1] amplify the state instead of gating it"))
        for key, ok, why in checks:
            if key not in cfg:
                continue
            act = activation_name(cfg[key])
            if act is None or act in ok:
                continue  # custom activations are not judged
            if key == "activation" and act in RELU_LIKE and _irnn(cfg):
                continue
            where = reported(node)
            if (where.path, key) in seen:
                continue
            seen.add((where.path, key))
            shown = node.parent.class_name if node.role == "cell" and node.parent else (
                node.class_name)
            yield Hit(where, {"class_name": shown, "key": key, "activation": act,
                              "why": why})


def _irnn(cfg: dict[str, object]) -> bool:
    init = cfg.get("recurrent_initializer")
    name = init.get("class_name") if isinstance(init, dict) else init
    return isinstance(name, str) and name.lower() == "identity"


def _fan_in(node: LayerNode) -> int | None:
    for w in node.weights:
        if w.name.rsplit("/", 1)[-1].split(":")[0] == "kernel" and len(w.shape) >= 2:
            fan = 1
            for d in w.shape[:-1]:
                fan *= int(d or 0)
            return fan or None
    shape = node.input_shape
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def _feeds_weighted_layer(node: LayerNode) -> bool:
    """True when the layer's output reaches a weighted layer through pass-through layers."""
    frontier = consumers(node) or []
    for _ in range(16):
        following: list[LayerNode] = []
        for nxt in frontier:
            if _is_affine(nxt) or nxt.class_name in _RECURRENT:
                return True
            if nxt.class_name in PASS_THROUGH or nxt.class_name in BN_CLASSES:
                following.extend(consumers(nxt) or [])
        if not following:
            return False
        frontier = following
    return False


@register(
    "KIN073", "sigmoid-bottleneck", "warning",
    "{layer}: a hidden sigmoid layer of {units} unit(s) fed by {fan_in} inputs: everything "
    "downstream depends on {units} saturating value(s) in (0, 1)",
    "Widen the layer and use relu (or a linear bottleneck); keep sigmoid for outputs and gates.",
)
def sigmoid_bottleneck(ctx: RuleContext) -> Iterator[Hit]:
    """A narrow hidden sigmoid layer (at most 4 units, 8x fewer than its inputs) feeding
    further weighted layers.

    Why: every layer after it sees only these few numbers, each squashed into (0, 1) and
    flat (gradient <= 0.25, near 0 once saturated) over most of its range. With 784 pixels
    squeezed into ``Dense(2, activation="sigmoid")`` the classifier above it has two nearly
    binary features to separate ten classes, and the layers below it receive almost no
    gradient once the units saturate: training stalls at a high loss and the model predicts
    a handful of classes. Thresholds: at most ``BOTTLENECK_MAX_UNITS`` = 4 units (below that,
    saturated sigmoids carry at most a few bits) and at least ``BOTTLENECK_RATIO`` = 8 times
    as many inputs (a real compression, so XOR-style toy nets with 2 inputs and small MLPs on
    a few features are not reported). Sigmoid outputs and gates (a sigmoid layer multiplied
    into other features, as in attention or squeeze-and-excitation) are not bottlenecks and
    are not reported.

    Fix: use a wider hidden layer with relu; for a deliberate bottleneck (autoencoder code)
    use a linear or relu code layer.

    Example: ``Dense(2, activation="sigmoid")`` between ``Flatten()`` of a 28x28 image and
    ``Dense(10, activation="softmax")``.
    """
    outputs = _output_activation_nodes(ctx.graph)
    for node in ctx.graph.walk():
        if node.class_name != "Dense" or id(node) in outputs:
            continue
        if applied_activation(node) not in ("sigmoid", "hard_sigmoid"):
            continue
        units = node.config.get("units")
        fan_in = _fan_in(node)
        if not isinstance(units, int) or fan_in is None:
            continue
        if units > BOTTLENECK_MAX_UNITS or fan_in < BOTTLENECK_RATIO * units:
            continue
        if _feeds_weighted_layer(node):
            yield Hit(node, {"units": units, "fan_in": fan_in,
                             "max_units": BOTTLENECK_MAX_UNITS, "ratio": BOTTLENECK_RATIO})


@register(
    "KIN074", "relu-logits", "warning",
    "{layer}: the output {activation} reads ReLU outputs of {source}{via} as logits: they are "
    ">= 0, {why}",
    "Make the last layer before the softmax/sigmoid linear: Conv2D(K, 1) / Dense(K) with no "
    "activation.",
)
def relu_logits(ctx: RuleContext) -> Iterator[Hit]:
    """The output softmax/sigmoid is applied to ReLU outputs (directly or after global
    pooling), so the logits can never be negative.

    Why: a softmax or sigmoid needs signed logits. Behind a ReLU they are >= 0: a class (or
    channel) whose unit stops firing is stuck at logit 0 and receives no gradient again (a
    dead-feature head), and the model can never push a class below the others, only raise
    the others. The fully convolutional classifier ``Conv2D(K, 1, activation="relu") ->
    GlobalAveragePooling2D -> softmax`` is the usual form; ``Dense(K, activation="relu")``
    followed by ``Activation("softmax")`` is the dense one. With a sigmoid it is an error:
    ``sigmoid(x >= 0) >= 0.5``, so the model answers "positive" for every input. Pass-through
    layers and pooling between the ReLU and the output are looked through; a Dense/Conv
    layer in between (ResNet's ReLU -> pooling -> Dense head) makes the logits signed again
    and is not reported.

    Fix: drop the activation of the last Dense/Conv before the output activation.

    Example: ``Conv2D(10, 1, activation="relu")``, ``GlobalAveragePooling2D()``,
    ``Activation("softmax")``; fix: ``Conv2D(10, 1)``.
    """
    for out in output_nodes(ctx.graph):
        current, prob, pooled = out, None, []
        for _ in range(64):
            act = applied_activation(current)
            if current.class_name in ACTIVATION_LAYERS and act in PROBABILITY | SOFTMAX_LIKE \
                    and prob is None:
                prob = act
            elif current.class_name in _POOLING:
                pooled.append(current.path)
            elif not (current.class_name in PASS_THROUGH or (
                    current.class_name == "Activation" and act == "linear")):
                break
            before = producer(current)
            if before is None:
                break
            current = before
        else:
            continue
        act = applied_activation(current)
        if prob is None or act not in RELU_LIKE or current is out:
            continue
        sigmoid = prob in ("sigmoid", "hard_sigmoid")
        why = ("so the sigmoid is >= 0.5 for every input (always 'positive')" if sigmoid else
               "so a class whose unit stops firing is stuck at logit 0 with no gradient")
        shape = shape_of(current)
        yield Hit(current, {"activation": prob, "source": current.path,
                            "via": f" through {', '.join(pooled)}" if pooled else "",
                            "why": why, "relu": act, "output": out.path,
                            "shape": list(shape) if shape is not None else None},
                  "error" if sigmoid else None)
