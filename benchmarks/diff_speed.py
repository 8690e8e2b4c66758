"""Static diff of two ResNet50 files vs one static inspection (target: ratio <= 2).

For each cached ResNet50 (``resnet_cache.py``: a Keras 3 ``.keras`` and a Keras 2 ``.h5``), a
perturbed copy is written once next to it (noise added to a few kernels and one BN layer's
moving statistics reset, with h5py and zipfile, no TensorFlow). Then, in fresh processes:

- ``kinspect --json --no-probe A`` (one static inspection: weight statistics + all rules),
- ``kinspect diff --json --no-probe A B`` (both files: matching, per-tensor comparison,
  rules on each side),

and prints median wall time, peak RSS and the ratio diff / single. Usage:
``python benchmarks/diff_speed.py [--repeat N] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from resnet_cache import CACHE, ENV, resnet50_files

TARGET = 2.0


def _perturb_h5(f: object) -> None:
    """Noise on the first three conv kernels found, one BN's moving stats back to 0/1."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    kernels: list[h5py.Dataset] = []
    stats: list[h5py.Dataset] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim == 4 and len(kernels) < 3:
            kernels.append(obj)
        if isinstance(obj, h5py.Dataset) and "moving_" in name and len(stats) < 2:
            stats.append(obj)

    f.visititems(visit)  # type: ignore[attr-defined]
    for ds in kernels:
        ds[...] = ds[...] + rng.normal(0, 1e-3, ds.shape).astype(ds.dtype)
    for ds in stats:
        ds[...] = 0.0 if "mean" in ds.name else 1.0


def perturbed_copy(src: Path) -> Path:
    dst = src.with_name(src.stem + "_perturbed" + src.suffix)
    if dst.exists():
        return dst
    import h5py

    tmp = dst.with_suffix(dst.suffix + ".tmp")
    if src.suffix == ".h5":
        shutil.copyfile(src, tmp)
        with h5py.File(tmp, "r+") as f:
            _perturb_h5(f)
    else:  # .keras: the weights live in the archive member model.weights.h5
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "model.weights.h5":
                    buf = io.BytesIO(data)
                    with h5py.File(buf, "r+") as f:
                        _perturb_h5(f)
                    data = buf.getvalue()
                zout.writestr(info, data)
    os.replace(tmp, dst)
    return dst


def run_measured(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    return (time.perf_counter() - start, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status))


def measure(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run_measured(argv) for _ in range(repeat)]
    codes = {code for _, _, code in runs}
    if codes - {0, 1}:
        raise SystemExit(f"{' '.join(argv)} exited {codes}")
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    kinspect = [sys.executable, "-m", "inspector"]
    worst = 0.0
    print(f"{'file':<18} {'single s':>9} {'diff s':>8} {'ratio':>6} {'single MB':>10} "
          f"{'diff MB':>8}")
    for name, path in resnet50_files(args.cache).items():
        other = perturbed_copy(path)
        single, single_mb = measure([*kinspect, "--json", "--no-probe", str(path)],
                                    args.repeat)
        diff, diff_mb = measure([*kinspect, "diff", "--json", "--no-probe", str(path),
                                 str(other)], args.repeat)
        ratio = diff / single
        worst = max(worst, ratio)
        print(f"{name:<18} {single:>9.2f} {diff:>8.2f} {ratio:>6.2f} {single_mb:>10.0f} "
              f"{diff_mb:>8.0f}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET:g})")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
