"""The trust gate: may the probe load this file, and if not, why not.

Loading a Keras file with TensorFlow can run code stored in it, so the probe is refused
(without ``--trust``) when the static pass found such code, or when a security rule that
should have looked crashed on the file. Never imports TensorFlow: a spec lookup says whether
it is installed.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from inspector.probe import protocol

if TYPE_CHECKING:
    from inspector.findings import Finding
    from inspector.options import Options
    from inspector.report.model import Report

# Static findings that keep the probe off without --trust: code the file would run, and a
# polyglot file (Keras may load a different model than the one the static pass read).
RISKY_RULES = ("lambda-layer", "custom-object", "untrusted-module-reference",
               "polyglot-container", "savedmodel-metadata-mismatch", "savedmodel-dangerous-op")
# embedded-pickle is deliberately not here: Keras' load_model (all the probe calls) never
# reads the groups those pickles sit in, let alone unpickles them; only the application that
# wrote them does, and the probe never runs that application's loader.
# custom-object kinds Keras only looks up to compile the model: the probe loads with
# compile=False, which never reads the root training config (an object there that names a
# module is still untrusted-module-reference's to judge).
COMPILE_ONLY_KINDS = frozenset({"loss", "metric", "optimizer"})


def tensorflow_available() -> bool:
    """Whether the probe can run at all; a spec lookup, never an import."""
    return importlib.util.find_spec("tensorflow") is not None


def skip_reason(report: Report, options: Options) -> tuple[str, str] | None:
    """(status, reason) when the probe must not run; None when it may."""
    if not tensorflow_available():
        return (protocol.STATUS_SKIPPED, "TensorFlow is not installed; install the 'probe' "
                                         "extra (pip install 'kinspect[probe]') to run the probe")
    if not report.graph.has_architecture:
        return (protocol.STATUS_SKIPPED, "the file has no architecture (weights only): "
                                         "nothing to run")
    if options.trust:
        return None
    risky, unchecked = code_evidence(report, options)
    if risky or unchecked:
        where = sorted({f"{f.layer or 'model'} ({f.rule})" for f in risky}
                       | {f"model ({name} could not check it)" for name in unchecked})
        return (protocol.STATUS_REFUSED, "loading would run code from the file: "
                + ", ".join(where) + "; pass --trust to probe it anyway")
    return None


def code_evidence(report: Report, options: Options) -> tuple[list[Finding], list[str]]:
    """Static findings that mean "loading runs code", and the security rules that crashed.

    ``--select``/``--ignore`` silence findings, not this gate: deselected security rules run
    here anyway (their findings only decide the refusal). A security rule that crashed on
    the file could not vouch for it, so it counts as a reason to refuse too.
    """
    from inspector.rules.registry import all_rules, run_rules, select_rules
    from inspector.stats import StatsCache

    risky = [f for f in report.findings if f.rule in RISKY_RULES and f.source == "static"
             and not compile_only(f)]
    chosen = {r.name for r in select_rules(options.select, options.ignore)}
    skipped = [r for r in all_rules() if r.name in RISKY_RULES and r.name not in chosen]
    errors = list(report.errors)
    if skipped:
        more, more_errors = run_rules(report.graph, report.stats or StatsCache(), skipped)
        risky += [f for f in more if not compile_only(f)]
        errors += more_errors
    unchecked = sorted({str(e.get("source", "")).removeprefix("rule:") for e in errors
                        if e.get("kind") == "rule-crashed"
                        and str(e.get("source", "")).removeprefix("rule:") in RISKY_RULES})
    return risky, unchecked


def compile_only(finding: Finding) -> bool:
    """A custom-object finding that names a loss, metric or optimizer of the model's own
    training config and nothing to import: with compile=False no loader looks it up (Keras 2
    files naming their own metric functions, as medaka's do, load and run without them)."""
    evidence = finding.evidence
    where = evidence.get("where")
    return (finding.rule == "custom-object" and finding.layer is None
            and evidence.get("kind") in COMPILE_ONLY_KINDS and evidence.get("module") is None
            and isinstance(where, str) and where.startswith("training_config"))
