"""The ResNet50-sized models the benchmarks share, built once (weights=None, no download).

``resnet50.keras`` is written by Keras 3, ``resnet50_k2.h5`` by tf_keras (Keras 2); both are
cached in the temp directory so repeated benchmark runs skip the ~30 s build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "kinspect-bench"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
NAMES = ("resnet50_k2.h5", "resnet50.keras")

BUILD = r"""
import sys
out = sys.argv[1]
import keras, tf_keras
keras.applications.ResNet50(weights=None).save(out + "/resnet50.keras")
tf_keras.applications.ResNet50(weights=None).save(out + "/resnet50_k2.h5")
"""


def resnet50_files(cache: Path = CACHE) -> dict[str, Path]:
    """{name: path} for NAMES, building them first when any is missing."""
    cache.mkdir(parents=True, exist_ok=True)
    if not all((cache / name).exists() for name in NAMES):
        print(f"building ResNet50 files in {cache} (once) ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD, str(cache)], check=True, env=ENV)
    return {name: cache / name for name in NAMES}
