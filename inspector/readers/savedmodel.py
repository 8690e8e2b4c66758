"""SavedModel directories, read without TensorFlow: saved_model.pb, keras_metadata.pb, variables.

``saved_model.pb`` gives the signatures and the SavedObjectGraph (every trackable object: layers,
variables, functions, and the child names linking them). ``keras_metadata.pb`` (tf.keras 2.x
``model.save(dir)``) adds each layer's JSON metadata, whose root holds the model config;
TensorFlow <= 2.4 kept the same records inline (``SavedUserObject.metadata``, since deprecated),
which are read when the file is absent. Without either (Keras 3 ``model.export()``, plain
``tf.saved_model.save``) only signatures and a flat variable list can be reported. Values come
lazily from the checkpoint bundle in ``variables/``.
Both .pb files are walked by wire fields under a read cap (never read whole): unknown fields
are skipped by seeking, and the GraphDef is only listed op by op (tf_graph.py) for the rules.
Field numbers follow tensorflow/core/protobuf/{saved_model,meta_graph,saved_object_graph,
trackable_object_graph}.proto and tf_keras' saved_metadata.proto.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorKind, KinspectError
from ..graph import (
    ROOT_PATH,
    ContainerIssue,
    ExtraConfig,
    LayerNode,
    ModelGraph,
    TensorSpec,
    WeightInfo,
)
from . import protowire as pw
from .graph_facts import finalize
from .keras_config import (
    ConfigStructureError,
    is_object_dict,
    normalize_training_config,
    parse_model_config,
)
from .tf_checkpoint import OBJECT_GRAPH_KEY, BundleEntry, CheckpointBundle
from .tf_graph import collect_ops
from .tf_proto import decode_shape, dtype_name

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
KERAS_METADATA_PB = "keras_metadata.pb"
VARIABLES_PREFIX = os.path.join("variables", "variables")
MAX_PB_BYTES = 1 << 31  # protobuf's own message limit
# Bytes of known fields read from one .pb file (walked by wire fields, never slurped): the
# static pass stays far below 1 GB however the file is padded. Tests lower it.
MAX_PB_READ = 384 << 20
BIG_UNREAD_FIELD = 16 << 20  # an unread field this large is reported (padding)
# Container issue kinds this reader reports.
ISSUE_SYMLINK = "savedmodel-symlink"
ISSUE_READ_CAP = "savedmodel-read-cap"
ISSUE_PADDING = "savedmodel-unknown-field"
SERVING_TAG = "serve"
SERVING_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"
VARIABLE_ATTRIBUTE = "VARIABLE_VALUE"
METRIC_IDENTIFIER = "_tf_keras_metric"
KERAS_IDENTIFIER_PREFIX = "_tf_keras"  # _tf_keras_layer, _tf_keras_network, ...
K3_ALL_VARIABLES = "_all_variables"

# SavedObject ``kind`` oneof field numbers.
_KINDS = {4: "user_object", 5: "asset", 6: "function", 7: "variable",
          8: "bare_concrete_function", 9: "constant", 10: "resource", 12: "captured_tensor"}


@dataclass
class SavedVariable:
    name: str
    dtype: str
    shape: tuple[int | None, ...] | None
    trainable: bool


@dataclass
class SavedObject:
    """One node of the SavedObjectGraph, reduced to what kinspect uses."""

    node_id: int
    kind: str
    identifier: str = ""
    children: list[tuple[str, int]] = field(default_factory=list)
    variable: SavedVariable | None = None
    metadata: str = ""  # TF <= 2.4: the Keras record keras_metadata.pb later took over

    def child(self, name: str) -> int | None:
        for local, target in self.children:
            if local == name:
                return target
        return None


@dataclass
class KerasObject:
    """One node of keras_metadata.pb: a layer/model/metric and its JSON metadata."""

    node_id: int
    node_path: str
    identifier: str
    metadata: dict[str, Any]
    source: str = KERAS_METADATA_PB  # the file the record came from, for messages


@dataclass
class _Context:
    path: str
    objects: list[SavedObject]
    keys: dict[int, str]  # variable node id -> checkpoint key
    bundle: CheckpointBundle | None
    notes: list[str] = field(default_factory=list)


def read_savedmodel(path: str | os.PathLike[str]) -> ModelGraph:
    """The ModelGraph of a SavedModel directory; KinspectError for anything unreadable."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise KinspectError(path, "no such file or directory", ErrorKind.NOT_FOUND)
    if not os.path.isdir(path):
        raise KinspectError(path, "not a SavedModel directory", ErrorKind.NOT_A_MODEL)
    pb_path = os.path.join(path, SAVED_MODEL_PB)
    if not _present(pb_path):
        if os.path.isfile(os.path.join(path, SAVED_MODEL_PBTXT)):
            raise KinspectError(path, "text-format SavedModels (saved_model.pbtxt) are not "
                                "supported", ErrorKind.UNSUPPORTED)
        raise KinspectError(path, "directory without saved_model.pb is not a SavedModel",
                            ErrorKind.NOT_A_MODEL)
    issues = _symlinks(path)
    with _pb_file(pb_path, path) as whole:
        meta_graph, tags, graph_def = _meta_graph(pb_path, whole, issues)
        try:
            signatures = _signatures(meta_graph)
            objects = _object_graph(meta_graph)
            graph_ops = collect_ops(graph_def, _saver_names(meta_graph),
                                    _signature_outputs(meta_graph),
                                    _concrete_functions(meta_graph))
        except pw.ReadCapError as exc:  # a single known field over the cap
            raise KinspectError(pb_path, f"saved_model.pb: {exc}", ErrorKind.TOO_LARGE) \
                from exc
        except pw.WireError as exc:
            raise KinspectError(pb_path, f"malformed saved_model.pb: {exc}") from exc
    if not graph_ops.complete:
        issues.append(ContainerIssue(ISSUE_READ_CAP, SAVED_MODEL_PB,
                                     f"the graph's ops were listed only up to the {MAX_PB_READ}"
                                     "-byte read cap; the rest of the graph was not read"))
    bundle = _open_bundle(path)
    ctx = _Context(path, objects, _checkpoint_keys(objects, bundle), bundle)
    if bundle is None and any(o.variable for o in objects):
        ctx.notes.append("variables/variables.index is missing: weight values are unavailable")

    metadata_path = os.path.join(path, KERAS_METADATA_PB)
    keras_objects = _keras_metadata(metadata_path, path, issues) \
        if _present(metadata_path) else _inline_metadata(pb_path, objects, ctx.notes)
    graph = _keras_graph(ctx, keras_objects) if keras_objects else _plain_graph(ctx)
    graph.signatures = signatures
    graph.graph_ops = graph_ops
    graph.container_issues.extend(issues)
    if not graph.inputs and not graph.outputs:
        graph.inputs, graph.outputs = _serving_specs(signatures)
    if SERVING_SIGNATURE not in signatures:
        graph.notes.append("no 'serving_default' signature is saved (TF Serving and "
                           "signature-based loaders have nothing to call)")
    if tags and SERVING_TAG not in tags:
        graph.notes.append(f"meta graph tags {sorted(tags)} (no 'serve' graph)")
    graph.notes.extend(ctx.notes)
    return graph


