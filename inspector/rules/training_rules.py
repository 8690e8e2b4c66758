"""Rules on the saved training / compile config: losses that do not fit the output layer and
optimizer settings under which ``fit()`` cannot have learned anything useful."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inspector.graph import LayerNode
from inspector.rules.layer_facts import (
    PROBABILITY,
    SOFTMAX_LIKE,
    final_activation,
    model_output,
    number,
    shape_of,
)
from inspector.rules.registry import Hit, RuleContext, register

# Loss families by normalized name (lower case, no underscores).
_FAMILIES = {
    "categoricalcrossentropy": "categorical", "categoricalfocalcrossentropy": "categorical",
    "sparsecategoricalcrossentropy": "sparse_categorical",
    "binarycrossentropy": "binary", "binaryfocalcrossentropy": "binary",
    "meansquarederror": "mse", "mse": "mse",
    "meanabsoluteerror": "mae", "mae": "mae",
    "meanabsolutepercentageerror": "mape", "mape": "mape",
    "logcosh": "logcosh", "huber": "huber", "huberloss": "huber",
    "meansquaredlogarithmicerror": "msle", "msle": "msle",
    "hinge": "hinge", "squaredhinge": "hinge", "categoricalhinge": "hinge",
}
# Losses that treat the output as a number to regress, not as a class probability.
_REGRESSION = frozenset({"mse", "mae", "mape", "logcosh", "huber", "msle"})
# Squared-error-like on errors in [-1, 1] (log-cosh(e) ~ e**2/2, Huber with delta 1 is e**2/2).
_SQUARED = frozenset({"mse", "logcosh", "huber", "msle"})
# Metrics that mean "the targets are classes" (Keras 'accuracy' resolves to one of these).
_CLASS_METRICS = frozenset({"accuracy", "acc", "categoricalaccuracy",
                            "topkcategoricalaccuracy"})


@dataclass
class Loss:
    """One output's loss as the training config names it."""

    name: str
    family: str | None
    config: dict[str, Any]

    @property
    def from_logits(self) -> bool:
        return self.config.get("from_logits") is True


def parse_loss(value: Any) -> Loss | None:
    """One saved loss entry (a name, a serialized class, or a Keras 3 ``function`` entry) as a
    Loss with its family; None for what is not a loss entry. The text report names it too."""
    if isinstance(value, str):
        name, config = value, {}
    elif isinstance(value, dict) and isinstance(value.get("class_name"), str):
        cfg = value.get("config")
        if value["class_name"] == "function" and isinstance(cfg, str):
            name, config = cfg, {}
        else:
            name, config = value["class_name"], cfg if isinstance(cfg, dict) else {}
    else:
        return None
    key = name.rsplit(".", 1)[-1].replace("_", "").lower()
    return Loss(name, _FAMILIES.get(key), config)


def output_losses(ctx: RuleContext) -> Iterator[tuple[LayerNode, Loss]]:
    """(output layer, its loss) pairs: one loss for all outputs, a list in output order, or a
    dict keyed by output name."""
    tc = ctx.graph.training_config
    if not tc or tc.get("loss") is None:
        return
    raw = tc["loss"]
    for index, path in enumerate(ctx.graph.output_layers):
        node = ctx.graph.find(path)
        if node is not None and node.role == "model":
            node = model_output(node)
        if node is None:
            continue
        if isinstance(raw, list):
            value = raw[index] if index < len(raw) else None
        elif isinstance(raw, dict) and "class_name" not in raw:
            value = raw.get(path.rsplit("/", 1)[-1])
        else:
            value = raw
        loss = parse_loss(value)
        if loss is not None:
            yield node, loss


def _units(node: LayerNode) -> int | None:
    shape = shape_of(node)
    if shape:
        last = shape[-1]
        return last if isinstance(last, int) else None
    units = node.config.get("units")
    return units if isinstance(units, int) else None


