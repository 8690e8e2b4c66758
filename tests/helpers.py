"""Assertions other tests share: report documents against the shipped JSON Schema, SARIF logs
against the SARIF 2.1.0 structure (a subset of the OASIS schema, written here: no downloads);
hand-built graphs; the command line run on a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from inspector.findings import Finding
from inspector.graph import LayerNode, ModelGraph, TensorRef, WeightInfo
from inspector.report.json_out import load_schema
from inspector.rules.registry import run_rules, select_rules
from inspector.stats import StatsCache

# Peak RSS (KiB) of the running process, for scripts that measure the static pass in a
# child. Not ``ru_maxrss``: Linux carries a process's high-water mark across fork and exec,
# so a child of a 1 GB pytest worker would report at least 1 GB. VmHWM belongs to the
# process's own address space, which exec replaces.
PEAK_RSS_KIB = ("int(next(line for line in open('/proc/self/status') "
                "if line.startswith('VmHWM')).split()[1])")


@lru_cache(maxsize=1)
def _report_validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_report(document: dict[str, Any] | str) -> dict[str, Any]:
    """Validate a report (dict or JSON text) against inspector/report/schema.json."""
    doc = json.loads(document) if isinstance(document, str) else document
    errors = sorted(_report_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10])
    return doc


_TEXT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string",
                                                                        "minLength": 1}}}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
_ARTIFACT_LOCATION = {"type": "object", "required": ["uri"],
                      "properties": {"uri": {"type": "string", "minLength": 1},
                                     "uriBaseId": {"type": "string", "minLength": 1},
                                     "index": {"type": "integer", "minimum": 0}}}
# propertyBag.tags: unique strings; GitHub reads security-severity as a number in a string.
_RULE_PROPERTIES = {"type": "object", "properties": {
    "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
    "security-severity": {"type": "string", "pattern": r"^(10\.0|[0-9]\.[0-9])$"}}}
# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that kinspect emits, with the
# constraints the OASIS schema puts on them.
SARIF_SUBSET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "version": {"type": "string"},
                        "rules": {"type": "array", "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": {"type": "string", "minLength": 1},
                                "name": {"type": "string"},
                                "shortDescription": _TEXT,
                                "fullDescription": _TEXT,
                                "help": _TEXT,
                                "helpUri": {"type": "string", "format": "uri",
                                            "pattern": "^https?://"},
                                "defaultConfiguration": {"type": "object", "properties": {
                                    "level": _LEVEL}},
                                "properties": _RULE_PROPERTIES,
                            },
                        }},
                    }},
                }},
                "originalUriBaseIds": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["uri"],
                    "properties": {"uri": {"type": "string", "pattern": "^file:.*/$"}}}},
                "artifacts": {"type": "array", "items": {
                    "type": "object", "properties": {"location": _ARTIFACT_LOCATION}}},
                "invocations": {"type": "array", "items": {
                    "type": "object", "required": ["executionSuccessful"],
                    "properties": {"executionSuccessful": {"type": "boolean"},
                                   "toolExecutionNotifications": {"type": "array", "items": {
                                       "type": "object", "required": ["message"],
                                       "properties": {"message": _TEXT, "level": _LEVEL}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": -1},
                        "level": _LEVEL,
                        "message": _TEXT,
                        "partialFingerprints": {"type": "object",
                                                "additionalProperties": {"type": "string"}},
                        "locations": {"type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "physicalLocation": {
                                    "type": "object",
                                    "anyOf": [{"required": ["artifactLocation"]},
                                              {"required": ["address"]}],
                                    "properties": {"artifactLocation": _ARTIFACT_LOCATION}},
                                "logicalLocations": {"type": "array", "items": {
                                    "type": "object",
                                    "anyOf": [{"required": ["name"]},
                                              {"required": ["fullyQualifiedName"]}],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "fullyQualifiedName": {"type": "string"},
                                        "kind": {"type": "string"},
                                    }}},
                            },
                        }},
                        "properties": {"type": "object"},
                    },
                }},
            },
        }},
    },
}


def assert_valid_sarif(text: str) -> dict[str, Any]:
    """Structural SARIF 2.1.0 check plus the cross references the schema cannot express."""
    log = json.loads(text)
    errors = list(jsonschema.Draft202012Validator(SARIF_SUBSET).iter_errors(log))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors)
    for run in log["runs"]:
        rules = run["tool"]["driver"].get("rules", [])
        ids = [r["id"] for r in rules]
        assert len(ids) == len(set(ids)), "duplicate rule ids in tool.driver.rules"
        artifacts = run.get("artifacts", [])
        bases = run.get("originalUriBaseIds", {})
        notes = [n for inv in run.get("invocations", [])
                 for n in inv.get("toolExecutionNotifications", [])]
        for result in [*run.get("results", []), *notes]:
            if "ruleIndex" in result:
                assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            for loc in result.get("locations", []):
                art = loc["physicalLocation"]["artifactLocation"]
                if "index" in art:
                    assert artifacts[art["index"]]["location"] == {
                        k: v for k, v in art.items() if k != "index"}
        for art in artifacts:
            base = art["location"].get("uriBaseId")
            assert base is None or base in bases, f"undefined uriBaseId {base}"
            assert (base is None) == art["location"]["uri"].startswith("file:"), art
    return log


def chain(*layers: LayerNode, name: str = "model", training: dict[str, Any] | None = None,
          outputs: list[str] | None = None, iterations: int | None = None,
          loose: list[WeightInfo] | None = None) -> ModelGraph:
    """A hand-built functional model feeding each layer into the next; paths under ``name``."""
    root = LayerNode(name=name, path=name, class_name="Functional", config={}, role="model")
    previous = "input_layer"
    root.children.append(LayerNode(name=previous, path=f"{name}/{previous}",
                                   class_name="InputLayer", config={}))
    for node in layers:
        node.calls[0].inputs = [TensorRef(previous)]
        previous = node.name
        root.children.append(node)
    for node in root.children:
        node.parent = root
        _reroot(node, name)
    outs = outputs or [layers[-1].name]
    root.config["output_layers"] = [[o, 0, 0] for o in outs]
    return ModelGraph(path="m.keras", format="keras-zip", root=root,
                      output_layers=[f"{name}/{o}" for o in outs], training_config=training,
                      optimizer_iterations=iterations, loose_weights=loose or [])


def _reroot(node: LayerNode, prefix: str) -> None:
    node.path = f"{prefix}/{node.name}"
    for child in node.children:
        _reroot(child, node.path)


def findings(graph: ModelGraph, rule: str) -> list[Finding]:
    """One rule's findings on a hand-built graph; a crashing rule fails the test."""
    found, errors = run_rules(graph, StatsCache(), select_rules([rule], None))
    assert not errors, errors
    return found


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal: progress and colour are only for terminals."""

    def isatty(self) -> bool:
        return True


@dataclass(frozen=True)
class TerminalRun:
    returncode: int
    terminal: str   # what the pseudo-terminal showed
    stdout: str     # stdout when it was a pipe, else ""


def run_on_terminal(args: Sequence[str], *, env: Mapping[str, str] | None = None,
                    stdout_on_terminal: bool = True, timeout: float = 300) -> TerminalRun:
    """``python -m inspector *args`` with stderr (and stdout, unless piped) on a
    pseudo-terminal, as a user at a shell sees it. The terminal is drained while the child
    runs so neither side can block on a full buffer; NO_COLOR/FORCE_COLOR are dropped from
    the environment so only ``env`` decides them."""
    import pty

    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inspector", *args], stdin=subprocess.DEVNULL,
            stdout=follower if stdout_on_terminal else subprocess.PIPE, stderr=follower,
            env={**environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
            cwd=Path(__file__).resolve().parent.parent, text=True)
    finally:
        os.close(follower)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(leader, chunks), daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    finally:
        reader.join(timeout=10)
        os.close(leader)
    return TerminalRun(proc.returncode, b"".join(chunks).decode("utf-8", "replace"), out or "")


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:          # EIO: every writer closed the terminal
            return
        if not chunk:
            return
        chunks.append(chunk)
