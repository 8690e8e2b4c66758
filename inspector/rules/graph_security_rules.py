"""Rules about what a SavedModel runs when it loads: the TensorFlow ops in its graph and
function library, and layer records that say something other than the model config.

They read what the SavedModel reader listed; nothing is imported or run.
"""

from __future__ import annotations

from collections.abc import Iterator

from inspector.graph import GraphOps, OpSite
from inspector.rules.registry import Hit, RuleContext, register

# Ops that reach outside the graph: files, Python, the network. A superset of
# ``saved_model_cli scan``'s default denylist (ReadFile, WriteFile, PrintV2).
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
FILE_READ_OPS = frozenset({
    "ReadFile", "MatchingFiles", "ImmutableConst", "WholeFileReader", "WholeFileReaderV2",
    "TextLineReader", "TextLineReaderV2", "TFRecordReader", "TFRecordReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader", "IdentityReader",
    "IdentityReaderV2", "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
    "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2",
    "ExperimentalCSVDataset", "SqlDataset", "ExperimentalSqlDataset", "LMDBDataset",
    "ExperimentalLMDBDataset", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset",
    "LoadDataset", "ExperimentalLoadDataset", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2", "LoadAndRemapMatrix", "GenerateVocabRemapping",
    "DecodeProto", "DecodeProtoV2", "EncodeProto",
})
FILE_WRITE_OPS = frozenset({
    "WriteFile", "PrintV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
    "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary",
    "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent",
    "FlushSummaryWriter", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
    "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2", "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2", "SnapshotDataset",
    "SnapshotDatasetV2", "ExperimentalSnapshotDataset", "FileSystemSetConfiguration",
})
NETWORK_OPS = frozenset({
    "RpcServer", "RpcClient", "RpcCall", "RpcServerRegister", "RpcServerStart",
    "RpcCheckStatus", "RpcGetValue", "DataServiceDataset", "DataServiceDatasetV2",
    "DataServiceDatasetV3", "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2",
})
# Checkpoint ops: standard in the saver's own save / restore functions, nowhere else.
SAVE_OPS = frozenset({"Save", "SaveSlices", "SaveV2", "MergeV2Checkpoints",
                      "ShardedFilename", "ShardedFilespec"})
RESTORE_OPS = frozenset({"Restore", "RestoreSlice", "RestoreV2"})
# Reading a vocabulary file is how lookup tables load their assets: still a file op that
# runs at load time, so it refuses the probe, but reported as a warning.
_WARNING_OPS = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
_KINDS = ((PYTHON_OPS, "calls Python"), (FILE_WRITE_OPS, "writes files"),
          (FILE_READ_OPS, "reads files"), (NETWORK_OPS, "uses the network"),
          (SAVE_OPS, "writes a checkpoint outside the saver"),
          (RESTORE_OPS, "reads a checkpoint outside the saver"))
_SHOWN = 4  # sites named per op in a message


def _dangerous(site: OpSite) -> bool:
    if site.op in SAVE_OPS:
        return site.part != "save"
    if site.op in RESTORE_OPS:
        return site.part != "restore"
    return any(site.op in ops for ops, _what in _KINDS[:4])


def _what(op: str) -> str:
    return next(what for ops, what in _KINDS if op in ops)


def _where(site: OpSite) -> str:
    place = f"function {site.function}" if site.function else "the top-level graph"
    reached = f", reached from signature(s) {', '.join(site.signatures)}" \
        if site.signatures else ""
    return f"node {site.node!r} in {place}{reached}"


def dangerous_sites(ops: GraphOps) -> dict[str, list[OpSite]]:
    """Op -> its sites that must not run untrusted (the probe child checks this too)."""
    found: dict[str, list[OpSite]] = {}
    for op, sites in sorted(ops.sites.items()):
        bad = [s for s in sites if _dangerous(s)]
        if bad:
            found[op] = bad
    return found