# ---------------------------------------------------------------- files and the meta graph


def _symlinks(path: str) -> list[ContainerIssue]:
    """Symbolic links among the members kinspect reads: followed, but reported, since they
    make a copied model read files from elsewhere on this machine."""
    issues: list[ContainerIssue] = []
    real_root = os.path.realpath(path)
    members = [SAVED_MODEL_PB, KERAS_METADATA_PB, "variables"]
    variables = os.path.join(path, "variables")
    with contextlib.suppress(OSError):
        members += [os.path.join("variables", n) for n in sorted(os.listdir(variables))
                    if n.startswith("variables.")]
    for rel in members:
        full = os.path.join(path, rel)
        if not os.path.islink(full):
            continue
        target = os.path.realpath(full)
        outside = os.path.commonpath([real_root, target]) != real_root
        issues.append(ContainerIssue(
            ISSUE_SYMLINK, rel, f"symbolic link to {target}"
            + (" (outside the SavedModel directory)" if outside else "")))
    return issues


def _present(file_path: str) -> bool:
    """Whether a member exists; one that is not a regular file (a FIFO or device would block
    or never end) is refused rather than read."""
    if not os.path.lexists(file_path):
        return False
    if not os.path.isfile(file_path):
        raise KinspectError(file_path, "not a regular file", ErrorKind.CORRUPT)
    return True


@contextlib.contextmanager
def _pb_file(file_path: str, shown: str) -> Iterator[pw.Span]:
    """The file as one on-disk message, read by wire fields under the MAX_PB_READ cap."""
    try:
        size = os.path.getsize(file_path)
        if size > MAX_PB_BYTES:
            raise KinspectError(file_path, f"{size} bytes exceeds the protobuf limit",
                                ErrorKind.TOO_LARGE)
        handle = open(file_path, "rb")  # noqa: SIM115 - closed below, after the walk
    except OSError as exc:
        raise KinspectError(shown, f"cannot read {os.path.basename(file_path)}: "
                            f"{exc.strerror or exc}", ErrorKind.NOT_FOUND) from exc
    try:
        yield pw.open_span(pw.FileBudget(handle, MAX_PB_READ), size)
    except OSError as exc:
        raise KinspectError(shown, f"cannot read {os.path.basename(file_path)}: "
                            f"{exc.strerror or exc}", ErrorKind.NOT_FOUND) from exc
    finally:
        handle.close()


