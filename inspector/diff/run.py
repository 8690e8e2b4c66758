"""``diff_files``: open both files, pair their layers, compare configs and weights, run the
rule catalog on each side, then (when asked) probe both on the same inputs.

Order matters for speed: the weight comparison reads every tensor of both files once,
summarizing each chunk into that tensor's statistics as it goes, and hands them to each side's
rule pass (``PrefilledStats``), so the rules do not read the tensors again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from inspector.budget import time_budget
from inspector.diff import weight_diff as wd
from inspector.diff.catalog import rule
from inspector.diff.config_diff import io_changes, layer_changes, training_changes
from inspector.diff.findings_diff import only_in_one_side
from inspector.diff.match import ADDED, REMOVED, LayerPair, match_layers
from inspector.diff.report import DiffReport
from inspector.diff.weight_diff import PrefilledStats, WeightDelta, bn_checks, diff_weights
from inspector.findings import Finding
from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.run.pipeline import analyze_graph
from inspector.stats import StatsCache

EventSink = Callable[[dict[str, Any]], None]


def diff_files(path_a: str | os.PathLike[str], path_b: str | os.PathLike[str],
               options: Options, on_event: EventSink | None = None) -> DiffReport:
    """The diff of two model files; KinspectError (naming the bad file) on bad input."""
    shown_a, shown_b = os.fspath(path_a), os.fspath(path_b)
    graphs: list[ModelGraph] = []
    try:
        with time_budget(options.static_timeout, shown_a):
            graphs.append(open_model(path_a))
        with time_budget(options.static_timeout, shown_b):
            graphs.append(open_model(path_b))
        with time_budget(2 * options.static_timeout, f"{shown_a} vs {shown_b}"):
            report = diff_graphs(graphs[0], graphs[1], options)
    finally:
        for g in graphs:
            if g.close is not None:
                g.close()
    if options.probe:
        report.probe = _probe(shown_a, shown_b, options, on_event)
        report.add_findings(probe_findings(report.probe))
    return report


def diff_graphs(graph_a: ModelGraph, graph_b: ModelGraph, options: Options) -> DiffReport:
    """Everything static: structure, configs, weights, and the single-file findings."""
    pairs = match_layers(graph_a, graph_b)
    prefill_a, prefill_b = PrefilledStats(), PrefilledStats()
    weights = diff_weights(pairs, graph_a, graph_b, stats_a=prefill_a, stats_b=prefill_b)
    rep_a = analyze_graph(graph_a, options, StatsCache(compute=prefill_a))
    rep_b = analyze_graph(graph_b, options, StatsCache(compute=prefill_b))
    report = DiffReport(side_a=_side(rep_a), side_b=_side(rep_b))
    if (graph_a.root is None) != (graph_b.root is None):
        missing = "A" if graph_a.root is None else "B"
        report.notes.append(f"{missing} has no layer tree (weights only, or a SavedModel "
                            "without Keras metadata): only weights were compared")
    report.config_changes = [c for p in pairs for c in layer_changes(p)]
    report.training_changes = training_changes(graph_a, graph_b)
    report.io_changes = io_changes(graph_a, graph_b)
    report.weights = weights.deltas
    report.weight_summary = _weight_summary(weights.deltas)
    report.layers = _layer_rows(pairs, report)
    only_a, only_b = only_in_one_side(rep_a.findings, rep_b.findings, pairs)
    report.errors = ([{"side": "a", **e} for e in rep_a.errors]
                     + [{"side": "b", **e} for e in rep_b.errors])
    report.add_findings(_static_findings(pairs, report, graph_a, graph_b, only_a, only_b))
    return report


def _side(rep: Report) -> dict[str, Any]:
    g = rep.graph
    counts: dict[str, int] = {}
    for f in rep.findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return {"path": g.path, "format": g.format, "keras_version": g.keras_version,
            "class_name": g.class_name, "has_architecture": g.root is not None,
            "layer_count": len(g.layers), "params": g.params.as_dict(),
            "findings": counts}


def _weight_summary(deltas: list[WeightDelta]) -> dict[str, int]:
    summary = {"compared": 0, "same": 0, "changed": 0, "missing": 0, "added": 0,
               "shape_changed": 0, "unreadable": 0}
    for d in deltas:
        summary[d.status.replace("-", "_")] += 1
        if d.status in (wd.SAME, wd.CHANGED):
            summary["compared"] += 1
    return summary


def _layer_rows(pairs: list[LayerPair], report: DiffReport) -> list[dict[str, Any]]:
    changes: dict[str, list[str]] = {}
    for c in report.config_changes:
        changes.setdefault(c.path or "", []).append(c.key)
    changed_tensors: dict[str, int] = {}
    for d in report.weights:
        if d.status != wd.SAME and d.layer is not None:
            changed_tensors[d.layer] = changed_tensors.get(d.layer, 0) + 1
    rows = []
    for p in pairs:
        keys = list(changes.get(p.path, []))
        n = changed_tensors.get(p.path, 0)
        if p.matched and p.a.class_name != p.b.class_name:  # type: ignore[union-attr]
            keys.insert(0, "class")
        if n and p.matched:
            keys.append(f"{n} tensor{'s' if n > 1 else ''}")
        status = p.how if p.how in (ADDED, REMOVED) else ("changed" if keys else "same")
        rows.append({"path_a": p.path_a, "path_b": p.path_b,
                     "class_a": p.a.class_name if p.a else None,
                     "class_b": p.b.class_name if p.b else None,
                     "match": p.how, "status": status, "renamed": p.renamed,
                     "changes": keys})
    return rows


def _static_findings(pairs: list[LayerPair], report: DiffReport, graph_a: ModelGraph,
                     graph_b: ModelGraph, only_a: list[Finding], only_b: list[Finding]
                     ) -> list[Finding]:
    out: list[Finding] = []
    for p in pairs:
        if _version_only(p, graph_a, graph_b):
            continue
        if p.how == ADDED:
            out.append(rule("layer-added").finding(p.path, {"class_name": p.b.class_name}))
        elif p.how == REMOVED:
            out.append(rule("layer-removed").finding(p.path, {"class_name": p.a.class_name}))
        elif p.a.class_name != p.b.class_name:  # type: ignore[union-attr]
            out.append(rule("layer-class-changed").finding(p.path, {
                "class_a": p.a.class_name, "class_b": p.b.class_name}))  # type: ignore
        if p.renamed:
            out.append(rule("layer-renamed").finding(p.path, {"path_a": p.path_a}))
    for c in report.config_changes:
        name = "config-changed" if c.tracked else "config-detail-changed"
        out.append(rule(name).finding(c.path, {"key": c.key, "a": c.a, "b": c.b}))
    for c in report.training_changes:
        out.append(rule("training-config-changed").finding(None, {
            "key": c.key, "a": c.a, "b": c.b}))
    for c in report.io_changes:
        out.append(rule("io-changed").finding(None, c))
    out.extend(_weight_findings(pairs, report.weights))
    for name, path, evidence in bn_checks(pairs, report.weights):
        out.append(rule(name).finding(path, evidence))
    for f, name in [*((f, "finding-introduced") for f in only_b),
                    *((f, "finding-resolved") for f in only_a)]:
        evidence = {"finding_code": f.code, "finding_rule": f.rule, "where": f.layer or "model",
                    "finding_message": f.message, "finding_severity": f.severity}
        severity = f.severity if name == "finding-introduced" else None
        out.append(rule(name).finding(f.layer, evidence, severity))
    return out


def _version_only(pair: LayerPair, graph_a: ModelGraph, graph_b: ModelGraph) -> bool:
    """A Keras 3 operation node (``NotEqual`` for a mask...) against a Keras 2 file, which
    never records them: a difference of file versions, not of models."""
    node = pair.a or pair.b
    lacking = graph_a if pair.a is None else graph_b
    return (not pair.matched and node is not None and node.role == "operation"
            and (lacking.keras_version or "").startswith("2."))


def _weight_findings(pairs: list[LayerPair], deltas: list[WeightDelta]) -> list[Finding]:
    """One weights-changed finding per layer (the per-tensor figures are in the report's
    weights section), one finding per missing / added / reshaped tensor of a matched layer
    (a one-sided layer is already reported as added or removed)."""
    one_sided = {p.path for p in pairs if not p.matched}
    per_layer: dict[str | None, list[WeightDelta]] = {}
    out: list[Finding] = []
    for d in deltas:
        if d.layer in one_sided:
            continue
        per_layer.setdefault(d.layer, []).append(d)
        evidence = {"name": d.name, "shape_a": d.shape_a, "shape_b": d.shape_b,
                    "dtype_a": d.dtype_a, "dtype_b": d.dtype_b}
        if d.status == wd.MISSING:
            out.append(rule("weight-missing").finding(d.layer, evidence))
        elif d.status == wd.ADDED:
            out.append(rule("weight-added").finding(d.layer, evidence))
        elif d.status == wd.UNREADABLE:
            out.append(rule("weight-not-compared").finding(
                d.layer, {**evidence, "reason": d.reason or "values not readable"}))
        elif d.status == wd.RESHAPED or (d.status == wd.CHANGED and d.dtype_a != d.dtype_b):
            out.append(rule("weight-shape-changed").finding(d.layer, evidence))
    for layer, group in per_layer.items():
        changed = [d for d in group if d.status == wd.CHANGED]
        if not changed:
            continue
        peak = max((d.max_abs_diff or 0.0) for d in changed)
        rel = [d.rel_norm_change for d in changed if d.rel_norm_change is not None]
        out.append(rule("weights-changed").finding(layer, {
            "changed": len(changed), "tensors": len(group), "max_abs_diff": peak,
            "rel_norm_change": max(rel) if rel else None,
            "tensors_changed": [d.name for d in changed]}))
    return out


def _probe(path_a: str, path_b: str, options: Options,
           on_event: EventSink | None) -> dict[str, Any]:
    """Both models probed on the same inputs by the probe diff; skipped (with the reason)
    when that part is not installed."""
    try:
        from inspector.diff.probe_diff import compare_probes
    except ImportError as exc:
        return {"status": "skipped", "reason": f"probe comparison unavailable ({exc})",
                "outputs": [], "layers": [], "first_divergent_layer": None}
    return compare_probes(path_a, path_b, options, on_event)


def probe_findings(probe: dict[str, Any] | None) -> list[Finding]:
    """KD001 per output beyond the tolerance, KD002 for the first divergent layer."""
    if not probe or probe.get("status") != "ok":
        return []
    out: list[Finding] = []
    tolerance = probe.get("tolerance")
    for o in probe.get("outputs") or []:
        if not o.get("within_tolerance", True):
            out.append(rule("outputs-differ").finding(None, {
                "output": o.get("name"), "max_abs_diff": o.get("max_abs_diff"),
                "mean_abs_diff": o.get("mean_abs_diff"),
                "argmax_agreement": o.get("argmax_agreement"), "tolerance": tolerance}))
    first = probe.get("first_divergent_layer")
    if first:
        out.append(rule("activations-diverge").finding(
            first.get("path_b") or first.get("path_a"), {
                "path_a": first.get("path_a"), "max_abs_diff": first.get("max_abs_diff"),
                "relative": first.get("relative")}))
    return out
