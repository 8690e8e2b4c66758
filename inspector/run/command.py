"""The CLI's runs: one file in a killable worker, or many files to one output stream."""

from __future__ import annotations

import sys

from inspector.options import Options
from inspector.run.exit_codes import EXIT_BAD_INPUT, findings_exit
from inspector.run.isolation import iter_outcomes, run_isolated
from inspector.run.writers import (
    open_output,
    stderr_line,
    with_progress,
    write_outcomes,
    write_report,
    write_sarif,
    write_text,
)


def run_single(path: str, options: Options, fmt: str, output: str | None,
               exit_zero: bool) -> int:
    """One file in a killable worker process (see run.isolation for why)."""
    outcome = run_isolated(path, options, fmt)
    if outcome.error is not None:
        print(outcome.error, file=sys.stderr)
        return EXIT_BAD_INPUT
    write_report(outcome.text, output, sys.stdout)
    return findings_exit(outcome.exceeds, exit_zero)


def run_many(targets: list[str], options: Options, fmt: str, output: str | None, jobs: int,
             *, exit_zero: bool) -> int:
    """Write one record per file (SARIF: one log for all of them); exit 2 if any file was
    unreadable, else by ``--fail-on``. On a terminal, stderr shows which file is being read."""
    out = open_output(output)
    worker_fmt = "jsonl" if fmt == "json" else fmt
    outcomes = with_progress(iter_outcomes(targets, options, worker_fmt, jobs), targets,
                             sys.stderr)
    try:
        if fmt == "sarif":
            return write_sarif(outcomes, out, exit_zero=exit_zero, on_error=stderr_line)
        if fmt == "text":
            # The errors are in the text itself; echo them when it goes to a file.
            return write_text(outcomes, out, exit_zero=exit_zero,
                              on_error=stderr_line if output else None)
        return write_outcomes(outcomes, out, separator="\n", exit_zero=exit_zero,
                              on_error=stderr_line)
    finally:
        outcomes.close()  # erases the progress line, also on Ctrl-C
        if output:
            out.close()