def _mismatch(loss: Loss, act: str | None, units: int | None) -> tuple[str, str] | None:
    """(severity, why) when the loss cannot be right for this output activation."""
    fam = loss.family
    if act is None or fam is None:
        return None
    if loss.from_logits and act in PROBABILITY | SOFTMAX_LIKE and fam != "mse":
        return "error", (f"from_logits=True on an output that already applies {act}: the loss "
                         f"applies it again (double {act})")
    if loss.from_logits:
        return None
    if fam in ("categorical", "sparse_categorical"):
        if act == "sigmoid" and units == 1:
            return "error", ("categorical cross-entropy over a single sigmoid unit is always 0: "
                             "nothing is learned (use binary_crossentropy)")
        if act == "sigmoid":
            return "warning", ("categorical cross-entropy on independent sigmoid outputs (use "
                               "softmax, or binary_crossentropy for multi-label)")
        if act not in PROBABILITY | SOFTMAX_LIKE:
            return "error", (f"cross-entropy reads the {act} output as probabilities; pass "
                             "from_logits=True or end with softmax")
    if fam == "binary":
        if act == "softmax" and (units or 0) > 1:
            return "warning", ("binary cross-entropy on a multi-unit softmax (use categorical "
                               "cross-entropy, or sigmoid for multi-label)")
        if act not in PROBABILITY | SOFTMAX_LIKE:
            return "error", (f"binary cross-entropy reads the {act} output as probabilities; pass "
                             "from_logits=True or end with sigmoid")
    if fam in _SQUARED and act == "softmax" and (units or 0) > 1:
        return "warning", ("a squared-error loss on a softmax classifier: weak gradients, "
                           "predictions drift towards the class prior")
    if act in PROBABILITY:
        return _probability_output(fam, act, units)
    return None


def _probability_output(fam: str, act: str, units: int | None) -> tuple[str, str] | None:
    """Regression and margin losses on a softmax/sigmoid output."""
    if fam == "mape":
        severity = "error" if act == "softmax" and (units or 0) > 1 else "warning"
        return severity, ("MAPE divides by the target, and class targets are mostly 0: those "
                          "terms are scaled by 1e7 and swamp the rest")
    if fam == "mae":
        return "warning", ("MAE is not a proper scoring rule: it pushes probabilities to hard "
                           "0/1 and gives no gradient signal on confident mistakes")
    if fam == "hinge":
        return "warning", (f"hinge losses want unbounded scores with a margin of 1; a {act} "
                           "output in (0, 1) never reaches the margin and saturates")
    return None


def _metric_names(value: Any) -> set[str]:
    """Metric names of the training config, normalized (lower case, no underscores)."""
    if isinstance(value, str):
        return {value.replace("_", "").lower()}
    if isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            cfg = value.get("config")
            name = cfg if value["class_name"] == "function" and isinstance(cfg, str) else (
                value["class_name"])
            return {name.replace("_", "").lower()}
        return set().union(*(_metric_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_metric_names(v) for v in value)) if value else set()
    return set()


def _one_hot_regression(loss: Loss, act: str | None, units: int | None,
                        metrics: set[str]) -> tuple[str, str] | None:
    """A regression loss on a multi-unit linear/ReLU output whose metrics say 'classes'."""
    if loss.family not in _REGRESSION or act not in ("linear", "relu") or (units or 0) < 2:
        return None
    shown = sorted(metrics & _CLASS_METRICS)
    if not shown:
        return None
    return "warning", (f"a regression loss on {units} {act} outputs compiled with "
                       f"{', '.join(shown)}: the targets are one-hot classes; use "
                       "cross-entropy with from_logits=True")


