"""The parallel runner survives workers that crash, hang or exit, and keeps target order."""

from __future__ import annotations

import faulthandler
import io
import json
import os
import signal
import time

import pytest

from inspector.options import Options
from inspector.run import isolation as workers
from inspector.run.isolation import iter_outcomes
from inspector.run.outcome import Outcome
from inspector.run.writers import write_outcomes

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")


def fault_inspect(path: str, options: Options, fmt: str) -> Outcome:
    """Runs in the worker processes: misbehaves on request."""
    if path == "segv":
        faulthandler.disable()  # the crash is the point: keep pytest's dump out of the log
        os.kill(os.getpid(), signal.SIGSEGV)
    if path == "hang":
        time.sleep(3600)
    if path == "exit":
        os._exit(3)
    if path.startswith("slow"):
        time.sleep(0.3)
    return Outcome(path=path, text=json.dumps({"path": path}), exceeds=path.startswith("bad"))


def _run(targets: list[str], jobs: int = 2, timeout: float = 60.0) -> dict[str, Outcome]:
    options = Options(probe=False, static_timeout=timeout)
    pairs = list(workers.run_parallel(targets, options, "json", jobs, inspect=fault_inspect))
    assert sorted(i for i, _ in pairs) == list(range(len(targets)))
    return {targets[i]: o for i, o in pairs}


def test_crashing_and_exiting_workers_become_error_records() -> None:
    got = _run(["a", "segv", "b", "exit", "c", "d"])
    assert got["segv"].error and "SIGSEGV" in got["segv"].error
    assert json.loads(got["segv"].text)["error"]["kind"] == "crashed"
    assert got["exit"].error and "exit code 3" in got["exit"].error
    for name in "abcd":
        assert got[name].error is None and json.loads(got[name].text) == {"path": name}


def test_hung_worker_is_killed_after_budget_plus_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "KILL_GRACE_S", 0.5)
    start = time.monotonic()
    got = _run(["hang", "a", "b"], timeout=0.5)
    assert time.monotonic() - start < 30
    assert json.loads(got["hang"].text)["error"]["kind"] == "timeout"
    assert got["a"].error is None and got["b"].error is None


def test_outcomes_come_back_in_target_order_with_exit_code() -> None:
    targets = ["slow1", "a", "bad1", "slow2", "b"]
    outcomes = iter_outcomes(targets, Options(probe=False), "json", 2, inspect=fault_inspect)
    out = io.StringIO()
    errors: list[str] = []
    code = write_outcomes(outcomes, out, separator="\n", exit_zero=False,
                          on_error=errors.append)
    assert code == 1 and not errors
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == targets
    code = write_outcomes(iter_outcomes(["bad", "segv", "a"], Options(probe=False), "json", 2,
                                        inspect=fault_inspect),
                          io.StringIO(), separator="\n", exit_zero=True, on_error=errors.append)
    assert code == 2 and len(errors) == 1


def test_uninterruptible_hang_is_killed(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: os.PathLike) -> None:
    """A C call that ignores SIGALRM (simulated: the signal is blocked) is still ended."""
    import inspector.run.pipeline as pipeline

    def stuck_in_c(path: object, options: object, **kwargs: object) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(3600)

    monkeypatch.setattr(pipeline, "analyze_static", stuck_in_c)  # forked workers inherit it
    monkeypatch.setattr(workers, "KILL_GRACE_S", 0.5)
    start = time.monotonic()
    outcome = workers.run_isolated("model.h5", Options(probe=False, static_timeout=0.5), "json")
    assert time.monotonic() - start < 15
    assert outcome.error and "killed" in outcome.error
    assert json.loads(outcome.text)["error"]["kind"] == "timeout"


def test_in_process_run_and_bad_input_gives_exit_2(tmp_path: os.PathLike) -> None:
    missing = os.path.join(os.fspath(tmp_path), "missing.h5")
    junk = os.path.join(os.fspath(tmp_path), "junk.keras")
    with open(junk, "wb") as fh:
        fh.write(b"not a zip at all")
    out = io.StringIO()
    errors: list[str] = []
    outcomes = iter_outcomes([missing, junk], Options(probe=False), "jsonl", 1, isolate=False)
    code = write_outcomes(outcomes, out,
                          separator="\n", exit_zero=False, on_error=errors.append)
    assert code == 2 and len(errors) == 2
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["error"]["kind"] for r in records] == ["not-found", "corrupt"]
