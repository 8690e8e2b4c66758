"""Probe rules: findings the dynamic probe proves with numbers (codes KIN100+).

Each rule reads the report's typed ``probe`` section (``inspector.probe.results``; measured
in the child, see ``inspector/probe/measure.py`` for the thresholds) and yields hits like a
static rule, so probe findings share the catalog, the docs, ``--select``/``--ignore`` and
every renderer. The probe's dead-unit finding reuses the static ``dead-units`` rule's code
with source ``probe``. ``probe_findings`` also links probe findings to the static ones they confirm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from inspector.findings import Finding
from inspector.probe.inputs import RANGE_LABELS
from inspector.probe.results import (
    BatchDependence,
    Check,
    EagerVsGraph,
    GapRange,
    Nondeterminism,
    OutputStats,
    ProbeInput,
    ProbeSection,
    Roundtrip,
    TrainInferGap,
    most_one_class,
)
from inspector.rules.registry import REGISTRY, Hit, RuleContext, register, select_rules

if TYPE_CHECKING:   # report.model imports the registry, which loads this package
    from inspector.options import Options
    from inspector.report.model import Report

C = TypeVar("C", bound=Check)

DEAD_FRACTION = 0.5     # a layer with at least this share of never-firing units is reported
# Inputs with at most this many features leave many ReLU units silent by design.
SMALL_INPUT = 5
# Layers whose zeros are only the zeros of the layer before them (never a cause of their own).
INHERITS_ZEROS = frozenset({
    "Flatten", "Reshape", "Permute", "RepeatVector", "Identity", "Masking", "Cropping1D",
    "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "MaxPooling1D", "MaxPooling2D",
    "MaxPooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout",
    "GaussianNoise", "ActivityRegularization", "TimeDistributed",
})

# Static rules a probe finding confirms (the static finding names the cause, the probe
# shows the effect). A listed static finding with no confirming probe finding is marked
# "unconfirmed" once the probe ran.
CONFIRMS: dict[str, tuple[str, ...]] = {
    "output-collapsed": ("dropout-rate-high", "softmax-single-unit", "zero-weights",
                         "bn-stats-uninitialized", "bn-stats-missing", "final-bias-dominates",
                         "normalization-not-adapted", "dead-units", "dead-units-by-bounds",
                         "all-layers-frozen"),
    "nondeterministic-inference": ("training-arg-hardcoded", "stateful-rnn"),
    "batch-size-dependent": ("softmax-wrong-axis",),
    "train-infer-gap": ("bn-stats-uninitialized", "bn-stats-missing", "training-arg-hardcoded"),
    "nan-outputs": ("nan-weights",),
    "dead-units": ("dead-units", "dead-units-by-bounds"),
}


# Static findings random inputs cannot contradict: normalization statistics stuck at their
# initial values only hurt on data like the training data (pass --inputs to judge them).
NEEDS_REAL_INPUTS = frozenset({"bn-stats-uninitialized", "bn-stats-missing",
                               "normalization-not-adapted"})


@dataclass
class ProbeContext(RuleContext):
    """A rule context that also carries the probe section."""

    probe: ProbeSection | None = None


def _probe(ctx: RuleContext) -> ProbeSection:
    """The context's probe section (an empty one outside a probe run)."""
    probe = getattr(ctx, "probe", None)
    return probe if isinstance(probe, ProbeSection) else ProbeSection()


def _check(ctx: RuleContext, cls: type[C], name: str) -> C:
    return _probe(ctx).check(cls, name)


def _verdict(ctx: RuleContext, key: str) -> bool:
    verdict = _probe(ctx).verdict
    return bool(getattr(verdict, key, False)) if verdict is not None else False


@register("KIN100", "output-collapsed", "error",
          "outputs barely vary across inputs ({inputs}): {what}, largest per-unit std "
          "{std_max}{where}",
          "find the layer where variation dies (collapse_layer) and fix what the static "
          "findings name there; retrain if the model learned a constant",
          source="probe")
