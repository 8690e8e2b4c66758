"""Probe wall time vs a bare ``import tensorflow; load_model; predict`` on the same inputs.

Usage: ``python benchmarks/probe_overhead.py [--runs N] [--samples N] [--short N]
[--device cpu|gpu|auto]``.

Cases, each timed in fresh subprocesses (interpreter start-up, TensorFlow import and model
load included on both sides; the bare side predicts exactly the batches the probe generates,
every input range, same seed):

- the small ``cnn_bn`` fixture,
- ResNet50 (``weights=None``) saved by Keras 3 as ``.keras``, and by Keras 2 (tf_keras) as
  ``.h5`` (the probe's save/load round trip then has to reload: see archive_compare),

all at ``--samples`` per range (default 64, the probe's own default: what ``kinspect
model.keras`` runs), plus the ResNet50 ``.keras`` at ``--short`` samples (default 16), where
the probe's fixed costs weigh most. Prints each wall time (best of ``--runs``), the ratio
probe / bare (target <= 1.5x) and the probe's own per-stage timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from resnet_cache import ENV, resnet50_files

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures" / "models" / "cnn_bn" / "k3.keras"
TARGET = 1.5

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


def env_for(device: str) -> dict[str, str]:
    """The shared benchmark environment hides GPUs; a GPU run must see them."""
    return ENV if device == "cpu" else {k: v for k, v in ENV.items()
                                        if k != "CUDA_VISIBLE_DEVICES"}


def bare_seconds(path: Path, samples: int, device: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE, str(path), str(samples), device], check=True,
                   env=env_for(device), cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start


def probe_seconds(path: Path, samples: int, device: str) -> tuple[float, dict[str, Any]]:
    plan = {"path": str(path), "options": {"samples": samples, "seed": 0, "device": device}}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "inspector.probe", "-"], input=json.dumps(plan),
                         env=env_for(device), cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    last = json.loads(out.stdout.strip().splitlines()[-1])
    if last.get("event") != "result":
        sys.exit(f"probe failed on {path}: {last}\n{out.stderr[-2000:]}")
    return elapsed, last["probe"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64, help="per input range (default 64)")
    parser.add_argument("--short", type=int, default=16,
                        help="samples of the extra short ResNet50 run (0: none)")
    parser.add_argument("--runs", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = parser.parse_args(argv)
    resnet = resnet50_files()
    cases = [("small cnn_bn .keras", SMALL, args.samples),
             ("ResNet50 .keras (Keras 3)", resnet["resnet50.keras"], args.samples),
             ("ResNet50 .h5 (Keras 2)", resnet["resnet50_k2.h5"], args.samples)]
    if args.short:
        cases.append(("ResNet50 .keras, short", resnet["resnet50.keras"], args.short))
    verdicts = []
    for name, path, samples in cases:
        runs = max(1, args.runs)
        bare = min(bare_seconds(path, samples, args.device) for _ in range(runs))
        probe, section = min((probe_seconds(path, samples, args.device) for _ in range(runs)),
                             key=lambda r: r[0])
        ratio = probe / bare
        verdicts.append(ratio <= TARGET)
        size = path.stat().st_size / 1e6
        print(f"{name} ({size:.1f} MB, {samples} samples x 4 ranges, {section['device']}): "
              f"bare {bare:.2f} s, probe {probe:.2f} s (+{probe - bare:.2f} s), "
              f"ratio {ratio:.2f}x")
        print("   probe stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(
            section["timings"].items(), key=lambda kv: -kv[1])))
        print(f"   check sizes: {section['check_sizes']}; round trip: "
              f"{section['checks']['roundtrip'].get('compared', 'n/a')}", flush=True)
    met = sum(verdicts)
    print(f"target probe <= {TARGET}x bare: met in {met} of {len(verdicts)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