def _unread(name: str, number: int, value: pw.Lazy, issues: list[ContainerIssue]) -> None:
    """Report a big field kinspect skips (a file padded to exhaust memory or hide data)."""
    if not isinstance(value, int) and len(value) >= BIG_UNREAD_FIELD:
        issues.append(ContainerIssue(ISSUE_PADDING, name, f"{len(value)}-byte field "
                                     f"{number} that no loader reads was skipped unread"))


def _cap_hit(name: str, exc: pw.ReadCapError, issues: list[ContainerIssue]) -> None:
    issues.append(ContainerIssue(ISSUE_READ_CAP, name, f"stopped reading: {exc}"))


# MetaGraphDef fields read into memory: meta_info_def, saver_def, signature_def,
# object_graph_def. graph_def (2) is walked on disk; collection_def/asset_file_def unused.
_META_FIELDS = frozenset({1, 3, 5, 7})
_META_KNOWN = _META_FIELDS | {2, 4, 6}


def _meta_graph(pb_path: str, whole: pw.Span,
                issues: list[ContainerIssue]) -> tuple[pw.Fields, set[str], pw.Lazy | None]:
    """The MetaGraphDef tagged 'serve' (else the first): its small fields loaded, its tags,
    and its GraphDef left on disk for the op walk."""
    if not len(whole):
        raise KinspectError(pb_path, "empty saved_model.pb", ErrorKind.EMPTY)
    tagged: list[tuple[pw.Fields, set[str], pw.Lazy | None]] = []
    try:
        for number, _wire, raw in pw.fields_of(whole):
            if number != 2 or isinstance(raw, int):
                _unread(SAVED_MODEL_PB, number, raw, issues)
                continue
            meta: pw.Fields = {}
            graph_def: pw.Lazy | None = None
            for field_no, _w, value in pw.fields_of(raw):
                if field_no in _META_FIELDS and not isinstance(value, int):
                    meta.setdefault(field_no, []).append(pw.load(value))
                elif field_no == 2:
                    graph_def = value
                elif field_no not in _META_KNOWN:
                    _unread(SAVED_MODEL_PB, field_no, value, issues)
            info = pw.get_msg(meta, 1) or {}
            tags = {bytes(t).decode("utf-8", "replace") for t in pw.get_msgs(info, 4)}
            tagged.append((meta, tags, graph_def))
    except pw.ReadCapError as exc:
        _cap_hit(SAVED_MODEL_PB, exc, issues)
    except pw.WireError as exc:
        raise KinspectError(pb_path, f"malformed or truncated saved_model.pb: {exc}") from exc
    if not tagged:
        if any(i.kind == ISSUE_READ_CAP for i in issues):
            raise KinspectError(pb_path, f"no meta graph within the first {MAX_PB_READ} bytes "
                                "read", ErrorKind.TOO_LARGE)
        raise KinspectError(pb_path, "saved_model.pb holds no meta graph (not a SavedModel)")
    return next((t for t in tagged if SERVING_TAG in t[1]), tagged[0])


def _saver_names(meta_graph: pw.Fields) -> dict[str, str]:
    """saver_def's save tensor and restore op: what marks the standard saver's ops."""
    saver = pw.get_msg(meta_graph, 3) or {}
    return {"save_tensor": pw.get_str(saver, 2), "restore_op": pw.get_str(saver, 3)}


def _signature_outputs(meta_graph: pw.Fields) -> dict[str, list[str]]:
    """Signature name -> the graph tensors its outputs (and init op) name."""
    out: dict[str, list[str]] = {}
    for name, raw in pw.get_map(meta_graph, 5).items():
        sig = pw.parse(raw)
        out[name] = [pw.get_str(pw.parse(v), 1) for v in pw.get_map(sig, 2).values()]
    return out


def _concrete_functions(meta_graph: pw.Fields) -> list[str]:
    """The function library entries the object graph restores as callables."""
    graph = pw.get_msg(meta_graph, 7)
    return sorted(pw.get_map(graph, 2)) if graph is not None else []


def _tensor_info(raw: memoryview) -> dict[str, Any]:
    fields = pw.parse(raw)
    shape = decode_shape(pw.get_bytes(fields, 3)) if 3 in fields else None
    return {"dtype": dtype_name(pw.get_int(fields, 2)) if 2 in fields else None,
            "shape": None if shape is None else list(shape)}