def output_collapsed(ctx: RuleContext) -> Iterator[Hit]:
    """The model gives (almost) the same output whatever the input.

    Judged first on the model's own input range, inferred from the file (Rescaling and
    Normalization layers, BatchNormalization statistics, first-layer weights, the input's
    kind; reported as ``input_range``), or on ``--inputs``. Collapsed: every output unit's
    standard deviation across inputs is below 0.2 % for probabilities, or one class wins
    for >= 95 % of inputs while probabilities move by < 0.05; otherwise every unit's std is
    below 0.01 % of the output's magnitude (a purely affine model only when its output does
    not move at all: a large constant offset is no collapse). Causes seen in practice:
    training with Dropout near 1.0, every layer frozen, a ``Dense(1, activation="softmax")``
    head (always 1.0), zeroed kernels, a ReLU layer that never fires, BatchNormalization
    statistics that were never updated. ``collapse_layer`` names the first layer whose output
    stopped varying while its input still varied.
    """
    if not _verdict(ctx, "collapsed"):
        return
    probe = _probe(ctx)
    worst = most_one_class(probe.outputs)
    layer = probe.collapse_layer    # probe paths are the graph's paths
    collapsed_on = [d for d, v in probe.range_results().items() if v.collapsed]
    yield Hit(layer, {
        "inputs": inputs_label(probe),
        "what": collapse_what(worst),
        "top_class": worst.top_class,
        "top_class_fraction": worst.top_class_fraction,
        "std_max": worst.std_max or 0.0,
        "output": worst.name,
        "collapsed_on": collapsed_on,
        "collapse_layer": layer,
        "input_range": probe.input_range.to_json() if probe.input_range is not None else None,
        "where": f"; variation dies at {layer}" if layer else "",
    })


def inputs_label(probe: ProbeSection) -> str:
    """Which inputs a verdict was judged on, in words ("real inputs", "[0,1] inputs (image
    input: ...)")."""
    if probe.real_inputs:
        return "real inputs"
    if probe.range.label:
        return f"{probe.range.label} inputs, the model's assumed range"
    return str(probe.outputs_from or "random inputs")


def collapse_what(stats: OutputStats) -> str:
    """"class 1 for 96% of them" for a classifier, "the same value" otherwise."""
    top, fraction = stats.top_class, stats.top_class_fraction
    if top is None or fraction is None:
        return "nearly the same value for all of them"
    share = "all" if fraction >= 1.0 else f"{fraction:.0%}"
    return f"class {top} for {share} of them"


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
    c = _check(ctx, Nondeterminism, "nondeterminism")
    p, k = c.predict_max_rel_diff or 0.0, c.call_max_rel_diff or 0.0
    yield Hit(None, {"diff": max(p, k), "predict_diff": p, "call_diff": k,
                     "threshold": c.threshold or 0.0})


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
        c = _check(ctx, BatchDependence, "batch_dependence")
        yield Hit(None, {"max_rel_diff": c.max_rel_diff or 0.0, "samples": c.samples or 0,
                         "threshold": c.threshold or 0.0})


@register("KIN103", "train-infer-gap", "warning",
          "training-mode and inference-mode outputs disagree on {inputs}: {how}",
          "update BatchNormalization statistics (train longer, lower momentum) or refit them "
          "on representative data",
          source="probe")
