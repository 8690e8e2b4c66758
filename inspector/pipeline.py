"""One file, end to end: the static report, then (optionally) the probe merged into it."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from inspector.analyze import analyze_static
from inspector.budget import time_budget
from inspector.options import Options
from inspector.report.model import Report

EventSink = Callable[[dict[str, Any]], None]


def inspect_file(path: str | os.PathLike[str], options: Options,
                 on_event: EventSink | None = None) -> Report:
    """Static pass (under ``options.static_timeout``), then the probe when asked for.

    Bad input raises KinspectError; so does a static pass that overruns its budget.
    """
    with time_budget(options.static_timeout, os.fspath(path)):
        report = analyze_static(path, options)
    if options.probe:
        from inspector.probe.runner import attach_probe

        attach_probe(report, options, on_event=on_event)
    return report
