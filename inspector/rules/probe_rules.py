"""Probe rules: findings the dynamic probe proves with numbers (codes KIN100+).

Each rule reads the report's ``probe`` section (measured in the child, see
``inspector/probe/measure.py`` for the thresholds) and yields hits like a static rule, so
probe findings share the catalog, the docs, ``--select``/``--ignore`` and every renderer.
The probe's dead-unit finding reuses the static ``dead-units`` rule's code with source
``probe``. ``probe_findings`` also links probe findings to the static ones they confirm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inspector.rules.registry import (
    REGISTRY,
    Finding,
    Hit,
    RuleContext,
    register,
    select_rules,
)

if TYPE_CHECKING:   # report.model imports the registry, which loads this package
    from inspector.options import Options
    from inspector.report.model import Report

DEAD_FRACTION = 0.5     # a layer with at least this share of never-firing units is reported

# Static rules a probe finding confirms (the static finding names the cause, the probe
# shows the effect). A listed static finding with no confirming probe finding is marked
# "unconfirmed" once the probe ran.
CONFIRMS: dict[str, tuple[str, ...]] = {
    "output-collapsed": ("dropout-rate-high", "softmax-single-unit", "zero-weights",
                         "bn-stats-uninitialized", "bn-stats-missing", "final-bias-dominates",
                         "normalization-not-adapted", "dead-units", "all-layers-frozen"),
    "nondeterministic-inference": ("training-arg-hardcoded", "stateful-rnn"),
    "batch-size-dependent": ("softmax-wrong-axis",),
    "train-infer-gap": ("bn-stats-uninitialized", "bn-stats-missing", "training-arg-hardcoded"),
    "nan-outputs": ("nan-weights",),
    "dead-units": ("dead-units",),
}


# Static findings random inputs cannot contradict: normalization statistics stuck at their
# initial values only hurt on data like the training data (pass --inputs to judge them).
NEEDS_REAL_INPUTS = frozenset({"bn-stats-uninitialized", "bn-stats-missing",
                               "normalization-not-adapted"})


@dataclass
class ProbeContext(RuleContext):
    """A rule context that also carries the probe section."""

    probe: dict[str, Any] | None = None


def _check(ctx: RuleContext, name: str) -> dict[str, Any]:
    probe = getattr(ctx, "probe", None) or {}
    value = (probe.get("checks") or {}).get(name)
    return value if isinstance(value, dict) else {}


def _verdict(ctx: RuleContext, key: str) -> bool:
    probe = getattr(ctx, "probe", None) or {}
    return bool((probe.get("verdict") or {}).get(key))


@register("KIN100", "output-collapsed", "error",
          "outputs barely vary across inputs ({inputs}): class {top_class} for {share} of "
          "them, largest per-unit std {std_max}{where}",
          "find the layer where variation dies (collapse_layer) and fix what the static "
          "findings name there; retrain if the model learned a constant",
          source="probe")
def output_collapsed(ctx: RuleContext) -> Iterator[Hit]:
    """The model gives (almost) the same output whatever the input.

    Measured on random inputs in four value ranges (or on ``--inputs``): every output unit's
    standard deviation across inputs is below 0.2 % for probabilities, or below 0.01 % of the
    output's magnitude otherwise. Causes seen in practice: training with Dropout near 1.0, a
    ``Dense(1, activation="softmax")`` head (always 1.0), zeroed kernels, a ReLU layer that
    never fires, BatchNormalization statistics that were never updated. ``collapse_layer``
    names the first layer whose output stopped varying while its input still varied.
    """
    if not _verdict(ctx, "collapsed"):
        return
    probe = getattr(ctx, "probe", None) or {}
    outputs = probe.get("outputs") or [{}]
    worst = max(outputs, key=lambda o: o.get("top_class_fraction") or 0.0)
    layer = probe.get("collapse_layer")    # probe paths are the graph's paths
    fraction = worst.get("top_class_fraction")
    collapsed_on = [d for d, v in (probe.get("distributions") or {}).items() if v.get("collapsed")]
    yield Hit(layer, {
        "inputs": probe.get("outputs_from") or "random inputs",
        "top_class": worst.get("top_class"),
        "top_class_fraction": fraction,
        "share": "all" if fraction == 1.0 else f"{(fraction or 0.0):.0%}",
        "std_max": worst.get("std_max"),
        "output": worst.get("name"),
        "collapsed_on": collapsed_on,
        "collapse_layer": layer,
        "where": f"; variation dies at {layer}" if layer else "",
    })


@register("KIN101", "nondeterministic-inference", "error",
          "the same inputs give different outputs in inference (max relative difference "
          "{diff}; predict() {predict_diff}, plain model(x) {call_diff})",
          "remove training=True from layer calls in the model code and re-save",
          source="probe")
def nondeterministic_inference(ctx: RuleContext) -> Iterator[Hit]:
    """Predicting the same batch twice gives different outputs.

    Usually Dropout (or another random layer) called with ``training=True`` hard-coded in
    the model graph. Keras 3 ``predict()`` overrides the flag and looks deterministic, while
    plain ``model(x)`` and exported serving endpoints stay random, so both paths are checked.
    """
    if not _verdict(ctx, "nondeterministic"):
        return
    c = _check(ctx, "nondeterminism")
    p, k = c.get("predict_max_rel_diff") or 0.0, c.get("call_max_rel_diff") or 0.0
    yield Hit(None, {"diff": max(p, k), "predict_diff": p, "call_diff": k,
                     "threshold": c.get("threshold")})


@register("KIN102", "batch-size-dependent", "error",
          "a sample's output depends on the rest of its batch (max relative difference "
          "{max_rel_diff} between batched and one-at-a-time)",
          "normalize over the class axis (axis=-1), never over the batch axis",
          source="probe")
def batch_size_dependent(ctx: RuleContext) -> Iterator[Hit]:
    """Outputs change with the batch a sample is predicted in.

    A softmax or normalization over the batch axis mixes samples: predicted alone, every
    sample gets probability 1.0. Compared: one batched call vs the same samples one by one.
    """
    if _verdict(ctx, "batch_dependent"):
        c = _check(ctx, "batch_dependence")
        yield Hit(None, {"max_rel_diff": c.get("max_rel_diff"), "samples": c.get("samples"),
                         "threshold": c.get("threshold")})


@register("KIN103", "train-infer-gap", "warning",
          "training-mode and inference-mode outputs disagree (difference {diff_over_spread} x "
          "the output spread, argmax agreement {argmax_agreement})",
          "update BatchNormalization statistics (train longer, lower momentum) or refit them "
          "on representative data",
          source="probe")
def train_infer_gap(ctx: RuleContext) -> Iterator[Hit]:
    """``training=True`` and ``training=False`` give very different outputs on the same batch.

    The classic case: BatchNormalization moving statistics that never (or barely) moved from
    their initial 0/1, so inference normalizes with the wrong numbers while training-mode
    batch statistics look fine. Training passes are averaged to damp dropout noise.
    """
    if _verdict(ctx, "train_infer_gap"):
        c = _check(ctx, "train_infer_gap")
        yield Hit(None, {"diff_over_spread": c.get("diff_over_spread"),
                         "argmax_agreement": c.get("argmax_agreement")})


@register("KIN104", "input-scale-sensitive", "warning",
          "outputs collapse for inputs in {failing} and vary only for {working}: the model "
          "expects that range",
          "feed inputs in the expected range, or add a Rescaling/Normalization layer to the "
          "model so callers cannot get it wrong",
          source="probe")
def input_scale_sensitive(ctx: RuleContext) -> Iterator[Hit]:
    """The model works for one input range and collapses for others.

    Random inputs are drawn from uniform [0,1], uniform [0,255], uniform [-1,1] and the
    standard normal. A model trained on [0,1] images without a Rescaling layer, fed raw
    0..255 pixels by its caller, saturates and predicts one class.
    """
    if not _verdict(ctx, "scale_sensitive"):
        return
    probe = getattr(ctx, "probe", None) or {}
    working = list(probe.get("working_distributions") or [])
    failing = [d for d in (probe.get("distributions") or {}) if d not in working]
    yield Hit(None, {"working": ", ".join(working), "failing": ", ".join(failing),
                     "working_distributions": working, "failing_distributions": failing})


@register("KIN105", "nan-outputs", "error",
          "the model outputs NaN/Inf ({graph} in graph mode, eager {eager})",
          "find the NaN/Inf weights (nan-weights) or the overflowing layer and fix it",
          source="probe")
def nan_outputs(ctx: RuleContext) -> Iterator[Hit]:
    """Predictions contain NaN or Inf, in graph mode (``predict``) or eager mode.

    Graph mode fuses MatMul+BiasAdd+ReLU and can turn a NaN weight into 0, so ``predict()``
    looks fine while eager ``model(x)`` is NaN everywhere: both paths are checked.
    """
    if not _verdict(ctx, "nan_outputs"):
        return
    probe = getattr(ctx, "probe", None) or {}
    graph = sum(int(d.get("nan") or 0) for d in (probe.get("distributions") or {}).values())
    eager = _check(ctx, "eager_vs_graph").get("eager_nan")
    yield Hit(None, {"graph": graph, "eager": "NaN/Inf" if eager else "finite"})


@register("KIN106", "roundtrip-mismatch", "warning",
          "saving the loaded model to .keras and reloading it changes its outputs (max "
          "relative difference {max_rel_diff})",
          "re-save the model with the current Keras and check which layers lose state",
          source="probe")
def roundtrip_mismatch(ctx: RuleContext) -> Iterator[Hit]:
    """The model does not survive a save/load round trip to the ``.keras`` format.

    A Keras 2 model whose outputs change when resaved has state the new format drops
    (unsaved variables, custom layers without ``get_config``): migrating it will break it.
    """
    if _verdict(ctx, "roundtrip_mismatch"):
        c = _check(ctx, "roundtrip")
        yield Hit(None, {"max_rel_diff": c.get("max_rel_diff"), "threshold": c.get("threshold")})


@register("KIN107", "duplicate-inputs", "warning",
          "{count} groups of identical inputs among --inputs (e.g. {example})",
          "check the data loader: the same sample fed again and again looks like a collapse",
          source="probe")
def duplicate_inputs(ctx: RuleContext) -> Iterator[Hit]:
    """Some of the user's real inputs are identical.

    A data pipeline that feeds the same image again and again makes any model look collapsed;
    identical files or rows are reported before blaming the model.
    """
    probe = getattr(ctx, "probe", None) or {}
    groups = (probe.get("real_inputs") or {}).get("duplicates") or []
    if groups:
        yield Hit(None, {"count": len(groups), "example": " = ".join(groups[0][:3]),
                         "groups": groups})


def _dead_unit_findings(report: Report, probe: dict[str, Any]) -> list[Finding]:
    """Layers where most units never fire on any probed input (static rule's code, source
    probe); the static rule registers the code, the fallback keeps the probe independent."""
    static = REGISTRY.get("dead-units")
    code = static.code if static is not None else "KIN016"
    out = []
    for row in probe.get("layers") or []:
        frac = row.get("dead_fraction")
        if frac is None or frac < DEAD_FRACTION or row.get("class_name") in ("Dropout",):
            continue
        layer = row.get("path")
        out.append(Finding(
            code=code, rule="dead-units", severity="error" if frac >= 1.0 else "warning",
            message=f"{frac:.0%} of the units of {layer} never activate on any probed input",
            layer=layer, evidence={"dead_fraction": frac, "shape": row.get("shape")},
            hint="lower the negative biases / re-initialize the layer, or use LeakyReLU",
            source="probe"))
    return out


def probe_findings(report: Report, options: Options) -> list[Finding]:
    """Probe findings for a finished probe section, linked to the static findings."""
    probe = report.probe or {}
    ctx = ProbeContext(graph=report.graph, stats=report.stats, probe=probe)  # type: ignore[arg-type]
    found: list[Finding] = []
    chosen = select_rules(options.select, options.ignore)
    for rule in chosen:
        if rule.source == "probe":
            found.extend(rule.finding(h) for h in rule.check(ctx))
    if "dead-units" not in REGISTRY or any(r.name == "dead-units" for r in chosen):
        found.extend(_dead_unit_findings(report, probe))
    link(report.findings, found, probe)
    return found


def link(static: list[Finding], probe_found: list[Finding], probe: dict[str, Any]) -> None:
    """Mark static findings confirmed/unconfirmed by the probe and cross-reference names."""
    for p in probe_found:
        for s in static:
            if s.source != "static" or s.rule not in CONFIRMS.get(p.rule, ()):
                continue
            if p.rule == "dead-units" and s.layer and p.layer and s.layer != p.layer:
                continue
            s.confirmation = "confirmed"
            p.confirmation = "confirmed"
            for a, b in ((s, p.rule), (p, s.rule)):
                if b not in a.related:
                    a.related.append(b)
    checkable = {name for names in CONFIRMS.values() for name in names}
    if probe.get("verdict") is None:
        return
    if not probe.get("real_inputs"):
        checkable -= NEEDS_REAL_INPUTS
    for s in static:
        if s.source == "static" and s.rule in checkable and s.confirmation is None:
            s.confirmation = "unconfirmed"
