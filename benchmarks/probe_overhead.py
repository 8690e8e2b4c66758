"""Probe wall time vs a bare ``import tensorflow; load_model; predict`` on the same inputs.

Usage: ``python benchmarks/probe_overhead.py [--samples-small N] [--samples-large N]
[--runs N] [--device cpu|gpu|auto]``. Two models: the small ``cnn_bn`` fixture and a
ResNet50 (``keras.applications``, ``weights=None``, built once and cached in the temp dir).
Both sides run as fresh subprocesses (interpreter start-up, TensorFlow import and model load
included on both); the bare side predicts exactly the batches the probe generates (every
distribution, same seed). Prints each wall time (best of ``--runs``) and the ratio
probe / bare (target <= 1.5x), plus the probe's own per-stage timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures" / "models" / "cnn_bn" / "k3.keras"
CACHE = Path(tempfile.gettempdir()) / "kinspect-bench"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

BUILD_RESNET = """
import sys, keras
keras.applications.ResNet50(weights=None).save(sys.argv[1])
"""

# The bare baseline: what a user would type, fed the probe's own random batches.
BARE = """
import json, sys, time
start = time.perf_counter()
import keras, tensorflow as tf
from inspector.probe.inputs import InputSpec, distributions_for, random_batch
path, samples, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if device == "cpu":
    tf.config.set_visible_devices([], "GPU")
model = keras.saving.load_model(path, compile=False)
specs = [InputSpec(str(t.name), list(t.shape), t.dtype if isinstance(t.dtype, str)
                   else t.dtype.name) for t in model.inputs]
for dist in distributions_for(specs):
    batch = random_batch(specs, dist, samples, 0)
    model.predict(batch[0] if len(batch) == 1 else batch, verbose=0, batch_size=32)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def resnet50() -> Path:
    target = CACHE / "resnet50.keras"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"building {target} (once) ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD_RESNET, str(target)], check=True, env=ENV)
    return target


def bare_seconds(path: Path, samples: int, device: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE, str(path), str(samples), device], check=True,
                   env=ENV, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start


def probe_seconds(path: Path, samples: int, device: str) -> tuple[float, dict[str, float]]:
    plan = {"path": str(path), "options": {"samples": samples, "seed": 0, "device": device}}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "inspector.probe", "-"], input=json.dumps(plan),
                         env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    last = json.loads(out.stdout.strip().splitlines()[-1])
    if last.get("event") != "result":
        sys.exit(f"probe failed on {path}: {last}\n{out.stderr[-2000:]}")
    return elapsed, last["probe"]["timings"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples-small", type=int, default=64)
    parser.add_argument("--samples-large", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = parser.parse_args(argv)
    models = [("small cnn_bn", SMALL, args.samples_small),
              ("ResNet50", resnet50(), args.samples_large)]
    for name, path, samples in models:
        runs = max(1, args.runs)
        bare = min(bare_seconds(path, samples, args.device) for _ in range(runs))
        probe, timings = min(probe_seconds(path, samples, args.device) for _ in range(runs))
        size = path.stat().st_size / 1e6
        print(f"{name} ({size:.1f} MB, {samples} samples x 4 ranges, {args.device}): "
              f"bare {bare:.2f} s, probe {probe:.2f} s, ratio {probe / bare:.2f}x")
        print("   probe stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(
            timings.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
