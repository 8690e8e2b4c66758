"""Rules on saved layer configs and the call graph: settings that make a model predict one
class, drift between runs, or learn nothing, readable without touching a weight value."""

from __future__ import annotations

from collections.abc import Iterator

from inspector.graph import LayerNode
from inspector.rules import init_penalty
from inspector.rules.layer_facts import (
    BN_CLASSES,
    DROPOUT_CLASSES,
    PROBABILITY,
    SOFTMAX_LIKE,
    applied_activation,
    compute_dtype,
    effectively_trainable,
    final_activation,
    layers_with_weights,
    number,
    output_nodes,
    producer,
    reported,
    shape_of,
)
from inspector.rules.registry import Hit, RuleContext, register

DROPOUT_WARN, DROPOUT_ERROR = 0.8, 0.95
# Layers whose variables are statistics, not trained parameters: freezing them means nothing.
_STATISTIC_LAYERS = frozenset({
    "Normalization", "TextVectorization", "StringLookup", "IntegerLookup", "Discretization",
    "Hashing", "CategoryEncoding",
})


@register(
    "KIN001", "dropout-rate-high", "warning",
    "{layer}: {key} = {rate} (warning from {warn}, error from {error})",
    "Use a dropout rate well below 0.8 (0.1-0.5 is usual) and retrain.",
)
def dropout_rate_high(ctx: RuleContext) -> Iterator[Hit]:
    """A dropout rate so high that the layers after it learn from (almost) nothing.

    Dropout keeps each unit with probability ``1 - rate`` during training. At 0.8 only a fifth
    of the signal reaches the next layer, at 0.95 a twentieth, and at 1.0 (Keras 3 accepts it)
    every unit is zeroed: nothing downstream receives a gradient, so the head keeps its random
    initial weights and at inference the model outputs near-constant predictions. Checked on
    Dropout, SpatialDropout1D/2D/3D, AlphaDropout, GaussianDropout (``rate``) and on the
    ``dropout`` / ``recurrent_dropout`` of RNN layers, cells and attention layers, at any depth
    (nested models, TimeDistributed, Bidirectional).

    Example: ``Dropout(0.95)`` before the classifier; fix: ``Dropout(0.3)``.
    """
    seen: set[tuple[str, str]] = set()
    for node in ctx.graph.walk():
        keys = ["rate"] if node.class_name in DROPOUT_CLASSES else []
        keys += [k for k in ("dropout", "recurrent_dropout") if k in node.config]
        for key in keys:
            rate = number(node.config.get(key))
            if rate is None or rate < DROPOUT_WARN:
                continue
            where = reported(node)
            if (where.path, key) in seen:
                continue
            seen.add((where.path, key))
            severity = "error" if rate >= DROPOUT_ERROR else "warning"
            yield Hit(where, {"key": key, "rate": rate, "warn": DROPOUT_WARN,
                              "error": DROPOUT_ERROR, "class_name": node.class_name}, severity)


def _frozen_census(ctx: RuleContext) -> tuple[list[LayerNode], list[LayerNode]]:
    owners = [n for n in layers_with_weights(ctx.graph) if n.class_name not in _STATISTIC_LAYERS]
    frozen = [n for n in owners if not effectively_trainable(n)]
    return owners, frozen


def _frozen_roots(frozen: list[LayerNode]) -> list[str]:
    """The outermost frozen ancestors, so a frozen base reads as one path, not fifty."""
    roots: list[str] = []
    for node in frozen:
        top = node
        while top.parent is not None and top.parent.parent is not None \
                and not top.parent.trainable:
            top = top.parent
        if top.path not in roots:
            roots.append(top.path)
    return roots


@register(
    "KIN002", "all-layers-frozen", "warning",
    "all {layers} layers with weights are frozen (trainable: false): fit() changed nothing",
    "Set trainable=True on the layers meant to learn (at least the new head) before fit().",
)
def all_layers_frozen(ctx: RuleContext) -> Iterator[Hit]:
    """Every layer that owns weights is frozen, so training could not have changed any weight.

    A model saved with ``model.trainable = False`` (or with each layer frozen) trains nothing:
    ``fit()`` runs, the loss stays flat, and the saved weights are whatever they were before,
    often a random head on a pretrained base that predicts one class for every input. Freezing
    only a base under a trainable head is the normal transfer-learning recipe and is reported
    by ``partially-frozen`` (info) instead. Layers holding only statistics (Normalization,
    lookups) are not counted.

    Example: ``base.trainable = False`` intended, ``model.trainable = False`` written;
    fix: unfreeze the head and retrain.
    """
    graph = ctx.graph
    if graph.root is None:
        return
    owners, frozen = _frozen_census(ctx)
    if owners and len(frozen) == len(owners):
        yield Hit(None, {"layers": len(owners), "frozen": len(frozen),
                         "model_trainable": graph.root.trainable,
                         "frozen_roots": _frozen_roots(frozen)})


