"""One file to one rendered record: what a worker process sends back to the parent.

Never raises: bad input (KinspectError) and kinspect bugs become error records, so one broken
file cannot stop a run over many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options
from inspector.run.targets import plain_dir


@dataclass
class Outcome:
    """What one file produced, small and picklable so worker processes can send it back."""

    path: str
    text: str
    exceeds: bool = False
    error: str | None = None  # the one-line message for stderr when the file was unreadable
    counts: dict[str, int] | None = None  # findings by severity, for the text summary


def error_outcome(path: str, kind: ErrorKind, message: str) -> Outcome:
    from inspector.report.json_out import error_record

    record = error_record(path, kind.value, message)
    return Outcome(path=path, text=json.dumps(record, sort_keys=True),
                   error=KinspectError(path, message, kind).one_line())


def _empty_dir(path: str) -> Outcome:
    """The record of a searched directory that held no model file."""
    return error_outcome(path, ErrorKind.NOT_A_MODEL, "no model files found in this directory")


def _crashed(path: str, exc: Exception) -> Outcome:
    return error_outcome(path, ErrorKind.CRASHED, f"internal error: {type(exc).__name__}: {exc}")


def inspect_one(path: str, options: Options, fmt: str) -> Outcome:
    """One file to one rendered record (``fmt``: json, jsonl, text, sarif); never raises."""
    from inspector.progress import progress_sink
    from inspector.run.pipeline import inspect_file

    progress = progress_sink(path)
    if plain_dir(Path(path)):
        return _empty_dir(path)
    try:
        report = inspect_file(path, options, on_event=progress)
        try:
            if fmt == "jsonl":
                from inspector.report.json_out import to_json_line

                text = to_json_line(report)
            else:
                from inspector.report.render import render

                text = render(report, fmt, color=options.color)
        finally:
            if report.graph.close is not None:
                report.graph.close()
    except KinspectError as exc:
        return error_outcome(path, exc.kind, exc.message)
    except Exception as exc:  # one broken file (or a kinspect bug) must not stop the others
        return _crashed(path, exc)
    counts: dict[str, int] = {}
    for finding in report.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return Outcome(path=path, text=text, exceeds=report.exceeds(options.fail_on),
                   counts=counts)


def check_opens(path: str, options: Options, fmt: str) -> Outcome:
    """Only open the file (no stats, no rules): a cheap pre-flight for in-process readers.

    The TUI reads the model in its own process; running this first in a killable worker
    turns a file that hangs or crashes libhdf5 on open into a clean error instead.
    """
    from inspector.readers import open_model

    if plain_dir(Path(path)):
        return _empty_dir(path)
    try:
        graph = open_model(path)
        if graph.close is not None:
            graph.close()
    except KinspectError as exc:
        return error_outcome(path, exc.kind, exc.message)
    except Exception as exc:
        return _crashed(path, exc)
    return Outcome(path=path, text="")
