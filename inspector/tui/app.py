"""The Textual app: static view first, then the probe streaming into it.

``create_app`` opens the file before any screen exists, so a bad file raises KinspectError
to the CLI (one line, exit 2) instead of flashing a broken TUI. Once the tree is on screen a
worker runs ``inspect_file`` on that opened report (the same run the CLI's workers do) and
the app shows each stage from its events: the weight pass, the findings, the probe.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, TabbedContent, TabPane

from inspector.graph import LayerNode
from inspector.options import Options
from inspector.probe import protocol
from inspector.probe.protocol import EventSource
from inspector.probe.results import ProbeSection
from inspector.report.json_out import to_json
from inspector.report.model import Report
from inspector.run.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from inspector.run.pipeline import (
    STATIC_DONE,
    STATS_PROGRESS,
    child_probe_source,
    inspect_file,
    open_report,
    probe_stage,
)
from inspector.tui.commands import LayerCommands
from inspector.tui.messages import (
    JumpToLayer,
    LayerChosen,
    ProbeFinished,
    ProbeStarting,
    RunEnded,
    ShowRuleDoc,
    StaticFinished,
    StatsProgress,
)
from inspector.tui.screens.export import ExportScreen
from inspector.tui.screens.help import HelpScreen
from inspector.tui.screens.rule_doc import RuleDocScreen
from inspector.tui.widgets.container_issues import ContainerIssues
from inspector.tui.widgets.findings_list import FindingsList
from inspector.tui.widgets.header import ModelHeader
from inspector.tui.widgets.layer_detail import LayerDetail
from inspector.tui.widgets.layer_tree import LayerTree, TreePane
from inspector.tui.widgets.probe_panel import ProbePanel

SourceFactory = Callable[[Report, Options], EventSource]


def default_export_path(model_path: str) -> str:
    """``<model>.kinspect.json`` next to the model (a SavedModel directory included)."""
    p = Path(os.path.normpath(model_path))
    return str(p.parent / f"{p.name}.kinspect.json")


class KinspectApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "kinspect"
    COMMANDS = App.COMMANDS | {LayerCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("e", "export", "Export JSON"),
        Binding("f", "focus_findings", "Findings"),
        Binding("slash", "filter", "Filter"),
        Binding("p", "probe", "Probe"),
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("1", "detail_tab('tab-config')", "Config", show=False),
        Binding("2", "detail_tab('tab-weights')", "Weights", show=False),
        Binding("3", "detail_tab('tab-findings')", "Layer findings", show=False),
        Binding("4", "detail_tab('tab-activations')", "Activations", show=False),
    ]

    def __init__(self, report: Report, options: Options,
                 probe_source_factory: SourceFactory | None = None, *,
                 analysed: bool = True) -> None:
        """``analysed=False``: ``report`` holds only the graph; the rules run in a worker
        once the tree is on screen (and the probe, which needs their findings, after)."""
        super().__init__()
        self.report = report
        self.analysing = not analysed
        self._probe_wanted = False
        self.running_work = False  # a run worker started and its RunEnded not handled yet
        self.cancel_event = threading.Event()  # Escape: stops the run in progress
        self._shown_percent = -1
        self.options = options
        self.probe_source_factory = probe_source_factory or child_probe_source
        self._layer_index: dict[str, LayerNode] = {n.path: n for n in report.graph.walk()}
        root = report.graph.root
        if root is not None:
            self._layer_index.setdefault(root.path, root)
        self.sub_title = os.path.basename(os.path.normpath(report.graph.path))

    def compose(self) -> ComposeResult:
        yield ModelHeader(self.report, id="model-header")
        with Horizontal(id="main"):
            yield TreePane(self.report, id="tree-pane")
            yield LayerDetail(self.report, id="detail")
        with TabbedContent(id="bottom"):
            with TabPane(self._findings_title(), id="tab-all-findings"):
                yield FindingsList(self.report, id="findings")
            with TabPane("Probe", id="tab-probe"):
                yield ProbePanel(self.report.graph.path, id="probe")
            issues = self.report.graph.container_issues
            if issues:   # only for files that have some: the usual layout stays as it was
                with TabPane(f"Container ({len(issues)})", id="tab-container"):
                    yield VerticalScroll(ContainerIssues(issues, id="container-issues"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LayerTree).focus()
        self.query_one(ModelHeader).analysing = self.analysing
        self._findings_changed()
        if self.report.probe is not None:
            self.query_one(ProbePanel).show_result(self.report.probe)

    def on_ready(self) -> None:
        # After the first paint: the tree is on screen before rules or probe compete for CPU.
        if self.analysing:
            self._launch(self._inspect)
        elif self.options.probe and self.report.probe is None:
            self._start_probe(show=False)

    @property
    def busy(self) -> bool:
        """Rules or probe still running (tests and benchmarks wait on this)."""
        return self.analysing or self.running_work or self.query_one(ProbePanel).running

    def _launch(self, worker: Callable[[threading.Event], None]) -> None:
        """Start a run worker with a fresh cancel event (Escape sets the current one)."""
        self.cancel_event = threading.Event()
        self.running_work = True
        worker(self.cancel_event)

    def _announce_probe(self, report: Report, options: Options) -> EventSource:
        """The probe source factory as the run calls it: the gate let the probe run."""
        self.post_message(ProbeStarting())
        return self.probe_source_factory(report, options)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _inspect(self, cancel: threading.Event) -> None:
        """The whole run on the report already on screen: static pass, then the probe when
        the options ask for it. Results come back as messages, never by shared state."""
        analysed: list[Report] = []

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == STATS_PROGRESS:
                self._stats_progress(int(event["done"]), int(event["total"]))
            elif kind == STATIC_DONE:
                done: Report = event["report"]
                analysed.append(done)
                self.post_message(StaticFinished(list(done.findings), list(done.errors)))
            else:
                self.query_one(ProbePanel).forward(event)

        try:
            report = inspect_file(self.report, self.options, on_event=on_event, cancel=cancel,
                                  probe_source=self._announce_probe)
            if report.probe is not None:
                self.post_message(ProbeFinished(report.probe, list(report.findings),
                                                list(report.errors)))
        except Exception as exc:  # rules trap their own errors; this keeps the UI honest
            error = {"source": "tui", "kind": "analysis-crashed",
                     "message": f"{type(exc).__name__}: {exc}"}
            if not analysed:
                self.post_message(StaticFinished([], [error]))
            else:
                findings, errors = list(analysed[0].findings), list(analysed[0].errors)
                self.post_message(ProbeFinished(
                    ProbeSection.not_run(protocol.STATUS_FAILED, error["message"]),
                    findings, errors))
        finally:
            self.post_message(RunEnded())

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _probe_again(self, cancel: threading.Event) -> None:
        """The probe alone on the analysed report (``p``), merged into a scratch copy the
        UI thread never reads while it changes; the app swaps the result in."""
        scratch = Report(graph=self.report.graph, stats=self.report.stats,
                         findings=[f for f in self.report.findings if f.source != "probe"],
                         errors=[e for e in self.report.errors if e.get("source") != "probe"])
        try:
            probe_stage(scratch, self.options, on_event=self.query_one(ProbePanel).forward,
                        cancel=cancel, probe_source=self._announce_probe)
        except Exception as exc:  # the panel must say what happened, never hang "running"
            scratch.probe = ProbeSection.not_run(protocol.STATUS_FAILED,
                                                 f"{type(exc).__name__}: {exc}")
        self.post_message(ProbeFinished(scratch.probe, scratch.findings, scratch.errors))
        self.post_message(RunEnded())

    def _stats_progress(self, done: int, total: int) -> None:
        """From the worker thread: post only whole-percent steps (thousands of tensors)."""
        percent = 100 * done // total if total else 100
        if percent != self._shown_percent:
            self._shown_percent = percent
            self.post_message(StatsProgress(done, total))

    def on_stats_progress(self, message: StatsProgress) -> None:
        header = self.query_one(ModelHeader)
        header.progress = (message.done, message.total)
        header.refresh_summary()

    def on_static_finished(self, message: StaticFinished) -> None:
        self.report.findings = message.findings
        self.report.errors = message.errors
        self.analysing = False
        self.query_one(ModelHeader).analysing = False
        self.query_one(ModelHeader).progress = None
        self._findings_changed()

    def on_probe_starting(self, message: ProbeStarting) -> None:
        self._probe_wanted = False
        self.query_one("#bottom", TabbedContent).active = "tab-probe"
        self.query_one(ProbePanel).begin()

    def on_run_ended(self, message: RunEnded) -> None:
        self.running_work = False
        # `p` pressed while the rules ran (Escape during the statistics pass meant "stop":
        # the run then skipped the probe, which waits for `p`)
        if self._probe_wanted:
            self._start_probe(show=True)

    def _findings_changed(self) -> None:
        self.query_one(ModelHeader).refresh_summary()
        self.query_one(LayerTree).refresh_markers()
        self.query_one(FindingsList).reload(analysing=self.analysing)
        self.query_one("#bottom", TabbedContent).get_tab(
            "tab-all-findings").label = self._findings_title()
        self.query_one(LayerDetail).refresh_probe()

    # -- layer selection -------------------------------------------------------------------

    def on_layer_chosen(self, message: LayerChosen) -> None:
        node = self._layer_index.get(message.path) if message.path else None
        self.query_one(LayerDetail).show_layer(node, message.group)

    def on_jump_to_layer(self, message: JumpToLayer) -> None:
        self.jump_to(message.path)

    def jump_to(self, path: str) -> bool:
        tree = self.query_one(LayerTree)
        if not tree.select_path(path):
            self.notify(f"No layer {path} in the tree.", severity="warning")
            return False
        tree.focus()
        return True

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_detail_tab(self, tab: str) -> None:
        self.query_one(LayerDetail).open_tab(tab)

    def action_filter(self) -> None:
        self.query_one(TreePane).open_filter()

    def action_focus_findings(self) -> None:
        self.query_one("#bottom", TabbedContent).active = "tab-all-findings"
        self.query_one(FindingsList).focus()

    def on_show_rule_doc(self, message: ShowRuleDoc) -> None:
        findings = self.query_one(FindingsList).findings
        if 0 <= message.finding_index < len(findings):
            self.push_screen(RuleDocScreen(findings[message.finding_index]))

    def action_export(self) -> None:
        self.push_screen(ExportScreen(default_export_path(self.report.graph.path)),
                         self._export_to)

    def _export_to(self, target: str | None) -> None:
        if not target:
            return
        path = Path(os.path.expanduser(target))
        try:
            path.write_text(to_json(self.report) + "\n", encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc.strerror}", severity="error")
            return
        self.notify(f"Report written to {path}")

    def action_probe(self) -> None:
        self._start_probe(show=True)

    def _start_probe(self, *, show: bool) -> None:
        """Run the probe alone; ``show`` brings its tab forward now (otherwise it comes
        forward once the gate lets the probe really run)."""
        if show:
            self.query_one("#bottom", TabbedContent).active = "tab-probe"
        if self.query_one(ProbePanel).running:
            self.notify("The probe is already running (Escape cancels it).")
            return
        if self.analysing or self.running_work:  # the gate depends on the static findings
            self._probe_wanted = True
            if self.analysing:
                self.notify("The probe starts once the static rules are done.")
            return
        self._launch(self._probe_again)

    def action_cancel(self) -> None:
        """Escape: stop the weight-statistics pass while it runs (the rules then finish
        without the tensors not read yet, and the probe waits for `p`), else cancel a
        running probe."""
        if self.analysing:
            if not self.cancel_event.is_set():
                self.cancel_event.set()
                self.notify("Stopping the weight statistics pass…")
            return
        panel = self.query_one(ProbePanel)
        if panel.running:
            panel.cancelling()
            self.cancel_event.set()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.cancel_event.set()  # leaving the app must not leave a probe child behind
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.cancel_event.set()

    def on_probe_finished(self, message: ProbeFinished) -> None:
        self.report.probe = message.probe
        self.report.findings = message.findings
        self.report.errors = message.errors
        self.query_one(ProbePanel).show_result(self.report.probe)
        self._findings_changed()

    def _findings_title(self) -> str:
        return f"All findings ({len(self.report.findings)})"


def create_app(path: str, options: Options, *,
               probe_source_factory: SourceFactory | None = None) -> KinspectApp:
    """Open the model first (a bad file raises KinspectError here, before any screen), then
    the app around it; the rule catalog runs once the tree is visible."""
    return KinspectApp(open_report(path), options, probe_source_factory, analysed=False)


def run_tui(path: str, options: Options) -> int:
    """Run the inspector on a terminal; KinspectError propagates to the CLI (exit 2).

    The file is first opened once in a killable worker (see inspector/run/isolation.py), so
    a file that hangs or crashes libhdf5 ends with a one-line error instead of a frozen
    terminal.
    """
    from inspector.run.isolation import run_isolated
    from inspector.run.outcome import check_opens

    preflight = run_isolated(path, options, "text", check_opens)
    if preflight.error is not None:
        print(preflight.error, file=sys.stderr)
        return EXIT_BAD_INPUT
    app = create_app(path, options)
    try:
        app.run()
    finally:
        if app.report.graph.close is not None:
            app.report.graph.close()
    return app.return_code or EXIT_OK
