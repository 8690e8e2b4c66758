"""Many files: expand directories into model files, inspect each, write one record per file.

Records come in the order the targets were given, whatever order parallel workers finish in:
JSON Lines for ``json``/``jsonl``, one text block per file then a summary line for ``text``
(an unreadable file is a ``kinspect: PATH: problem`` line there), one log for ``sarif``. A
file that cannot be read gives an error record and exit code 2 but does not stop the others.
Files are inspected in ``jobs`` worker processes (``inspector.workers``) whose parent kills
one stuck in C code or crashed by a crafted file.

A directory search must not let a broken model pass CI: every file with a model extension is
inspected (so a truncated, empty or random ``.h5``/``.keras`` becomes an exit-2 record), as is
every file whose content says Keras whatever its name, and every SavedModel layout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from inspector.cli import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options

# Names that only Keras uses: always inspected, whatever the content.
KERAS_SUFFIXES = (".keras", ".weights.h5")
# Generic HDF5 names: inspected unless the file is a readable HDF5 file with no Keras content
# (a data set next to the models), which is no model at all rather than a broken one.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
# Any one of these in a directory makes it a SavedModel (or the remains of one).
SAVEDMODEL_MARKERS = ("saved_model.pb", "saved_model.pbtxt", "keras_metadata.pb")
# Directories a search does not enter (like linters do): tool caches, installed packages.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass
class Outcome:
    """What one file produced, small and picklable so worker processes can send it back."""

    path: str
    text: str
    exceeds: bool = False
    error: str | None = None  # the one-line message for stderr when the file was unreadable
    counts: dict[str, int] | None = None  # findings by severity, for the text summary


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
    return p.is_dir() and not savedmodel_layout(p)


def savedmodel_layout(d: Path) -> bool:
    """A directory that is (or was meant to be) a SavedModel: inspected whole, so one with a
    missing or broken saved_model.pb is reported instead of being searched and skipped."""
    return any((d / name).is_file() for name in SAVEDMODEL_MARKERS)


def _empty_dir(path: str) -> Outcome:
    """The record of a searched directory that held no model file."""
    return error_outcome(path, ErrorKind.NOT_A_MODEL, "no model files found in this directory")


def search_dir(root: Path) -> list[str]:
    """Model files below ``root`` (see ``is_model_candidate``), SavedModel dirs whole.

    Symbolic links are not followed (a link could point anywhere on the machine); hidden
    directories, virtual environments and package caches are not entered.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        if d != root and savedmodel_layout(d):
            found.append(str(d))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(n for n in dirnames if not _skipped_dir(d / n))
        for name in sorted(filenames):
            f = d / name
            if f.is_file() and not f.is_symlink() and is_model_candidate(f):
                found.append(str(f))
    return found


def _skipped_dir(d: Path) -> bool:
    return (d.name.startswith(".") or d.name in SKIPPED_DIRS
            or (d / "pyvenv.cfg").is_file())


def is_model_candidate(f: Path) -> bool:
    """Should a directory search inspect this file? Yes for a Keras-only name, for content
    that says Keras whatever the name, and for a generic HDF5 name unless the file opens
    cleanly as HDF5 with no Keras content. Never raises; reads names and magic bytes only."""
    from inspector.readers.detect import looks_like_model

    name = f.name.lower()
    if name.endswith(KERAS_SUFFIXES) or looks_like_model(f):
        return True
    return name.endswith(HDF5_SUFFIXES) and not _plain_hdf5(f)


def _plain_hdf5(f: Path) -> bool:
    """A readable HDF5 file whose root holds no Keras model or weights (looks_like_model
    said no, so only a clean open is left to tell data from damage)."""
    import h5py

    from inspector.readers.detect import H5_ERRORS, HDF5, sniff

    try:
        if sniff(f) != HDF5:
            return False
        with h5py.File(f, "r") as h5:
            h5.keys()
    except (KinspectError, *H5_ERRORS):
        return False
    return True


def error_outcome(path: str, kind: ErrorKind, message: str) -> Outcome:
    from inspector.report.json_out import error_record

    record = error_record(path, kind.value, message)
    return Outcome(path=path, text=json.dumps(record, sort_keys=True),
                   error=KinspectError(path, message, kind).one_line())


