"""The static path never imports TensorFlow or Keras: open_model + stats on every fixture."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from inspector.readers import open_model
    from inspector.stats import StatsCache
    opened = 0
    weights = 0
    for p in sorted(Path(sys.argv[1]).glob("*/*")):
        if p.name.startswith("reference") or p.suffix == ".json":
            continue
        graph = open_model(p)
        cache = StatsCache()
        for _, w in graph.all_weights():
            if cache.get(w) is not None:
                weights += 1
        if graph.close:
            graph.close()
        opened += 1
    banned = sorted(m for m in sys.modules
                    if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    print(json.dumps({"opened": opened, "weights": weights, "banned": banned}))
""")


def test_static_path_imports_no_tensorflow() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "fixtures" / "models")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["banned"] == []
    assert result["opened"] >= 20
    assert result["weights"] > 0
