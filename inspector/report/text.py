"""Readable text report for terminals that are not interactive (pipes, CI logs)."""

from __future__ import annotations

from typing import Any

from inspector.graph import ContainerIssue
from inspector.report.model import Report, shape_json

_MARK = {"error": "E", "warning": "W", "info": "i"}


def _shape(shape: Any) -> str:
    js = shape_json(shape)
    if js is None:
        return "?"
    if js and isinstance(js[0], list):
        return ", ".join(_shape(tuple(s)) for s in js)
    return "(" + ", ".join("None" if d is None else str(d) for d in js) + ")"


def to_text(report: Report) -> str:
    g = report.graph
    p = g.params
    lines = [
        f"{g.path}",
        f"  format {g.format}  keras {g.keras_version or '?'}  backend {g.backend or '?'}"
        f"  class {g.class_name or '?'}",
        f"  {len(g.layers)} layers  params {p.total:,} (trainable {p.trainable:,},"
        f" non-trainable {p.non_trainable:,})",
    ]
    if g.inputs:
        lines.append("  inputs  " + "; ".join(f"{t.name} {_shape(t.shape)} {t.dtype or ''}".rstrip()
                                              for t in g.inputs))
    if g.outputs:
        lines.append("  outputs " + "; ".join(f"{t.name} {_shape(t.shape)}" for t in g.outputs))
    lines.extend(f"  note: {n}" for n in g.notes)
    lines.extend(_container_lines(g.container_issues))
    lines.append("")
    if g.root is not None:
        lines.append(f"{'layer':<44} {'class':<22} {'output shape':<22} {'params':>10}")
        for node in g.walk():
            depth = node.path.count("/") - 1
            marks = "".join(sorted({_MARK[f.severity] for f in report.findings_for(node.path)}))
            name = ("  " * depth + node.name)[:42]
            shape = _shape(node.output_shape)[:22]
            lines.append(f"{name:<44} {node.class_name[:22]:<22} {shape:<22}"
                         f" {node.params.total:>10,} {marks}".rstrip())
        lines.append("")
    elif g.loose_weights:
        lines.append(f"{len(g.loose_weights)} weight tensors, no architecture:")
        for w in g.loose_weights[:50]:
            lines.append(f"  {w.storage_path}  {list(w.shape)}  {w.dtype}")
        if len(g.loose_weights) > 50:
            lines.append(f"  ... {len(g.loose_weights) - 50} more")
        lines.append("")
    if report.findings:
        lines.append(f"findings ({len(report.findings)}):")
        for f in report.findings:
            where = f.layer or "model"
            tag = f" [{f.source}]" if f.source != "static" else ""
            conf = f" ({f.confirmation})" if f.confirmation else ""
            lines.append(f"  {f.severity:<7} {f.code} {f.rule}{tag}{conf}  {where}")
            lines.append(f"          {f.message}")
            if f.hint:
                lines.append(f"          fix: {f.hint}")
    else:
        lines.append("no findings")
    lines.extend(_probe_lines(report.probe))
    for err in report.errors:
        lines.append(f"error ({err.get('source', '?')}): {err.get('message', '')}")
    return "\n".join(lines) + "\n"


def _container_lines(issues: list[ContainerIssue]) -> list[str]:
    if not issues:
        return []
    lines = [f"  container issues ({len(issues)}):"]
    for issue in issues:
        lines.append(f"    {issue.severity:<7} {issue.kind}  {issue.location}: {issue.detail}")
    return lines


def _probe_lines(probe: dict[str, Any] | None) -> list[str]:
    if probe is None:
        return []
    lines = ["", f"probe: {probe.get('status', '?')}"]
    if probe.get("reason"):
        lines.append(f"  {probe['reason']}")
    if probe.get("device"):
        lines.append(f"  device {probe['device']}  loader {probe.get('loader', '?')}")
    verdict = probe.get("verdict") or {}
    raised = [k for k, v in sorted(verdict.items()) if v]
    if verdict:
        lines.append("  verdict: " + (", ".join(raised) if raised else "healthy"))
    return lines
