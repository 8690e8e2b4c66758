"""Python pickles an application keeps in a model file beside the Keras model.

The readers list each stream's imports statically (inspector/readers/pickle_scan.py); this
module judges them. Keras never unpickles these streams, so loading the model with Keras is
unaffected: the risk is the application that wrote them and reads them back.
"""

from __future__ import annotations

from collections.abc import Iterator

from inspector.graph import EmbeddedPickle
from inspector.rules.registry import Hit, RuleContext, register
from inspector.rules.security_rules import DANGEROUS_BUILTINS, DANGEROUS_MODULES

# What a pickle of plain data imports; calling any of these builds a value, nothing more.
SAFE_IMPORTS = frozenset({
    *(f"{m}.{n}" for m in ("builtins", "__builtin__") for n in (
        "set", "list", "dict", "tuple", "frozenset", "complex", "slice", "bytearray", "bytes",
        "int", "float", "str", "bool", "range")),
    "collections.OrderedDict", "collections.deque", "collections.Counter",
    *(f"{p}.multiarray.{n}" for p in ("numpy.core", "numpy._core")
      for n in ("_reconstruct", "scalar")),
    "numpy.dtype", "numpy.ndarray",
})
# functools only wraps callables (partial): the callable it wraps is an import of its own.
# codecs can open files (codecs.open); _codecs.encode is how protocol 2 stores bytes.
PICKLE_DANGEROUS_MODULES = (DANGEROUS_MODULES - {"functools"}) | {"codecs"}
COMPUTED = "<computed>"
SHOWN_IMPORTS = 8


def dangerous_import(name: str) -> bool:
    """An import that runs commands, reads files or reaches code when the stream loads."""
    if name == COMPUTED:
        return True  # names built at load time: what they import cannot be told
    module, _, attr = name.rpartition(".")
    top = module.split(".", 1)[0]
    if top in ("builtins", "__builtin__"):
        return attr in DANGEROUS_BUILTINS
    return top in PICKLE_DANGEROUS_MODULES


def _evidence(found: EmbeddedPickle) -> dict[str, object]:
    dangerous = [i for i in found.imports if dangerous_import(i)]
    others = [i for i in found.imports if i not in SAFE_IMPORTS and i not in dangerous]
    shown = [*dangerous, *others][:SHOWN_IMPORTS]
    rest = len(dangerous) + len(others) - len(shown)
    if shown:
        what = "importing " + ", ".join(shown) + (f" and {rest} more" if rest else "")
    elif found.imports:
        what = "of plain data (imports only " + ", ".join(found.imports[:SHOWN_IMPORTS]) + ")"
    else:
        what = "of plain data (no imports)"
    if not found.complete:
        what += f"; parsing stopped early ({found.stopped}), later imports are unknown"
    return {"where": found.where, "location": found.location, "attribute": found.attribute,
            "protocol": found.protocol, "size": found.size, "imports": list(found.imports),
            "dangerous": dangerous, "complete": found.complete, "what": what}


@register(
    "KIN052", "embedded-pickle", "warning",
    "{where} holds a Python pickle (protocol {protocol}) {what}. Keras never reads it, but "
    "the application that ships this file may unpickle it when it opens the file (unpickling "
    "calls what a stream imports)",
    "Do not open the file with the application's own loader until the pickled classes are "
    "reviewed; re-export only the model (model.save with Keras) and drop the extra data.",
    security_severity=8.0,
)
def embedded_pickle(ctx: RuleContext) -> Iterator[Hit]:
    """The HDF5 file holds Python pickle streams outside the parts Keras reads.

    Why: Keras only reads ``model_config``, ``training_config`` and the weight groups, so
    ``keras.models.load_model`` never touches these bytes and the probe is unaffected. But
    applications ship their own metadata next to the model (medaka 1.0.3 stores
    ``meta/model_function`` as ``np.void(pickle.dumps(...))``, importing
    ``functools.partial`` and ``medaka.models.build_model``) and unpickle it when they open
    the file: unpickling calls whatever the stream imports, so a file edited to import
    ``os.system`` runs a command in that application. kinspect never unpickles: it lists the
    imports with ``pickletools`` over at most 1 MiB per dataset or attribute. A stream that
    imports ``os``, ``subprocess``, ``sys``, ``builtins.eval``/``exec``/``getattr``/
    ``__import__``/``open``, ``importlib``, ``pickle``, ``marshal``, ``types``, ``codecs``
    or similar (or computes the names it imports) is an error; any other stream is a warning
    naming its imports, since even plain data tells you the application will unpickle.
    Streams are recognized by their protocol 2-5 header; headerless protocol 0/1 streams only
    when they parse whole and import something (plain text must not pass for a pickle).

    Fix: do not open the file with the application's loader until the pickled classes are
    reviewed; re-export the model alone with Keras.

    Example: ``f["meta/model_function"] = np.void(pickle.dumps(obj))`` where ``obj``'s
    ``__reduce__`` returns ``(os.system, ("true",))``.
    """
    for found in ctx.graph.embedded_pickles:
        evidence = _evidence(found)
        yield Hit(None, evidence, severity="error" if evidence["dangerous"] else None)
