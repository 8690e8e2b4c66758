"""Report assembly: graph + findings + probe result -> the JSON-ready document.

The TUI and every renderer read this; nothing downstream recomputes findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inspector import __version__
from inspector.findings import SEVERITY_RANK, Finding, sort_key
from inspector.graph import LayerNode, ModelGraph, Shape
from inspector.probe.results import ProbeSection
from inspector.probe.results import section as probe_section
from inspector.stats import StatsCache

# 1.1: container_issues and diagnosis added.
SCHEMA_VERSION = "1.2"


@dataclass
class Report:
    graph: ModelGraph
    findings: list[Finding] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    probe: ProbeSection | None = None
    stats: StatsCache | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # the probe section is typed; a caller holding its JSON form (tests) is read through
        if name == "probe":
            value = probe_section(value)
        super().__setattr__(name, value)

    def add_findings(self, new: list[Finding]) -> None:
        self.findings.extend(new)
        self.findings.sort(key=sort_key)

    def findings_for(self, layer_path: str) -> list[Finding]:
        return [f for f in self.findings if f.layer == layer_path]

    @property
    def worst_severity(self) -> str | None:
        if not self.findings:
            return None
        return max(self.findings, key=lambda f: SEVERITY_RANK.get(f.severity, 0)).severity

    def exceeds(self, fail_on: str) -> bool:
        """True when a finding is at or above ``fail_on`` (``never`` is never exceeded)."""
        if fail_on == "never":
            return False
        bar = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK.get(f.severity, 0) >= bar for f in self.findings)

    @property
    def diagnosis(self) -> dict[str, Any] | None:
        """The headline (see inspector.diagnosis), derived from findings + probe."""
        from inspector.diagnosis import diagnose  # it reads the rules, which read Report

        return diagnose(self)

    def to_dict(self) -> dict[str, Any]:
        g = self.graph
        return {
            "schema_version": SCHEMA_VERSION,
            "diagnosis": self.diagnosis,
            "tool": {"name": "kinspect", "version": __version__},
            "model": {
                "path": g.path,
                "format": g.format,
                "keras_version": g.keras_version,
                "backend": g.backend,
                "class_name": g.class_name,
                "has_architecture": g.has_architecture,
                "inputs": [t.as_dict() for t in g.inputs],
                "outputs": [t.as_dict() for t in g.outputs],
                "layer_count": len(g.layers),
                "params": g.params.as_dict(),
                "training_config": _training_summary(g.training_config),
                "signatures": g.signatures,
                "notes": list(g.notes),
                "loose_weights": [self._weight_dict(w) for w in g.loose_weights],
            },
            "layers": [self._layer_dict(n) for n in g.walk()],
            "findings": [f.as_dict() for f in self.findings],
            "container_issues": [i.as_dict() for i in g.container_issues],
            "embedded_pickles": [p.as_dict() for p in g.embedded_pickles],
            "probe": self.probe.to_json() if self.probe is not None else None,
            "errors": list(self.errors),
        }

    def _layer_dict(self, node: LayerNode) -> dict[str, Any]:
        return {
            "path": node.path,
            "name": node.name,
            "class_name": node.class_name,
            "module": node.module,
            "registered_name": node.registered_name,
            "role": node.role,
            "trainable": node.trainable,
            "shared": node.shared,
            "dtype_policy": node.dtype_policy,
            "output_shape": shape_json(node.output_shape),
            "params": node.params.as_dict(),
            "config": node.config,
            "inbound": [
                {"inputs": [[r.layer, r.node_index, r.tensor_index] for r in c.inputs],
                 "kwargs": c.kwargs}
                for c in node.calls
            ],
            "weights": [self._weight_dict(w) for w in node.weights],
        }

    def _weight_dict(self, w: Any) -> dict[str, Any]:
        stats = None
        if self.stats is not None and w.source is not None:
            s = self.stats.get(w)
            stats = s.as_dict() if s is not None else None
        return {
            "name": w.name,
            "path": w.storage_path,
            "shape": [d for d in w.shape],
            "dtype": w.dtype,
            "trainable": w.trainable,
            "stats": stats,
        }


def shape_json(shape: Shape | list[Shape] | None) -> Any:
    """Shapes as JSON lists; a multi-output layer gives a list of lists."""
    if shape is None:
        return None
    if isinstance(shape, list):
        return [shape_json(s) for s in shape]
    return list(shape)


def _training_summary(cfg: dict[str, Any] | None) -> dict[str, Any] | None:
    if cfg is None:
        return None
    return {k: v for k, v in cfg.items() if k != "raw"}
