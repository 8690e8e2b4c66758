"""The TUI diff view: A's and B's layer trees side by side, changed layers marked.

It renders a diff report document (``DiffReport.to_dict()``, what the isolated diff worker
sends back as JSON) and computes nothing itself. Marks: ``~`` changed (config or weights),
``+`` only in B, ``-`` only in A, ``>`` renamed. Moving in one tree moves the other to the
paired layer; ``n`` / ``N`` jump to the next / previous layer that differs.

Everything taken from the files (paths, class names, keys, messages) is shown as plain text,
never as markup: a class name like ``X[/]`` would otherwise crash the view, and ``[@click]``
would make it clickable. The probe's outcome (a refusal by the trust gate included) is shown
under the two paths.
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from inspector.diff.report import probe_lines

MARKS = {"changed": ("~", "yellow"), "added": ("+", "green"), "removed": ("-", "red"),
         "same": (" ", "")}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
# Findings listed in the detail pane at once: wrapping tens of thousands of lines (a crafted
# pair with 50k renamed layers) would freeze the view for a minute; the rest is counted.
SHOWN_FINDINGS = 200


def mark(row: dict[str, Any]) -> tuple[str, str]:
    """The marker and style of a layer row (a renamed, otherwise unchanged layer: ``>``)."""
    if row["status"] == "same" and row.get("renamed"):
        return ">", "magenta"
    return MARKS[row["status"]]


class DiffTree(Tree[int]):
    """One side's layer tree; each node's data is its row index in ``doc["layers"]``."""

    DEFAULT_CSS = "DiffTree { width: 1fr; border: round $primary-darken-2; }"

    def __init__(self, doc: dict[str, Any], side: str, **kwargs: Any) -> None:
        title = os.path.basename(os.path.normpath(doc[side]["path"]))
        super().__init__(Text(f"{side.upper()}: {title}"), data=-1, **kwargs)
        self.side = side
        self.by_row: dict[int, TreeNode[int]] = {}
        nodes: dict[str, TreeNode[int]] = {}
        for i, row in enumerate(doc["layers"]):
            path = row[f"path_{side}"]
            if path is None:
                continue
            parent = nodes.get(path.rsplit("/", 1)[0], self.root)
            label = self._label(row, path)
            nodes[path] = self.by_row[i] = parent.add(label, data=i, expand=True)
        self.root.expand()
        self.show_root = True

    def _label(self, row: dict[str, Any], path: str) -> Text:
        symbol, style = mark(row)
        text = Text(f"{symbol} ", style=style)
        text.append(path.rsplit("/", 1)[-1], style=style or None)
        text.append(f" {row[f'class_{self.side}']}", style="dim")
        if row["changes"]:
            text.append(f"  {', '.join(row['changes'])}", style="italic")
        return text

    def labels(self) -> list[str]:
        """Every node's plain label in tree order (for tests and snapshots)."""
        return [str(self.by_row[i].label) for i in sorted(self.by_row)]

    def show_row(self, row: int) -> bool:
        node = self.by_row.get(row)
        if node is None:
            return False
        if self.cursor_node is not node:
            self.move_cursor(node)
        return True


class DiffApp(App[int]):
    TITLE = "kinspect diff"
    CSS = """
    #trees { height: 2fr; }
    #detail-scroll { height: 1fr; border: round $primary-darken-2; }
    #summary { height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("n", "next_change(1)", "Next change"),
        Binding("N", "next_change(-1)", "Previous change"),
        Binding("tab", "focus_next", "Other side", show=False),
    ]

    def __init__(self, doc: dict[str, Any]) -> None:
        super().__init__()
        self.doc = doc
        self.row = -1
        self.sub_title = (f"{os.path.basename(doc['a']['path'])} vs "
                          f"{os.path.basename(doc['b']['path'])}")

    def compose(self) -> ComposeResult:
        yield Static(self._summary(), id="summary")
        with Horizontal(id="trees"):
            yield DiffTree(self.doc, "a", id="tree-a")
            yield DiffTree(self.doc, "b", id="tree-b")
        with VerticalScroll(id="detail-scroll"):
            yield Static(self._findings_text(None), id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tree-a", DiffTree).focus()

    def _summary(self) -> Text:
        a, b = self.doc["a"], self.doc["b"]
        n = len(self.doc["findings"])
        text = Text(f"A {a['path']} ({a['format']})\nB {b['path']} ({b['format']})  ")
        if n == 0:
            text.append("no differences", style="green")
        else:
            text.append(f"{n} difference{'s' * (n != 1)}")
        probe = "\n".join(probe_lines(self.doc.get("probe"))).strip()
        if probe:
            text.append(f"\n{probe}")
        return text

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[int]) -> None:
        row = event.node.data
        if row is None or row < 0 or row == self.row:
            return
        self.row = row
        for tree in self.query(DiffTree):
            if tree is not event.control:
                tree.show_row(row)
        self.query_one("#detail", Static).update(self._row_text(row))

    def action_next_change(self, step: int) -> None:
        rows = self.doc["layers"]
        changed = [i for i, r in enumerate(rows) if mark(r)[0] != " "]
        if not changed:
            return
        after = [i for i in changed if (i - self.row) * step > 0]
        target = (after[0] if step > 0 else after[-1]) if after else (
            changed[0] if step > 0 else changed[-1])
        tree = self.query_one("#tree-b" if rows[target]["path_b"] else "#tree-a", DiffTree)
        tree.focus()
        tree.show_row(target)

    def _row_text(self, row: int) -> Text:
        r = self.doc["layers"][row]
        symbol, _ = mark(r)
        text = Text()
        text.append(r["path_a"] or "-", style="bold")
        text.append("  ->  ")
        text.append(r["path_b"] or "-", style="bold")
        text.append(f"   {r['status']}{' (renamed)' if r['renamed'] else ''} [{symbol}]\n")
        text.append(f"class {r['class_a'] or '-'} -> {r['class_b'] or '-'}; matched by "
                    f"{r['match']}\n")
        for c in self.doc["config_changes"]:
            if c["path"] == r["path_b"]:
                text.append(f"config {c['key']}: {c['a']!r} -> {c['b']!r}\n")
        layer = r["path_b"] or r["path_a"]
        for w in self.doc["weights"]["changes"]:
            if w["layer"] == layer:
                diff = w.get("max_abs_diff")
                text.append(f"weight {w['name']}: {w['status']}"
                            + (f", max abs diff {diff:.4g}" if diff is not None else "") + "\n")
        text.append("\n")
        text.append_text(self._findings_text({r["path_a"], r["path_b"]} - {None}))
        return text

    def _findings_text(self, layers: set[str] | None) -> Text:
        """All differences (``layers`` None) or those at the given layer paths."""
        chosen = [f for f in self.doc["findings"] if layers is None or f["layer"] in layers]
        if not chosen:
            return Text("no differences" if layers is None else "no differences at this layer")
        text = Text()
        for i, f in enumerate(chosen[:SHOWN_FINDINGS]):
            text.append("\n" if i else "")
            text.append(f"{f['severity']:<7}", style=SEVERITY_STYLE.get(f["severity"], ""))
            text.append(f" {f['code']} {f['rule']}  {f['message']}")
        if len(chosen) > SHOWN_FINDINGS:
            text.append(f"\n... and {len(chosen) - SHOWN_FINDINGS} more (all of them: "
                        "kinspect diff --format text)", style="dim")
        return text
