"""One file, end to end: open -> static pass (weight statistics, rules) -> trust gate -> probe.

``inspect_file`` is the whole run (the CLI's worker processes call it); its stages are the
public functions below, which the TUI calls one by one because it shows each result as it
comes (the tree once the file is open, findings once the rules ran, the probe on demand).
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


def inspect_file(path: str | os.PathLike[str], options: Options,
                 on_event: EventSink | None = None,
                 cancel: threading.Event | None = None) -> Report:
    """Static pass (under ``options.static_timeout``), then the probe when asked for.

    ``on_event`` gets the probe's events (stage, progress...); setting ``cancel`` stops the
    weight-statistics pass (the rules then skip the tensors not yet read) and the probe.
    Bad input raises KinspectError; so does a static pass that overruns its budget.
    """
    with time_budget(options.static_timeout, os.fspath(path)):
        report = analyze_static(path, options, cancel=cancel)
    if options.probe:
        probe_stage(report, options, on_event=on_event, cancel=cancel)
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


def probe_source(report: Report, options: Options) -> EventSource:
    """The real probe runner (a child process) for ``report``'s file; imported late so the
    static path never loads the probe's parent side unless it runs."""
    from inspector.probe.runner import ProbeRunner, build_plan

    return ProbeRunner(build_plan(report.graph, options), options.probe_timeout)


def probe_stage(report: Report, options: Options, on_event: EventSink | None = None,
                cancel: threading.Event | None = None) -> None:
    """The trust gate, then the probe, merged into ``report`` (a refusal says why)."""
    from inspector.probe.runner import attach_probe
    from inspector.run.gate import skip_reason

    if cancel is None or skip_reason(report, options) is not None:
        attach_probe(report, options, on_event=on_event)
        return
    source = probe_source(report, options)
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
