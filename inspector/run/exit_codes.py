"""Exit codes, defined once for every command (linters' convention).

0: nothing at or above ``--fail-on``; 1: findings at or above it; 2: usage error or an
unreadable / unsupported input; 130: interrupted (Ctrl-C), as shells report SIGINT.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def findings_exit(exceeds: bool, exit_zero: bool) -> int:
    """The exit code of a readable input: 1 when findings reach ``--fail-on`` (unless
    ``--exit-zero``), else 0."""
    return EXIT_FINDINGS if exceeds and not exit_zero else EXIT_OK
