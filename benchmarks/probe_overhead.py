"""Probe wall time at default settings vs a bare ``import tensorflow; load_model; predict``.

Usage: ``python benchmarks/probe_overhead.py [--runs N] [--samples N] [--device cpu|gpu|auto]``.

Cases, each timed in fresh subprocesses (interpreter start-up, TensorFlow import and model
load included on both sides):

- the small ``cnn_bn`` fixture,
- ResNet50 (``weights=None``, ~3.9e9 multiply-accumulates a sample) saved by Keras 3 as
  ``.keras`` and by Keras 2 (tf_keras) as ``.h5`` (the probe's save/load round trip then has
  to reload: see archive_compare),
- a Conv3D video classifier of similar size (~26 M parameters, ~4e9 multiply-accumulates a
  sample on 16x112x112x3 clips), built once and cached next to the ResNet50 files.

The probe runs with the plan ``kinspect`` itself builds (``build_plan``: static cost estimate,
token-id hints) and, unless ``--samples`` is given, the default sample count, which the
static cost scales down for big models. The bare side predicts exactly the random batches
the probe predicted (same ranges, same sample count, same seed). Prints each wall time
(best of ``--runs``), the ratio probe / bare, and whether the probe met the absolute target
(ResNet50 .keras: <= 30 s on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from resnet_cache import CACHE, ENV, resnet50_files

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inspector.options import Options  # noqa: E402
from inspector.probe.runner import build_plan  # noqa: E402
from inspector.readers import open_model  # noqa: E402

SMALL = ROOT / "fixtures" / "models" / "cnn_bn" / "k3.keras"
TARGET_RATIO = 1.5
TARGET_SECONDS = 30.0
CONV3D = CACHE / "conv3d_video.keras"

# The bare baseline: what a user would type, fed the probe's own random batches.
BARE = """
import sys
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
"""

BUILD_CONV3D = r"""
import sys
import keras
from keras import layers
inp = keras.Input(shape=(16, 112, 112, 3))
x = layers.Conv3D(32, 3, padding="same", activation="relu")(inp)
x = layers.MaxPooling3D((1, 2, 2))(x)
for filters in (64, 128, 256):
    x = layers.Conv3D(filters, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling3D(2)(x)
x = layers.Flatten()(x)
x = layers.Dense(1024, activation="relu")(x)
out = layers.Dense(10, activation="softmax")(x)
keras.Model(inp, out).save(sys.argv[1])
"""


def conv3d_file() -> Path:
    """The Conv3D model, built once (random weights, no download) into the benchmark cache."""
    if not CONV3D.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"building {CONV3D.name} in {CACHE} (once) ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD_CONV3D, str(CONV3D)], check=True, env=ENV)
    return CONV3D


def env_for(device: str) -> dict[str, str]:
    """The shared benchmark environment hides GPUs; a GPU run must see them."""
    return ENV if device == "cpu" else {k: v for k, v in ENV.items()
                                        if k != "CUDA_VISIBLE_DEVICES"}


def bare_seconds(path: Path, samples: int, device: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE, str(path), str(samples), device], check=True,
                   env=env_for(device), cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start


def probe_seconds(path: Path, samples: int | None,
                  device: str) -> tuple[float, dict[str, Any]]:
    """Wall time of the probe child on the plan the CLI would build."""
    graph = open_model(path)
    try:
        plan = build_plan(graph, Options(samples=samples, device=device, probe_memory_mb=None))
    finally:
        if graph.close is not None:
            graph.close()
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "inspector.probe", "-"], input=json.dumps(plan),
                         env=env_for(device), cwd=ROOT, capture_output=True, text=True,
                         check=False)
    elapsed = time.perf_counter() - start
    last = json.loads(out.stdout.strip().splitlines()[-1])
    if last.get("event") != "result":
        sys.exit(f"probe failed on {path}: {last}\n{out.stderr[-2000:]}")
    return elapsed, last["probe"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None,
                        help="per input range (default: the probe's own choice)")
    parser.add_argument("--runs", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    args = parser.parse_args(argv)
    resnet = resnet50_files()
    cases = [("small cnn_bn .keras", SMALL),
             ("ResNet50 .keras (Keras 3)", resnet["resnet50.keras"]),
             ("ResNet50 .h5 (Keras 2)", resnet["resnet50_k2.h5"]),
             ("Conv3D video .keras (Keras 3)", conv3d_file())]
    ratios, absolute = [], []
    for name, path in cases:
        if args.only and args.only not in name:
            continue
        runs = max(1, args.runs)
        probe, section = min((probe_seconds(path, args.samples, args.device)
                              for _ in range(runs)), key=lambda r: r[0])
        samples = int(section["samples"])
        ranges = len(section["distributions"])
        bare = min(bare_seconds(path, samples, args.device) for _ in range(runs))
        ratio = probe / bare
        ratios.append(ratio <= TARGET_RATIO)
        if "ResNet50 .keras" in name:
            absolute.append(probe <= TARGET_SECONDS)
        size = path.stat().st_size / 1e6
        print(f"{name} ({size:.1f} MB, {samples} samples x {ranges} ranges, "
              f"{section['device']}): bare {bare:.2f} s, probe {probe:.2f} s "
              f"(+{probe - bare:.2f} s), ratio {ratio:.2f}x")
        print(f"   samples: {section.get('samples_chosen')}")
        print("   probe stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(
            section["timings"].items(), key=lambda kv: -kv[1])))
        print(f"   check sizes: {section['check_sizes']}; round trip: "
              f"{section['checks']['roundtrip'].get('compared', 'n/a')}", flush=True)
    print(f"target probe <= {TARGET_RATIO}x bare: met in {sum(ratios)} of {len(ratios)} cases")
    if absolute:
        print(f"target ResNet50 .keras probe <= {TARGET_SECONDS:g} s: "
              f"{'met' if all(absolute) else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
