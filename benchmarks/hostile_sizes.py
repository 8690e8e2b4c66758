"""Peak memory and temp-file use of the static pass on small hostile files, at real size.

Usage: ``python benchmarks/hostile_sizes.py [--size GIB] [--code DIR] [--keep DIR]``.
Builds the size classes of ``fixtures/hostile_sizes.py`` at the issue's sizes (a 3 GiB gzip
chunk in a few-MB HDF5 file, a zip whose headers hide 3 GiB, a 57 MiB config.json of tiny
objects...) into a temp dir, runs each case in its own subprocess and prints that process's
peak RSS (``ru_maxrss`` from ``os.wait4``: the RUSAGE_CHILDREN figure of one child) and the
most bytes it held in temp files (its TMPDIR is polled, deleted-but-open files included),
each as a ratio to the same measure on a healthy model in the same run (the mlp ``.keras``
re-zipped deflated, so it spools a temp file too). Targets: RSS <= 1 GB and temp <= 2x the
model's size. ``--code DIR`` measures another checkout (e.g. ``git archive HEAD`` unpacked)
with the same cases. Cases for ``--inputs`` and the probe's SavedModel copy run the probe's
reader / copier functions (no TensorFlow needed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import hostile_sizes as fx  # noqa: E402
from hostile_crafted import write_zip, zip_members  # noqa: E402

GiB, MiB = 1 << 30, 1 << 20

STATIC = """
import sys
from inspector.run.pipeline import analyze_static
from inspector.errors import KinspectError
from inspector.options import Options
try:
    report = analyze_static(sys.argv[1], Options(probe=False))
    print("ok:", len(report.findings), "findings")
except KinspectError as exc:
    print("refused:", exc.one_line()[-150:])
"""

INPUTS = """
import sys
from inspector.probe.inputs import InputsError, InputSpec, load_real_inputs
try:
    real = load_real_inputs(sys.argv[1], [InputSpec("x", [None, 3], "float32")])
    print("ok:", real.count, "rows")
except InputsError as exc:
    print("refused:", str(exc)[-150:])
"""

COPY = """
import sys, tempfile
from pathlib import Path
try:
    from inspector.probe.private_copy import private_copy
except ImportError:  # older checkouts: the copy the probe made then
    import shutil
    def private_copy(src, dst):
        shutil.copytree(src, dst / src.name)
with tempfile.TemporaryDirectory() as tmp:
    try:
        private_copy(Path(sys.argv[1]), Path(tmp))
        print("ok: copied")
    except Exception as exc:
        print("refused:", str(exc)[-150:])