def train_infer_gap(ctx: RuleContext) -> Iterator[Hit]:
    """``training=True`` and ``training=False`` give very different outputs on the same batch.

    The classic case: BatchNormalization moving statistics that never (or barely) moved from
    their initial 0/1, so inference normalizes with the wrong numbers while training-mode
    batch statistics look fine. Judged on ``--inputs`` or the model's own input range (an
    inference collapse on some other random range is normal for BatchNormalization models),
    or a large difference on every range. Training passes are averaged and the part of the
    difference dropout noise explains is left out, so a collapsed model behind a high
    dropout rate is reported as collapsed, not as a gap.
    """
    if not _verdict(ctx, "train_infer_gap"):
        return
    c = _check(ctx, TrainInferGap, "train_infer_gap")
    per = {d: v for d, v in (c.per_distribution or {}).items() if isinstance(v, GapRange)}
    collapsing = list(c.inference_collapses_on or [])
    key = collapsing[0] if collapsing else min(
        per, key=lambda d: per[d].diff_over_spread or 0.0, default=None)
    entry = per.get(key or "") or GapRange()
    ratio = float(entry.diff_over_spread or c.min_diff_over_spread or 0.0)
    agreement = entry.argmax_agreement
    parts = (["inference outputs collapse while training-mode outputs follow the inputs"]
             if collapsing else [])
    parts.append(f"mean difference {ratio:.3g} x the output spread")
    if agreement is not None:
        parts.append(f"argmax agreement {agreement:.0%}")
    yield Hit(None, {"inputs": "real inputs" if key == "real" else inputs_label(_probe(ctx)),
                     "how": ", ".join(parts), "diff_over_spread": ratio,
                     "argmax_agreement": agreement, "range": key,
                     "inference_collapses_on": collapsing})


@register("KIN104", "input-scale-sensitive", "warning",
          "outputs vary on the model's own range {working} but collapse for inputs in "
          "{failing}: callers must feed {working}",
          "feed inputs in the expected range, or add a Rescaling/Normalization layer to the "
          "model so callers cannot get it wrong",
          source="probe")
def input_scale_sensitive(ctx: RuleContext) -> Iterator[Hit]:
    """The model works on its own input range and collapses on the one callers confuse it with.

    The model's range is inferred from the file (see ``input_range`` in the probe section);
    the confusable range is the classic pixel-scaling mistake: raw 0..255 for a model
    trained on [0,1] or [-1,1], [0,1] for one that expects 0..255. A model trained on [0,1]
    images without a Rescaling layer, fed raw 0..255 pixels by its caller, saturates and
    predicts one class. Standardized (tabular) inputs have no such sibling range, and a
    model that collapses on its own range is reported as collapsed instead.
    """
    if not _verdict(ctx, "scale_sensitive"):
        return
    probe = _probe(ctx)
    dists = probe.range_results()
    own = probe.range.name
    failing = [d for d in probe.confusable_distributions or []
               if d in dists and dists[d].collapsed]
    labels = {d: RANGE_LABELS.get(d, d) for d in [*failing, own or ""]}
    yield Hit(None, {"working": labels.get(own or "", own or "?"),
                     "failing": ", ".join(labels[d] for d in failing),
                     "working_distributions": [own] if own else [],
                     "failing_distributions": failing})


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
    graph = sum(int(d.nan or 0) for d in _probe(ctx).range_results().values())
    eager = _check(ctx, EagerVsGraph, "eager_vs_graph").eager_nan
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
        c = _check(ctx, Roundtrip, "roundtrip")
        yield Hit(None, {"max_rel_diff": c.max_rel_diff or 0.0, "threshold": c.threshold or 0.0})


@register("KIN107", "duplicate-inputs", "warning",
          "{count} groups of identical inputs among --inputs (e.g. {example})",
          "check the data loader: the same sample fed again and again looks like a collapse",
          source="probe")
def duplicate_inputs(ctx: RuleContext) -> Iterator[Hit]:
    """Some of the user's real inputs are identical.

    A data pipeline that feeds the same image again and again makes any model look collapsed;
    identical files or rows are reported before blaming the model.
    """
    real = _probe(ctx).real_inputs
    groups = (real.duplicates if real is not None else None) or []
    if groups:
        yield Hit(None, {"count": len(groups), "example": " = ".join(groups[0][:3]),
                         "groups": groups})