def _signatures(meta_graph: pw.Fields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in sorted(pw.get_map(meta_graph, 5).items()):
        if name == INIT_OP_SIGNATURE:
            continue
        sig = pw.parse(raw)
        out[name] = {
            "inputs": {k: _tensor_info(v) for k, v in sorted(pw.get_map(sig, 1).items())},
            "outputs": {k: _tensor_info(v) for k, v in sorted(pw.get_map(sig, 2).items())},
        }
    return out


def _serving_specs(signatures: dict[str, Any]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    sig = signatures.get(SERVING_SIGNATURE)
    if sig is None and len(signatures) == 1:
        sig = next(iter(signatures.values()))
    if sig is None:
        return [], []

    def specs(side: dict[str, Any]) -> list[TensorSpec]:
        return [TensorSpec(name, None if info["shape"] is None else tuple(info["shape"]),
                           info["dtype"]) for name, info in side.items()]

    return specs(sig["inputs"]), specs(sig["outputs"])


def _object_graph(meta_graph: pw.Fields) -> list[SavedObject]:
    graph = pw.get_msg(meta_graph, 7)
    if graph is None:
        return []
    objects: list[SavedObject] = []
    raws = pw.get_msgs(graph, 1)
    for node_id, raw in enumerate(raws):
        fields = pw.parse(raw)
        kind = next((name for num, name in _KINDS.items() if num in fields), "other")
        obj = SavedObject(node_id, kind)
        for ref in pw.get_msgs(fields, 1):
            ref_fields = pw.parse(ref)
            target = pw.get_int(ref_fields, 1)
            if target >= len(raws):
                raise pw.WireError(f"object {node_id} references missing object {target}")
            obj.children.append((pw.get_str(ref_fields, 2), target))
        if kind == "user_object":
            user = pw.get_msg(fields, 4) or {}
            obj.identifier, obj.metadata = pw.get_str(user, 1), pw.get_str(user, 3)
        elif kind == "variable":
            var = pw.get_msg(fields, 7) or {}
            obj.variable = SavedVariable(
                name=pw.get_str(var, 6), dtype=dtype_name(pw.get_int(var, 1)),
                shape=decode_shape(pw.get_bytes(var, 2)), trainable=pw.get_bool(var, 3))
        objects.append(obj)
    return objects


# ---------------------------------------------------------------- checkpoint


def _open_bundle(path: str) -> CheckpointBundle | None:
    prefix = os.path.join(path, VARIABLES_PREFIX)
    if not _present(prefix + ".index"):
        return None
    return CheckpointBundle(prefix)


def _escape(local_name: str) -> str:
    """Checkpoint keys escape '.' and '/' inside object names (TF's trackable naming)."""
    return local_name.replace(".", "..").replace("/", ".S")


def _checkpoint_keys(objects: list[SavedObject],
                     bundle: CheckpointBundle | None) -> dict[int, str]:
    """Variable object id -> checkpoint key, by walking both object graphs from the root.

    The checkpoint's own object graph says which key each object's value was saved under;
    objects are matched by child names. Without it, keys are derived from the first path
    from the root, as TensorFlow names them.
    """
    if bundle is None or not objects:
        return {}
    raw = bundle.read_string_scalar(OBJECT_GRAPH_KEY)
    keys: dict[int, str] = {}
    if raw is None:
        for node_id, route in _first_routes(objects).items():
            if objects[node_id].variable is not None:
                key = "/".join(_escape(n) for n in route) + f"/.ATTRIBUTES/{VARIABLE_ATTRIBUTE}"
                if key in bundle.entries:
                    keys[node_id] = key
        return keys
    try:
        ckpt_nodes = [pw.parse(n) for n in pw.get_msgs(pw.parse(raw), 1)]
        pairs = _match_graphs(objects, ckpt_nodes) if ckpt_nodes else {}
        for saved_id, ckpt_id in pairs.items():
            if objects[saved_id].variable is None:
                continue
            for attr in pw.get_msgs(ckpt_nodes[ckpt_id], 2):
                attr_fields = pw.parse(attr)
                key = pw.get_str(attr_fields, 3)
                if pw.get_str(attr_fields, 1) == VARIABLE_ATTRIBUTE and key in bundle.entries:
                    keys[saved_id] = key
    except pw.WireError as exc:
        raise KinspectError(bundle.index_path, f"malformed checkpoint object graph: {exc}") \
            from exc
    return keys


def _match_graphs(objects: list[SavedObject], ckpt_nodes: list[pw.Fields]) -> dict[int, int]:
    pairs = {0: 0}
    queue = deque([(0, 0)])
    while queue:
        saved_id, ckpt_id = queue.popleft()
        ckpt_children: dict[str, int] = {}
        for ref in pw.get_msgs(ckpt_nodes[ckpt_id], 1):
            ref_fields = pw.parse(ref)
            target = pw.get_int(ref_fields, 1)
            if target < len(ckpt_nodes):
                ckpt_children.setdefault(pw.get_str(ref_fields, 2), target)
        for name, child in objects[saved_id].children:
            target = ckpt_children.get(name)
            if target is not None and child not in pairs:
                pairs[child] = target
                queue.append((child, target))
    return pairs


def _first_routes(objects: list[SavedObject]) -> dict[int, list[str]]:
    """Breadth-first child-name route from the root to every reachable object."""
    if not objects:
        return {}
    routes: dict[int, list[str]] = {0: []}
    queue = deque([0])
    while queue:
        node_id = queue.popleft()
        for name, child in objects[node_id].children:
            if child not in routes:
                routes[child] = [*routes[node_id], name]
                queue.append(child)
    return routes


def _entry(ctx: _Context, node_id: int) -> tuple[str, BundleEntry | None]:
    """The checkpoint key of a variable object and its bundle entry (when saved)."""
    key = ctx.keys.get(node_id, "")
    return key, ctx.bundle.entries.get(key) if ctx.bundle is not None and key else None


def _weight(ctx: _Context, node_id: int, var: SavedVariable, name: str) -> WeightInfo:
    key, entry = _entry(ctx, node_id)
    shape, dtype = var.shape or (), var.dtype
    source = None
    if entry is not None and ctx.bundle is not None:
        # The stored tensor is the ground truth for what gets read.
        shape, dtype, source = entry.shape, entry.dtype, ctx.bundle.source(key)
    return WeightInfo(name=name, shape=tuple(shape), dtype=dtype, storage_path=key,
                      source=source, trainable=var.trainable)


# ---------------------------------------------------------------- without Keras metadata


def _plain_graph(ctx: _Context) -> ModelGraph:
    """Signatures and the variables, in breadth-first order from the root object."""
    graph = ModelGraph(path=ctx.path, format="savedmodel", root=None, has_architecture=False)
    root = ctx.objects[0] if ctx.objects else None
    if root is not None and root.identifier.startswith(KERAS_IDENTIFIER_PREFIX):
        graph.notes.append(f"the root object is a tf.keras model ({root.identifier}) saved "
                           "without keras_metadata.pb")
    seen: set[tuple[Any, ...]] = set()
    duplicates = 0
    for node_id, route in _first_routes(ctx.objects).items():
        var = ctx.objects[node_id].variable
        if var is None:
            continue
        # Keras 3 export archives track every variable twice, in "variables" and in
        # "_all_variables", as two objects saved under two keys: list it once.
        entry = _entry(ctx, node_id)[1]
        ident = (var.name, var.shape, var.dtype, entry.crc32c if entry else None)
        if route[:1] == [K3_ALL_VARIABLES] and ident in seen:
            duplicates += 1
            continue
        seen.add(ident)
        # Keras 3 export names its variables by path ("dense/kernel"); a variable saved
        # without a name is called by its route in the object graph, not by "".
        name = var.name.removesuffix(":0") or "/".join(route) or ctx.keys.get(node_id, "?")
        graph.loose_weights.append(_weight(ctx, node_id, var, name))
    if not ctx.objects and ctx.bundle is not None:
        _checkpoint_only_weights(ctx.bundle, graph)
    graph.notes.append("SavedModel without keras_metadata.pb: no layer structure is saved; "
                       "signatures and variables only")
    if duplicates:
        graph.notes.append(f"{duplicates} variables tracked a second time under "
                           f"'{K3_ALL_VARIABLES}' are listed once")
    return graph


def _checkpoint_only_weights(bundle: CheckpointBundle, graph: ModelGraph) -> None:
    """TF1-style SavedModels have no object graph: list the checkpoint's tensors by key."""
    graph.notes.append("no object graph (TF1-style SavedModel): variables are listed by "
                       "checkpoint key")
    for key, entry in sorted(bundle.entries.items()):
        if key == OBJECT_GRAPH_KEY:
            continue
        graph.loose_weights.append(WeightInfo(
            name=key, shape=entry.shape, dtype=entry.dtype, storage_path=key,
            source=bundle.source(key)))


# ---------------------------------------------------------------- with Keras metadata


def _keras_metadata(file_path: str, shown: str,
                    issues: list[ContainerIssue]) -> list[KerasObject]:
    objects: list[KerasObject] = []
    try:
        with _pb_file(file_path, shown) as whole:
            for number, _wire, value in pw.fields_of(whole):
                if number != 1 or isinstance(value, int):
                    _unread(KERAS_METADATA_PB, number, value, issues)
                    continue
                fields = pw.parse(pw.load(value))
                objects.append(_keras_object(
                    file_path, pw.get_int(fields, 2), pw.get_str(fields, 3),
                    pw.get_str(fields, 4), pw.get_str(fields, 5)))
    except pw.ReadCapError as exc:
        _cap_hit(KERAS_METADATA_PB, exc, issues)
    except pw.WireError as exc:
        raise KinspectError(file_path, f"malformed or truncated keras_metadata.pb: {exc}") \
            from exc
    return objects


def _inline_metadata(pb_path: str, objects: list[SavedObject],
                     notes: list[str]) -> list[KerasObject] | None:
    """The Keras records TF <= 2.4 wrote into saved_model.pb itself; None without a Keras root.

    tf_keras still loads such a directory as a Keras model from these records, so reading
    them is what keeps its layers, configs (Lambda code included) and weights in view.
    """
    keras = [obj for obj in objects
             if obj.metadata and obj.identifier.startswith(KERAS_IDENTIFIER_PREFIX)]
    if not keras or keras[0].node_id != 0:  # a non-Keras root: signatures and variables
        return None
    routes = _first_routes(objects)
    records = [_keras_object(pb_path, obj.node_id,
                             ".".join(["root", *routes.get(obj.node_id, [])]),
                             obj.identifier, obj.metadata, SAVED_MODEL_PB) for obj in keras]
    notes.append("Keras metadata read from saved_model.pb (TensorFlow <= 2.4 kept it there, "
                 "not in keras_metadata.pb)")
    return records


def _keras_object(file_path: str, node_id: int, node_path: str, identifier: str, text: str,
                  source: str = KERAS_METADATA_PB) -> KerasObject:
    try:
        metadata = _untuple(json.loads(text)) if text else {}
    except (ValueError, RecursionError) as exc:
        raise KinspectError(file_path, f"invalid layer metadata JSON: "
                            f"{str(exc)[:120]}") from exc
    return KerasObject(node_id, node_path, identifier,
                       metadata if isinstance(metadata, dict) else {}, source)


def _keras_graph(ctx: _Context, keras_objects: list[KerasObject]) -> ModelGraph:
    """Layer tree from the root's model config, weights bound through the object graph."""
    by_id = {k.node_id: k for k in keras_objects if 0 <= k.node_id < len(ctx.objects)}
    root_meta = by_id.get(0)
    if root_meta is None:
        raise KinspectError(os.path.join(ctx.path, KERAS_METADATA_PB),
                            "keras_metadata.pb has no root object")
    meta = root_meta.metadata
    model_config = meta.get("model_config")
    try:
        if _is_graph_config(model_config):
            root = parse_model_config(model_config, root_path=ROOT_PATH)
        else:
            root = _subclassed_root(meta, model_config, keras_objects, ctx.notes)
            ctx.notes.append("subclassed model: no layer graph is saved, so its direct "
                             "sub-layers are listed without their call graph")
    except ConfigStructureError as exc:
        raise KinspectError(ctx.path, f"unexpected model config structure: {exc}") from exc
    except RecursionError as exc:
        raise KinspectError(ctx.path, "model config nested too deeply",
                            ErrorKind.TOO_LARGE) from exc
    binder = _Binder(ctx, by_id)
    binder.bind(root, 0)
    binder.attach_weights(root)
    graph = ModelGraph(
        path=ctx.path, format="savedmodel-keras", root=root,
        keras_version=_text(meta.get("keras_version")), backend=_text(meta.get("backend")),
        class_name=_text(meta.get("class_name")) or root.class_name,
        training_config=normalize_training_config(meta.get("training_config")),
        raw_config=model_config if isinstance(model_config, dict) else None)
    graph.extra_configs = _node_configs(binder, root, keras_objects)
    if binder.unbound:
        ctx.notes.append("no saved object found for layer(s) "
                         + ", ".join(sorted(binder.unbound)[:10])
                         + ": their weights are not listed")
    finalize(graph)
    return graph


def _node_configs(binder: _Binder, root: LayerNode,
                  keras_objects: list[KerasObject]) -> list[ExtraConfig]:
    """What tf_keras revives each object from, where the layer tree does not already say it.

    tf_keras rebuilds every layer and metric from its OWN metadata record (class_name +
    config, Lambda bytecode included); the root's model_config only wires them together, and
    the root record's ``config`` (not ``model_config``) is what it rebuilds the model from.
    Records that agree with the layer the tree holds are left out (the tree is walked
    already); the others are returned with what differs, so the security rules walk them.
    """
    by_object = {obj_id: node for node in root.walk()
                 if (obj_id := binder.bound.get(id(node))) is not None}
    out: list[ExtraConfig] = []
    for obj in keras_objects:
        meta = obj.metadata
        cls, cfg = meta.get("class_name"), meta.get("config")
        if not isinstance(cls, str) and not isinstance(cfg, dict):
            continue
        value = {k: meta[k] for k in ("class_name", "config", "module", "registered_name")
                 if k in meta}
        where = f"{obj.source} node {obj.node_id} ({obj.node_path or '?'})"
        node = by_object.get(obj.node_id)
        if obj.node_id == 0:
            differs = _root_differences(meta)
            if not differs:
                continue
        elif node is None:
            differs = []
        else:
            differs, counted = _layer_differences(node, value)
            if not differs:
                continue
            differs = differs if counted else []
        out.append(ExtraConfig(where, value, node.path if node is not None else None, differs))
    return out


def _without_ids(value: Any) -> Any:
    """A config without ``shared_object_id`` (model_config carries them, records do not)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _root_differences(meta: dict[str, Any]) -> list[str]:
    """The root record's class_name/config against its model_config (what the tree shows)."""
    model_config = meta.get("model_config")
    if not is_object_dict(model_config):
        return []
    out = []
    if meta.get("class_name") != model_config.get("class_name"):
        out.append(f"class_name {meta.get('class_name')!r} vs {model_config.get('class_name')!r}"
                   " in model_config")
    if _without_ids(meta.get("config")) != _without_ids(model_config.get("config")):
        out.append("config differs from model_config")
    return out


def _layer_differences(node: LayerNode, value: dict[str, Any]) -> tuple[list[str], bool]:
    """How a layer's own record differs from the layer the model config gives, normalized
    the same way (Keras 2/3 spellings never count), and whether that is a mismatch.

    A different class (or module) always is. A different config is for a direct layer of a
    Sequential/Functional model, whose tree node IS its model-config entry; wrapped layers
    and RNN cells are derived by Keras from their parent's config (a Bidirectional's
    backward copy, a cell without its own entry), so their records legitimately differ.
    """
    cfg = value.get("config")
    if not isinstance(value.get("class_name"), str):
        return ["no class_name"], True
    if not isinstance(cfg, dict):
        return [], False  # revived from the SavedModel's functions, not from a config
    try:
        own = parse_model_config({**value, "config": {"name": node.name, **cfg}},
                                 root_path=node.path)
    except (ConfigStructureError, RecursionError):
        return ["config unreadable"], True
    out = []
    for what in ("class_name", "registered_name", "module"):
        if getattr(own, what) != getattr(node, what):
            out.append(f"{what} {getattr(own, what)!r} vs {getattr(node, what)!r} in the "
                       "model config")
    counted = bool(out)
    if _without_ids(own.config) != _without_ids(node.config):
        keys = sorted(k for k in set(own.config) | set(node.config)
                      if own.config.get(k) != node.config.get(k))
        out.append("config differs in " + ", ".join(map(str, keys[:8])))
        counted = counted or (node.parent is not None and node.parent.role == "model")
    return out, counted


def _untuple(value: Any) -> Any:
    """tf.keras writes tuples in SavedModel metadata as {"class_name": "__tuple__", "items"}."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list):
            return [_untuple(v) for v in value["items"]]
        return {k: _untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untuple(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_graph_config(model_config: Any) -> bool:
    """A Sequential/Functional config (with a layer list), not a subclassed model's."""
    return (is_object_dict(model_config) and isinstance(model_config.get("config"), dict)
            and isinstance(model_config["config"].get("layers"), list))


def _subclassed_root(meta: dict[str, Any], model_config: Any, keras_objects: list[KerasObject],
                     notes: list[str]) -> LayerNode:
    """A subclassed model: the root plus its direct sub-layers, from their own metadata."""
    if is_object_dict(model_config) and isinstance(model_config.get("config"), dict):
        root = parse_model_config(model_config, root_path=ROOT_PATH)
    else:
        root = LayerNode(name=_text(meta.get("name")) or ROOT_PATH, path=ROOT_PATH,
                         class_name=_text(meta.get("class_name")) or "Model", config={},
                         trainable=meta.get("trainable") is not False)
    root.name = _text(meta.get("name")) or root.name
    root.role = "model"
    unreadable: list[str] = []
    for obj in keras_objects:
        parts = obj.node_path.split(".")
        layer = obj.metadata
        if len(parts) != 2 or parts[0] != "root" or obj.identifier == METRIC_IDENTIFIER \
                or not isinstance(layer.get("class_name"), str):
            continue
        layer_name = _text(layer.get("name")) or parts[1]
        config = layer.get("config")
        if not isinstance(config, dict):  # tf.keras may store a Python repr: never evaluated
            unreadable.append(layer_name)
            config = {}
        child = parse_model_config(
            {"class_name": layer["class_name"], "config": {"name": layer_name, **config}},
            root_path=f"{ROOT_PATH}/{layer_name}")
        child.trainable = layer.get("trainable") is not False
        child.parent = root
        root.children.append(child)
    if unreadable:
        notes.append("config saved as Python text (not read) for layer(s) "
                     + ", ".join(unreadable[:10]))
    return root


class _Binder:
    """Pairs LayerNodes with SavedObjectGraph nodes, then gives each layer its variables."""

    def __init__(self, ctx: _Context, keras_by_id: dict[int, KerasObject]) -> None:
        self.ctx = ctx
        self.keras = keras_by_id
        self.bound: dict[int, int] = {}  # id(LayerNode) -> object id
        self.taken: set[int] = set()  # object ids already paired with a layer
        self.unbound: set[str] = set()

    def _name_of(self, obj_id: int) -> str | None:
        meta = self.keras.get(obj_id)
        return _text(meta.metadata.get("name")) if meta is not None else None

    def bind(self, node: LayerNode, obj_id: int) -> None:
        self.bound[id(node)] = obj_id
        self.taken.add(obj_id)
        for index, child in enumerate(node.children):
            target = self._child_object(node, obj_id, child, index)
            if target is None:
                self.unbound.add(child.path)
                continue
            self.bind(child, target)

    def _child_object(self, node: LayerNode, obj_id: int, child: LayerNode,
                      index: int) -> int | None:
        obj = self.ctx.objects[obj_id]
        expected: list[str] = []
        if node.role == "model":
            expected = [f"layer-{index}"]
        elif child.role == "cell":
            expected = ["cell"]
        elif node.class_name == "Bidirectional":
            expected = ["forward_layer" if index == 0 else "backward_layer"]
        elif node.role == "wrapper":
            expected = ["layer"]
        for local in expected:
            target = obj.child(local)
            # "layer-<i>" follows model.layers order, checked against the saved layer name;
            # wrapper/cell slots are unambiguous (a synthetic cell is named "cell" here).
            if target is not None and (node.role != "model"
                                       or self._name_of(target) in (None, child.name)):
                return target
        return self._search(obj_id, child)

    def _search(self, obj_id: int, child: LayerNode) -> int | None:
        """Nearest Keras object below ``obj_id`` with the child's name and class."""
        seen = {obj_id}
        frontier = [obj_id]
        for _depth in range(3):
            following: list[int] = []
            for current in frontier:
                for _local, target in self.ctx.objects[current].children:
                    if target in seen:
                        continue
                    seen.add(target)
                    meta = self.keras.get(target)
                    if meta is not None and meta.metadata.get("name") == child.name and \
                            meta.metadata.get("class_name") in (None, child.class_name) and \
                            target not in self.taken:
                        return target
                    following.append(target)
            frontier = following
        return None

    def attach_weights(self, root: LayerNode) -> None:
        claimed: set[int] = set()
        self._attach(root, claimed)

    def _attach(self, node: LayerNode, claimed: set[int]) -> None:
        for child in node.children:  # innermost owners first: a cell before its RNN layer
            self._attach(child, claimed)
        obj_id = self.bound.get(id(node))
        if obj_id is None:
            return
        obj = self.ctx.objects[obj_id]
        local_names: dict[int, str] = {}
        for local, target in obj.children:
            if not local.isdigit():
                local_names.setdefault(target, local)
        for var_id in self._variables(obj):
            if var_id in claimed:
                continue
            claimed.add(var_id)
            var = self.ctx.objects[var_id].variable
            if var is None:
                continue
            name = local_names.get(var_id) or var.name.rsplit("/", 1)[-1] or f"var_{var_id}"
            node.weights.append(_weight(self.ctx, var_id, var, name))

    def _variables(self, obj: SavedObject) -> list[int]:
        """The layer's ``variables`` list (layer.weights order), else its variable children."""
        listed = obj.child("variables")
        source = self.ctx.objects[listed] if listed is not None else obj
        return [target for _local, target in source.children
                if self.ctx.objects[target].variable is not None]
