"""One file, end to end: open -> static pass (weight statistics, rules) -> trust gate -> probe.

``inspect_file`` is the whole run, for the CLI's worker processes and for the TUI alike. A
caller that shows each stage as it ends (the TUI: the tree once the file is open, findings
once the rules ran, then the probe) opens the file with ``open_report``, passes that report
to ``inspect_file`` and follows the events it sends: ``STATS_PROGRESS`` during the weight
statistics pass, ``STATIC_DONE`` once the findings are known, then the probe's own events
(``inspector.probe.protocol``). ``probe_stage`` alone runs the probe again on a report
already analysed (the TUI's ``p``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from inspector.budget import time_budget
from inspector.graph import ModelGraph, WeightInfo
from inspector.options import Options
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.rules.layer_facts import is_optimizer_weight
from inspector.rules.registry import run_rules, select_rules
from inspector.stats import Progress, StatsCache

if TYPE_CHECKING:
    from inspector.probe.protocol import EventSource

EventSink = Callable[[dict[str, Any]], None]
SourceFactory = Callable[[Report, Options], "EventSource"]

# Events of the static pass, sent to ``on_event`` before the probe's own.
STATS_PROGRESS = "stats-progress"  # "done", "total": elements of the weights summarized
STATIC_DONE = "static-done"        # "report": the analysed report (findings, errors)


def inspect_file(source: str | os.PathLike[str] | Report, options: Options,
                 on_event: EventSink | None = None,
                 cancel: threading.Event | None = None, *,
                 probe_source: SourceFactory | None = None) -> Report:
    """Static pass (under ``options.static_timeout``), then the probe when asked for.

    ``source``: a path, or the report ``open_report`` made (its graph and statistics cache
    are reused, so what a UI already shows stays valid). ``on_event`` gets the static pass's
    events then the probe's; setting ``cancel`` stops the weight-statistics pass (the rules
    then skip the tensors not yet read) and the probe, and a run cancelled before the probe
    started does not start it. ``probe_source`` replaces the probe child (tests, UIs).
    Bad input raises KinspectError; so does a static pass that overruns its budget.
    """
    on_progress = None
    if on_event is not None:
        def on_progress(done: int, total: int) -> None:
            on_event({"event": STATS_PROGRESS, "done": done, "total": total})

    if isinstance(source, Report):
        report = analyze_graph(source.graph, options, source.stats,
                               on_progress=on_progress, cancel=cancel)
    else:
        with time_budget(options.static_timeout, os.fspath(source)):
            report = analyze_static(source, options, on_progress=on_progress, cancel=cancel)
    if on_event is not None:
        on_event({"event": STATIC_DONE, "report": report})
    if options.probe and not (cancel is not None and cancel.is_set()):
        probe_stage(report, options, on_event=on_event, cancel=cancel,
                    probe_source=probe_source)
    return report


def open_report(path: str | os.PathLike[str]) -> Report:
    """The file opened, no rules run yet: a report holding the graph and an empty stats
    cache (what the TUI shows first). Raises KinspectError on bad input."""
    return Report(graph=open_model(path), stats=StatsCache())


def analyze_static(path: str | os.PathLike[str], options: Options, *,
                   on_progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> Report:
    """Everything kinspect can say without TensorFlow; raises KinspectError on bad input."""
    return analyze_graph(open_model(path), options, on_progress=on_progress, cancel=cancel)


def analyze_graph(graph: ModelGraph, options: Options, stats: StatsCache | None = None, *,
                  on_progress: Progress | None = None,
                  cancel: threading.Event | None = None) -> Report:
    """The rule catalog over an already opened graph (``stats``: a cache to share, e.g. the
    one the TUI already shows).

    With ``on_progress`` or ``cancel`` the weight statistics are computed first in one pass
    that reports ``on_progress(done, total)`` (elements) and stops when ``cancel`` is set;
    the rules then find the tensors not read yet missing (as if unreadable) and the report
    says so in ``errors[]``. Without them the rules compute statistics as they need them.
    """
    stats = StatsCache() if stats is None else stats
    errors: list[dict[str, str]] = []
    if on_progress is not None or cancel is not None:
        weights = summarized_weights(graph)
        if not stats.fill(weights, on_progress=on_progress, cancel=cancel):
            stats.stop()
            done = sum(1 for w in weights if stats.peek(w) is not None)
            errors.append({"source": "stats", "kind": "stats-cancelled",
                           "message": f"the weight statistics pass was cancelled after "
                                      f"{done} of {len(weights)} tensors; weight rules "
                                      "skipped the rest"})
    findings, rule_errors = run_rules(graph, stats, select_rules(options.select, options.ignore))
    return Report(graph=graph, findings=findings, errors=errors + rule_errors, stats=stats)


def summarized_weights(graph: ModelGraph) -> list[WeightInfo]:
    """The tensors the full statistics pass reads: every stored weight with values, once,
    optimizer slots left out (the rules and the report never look at their statistics)."""
    seen: dict[str, WeightInfo] = {}
    for _, w in graph.all_weights():
        if w.source is not None and not is_optimizer_weight(w):
            seen.setdefault(w.storage_path, w)
    return list(seen.values())


def child_probe_source(report: Report, options: Options) -> EventSource:
    """The real probe runner (a child process) for ``report``'s file; imported late so the
    static path never loads the probe's parent side unless it runs."""
    from inspector.probe.runner import ProbeRunner, build_plan

    return ProbeRunner(build_plan(report.graph, options), options.probe_timeout)


def probe_stage(report: Report, options: Options, on_event: EventSink | None = None,
                cancel: threading.Event | None = None,
                probe_source: SourceFactory | None = None) -> None:
    """The trust gate, then the probe merged into ``report``; a refusal says why.

    ``probe_source`` makes the probe's event source (the real child by default); it is
    called only once the gate let the probe run, so a UI can announce the run from it.
    Setting ``cancel`` stops the probe."""
    from inspector.probe.runner import attach_probe
    from inspector.run.gate import skip_reason

    if skip_reason(report, options) is not None:
        attach_probe(report, options, on_event=on_event)  # records why it did not run
        return
    source = (probe_source or child_probe_source)(report, options)
    if cancel is None:
        attach_probe(report, options, on_event=on_event, source=source)
        return
    with _on_cancel(cancel, source.cancel):
        attach_probe(report, options, on_event=on_event, source=source)


@contextlib.contextmanager
def _on_cancel(cancel: threading.Event, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (once) if ``cancel`` is set while the block runs."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if cancel.is_set():
                action()
                return

    watcher = threading.Thread(target=watch, name="kinspect-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(1)