@register(
    "KIN023", "partially-frozen", "info",
    "{frozen} of {layers} layers with weights are frozen: {frozen_roots}",
    "Nothing to fix if this is a frozen pretrained base; unfreeze layers that should learn.",
)
def partially_frozen(ctx: RuleContext) -> Iterator[Hit]:
    """Some layers with weights are frozen (``trainable: false``) and others are not.

    This is how transfer learning is meant to look (a frozen pretrained base under a new
    trainable head), so it is only information: it tells you which part of the model the
    last ``fit()`` could change. It matters when the frozen part is not the part you meant,
    e.g. a head frozen by mistake while the base trains.

    Example: ``base.trainable = False`` under a trainable ``Dense`` head gives "1 of 2 layers
    with weights are frozen".
    """
    if ctx.graph.root is None:
        return
    owners, frozen = _frozen_census(ctx)
    if 0 < len(frozen) < len(owners):
        yield Hit(None, {"layers": len(owners), "frozen": len(frozen),
                         "frozen_roots": _frozen_roots(frozen)})


def _softmax_axes(node: LayerNode) -> list[int] | None:
    """Axes a softmax-applying layer normalizes over (activation functions use the last)."""
    if node.class_name == "Softmax":
        axis = node.config.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        return [int(a) for a in axes] if all(isinstance(a, int) for a in axes) else None
    return [-1]


def _softmax_nodes(ctx: RuleContext) -> Iterator[tuple[LayerNode, str, list[int]]]:
    for node in ctx.graph.walk():
        if node.role == "wrapper":
            continue
        act = applied_activation(node)
        if act in SOFTMAX_LIKE:
            axes = _softmax_axes(node)
            if axes is not None:
                yield node, act, axes


@register(
    "KIN005", "softmax-wrong-axis", "error",
    "{layer}: {activation} over axis {axis} of output shape {shape}: {why}",
    "Apply softmax over the class axis (the last one: Softmax(axis=-1)).",
)
def softmax_wrong_axis(ctx: RuleContext) -> Iterator[Hit]:
    """A softmax normalizes over the batch axis, or over an axis that is not the class axis.

    Over axis 0 the probabilities are shared across the samples of a batch: each prediction
    depends on the other inputs in the batch, and a batch of one always gives 1.0. On an output
    shaped (batch, time, classes), ``Softmax(axis=1)`` normalizes each class over time, so the
    classes of one step no longer compete and argmax picks garbage. A softmax inside the model
    over another axis (attention weights over time) is normal and only axis 0 is flagged there.
    The same goes for a ``channels_first`` layer with ``activation="softmax"``, which
    normalizes over the last spatial axis instead of the channels. Uses static output shapes.

    Example: ``Softmax(axis=0)`` as the output layer; fix: ``Softmax(axis=-1)``.
    """
    outputs = {id(final_activation(n)[0]) for n in output_nodes(ctx.graph)}
    for node, act, axes in _softmax_nodes(ctx):
        shape = shape_of(node)
        rank = len(shape) if shape is not None else None
        norm = [a + rank if rank is not None and a < 0 else a for a in axes]
        evidence = {"activation": act, "axis": axes[0] if len(axes) == 1 else axes,
                    "shape": list(shape) if shape is not None else None}
        if 0 in norm:
            yield Hit(node, {**evidence, "why": "the batch axis: every prediction depends on "
                                                "the rest of the batch"})
        elif node.class_name != "Softmax" and node.config.get("data_format") == "channels_first" \
                and rank is not None and rank >= 3:
            yield Hit(node, {**evidence, "axis": rank - 1,
                             "why": "channels_first layer, so the activation normalizes the "
                                    "last spatial axis, not the channels"})
        elif id(node) in outputs and rank is not None and rank >= 3 and norm != [rank - 1]:
            yield Hit(node, {**evidence, "why": f"the model output's class axis is {rank - 1} "
                                                "(last)"})


