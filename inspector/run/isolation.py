"""Process isolation: the static pass (and probe) of each file runs in a killable worker.

Why: libhdf5 can loop forever inside a C call on a crafted file (fuzzing found such files);
no signal handler runs then, so the in-process time budget (``inspector.budget``) cannot end
it. The CLI therefore inspects files in worker processes and the parent kills a worker that
dies (a segfault becomes an error record) or overruns its limit: static ``--timeout`` + the
probe timeout when the probe runs + ``KILL_GRACE_S``. The worker's SIGALRM budget normally
ends Python-level slowness first, with the same TIMEOUT error.

``concurrent.futures`` cannot kill one stuck worker, so this is a small pool of processes with
one pipe each. On Linux they are forked (no re-import: a few ms each; the CLI has no threads
at that point); elsewhere spawned. Each worker leads its own process group so a kill takes any
probe child with it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from inspector.errors import ErrorKind
from inspector.options import Options
from inspector.run.outcome import Outcome, error_outcome, inspect_one

KILL_GRACE_S = 5.0
POLL_S = 0.5

Inspect = Callable[[str, Options, str], Outcome]


def _context() -> Any:
    if sys.platform.startswith("linux"):
        # Import the whole static pipeline once here: forked workers inherit it instead of
        # each importing it again (that doubled the per-file cost of small files).
        import inspector.report.json_out
        import inspector.report.render
        import inspector.run.pipeline  # noqa: F401

        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _worker_main(conn: Connection, options: Options, fmt: str, inspect: Inspect) -> None:
    """Inspect paths sent by the parent until it sends None or goes away."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # own process group: the parent can kill us with any probe child
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about Ctrl-C
    parent = os.getppid()
    while True:
        try:
            # A forked sibling may hold our pipe open: also notice an orphaning directly.
            while not conn.poll(1.0):
                if os.getppid() != parent:
                    return
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, path = task
        conn.send((index, inspect(path, options, fmt)))


def kill_limit(options: Options) -> float:
    """Seconds after which the parent kills a worker still busy with one file."""
    limit = options.static_timeout + KILL_GRACE_S
    if options.probe:
        limit += options.probe_timeout
    return limit


class Worker:
    """One worker process handling one file at a time."""

    def __init__(self, options: Options, fmt: str, inspect: Inspect) -> None:
        ctx = _context()
        self.conn, child_end = ctx.Pipe(duplex=True)
        self.process: BaseProcess = ctx.Process(
            target=_worker_main, args=(child_end, options, fmt, inspect), daemon=True,
            name="kinspect-worker")
        self.process.start()
        child_end.close()
        self.task: tuple[int, str] | None = None
        self.started = 0.0

    def submit(self, index: int, path: str) -> None:
        self.task = (index, path)
        self.started = time.monotonic()
        with contextlib.suppress(OSError):  # a dead worker shows up in poll()
            self.conn.send(self.task)

    def poll(self, limit: float) -> tuple[Outcome | None, bool]:
        """(outcome or None while busy, worker is dead or must be replaced)."""
        assert self.task is not None
        _, path = self.task
        if self.conn.poll():
            try:
                _, outcome = self.conn.recv()
                self.task = None
                return outcome, False
            except (EOFError, OSError):
                pass
        if not self.process.is_alive():
            self.process.join(1)
            self.task = None
            return error_outcome(path, ErrorKind.CRASHED, _death_message(self.process)), True
        if time.monotonic() - self.started > limit:
            self.kill()
            self.task = None
            return error_outcome(
                path, ErrorKind.TIMEOUT,
                f"no result within {limit:g} s (time budget + grace; a pathological file?); "
                "the inspecting process was killed"), True
        return None, False

    def wait(self, limit: float) -> Outcome:
        """Block until the current task ends (result, death or kill at ``limit``)."""
        while True:
            wait([self.conn, self.process.sentinel], timeout=POLL_S)
            outcome, _ = self.poll(limit)
            if outcome is not None:
                return outcome

    def kill(self) -> None:
        pid = self.process.pid
        if pid is not None and hasattr(os, "killpg"):
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        if self.process.is_alive() and self.task is None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(2)
        if self.process.is_alive() or self.process.exitcode is None:
            self.kill()
        else:
            self.conn.close()


def _death_message(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the inspecting process died ({name}); the file likely crashes a C library"
    return f"the inspecting process exited unexpectedly (exit code {code})"


def run_isolated(path: str, options: Options, fmt: str,
                 inspect: Inspect = inspect_one) -> Outcome:
    """One file in one killable worker."""
    worker = Worker(options, fmt, inspect)
    try:
        worker.submit(0, path)
        return worker.wait(kill_limit(options))
    finally:
        worker.stop()


def run_parallel(targets: list[str], options: Options, fmt: str, jobs: int,
                 inspect: Inspect = inspect_one) -> Iterator[tuple[int, Outcome]]:
    """(index, outcome) pairs in completion order; every target yields exactly one."""
    limit = kill_limit(options)
    pending: deque[tuple[int, str]] = deque(enumerate(targets))
    workers: list[Worker] = []
    try:
        workers = [Worker(options, fmt, inspect) for _ in range(min(jobs, len(targets)))]
        while True:
            for i, worker in enumerate(workers):
                if worker.task is None and pending:
                    if not worker.process.is_alive():
                        worker.kill()
                        worker = workers[i] = Worker(options, fmt, inspect)
                    worker.submit(*pending.popleft())
            busy = [w for w in workers if w.task is not None]
            if not busy:
                return
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_S)
            for i, worker in enumerate(workers):
                if worker.task is None:
                    continue
                index = worker.task[0]
                outcome, dead = worker.poll(limit)
                if outcome is None:
                    continue
                if dead:
                    worker.kill()
                    if pending:
                        workers[i] = Worker(options, fmt, inspect)
                yield index, outcome
    finally:
        for worker in workers:
            worker.stop()


def iter_outcomes(targets: list[str], options: Options, fmt: str, jobs: int,
                  inspect: Callable[[str, Options, str], Outcome] | None = None,
                  *, isolate: bool = True) -> Iterator[Outcome]:
    """Outcomes in target order, from ``jobs`` killable workers (or here if not ``isolate``).

    ``inspect`` replaces ``inspect_one`` (tests use it to make workers misbehave).
    """
    inspect = inspect or inspect_one
    if not isolate:
        for path in targets:
            yield inspect(path, options, fmt)
        return
    done: dict[int, Outcome] = {}
    next_index = 0
    for index, outcome in run_parallel(targets, options, fmt, max(1, jobs), inspect):
        done[index] = outcome
        while next_index in done:
            yield done.pop(next_index)
            next_index += 1
