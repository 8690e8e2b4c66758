"""Rules about code a model file carries or points at: Lambda bytecode, custom classes,
module references and HDF5 links. They read configs only; nothing is imported or run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inspector.graph import REFERENCE_RULE, ContainerIssue, LayerNode
from inspector.readers.keras_config import (
    is_builtin_module,
    is_builtin_registered_name,
    is_object_dict,
)
from inspector.rules import keras_builtins as kb
from inspector.rules.bytecode_scan import decode_marshalled, scan_code
from inspector.rules.container_rules import issue_hits
from inspector.rules.registry import Hit, RuleContext, register

# Object dicts Keras writes for values, not for classes it has to find.
_VALUE_MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__",
                            "__typespec__", "__lambda__", "__passive_serialization__",
                            "TensorShape", "__ellipsis__", "__slice__"})
_KNOWN_CLASSES = (kb.LAYERS | kb.LOSSES | kb.METRICS | kb.OPTIMIZERS | kb.INITIALIZERS
                  | kb.REGULARIZERS | kb.CONSTRAINTS | kb.DTYPE_POLICIES)
_KNOWN_FUNCTIONS = frozenset(n.lower() for n in kb.FUNCTIONS) | frozenset(
    alias for cls in kb.METRICS | kb.LOSSES
    for alias in (cls.lower(), re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower())) | frozenset({
    "linear", "acc", "accuracy", "crossentropy", "ce", "bce", "cosine", "cosine_proximity",
    "softmax_cross_entropy", "sparse_softmax_cross_entropy", "auc", "precision", "recall",
})
_ACTIVATION_KEYS = frozenset({"activation", "recurrent_activation"})
_FUNCTION_KEYS = frozenset({"loss", "fn"})
# Top-level packages a model config has no business importing (CVE-2025-1550 pattern).
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "ssl", "http", "urllib",
    "urllib3", "requests", "ftplib", "smtplib", "telnetlib", "pickle", "cPickle", "dill",
    "marshal", "shelve", "importlib", "imp", "runpy", "code", "codeop", "ctypes", "cffi",
    "pty", "commands", "webbrowser", "multiprocessing", "threading", "asyncio", "signal",
    "tempfile", "pathlib", "io", "glob", "zipfile", "tarfile", "platform", "inspect",
    "gc", "operator", "functools", "types", "pydoc", "timeit", "trace", "pdb", "bdb",
})
DANGEROUS_BUILTINS = frozenset({
    "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "memoryview",
    "__build_class__", "help",
})
# Keras/TF callables that touch files or the network (CVE-2025-8747: keras.utils.get_file);
# Keras itself refuses these "non-modeling APIs" in recent versions.
NON_MODELING_FUNCTIONS = frozenset({
    "get_file", "load_model", "save_model", "model_from_json", "load_weights", "save_weights",
    "load_img", "save_img", "image_dataset_from_directory", "text_dataset_from_directory",
    "audio_dataset_from_directory", "timeseries_dataset_from_array", "clear_session",
    "enable_unsafe_deserialization", "deserialize_keras_object", "serialize_keras_object",
    "register_keras_serializable", "read_file", "write_file", "py_function", "numpy_function",
    "py_func", "system", "exec", "eval",
})
_SAFE_MODULES = frozenset({"builtins"})
# Layers that read another file when the model loads, and the config key that names it.
_PATH_FIELDS = {"StringLookup": "vocabulary", "IntegerLookup": "vocabulary",
                "TextVectorization": "vocabulary", "TFSMLayer": "filepath",
                "ReloadedLayer": "filepath"}
# Of those, the ones that load a whole SavedModel: its graph, file ops included, runs.
_SAVEDMODEL_LOADERS = frozenset({"TFSMLayer", "ReloadedLayer"})
# Any other config key that names a file, directory or address.
_PATH_KEY_RE = re.compile(r"(^|_)(file|path|filepath|filename|dir|directory|url|uri)$")
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


# ---------------------------------------------------------------- config walking


@dataclass
class Scope:
    """One config to walk and where findings from it belong."""

    layer: LayerNode | None
    where: str
    value: Any
    # ids of dicts walked in a scope of their own (the child layers inside a model's config).
    skip: frozenset[int] = frozenset()
    # "loss", "metrics", "optimizer"... when the value is one entry of a compile config.
    compile_key: str | None = None

    @property
    def own_layer(self) -> LayerNode | None:
        """The layer when this scope is its config: layer-level checks run there, once."""
        return self.layer if self.where == "config" else None

    def items(self) -> Iterator[tuple[str, str | None, Any]]:
        """(location, key, value) for every value below this scope's value."""
        return _walk(self.value, self.where, self.skip)