@register(
    "KIN014", "loss-activation-mismatch", "error",
    "{layer}: loss {loss} on a {activation} output ({units} units): {why}",
    "Pair softmax with (sparse) categorical cross-entropy, sigmoid with binary cross-entropy, "
    "and linear logits with from_logits=True.",
)
def loss_activation_mismatch(ctx: RuleContext) -> Iterator[Hit]:
    """The compiled loss does not fit the activation of the output it trains.

    Keras cross-entropies expect probabilities unless ``from_logits=True``. Read wrongly, the
    gradients vanish or point the wrong way and the model settles on the class prior:
    ``from_logits=True`` on a softmax/sigmoid output applies the squashing twice; categorical
    cross-entropy on linear outputs reads logits as probabilities; over one sigmoid unit it is
    constantly 0; binary cross-entropy on a multi-unit softmax or mean squared error on a
    softmax classifier train, but badly. The activation is found through pass-through layers
    (Dropout, Flatten, linear Activation), per output for multi-output models.

    Regression and margin losses on probability outputs (warnings unless noted): log-cosh and
    Huber behave like MSE on errors in [-1, 1], so they are judged like MSE on a softmax; MAE
    is not a proper scoring rule (its expected value is linear in the probability, so it is
    minimized at hard 0/1 answers) and gives a vanishing gradient on saturated mistakes; MAPE
    divides by the target, and the zeros of one-hot / binary targets are clipped to 1e-7, so
    those terms dominate by seven orders of magnitude (error on a softmax, whose targets are
    mostly zeros); hinge losses expect unbounded scores and a margin of 1 that an output in
    (0, 1) cannot reach. Poisson and KL divergence are not reported: on probabilities they are
    proper scoring rules (Poisson on a softmax equals cross-entropy / K plus a constant).
    A regression loss on a linear or ReLU output with several units is reported when the
    compiled metrics (``accuracy``, ``categorical_accuracy``) show the targets are one-hot
    classes.

    Example: ``Dense(10, activation="softmax")`` compiled with
    ``SparseCategoricalCrossentropy(from_logits=True)``; fix: ``Dense(10)`` or
    ``from_logits=False``. ``Dense(1, activation="sigmoid")`` with ``loss="mae"``; fix:
    ``loss="binary_crossentropy"``.
    """
    tc = ctx.graph.training_config or {}
    metrics = _metric_names(tc.get("metrics"))
    for out, loss in output_losses(ctx):
        node, act = final_activation(out)
        units = _units(out)
        found = _mismatch(loss, act, units) or _one_hot_regression(loss, act, units, metrics)
        if found is not None:
            severity, why = found
            yield Hit(node, {"loss": loss.name, "from_logits": loss.from_logits,
                             "activation": act, "units": units, "why": why,
                             "output": out.path}, severity)


LR_HIGH, LR_LOW = 1.0, 1e-7
# Adaptive optimizers (default rate 1e-3) step every parameter by about the rate whatever
# the gradient's scale: from ADAPTIVE_HIGH (100x their default) one step is larger than a
# Glorot-initialized weight (std 0.035 for 784->512, 0.06 for 256->256).
ADAPTIVE_HIGH = 0.1
_ADAPTIVE_DEFAULTS = {"adam": 1e-3, "adamw": 1e-3, "adamax": 1e-3, "nadam": 1e-3,
                      "rmsprop": 1e-3, "lion": 1e-3}
# Optimizers whose update size does not scale with the learning rate the usual way: Adadelta
# was designed for learning_rate=1.0 (Keras 2.2's default).
_SCALE_FREE = frozenset({"adadelta"})


def optimizer_learning_rate(opt: dict[str, Any]) -> tuple[float | None, str]:
    """(the saved optimizer's rate, what that number is): a schedule is read as its initial
    rate, so a rule and the text report judge and show the same value."""
    lr = opt.get("learning_rate")
    if isinstance(lr, dict):
        cfg = lr.get("config") if isinstance(lr.get("config"), dict) else {}
        value = number(cfg.get("initial_learning_rate"))
        return value, f"initial rate of {lr.get('class_name', 'a schedule')}"
    return number(lr), "learning rate"


