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

# Random-generator state a layer tracks (Keras 3 Dropout's seed generator): saved with the
# variables, but not a parameter (Keras' count_params leaves it out).
RNG_STATE_NAMES = frozenset({"seed_generator_state"})

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
    # The layer's object dict exactly as the file stores it (None for nodes readers
    # synthesize), so the security rules can judge what normalization leaves out.
    raw: dict[str, Any] | None = field(default=None, repr=False, compare=False)

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
    """Something unsafe or odd a reader saw in the container itself (links, bombs...).

    ``kind`` must be a key of ``CONTAINER_ISSUE_KINDS``: that table gives it a severity and
    the rule that reports it (a test checks every kind the readers emit is there).
    """

    kind: str
    location: str
    detail: str

    @property
    def kind_info(self) -> ContainerIssueKind | None:
        return CONTAINER_ISSUE_KINDS.get(self.kind)

    @property
    def severity(self) -> str:
        """The kind's severity, raised to error where the issue itself is worse (a zip member
        that climbs out of the archive); an unknown kind counts as an error (fail closed)."""
        info = self.kind_info
        if info is None:
            return "error"
        if info.escalate is not None and info.escalate(self):
            return "error"
        return info.severity

    @property
    def rule(self) -> str:
        info = self.kind_info
        return info.rule if info is not None else ANOMALY_RULE

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "severity": self.severity, "location": self.location,
                "detail": self.detail}


# Rules that report container issues: each kind names one of them.
ANOMALY_RULE = "container-anomaly"
POLYGLOT_RULE = "polyglot-container"
REFERENCE_RULE = "untrusted-module-reference"


@dataclass(frozen=True)
class ContainerIssueKind:
    """What one kind of container issue means: severity, reporting rule, one-line why."""

    name: str
    severity: str
    meaning: str
    rule: str = ANOMALY_RULE
    escalate: Callable[[ContainerIssue], bool] | None = None


def unsafe_member_name(name: str) -> bool:
    """A zip member name that would land outside the folder it is extracted into."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (
        len(name) > 1 and name[1] == ":" and name[0].isalpha())


def _member_escapes(issue: ContainerIssue) -> bool:
    return unsafe_member_name(issue.location)


def _link_leaves_model(issue: ContainerIssue) -> bool:
    return "outside the SavedModel directory" in issue.detail


CONTAINER_ISSUE_KINDS: dict[str, ContainerIssueKind] = {k.name: k for k in (
    ContainerIssueKind("hdf5-external-link", "error", "an HDF5 link into another file: "
                       "h5py follows it and reads files elsewhere on this machine",
                       REFERENCE_RULE),
    ContainerIssueKind("hdf5-external-storage", "error", "dataset bytes kept in outside "
                       "files that h5py would read", REFERENCE_RULE),
    ContainerIssueKind("hdf5-virtual-dataset", "error", "a virtual dataset mapping other "
                       "files into this one", REFERENCE_RULE),
    ContainerIssueKind("hdf5-soft-link", "warning", "a soft link can alias one dataset as "
                       "another", REFERENCE_RULE),
    ContainerIssueKind("hdf5-link-cycle", "warning", "hard links form a cycle: a loader "
                       "that walks the file naively never ends"),
    ContainerIssueKind("hdf5-deep-nesting", "warning", "groups nested deeper than any Keras "
                       "file needs: stack exhaustion for recursive loaders"),
    ContainerIssueKind("hdf5-unreadable-dataset", "warning", "a dataset libhdf5 cannot "
                       "describe: corrupt or crafted storage"),
    ContainerIssueKind("hdf5-oversized-dataset", "error", "a dataset declaring far more "
                       "data than the file holds: a shape or decompression bomb for any "
                       "loader that reads it"),
    ContainerIssueKind("hdf5-oversized-chunk", "error", "a compressed chunk that inflates "
                       "far beyond the cap: a decompression bomb for any loader that reads "
                       "it"),
    ContainerIssueKind("zip-unexpected-member", "warning", "an archive member Keras does "
                       "not write (smuggled content); an error when its name climbs out of "
                       "the extraction folder (../, absolute path)",
                       escalate=_member_escapes),
    ContainerIssueKind("zip-member-too-large", "warning", "an archive member that inflates "
                       "past kinspect's cap (a compression ratio weights rarely reach): not "
                       "extracted, so its weights were not checked"),
    ContainerIssueKind("savedmodel-symlink", "warning", "a symbolic link among the files "
                       "a SavedModel is read from; an error when it points outside the "
                       "directory", escalate=_link_leaves_model),
    ContainerIssueKind("savedmodel-read-cap", "warning", "a protobuf file too big to read "
                       "whole: what lies past kinspect's read cap was not checked"),
    ContainerIssueKind("savedmodel-unknown-field", "warning", "a large protobuf field no "
                       "loader reads: padding to exhaust a parser's memory, or hidden data"),
    ContainerIssueKind("layer-path-collision", "warning", "two layers at one path (a name "
                       "holding '/' posing as a nested layer, or a repeated name): Keras "
                       "refuses such names, and a finding at that path may concern either"),
    ContainerIssueKind("hdf5-zip-polyglot", "error", "the file is both an HDF5 file and a "
                       "zip archive: kinspect and Keras may read different models from it",
                       POLYGLOT_RULE),
)}


@dataclass
class OpSite:
    """Where a TensorFlow graph op sits in a SavedModel's GraphDef or function library."""

    op: str
    node: str
    function: str | None  # None: the top-level graph
    # "restore" / "save": only reachable from the standard saver's restore op / save tensor
    # (saver_def); "graph": anywhere else (signatures, init ops, loaded functions, unused).
    part: str = "graph"
    signatures: tuple[str, ...] = ()  # signatures whose outputs depend on it


