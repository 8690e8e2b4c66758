"""Static inspection vs Keras loading on a ResNet50-sized model, as ratios measured in one run.

Builds ResNet50 (weights=None, no download) once, saved as a Keras 2 ``.h5`` (tf_keras) and a
Keras 3 ``.keras``, cached in a temp directory. Then, for each file, times in fresh processes:

- ``kinspect --json --no-probe`` (static pass incl. streamed weight statistics and all rules),
- ``keras.models.load_model()`` + ``summary()`` (tf_keras for the Keras 2 file),
- a bare h5py pass that reads every weight dataset once (the I/O floor),

and prints wall time, peak RSS and the ratios to the Keras load. Usage:
``python benchmarks/static_vs_keras.py [--repeat N] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from resnet_cache import CACHE, ENV, NAMES, resnet50_files

KERAS_LOAD = r"""
import sys, io, contextlib
path = sys.argv[1]
if path.endswith(".h5"):
    import tf_keras as K
else:
    import keras as K
m = K.models.load_model(path, compile=False)
with contextlib.redirect_stdout(io.StringIO()):
    m.summary()
"""

H5_PASS = r"""
import sys, zipfile, io, h5py
path = sys.argv[1]
def visit(f):
    def read(name, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]
    f.visititems(read)
if path.endswith(".keras"):
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as member:
        with h5py.File(io.BytesIO(member.read()), "r") as f:
            visit(f)
else:
    with h5py.File(path, "r") as f:
        visit(f)
"""


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"benchmark step failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=str(CACHE))
    args = parser.parse_args()
    files = resnet50_files(Path(args.cache))

    py = sys.executable
    print(f"{'file':<18} {'step':<26} {'wall s':>8} {'peak MB':>8} {'vs keras':>9}")
    for name in NAMES:
        path = str(files[name])
        steps = {
            "kinspect --json": [py, "-m", "inspector", "--json", "--no-probe", path],
            "keras load+summary": [py, "-c", KERAS_LOAD, path],
            "h5py read every dataset": [py, "-c", H5_PASS, path],
        }
        results: dict[str, tuple[float, float]] = {}
        for step, argv in steps.items():
            runs = [run_measured(argv) for _ in range(args.repeat)]
            results[step] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
        base = results["keras load+summary"][0]
        size_mb = os.path.getsize(path) / 1e6
        for step, (wall, rss) in results.items():
            print(f"{name:<18} {step:<26} {wall:>8.2f} {rss:>8.0f} {wall / base:>8.2f}x")
        ratio = results["kinspect --json"][0] / results["h5py read every dataset"][0]
        print(f"{name:<18} ({size_mb:.0f} MB) kinspect / bare h5py pass = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
