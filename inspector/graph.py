"""The format-neutral model graph every reader produces and everything else consumes.

Readers resolve every Keras 2 / Keras 3 / container difference before building these objects,
so rules, the report, the probe planner and the TUI never look at raw file structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

Shape = tuple[int | None, ...]

# Every reader roots layer paths here ("model/dense", "model/base/conv2d"), whatever the
# saved model is called, and the probe reports its layers under the same root, so a layer
# path means the same layer in static and probe findings.
ROOT_PATH = "model"


class WeightSource(Protocol):
    """Lazy access to one stored tensor; opened only when values are really needed."""

    def read(self) -> np.ndarray:
        """Whole tensor (callers use this only for small tensors)."""
        ...

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        """The tensor as consecutive flat chunks of at most ``max_elements`` values."""
        ...


@dataclass
class WeightInfo:
    """One variable of a layer, named as Keras names it (``kernel``, ``moving_mean``...)."""

    name: str
    shape: Shape
    dtype: str
    storage_path: str
    source: WeightSource | None = None
    trainable: bool = True

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d or 0)
        return n


@dataclass
class TensorRef:
    """An input of a call: the ``tensor_index``-th output of ``layer``'s ``node_index``-th call.

    ``node_index`` is normalized by readers to count calls inside the enclosing model only
    (Keras 2 counts a nested model's own construction node; that offset is removed).
    """

    layer: str
    node_index: int = 0
    tensor_index: int = 0


@dataclass
class CallNode:
    """One call of a layer inside its parent model: the tensors it consumed and call kwargs."""

    inputs: list[TensorRef] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParamCount:
    total: int = 0
    trainable: int = 0
    non_trainable: int = 0

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(
            self.total + other.total,
            self.trainable + other.trainable,
            self.non_trainable + other.non_trainable,
        )

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "trainable": self.trainable,
                "non_trainable": self.non_trainable}


@dataclass
class TensorSpec:
    """A model input or output as the saved config declares it."""

    name: str
    shape: Shape | None
    dtype: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "dtype": self.dtype}


@dataclass
class LayerNode:
    """A layer, or a nested model / wrapper / RNN cell, with its children."""

    name: str
    path: str
    class_name: str
    config: dict[str, Any]
    module: str | None = None
    registered_name: str | None = None
    trainable: bool = True
    calls: list[CallNode] = field(default_factory=list)
    weights: list[WeightInfo] = field(default_factory=list)
    children: list[LayerNode] = field(default_factory=list)
    # "model" (nested Sequential/Functional), "wrapper" (child = wrapped layer),
    # "cell" (RNN cell child), "operation" (a Keras 3 ops node such as NotEqual that the
    # functional config lists but ``model.layers`` leaves out), or "layer".
    role: str = "layer"
    output_shape: Shape | list[Shape] | None = None
    input_shape: Shape | list[Shape] | None = None
    params: ParamCount = field(default_factory=ParamCount)
    dtype_policy: str | None = None
    parent: LayerNode | None = field(default=None, repr=False, compare=False)

    @property
    def is_container(self) -> bool:
        return bool(self.children)

    @property
    def shared(self) -> bool:
        """Called more than once inside its parent model (a shared layer)."""
        return len(self.calls) > 1

    def walk(self) -> Iterator[LayerNode]:
        """This node and every descendant, depth first, in file order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def all_weights(self) -> Iterator[tuple[LayerNode, WeightInfo]]:
        for node in self.walk():
            for w in node.weights:
                yield node, w

    def weight(self, name: str) -> WeightInfo | None:
        for w in self.weights:
            if w.name == name:
                return w
        return None


@dataclass
class ContainerIssue:
    """Something unsafe or odd a reader saw in the container itself (links, bombs...)."""

    kind: str
    location: str
    detail: str


@dataclass
class ModelGraph:
    """Everything kinspect knows statically about one model file."""

    path: str
    format: str
    root: LayerNode | None
    keras_version: str | None = None
    backend: str | None = None
    class_name: str | None = None
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    output_layers: list[str] = field(default_factory=list)
    training_config: dict[str, Any] | None = None
    # Optimizer step count stored with the model (Keras ``iterations``), None when absent.
    optimizer_iterations: int | None = None
    has_architecture: bool = True
    signatures: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    container_issues: list[ContainerIssue] = field(default_factory=list)
    raw_config: dict[str, Any] | None = field(default=None, repr=False)
    # Loose weights (weights-only files, SavedModels without Keras metadata) keyed by group.
    loose_weights: list[WeightInfo] = field(default_factory=list)
    close: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def layers(self) -> list[LayerNode]:
        """Top-level layers, what ``model.layers`` gives in Keras (operations left out)."""
        if self.root is None:
            return []
        return [c for c in self.root.children if c.role != "operation"]

    def walk(self) -> Iterator[LayerNode]:
        """Every layer at every depth (root model excluded)."""
        if self.root is None:
            return
        for child in self.root.children:
            yield from child.walk()

    def find(self, path: str) -> LayerNode | None:
        for node in self.walk():
            if node.path == path:
                return node
        return None

    def all_weights(self) -> Iterator[tuple[LayerNode | None, WeightInfo]]:
        if self.root is not None:
            yield from self.root.all_weights()
        for w in self.loose_weights:
            yield None, w

    @property
    def params(self) -> ParamCount:
        return self.root.params if self.root else ParamCount()
