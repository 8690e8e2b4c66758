"""The probe panel: the probe's stage and progress while it runs (events the app's run
worker forwards), then the verdicts, the class histogram and the per-layer variation chart.

The panel runs nothing itself: the app runs ``inspect_file`` / ``probe_stage`` and owns the
cancel event, so there is one way a probe starts and stops."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import ProgressBar, Static

from inspector.probe import protocol
from inspector.probe.results import ProbeSection
from inspector.progress import stage_text
from inspector.tui import probe_view
from inspector.tui.formatting import styled
from inspector.tui.messages import ProbeProgress, ProbeStage
from inspector.tui.widgets.probe_charts import (
    class_histogram_text,
    summary_text,
    variation_text,
    verdicts_text,
)

REFUSED_HELP = (
    "The file contains code (a Lambda layer, a custom object or a module reference), so the "
    "probe did not load it: loading would run that code.\nIf you trust the file, run "
    "`kinspect --trust {path}` from the command line."
)


class ProbePanel(Vertical):
    DEFAULT_CSS = """
    ProbePanel { height: 1fr; }
    ProbePanel #probe-status { height: auto; padding: 0 1; }
    ProbePanel ProgressBar { padding: 0 1; height: 1; }
    ProbePanel.idle ProgressBar { display: none; }
    ProbePanel #probe-results { height: 1fr; padding: 0 1; }
    ProbePanel #probe-top { height: auto; }
    ProbePanel #probe-verdicts { width: 34; height: auto; }
    ProbePanel #probe-classes { width: 1fr; height: auto; }
    """

    def __init__(self, model_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_path = model_path
        self.running = False   # between begin() and show_result()
        self.stage: str | None = None
        self.add_class("idle")

    def compose(self) -> ComposeResult:
        yield Static(styled("The probe has not run. Press p to run it.", "dim"),
                     id="probe-status")
        yield ProgressBar(total=1.0, show_eta=False, id="probe-progress")
        with VerticalScroll(id="probe-results"):
            yield Static("", id="probe-summary")
            with Horizontal(id="probe-top"):
                yield Static("", id="probe-verdicts")
                yield Static("", id="probe-classes")
            yield Static("", id="probe-variation")

    def begin(self) -> None:
        """A probe run started: clear the last results, show the progress bar."""
        self.running = True
        self.stage = None
        self.remove_class("idle")
        self.query_one(ProgressBar).update(total=1.0, progress=0.0)
        self._status(styled("Starting the probe…", "bold"))
        self._clear_results()

    def cancelling(self) -> None:
        self._status(styled("Cancelling…", "bold dark_orange3"))

    def forward(self, event: dict[str, Any]) -> None:
        """Thread-safe: a probe protocol event from the run worker, as a message."""
        kind = event.get("event")
        if kind == protocol.STAGE:
            # the stage with its input range and step ("outputs [0,1] 3/4"), as the CLI says it
            self.post_message(ProbeStage(stage_text(event), str(event.get("message") or "")))
        elif kind == protocol.PROGRESS:
            self.post_message(ProbeProgress(event.get("stage"),
                                            float(event.get("fraction") or 0.0)))

    def on_probe_stage(self, message: ProbeStage) -> None:
        # the panel's queue may hand over a run's last events after show_result() (the app
        # handles the run's end on its own queue): they must not overwrite the final status
        if not self.running:
            return
        self.stage = message.stage
        text = styled(f"Probe: {message.stage}", "bold")
        if message.message:
            text.append(f" — {message.message}")
        self._status(text)

    def on_probe_progress(self, message: ProbeProgress) -> None:
        if not self.running:
            return
        self.query_one(ProgressBar).update(progress=max(0.0, min(1.0, message.fraction)))

    def show_result(self, probe: ProbeSection | None) -> None:
        """Render a finished (or absent) probe section."""
        self.running = False
        self.add_class("idle")
        self._clear_results()
        state = probe_view.status(probe)
        if probe is None or state is None:
            self._status(styled("The probe has not run. Press p to run it.", "dim"))
            return
        if state == protocol.STATUS_REFUSED:
            text = styled("Probe refused: ", "bold dark_orange3")
            text.append(probe_view.reason(probe) + "\n")
            text.append(REFUSED_HELP.format(path=self.model_path))
            self._status(text)
            return
        if state != protocol.STATUS_OK:
            skipped = state == protocol.STATUS_SKIPPED
            text = styled(f"Probe {state}: ", "bold dark_orange3" if skipped else "bold red3")
            text.append(probe_view.reason(probe) or "no details")
            if not skipped:
                text.append("  (p runs it again)", style="dim")
            self._status(text)
            return
        self._status(styled("Probe finished.  (p runs it again)", "bold green4"))
        self.query_one("#probe-summary", Static).update(summary_text(probe))
        self.query_one("#probe-verdicts", Static).update(verdicts_text(probe))
        self.query_one("#probe-classes", Static).update(class_histogram_text(probe))
        self.query_one("#probe-variation", Static).update(variation_text(probe))

    def _status(self, text: Text) -> None:
        self.query_one("#probe-status", Static).update(text)

    def _clear_results(self) -> None:
        for box in self.query("#probe-results Static").results(Static):
            box.update("")