@dataclass
class GraphOps:
    """The ops a SavedModel's graph can run, for rules that judge them (the reader judges
    nothing). ``complete`` is False when a read cap stopped the walk early."""

    sites: dict[str, list[OpSite]] = field(default_factory=dict)  # op -> first few sites
    counts: dict[str, int] = field(default_factory=dict)  # op -> every use
    nodes: int = 0
    functions: int = 0
    complete: bool = True


@dataclass
class ExtraConfig:
    """A config a loader also rebuilds objects from, outside the layer tree (a SavedModel
    layer's own keras_metadata record): security rules walk it like a layer config."""

    where: str
    value: dict[str, Any]
    layer: str | None = None  # path of the layer it belongs to, when known
    differs: list[str] = field(default_factory=list)  # how it differs from the layer tree


@dataclass
class EmbeddedPickle:
    """A Python pickle stream stored in the file where Keras never looks (an application's
    own metadata); read statically, never unpickled. ``imports`` are ``module.name`` strings
    (``<computed>`` when the names were not constants); ``complete`` is False when parsing
    stopped before the STOP opcode (``stopped`` says why)."""

    location: str
    attribute: str | None
    protocol: int
    size: int
    imports: list[str] = field(default_factory=list)
    complete: bool = True
    stopped: str | None = None

    @property
    def where(self) -> str:
        if self.attribute is None:
            return f"dataset {self.location}"
        return f"attribute {self.attribute} of {self.location}"

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "attribute": self.attribute,
                "protocol": self.protocol, "size": self.size, "imports": list(self.imports),
                "complete": self.complete, "stopped": self.stopped}


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
    graph_ops: GraphOps | None = field(default=None, repr=False)
    extra_configs: list[ExtraConfig] = field(default_factory=list, repr=False)
    # Pickles outside the Keras-owned parts of the file (readers/pickle_scan.py).
    embedded_pickles: list[EmbeddedPickle] = field(default_factory=list)
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
        """The layer tree's count; without one (weights-only files, SavedModels without
        Keras metadata) the loose weights', so an exported model does not read "0 params"."""
        if self.root is not None:
            return self.root.params
        total = ParamCount()
        for w in self.loose_weights:
            if w.name.rsplit("/", 1)[-1] in RNG_STATE_NAMES:
                continue
            total = total + (ParamCount(w.size, w.size, 0) if w.trainable
                             else ParamCount(w.size, 0, w.size))
        return total
