"""Command-line argument helpers shared by ``kinspect`` and its sub-commands (``diff``):
the parser that reports usage errors in one line, value types, and Options from arguments.

Apart from ``inspector.cli`` so a sub-command can reuse them without importing the command
that dispatches to it (no import cycle).
"""

from __future__ import annotations

import argparse
import os
import sys

from inspector.options import Options
from inspector.run.exit_codes import EXIT_BAD_INPUT


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (its default too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"kinspect: error: {message}\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
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
