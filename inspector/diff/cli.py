"""``kinspect diff A B``: argument parsing, the isolated run and exit codes.

Exit codes as for one file: 0 no diff finding at or above ``--fail-on``, 1 one at or above
it, 2 usage error or a bad file on either side (one ``kinspect: PATH: problem`` line). The
diff runs in a killable worker process like a single-file inspection (a crafted file can hang
libhdf5 in C code, see inspector/run/isolation.py); the TUI diff view gets the report as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence

from inspector.arguments import (
    Parser,
    non_negative_int,
    options_from_args,
    positive_float,
    positive_int,
)
from inspector.errors import ErrorKind, KinspectError
from inspector.options import SAMPLES_HELP, Options, default_probe_memory_mb
from inspector.run.exit_codes import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from inspector.run.isolation import KILL_GRACE_S, Worker
from inspector.run.outcome import Outcome, error_outcome
from inspector.run.writers import write_report

DEFAULT_TOLERANCE = 1e-4


def build_diff_parser() -> argparse.ArgumentParser:
    p = Parser(prog="kinspect diff",
                description="What changed between two model files (any formats): layers, "
                            "configs, weights, findings; with the probe, outputs on the "
                            "same inputs and the first layer where activations diverge.")
    p.add_argument("path_a", metavar="A", help="the reference model (file or SavedModel dir)")
    p.add_argument("path_b", metavar="B", help="the model compared with A")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("text", "json", "sarif"), default=None,
                     help="report format (default: the TUI diff view on a terminal, text "
                          "otherwise)")
    out.add_argument("--json", action="store_const", const="json", dest="format",
                     help="short for --format json")
    out.add_argument("--no-color", action="store_true", help="no colours in the text report")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument("--fail-on", choices=("error", "warning", "info", "never"),
                     default="error",
                     help="exit 1 when a diff finding at or above this severity exists")
    out.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    rules = p.add_argument_group("rules (the single-file findings compared)")
    rules.add_argument("--select", action="append", metavar="RULES")
    rules.add_argument("--ignore", action="append", metavar="RULES")
    probe = p.add_argument_group("dynamic probe (both models on the same inputs)")
    probe.add_argument("--no-probe", action="store_true", help="static diff only")
    probe.add_argument("--trust", action="store_true",
                       help="let the probe load models that contain code")
    probe.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    probe.add_argument("--samples", type=positive_int, default=None, help=SAMPLES_HELP)
    probe.add_argument("--seed", type=int, default=0)
    probe.add_argument("--inputs", metavar="PATH",
                       help="real inputs: image directory, .npy, .npz or .csv")
    probe.add_argument("--tolerance", type=positive_float, default=DEFAULT_TOLERANCE,
                       help="max abs output difference still counted as the same "
                            "(default %(default)g)")
    probe.add_argument("--probe-timeout", type=positive_float, default=300.0,
                       metavar="SECONDS")
    probe.add_argument("--probe-memory", type=non_negative_int,
                       default=default_probe_memory_mb(), metavar="MB")
    p.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="static time budget per file (default 60)")
    return p


def diff_command(argv: Sequence[str]) -> int:
    args = build_diff_parser().parse_args(list(argv))
    options = options_from_args(args)
    options.extra["tolerance"] = repr(args.tolerance)
    from inspector.rules.registry import unknown_keys

    bad = unknown_keys((options.select or []) + (options.ignore or []))
    if bad:
        print(f"kinspect: error: unknown rule(s): {', '.join(bad)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    fmt = args.format
    tui = fmt is None and args.output is None and sys.stdout.isatty()
    try:
        outcome = run_diff_isolated(args.path_a, args.path_b, options,
                                    "json" if tui else (fmt or "text"))
        if outcome.error is not None:
            print(outcome.error, file=sys.stderr)
            return EXIT_BAD_INPUT
        if tui:
            from inspector.tui.diff_app import DiffApp

            DiffApp(json.loads(outcome.text)).run()
        else:
            write_report(outcome.text, args.output, sys.stdout)
    except KinspectError as exc:
        print(exc.one_line(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kinspect: interrupted", file=sys.stderr)
        return 130
    if args.exit_zero:
        return EXIT_OK
    return EXIT_FINDINGS if outcome.exceeds else EXIT_OK


def diff_outcome(path_a: str, options: Options, fmt: str, *, path_b: str) -> Outcome:
    """The rendered diff of two files; never raises (a bad file: its error outcome)."""
    from inspector.diff.report import render
    from inspector.diff.run import diff_files
    from inspector.progress import progress_sink

    try:
        report = diff_files(path_a, path_b, options, on_event=progress_sink(path_b))
        text = render(report, fmt, color=options.color)
    except KinspectError as exc:
        return error_outcome(exc.path, exc.kind, exc.message)
    except Exception as exc:  # a kinspect bug: one line, exit 2, no traceback
        return error_outcome(both_paths(path_a, path_b), ErrorKind.CRASHED,
                             f"internal error: {type(exc).__name__}: {exc}")
    return Outcome(path=path_a, text=text, exceeds=report.exceeds(options.fail_on),
                   counts=report.counts())


def diff_kill_limit(options: Options) -> float:
    """Two static passes, and two probes when asked for, plus the grace."""
    limit = 2 * options.static_timeout + KILL_GRACE_S
    if options.probe:
        limit += 2 * options.probe_timeout
    return limit


def both_paths(path_a: str, path_b: str) -> str:
    """What an error names when it cannot tell which of the two files caused it."""
    return f"{path_a} vs {path_b}"


def run_diff_isolated(path_a: str, path_b: str, options: Options, fmt: str) -> Outcome:
    """The diff in one killable worker (see inspector.run.isolation).

    A worker killed at the limit or dead (a C library looping or crashing on a crafted file)
    cannot say which file it was reading: the error names both, not A alone."""
    worker = Worker(options, fmt, functools.partial(diff_outcome, path_b=path_b))
    try:
        worker.submit(0, path_a)
        outcome = worker.wait(diff_kill_limit(options))
        if outcome.error is not None and not worker.process.is_alive():
            error = json.loads(outcome.text)["error"]
            outcome = error_outcome(both_paths(path_a, path_b), ErrorKind(error["kind"]),
                                    error["message"])
    finally:
        worker.stop()
    return outcome