_LOSS_KEYS = frozenset({"loss", "metrics", "weighted_metrics"})
# Keys of a layer's object dict that name the layer itself (judged through its LayerNode).
_IDENTITY_KEYS = frozenset({"class_name", "config", "module", "registered_name"})


def _scopes(ctx: RuleContext) -> Iterator[Scope]:
    """Every layer's config as the file stores it, everything else its object dict carries
    (call arguments in ``inbound_nodes``, a nested model's ``compile_config``...), and the
    training config. Each object dict in the file is walked once, in the scope of the
    nearest layer; nodes a reader built without a stored dict fall back to their normalized
    config (a synthesized RNN cell repeats its parent's, which is walked already)."""
    graph = ctx.graph
    for extra in graph.extra_configs:  # records a loader also revives objects from
        yield Scope(None, extra.where, extra.value)
    tc = graph.training_config if isinstance(graph.training_config, dict) else None
    training_raw = tc.get("raw") if tc is not None and isinstance(tc.get("raw"), dict) else None
    if graph.root is not None:
        owned = frozenset(id(n.raw) for n in graph.root.walk() if n.raw is not None)
        done: set[int] = set()
        for node in graph.root.walk():
            if node.raw is None:
                if node.parent is None or node.parent.raw is None:
                    yield Scope(node, "config", node.config)
                continue
            if id(node.raw) in done:  # a Bidirectional's backward copy of its forward layer
                continue
            done.add(id(node.raw))
            yield from _layer_scopes(node, node.raw, owned, training_raw)
    if tc is None:
        return
    # The raw compile config keeps what the normalized one drops (metric functions behind
    # their display names, object modules); fall back to the normalized keys without it.
    yield from _compile_scopes(None, "training_config", training_raw if training_raw else {
        k: tc.get(k) for k in ("loss", "optimizer", "metrics")})


def _layer_scopes(node: LayerNode, raw: dict[str, Any], owned: frozenset[int],
                  training_raw: dict[str, Any] | None) -> Iterator[Scope]:
    yield Scope(node, "config", raw.get("config"), owned)
    for key, value in raw.items():
        if key in _IDENTITY_KEYS or value is None:
            continue
        if key == "compile_config" and isinstance(value, dict):
            if value is not training_raw:  # the root's is the training config, walked below
                yield from _compile_scopes(node, "compile_config", value)
            continue
        yield Scope(node, str(key), value, owned)


def _compile_scopes(node: LayerNode | None, prefix: str,
                    compile_config: dict[str, Any]) -> Iterator[Scope]:
    """One scope per compile-config entry (Keras 2 ``optimizer_config`` is the optimizer)."""
    for key, value in compile_config.items():
        if value is None:
            continue
        name = "optimizer" if key == "optimizer_config" else str(key)
        yield Scope(node, f"{prefix}.{name}", value, compile_key=name)


