"""Command line: argument parsing, dispatch to the static pass / probe / TUI, exit codes.

Exit codes follow linters: 0 nothing at or above ``--fail-on``, 1 findings at or above it,
2 usage error or unreadable / unsupported input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from inspector import __version__
from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options, default_probe_memory_mb

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (its default too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"kinspect: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="kinspect",
        description="Triage Keras/TensorFlow model files: why does it predict one class?",
        epilog="'kinspect rules [NAME]' lists the rule catalog or shows one rule's documentation.",
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
    probe.add_argument("--samples", type=_positive_int, default=None,
                       help="random inputs per input range (default 64, fewer for models "
                            "that cost more than ~1e9 multiply-accumulates a sample)")
    probe.add_argument("--seed", type=int, default=0)
    probe.add_argument("--inputs", metavar="PATH",
                       help="real inputs: image directory, .npy, .npz or .csv")
    probe.add_argument("--probe-timeout", type=_positive_float, default=300.0, metavar="SECONDS")
    probe.add_argument("--probe-memory", type=_non_negative_int,
                       default=default_probe_memory_mb(), metavar="MB",
                       help="cap on the memory the probe child may allocate (RLIMIT_DATA: "
                            "heap and private mappings, not the address space), where the OS "
                            "allows it; past it the probe fails with a memory error. 0: no "
                            "cap. Default: half of this machine's RAM (%(default)s MB)")
    run = p.add_argument_group("runs")
    run.add_argument("-j", "--jobs", type=_positive_int, default=1,
                     help="inspect N files in parallel processes")
    run.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                     help="static time budget per file (default 60)")
    p.add_argument("--version", action="version", version=f"kinspect {__version__}")
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(
        select=_split(args.select),
        ignore=_split(args.ignore),
        fail_on=args.fail_on,
        probe=not args.no_probe,
        trust=args.trust,
        device=args.device,
        samples=args.samples,
        seed=args.seed,
        inputs=args.inputs,
        probe_timeout=args.probe_timeout,
        probe_memory_mb=args.probe_memory or None,
        static_timeout=args.timeout,
        color=_use_color(args),
    )


def _use_color(args: argparse.Namespace) -> bool:
    """Colour the text report like ruff: only on a terminal, never with NO_COLOR (any value,
    https://no-color.org) or --no-color, never into a file."""
    if args.no_color or os.environ.get("NO_COLOR") or args.output is not None:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rules" and not Path("rules").exists():
        from inspector.rules_cli import rules_command

        return rules_command(argv[1:], sys.stdout)
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
        return 130


def _dispatch(args: argparse.Namespace, options: Options) -> int:
    from inspector.batch import expand_targets, run_many

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
    return _run_single(targets[0], options, fmt or "text", args.output, args.exit_zero)


def _run_single(path: str, options: Options, fmt: str, output: str | None,
                exit_zero: bool) -> int:
    """One file in a killable worker process (see inspector/workers.py for why)."""
    from inspector.workers import run_isolated

    outcome = run_isolated(path, options, fmt)
    if outcome.error is not None:
        print(outcome.error, file=sys.stderr)
        return EXIT_BAD_INPUT
    _write(outcome.text, output, sys.stdout)
    if exit_zero:
        return EXIT_OK
    return EXIT_FINDINGS if outcome.exceeds else EXIT_OK


def _write(text: str, output: str | None, stream: TextIO) -> None:
    if output is None:
        stream.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise KinspectError(output, f"cannot write the report: {exc.strerror}",
                            ErrorKind.USAGE) from None


if __name__ == "__main__":
    raise SystemExit(main())
