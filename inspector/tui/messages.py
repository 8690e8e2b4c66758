"""Small messages the widgets and the probe worker post; the app routes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from inspector.findings import Finding
from inspector.probe.results import ProbeSection


@dataclass
class LayerChosen(Message):
    """The cursor of the layer tree moved onto a layer (``path`` = LayerNode.path)."""

    path: str | None
    group: str | None = None


@dataclass
class JumpToLayer(Message):
    """Something (a finding, the command palette) asks the tree to show this layer."""

    path: str


@dataclass
class ShowRuleDoc(Message):
    """Open the documentation modal for a finding's rule."""

    finding_index: int


@dataclass
class StaticFinished(Message):
    """The rule catalog finished in its worker: the report's findings and errors."""

    findings: list[Finding]
    errors: list[dict[str, Any]]


@dataclass
class ProbeStage(Message):
    stage: str
    message: str


@dataclass
class ProbeProgress(Message):
    stage: str | None
    fraction: float


@dataclass
class ProbeFinished(Message):
    """The probe ended: the report's new probe section (ok, refused, failed...), and the
    findings and errors lists with the probe's entries merged in (the runner merged them)."""

    probe: ProbeSection | None
    findings: list[Finding]
    errors: list[dict[str, Any]]


@dataclass
class StatsProgress(Message):
    """The static weight-statistics pass: ``done`` of ``total`` elements summarized."""

    done: int
    total: int


@dataclass
class ProbeStarting(Message):
    """The trust gate let the probe run and its child is being started."""


@dataclass
class RunEnded(Message):
    """A run worker (static pass + probe, or the probe alone) returned; always its last."""