def _walk(value: Any, where: str,
          skip: frozenset[int] = frozenset()) -> Iterator[tuple[str, str | None, Any]]:
    """(location, key, value) for every value in a config, depth first; dicts in ``skip``
    (walked in their own scope) are left out."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(sub, dict) and id(sub) in skip:
                continue
            loc = f"{where}.{key}"
            yield loc, str(key), sub
            yield from _walk(sub, loc, skip)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            if isinstance(sub, dict) and id(sub) in skip:
                continue
            loc = f"{where}[{i}]"
            yield loc, None, sub
            yield from _walk(sub, loc, skip)


def _objects(scope: Scope) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    if is_object_dict(scope.value):
        yield scope.where, None, scope.value
    for loc, key, sub in scope.items():
        if is_object_dict(sub):
            yield loc, key, sub


def _with_root(scope: Scope) -> Iterator[tuple[str, str | None, Any]]:
    yield scope.where, None, scope.value
    yield from scope.items()


def _inside(loc: str, container: str) -> bool:
    return loc == container or loc.startswith((container + ".", container + "["))


def _lambda_locs(scope: Scope) -> list[str]:
    """Where ``__lambda__`` objects sit: their bytecode, defaults and closure belong to
    lambda-layer (a closure may hold module objects, judged by untrusted-module-reference)."""
    return [loc for loc, _k, obj in _objects(scope) if obj.get("class_name") == "__lambda__"]


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _plain_class(name: str) -> str:
    """``Custom>Adam`` (tf.keras writes built-in optimizers so) -> ``Adam``."""
    return name[len("Custom>"):] if name.startswith("Custom>") else name


# ---------------------------------------------------------------- lambda-layer


def _code_blob(value: Any) -> tuple[str, bytes] | None:
    """(form, bytes) when ``value`` is a serialized Python function body."""
    if is_object_dict(value) and value.get("class_name") == "__lambda__":
        cfg = value.get("config")
        code = None
        if isinstance(cfg, dict):
            code = cfg.get("code")
            if code is None and isinstance(cfg.get("value"), list) and cfg["value"]:
                code = cfg["value"][0]
        raw = decode_marshalled(code)
        return ("Keras 3 __lambda__ bytecode", raw or b"")
    if isinstance(value, list) and value and isinstance(value[0], str):
        raw = decode_marshalled(value[0])
        if raw is not None:
            return ("Keras 2 marshalled bytecode", raw)
    if isinstance(value, str):
        raw = decode_marshalled(value)
        if raw is not None:
            return ("marshalled bytecode", raw)
    return None


def _declared_lambdas(value: Any) -> Iterator[tuple[str, str]]:
    """(field, type key) for each ``<field>_type: "lambda"`` of a dict whose field is set.

    tf.keras hands such a field to ``func_load`` whatever it holds: Lambda ``function``
    (``function_type``), ``output_shape``, ``mask``; RNN cell wrappers ``residual_fn``,
    ``dropout_fn``.
    """
    if not isinstance(value, dict):
        return
    for key, kind in value.items():
        if isinstance(key, str) and key.endswith("_type") and kind == "lambda":
            field = key[: -len("_type")]
            if value.get(field) is not None:
                yield field, key


def _with_code(evidence: dict[str, Any], raw: bytes | None) -> dict[str, Any]:
    """``evidence`` plus what a scan of the bytecode shows (an empty blob scans as 0 bytes)."""
    return {**evidence, **(scan_code(raw).as_evidence() if raw else {"code_bytes": 0})}


def _lambda_function(node: LayerNode) -> dict[str, Any]:
    """What a Lambda layer's ``function`` is: bytecode (with its scan) or a named function."""
    fn = node.config.get("function")
    blob = _code_blob(fn)
    if blob is not None:
        form, raw = blob
        return _with_code({"form": form}, raw)
    if is_object_dict(fn):
        return {"form": "named function", "function": fn.get("config"),
                "module": fn.get("module")}
    if isinstance(fn, str):
        return {"form": "named function", "function": fn, "module": node.config.get("module")}
    return {"form": "unknown function encoding"}


def _describe(evidence: dict[str, Any]) -> str:
    if "code_bytes" in evidence:
        names = ", ".join(evidence.get("names", [])[:8]) or "none readable"
        return f"{evidence['form']}, {evidence['code_bytes']} bytes; names: {names}"
    return f"{evidence['form']} {evidence.get('function')!s}"