@register(
    "KIN006", "softmax-single-unit", "error",
    "{layer}: {activation} over an axis of size 1 (shape {shape}): the output is always "
    "{constant}",
    "For one binary output use Dense(1, activation='sigmoid'); for K classes use K units.",
)
def softmax_single_unit(ctx: RuleContext) -> Iterator[Hit]:
    """A softmax over an axis of size 1: the output is 1.0 (log_softmax: 0.0) for every input.

    Softmax divides each value by the sum over the axis; with a single unit that is the value
    itself, so ``Dense(1, activation="softmax")`` predicts 1.0 whatever the input and the loss
    gives no gradient. This is the classic binary-classifier slip (sigmoid was meant). It also
    catches attention scores ``Dense(1)`` followed by a softmax over the last axis instead of
    over time.

    Example: ``Dense(1, activation="softmax")``; fix: ``Dense(1, activation="sigmoid")``.
    """
    for node, act, axes in _softmax_nodes(ctx):
        shape = shape_of(node)
        if shape is not None:
            sizes = [shape[a] for a in axes if -len(shape) <= a < len(shape)]
            single = bool(sizes) and all(s == 1 for s in sizes)
        else:
            single = node.class_name == "Dense" and node.config.get("units") == 1
        if single:
            yield Hit(node, {"activation": act,
                             "shape": list(shape) if shape is not None else None,
                             "constant": 1.0 if act == "softmax" else 0.0})


# Layers whose inference output differs from their training output.
_TRAINING_SENSITIVE = DROPOUT_CLASSES | frozenset({
    "GaussianNoise", "BatchNormalization", "SyncBatchNormalization",
})


def _training_sensitive(node: LayerNode) -> bool:
    for sub in node.walk():
        if sub.class_name in _TRAINING_SENSITIVE or sub.class_name.startswith("Random"):
            return True
        if any((number(sub.config.get(k)) or 0.0) > 0 for k in ("dropout", "recurrent_dropout")):
            return True
    return False


@register(
    "KIN012", "training-arg-hardcoded", "error",
    "{layer} is called with training=True in the saved graph ({effect})",
    "Call the layer without training= (or with training=False for a frozen base) and re-save.",
)
def training_arg_hardcoded(ctx: RuleContext) -> Iterator[Hit]:
    """A layer is called with ``training=True`` inside the saved model graph.

    The flag is stored with the call (Keras 3 node ``kwargs``, Keras 2 inbound-node kwargs), so
    at inference Dropout keeps dropping units, noise layers keep adding noise and
    BatchNormalization normalizes with the statistics of the current batch: predictions change
    from call to call and depend on the other samples in the batch (a batch of one collapses).
    Keras 3 ``predict()`` happens to override the flag, plain ``model(x)`` and exported serving
    functions do not. Error on layers that behave differently in training (dropout, noise,
    batch norm, random augmentation, RNNs with dropout, models containing them); warning on
    other layers, where the flag still reveals a build-time mistake.

    Example: ``x = Dropout(0.3)(x, training=True)`` (Monte-Carlo dropout left in a deployed
    model); fix: ``x = Dropout(0.3)(x)``.
    """
    for node in ctx.graph.walk():
        for index, call in enumerate(node.calls):
            if call.kwargs.get("training") is not True:
                continue
            sensitive = _training_sensitive(node)
            effect = ("it behaves as in training at inference: random / batch-dependent"
                      if sensitive else "no train/inference difference known for this class")
            yield Hit(node, {"call": index, "class_name": node.class_name, "effect": effect},
                      None if sensitive else "warning")


