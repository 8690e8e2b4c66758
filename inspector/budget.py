"""Per-file static time budget: a pathological file ends with a clear TIMEOUT error.

How it works: in the main thread of a POSIX process, ``time_budget`` arms an ``ITIMER_REAL``
timer whose SIGALRM handler raises ``BudgetExpired``. That is a ``BaseException`` on purpose:
readers and the rule registry catch ``Exception`` to turn a crash into an ``errors[]`` entry,
and must not swallow the deadline. The timer keeps firing every ``REPEAT_S`` after expiry in
case something swallows it anyway; on exit the caller's previous handler and timer come back.

A signal only interrupts Python bytecode. A C call that never returns (HDF5 on a crafted file)
is not covered here: the parallel runner (``inspector.run.isolation``) also kills a worker process
that overruns the budget by ``KILL_GRACE_S``. Off the main thread (the TUI's worker thread) or
without SIGALRM the budget is not enforced and ``enforced`` says so.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from inspector.errors import ErrorKind, KinspectError

REPEAT_S = 0.25


class BudgetExpired(BaseException):
    """Raised inside the static pass when its time budget is spent."""


def enforced() -> bool:
    """Can ``time_budget`` interrupt work in the current thread?"""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _expire(signum: int, frame: FrameType | None) -> None:
    raise BudgetExpired


@contextmanager
def time_budget(seconds: float | None, path: str) -> Iterator[None]:
    """Run the body under a deadline; KinspectError(TIMEOUT) naming ``path`` when it passes."""
    if not seconds or seconds <= 0 or not enforced():
        yield
        return
    previous_handler = signal.signal(signal.SIGALRM, _expire)
    previous_timer = (0.0, 0.0)
    try:
        try:
            previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_S)
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BudgetExpired:
        raise KinspectError(
            path, f"static inspection exceeded its time budget of {seconds:g} s "
            "(a pathological file? raise it with --timeout)", ErrorKind.TIMEOUT) from None
    finally:
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *previous_timer)
