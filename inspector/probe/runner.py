"""Parent side of the probe: spawn the child, read its events, survive whatever it does.

Never imports TensorFlow. The child runs in its own process group so a timeout or a cancel
kills it and anything it started; a crash, a hang or an out-of-memory kill becomes one
``error`` event (and one ``errors[]`` entry in the report), never an exception here.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.probe import protocol
from inspector.probe.results import ProbePlan, ProbeSection
from inspector.report.model import Report
from inspector.run.gate import skip_reason

STDERR_TAIL = 1500
_EOF = object()


def build_plan(graph: ModelGraph, options: Options) -> dict[str, Any]:
    """The child's plan as JSON (see results.ProbePlan; kinspect diff extends it)."""
    return ProbePlan.from_options(graph, options).to_json()


class ProbeRunner:
    """The real EventSource: one child process per instance, events in order, one terminal
    event (``result`` or ``error``) at the end."""

    def __init__(self, plan: ProbePlan | dict[str, Any], timeout: float,
                 env: dict[str, str] | None = None) -> None:
        # JSON from here on: what the child reads (a dict may be a batch plan, tests)
        self.plan = plan.to_json() if isinstance(plan, ProbePlan) else plan
        self.timeout = timeout
        self.env = env
        self._proc: subprocess.Popen[str] | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def events(self) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + self.timeout
        # The parent owns the child's temp folder (model copy, round-trip saves) and removes
        # it here, after the child is dead: a killed child cannot clean up after itself.
        workdir = tempfile.mkdtemp(prefix="kinspect-probe-")
        plan, self.plan = self.plan, with_workdir(self.plan, workdir)
        try:
            with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
                try:
                    proc = self._spawn(err)
                except OSError as exc:
                    yield _error("crashed", f"cannot start the probe child: {exc}")
                    return
                lines: queue.Queue[object] = queue.Queue()
                reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
                reader.start()
                try:
                    yield from self._read(proc, lines, deadline, err)
                finally:
                    self._kill()
                    reader.join(timeout=5)
        finally:
            self.plan = plan
            shutil.rmtree(workdir, ignore_errors=True)

    def _spawn(self, err: Any) -> subprocess.Popen[str]:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        proc = subprocess.Popen(
            child_command(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            env=env, start_new_session=True,   # own process group: killable as a whole
        )
        with self._lock:
            self._proc = proc
        if self._cancelled.is_set():
            self._kill()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(self.plan))
            proc.stdin.close()
        except OSError:
            pass          # the child died at once; its exit status tells why below
        return proc

    def _read(self, proc: subprocess.Popen[str], lines: queue.Queue[object], deadline: float,
              err: Any) -> Iterator[dict[str, Any]]:
        while True:
            if self._cancelled.is_set():
                yield _error("cancelled", "the probe was cancelled")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                yield _error("timeout", f"the probe did not finish within {self.timeout:g} s "
                                        "(--probe-timeout); the child was killed")
                return
            try:
                item = lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if item is _EOF:
                yield self._exit_event(proc, err)
                return
            event = protocol.decode(str(item))
            if event is None:
                continue
            yield event
            if event["event"] in (protocol.RESULT, protocol.ERROR):
                return

    def _exit_event(self, proc: subprocess.Popen[str], err: Any) -> dict[str, Any]:
        """The child closed stdout without a result: say how it died."""
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = proc.wait()
        if self._cancelled.is_set():
            return _error("cancelled", "the probe was cancelled")
        err.flush()
        err.seek(0)
        tail = err.read()[-STDERR_TAIL:].strip()
        detail = f"; stderr: {tail}" if tail else ""
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ \
                else str(-code)
            if -code == signal.SIGKILL:
                return _error("memory", f"the probe child was killed ({name}), most likely "
                                        f"out of memory{detail}")
            return _error("crashed", f"the probe child died from signal {name}{detail}")
        if "MemoryError" in tail:
            return _error("memory", f"the probe child ran out of memory{detail}")
        return _error("crashed", f"the probe child exited with status {code} without a "
                                 f"result{detail}")

    def cancel(self) -> None:
        self._cancelled.set()
        self._kill()

    def _kill(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


# Run by ``python -I``: sets the import path from argv before anything is imported, so no
# module can come from the current directory or from PYTHON* variables.
_BOOT = ("import sys; end = sys.argv.index('--'); sys.path[:] = sys.argv[1:end]; "
         "del sys.argv[1:end + 1]; from inspector.probe.child import main; "
         "raise SystemExit(main())")


def child_command() -> list[str]:
    """The probe child's command line: isolated from the folder kinspect runs in.

    ``python -m`` would put the current directory first on ``sys.path``, so a ``json.py``
    there would run in the child. ``-I`` adds neither it nor user site-packages and ignores
    PYTHON* variables; the child gets the parent's import path instead (PYTHONPATH entries
    and user site included, so TensorFlow is found where the parent finds it), minus the
    current-directory entry ``-m``/``-c`` put first and any relative entry.
    """
    flags = ["-I", "-u"]                       # -u: events must not wait in a buffer
    if sys.dont_write_bytecode:
        flags.append("-B")
    flags += ["-O"] * sys.flags.optimize
    return [sys.executable, *flags, "-c", _BOOT, *child_sys_path(), "--", "-"]


def child_sys_path() -> list[str]:
    """The parent's ``sys.path`` without the current directory that ``-m``/``-c`` (or an
    interactive session) put first, and without relative entries (they mean the cwd)."""
    entries = list(sys.path)
    if entries and not getattr(sys.flags, "safe_path", False):
        first = entries[0]
        if first == "" or _same_dir(first, os.getcwd()):
            entries = entries[1:]
    return [e for e in entries if e and os.path.isabs(e) and e != "--"]


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def with_workdir(plan: dict[str, Any], workdir: str) -> dict[str, Any]:
    """``plan`` (or each plan of a batch) told to keep its temp files below ``workdir``."""
    if "batch" in plan:
        return {**plan, "batch": [{**one, "workdir": workdir} for one in plan["batch"]]}
    return {**plan, "workdir": workdir}


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[object]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(_EOF)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"event": protocol.ERROR, "kind": kind, "message": message}


# ----------------------------------------------------------------------------- report


_STATUS_FOR_KIND = {"timeout": protocol.STATUS_TIMEOUT, "cancelled": protocol.STATUS_CANCELLED}


def attach_probe(report: Report, options: Options,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 source: protocol.EventSource | None = None) -> None:
    """Run the probe (or say why not) and merge its section and findings into ``report``."""
    skipped = skip_reason(report, options)
    if skipped is not None:
        report.probe = ProbeSection.not_run(skipped[0], skipped[1])
        return
    if source is None:
        source = ProbeRunner(ProbePlan.from_options(report.graph, options),
                             options.probe_timeout)
    result: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    for event in source.events():
        if on_event is not None:
            on_event(event)
        if event["event"] == protocol.RESULT:
            result = event.get("probe") or {}
        elif event["event"] == protocol.ERROR:
            failure = event
    if result is None:
        failure = failure or _error("crashed", "the probe ended without a result")
        kind = str(failure.get("kind", "crashed"))
        report.probe = ProbeSection.not_run(_STATUS_FOR_KIND.get(kind, protocol.STATUS_FAILED),
                                            failure.get("message"), error_kind=kind)
        report.errors.append({"source": "probe", "kind": f"probe-{kind}",
                              "message": str(failure.get("message", ""))})
        return
    report.probe = ProbeSection.from_json(result)
    from inspector.rules.probe_rules import probe_findings

    report.add_findings(probe_findings(report, options))
