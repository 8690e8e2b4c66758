"""Throughput of ``kinspect --json`` over the fixture set: files/s with -j 1 and -j 2.

Usage: ``python benchmarks/many_files.py [--runs N] [--probe] [DIR ...]`` (default dirs:
fixtures/models fixtures/rules). Each configuration runs the real CLI as a subprocess (so the
figures include interpreter start-up and, for -j 2, worker spawn); the best of ``--runs`` is
reported with the -j 2 / -j 1 ratio. The static pass only, unless ``--probe``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = [ROOT / "fixtures" / "models", ROOT / "fixtures" / "rules"]


def run_once(dirs: list[str], jobs: int, probe: bool) -> tuple[float, int, int]:
    """(seconds, files reported, exit code) for one CLI run."""
    args = [sys.executable, "-m", "inspector", "--json", "-j", str(jobs), *dirs]
    if not probe:
        args.insert(3, "--no-probe")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1, 2):
        sys.exit(f"kinspect failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, len(done.stdout.splitlines()), done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=[str(d) for d in DEFAULT_DIRS])
    parser.add_argument("--runs", type=int, default=2, help="best of N runs (default 2)")
    parser.add_argument("--probe", action="store_true", help="include the TensorFlow probe")
    args = parser.parse_args(argv)
    rates: dict[int, float] = {}
    for jobs in (1, 2):
        best = min(run_once(args.dirs, jobs, args.probe) for _ in range(max(1, args.runs)))
        seconds, files, code = best
        rates[jobs] = files / seconds
        print(f"-j {jobs}: {files} files in {seconds:.2f} s = {rates[jobs]:.1f} files/s "
              f"(exit {code})")
    print(f"ratio -j 2 / -j 1: {rates[2] / rates[1]:.2f}x on {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