"""


@dataclass
class Case:
    name: str
    script: str
    build: Callable[[Path], None]
    suffix: str


@dataclass
class Measure:
    rss: int          # bytes
    temp: int         # bytes
    seconds: float
    model: int        # bytes on disk
    outcome: str


def _disk_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file()
                   and not p.is_symlink())
    return path.stat().st_size


def _temp_bytes(pid: int, tmpdir: Path) -> int:
    """Bytes in ``tmpdir``: files on disk plus deleted ones the process still holds open."""
    total = 0
    for p in tmpdir.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return total
    for fd in fds:
        try:
            target = os.readlink(fd)
            if target.startswith(str(tmpdir)) and target.endswith("(deleted)"):
                total += os.stat(fd).st_size
        except OSError:
            pass
    return total


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# A case past these is killed (and says so): an unfixed checkout must not take the machine.
KILL_RSS = 6 * GiB
KILL_TEMP = 4 * GiB
KILL_SECONDS = 120.0


def measure(script: str, path: Path, code: Path) -> Measure:
    tmpdir = Path(tempfile.mkdtemp(prefix="kinspect-bench-tmp-"))
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(code), KINSPECT_STRICT="0")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmpdir)
    peak_temp = 0
    killed = ""
    done = threading.Event()

    def poll() -> None:
        nonlocal peak_temp, killed
        while not done.is_set():
            peak_temp = max(peak_temp, _temp_bytes(proc.pid, tmpdir))
            why = ("temp" if peak_temp > KILL_TEMP else "RSS" if _rss_bytes(proc.pid) >
                   KILL_RSS else "time" if time.perf_counter() - start > KILL_SECONDS else "")
            if why and not killed:
                killed = f"killed by the benchmark: {why} over its limit"
                proc.kill()
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    proc.returncode = 0
    shutil.rmtree(tmpdir, ignore_errors=True)
    lines = [line for line in out.splitlines() if line.startswith(("ok:", "refused:"))]
    outcome = killed or (lines[-1] if lines else "crashed: " + out.strip()[-150:])
    return Measure(usage.ru_maxrss * 1024, peak_temp, seconds, _disk_size(path), outcome)


def _npz_bomb(size: int) -> Callable[[Path], None]:
    def build(dst: Path) -> None:
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z, \
                z.open("x.npy", "w", force_zip64=True) as out:
            np.lib.format.write_array_header_2_0(
                out, {"descr": "<f4", "fortran_order": False, "shape": (size // 12, 3)})
            for block in fx.zero_blocks(size):
                out.write(block)
    return build


def _csv_dev_zero(dst: Path) -> None:
    dst.symlink_to("/dev/zero")


def _savedmodel_dev_zero(dst: Path) -> None:
    shutil.copytree(ROOT / "fixtures" / "models" / "mlp" / "k2_savedmodel", dst)
    (dst / "variables" / "zero.data").symlink_to("/dev/zero")


def cases(size: int) -> list[Case]:
    config = 57 * MiB
    return [
        Case("hdf5: one gzip chunk", STATIC, lambda p: fx.big_chunk_h5(p, size), ".h5"),
        Case("hdf5: extendible chunk", STATIC,
             lambda p: fx.extendible_chunk_h5(p, size), ".h5"),
        Case("hdf5: lying chunk", STATIC, lambda p: fx.lying_chunk_h5(p, size), ".h5"),
        Case("zip: lying compress_size", STATIC, lambda p: fx.lying_zip(p, size), ".keras"),
        Case("config.json: tiny objects", STATIC, lambda p: fx.config_keras(
            p, fx.many_objects_config(config // 4)), ".keras"),
        Case("config.json: tiny strings", STATIC, lambda p: fx.config_keras(
            p, fx.many_values_config(config // 4)), ".keras"),
        Case("h5 model_config: objects", STATIC, lambda p: fx.config_h5(
            p, fx.many_objects_config(config // 4)), ".h5"),
        Case("--inputs: npz bomb", INPUTS, _npz_bomb(size), ".npz"),
        Case("--inputs: csv -> /dev/zero", INPUTS, _csv_dev_zero, ".csv"),
        Case("probe copy: link to /dev/zero", COPY, _savedmodel_dev_zero, ""),
    ]


def _build(index: int, path: Path, size: float) -> None:
    """Build a case in a child process. A child's ru_maxrss starts at its parent's RSS
    (vfork + exec keeps the parent's high-water mark), so this process must stay small."""
    subprocess.run([sys.executable, __file__, "--size", str(size), "--build", str(index),
                    str(path)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=3.0,
                        help="GiB each bomb inflates to (default 3)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="checkout whose inspector/ is measured (default: this one)")
    parser.add_argument("--keep", type=Path, help="build the cases here and keep them")
    parser.add_argument("--build", nargs=2, metavar=("INDEX", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = int(args.size * GiB)
    if args.build:  # one case, in its own process: see _build
        cases(size)[int(args.build[0])].build(Path(args.build[1]))
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="kinspect-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        base_path = work / "healthy_deflated.keras"
        write_zip(base_path, zip_members(fx.BASE_KERAS))  # deflated
        base = measure(STATIC, base_path, args.code)
        print(f"code: {args.code}")
        print(f"baseline (healthy mlp .keras, deflated, {base.model} B): peak RSS "
              f"{base.rss / MiB:.0f} MiB, temp {base.temp} B, {base.seconds:.2f} s")
        print(f"{'case':32} {'model':>9} {'peak RSS':>9} {'xbase':>6} {'temp':>10} "
              f"{'xbase':>6} {'xmodel':>6} {'secs':>6}  outcome")
        for i, case in enumerate(cases(size)):
            path = work / f"case{i:02d}{case.suffix}"
            if not path.exists() and not path.is_symlink():
                _build(i, path, args.size)
            m = measure(case.script, path, args.code)
            print(f"{case.name:32} {m.model / MiB:7.1f}Mi {m.rss / MiB:7.0f}Mi "
                  f"{m.rss / base.rss:6.1f} {m.temp / MiB:8.1f}Mi "
                  f"{m.temp / max(base.temp, 1):6.1f} {m.temp / max(m.model, 1):6.2f} "
                  f"{m.seconds:6.2f}  {m.outcome}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
