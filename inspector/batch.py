"""Many files: expand directories into model files, inspect each, write one record per file.

JSON output is JSON Lines, in the order the targets were given, whatever order parallel
workers finish in. A file that cannot be read gives an error record and exit code 2 but does
not stop the others. Files are inspected in ``jobs`` worker processes (``inspector.workers``)
whose parent kills one stuck in C code or crashed by a crafted file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from inspector.cli import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options


@dataclass
class Outcome:
    """What one file produced, small and picklable so worker processes can send it back."""

    path: str
    text: str
    exceeds: bool = False
    error: str | None = None  # the one-line message for stderr when the file was unreadable


def expand_targets(paths: list[str]) -> list[str]:
    """Paths as given; directories that are not SavedModels are searched for model files. A
    directory with none stays in the list: it gets its own error record (see inspect_one)
    instead of stopping the run before the other paths are looked at."""
    targets: list[str] = []
    for raw in paths:
        p = Path(raw)
        if _plain_dir(p):
            targets.extend(search_dir(p) or [raw])
        else:
            targets.append(raw)
    return targets


def _plain_dir(p: Path) -> bool:
    return p.is_dir() and not (p / "saved_model.pb").exists()


def _empty_dir(path: str) -> Outcome:
    """The record of a searched directory that held no model file."""
    return error_outcome(path, ErrorKind.NOT_A_MODEL, "no model files found in this directory")


def search_dir(root: Path) -> list[str]:
    """Model files below ``root`` picked by content (not extension), SavedModel dirs whole.

    Symbolic links are not followed (a link could point anywhere on the machine).
    """
    from inspector.readers.detect import looks_like_model

    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        if d != root and (d / "saved_model.pb").is_file():
            found.append(str(d))
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            f = d / name
            if f.is_file() and not f.is_symlink() and looks_like_model(f):
                found.append(str(f))
    return found


def error_outcome(path: str, kind: ErrorKind, message: str) -> Outcome:
    from inspector.report.json_out import error_record

    record = error_record(path, kind.value, message)
    return Outcome(path=path, text=json.dumps(record, sort_keys=True),
                   error=KinspectError(path, message, kind).one_line())


def inspect_one(path: str, options: Options, fmt: str) -> Outcome:
    """One file to one rendered record (``fmt``: json, jsonl, text, sarif); never raises."""
    from inspector.pipeline import inspect_file

    progress = _stderr_progress if fmt == "text" and sys.stderr.isatty() else None
    if _plain_dir(Path(path)):
        return _empty_dir(path)
    try:
        report = inspect_file(path, options, on_event=progress)
        try:
            if fmt == "jsonl":
                from inspector.report.json_out import to_json_line

                text = to_json_line(report)
            else:
                from inspector.report.render import render

                text = render(report, fmt)
        finally:
            if report.graph.close is not None:
                report.graph.close()
    except KinspectError as exc:
        return error_outcome(path, exc.kind, exc.message)
    except Exception as exc:  # one broken file (or a kinspect bug) must not stop the others
        return error_outcome(path, ErrorKind.CRASHED,
                             f"internal error: {type(exc).__name__}: {exc}")
    return Outcome(path=path, text=text, exceeds=report.exceeds(options.fail_on))


def check_opens(path: str, options: Options, fmt: str) -> Outcome:
    """Only open the file (no stats, no rules): a cheap pre-flight for in-process readers.

    The TUI reads the model in its own process; running this first in a killable worker
    turns a file that hangs or crashes libhdf5 on open into a clean error instead.
    """
    from inspector.readers import open_model

    if _plain_dir(Path(path)):
        return _empty_dir(path)
    try:
        graph = open_model(path)
        if graph.close is not None:
            graph.close()
    except KinspectError as exc:
        return error_outcome(path, exc.kind, exc.message)
    except Exception as exc:
        return error_outcome(path, ErrorKind.CRASHED,
                             f"internal error: {type(exc).__name__}: {exc}")
    return Outcome(path=path, text="")


def _stderr_progress(event: dict[str, object]) -> None:
    if event.get("event") == "stage":
        print(f"kinspect: probe: {event.get('stage')}", file=sys.stderr, flush=True)


def iter_outcomes(targets: list[str], options: Options, fmt: str, jobs: int,
                  inspect: Callable[[str, Options, str], Outcome] | None = None,
                  *, isolate: bool = True) -> Iterator[Outcome]:
    """Outcomes in target order, from ``jobs`` killable workers (or here if not ``isolate``).

    ``inspect`` replaces ``inspect_one`` (tests use it to make workers misbehave).
    """
    inspect = inspect or inspect_one
    if not isolate:
        for path in targets:
            yield inspect(path, options, fmt)
        return
    from inspector.workers import run_parallel

    done: dict[int, Outcome] = {}
    next_index = 0
    for index, outcome in run_parallel(targets, options, fmt, max(1, jobs), inspect):
        done[index] = outcome
        while next_index in done:
            yield done.pop(next_index)
            next_index += 1


def run_many(targets: list[str], options: Options, fmt: str, output: str | None, jobs: int,
             *, exit_zero: bool) -> int:
    """Write one record per file (SARIF: one log for all of them); exit 2 if any file was
    unreadable, else by ``--fail-on``."""
    try:
        out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise KinspectError(output or "-", f"cannot write the report: {exc.strerror}",
                            ErrorKind.USAGE) from None
    try:
        if fmt == "sarif":
            return write_sarif(iter_outcomes(targets, options, fmt, jobs), out,
                               exit_zero=exit_zero, on_error=_stderr_line)
        records = iter_outcomes(targets, options, "jsonl" if fmt == "json" else fmt, jobs)
        return write_outcomes(records, out,
                              separator="\n" if fmt == "json" else "\n\n",
                              exit_zero=exit_zero, on_error=_stderr_line)
    finally:
        if output:
            out.close()


def write_outcomes(outcomes: Iterator[Outcome], out: TextIO, *, separator: str,
                   exit_zero: bool, on_error: Callable[[str], None]) -> int:
    """Write each record as it comes (flushed, so a pipe sees progress); return the exit code."""
    code = EXIT_OK
    for outcome in outcomes:
        out.write(outcome.text.rstrip("\n") + separator)
        out.flush()
        code = _exit_code(code, outcome, exit_zero, on_error)
    return code


def write_sarif(outcomes: Iterator[Outcome], out: TextIO, *, exit_zero: bool,
                on_error: Callable[[str], None]) -> int:
    """One SARIF log once every file is done (a log cannot be streamed); the exit code."""
    from inspector.report.sarif import merge_sarif

    code = EXIT_OK
    logs: list[str] = []
    failures: list[tuple[str, str]] = []
    for outcome in outcomes:
        code = _exit_code(code, outcome, exit_zero, on_error)
        if outcome.error is not None:
            failures.append((outcome.path, outcome.error))
        else:
            logs.append(outcome.text)
    out.write(merge_sarif(logs, failures) + "\n")
    out.flush()
    return code


def _exit_code(code: int, outcome: Outcome, exit_zero: bool,
               on_error: Callable[[str], None]) -> int:
    """The run's exit code after one more file: 2 wins over 1, 1 over 0."""
    if outcome.error is not None:
        on_error(outcome.error)
        return EXIT_BAD_INPUT
    if outcome.exceeds and not exit_zero and code == EXIT_OK:
        return EXIT_FINDINGS
    return code


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
