"""Real architectures are healthy: keras.applications models give zero ``error`` findings.

Each model is built with ``weights=None`` (no download), trained for one step on random local
data, and saved by Keras 3 (``.keras`` and ``.h5``) and, for a few, by tf_keras (``.h5``), in
a child process; the static pass then runs here. The CI set is a representative sample;
``KINSPECT_ALL_APPLICATIONS=1`` builds every architecture keras.applications offers.

"One step" is ``fit()`` (optimizer state and step count saved, as in a real training) for the
FIT_SET, and an eager ``model(x, training=True)`` call for the others: it moves the
BatchNormalization statistics the same way without tracing a training graph, which cost
15-50 s per architecture on 2 cores (the whole sweep took 6.5 minutes of CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inspector.options import Options
from inspector.run.pipeline import analyze_static

pytestmark = [pytest.mark.tf, pytest.mark.slow]

# (name, input side): the smallest input each architecture accepts keeps the build fast.
CI_SET = [
    ("MobileNetV2", 32), ("MobileNetV3Small", 32), ("EfficientNetB0", 32), ("ResNet50", 32),
    ("DenseNet121", 32), ("InceptionV3", 75), ("Xception", 71), ("ConvNeXtTiny", 32),
    ("VGG16", 32), ("NASNetMobile", 32),
]
TF_KERAS_SET = ["MobileNetV2", "EfficientNetB0", "ResNet50"]
FIT_SET = {("k3", "MobileNetV2"), ("k3", "ResNet50"), ("k3", "ConvNeXtTiny"),
           ("k2", "MobileNetV2")}

BUILD = textwrap.dedent(r"""
    import json, os, sys
    import numpy as np
    out, spec, fit = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    import keras, tf_keras
    written = []
    for flavor, name, side in spec:
        K = keras if flavor == "k3" else tf_keras
        shape = (side, side, 3)
        model = getattr(K.applications, name)(weights=None, input_shape=shape, classes=5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, size=(4, *shape)).astype("float32")
        y = rng.integers(0, 5, size=(4,))
        if [flavor, name] in fit:
            model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        else:
            model(x, training=True)
        exts = [".keras", ".h5"] if flavor == "k3" else [".h5"]
        for ext in exts:
            path = os.path.join(out, f"{flavor}_{name}{ext}")
            model.save(path)
            written.append(path)
        K.backend.clear_session()
    print(json.dumps(written))
""")


def _all_k3_applications() -> list[tuple[str, int]]:
    code = ("import keras, json; print(json.dumps(sorted(n for n in dir(keras.applications) "
            "if n[0].isupper())))")
    names = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True).stdout.strip().splitlines()[-1])
    sides = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
    return [(n, sides.get(n, 32)) for n in names]


@pytest.fixture(scope="module")
def application_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("applications")
    k3 = _all_k3_applications() if os.environ.get("KINSPECT_ALL_APPLICATIONS") else CI_SET
    spec = [("k3", n, s) for n, s in k3] + [("k2", n, dict(CI_SET)[n]) for n in TF_KERAS_SET]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    fit = json.dumps(sorted(FIT_SET))
    done = subprocess.run([sys.executable, "-c", BUILD, str(out), json.dumps(spec), fit],
                          capture_output=True, text=True, env=env, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_applications_give_no_error_findings(application_files: list[str]) -> None:
    assert len(application_files) >= 2 * len(CI_SET) + len(TF_KERAS_SET)
    problems = {}
    for path in application_files:
        report = analyze_static(path, Options(probe=False))
        errors = [f"{f.rule} @ {f.layer}: {f.message}" for f in report.findings
                  if f.severity == "error"]
        if errors or report.errors:
            problems[Path(path).name] = errors + [e["message"] for e in report.errors]
        assert report.graph.params.total > 0
    assert not problems, json.dumps(problems, indent=1)
