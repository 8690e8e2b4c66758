"""Rules that read the stored weight values: missing or stale statistics, NaN, dead units.

Each rule streams through ``ctx.stats`` (one pass per tensor, shared with the report
and the TUI) and reads a tensor whole only when it needs per-unit values of a small tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from inspector.graph import LayerNode, WeightInfo
from inspector.rules.layer_facts import (
    BN_CLASSES,
    BOUNDED,
    NON_NEGATIVE,
    NORMALIZATION_CLASSES,
    PASS_THROUGH,
    RELU_LIKE,
    applied_activation,
    effectively_trainable,
    final_activation,
    has_stored_weights,
    is_optimizer_weight,
    output_nodes,
    producer,
    producers,
    read_small,
    short_name,
    weights_by_name,
)
from inspector.rules.registry import Hit, RuleContext, register

KERNELS = frozenset({"kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"})
# Trainable parameters whose magnitude says something about training health.
TRAINED_PARAMS = KERNELS | frozenset({"recurrent_kernel", "bias", "gamma", "beta", "alpha"})
DEAD_UNIT_CLASSES = frozenset({"Dense", "Conv1D", "Conv2D", "Conv3D", "Convolution1D",
                               "Convolution2D", "Convolution3D"})
BN_DEFAULT_MOMENTUM = 0.99
EXTREME_MAGNITUDE = 1e4
# final-bias-dominates: bias gap / what the kernel can add for unit-variance features.
BIAS_RATIO_UNBOUNDED = 4.0
# bn-stats-barely-moved: warn when less than this fraction of the way from 0/1.
BN_MOVED_FRACTION = 0.5


def _stats_range(ctx: RuleContext, node: LayerNode, weight: WeightInfo | None
                 ) -> tuple[float, float] | None:
    """(min, max) of a weight from the shared streamed stats; None if absent or unreadable."""
    if weight is None or weight.source is None:
        return None
    stats = ctx.stats.get(weight)
    if stats is None or stats.nan_count or stats.inf_count or stats.min is None:
        return None
    return float(stats.min), float(stats.max or 0.0)


def _bn_stats_at_init(ctx: RuleContext, node: LayerNode) -> bool | None:
    """True when moving_mean is all 0 and moving_variance all 1; None when unknown."""
    w = weights_by_name(node)
    mean = _stats_range(ctx, node, w.get("moving_mean"))
    var = _stats_range(ctx, node, w.get("moving_variance"))
    if mean is None or var is None:
        return None
    return mean == (0.0, 0.0) and var == (1.0, 1.0)


def _bn_nodes(ctx: RuleContext) -> Iterator[LayerNode]:
    return (n for n in ctx.graph.walk() if n.class_name in BN_CLASSES)


@register(
    "KIN003", "bn-stats-missing", "error",
    "{layer}: BatchNormalization has no stored {missing} (stored: {stored})",
    "Re-save the model from the trained object (model.save) so moving statistics are kept.",
)
def bn_stats_missing(ctx: RuleContext) -> Iterator[Hit]:
    """A BatchNormalization layer's moving_mean / moving_variance are absent from the file.

    Why: at inference BatchNormalization normalizes with its moving statistics. When the file
    lacks them (weights stripped, a partial save, a hand-edited file), the loader either
    fails or leaves them at their initial 0 / 1, so every activation is scaled wrongly and the
    network's output drifts to a constant class.

    Fix: save the whole trained model again (``model.save("m.keras")``); when converting
    weights by hand, copy every variable of the layer, including the non-trainable ones.

    Example: a ``.h5`` whose ``batch_normalization`` group lists only ``gamma:0`` and
    ``beta:0``.
    """
    graph = ctx.graph
    if not graph.has_architecture or not has_stored_weights(graph):
        return
    for node in _bn_nodes(ctx):
        names = {short_name(w) for w in node.weights}
        missing = [n for n in ("moving_mean", "moving_variance") if n not in names]
        if missing:
            yield Hit(node, {"missing": " and ".join(missing),
                             "stored": ", ".join(sorted(names)) or "nothing"})


@register(
    "KIN004", "bn-stats-uninitialized", "error",
    "{layer}: BatchNormalization {problem}",
    "Train with the layer in training mode (or call the model on data with training=True "
    "before saving) so moving_mean/moving_variance are updated.",
)
def bn_stats_uninitialized(ctx: RuleContext) -> Iterator[Hit]:
    """BatchNormalization moving statistics were never updated, or the variance is invalid.

    Why: moving_mean exactly 0 and moving_variance exactly 1 in every channel are the initial
    values. If gamma/beta (or other BatchNormalization layers) show the model was trained,
    the statistics were never updated (e.g. the layer ran in inference mode during a custom
    training loop, or stats were reset on save), so inference normalizes with the wrong scale
    and the output collapses. A moving_variance <= 0 or non-finite makes ``1/sqrt(var+eps)``
    blow up or NaN.

    Fix: run training with ``training=True`` for these layers, or recompute the statistics on
    representative data before saving.

    Example: a trained CNN whose ``bn1`` has gamma in 0.7..1.4 but moving_mean all 0 and
    moving_variance all 1.
    """
    nodes = list(_bn_nodes(ctx))
    moved_elsewhere = any(_bn_stats_at_init(ctx, n) is False for n in nodes)
    for node in nodes:
        w = weights_by_name(node)
        var_w = w.get("moving_variance")
        if var_w is not None and var_w.source is not None:
            stats = ctx.stats.get(var_w)
            if stats is not None and (stats.nan_count or stats.inf_count):
                yield Hit(node, {"problem": "moving_variance has non-finite values",
                                 "nan": int(stats.nan_count), "inf": int(stats.inf_count)})
                continue
            if stats is not None and stats.min is not None and float(stats.min) <= 0.0:
                low = float(stats.min)
                yield Hit(node, {"problem": f"moving_variance has values <= 0 (min {low:.4g})",
                                 "min_variance": low})
                continue
        if _bn_stats_at_init(ctx, node) is not True:
            continue
        gamma = _stats_range(ctx, node, w.get("gamma"))
        beta = _stats_range(ctx, node, w.get("beta"))
        trained_affine = (gamma is not None and gamma != (1.0, 1.0)) or (
            beta is not None and beta != (0.0, 0.0))
        if not trained_affine and not moved_elsewhere:
            continue
        evidence: dict[str, object] = {
            "problem": "moving statistics are exactly at their initial values (mean 0, "
                       "variance 1): never updated",
            "channels": var_w.size if var_w is not None else None,
        }
        if gamma is not None:
            evidence["gamma_range"] = list(gamma)
        if beta is not None:
            evidence["beta_range"] = list(beta)
        evidence["other_bn_trained"] = moved_elsewhere
        yield Hit(node, evidence)


@register(
    "KIN040", "bn-stats-barely-moved", "warning",
    "{layer}: moving statistics are only ~{fraction_pct}% of the way from their initial 0/1 "
    "(momentum {momentum}, {iterations} optimizer steps)",
    "Train longer, lower BatchNormalization momentum (e.g. 0.9), or recompute the moving "
    "statistics on training data before saving.",
)
def bn_stats_barely_moved(ctx: RuleContext) -> Iterator[Hit]:
    """BatchNormalization moving statistics barely moved from their initial values.

    Why: each training step moves the moving statistics by ``1 - momentum`` of the way to the
    batch statistics, so after N steps they hold ``1 - momentum**N`` of the real statistics
    and the rest is still the initial mean 0 / variance 1. With momentum 0.999 and a few
    hundred steps that is under 10%: training-mode outputs look fine, but inference normalizes
    with nearly the initial values and predictions collapse to one class. The rule needs the
    optimizer's stored step count; it also requires every channel's variance to be at least
    the share of the initial 1 that must remain, which real pretrained statistics rarely are.

    Fix: train for more steps, use a smaller momentum (0.9 to 0.99) for short trainings, or
    re-estimate the statistics with a pass over training data in training mode.

    Example: ``BatchNormalization(momentum=0.999)`` trained for 80 steps: 8% of the way.
    """
    iterations = ctx.graph.optimizer_iterations
    if not iterations or iterations <= 0:
        return
    for node in _bn_nodes(ctx):
        if not effectively_trainable(node) or _bn_stats_at_init(ctx, node) is not False:
            continue
        momentum = node.config.get("momentum", BN_DEFAULT_MOMENTUM)
        if not isinstance(momentum, (int, float)) or not 0.0 < momentum < 1.0:
            continue
        fraction = 1.0 - float(momentum) ** int(iterations)
        if fraction >= BN_MOVED_FRACTION:
            continue
        var = _stats_range(ctx, node, weights_by_name(node).get("moving_variance"))
        if var is None or var[0] < (1.0 - fraction) * 0.999:
            continue
        yield Hit(node, {"momentum": float(momentum), "iterations": int(iterations),
                         "fraction": round(fraction, 4),
                         "fraction_pct": f"{100 * fraction:.1f}",
                         "min_variance": var[0]})


@register(
    "KIN007", "zero-weights", "error",
    "{layer}: {weight} is {what} ({size} values): every unit computes the same thing",
    "Check the training run and the save/convert step; reload the trained weights.",
)
def zero_weights(ctx: RuleContext) -> Iterator[Hit]:
    """A kernel (or embedding table) whose values are all zero or all the same constant.

    Why: with an all-zero kernel a layer's output is its bias whatever the input, so every
    prediction downstream is the same class. A constant non-zero kernel gives every unit the
    same weighted sum, so the layer carries one number instead of many and the model cannot
    separate the classes. Both happen after a failed weight conversion, ``set_weights`` with a
    zero-filled array, or a zeros initializer on a layer that never trained. Bias-only layers
    and biases are not checked: zero biases are normal.

    Fix: reload or re-export the trained weights; if training produced it, check the
    initializer (``kernel_initializer="zeros"`` keeps symmetric units identical forever).

    Example: ``Dense(10)`` whose kernel is 128 x 10 zeros: the model always predicts the class
    with the largest bias.
    """
    for node in ctx.graph.walk():
        for w in node.weights:
            name = short_name(w)
            if name not in KERNELS or w.size < 2:
                continue
            span = _stats_range(ctx, node, w)
            if span is None or span[0] != span[1]:
                continue
            value = span[0]
            what = "all zeros" if value == 0.0 else f"constant ({value:.4g} everywhere)"
            yield Hit(node, {"weight": name, "what": what, "value": value, "size": w.size,
                             "shape": list(w.shape)})


@register(
    "KIN008", "nan-weights", "error",
    "{layer}: {bad} non-finite value(s) in {weights}",
    "Retrain from the last good checkpoint (lower the learning rate, clip gradients, check "
    "inputs for NaN) or restore healthy weights.",
)
def nan_weights(ctx: RuleContext) -> Iterator[Hit]:
    """Some weight holds NaN or Inf (optimizer state is not counted).

    Why: one NaN in a kernel propagates through every matrix product it touches, so outputs
    become NaN and argmax returns the first class for every input. TensorFlow graph mode can
    even hide it (a fused MatMul+BiasAdd+ReLU turns the NaN into 0) so predict() looks sane
    while eager calls return NaN. Inf does the same after the first multiplication by 0.

    Fix: go back to the last checkpoint saved before training diverged, lower the learning
    rate or clip gradients, and check the training data for NaN.

    Example: ``dense_1/kernel`` with 3 NaN values after a diverged run.
    """
    graph = ctx.graph
    targets: list[tuple[LayerNode | str, list[WeightInfo]]] = [
        (node, node.weights) for node in graph.walk() if node.weights]
    loose: dict[str, list[WeightInfo]] = {}
    for w in graph.loose_weights:
        if not is_optimizer_weight(w):
            loose.setdefault(w.storage_path.rsplit("/", 1)[0] or w.storage_path, []).append(w)
    targets.extend(loose.items())
    for owner, weights in targets:
        per_weight: dict[str, dict[str, int]] = {}
        for w in weights:
            if w.source is None or is_optimizer_weight(w):
                continue
            stats = ctx.stats.get(w)
            if stats is None or not (stats.nan_count or stats.inf_count):
                continue
            per_weight[short_name(w)] = {"nan": int(stats.nan_count),
                                         "inf": int(stats.inf_count), "size": w.size}
        if per_weight:
            bad = sum(v["nan"] + v["inf"] for v in per_weight.values())
            yield Hit(owner, {"bad": bad, "weights": ", ".join(per_weight),
                              "per_weight": per_weight})


@register(
    "KIN041", "weight-magnitude-extreme", "warning",
    "{layer}: {weight} reaches |{max_abs}| (threshold {threshold})",
    "Retrain with a lower learning rate, gradient clipping or weight decay; check inputs are "
    "scaled.",
)
def weight_magnitude_extreme(ctx: RuleContext) -> Iterator[Hit]:
    """A trainable parameter (kernel, bias, gamma, beta...) with magnitude above 1e4.

    Why: trained networks on scaled inputs keep parameters within a few units. Values of
    thousands are the trace of a run that was diverging (exploding gradients) or of inputs
    that were not scaled: activations saturate, softmax outputs become exactly 0/1 and one
    class wins for most inputs. Near float16's limit (65504) they also overflow to Inf under
    mixed precision. Moving statistics and Normalization means/variances are not checked:
    large values there only mirror large raw inputs.

    Fix: lower the learning rate, add gradient clipping (``clipnorm``) or weight decay, and
    scale the inputs; then retrain.

    Example: ``dense/kernel`` with max |w| = 3.2e5 after a loss spike.
    """
    for node in ctx.graph.walk():
        for w in node.weights:
            name = short_name(w)
            if name not in TRAINED_PARAMS:
                continue
            span = _stats_range(ctx, node, w)
            if span is None:
                continue
            peak = max(abs(span[0]), abs(span[1]))
            if peak >= EXTREME_MAGNITUDE:
                yield Hit(node, {"weight": name, "max_abs": peak,
                                 "threshold": EXTREME_MAGNITUDE})


def _units_matrix(node: LayerNode) -> tuple[np.ndarray, np.ndarray] | None:
    """Kernel as (fan_in, units) and bias (zeros when use_bias=False), or None."""
    w = weights_by_name(node)
    kernel = read_small(w.get("kernel"))
    if kernel is None or kernel.ndim < 2:
        return None
    units = kernel.shape[-1]
    matrix = kernel.reshape(-1, units)
    if node.config.get("use_bias", True) is False or "bias" not in w:
        bias = np.zeros(units)
    else:
        bias_values = read_small(w.get("bias"))
        if bias_values is None or bias_values.size != units:
            return None
        bias = bias_values.reshape(-1)
    if not (np.isfinite(matrix).all() and np.isfinite(bias).all()):
        return None
    return matrix, bias


@register(
    "KIN016", "dead-units", "warning",
    "{layer}: {dead} of {units} ReLU units can never activate ({reason})",
    "Retrain with a smaller learning rate, He initialization or LeakyReLU; check the weights "
    "were loaded correctly.",
)
def dead_units(ctx: RuleContext) -> Iterator[Hit]:
    """ReLU units that output 0 for every input, judged from the weights alone.

    Why: a ReLU unit whose kernel column is all zero and whose bias is <= 0 computes
    ``max(0, b) = 0`` for every input. When the layer's input is provably non-negative (it
    comes out of a ReLU, sigmoid or softmax) a column with no positive weight and a bias <= 0
    is just as dead. Dead units pass no information and no gradient; when all of a layer's
    units are dead, everything downstream sees a constant and the model predicts one class.
    Only these exact cases are reported (no guess about the input range); the probe confirms
    dead units dynamically. A layer whose whole kernel is constant is left to zero-weights.

    Fix: lower the learning rate (large steps push biases very negative), use He
    initialization, LeakyReLU/ELU, or batch normalization before the activation.

    Example: ``Dense(64, activation="relu")`` after another ReLU layer where 40 columns are
    all negative with negative biases.
    """
    for node in ctx.graph.walk():
        if node.class_name not in DEAD_UNIT_CLASSES:
            continue
        if applied_activation(node) not in RELU_LIKE:
            continue
        found = _units_matrix(node)
        if found is None:
            continue
        matrix, bias = found
        if matrix.size >= 2 and matrix.min() == matrix.max():
            continue
        non_negative_input = input_non_negative(node)
        zero_col = ~matrix.any(axis=0) & (bias <= 0)
        dead = zero_col
        reason = "zero kernel column and bias <= 0"
        if non_negative_input:
            dead = zero_col | ((matrix <= 0).all(axis=0) & (bias <= 0))
            reason = "input is >= 0 and the column has no positive weight, bias <= 0"
        count = int(dead.sum())
        if not count:
            continue
        units = int(bias.size)
        yield Hit(node, {
            "dead": count, "units": units, "fraction": round(count / units, 4),
            "reason": reason, "examples": [int(i) for i in np.flatnonzero(dead)[:10]],
            "input_non_negative": non_negative_input,
        }, severity="error" if count == units else None)


@register(
    "KIN017", "normalization-not-adapted", "warning",
    "{layer}: Normalization {problem}",
    "Call layer.adapt(training_data) before training (or pass mean= and variance=), then "
    "save again.",
)
def normalization_not_adapted(ctx: RuleContext) -> Iterator[Hit]:
    """A Normalization layer was never adapted (mean 0 / variance 1) or lost its statistics.

    Why: ``Normalization`` subtracts a mean and divides by a standard deviation learned by
    ``adapt()``. Never adapted, it keeps mean 0 and variance 1 and passes raw inputs through,
    so a model meant to see standardized features sees raw ones (often orders of magnitude
    larger) and saturates to one class; usually the adapt call ran on another layer instance
    than the one that was saved. When the statistics are missing from the file, loading leaves
    them at those defaults (an error). Layers given ``mean=``/``variance=`` in their config are
    not checked.

    Fix: call ``norm.adapt(x_train)`` on the very layer used in the model before training and
    saving, or construct it with ``mean=`` and ``variance=``.

    Example: ``Normalization(axis=-1)`` with ``mean = [0, 0, 0]``, ``variance = [1, 1, 1]``,
    ``count = 0``.
    """
    stored = has_stored_weights(ctx.graph)
    for node in ctx.graph.walk():
        if node.class_name not in NORMALIZATION_CLASSES:
            continue
        cfg = node.config
        if cfg.get("mean") is not None and cfg.get("variance") is not None:
            continue
        w = weights_by_name(node)
        if "mean" not in w or "variance" not in w:
            if stored:
                yield Hit(node, {"problem": "statistics (mean/variance) are missing from the "
                                 "file", "stored": sorted(w)}, severity="error")
            continue
        mean = _stats_range(ctx, node, w["mean"])
        var = _stats_range(ctx, node, w["variance"])
        if mean != (0.0, 0.0) or var != (1.0, 1.0):
            continue
        count = _stats_range(ctx, node, w.get("count"))
        if count is not None and count[1] > 0:
            continue
        yield Hit(node, {"problem": "was never adapted: mean is all 0 and variance all 1",
                         "features": w["mean"].size,
                         "count": None if count is None else count[1]})


def input_non_negative(node: LayerNode) -> bool:
    """True when every tensor reaching ``node`` is provably >= 0 (e.g. comes out of a ReLU):
    then a unit with no positive weight and bias <= 0 never fires (dead-units, and the
    bounds rules that must not report it again)."""
    srcs = producers(node)
    if not srcs:
        return False
    for src in srcs:
        if src.role == "model" or src.class_name == "InputLayer":
            return False
        if final_activation(src)[1] not in NON_NEGATIVE:
            return False
    return True


def _classifier_head(node: LayerNode) -> tuple[LayerNode, str] | None:
    """(the Dense computing the scores, the output activation) for an output layer."""
    last, activation = final_activation(node)
    dense: LayerNode | None = last
    while dense is not None and dense.class_name != "Dense" and (
            dense.class_name in PASS_THROUGH or dense.class_name in ("Activation", "Softmax")):
        dense = producer(dense)
    if dense is None or dense.class_name != "Dense" or activation is None:
        return None
    return dense, activation


def _feature_bound(dense: LayerNode) -> bool:
    """True when the Dense layer's inputs are bounded in [-1, 1] (tanh/sigmoid/softmax)."""
    src = producer(dense)
    return src is not None and final_activation(src)[1] in BOUNDED


