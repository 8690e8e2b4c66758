"""A probe EventSource that replays canned protocol events, for TUI tests without TensorFlow.

``hold_after=N`` makes it stop after N events until ``release()`` or ``cancel()``, so a test can
look at the UI mid-run deterministically; ``cancel()`` ends the stream the way the real runner
does (an ``error`` event of kind ``cancelled``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from inspector.probe import protocol


class FakeProbeSource:
    def __init__(self, events: list[dict[str, Any]], *, delay: float = 0.0,
                 hold_after: int | None = None) -> None:
        for e in events:
            if e.get("event") not in protocol.EVENTS:
                raise ValueError(f"not a protocol event: {e!r}")
        self._events = list(events)
        self.delay = delay
        self.hold_after = hold_after
        self._cancelled = threading.Event()
        self._released = threading.Event()
        self.held = threading.Event()
        self.started = False

    def events(self) -> Iterator[dict[str, Any]]:
        self.started = True
        for i, event in enumerate(self._events):
            if self.hold_after is not None and i == self.hold_after:
                self.held.set()
                while not (self._released.is_set() or self._cancelled.is_set()):
                    time.sleep(0.005)
            if self._cancelled.is_set():
                yield {"event": protocol.ERROR, "kind": protocol.STATUS_CANCELLED,
                       "message": "cancelled by the user"}
                return
            if self.delay:
                time.sleep(self.delay)
            yield event

    def release(self) -> None:
        self._released.set()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


def ok_probe_events(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A plausible run: stages with progress, then ``result``."""
    return [
        {"event": "stage", "stage": "load", "message": "loading the model"},
        {"event": "progress", "stage": "load", "fraction": 0.2},
        {"event": "stage", "stage": "random-inputs", "message": "4 distributions x 8 samples"},
        {"event": "progress", "stage": "random-inputs", "fraction": 0.6},
        {"event": "stage", "stage": "per-layer", "message": "per-layer statistics"},
        {"event": "progress", "stage": "per-layer", "fraction": 0.9},
        {"event": "result", "probe": result},
    ]


def mlp_probe_result(collapse: str | None = None) -> dict[str, Any]:
    """A probe section shaped like the runner's (inspector/probe/measure.py), for the MLP
    fixture; ``collapse`` names the collapse layer's path."""
    return {
        "status": "ok",
        "device": "CPU:0",
        "loader": "keras3",
        "samples": 8,
        "outputs": [{"name": "dense_1", "class_histogram": {"0": 6, "2": 2},
                     "top_class": 0, "top_class_fraction": 0.75}],
        "layers": [
            {"path": "model/dense", "across_input_std": 0.42, "dead_fraction": 0.25,
             "saturated_fraction": None, "nan": 0, "inf": 0, "flat": False},
            {"path": "model/dense_1", "across_input_std": 1e-9 if collapse else 0.3,
             "dead_fraction": None, "saturated_fraction": None, "nan": 0, "inf": 0,
             "flat": bool(collapse)},
        ],
        "collapse_layer": collapse,
        "verdict": {k: (k == "collapsed" and collapse is not None)
                    for k in protocol.VERDICT_KEYS},
    }