@register(
    "KIN018", "learning-rate-extreme", "warning",
    "optimizer {optimizer}: {what} {lr} ({why})",
    "Use a learning rate around 1e-4..1e-2 for Adam-like optimizers (1e-3 is the default) "
    "and 1e-3..1e-1 for SGD (1e-2 is the default).",
)
def learning_rate_extreme(ctx: RuleContext) -> Iterator[Hit]:
    """The saved optimizer's learning rate is far outside its usual range: 1.0 or more (0.1
    or more for Adam-like optimizers), or 1e-7 or less.

    With a rate of 1 or more, Adam/SGD steps overshoot: the loss explodes or the weights jump
    to a region where ReLUs die and one class wins. Adaptive optimizers (Adam, AdamW, Adamax,
    Nadam, RMSprop, Lion; default 1e-3) normalize the gradient, so each step moves every
    parameter by about the learning rate however small the gradient is: at 0.1, a hundred
    times their default, one step is larger than the initial weights themselves (a Glorot
    784->512 kernel has std 0.035), the initialization is erased within a few steps and
    training typically ends on one class; that is the bound for them (1e-2 is aggressive but
    common and not reported). SGD's step scales with the gradient, and 0.1 is the usual rate
    with momentum for ResNets, so SGD keeps the bound of 1. With 1e-7 or less the weights
    barely move from their initialization during a normal training run, so the model predicts
    the prior of its random head. A rate of 0 or below cannot have trained at all (error).
    Schedules are judged by their initial rate. Adadelta is exempt from the upper bound (it
    was designed for a rate of 1.0).

    Example: ``Adam(learning_rate=10)`` or ``Adam(learning_rate=0.1)``; fix:
    ``Adam(learning_rate=1e-3)``.
    """
    tc = ctx.graph.training_config
    opt = tc.get("optimizer") if tc else None
    if not isinstance(opt, dict):
        return
    lr, what = optimizer_learning_rate(opt)
    if lr is None:
        return
    name = str(opt.get("class_name") or "?")
    key = name.rsplit(">", 1)[-1].lower()
    default = _ADAPTIVE_DEFAULTS.get(key)
    high = ADAPTIVE_HIGH if default is not None else LR_HIGH
    evidence = {"optimizer": name, "what": what, "lr": lr, "high": high, "low": LR_LOW}
    if lr <= 0:
        yield Hit(None, {**evidence, "why": "not positive: no update at all"}, "error")
    elif lr <= LR_LOW:
        yield Hit(None, {**evidence, "why": f"<= {LR_LOW:g}: weights barely move"})
    elif lr >= LR_HIGH and key not in _SCALE_FREE:
        yield Hit(None, {**evidence, "why": f">= {LR_HIGH:g}: steps overshoot"})
    elif default is not None and lr >= high:
        yield Hit(None, {**evidence, "why": (
            f">= {high:g}, {lr / default:.0f}x {name}'s default {default:g}: every step moves "
            "each weight by about the rate, more than its initial size")})


@register(
    "KIN025", "gradient-clip-zero", "error",
    "optimizer {optimizer}: {key} = {value}: every gradient is clipped to zero",
    "Remove the clipping argument or use a positive bound (clipnorm=1.0 is common).",
)
def gradient_clip_zero(ctx: RuleContext) -> Iterator[Hit]:
    """The optimizer clips gradients with a bound of 0, so no weight ever changes.

    ``clipvalue=0`` clips each gradient element into [0, 0]; ``clipnorm=0`` and
    ``global_clipnorm=0`` rescale each gradient to norm 0. Keras accepts both and ``fit()`` runs
    normally with a flat loss: the saved weights are the initial ones (random head, predicted
    class fixed by the initialization).

    Example: ``Adam(clipvalue=0.0)`` meant as "no clipping"; fix: ``Adam()``.
    """
    tc = ctx.graph.training_config
    opt = tc.get("optimizer") if tc else None
    if not isinstance(opt, dict) or not isinstance(opt.get("config"), dict):
        return
    for key in ("clipvalue", "clipnorm", "global_clipnorm"):
        value = number(opt["config"].get(key))
        if value is not None and value <= 0:
            yield Hit(None, {"optimizer": opt.get("class_name"), "key": key, "value": value})


SMOOTHING_WARN = 0.5


@register(
    "KIN026", "label-smoothing-high", "warning",
    "{layer}: loss {loss} with label_smoothing = {smoothing} (>= {limit}): targets are "
    "nearly uniform",
    "Use label_smoothing around 0.05-0.2.",
)
def label_smoothing_high(ctx: RuleContext) -> Iterator[Hit]:
    """The loss smooths labels so much that the targets are (nearly) the same for every class.

    Label smoothing ``s`` mixes each one-hot target with the uniform distribution: the true
    class gets ``1 - s + s/K``. From 0.5 the model is trained to output nearly uniform
    probabilities (confidence-based decisions and thresholds break); at 1.0 (binary: the
    targets become 0.5) the targets carry no label information and nothing is learned (error).

    Example: ``CategoricalCrossentropy(label_smoothing=0.9)``; fix: ``label_smoothing=0.1``.
    """
    for out, loss in output_losses(ctx):
        s = number(loss.config.get("label_smoothing"))
        if s is not None and s >= SMOOTHING_WARN:
            yield Hit(out, {"loss": loss.name, "smoothing": s, "limit": SMOOTHING_WARN},
                      "error" if s >= 1.0 else None)