@register(
    "KIN020", "final-bias-dominates", "warning",
    "{layer}: output bias favours class {top_class} by {gap} while the kernel can shift the "
    "scores by only ~{reach} ({ratio}x)",
    "Retrain (class weights or balanced sampling for skewed data) or check the output layer's "
    "weights were restored.",
)
def final_bias_dominates(ctx: RuleContext) -> Iterator[Hit]:
    """The output layer's bias is so large next to its kernel that one class wins regardless.

    Why: a classifier's score for class k is ``w_k . x + b_k``. When the bias gap between the
    top class and every other class exceeds what the kernel can add, that class wins for
    nearly every input: typical of a model trained on heavily skewed labels, a collapsed
    training run, or a bias copied from elsewhere. The kernel's reach is ``||w_top - w_k||_1``
    when the features are bounded in [-1, 1] (tanh/sigmoid/softmax before the head: then the
    top class provably always wins) and otherwise ``||w_top - w_k||_2`` for unit-variance
    features, flagged from a ratio of 4. Only softmax/sigmoid heads are checked (a regression
    bias is an offset, not a decision); the probe confirms the collapse on inputs.

    Fix: retrain with class weights or balanced sampling, lower the learning rate, or restore
    the trained output layer.

    Example: ``Dense(3, activation="softmax")`` with bias ``[9.0, -4.2, -4.8]`` and kernel
    columns differing by at most 0.6.
    """
    for out in output_nodes(ctx.graph):
        head = _classifier_head(out)
        if head is None:
            continue
        dense, activation = head
        if activation not in ("softmax", "sigmoid"):
            continue
        found = _units_matrix(dense)
        if found is None:
            continue
        matrix, bias = found
        bounded = _feature_bound(dense)
        units = bias.size
        if units == 1 and activation == "sigmoid":
            gap = abs(float(bias[0]))
            diff = matrix[:, 0]
            top = 1 if bias[0] > 0 else 0
        elif units >= 2 and activation == "softmax":
            top = int(np.argmax(bias))
            others = [k for k in range(units) if k != top]
            gaps = bias[top] - bias[others]
            diffs = matrix[:, [top]] - matrix[:, others]
            norms = (np.abs(diffs).sum(axis=0) if bounded
                     else np.sqrt((diffs ** 2).sum(axis=0)))
            ratios = np.divide(gaps, norms, out=np.full(gaps.shape, math.inf),
                               where=norms > 0)
            closest = int(np.argmin(ratios))
            gap = float(gaps[closest])
            diff = diffs[:, closest]
        else:
            continue
        reach = float(np.abs(diff).sum() if bounded else math.sqrt(float((diff ** 2).sum())))
        ratio = gap / reach if reach > 0 else math.inf
        threshold = 1.0 if bounded else BIAS_RATIO_UNBOUNDED
        if ratio < threshold:
            continue
        yield Hit(dense, {
            "top_class": top, "gap": round(gap, 4), "reach": round(reach, 4),
            "ratio": round(ratio, 2) if math.isfinite(ratio) else "inf",
            "threshold": threshold, "activation": activation,
            "bound": "l1, features in [-1, 1]" if bounded else "l2, unit-variance features",
        })
