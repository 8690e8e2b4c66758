"""Long fuzzing run: ``python benchmarks/fuzz_long.py [--scale N] [--seed-random]``.

Runs tests/test_fuzz.py with ``KINSPECT_FUZZ_SCALE=N`` (N times the CI example counts, i.e.
about 5,100 x N cases) and, with ``--seed-random``, a fresh random search instead of the
derandomized CI one. Prints the case totals and every case the worker kill had to end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="multiplier (default 10)")
    parser.add_argument("--seed-random", action="store_true",
                        help="random search (default: derandomized only at scale 1)")
    args = parser.parse_args(argv)
    env = dict(os.environ, KINSPECT_FUZZ_SCALE=str(max(1, args.scale)), TF_CPP_MIN_LOG_LEVEL="3")
    if args.seed_random:
        env["KINSPECT_FUZZ_RANDOM"] = "1"
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                            str(ROOT / "tests" / "test_fuzz.py")], cwd=ROOT, env=env)
    print(f"fuzz_long: scale {args.scale}, {time.perf_counter() - start:.0f} s, exit {code}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
