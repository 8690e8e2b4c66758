"""Static diff of two ResNet50 files vs one static inspection (target: ratio <= 2).

For each cached ResNet50 (``resnet_cache.py``: a Keras 3 ``.keras`` and a Keras 2 ``.h5``),
changed copies are written once next to it (with h5py and zipfile, no TensorFlow):

- ``partial``: noise on three conv kernels and one BN layer's moving statistics reset, the
  rest untouched (a fine-tune with a frozen base; a resave is the extreme case);
- ``all``: noise on every float tensor (a full retrain: no tensor is the same on both sides,
  so nothing of one side's statistics can be reused for the other).

Then, in fresh processes, alternately (so both see the same machine load, which other work
on the machine can change from one second to the next):

- ``kinspect --json --no-probe A`` (one static inspection: weight statistics + all rules),
- ``kinspect diff --json --no-probe A B`` (both files: matching, per-tensor comparison,
  rules on each side),

and prints median wall times, peak RSS, the ratio diff / single against the target and the
load average. Usage: ``python benchmarks/diff_speed.py [--repeat N] [--cache DIR]``.
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
from collections.abc import Callable
from pathlib import Path

from resnet_cache import CACHE, ENV, resnet50_files

TARGET = 2.0
VARIANTS = ("partial", "all")


def _perturb_partial(f: object) -> None:
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


def _perturb_all(f: object) -> None:
    """Noise on every float tensor (zero biases too; moving variances near 1 stay positive)."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(1)
    tensors: list[h5py.Dataset] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" and obj.size:
            tensors.append(obj)

    f.visititems(visit)  # type: ignore[attr-defined]
    for ds in tensors:
        ds[...] = ds[...] + rng.normal(0, 1e-3, ds.shape).astype(ds.dtype)


PERTURB: dict[str, Callable[[object], None]] = {"partial": _perturb_partial,
                                                "all": _perturb_all}
SUFFIX = {"partial": "_perturbed", "all": "_all_changed"}


def perturbed_copy(src: Path, variant: str = "partial") -> Path:
    dst = src.with_name(src.stem + SUFFIX[variant] + src.suffix)
    if dst.exists():
        return dst
    import h5py

    perturb = PERTURB[variant]
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    if src.suffix == ".h5":
        shutil.copyfile(src, tmp)
        with h5py.File(tmp, "r+") as f:
            perturb(f)
    else:  # .keras: the weights live in the archive member model.weights.h5
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "model.weights.h5":
                    buf = io.BytesIO(data)
                    with h5py.File(buf, "r+") as f:
                        perturb(f)
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


def measure_pair(single_argv: list[str], diff_argv: list[str], repeat: int
                 ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(median s, peak MB) of each command, their runs interleaved."""
    runs: dict[str, list[tuple[float, float, int]]] = {"single": [], "diff": []}
    for _ in range(repeat):
        runs["single"].append(run_measured(single_argv))
        runs["diff"].append(run_measured(diff_argv))
    out = []
    for name, argv in (("single", single_argv), ("diff", diff_argv)):
        codes = {code for _, _, code in runs[name]}
        if codes - {0, 1}:
            raise SystemExit(f"{' '.join(argv)} exited {codes}")
        out.append((statistics.median(r[0] for r in runs[name]),
                    max(r[1] for r in runs[name])))
    return out[0], out[1]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    kinspect = [sys.executable, "-m", "inspector"]
    worst = 0.0
    print(f"load average before: {_load()} ({os.cpu_count()} CPUs)")
    print(f"{'file':<16} {'B':<8} {'single s':>9} {'diff s':>8} {'ratio':>6} {'single MB':>10} "
          f"{'diff MB':>8}  target <= {TARGET:g}")
    for name, path in resnet50_files(args.cache).items():
        for variant in VARIANTS:
            other = perturbed_copy(path, variant)
            (single, single_mb), (diff, diff_mb) = measure_pair(
                [*kinspect, "--json", "--no-probe", str(path)],
                [*kinspect, "diff", "--json", "--no-probe", str(path), str(other)],
                args.repeat)
            ratio = diff / single
            worst = max(worst, ratio)
            verdict = "pass" if ratio <= TARGET else "FAIL"
            print(f"{name:<16} {variant:<8} {single:>9.2f} {diff:>8.2f} {ratio:>6.2f} "
                  f"{single_mb:>10.0f} {diff_mb:>8.0f}  {verdict}")
    print(f"load average after: {_load()}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET:g}): "
          f"{'pass' if worst <= TARGET else 'FAIL'}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
