"""Command line: argument parsing and dispatch to the run layer (``inspector.run``) or the TUI.

Exit codes follow linters (``inspector.run.exit_codes``): 0 nothing at or above
``--fail-on``, 1 findings at or above it, 2 usage error or unreadable / unsupported input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from inspector import __version__
from inspector.arguments import (
    Parser,
    non_negative_int,
    options_from_args,
    positive_float,
    positive_int,
)
from inspector.errors import KinspectError
from inspector.options import SAMPLES_HELP, Options, default_probe_memory_mb
from inspector.run.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="kinspect",
        description="Triage Keras/TensorFlow model files: why does it predict one class?",
        epilog="'kinspect rules [NAME]' lists the rule catalog or shows one rule's documentation; "
               "'kinspect diff A B' compares two model files.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="model file(s): .keras, .h5, .weights.h5, SavedModel directory, or a "
                        "directory to search for models")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("text", "json", "jsonl", "sarif"), default=None,
                     help="report format. text: one block per file, then a summary line when "
                          "there are several; json: one indented document for one file, JSON "
                          "Lines (one compact report per line) for several; jsonl: always "
                          "JSON Lines, also for one file (an unreadable file is an error "
                          "record line); sarif: one SARIF 2.1.0 log for all files (code "
                          "scanning). Default: the TUI for one file on a terminal, text "
                          "otherwise")
    out.add_argument("--json", action="store_const", const="json", dest="format",
                     help="short for --format json")
    out.add_argument("--no-color", action="store_true",
                     help="no colours in the text report (also: NO_COLOR set, or not a "
                          "terminal)")
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument("--fail-on", choices=("error", "warning", "info", "never"), default="error",
                     help="exit 1 when a finding at or above this severity exists")
    out.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    rules = p.add_argument_group("rules")
    rules.add_argument("--select", action="append", metavar="RULES",
                       help="only these rules (codes, names or code prefixes; comma separated)")
    rules.add_argument("--ignore", action="append", metavar="RULES",
                       help="skip these rules (codes, names or code prefixes; comma separated)")
    probe = p.add_argument_group("dynamic probe (needs the 'probe' extra: TensorFlow)")
    probe.add_argument("--no-probe", action="store_true", help="static inspection only")
    probe.add_argument("--trust", action="store_true",
                       help="let the probe load models that contain code (Lambda, custom "
                            "objects, module references); it runs that code")
    probe.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    probe.add_argument("--samples", type=positive_int, default=None, help=SAMPLES_HELP)
    probe.add_argument("--seed", type=int, default=0)
    probe.add_argument("--inputs", metavar="PATH",
                       help="real inputs: image directory, .npy, .npz or .csv")
    probe.add_argument("--probe-timeout", type=positive_float, default=300.0, metavar="SECONDS")
    probe.add_argument("--probe-memory", type=non_negative_int,
                       default=default_probe_memory_mb(), metavar="MB",
                       help="cap on the memory the probe child may allocate (RLIMIT_DATA: "
                            "heap and private mappings, not the address space), where the OS "
                            "allows it; past it the probe fails with a memory error. 0: no "
                            "cap. Default: half of this machine's RAM (%(default)s MB)")
    run = p.add_argument_group("runs")
    run.add_argument("-j", "--jobs", type=positive_int, default=1,
                     help="inspect N files in parallel processes")
    run.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                     help="static time budget per file (default 60)")
    p.add_argument("--version", action="version", version=f"kinspect {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rules" and not Path("rules").exists():
        from inspector.rules_cli import rules_command

        return rules_command(argv[1:], sys.stdout)
    if argv and argv[0] == "diff" and not Path("diff").exists():
        from inspector.diff.cli import diff_command

        return diff_command(argv[1:])
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    from inspector.rules.registry import unknown_keys

    bad = unknown_keys((options.select or []) + (options.ignore or []))
    if bad:
        print(f"kinspect: error: unknown rule(s): {', '.join(bad)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return _dispatch(args, options)
    except KinspectError as exc:
        print(exc.one_line(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kinspect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace, options: Options) -> int:
    from inspector.run.command import run_many, run_single
    from inspector.run.targets import expand_targets

    targets = expand_targets(args.paths)
    single = len(args.paths) == 1 and targets == args.paths  # not a searched directory
    fmt = args.format
    if single and fmt is None and sys.stdout.isatty() and args.output is None:
        from inspector.tui.app import run_tui

        return run_tui(targets[0], options)
    if not single or fmt in ("jsonl", "sarif"):
        # Many files (text: blocks + summary; json: JSON Lines), and the formats whose output
        # has the same shape for one file as for many, an unreadable one included.
        return run_many(targets, options, fmt or "text", args.output, args.jobs,
                        exit_zero=args.exit_zero)
    return run_single(targets[0], options, fmt or "text", args.output, args.exit_zero)


if __name__ == "__main__":
    raise SystemExit(main())
