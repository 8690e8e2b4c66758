"""Pair the layers of two graphs: by nested path first, then by class + position.

A resave or a format conversion keeps layer names, so most layers pair by name inside their
parent model (which gives the same nested path). Layers left over on both sides pair when they
have the same class, in order of appearance (a renamed layer keeps its class and place);
whatever is still left is added (only in B) or removed (only in A), with its descendants.
The probe diff pairs activations with the same pairs.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from inspector.graph import LayerNode, ModelGraph

BY_PATH, BY_POSITION, ADDED, REMOVED = "path", "position", "added", "removed"


@dataclass(frozen=True)
class LayerPair:
    """One layer of A and its counterpart in B (None on the side that lacks it)."""

    a: LayerNode | None
    b: LayerNode | None
    how: str  # BY_PATH, BY_POSITION, ADDED or REMOVED

    @property
    def path_a(self) -> str | None:
        return self.a.path if self.a is not None else None

    @property
    def path_b(self) -> str | None:
        return self.b.path if self.b is not None else None

    @property
    def path(self) -> str:
        """B's path when B has the layer (the newer name), else A's."""
        node = self.b if self.b is not None else self.a
        assert node is not None
        return node.path

    @property
    def matched(self) -> bool:
        return self.a is not None and self.b is not None

    @property
    def renamed(self) -> bool:
        return self.matched and self.a.name != self.b.name  # type: ignore[union-attr]


def match_layers(graph_a: ModelGraph, graph_b: ModelGraph) -> list[LayerPair]:
    """Every layer of both graphs at every depth, paired, in file order (A's order, with B's
    added layers placed after their preceding sibling). Empty when either graph has no
    layer tree (weights-only files, SavedModels without Keras metadata)."""
    if graph_a.root is None or graph_b.root is None:
        return []
    pairs: list[LayerPair] = []
    _match_children(graph_a.root, graph_b.root, pairs)
    return pairs


def pair_index(pairs: list[LayerPair]) -> tuple[dict[str, LayerPair], dict[str, LayerPair]]:
    """Lookups from A's and from B's layer paths to their pair."""
    by_a = {p.path_a: p for p in pairs if p.path_a is not None}
    by_b = {p.path_b: p for p in pairs if p.path_b is not None}
    return by_a, by_b  # type: ignore[return-value]


def _match_children(parent_a: LayerNode, parent_b: LayerNode, out: list[LayerPair]) -> None:
    kids_a, kids_b = parent_a.children, parent_b.children
    partner: dict[int, int] = {}  # index in kids_a -> index in kids_b
    how: dict[int, str] = {}
    b_by_name: dict[str, int] = {}
    for j, node in enumerate(kids_b):
        b_by_name.setdefault(node.name, j)
    taken: set[int] = set()
    for i, node in enumerate(kids_a):
        j = b_by_name.get(node.name)
        if j is not None and j not in taken:
            partner[i], how[i] = j, BY_PATH
            taken.add(j)
    left_b: dict[str, deque[int]] = defaultdict(deque)
    for j, node in enumerate(kids_b):
        if j not in taken:
            left_b[node.class_name].append(j)
    for i, node in enumerate(kids_a):
        if i not in partner and left_b.get(node.class_name):
            partner[i], how[i] = left_b[node.class_name].popleft(), BY_POSITION
    matched_b = set(partner.values())
    scanned = 0  # B's children before this index are matched or already emitted

    def emit_added_before(limit: int) -> None:
        # linear in B's children over all calls: a crafted file with 50k siblings must not
        # make the pairing quadratic
        nonlocal scanned
        for j in range(scanned, limit):
            if j not in matched_b:
                _one_sided(None, kids_b[j], out)
        scanned = max(scanned, limit)

    for i, node in enumerate(kids_a):
        if i not in partner:
            _one_sided(node, None, out)
            continue
        j = partner[i]
        emit_added_before(j)
        out.append(LayerPair(node, kids_b[j], how[i]))
        _match_children(node, kids_b[j], out)
    emit_added_before(len(kids_b))


def _one_sided(a: LayerNode | None, b: LayerNode | None, out: list[LayerPair]) -> None:
    node = a if a is not None else b
    assert node is not None
    for sub in node.walk():
        out.append(LayerPair(sub if a is not None else None, sub if b is not None else None,
                             REMOVED if a is not None else ADDED))