@register(
    "KIN009", "lambda-layer", "warning",
    "{layer}: {what} ({detail}); loading runs this code",
    "Replace the Lambda with a built-in or a registered custom layer; load only files you "
    "trust (Keras 3 safe_mode refuses it, tf.keras 2 runs it without asking).",
    security_severity=9.0,
)
def lambda_layer(ctx: RuleContext) -> Iterator[Hit]:
    """A Lambda layer (at any depth) or serialized Python code anywhere in the configs.

    Why: a Lambda layer stores its function as marshalled Python bytecode (Keras 2: a base64
    list in ``function``; Keras 3: a ``__lambda__`` object), and Keras 3 can store lambda
    losses and metrics the same way. Loading the model rebuilds and runs that code: tf.keras 2
    does it for ``.h5`` files without any check, so a model file can execute anything.
    The bytecode also only loads on the Python minor version that wrote it, a common reason
    a model "cannot be loaded" elsewhere. kinspect never runs or unmarshals it; it shows the
    code size and the names and strings found by scanning the raw bytes, and raises the
    finding to an error when those names reach the OS, the interpreter or the network.

    Fix: rewrite the Lambda as a built-in layer (Rescaling, Reshape, keras.ops in a custom
    layer registered with ``register_keras_serializable``) and save again.

    Keras decodes that bytecode leniently (base64 with stray characters or none at all: raw
    marshal bytes in the JSON string), so kinspect recognizes code in any of those encodings,
    and any field declared ``<field>_type: "lambda"`` (RNN cell wrappers' ``residual_fn``,
    a Lambda's ``mask``) counts whatever it holds.

    Example: ``Lambda(lambda x: x * 2)`` saved by tf.keras on Python 3.11: about 170 bytes
    of bytecode naming ``x`` and ``<lambda>``.
    """
    for scope in _scopes(ctx):
        node = scope.layer
        covered: set[str] = set()
        if scope.own_layer is not None and scope.own_layer.class_name == "Lambda":
            evidence = _lambda_function(scope.own_layer)
            shape_fn = _code_blob(node.config.get("output_shape"))
            if shape_fn is not None:
                evidence["output_shape_code_bytes"] = len(shape_fn[1])
            covered.update({f"{scope.where}.function", f"{scope.where}.output_shape"})
            yield _lambda_hit(node, "Lambda layer", evidence)
        for loc, _key, value in _with_root(scope):
            if any(_inside(loc, c) for c in covered):
                continue
            for field, type_key in _declared_lambdas(value):
                where = f"{loc}.{field}"
                if where in covered:
                    continue
                covered.add(where)
                blob = _code_blob(value[field])
                evidence = _with_code({"form": f"{type_key}: lambda", "where": where},
                                      blob[1] if blob else None)
                yield _lambda_hit(node, f"function declared as a lambda at {where}", evidence)
            blob = _code_blob(value)
            if blob is None:
                continue
            covered.add(loc)
            form, raw = blob
            yield _lambda_hit(node, f"serialized code at {loc}",
                              _with_code({"form": form, "where": loc}, raw))


def _lambda_hit(node: LayerNode | None, what: str, evidence: dict[str, Any]) -> Hit:
    risky = evidence.get("risky_names") or []
    return Hit(node, {"what": what, "detail": _describe(evidence), **evidence},
               severity="error" if risky else None)


# ---------------------------------------------------------------- custom-object


def _trusted_module(module: str) -> bool:
    return is_builtin_module(module) or module in _SAFE_MODULES


def _module_reason(module: Any, what: str) -> str | None:
    """Why a stored ``module`` points outside Keras (``what`` says to what), None if it
    does not or is absent."""
    if module is None:
        return None
    if not isinstance(module, str):  # crafted: not even a name
        return f"module given as {type(module).__name__}, not a name"
    return None if _trusted_module(module) else f"{what} {module}"


def _custom_reason(class_name: str, module: Any, registered: Any) -> str | None:
    """Why an object dict / layer names non-Keras code, or None when it is built in."""
    if isinstance(registered, str) and ">" in registered and not (
            registered.startswith("Custom>") or is_builtin_registered_name(registered)):
        return f"registered as {registered}"
    plain = _plain_class(class_name)
    if ">" in plain:
        return f"registered as {plain}"
    if (reason := _module_reason(module, "defined in module")) is not None:
        return reason
    if module is None and plain not in _KNOWN_CLASSES:
        # A Keras 3 module under keras.* vouches for the class (applications define a few
        # private layers); Keras 2 files carry no module, so only the name can tell.
        return "not a Keras class"
    return None


def _function_reason(name: Any, module: Any) -> str | None:
    if not isinstance(name, str):
        return None
    if name == "<lambda>":  # Keras 2 saved an anonymous function by its name alone
        return "a lambda that was not saved"
    if ">" in name:
        return f"registered function {name}"
    if (reason := _module_reason(module, "function from module")) is not None:
        return reason
    if name.rsplit(".", 1)[-1].lower() not in _KNOWN_FUNCTIONS:
        return "not a Keras function"
    return None