def _dead_unit_findings(report: Report, probe: ProbeSection) -> list[Finding]:
    """Layers where most units never fire on any probed input (static rule's code, source
    probe); the static rule registers the code, the fallback keeps the probe independent.

    One finding per cause: a layer that only reshapes, pools or routes its input (Flatten,
    MaxPooling, Reshape, Dropout...) inherits the zeros of the ReLU before it and is not
    reported again. A model with at most SMALL_INPUT features has units that are silent on
    most of its input space by design: only a layer dead on every input is reported there."""
    static = REGISTRY.get("dead-units")
    code = static.code if static is not None else "KIN016"
    few = 0 < _input_features(probe) <= SMALL_INPUT
    out = []
    for row in probe.layer_rows():
        frac = row.dead_fraction
        if frac is None or frac < DEAD_FRACTION or row.class_name in INHERITS_ZEROS:
            continue
        if few and frac < 1.0:
            continue
        layer = row.path
        out.append(Finding(
            code=code, rule="dead-units", severity="error" if frac >= 1.0 else "warning",
            message=f"{frac:.0%} of the units of {layer} never activate on any probed input",
            layer=layer, evidence={"dead_fraction": frac, "shape": row.shape},
            hint="lower the negative biases / re-initialize the layer, or use LeakyReLU",
            source="probe"))
    return out


def _input_features(probe: ProbeSection) -> int:
    """Values per sample over all float inputs (0 when unknown)."""
    total = 0
    for spec in probe.inputs or []:
        if not isinstance(spec, ProbeInput):
            continue
        shape = spec.generated_shape or []
        if "int" in str(spec.dtype or ""):
            continue
        n = 1
        for d in shape:
            n *= int(d or 1)
        total += n
    return total


# Static findings that explain a collapse by themselves (the weights could not learn, or
# cannot pass a signal): with one of them, a near-collapse on the model's own range is one.
COLLAPSE_CAUSES = ("all-layers-frozen", "dropout-rate-high", "zero-weights",
                   "softmax-single-unit", "dead-units", "dead-units-by-bounds")


def link_near_collapse(report: Report, probe: ProbeSection) -> None:
    """Static suspicion + probe evidence: a model near-collapsed on its own range (one class
    for >= 90 % of inputs, probabilities barely moving; see measure.NEAR_TOP_CLASS) whose
    static findings name a collapse cause is collapsed. Sets the verdict and says why, so
    every renderer shows the same answer."""
    verdict = probe.verdict
    if verdict is None or verdict.collapsed or not probe.near_collapsed:
        return
    causes = [f for f in report.findings if f.source == "static" and f.rule in COLLAPSE_CAUSES]
    if not causes:
        return
    verdict.collapsed = True
    worst = most_one_class(probe.outputs)
    probe.collapsed_because = (f"near-collapsed on {inputs_label(probe)} ("
                                  f"{collapse_what(worst)}) and the static finding "
                                  f"{causes[0].rule} explains it")


def probe_findings(report: Report, options: Options) -> list[Finding]:
    """Probe findings for a finished probe section, linked to the static findings."""
    probe = report.probe if report.probe is not None else ProbeSection()
    link_near_collapse(report, probe)
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


def link(static: list[Finding], probe_found: list[Finding], probe: ProbeSection) -> None:
    """Mark static findings confirmed/unconfirmed by the probe and cross-reference names."""
    for p in probe_found:
        for s in static:
            if s.source != "static" or s.rule not in CONFIRMS.get(p.rule, ()):
                continue
            if (p.rule == "dead-units" and s.rule.startswith("dead-units") and s.layer
                    and p.layer and s.layer != p.layer):
                continue
            s.confirmation = "confirmed"
            p.confirmation = "confirmed"
            for a, b in ((s, p.rule), (p, s.rule)):
                if b not in a.related:
                    a.related.append(b)
    checkable = {name for names in CONFIRMS.values() for name in names}
    if probe.verdict is None:
        return
    if not probe.real_inputs:
        checkable -= NEEDS_REAL_INPUTS
    for s in static:
        if s.source == "static" and s.rule in checkable and s.confirmation is None:
            s.confirmation = "unconfirmed"
