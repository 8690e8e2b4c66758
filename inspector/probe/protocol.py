"""The JSON-lines protocol between the probe child and its parent (CLI or TUI).

The child writes one JSON object per line on stdout. Every object has ``"event"``:

- ``{"event": "stage", "stage": NAME, "message": TEXT}``: a new stage began.
- ``{"event": "progress", "stage": NAME, "fraction": 0.0..1.0}``: overall progress.
- ``{"event": "result", "probe": {...}}``: the finished probe section of the report.
- ``{"event": "error", "kind": KIND, "message": TEXT}``: the probe failed (the child exits).

The parent adds its own terminal events with the same shapes (``error`` kinds ``timeout``,
``crashed``, ``cancelled``, ``memory``) so a consumer only ever reads this vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from inspector.probe.results import VERDICT_KEYS as _VERDICT_KEYS

STAGE = "stage"
PROGRESS = "progress"
RESULT = "result"
ERROR = "error"
EVENTS = (STAGE, PROGRESS, RESULT, ERROR)

# Probe section statuses in the report.
STATUS_OK = "ok"
STATUS_REFUSED = "refused"      # the file holds code and --trust was not given
STATUS_SKIPPED = "skipped"      # --no-probe is not this: skipped = TensorFlow missing etc.
STATUS_FAILED = "failed"        # the child reported an error, crashed, or ran out of memory
STATUS_TIMEOUT = "timeout"
STATUS_CANCELLED = "cancelled"

# The verdict keys, in display order: the fields of results.Verdict.
VERDICT_KEYS = _VERDICT_KEYS


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, allow_nan=False) + "\n"


def decode(line: str) -> dict[str, Any] | None:
    """A protocol event, or None for a line that is not one (TF chatter on stdout)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") not in EVENTS:
        return None
    return event


class EventSource(Protocol):
    """What the CLI and the TUI consume: the real runner, or a fake replaying events in tests."""

    def events(self) -> Iterator[dict[str, Any]]:
        """Events in order; ends after a ``result`` or ``error`` event."""
        ...

    def cancel(self) -> None:
        """Stop the probe (kills the child); ``events()`` then ends with a cancelled error."""
        ...
