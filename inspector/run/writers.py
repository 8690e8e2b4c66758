"""Output writers: records of one or many files to text / JSON / JSON Lines / SARIF, the
terminal progress line, and the run's exit code.

Records come in the order the targets were given: JSON Lines for ``json``/``jsonl``, one text
block per file then a summary line for ``text`` (an unreadable file is a ``kinspect: PATH:
problem`` line there), one log for ``sarif``. A file that could not be read gives exit code 2
but does not stop the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TextIO

from inspector.errors import ErrorKind, KinspectError
from inspector.findings import SEVERITIES
from inspector.run.exit_codes import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from inspector.run.outcome import Outcome


def open_output(output: str | None) -> TextIO:
    """``-o FILE`` opened for writing, or stdout; an unwritable file is a usage error."""
    try:
        return open(output, "w", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        raise KinspectError(output or "-", f"cannot write the report: {exc.strerror}",
                            ErrorKind.USAGE) from None


def write_report(text: str, output: str | None, stream: TextIO) -> None:
    """One file's report to ``output`` (or ``stream``), ending with a newline."""
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        stream.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KinspectError(output, f"cannot write the report: {exc.strerror}",
                            ErrorKind.USAGE) from None


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


def stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