@register(
    "KIN013", "float16-output", "warning",
    "{layer}: the model output is computed in {dtype} (policy {policy}){detail}",
    "Keep mixed precision inside the model but end it with a float32 layer, e.g. "
    "Activation('softmax', dtype='float32').",
)
def float16_output(ctx: RuleContext) -> Iterator[Hit]:
    """The output layer, or the softmax/sigmoid that produces the output, computes in 16 bits.

    Under a ``mixed_float16`` (or bfloat16) policy every layer computes in half precision
    unless told otherwise. Softmax probabilities then have about three significant digits:
    confident classes saturate to exactly 1.0 / 0.0, near classes tie, and log-probabilities
    overflow. The mixed-precision guide ends the model with a float32 layer; a float32 layer
    placed after a float16 softmax does not help (the rounding already happened).

    Example: ``Dense(10, activation="softmax")`` under ``mixed_float16``; fix:
    ``Dense(10)`` then ``Activation("softmax", dtype="float32")``.
    """
    for out in output_nodes(ctx.graph):
        act_node, act = final_activation(out)
        candidates = [(out, "")]
        if act_node is not out and act in PROBABILITY | SOFTMAX_LIKE:
            candidates.append((act_node, f"; its {act} is computed before the output layer"))
        for node, detail in candidates:
            dtype = compute_dtype(node.dtype_policy)
            if dtype in ("float16", "bfloat16"):
                yield Hit(node, {"dtype": dtype, "policy": node.dtype_policy,
                                 "detail": detail, "output": out.path})
                break


_NON_NEGATIVE_HEADS = frozenset({"relu", "relu6"})


@register(
    "KIN015", "relu-output-head", "warning",
    "{layer}: the model output {output} ends in {activation}: outputs can never be negative "
    "and a unit stuck below zero outputs a constant 0",
    "Use a linear output for regression/logits (or softmax/sigmoid for probabilities).",
)
def relu_output_head(ctx: RuleContext) -> Iterator[Hit]:
    """A ReLU (or ReLU6) on the model's final output: a regressor's prediction or logits.

    ReLU clips every negative pre-activation to 0 with zero gradient. On an output unit that
    means negative targets can never be predicted, logits lose their negative half (softmax
    over clipped logits flattens), and once the pre-activation drifts below zero for all
    inputs the unit is dead: the model predicts a constant 0 and stops learning. Pass-through
    layers after the ReLU (Dropout, Flatten, linear Activation) are looked through. Softplus
    and exponential heads for positive targets are deliberate and not flagged.

    Example: ``Dense(1, activation="relu")`` as a regression head; fix: ``Dense(1)``.
    """
    for out in output_nodes(ctx.graph):
        node, act = final_activation(out)
        if act in _NON_NEGATIVE_HEADS:
            yield Hit(node, {"activation": act, "output": out.path})


@register(
    "KIN019", "stateful-rnn", "info",
    "{layer}: stateful=True: each prediction depends on the inputs of earlier calls",
    "Call model.reset_states() between independent sequences, or save a stateless copy "
    "for inference.",
)
def stateful_rnn(ctx: RuleContext) -> Iterator[Hit]:
    """A recurrent layer with ``stateful=True`` carries its state from one batch to the next.

    Outputs then depend on everything the model saw since the last ``reset_states()``: the same
    input gives different predictions in different orders, the batch size is fixed, and a
    server that never resets drifts. This is sometimes intended (streaming), hence info.

    Example: ``LSTM(64, stateful=True)`` used for independent requests; fix: a stateless copy
    with the same weights for serving.
    """
    seen: set[str] = set()
    for node in ctx.graph.walk():
        if node.config.get("stateful") is True:
            where = reported(node)
            if where.path not in seen:
                seen.add(where.path)
                yield Hit(where, {"class_name": node.class_name})


@register(
    "KIN024", "double-softmax", "warning",
    "{layer}: {activation} applied to {source}, which already outputs {previous}: "
    "probabilities get squashed towards uniform",
    "Remove one of the two: keep a linear Dense followed by a single softmax.",
)
def double_softmax(ctx: RuleContext) -> Iterator[Hit]:
    """A softmax or sigmoid applied to values that already are softmax probabilities.

    Probabilities lie in [0, 1]; a second softmax over them maps them into a band between
    ``1/(K-1+e)`` and ``e/(K-1+e)``: the ranking survives but every prediction looks nearly
    uniform, thresholds and confidence-based decisions break, and training through it is slow.
    Typical cause: ``Dense(K, activation="softmax")`` followed by ``Activation("softmax")`` or
    a ``Softmax`` layer added when converting the model. Pass-through layers in between
    (Dropout, Flatten, linear Activation) are looked through.

    Example: ``Dense(10, activation="softmax")`` then ``Softmax()``; fix: ``Dense(10)`` then
    ``Softmax()``.
    """
    for node in ctx.graph.walk():
        if node.class_name not in ("Softmax", "Activation"):
            continue
        act = applied_activation(node)
        if act not in PROBABILITY | SOFTMAX_LIKE:
            continue
        before = producer(node)
        if before is None:
            continue
        source, previous = final_activation(before)
        if previous == "softmax":
            yield Hit(node, {"activation": act, "source": source.path, "previous": previous})