def _kind_of(scope: Scope, key: str | None) -> str:
    kind = scope.compile_key
    if kind in _LOSS_KEYS or kind == "optimizer":
        return {"metrics": "metric", "weighted_metrics": "metric"}.get(str(kind), str(kind))
    if key and key.endswith("_initializer"):
        return "initializer"
    if key and key.endswith("_regularizer"):
        return "regularizer"
    if key and key.endswith("_constraint"):
        return "constraint"
    if key in _ACTIVATION_KEYS:
        return "activation"
    return "object"


def _loss_or_metric_entry(scope: Scope, loc: str, key: str | None) -> bool:
    """A string naming a loss/metric: the compile entry itself, its list items, or values of
    a per-output dict."""
    if scope.compile_key not in _LOSS_KEYS:
        return False
    if key is None:
        return True
    return loc == f"{scope.where}.{key}" and not is_object_dict(scope.value)


@register(
    "KIN010", "custom-object", "warning",
    "{layer}: {kind} {name} is not a built-in Keras object ({reason}); loading needs its code",
    "Ship the defining code with the model and load with custom_objects=..., or replace it "
    "with built-in Keras objects.",
    security_severity=5.0,
)
def custom_object(ctx: RuleContext) -> Iterator[Hit]:
    """A layer, loss, metric, optimizer, initializer or activation that is not built into Keras.

    Why: the file only names the class or function (a ``registered_name`` like
    ``my_pkg>Scale``, a ``module`` outside keras/tensorflow, or a class name Keras does not
    ship). Loading without that code fails, and loading with a different version of it (a
    changed ``call`` or default) silently changes predictions. Training configs that mention
    a lambda loss (``"<lambda>"``) cannot be recompiled either. Lambda layers are reported by
    lambda-layer, module imports of dangerous packages by untrusted-module-reference.

    Fix: keep the defining code versioned with the model and pass ``custom_objects`` (or
    register it with ``register_keras_serializable``), or rebuild with built-in layers.

    Example: a ``.keras`` file with ``{"class_name": "Scale", "module": "my_layers",
    "registered_name": "my_pkg>Scale"}``.
    """
    for scope in _scopes(ctx):
        node = scope.layer
        seen: set[str] = set()
        own = scope.own_layer
        if own is not None and own.class_name != "Lambda" and not (
                own.role == "operation" and is_builtin_module(own.module)):
            module = _stored_module(own)
            reason = _custom_reason(own.class_name, module, own.registered_name)
            judged = isinstance(module, str) and _judge(_ModuleRef(
                scope.where, module, own.class_name, True,
                _is_registered(own.class_name, own.registered_name)))
            if reason is not None and not judged:
                yield Hit(own, {"kind": "model" if own.role == "model" else "layer",
                                "name": own.class_name, "reason": reason,
                                "module": module if isinstance(module, str) else None,
                                "registered_name": own.registered_name})
        lambdas = _lambda_locs(scope)
        for loc, key, obj in _objects(scope):
            cls = obj.get("class_name")
            if not isinstance(cls, str) or cls in _VALUE_MARKERS or cls == "module":
                continue
            ref = _object_ref(loc, obj)
            if any(_inside(loc, c) for c in lambdas) or (ref is not None and _judge(ref)):
                continue
            if cls == "function":
                reason = _function_reason(obj.get("config"), obj.get("module"))
                name = obj.get("config")
            else:
                reason = _custom_reason(cls, obj.get("module"), obj.get("registered_name"))
                name = cls
            if reason is not None and loc not in seen:
                seen.add(loc)
                yield Hit(node, {"kind": _kind_of(scope, key), "name": name, "reason": reason,
                                 "where": loc, "module": obj.get("module")})
        for loc, key, value in _with_root(scope):
            if not isinstance(value, str) or any(_inside(loc, c) for c in lambdas):
                continue
            checked = key in _ACTIVATION_KEYS or key in _FUNCTION_KEYS or (
                _loss_or_metric_entry(scope, loc, key))
            if not checked:
                continue
            reason = _function_reason(value, None)
            if reason is not None:
                yield Hit(node, {"kind": _kind_of(scope, key), "name": value, "reason": reason,
                                 "where": loc})


# ---------------------------------------------------------------- untrusted-module-reference


@dataclass
class _ModuleRef:
    where: str
    module: str
    name: str | None
    imported: bool  # True when a Keras loader would import the module to find ``name``
    registered: bool