def inspect_one(path: str, options: Options, fmt: str) -> Outcome:
    """One file to one rendered record (``fmt``: json, jsonl, text, sarif); never raises."""
    from inspector.pipeline import inspect_file
    from inspector.progress import progress_sink

    progress = progress_sink(path)
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

                text = render(report, fmt, color=options.color)
        finally:
            if report.graph.close is not None:
                report.graph.close()
    except KinspectError as exc:
        return error_outcome(path, exc.kind, exc.message)
    except Exception as exc:  # one broken file (or a kinspect bug) must not stop the others
        return error_outcome(path, ErrorKind.CRASHED,
                             f"internal error: {type(exc).__name__}: {exc}")
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
    unreadable, else by ``--fail-on``. On a terminal, stderr shows which file is being read."""
    try:
        out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise KinspectError(output or "-", f"cannot write the report: {exc.strerror}",
                            ErrorKind.USAGE) from None
    worker_fmt = "jsonl" if fmt == "json" else fmt
    outcomes = with_progress(iter_outcomes(targets, options, worker_fmt, jobs), targets,
                             sys.stderr)
    try:
        if fmt == "sarif":
            return write_sarif(outcomes, out, exit_zero=exit_zero, on_error=_stderr_line)
        if fmt == "text":
            # The errors are in the text itself; echo them when it goes to a file.
            return write_text(outcomes, out, exit_zero=exit_zero,
                              on_error=_stderr_line if output else None)
        return write_outcomes(outcomes, out, separator="\n", exit_zero=exit_zero,
                              on_error=_stderr_line)
    finally:
        outcomes.close()  # erases the progress line, also on Ctrl-C
        if output:
            out.close()


def with_progress(outcomes: Iterator[Outcome], targets: list[str],
                  stream: TextIO) -> Generator[Outcome, None, None]:
    """Pass ``outcomes`` through, showing ``[done/total] current file`` on ``stream`` while
    waiting for each one, when ``stream`` is a terminal. The line is erased before each
    outcome is handed on (so reports written to the same terminal start on a clean line) and
    at the end; nothing is written when ``stream`` is a pipe or a file."""
    if not _isatty(stream):
        yield from outcomes
        return
    import shutil

    width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
    shown = False
    try:
        for done, path in enumerate(targets):
            line = f"kinspect: [{done}/{len(targets)}] {path}"
            if len(line) > width:
                line = line[:width - 1] + "\u2026"
            # Cursor back to column 0: a probe stage line printed meanwhile overwrites this
            # one instead of being glued to its end.
            stream.write(f"\r\x1b[K{line}\r")
            stream.flush()
            shown = True
            outcome = next(outcomes, None)
            stream.write("\r\x1b[K")
            stream.flush()
            shown = False
            if outcome is None:
                return
            yield outcome
    finally:
        if shown:  # interrupted while waiting
            stream.write("\r\x1b[K")
            stream.flush()
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def write_text(outcomes: Iterator[Outcome], out: TextIO, *, exit_zero: bool,
               on_error: Callable[[str], None] | None) -> int:
    """One text block per file (an unreadable file: its ``kinspect: PATH: problem`` line),
    then the summary line; the exit code."""
    code = EXIT_OK
    total = failed = 0
    counts: dict[str, int] = {}
    for outcome in outcomes:
        total += 1
        if outcome.error is not None:
            failed += 1
            out.write(outcome.error + "\n\n")
        else:
            out.write(outcome.text.rstrip("\n") + "\n\n")
            for severity, n in (outcome.counts or {}).items():
                counts[severity] = counts.get(severity, 0) + n
        out.flush()
        code = _exit_code(code, outcome, exit_zero, on_error or _ignore)
    line = summary_line(total, failed, counts)
    out.write(line + "\n")
    out.flush()
    if on_error is not None:
        on_error(line)
    return code


def summary_line(files: int, failed: int, counts: dict[str, int]) -> str:
    """``3 files, 1 with errors, 4 findings (error 1, warning 3)``: "with errors" counts
    files that could not be read; findings are counted by severity (those that occur)."""
    from inspector.rules.registry import SEVERITIES

    found = sum(counts.values())
    text = (f"{files} file{'s' if files != 1 else ''}, {failed} with errors, "
            f"{found} finding{'s' if found != 1 else ''}")
    if found:
        text += " (" + ", ".join(f"{s} {counts[s]}" for s in SEVERITIES if counts.get(s)) + ")"
    return text


def _ignore(text: str) -> None:
    return None


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
