"""The probe's progress as the command line shows it: one line per stage on stderr.

Shown only when stderr is a terminal, whatever ``--format``: the report goes to stdout (or
``-o``), so progress never mixes with it, and logs, pipes and CI runs (stderr redirected)
stay free of it. The input range being predicted is named (``probe: outputs [0,1] 3/4``),
so a slow model shows where the time goes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Sink = Callable[[dict[str, Any]], None]


def stage_text(event: dict[str, Any]) -> str:
    """``outputs [0,1] 3/4``: the stage, the input range and the step when the event has
    them (see inspector.probe.measure)."""
    parts = [str(event.get("stage") or "")]
    if event.get("range"):
        parts.append(str(event["range"]))
    if event.get("step") and event.get("steps"):
        parts.append(f"{event['step']}/{event['steps']}")
    return " ".join(p for p in parts if p)


class StderrProgress:
    """Event sink printing ``kinspect: NAME: probe: STAGE (N s)`` for every stage event."""

    def __init__(self, path: str, stream: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = os.path.basename(os.path.normpath(path)) or path
        self.stream, self.clock = stream, clock
        self.start: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") != "stage":
            return
        now = self.clock()
        if self.start is None:
            self.start = now
        print(f"kinspect: {self.name}: probe: {stage_text(event)} ({now - self.start:.0f} s)",
              file=self.stream, flush=True)


def progress_sink(path: str, stream: TextIO | None = None) -> Sink | None:
    """A progress printer for ``path`` when ``stream`` (stderr) is a terminal, else None."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return StderrProgress(path, stream) if tty else None
