"""The layer tree on the left: nested models and wrappers expand, shared layers and findings
are marked, and ``/`` narrows it to layers whose name or class matches."""

from __future__ import annotations

from collections import defaultdict

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Tree
from textual.widgets.tree import TreeNode

from inspector.findings import SEVERITY_RANK
from inspector.graph import LayerNode, WeightInfo
from inspector.report.model import Report
from inspector.tui.formatting import SEVERITY_MARK, SEVERITY_STYLE, fmt_shape, styled
from inspector.tui.messages import LayerChosen

TreeData = LayerNode | str


def weight_groups(weights: list[WeightInfo]) -> dict[str, list[WeightInfo]]:
    """Loose weights (no architecture) grouped by the scope of their name (``dense`` for
    ``dense/kernel``), in file order: names, not storage keys, which are opaque in SavedModels
    (``variables/3/.ATTRIBUTES/VARIABLE_VALUE``) and Keras 3 files (``vars/0``)."""
    groups: dict[str, list[WeightInfo]] = defaultdict(list)
    for w in weights:
        folder = w.name.rsplit("/", 1)[0] if "/" in w.name else "/"
        groups[folder].append(w)
    return dict(groups)


class LayerTree(Tree[TreeData]):
    BINDINGS = [
        Binding("right", "expand_here", "Expand", show=False),
        Binding("left", "collapse_here", "Collapse", show=False),
    ]

    DEFAULT_CSS = """
    LayerTree { scrollbar-size-vertical: 1; }
    """

    def __init__(self, report: Report, **kwargs: object) -> None:
        graph = report.graph
        label = graph.root.name if graph.root is not None else "weights"
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.report = report
        self.filter_text = ""
        self._by_path: dict[str, TreeNode[TreeData]] = {}
        self._worst = _worst_by_layer(report)

    @property
    def weights_only(self) -> bool:
        g = self.report.graph
        return g.root is None or (not g.has_architecture and not g.root.children)

    def on_mount(self) -> None:
        self.rebuild()

    def refresh_markers(self) -> None:
        """Findings changed (the probe added some): relabel, keep the cursor where it is."""
        self._worst = _worst_by_layer(self.report)
        for tnode in self._by_path.values():
            if isinstance(tnode.data, LayerNode):
                tnode.set_label(self._label(tnode.data))

    def rebuild(self, filter_text: str = "") -> None:
        """Rebuild for ``filter_text``; the cursor stays on its layer when still shown."""
        current = self.cursor_node.data if self.cursor_node is not None else None
        keep = current.path if isinstance(current, LayerNode) else current
        self.filter_text = filter_text.strip().lower()
        self.clear()
        self._by_path.clear()
        graph = self.report.graph
        if self.weights_only:
            groups = weight_groups(graph.loose_weights
                                   or [w for _, w in graph.all_weights()])
            self.root.set_label(styled(f"weights ({len(groups)} groups)", "bold"))
            for group, ws in groups.items():
                if self.filter_text and self.filter_text not in group.lower():
                    continue
                leaf = self.root.add_leaf(styled(f"{group}  ", "bold").append(
                    f"{len(ws)} tensors", style="dim"), data=group)
                self._by_path[group] = leaf
        else:
            assert graph.root is not None
            self.root.data = graph.root
            self.root.set_label(self._label(graph.root))
            for child in graph.root.children:
                self._add(self.root, child)
        self.root.expand()
        if isinstance(keep, str) and keep in self._by_path:
            self.select_path(keep)
        else:
            self.cursor_line = 0  # the root; its line number is only known after a refresh

    def _add(self, parent: TreeNode[TreeData], node: LayerNode) -> None:
        if self.filter_text and not _subtree_matches(node, self.filter_text):
            return
        if node.children:
            branch = parent.add(self._label(node), data=node,
                                expand=bool(self.filter_text))
            self._by_path[node.path] = branch
            for child in node.children:
                self._add(branch, child)
        else:
            self._by_path[node.path] = parent.add_leaf(self._label(node), data=node)

    def _label(self, node: LayerNode) -> Text:
        text = Text()
        worst = self._worst.get(node.path)
        if worst:
            text.append(SEVERITY_MARK[worst] + " ", style=SEVERITY_STYLE[worst])
        text.append(node.name, style="bold")
        text.append(f" {node.class_name}", style="dim")
        if node.output_shape is not None:
            text.append(f" {fmt_shape(node.output_shape)}")
        if node.shared:
            text.append(f" ⇄x{len(node.calls)}", style="italic magenta")
        if node.children:
            inside = [self._worst.get(n.path) for n in node.walk() if n is not node]
            inside_worst = max((s for s in inside if s), key=SEVERITY_RANK.__getitem__,
                               default=None)
            if inside_worst:
                text.append(f" ({SEVERITY_MARK[inside_worst]} inside)",
                            style=SEVERITY_STYLE[inside_worst])
        return text

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[TreeData]) -> None:
        event.stop()
        data = event.node.data
        if isinstance(data, LayerNode):
            self.post_message(LayerChosen(path=data.path))
        elif isinstance(data, str):
            self.post_message(LayerChosen(path=None, group=data))
        else:
            self.post_message(LayerChosen(path=None))

    def action_expand_here(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_collapse_here(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def select_path(self, path: str) -> bool:
        """Put the cursor on ``path``, clearing a filter that hides it; False if unknown."""
        if path not in self._by_path and self.filter_text:
            self.rebuild("")
        tnode = self._by_path.get(path)
        if tnode is None:
            return False
        parent = tnode.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        # Expanding changes the tree's lines; the node has its line after the next refresh.
        self.call_after_refresh(self.move_cursor, tnode)
        return True

    def paths(self) -> list[str]:
        return list(self._by_path)


def _subtree_matches(node: LayerNode, needle: str) -> bool:
    return any(needle in n.name.lower() or needle in n.class_name.lower() for n in node.walk())


def _worst_by_layer(report: Report) -> dict[str, str]:
    worst: dict[str, str] = {}
    for f in report.findings:
        if f.layer is None:
            continue
        current = worst.get(f.layer)
        if current is None or SEVERITY_RANK.get(f.severity, 0) > SEVERITY_RANK[current]:
            worst[f.layer] = f.severity
    return worst


class TreePane(Vertical):
    """The tree plus its filter box (hidden until ``/``)."""

    DEFAULT_CSS = """
    TreePane #layer-filter { display: none; }
    TreePane.filtering #layer-filter { display: block; }
    """

    def __init__(self, report: Report, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.report = report

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: name or class", id="layer-filter")
        yield LayerTree(self.report, id="layer-tree")

    @property
    def layer_tree(self) -> LayerTree:
        return self.query_one(LayerTree)

    def open_filter(self) -> None:
        self.add_class("filtering")
        self.query_one(Input).focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.query_one(Input).has_focus:
            event.stop()
            self.clear_filter()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value.strip().lower() != self.layer_tree.filter_text:
            self.layer_tree.rebuild(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.remove_class("filtering")
        self.layer_tree.focus()

    def clear_filter(self) -> None:
        box = self.query_one(Input)
        box.value = ""
        self.layer_tree.rebuild("")
        self.remove_class("filtering")
        self.layer_tree.focus()
