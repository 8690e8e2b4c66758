"""The diff findings' catalog: stable ``KD`` codes (like the ``KIN`` rule codes) so CI gates,
``--fail-on`` and SARIF dashboards can key on them.

Diff findings reuse ``Finding`` (source ``diff``); they are not rules of the registry because
they judge a pair of files, not one. ``KD0xx``: behaviour (probe), ``KD1xx``: structure,
``KD2xx``: configuration, ``KD3xx``: weights, ``KD4xx``: single-file findings on one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.findings import Finding
from inspector.json_values import plain_values
from inspector.rules.registry import fill_template


@dataclass(frozen=True)
class DiffRule:
    code: str
    name: str
    severity: str  # default; KD401 takes the severity of the finding it reports
    summary: str
    template: str
    hint: str

    def finding(self, layer: str | None, evidence: dict[str, Any],
                severity: str | None = None) -> Finding:
        values = {"layer": layer or "model", **evidence}
        return Finding(code=self.code, rule=self.name, severity=severity or self.severity,
                       message=fill_template(self.template, values), layer=layer,
                       evidence=plain_values(evidence), hint=self.hint, source="diff")


DIFF_RULES: dict[str, DiffRule] = {r.name: r for r in (
    DiffRule("KD001", "outputs-differ", "error",
             "A and B give different outputs on the same inputs (beyond the tolerance).",
             "output {output}: max abs diff {max_abs_diff} > tolerance {tolerance}, argmax "
             "agreement {argmax_agreement}",
             "if B should behave like A, look at the first divergent layer and the weight "
             "and config changes reported for it"),
    DiffRule("KD002", "activations-diverge", "warning",
             "The first layer whose activations differ beyond the tolerance.",
             "activations first diverge at {layer} (max abs diff {max_abs_diff})",
             "compare this layer's config and weights in A and B"),
    DiffRule("KD101", "layer-added", "warning", "A layer that only B has.",
             "layer {layer} ({class_name}) only in B",
             "expected when the architecture was changed on purpose"),
    DiffRule("KD102", "layer-removed", "warning", "A layer that only A has.",
             "layer {layer} ({class_name}) only in A",
             "expected when the architecture was changed on purpose"),
    DiffRule("KD103", "layer-renamed", "info",
             "A layer matched by class and position whose name changed.",
             "layer {path_a} renamed to {layer}",
             "harmless for inference; code that calls get_layer(name) must follow"),
    DiffRule("KD104", "layer-class-changed", "warning",
             "A layer path whose class differs between A and B.",
             "layer {layer} is {class_a} in A, {class_b} in B",
             "check that the replacement layer computes what the old one did"),
    DiffRule("KD201", "config-changed", "warning",
             "A behaviour-relevant layer setting changed: dropout rate, trainable, "
             "activation, dtype policy.",
             "{layer}: {key} {a} -> {b}",
             "make sure the change was intended (a dropout or activation change alters "
             "training and, for activations, inference)"),
    DiffRule("KD202", "config-detail-changed", "info",
             "Another layer config value present in both files changed.",
             "{layer}: {key} {a} -> {b}",
             "usually follows an intended architecture change"),
    DiffRule("KD203", "training-config-changed", "warning",
             "The compile settings changed: loss, optimizer, learning rate, metrics.",
             "training config: {key} {a} -> {b}",
             "retraining or fine-tuning from B uses these settings"),
    DiffRule("KD204", "io-changed", "warning",
             "A model input or output changed its shape or dtype.",
             "{kind} {index}: {a} -> {b}",
             "callers must feed / read the new shapes"),
    DiffRule("KD301", "weights-changed", "info",
             "Weight values of a matched layer changed.",
             "{layer}: {changed} of {tensors} tensors changed (max abs diff {max_abs_diff}, "
             "relative norm change {rel_norm_change})",
             "expected after training; unexpected after a conversion or a resave"),
    DiffRule("KD302", "weight-missing", "warning",
             "A weight tensor of a matched layer that B lacks.",
             "{layer}: weight {name} only in A",
             "B may not load into code that expects A's variables"),
    DiffRule("KD303", "weight-added", "warning",
             "A weight tensor of a matched layer that only B has.",
             "{layer}: weight {name} only in B",
             "B may not load into code that expects A's variables"),
    DiffRule("KD304", "weight-shape-changed", "warning",
             "A weight tensor whose shape or dtype changed.",
             "{layer}: weight {name} {shape_a} {dtype_a} -> {shape_b} {dtype_b}",
             "check the layer's units/filters and dtype policy"),
    DiffRule("KD305", "bn-stats-reset", "error",
             "BatchNormalization moving statistics back at their initial values (mean 0, "
             "variance 1) in B while A had trained ones.",
             "{layer}: moving_mean/moving_variance reset to 0/1 (A had trained statistics)",
             "copy the moving statistics from A (they are not trainable weights, so "
             "get_weights/set_weights on trainable_weights only drops them)"),
    DiffRule("KD306", "bn-stats-missing", "error",
             "BatchNormalization moving statistics that A has and B lacks.",
             "{layer}: {missing} missing in B",
             "re-export B with all variables (non-trainable ones included)"),
    DiffRule("KD307", "weight-not-compared", "warning",
             "A weight tensor of a matched layer that could not be read on one side or both, "
             "so the diff cannot say whether it changed.",
             "{layer}: weight {name} not compared ({reason})",
             "the single-file report of each side says why the values cannot be read"),
    DiffRule("KD401", "finding-introduced", "warning",
             "A single-file finding that B has and A has not (takes its severity).",
             "new in B: {finding_code} {finding_rule} at {where}: {finding_message}",
             "see 'kinspect rules {finding_code}'"),
    DiffRule("KD402", "finding-resolved", "info",
             "A single-file finding that A has and B has not.",
             "resolved in B: {finding_code} {finding_rule} at {where}",
             "nothing to do"),
)}


def rule(name: str) -> DiffRule:
    return DIFF_RULES[name]