_REGULARIZER_KEYS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                     "recurrent_regularizer", "depthwise_regularizer", "pointwise_regularizer",
                     "beta_regularizer", "gamma_regularizer", "embeddings_regularizer")
REGULARIZATION_LIMIT = 1.0


@register(
    "KIN027", "regularization-extreme", "warning",
    "{layer}: {key} {kind} = {factor} (>= {limit}): the penalty outweighs the data loss",
    "Use a factor around 1e-5..1e-3 (the wider the layers, the smaller) and retrain.",
)
def regularization_extreme(ctx: RuleContext) -> Iterator[Hit]:
    """An L1/L2 regularization factor of 1 or more on a layer's weights or activity, or
    penalties that are large for the width of the layers they apply to.

    The penalty ``factor * sum(w**2)`` (or ``|w|``) then dominates a cross-entropy of order 1:
    the optimizer's cheapest move is to shrink the weights towards zero, and the layer's output
    becomes (nearly) constant, so the model predicts the same class, or the mean target, for
    every input. Usual factors are 1e-5 to 1e-2.

    A factor below 1 can still be too strong: the penalty is summed over every weight, so it
    grows with the layer's width. From the initializers and kernel shapes the rule estimates
    what the penalties add to the loss at initialization (``l2 * n * E[w**2]``, with Glorot
    ``E[w**2] = 2 / (fan_in + fan_out)``) over the trainable layers, and warns from 5.0: more
    than twice the cross-entropy of an untrained 10-class classifier (ln 10 = 2.3) and 10-100x
    the loss of a trained one, so fitting the data is worth less than shrinking weights. An
    output of K > 12 classes starts from a loss of ln K, so the limit is ``2 ln K`` there:
    VGG16's weight decay (L2(5e-4) on two Dense(4096), ~5.6) is not reported for 1000 classes.
    ``L2(0.01)`` on every layer of a 784-512-512-10 MLP adds about 11 (Glorot) or 5.5
    (RandomUniform(-0.05, 0.05)); ``L2(1e-3)`` there adds 1.2, ``L2(1e-4)`` on a ResNet
    well under 1, and are not reported.

    Example: ``Dense(64, kernel_regularizer=L2(10.0))``; fix: ``L2(1e-4)``. ``L2(0.01)`` on
    each ``Dense(512)``; fix: ``L2(1e-4)``.
    """
    fired = False
    for node in ctx.graph.walk():
        for key in _REGULARIZER_KEYS:
            reg = node.config.get(key)
            if not isinstance(reg, dict) or not isinstance(reg.get("config"), dict):
                continue
            for kind in ("l1", "l2"):
                factor = number(reg["config"].get(kind))
                if factor is not None and factor >= REGULARIZATION_LIMIT:
                    fired = True
                    yield Hit(reported(node), {"key": key, "kind": kind, "factor": factor,
                                               "limit": REGULARIZATION_LIMIT})
    if not fired:
        yield from init_penalty.penalty_hits(ctx)


@register(
    "KIN021", "weights-only-file", "info",
    "weights only: {tensors} tensors ({values} values) and no architecture; {checks}",
    "Rebuild the model in code and load_weights(), or save the full model (.keras).",
)
def weights_only_file(ctx: RuleContext) -> Iterator[Hit]:
    """The file holds weights but no architecture, so only weight checks can run.

    A ``save_weights`` output or an h5 without a model config cannot be loaded or probed on
    its own: it needs the exact code that built the model, and a mismatched architecture loads
    silently into the wrong layers (or fails by name). A SavedModel without Keras metadata
    (``model.export()``) keeps only its serving signatures. Either way the config rules
    (activations, dropout, losses, freezing) cannot run; the weight checks (NaN/Inf, all-zero
    kernels, BatchNormalization statistics) still do.

    Example: ``model.save_weights("w.weights.h5")`` shipped as "the model"; fix:
    ``model.save("model.keras")``.
    """
    graph = ctx.graph
    if graph.has_architecture:
        return
    weights = [w for _, w in graph.all_weights()]
    checks = "only weight-value checks apply"
    if graph.signatures:
        checks = (f"serving signatures {sorted(graph.signatures)} can still be called; "
                  "only weight-value checks apply")
    yield Hit(None, {"tensors": len(weights), "values": sum(w.size for w in weights),
                     "checks": checks, "signatures": sorted(graph.signatures or {})})