@register(
    "KIN028", "loss-weight-zero", "warning",
    "{layer}: loss weight {weight} for output {output}: {why}",
    "Give every output a positive loss_weight, or remove the outputs you do not train.",
)
def loss_weight_zero(ctx: RuleContext) -> Iterator[Hit]:
    """An output was compiled with a loss weight of 0 (or below), so ``fit()`` never trained it.

    ``loss_weights`` scale each output's loss; at 0 that output contributes no gradient, its
    head keeps its initial random weights, and its predictions are whatever the initialization
    favours, typically one class for every input. A negative weight trains the output to be
    wrong. With every weight at 0 nothing was trained at all (error).

    Example: ``compile(loss=["sparse_categorical_crossentropy", "mse"],
    loss_weights=[0.0, 1.0])`` leaves the classifier untrained; fix: ``loss_weights=[1.0, 1.0]``.
    """
    tc = ctx.graph.training_config
    raw = (tc or {}).get("raw")
    weights = raw.get("loss_weights") if isinstance(raw, dict) else None
    if not isinstance(weights, (list, dict)) or not weights:
        return
    per_output: list[tuple[str, float]] = []
    for index, path in enumerate(ctx.graph.output_layers):
        name = path.rsplit("/", 1)[-1]
        value = (weights[index] if index < len(weights) else None) if isinstance(weights, list) \
            else weights.get(name)
        w = number(value)
        if w is not None:
            per_output.append((path, w))
    if not per_output:
        return
    everything_off = all(w <= 0 for _, w in per_output)
    for path, w in per_output:
        if w > 0:
            continue
        why = ("no gradient reaches it: its head kept its initial weights" if w == 0
               else "a negative weight trains it to be wrong")
        yield Hit(ctx.graph.find(path) or path,
                  {"weight": w, "output": path.rsplit("/", 1)[-1], "why": why},
                  "error" if everything_off else None)


_MOMENTUM_KEYS = ("beta_1", "beta_2", "momentum", "rho")


@register(
    "KIN029", "optimizer-momentum-invalid", "error",
    "optimizer {optimizer}: {key} = {value} (valid range [0, 1)): {why}",
    "Use the optimizer's defaults (Adam beta_1=0.9, beta_2=0.999; SGD momentum 0.9).",
)
def optimizer_momentum_invalid(ctx: RuleContext) -> Iterator[Hit]:
    """A momentum / moving-average coefficient of the optimizer is outside [0, 1).

    ``beta_1`` / ``beta_2`` (Adam family, Lion), ``momentum`` (SGD, RMSprop) and ``rho``
    (RMSprop, Adadelta) are decay factors of running averages. At 1.0 the average never
    forgets: Adam's bias correction divides by ``1 - beta**t = 0`` and writes NaN into every
    weight, RMSprop's squared-gradient average stays 0 so steps blow up to ``lr / epsilon``,
    SGD's velocity never decays and the weights run away. Keras accepts these values without
    complaint; the saved weights are NaN, huge, or still at their initialization.

    Example: ``Adam(beta_1=1.0)``; fix: ``Adam(beta_1=0.9)``.
    """
    tc = ctx.graph.training_config
    opt = tc.get("optimizer") if tc else None
    if not isinstance(opt, dict) or not isinstance(opt.get("config"), dict):
        return
    for key in _MOMENTUM_KEYS:
        value = number(opt["config"].get(key))
        if value is None or 0.0 <= value < 1.0:
            continue
        why = ("the running average never forgets (division by zero / runaway steps)"
               if value >= 1.0 else "a negative decay flips the sign of the history")
        yield Hit(None, {"optimizer": opt.get("class_name"), "key": key, "value": value,
                         "why": why})
