"""Which ops a SavedModel's graph holds and what can reach them, read without TensorFlow.

Loading a SavedModel (``tf.saved_model.load``, tf_keras reviving a layer it cannot rebuild
from config, a TF1 loader running the saver's restore op) executes functions from the file,
and a TensorFlow op can read or write files or call back into Python. This module lists every
op of the top-level GraphDef and of every FunctionDef in its library, and which part of the
file reaches each one: the standard saver's restore or save path (``saver_def``), or anything
else. Judging the ops is left to the rules. Big fields (constant tensors) are never read: the
walk goes through :mod:`protowire`'s on-disk spans. Field numbers follow
tensorflow/core/framework/{graph,function,node_def,attr_value,op_def}.proto and
tensorflow/core/protobuf/{meta_graph,saver}.proto.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..graph import GraphOps, OpSite
from . import protowire as pw

MAX_SITES = 8  # sites kept per op; counts cover every use
_NAME_LIMIT = 4096  # a node/function name or input longer than this is not read
_ATTR_DEPTH = 4  # nesting of function-valued attributes followed


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    calls: set[str] = field(default_factory=set)  # function names named by its attributes


@dataclass
class _Function:
    name: str
    nodes: list[_Node] = field(default_factory=list)


def _text(value: pw.Lazy) -> str:
    raw = pw.load(value, _NAME_LIMIT)
    return bytes(raw).decode("utf-8", "replace")


def _func_names(attr_value: pw.Lazy, depth: int = 0) -> Iterator[str]:
    """Function names inside an AttrValue: ``func`` (10) and ``list.func`` (1 -> 9), and
    those of the NameAttrList's own attributes (a function given a function argument)."""
    if depth > _ATTR_DEPTH:
        return
    for number, _wire, value in pw.fields_of(attr_value):
        if number == 10 and not isinstance(value, int):
            yield from _name_attr_list(value, depth)
        elif number == 1 and not isinstance(value, int):
            for inner, _w, item in pw.fields_of(value):
                if inner == 9 and not isinstance(item, int):
                    yield from _name_attr_list(item, depth)


def _name_attr_list(value: pw.Lazy, depth: int) -> Iterator[str]:
    for number, _wire, item in pw.fields_of(value):
        if number == 1 and not isinstance(item, int):
            yield _text(item)
        elif number == 2 and not isinstance(item, int):  # map<string, AttrValue> entry
            for inner, _w, attr in pw.fields_of(item):
                if inner == 2 and not isinstance(attr, int):
                    yield from _func_names(attr, depth + 1)


def _node(value: pw.Lazy) -> _Node:
    """A NodeDef's name, op, inputs and the functions its attributes name."""
    node = _Node("", "")
    for number, _wire, item in pw.fields_of(value):
        if isinstance(item, int):
            continue
        if number == 1:
            node.name = _text(item)
        elif number == 2:
            node.op = _text(item)
        elif number == 3:
            node.inputs.append(_text(item))
        elif number == 5:  # attr entry: key = 1, AttrValue = 2 (tensors stay unread)
            for inner, _w, attr in pw.fields_of(item):
                if inner == 2 and not isinstance(attr, int):
                    node.calls.update(_func_names(attr))
    return node


def _function(value: pw.Lazy) -> _Function:
    fn = _Function("")
    for number, _wire, item in pw.fields_of(value):
        if isinstance(item, int):
            continue
        if number == 1:  # OpDef signature: name = 1
            for inner, _w, sub in pw.fields_of(item):
                if inner == 1 and not isinstance(sub, int):
                    fn.name = _text(sub)
        elif number == 3:
            fn.nodes.append(_node(item))
    return fn


def _tensor_node(name: str) -> str:
    """``^ctrl`` / ``node:1`` -> the node name."""
    return name.lstrip("^").split(":", 1)[0]


class _Collector:
    def __init__(self) -> None:
        self.main: list[_Node] = []
        self.functions: dict[str, _Function] = {}
        self.complete = True

    def walk(self, graph_def: pw.Lazy) -> None:
        """Read the GraphDef; a read cap hit ends the walk with ``complete = False``."""
        try:
            for number, _wire, item in pw.fields_of(graph_def):
                if number == 1 and not isinstance(item, int):
                    self.main.append(_node(item))
                elif number == 2 and not isinstance(item, int):
                    for inner, _w, sub in pw.fields_of(item):
                        if inner == 1 and not isinstance(sub, int):
                            fn = _function(sub)
                            self.functions.setdefault(fn.name, fn)
        except pw.ReadCapError:
            self.complete = False

    def calls(self, node: _Node) -> set[str]:
        """Functions a node runs: by attribute, or by using a function's name as its op."""
        found = {name for name in node.calls if name in self.functions}
        if node.op in self.functions:
            found.add(node.op)
        return found

    def closure(self, roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        queue = deque(r for r in roots if r in self.functions)
        while queue:
            name = queue.popleft()
            if name in seen:
                continue
            seen.add(name)
            for node in self.functions[name].nodes:
                queue.extend(self.calls(node) - seen)
        return seen


def _ancestors(by_name: dict[str, _Node], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    queue = deque(_tensor_node(r) for r in roots if r)
    while queue:
        name = queue.popleft()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        queue.extend(_tensor_node(i) for i in by_name[name].inputs)
    return seen


def collect_ops(graph_def: pw.Lazy | None, saver: dict[str, str],
                signature_outputs: dict[str, list[str]],
                loaded_functions: Iterable[str]) -> GraphOps:
    """Every op and where it sits.

    ``saver``: saver_def's ``save_tensor`` / ``restore_op`` names; ``signature_outputs``:
    signature name -> output tensor names; ``loaded_functions``: the object graph's concrete
    functions (what ``tf.saved_model.load`` restores as callables).
    """
    collector = _Collector()
    if graph_def is not None:
        collector.walk(graph_def)
    by_name = {n.name: n for n in collector.main}
    restore_nodes = _ancestors(by_name, [saver.get("restore_op", "")])
    save_nodes = _ancestors(by_name, [saver.get("save_tensor", "")]) - restore_nodes
    saver_nodes = restore_nodes | save_nodes

    def fns_of(nodes: Iterable[str]) -> set[str]:
        return collector.closure(f for n in nodes for f in collector.calls(by_name[n]))

    other = collector.closure(list(loaded_functions)) | fns_of(
        n.name for n in collector.main if n.name not in saver_nodes)
    restore_fns = fns_of(restore_nodes) - other
    save_fns = fns_of(save_nodes) - other - restore_fns
    reached: dict[str, set[str]] = {}
    for signature, outputs in signature_outputs.items():
        nodes = _ancestors(by_name, outputs)
        for name in nodes | fns_of(nodes):
            reached.setdefault(name, set()).add(signature)

    ops = GraphOps(nodes=len(collector.main), functions=len(collector.functions),
                   complete=collector.complete)

    def add(node: _Node, function: str | None, part: str) -> None:
        ops.counts[node.op] = ops.counts.get(node.op, 0) + 1
        sites = ops.sites.setdefault(node.op, [])
        if len(sites) < MAX_SITES:
            owner = function if function is not None else node.name
            sites.append(OpSite(node.op, node.name, function, part,
                                tuple(sorted(reached.get(owner, ())))))

    for node in collector.main:
        part = "restore" if node.name in restore_nodes else (
            "save" if node.name in save_nodes else "graph")
        add(node, None, part)
    for name, fn in collector.functions.items():
        part = "restore" if name in restore_fns else "save" if name in save_fns else "graph"
        for node in fn.nodes:
            add(node, name, part)
    return ops