@register(
    "KIN051", "savedmodel-dangerous-op", "error",
    "{layer}: the SavedModel graph holds {op} ({what}) at {where}; loading or calling it "
    "runs that op",
    "Do not load or serve this SavedModel unless you trust its source; re-export it from "
    "code you control. kinspect's probe refuses it without --trust.",
    security_severity=9.0,
)
def savedmodel_dangerous_op(ctx: RuleContext) -> Iterator[Hit]:
    """A SavedModel whose graph or function library holds ops that reach files, Python or
    the network.

    Why: ``tf.saved_model.load`` runs the file's functions (restore functions and init ops at
    load, signatures when called), and tf_keras falls back to them for layers it cannot
    rebuild from config. An op such as ``WriteFile``, ``ReadFile``, ``PrintV2`` (which can
    print into a file), ``PyFunc``/``EagerPyFunc`` (Python callbacks) or a checkpoint
    ``SaveV2``/``MergeV2Checkpoints`` aimed at another path runs with the user's rights.
    kinspect walks the top-level GraphDef and every FunctionDef (nested functions through
    their call attributes), with a denylist wider than ``saved_model_cli scan``'s.
    Checkpoint ops are expected in the standard saver: save ops only reachable from
    ``saver_def``'s save tensor and restore ops only reachable from its restore op are not
    reported; anywhere else they are errors. ``InitializeTableFromTextFile`` (how lookup
    tables read vocabulary assets) is a warning. A graph too big to walk under the read cap
    is reported too, since its ops could not be checked.

    Fix: re-export the model without those ops (no ``tf.py_function``/``tf.io`` file calls in
    traced functions), or load it only in a sandbox.

    Example: a ``tf.Module`` whose serving function calls ``tf.io.write_file``.
    """
    ops = ctx.graph.graph_ops
    if ops is None:
        return
    for op, sites in dangerous_sites(ops).items():
        where = "; ".join(_where(s) for s in sites[:_SHOWN])
        if len(sites) > _SHOWN or ops.counts.get(op, 0) > len(ops.sites.get(op, ())):
            where += f" (and more uses of {op})"
        yield Hit(None, {"op": op, "what": _what(op), "where": where, "uses": ops.counts.get(op),
                         "functions": sorted({s.function or "" for s in sites}),
                         "nodes": [s.node for s in sites]},
                  severity="warning" if op in _WARNING_OPS else None)
    if not ops.complete:
        yield Hit(None, {"op": "unlisted ops", "what": "unchecked",
                         "where": "the part past the read cap"},
                  message="model: the SavedModel graph is too big to walk under the read cap; "
                          "its remaining ops could not be checked")


@register(
    "KIN050", "savedmodel-metadata-mismatch", "error",
    "{layer}: the layer's own record in keras_metadata.pb ({where}) disagrees with the model "
    "config: {differs}; tf_keras rebuilds the layer from that record",
    "Treat the file as crafted: do not load it with tf_keras; inspect the record (kinspect "
    "walks it with the security rules) and re-save the model from code you control.",
    security_severity=7.5,
)
def savedmodel_metadata_mismatch(ctx: RuleContext) -> Iterator[Hit]:
    """A Keras 2 SavedModel layer whose own metadata record says something else than the
    model config.

    Why: tf_keras does not rebuild a SavedModel's layers from the root ``model_config``: it
    revives every layer (and metric) from that object's own record in ``keras_metadata.pb``
    (class name, config, Lambda bytecode), and uses the root record's ``config`` to wire them.
    A record that says ``Lambda`` while the model config says ``Activation`` shows one thing
    to every tool that reads the config and runs another at load. Honest files never differ
    (RNN cells and Bidirectional copies, which Keras derives from their parent, may differ in
    config but never in class). kinspect also walks every record with the security rules, so
    code in a record is reported by lambda-layer / custom-object / untrusted-module-reference.

    Fix: do not load the file; re-save the model from code you control.

    Example: ``root.layer-2``'s record holds a Lambda with marshalled bytecode while the model
    config lists an ``Activation`` layer of the same name.
    """
    for extra in ctx.graph.extra_configs:
        if extra.differs:
            yield Hit(extra.layer, {"where": extra.where, "differs": "; ".join(extra.differs),
                                    "record_class": extra.value.get("class_name")})