def _stored_module(node: LayerNode) -> Any:
    """The layer's ``module`` as stored (readers keep only a string one on the node)."""
    return node.raw.get("module") if node.raw is not None and "module" in node.raw \
        else node.module


def _module_refs(scope: Scope) -> Iterator[_ModuleRef]:
    node = scope.own_layer
    if node is not None and isinstance(node.module, str):
        yield _ModuleRef(scope.where, node.module, node.class_name, True,
                         _is_registered(node.class_name, node.registered_name))
    object_locs: set[str] = set()
    for loc, _key, obj in _objects(scope):
        object_locs.add(loc)
        ref = _object_ref(loc, obj)
        if ref is not None:
            yield ref
    dicts = [(scope.where, scope.value)] + [(loc, v) for loc, _k, v in scope.items()]
    for loc, value in dicts:
        if isinstance(value, dict) and loc not in object_locs:
            yield from _keras2_module_fields(loc, value)


def _object_ref(loc: str, obj: dict[str, Any]) -> _ModuleRef | None:
    """The module an object dict makes the loader import, if any.

    Normalized configs drop built-in modules, so a bare ``function`` object means a Keras
    function; a ``module`` object (how Keras 3 serializes a module in a lambda's closure)
    imports the module named by its config.
    """
    cls = obj.get("class_name")
    module = obj.get("module")
    if cls == "module" and isinstance(obj.get("config"), str):
        return _ModuleRef(loc, obj["config"], None, True, False)
    if cls == "function":
        name = obj.get("config")
        return _ModuleRef(loc, module if isinstance(module, str) else "keras",
                          name if isinstance(name, str) else None, True,
                          isinstance(name, str) and ">" in name)
    if isinstance(module, str):
        return _ModuleRef(loc, module, cls if isinstance(cls, str) else None, True,
                          _is_registered(str(cls), obj.get("registered_name")))
    return None


def _keras2_module_fields(loc: str, cfg: dict[str, Any]) -> Iterator[_ModuleRef]:
    """Keras 2 Lambda / cell-wrapper fields: ``module`` (with ``function_type``),
    ``output_shape_module`` (``output_shape_type``), ``<x>_fn_module`` (``<x>_fn_type``).

    For bytecode (type ``lambda``) tf.keras only borrows that module's globals when it is
    already imported; for a named function the module is where the function must come from.
    """
    for key, module in cfg.items():
        if not (isinstance(key, str) and isinstance(module, str)):
            continue
        if key == "module":
            kind, fn = cfg.get("function_type"), cfg.get("function")
        elif key.endswith("_module"):
            stem = key[: -len("module")]
            kind = cfg.get(f"{stem}type", cfg.get("output_shape_type"
                                                  if stem == "output_shape_" else None))
            fn = cfg.get(stem.rstrip("_")) if stem != "output_shape_" else cfg.get(
                "output_shape")
        else:
            continue
        named = fn if isinstance(fn, str) else None
        yield _ModuleRef(f"{loc}.{key}", module, named, kind != "lambda", False)


def _outside(path: str) -> bool:
    """An absolute path, a home/parent-relative one, a drive letter or a URL."""
    return bool(_URL_RE.match(path)) or path.startswith(("/", "~", "\\")) or (
        ".." in re.split(r"[\\/]", path)) or bool(re.match(r"^[A-Za-z]:", path))


def _external_paths(scope: Scope) -> Iterator[Hit]:
    """Files a layer reads when the model loads: vocabularies, TFSMLayer/ReloadedLayer
    SavedModels, and any config value under a file/path/dir/url key."""
    reported: set[str] = set()
    node = scope.own_layer
    if node is not None and node.class_name in _PATH_FIELDS:
        key = _PATH_FIELDS[node.class_name]
        path = node.config.get(key)
        where = f"{scope.where}.{key}"
        loader = node.class_name in _SAVEDMODEL_LOADERS
        if isinstance(path, str) and path:
            reported.add(where)
            why = (f"loads the SavedModel {path!r} when the model loads (its graph runs)"
                   if loader else f"reads its vocabulary from the file {path!r}")
            yield _path_hit(node, why, where, path)
        elif loader:
            yield Hit(node, {"why": f"{node.class_name} loads an external SavedModel when the "
                                    "model loads", "where": where, "path": None},
                      severity="warning")
    for loc, key, value in scope.items():
        if key is None or not isinstance(value, str) or not value or loc in reported \
                or not _PATH_KEY_RE.search(key.lower()):
            continue
        yield _path_hit(scope.layer, f"names the file {value!r} ({key})", loc, value)