_PREPROCESSING = frozenset({
    "Rescaling", "Normalization", "Resizing", "CenterCrop", "TextVectorization",
    "StringLookup", "IntegerLookup", "CategoryEncoding", "Hashing", "HashedCrossing",
    "Discretization", "AutoContrast", "Equalization", "MelSpectrogram", "STFTSpectrogram",
})


def rescaling_input_range(node: LayerNode) -> list[float] | None:
    """Raw input range a Rescaling maps onto [0, 1] (offset >= 0) or [-1, 1] (offset < 0):
    what the model expects to be fed, for KIN022's evidence and the bounds rules' input box."""
    scale, offset = number(node.config.get("scale")), number(node.config.get("offset", 0.0))
    if not scale or offset is None:
        return None
    lo, hi = (-1.0, 1.0) if offset < 0 else (0.0, 1.0)
    a, b = (lo - offset) / scale, (hi - offset) / scale
    return [round(min(a, b), 4), round(max(a, b), 4)]


def _input_batchnorms(root: LayerNode, inputs: set[str]) -> list[LayerNode]:
    """BatchNormalization layers of the top-level model called on a model input itself (an
    InputLayer, or the input a Sequential's first layer reads)."""
    inputs = inputs | {n.name for n in root.children if n.class_name == "InputLayer"}
    return [n for n in root.children if n.class_name in BN_CLASSES and any(
        ref.layer in inputs for call in n.calls for ref in call.inputs)]


@register(
    "KIN022", "input-preprocessing", "info",
    "inputs {inputs}: {summary}",
    "Feed inputs exactly as the model expects them (see evidence); the probe uses this too.",
)
def input_preprocessing(ctx: RuleContext) -> Iterator[Hit]:
    """What input the model expects: its preprocessing layers, or their absence on images.

    Feeding inputs on the wrong scale is the most common reason a healthy model predicts one
    class after deployment: 0..255 pixels into a model trained on [0, 1] saturates sigmoid /
    ReLU6 layers. When the model contains Rescaling / Normalization / lookup / resizing layers
    it expects raw data and this lists them (with the raw range a Rescaling implies); a
    BatchNormalization that reads a model input directly (tempocnn's spectrogram models)
    normalizes it inside the model too and is listed with them. When an image model (rank-4
    float input) has none, the scaling happened outside the model and must be repeated
    exactly; that is reported too. Plain vector models without preprocessing give no finding.

    Example: a CNN starting with ``Rescaling(1/255)`` expects raw 0..255 pixels.
    """
    graph = ctx.graph
    if graph.root is None:
        return
    inputs = [f"{t.name} {list(t.shape) if t.shape is not None else '?'} {t.dtype or '?'}"
              for t in graph.inputs]
    layers = [n for n in graph.walk() if n.class_name in _PREPROCESSING]
    layers += _input_batchnorms(graph.root, {t.name for t in graph.inputs})
    prep = []
    for n in layers:
        item: dict[str, object] = {"layer": n.path, "class_name": n.class_name}
        if n.class_name == "Rescaling":
            item.update(scale=n.config.get("scale"), offset=n.config.get("offset"),
                        expects_range=rescaling_input_range(n))
        prep.append(item)
    images = [t for t in graph.inputs if t.shape is not None and len(t.shape) == 4
              and (t.dtype or "float32").startswith(("float", "bfloat"))]
    if prep:
        ranges = [p["expects_range"] for p in prep if p.get("expects_range")]
        summary = "preprocessing inside the model: " + ", ".join(
            f"{p['class_name']} ({p['layer']})" for p in prep)
        if ranges:
            summary += f"; raw input range expected {ranges[0]}"
    elif images:
        summary = ("image input with no Rescaling/Normalization inside the model: scale "
                   "pixels exactly as during training")
    else:
        return
    yield Hit(None, {"inputs": "; ".join(inputs), "summary": summary, "preprocessing": prep,
                     "image_inputs": [t.name for t in images]})
