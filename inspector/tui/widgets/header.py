"""The one-line model summary at the top: what file this is and how bad it looks."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widgets import Static

from inspector.findings import SEVERITY_RANK
from inspector.report.model import Report
from inspector.report.training import training_summary
from inspector.tui.formatting import SEVERITY_STYLE, severity_badge


class ModelHeader(Static):
    DEFAULT_CSS = """
    ModelHeader {
        height: auto;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, report: Report, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.report = report
        self.analysing = False
        self.progress: tuple[int, int] | None = None  # weight statistics: (done, total)

    def on_mount(self) -> None:
        self.refresh_summary()

    def refresh_summary(self) -> None:
        self.update(summary_text(self.report, analysing=self.analysing,
                                 progress=self.progress))


def summary_text(report: Report, *, analysing: bool = False,
                 progress: tuple[int, int] | None = None) -> Text:
    g = report.graph
    name = os.path.basename(os.path.normpath(g.path))
    text = Text()
    text.append(name, style="bold")
    text.append(f"  {g.format}", style="italic")
    keras = "Keras ?" if not g.keras_version else f"Keras {g.keras_version}"
    if g.backend:
        keras += f"/{g.backend}"
    text.append(f"  {keras}")
    if g.has_architecture and g.root is not None:
        layer_count = sum(1 for _ in g.walk())
        text.append(f"  {len(g.layers)} layers ({layer_count} in all)")
        text.append(f"  {g.params.total:,} params")
    else:
        text.append(f"  weights only: {sum(1 for _ in g.all_weights())} tensors")
    issues = g.container_issues
    if issues:   # about the file itself: say so even before the rules have run
        worst_issue = max(issues, key=lambda i: SEVERITY_RANK.get(i.severity, 0)).severity
        text.append(f"  {len(issues)} container issue{'s' if len(issues) != 1 else ''}",
                    style=SEVERITY_STYLE.get(worst_issue, ""))
    worst = report.worst_severity
    text.append("  ")
    if analysing:
        text.append("checking rules…", style="italic")
        if progress is not None and progress[1] > 0:
            text.append(f" weights {100 * progress[0] // progress[1]}% (Escape stops)",
                        style="italic")
    elif worst is None:
        text.append("no findings", style="bold green4")
    else:
        text.append_text(severity_badge(worst, label=True))
        n = len(report.findings)
        text.append(f", {n} finding{'s' if n != 1 else ''}", style=SEVERITY_STYLE[worst])
    if not analysing:
        text.append_text(diagnosis_text(report))
    text.append_text(training_text(report))
    return text


def training_text(report: Report) -> Text:
    """What the model was compiled with (loss, optimizer, learning rate) on its own line: a
    wrong loss or a wild learning rate is often the whole story of a bad model."""
    items = training_summary(report.graph.training_config)
    if not items:
        return Text()
    text = Text("\n")
    text.append("training ", style="bold")
    for i, (label, value) in enumerate(items):
        text.append(" · " if i else "", style="dim")
        text.append(f"{label} ", style="dim")
        text.append(value)
    return text


def diagnosis_text(report: Report) -> Text:
    """The headline diagnosis on its own line, once the probe has judged the model (before
    that it would only repeat the worst static finding the list already shows first)."""
    diagnosis = report.diagnosis if report.probe is not None and report.probe.ok else None
    if not diagnosis:
        return Text()
    text = Text("\n")
    text.append("diagnosis: ", style="bold")
    text.append(diagnosis["summary"])
    text.append(f"  ({diagnosis['confidence']} confidence)", style="dim")
    return text