def _path_hit(node: LayerNode | None, why: str, where: str, path: str) -> Hit:
    """Files outside the model's own folder are errors, relative names warnings."""
    return Hit(node, {"why": why, "where": where, "path": path},
               severity="error" if _outside(path) else "warning")


def _is_registered(class_name: str, registered: Any) -> bool:
    return (">" in class_name and not class_name.startswith("Custom>")) or (
        isinstance(registered, str) and ">" in registered)


def _judge(ref: _ModuleRef) -> tuple[str, str] | None:
    """(severity, why) for a module reference, None when it is harmless."""
    module, name = ref.module, ref.name or ""
    leaf = name.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
    if _top(module) in DANGEROUS_MODULES or ("." in name and _top(name) in DANGEROUS_MODULES):
        return "error", f"names module {module}" + (f" ({name})" if name else "")
    if module == "builtins" and leaf in DANGEROUS_BUILTINS:
        return "error", f"names the Python builtin {leaf}"
    if is_builtin_module(module) and leaf in NON_MODELING_FUNCTIONS:
        return "error", f"names {module}.{leaf}, which reads/writes files or runs code"
    if _trusted_module(module):
        return None
    if not ref.imported or ref.registered:
        return None
    if module == "__main__":  # not a module of its own: whatever script runs the loader
        return "warning", (f"takes {name or 'an object'} from __main__, i.e. from whichever "
                           "script loads the model")
    return "warning", f"makes the loader import module {module} to find {name or 'an object'}"


@register(
    "KIN011", "untrusted-module-reference", "error",
    "{layer}: {why} at {where}",
    "Do not load this file with Keras unless you trust its source; re-create the model from "
    "code you control.",
    security_severity=9.0,
)
def untrusted_module_reference(ctx: RuleContext) -> Iterator[Hit]:
    """The file points the loader at arbitrary Python modules, functions or outside files.

    Why: Keras rebuilds objects from ``module`` + ``class_name`` pairs. A config that names
    ``os``, ``subprocess``, ``builtins.exec`` or a file-touching Keras utility such as
    ``keras.utils.get_file`` makes loading import and call it: the pattern behind
    CVE-2025-1550 and CVE-2025-8747, and a way around ``safe_mode``. Keras 2 Lambda
    ``module`` fields hand that module's globals to the function's bytecode. HDF5 external
    links, external storage and virtual datasets make h5py read other files on this machine;
    soft links can alias datasets. A vocabulary given as a file path is read from outside the
    archive at load time, and TFSMLayer / ReloadedLayer load (and run) a whole SavedModel
    from their ``filepath``. Modules of registered custom objects are left to custom-object;
    other non-Keras imports are warnings, dangerous ones and outside files are errors.

    Every object dict of the config as stored is judged, not only the normalized layer
    configs: call arguments in ``inbound_nodes``, a nested model's ``compile_config``, a
    Sequential's InputLayer entry, dtype policies, a Bidirectional's ``backward_layer``. Only
    whole package names count as Keras (``keras``, ``keras.layers``; not ``keras_x``), and
    ``__main__`` is no module of its own: the loader takes the name from whatever script runs
    it.

    Fix: treat the file as hostile: inspect it, do not load it; re-create the model from code
    and weights you trust.

    Example: ``{"module": "os", "class_name": "system", "config": ...}`` in ``config.json``.
    """
    for scope in _scopes(ctx):
        for ref in _module_refs(scope):
            verdict = _judge(ref)
            if verdict is None:
                continue
            severity, why = verdict
            yield Hit(scope.layer, {"why": why, "where": ref.where, "module": ref.module,
                                    "name": ref.name}, severity=severity)
        yield from _external_paths(scope)
    yield from issue_hits(ctx, REFERENCE_RULE, _link_evidence)


def _link_evidence(issue: ContainerIssue) -> dict[str, Any]:
    return {"why": f"{issue.kind}: {issue.detail}", "where": issue.location, "kind": issue.kind}
