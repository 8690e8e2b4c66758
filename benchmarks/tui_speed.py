"""How fast the TUI shows a ResNet50-sized model and how fast the cursor walks its layers.

Prints ratios against baselines measured in the same run, so figures compare across machines:

- time-to-tree vs a bare ``open_model`` of the same file (the TUI adds rules, stats, widgets);
- cursor key presses per second vs a plain Textual ``Tree`` with as many nodes (what Textual
  itself costs), with the Config tab and with the Weights tab open.

The model is built by ``keras.applications.ResNet50(weights=None)`` in a child process (this
process never imports TensorFlow, like the TUI) and saved to a temporary ``.h5``.

    python benchmarks/tui_speed.py [--model PATH.h5] [--presses N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Tree

from inspector.options import Options
from inspector.readers import open_model
from inspector.run.pipeline import analyze_static
from inspector.tui.app import KinspectApp, create_app
from inspector.tui.widgets.layer_tree import LayerTree

SIZE = (120, 40)
BUILD = (
    "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
    "import keras, sys\n"
    "keras.applications.ResNet50(weights=None).save(sys.argv[1])\n"
)


def build_resnet50(target: Path) -> None:
    subprocess.run([sys.executable, "-c", BUILD, str(target)], check=True)


def time_open(path: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        graph = open_model(path)
        times.append(time.perf_counter() - t0)
        if graph.close is not None:
            graph.close()
    return statistics.median(times)


FIRST_PAINT: list[float] = []


def _record_first_paint(on_ready: Callable[[KinspectApp], None]) -> Callable[[KinspectApp], None]:
    """Textual posts Ready right after the first frame is composed: the tree is on screen."""

    def hooked(app: KinspectApp) -> None:
        FIRST_PAINT.append(time.perf_counter())
        on_ready(app)

    return hooked


KinspectApp.on_ready = _record_first_paint(KinspectApp.on_ready)  # type: ignore[method-assign]


async def time_to_tree(path: str) -> tuple[float, float, int]:
    """Seconds until the tree is on screen, until the rule findings are, and tree rows."""
    t0 = time.perf_counter()
    app = create_app(path, Options(probe=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        count = len(app.query_one(LayerTree).paths())
        to_tree = FIRST_PAINT[-1] - t0
        while app.analysing:
            await pilot.pause(0.005)
        to_findings = time.perf_counter() - t0
    return to_tree, to_findings, count


async def bare_startup(rows: int) -> float:
    """Seconds until a plain Textual Tree app with ``rows`` rows is on screen."""
    t0 = time.perf_counter()
    app = BareTreeApp(rows)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        return app.first_paint - t0


async def walk(app: App[object], presses: int, setup: list[str]) -> float:
    """Presses per second of ``down`` then ``up`` through the tree (after the rules ran)."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        while isinstance(app, KinspectApp) and app.analysing:
            await pilot.pause(0.01)
        if setup:
            await pilot.press(*setup)
        t0 = time.perf_counter()
        for i in range(presses):
            await pilot.press("down" if i < presses // 2 else "up")
        await pilot.pause()
        return presses / (time.perf_counter() - t0)


class BareTreeApp(App[None]):
    """The baseline: Textual's own Tree with the same number of rows, nothing else."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows
        self.first_paint = 0.0

    def on_ready(self) -> None:
        self.first_paint = time.perf_counter()

    def compose(self) -> ComposeResult:
        tree: Tree[None] = Tree("model")
        for i in range(self.rows):
            tree.root.add_leaf(f"layer_{i} Conv2D (None, 56, 56, 64)")
        tree.root.expand()
        yield tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an existing .h5/.keras file instead of ResNet50")
    parser.add_argument("--presses", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            path = os.path.join(tmp, "resnet50.h5")
            t0 = time.perf_counter()
            build_resnet50(Path(path))
            print(f"built ResNet50 (weights=None) in {time.perf_counter() - t0:.1f}s: "
                  f"{os.path.getsize(path) / 1e6:.0f} MB")
        base_open = time_open(path, args.repeats)
        runs = [asyncio.run(time_to_tree(path)) for _ in range(args.repeats)]
        rows = runs[0][2]
        tree_time = statistics.median(r[0] for r in runs)
        findings_time = statistics.median(r[1] for r in runs)
        t0 = time.perf_counter()
        analyze_static(path, Options(probe=False))
        static_time = time.perf_counter() - t0
        bare_start = statistics.median(asyncio.run(bare_startup(rows))
                                       for _ in range(args.repeats))
        baseline = base_open + bare_start
        print(f"layers in the tree: {rows}")
        print(f"baseline open_model:          {base_open * 1000:8.1f} ms")
        print(f"baseline bare Tree app start: {bare_start * 1000:8.1f} ms")
        print(f"time to tree on screen:       {tree_time * 1000:8.1f} ms  "
              f"= {tree_time / baseline:.2f}x (open_model + bare Tree app start)")
        print(f"time to rule findings shown:  {findings_time * 1000:8.1f} ms  "
              f"= {findings_time / base_open:.2f}x open_model "
              f"(analyze_static alone: {static_time / base_open:.2f}x)")

        presses = max(args.presses, 2 * rows)
        bare = asyncio.run(walk(BareTreeApp(rows), presses, []))
        config = asyncio.run(walk(create_app(path, Options(probe=False)), presses, []))
        weights = asyncio.run(walk(create_app(path, Options(probe=False)), presses, ["2"]))
        print(f"baseline bare Tree cursor:    {bare:8.0f} presses/s")
        print(f"kinspect cursor, Config tab:  {config:8.0f} presses/s  "
              f"= {config / bare:.2f}x bare Tree ({1000 / config:.1f} ms per press)")
        print(f"kinspect cursor, Weights tab: {weights:8.0f} presses/s  "
              f"= {weights / bare:.2f}x bare Tree ({1000 / weights:.1f} ms per press)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
