"""The run layer's shape: every module imports on its own, and no import cycle ties the CLI,
the run layer and the TUI together again (it used to be cli <-> batch <-> workers <-> tui)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "inspector"
RUN_MODULES = sorted(f"inspector.run.{p.stem}" for p in (PACKAGE / "run").glob("*.py")
                     if p.stem != "__init__")
WATCHED = {"inspector.cli", "inspector.tui.app", "inspector.run", *RUN_MODULES}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> inspector modules it imports anywhere in its body (lazy imports too, not
    those under ``if TYPE_CHECKING:``)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # imports for type checkers only never run
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
                node.body = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def cycles_through(graph: dict[str, set[str]], watched: set[str]) -> list[list[str]]:
    """Strongly connected components (Tarjan) of more than one module that hold a watched one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 and watched & set(component):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_through_cli_run_layer_or_tui() -> None:
    graph = import_graph()
    assert set(RUN_MODULES) <= set(graph)
    assert cycles_through(graph, WATCHED) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    """The checker itself: a planted cycle through a watched module is reported."""
    graph = {"inspector.cli": {"inspector.run.command"},
             "inspector.run.command": {"inspector.tui.app"},
             "inspector.tui.app": {"inspector.cli"}, "inspector.graph": set()}
    assert cycles_through(graph, WATCHED) == [
        ["inspector.cli", "inspector.run.command", "inspector.tui.app"]]


@pytest.mark.parametrize("module", ["inspector.cli", "inspector.run", *RUN_MODULES])
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    """No hidden order dependency, and the run layer never imports TensorFlow."""
    code = (f"import sys, {module}; "
            "sys.exit(3 if 'tensorflow' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_exit_codes_are_defined_once() -> None:
    """Only inspector/run/exit_codes.py assigns the EXIT_* constants."""
    owners = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                if any(n.startswith("EXIT_") for n in names):
                    owners.add(str(path.relative_to(ROOT)))
    assert owners == {"inspector/run/exit_codes.py"}
