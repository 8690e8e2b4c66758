"""Rules about the container itself: anomalies the readers saw (bombs, smuggled or escaping
archive members, link cycles...) and files that are two containers at once.

Each ``ContainerIssue`` kind names the rule that reports it in ``CONTAINER_ISSUE_KINDS``
(inspector/graph.py): links into other files stay with untrusted-module-reference, the
HDF5/zip polyglot has its own rule, every other kind is a container-anomaly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from inspector.graph import (
    ANOMALY_RULE,
    CONTAINER_ISSUE_KINDS,
    POLYGLOT_RULE,
    ContainerIssue,
)
from inspector.rules.registry import Hit, RuleContext, register


def _evidence(issue: ContainerIssue) -> dict[str, Any]:
    return {"kind": issue.kind, "where": issue.location, "detail": issue.detail}


def issue_hits(ctx: RuleContext, rule: str,
               evidence: Callable[[ContainerIssue], dict[str, Any]] = _evidence,
               ) -> Iterator[Hit]:
    """One hit per container issue whose kind ``rule`` reports, at the issue's severity: the
    kind table decides both, so every rule that reports container issues builds hits here."""
    for issue in ctx.graph.container_issues:
        if issue.rule == rule:
            yield Hit(None, evidence(issue), severity=issue.severity)


@register(
    "KIN055", POLYGLOT_RULE, "error",
    "the file is both an HDF5 file and a zip archive ({detail}); kinspect read one, Keras "
    "may load the other",
    "Do not load it: re-export the model from a source you trust as a plain .keras or .h5 "
    "file. The probe refuses it unless you pass --trust.",
    security_severity=7.5,
)
def polyglot_container(ctx: RuleContext) -> Iterator[Hit]:
    """The file is an HDF5 file and a zip archive at the same time (a polyglot).

    Why: libhdf5 finds a superblock at byte 0 or at any user-block offset (512, 1024,
    2048...) and ignores bytes after its data; zip readers find the archive from its end (or
    from its start) and ignore bytes before it. A file can therefore hold an innocent HDF5
    model and a zip with a Lambda. kinspect reads one container, and Keras picks the other
    by the file name: a ``.keras`` name goes to the zip, ``.h5`` to libhdf5. The static
    findings describe a model Keras would not load, so the probe refuses the file without
    ``--trust``.

    Fix: do not load the file; get the model again from a source you trust.

    Example: ``cat model.h5 evil.keras > model.keras``, or a zip written into an HDF5 user
    block.
    """
    yield from issue_hits(ctx, POLYGLOT_RULE)


@register(
    "KIN056", ANOMALY_RULE, "warning",
    "{kind} at {where}: {detail}",
    "Treat the file as crafted or damaged: do not load it with Keras; re-export the model from "
    "a source you trust.",
    security_severity=5.0,
)
def container_anomaly(ctx: RuleContext) -> Iterator[Hit]:
    """The container holds something Keras never writes: a bomb, a smuggled or escaping
    archive member, a link cycle, a symbolic link.

    Why: the readers refuse to follow or inflate these and say so, but a loader (Keras,
    h5py, an unzip step) may not be as careful: a dataset that declares terabytes exhausts
    memory, a member named ``../../evil.sh`` lands outside the folder it is extracted to,
    a link cycle never ends. Each kind has its own severity (below); a zip member whose name
    climbs out of the archive and a symbolic link out of a SavedModel directory are errors.
    HDF5 links into other files are reported by untrusted-module-reference and HDF5/zip
    polyglots by polyglot-container.

    Fix: do not load the file; re-export the model from a source you trust.

    Example: a ``.keras`` archive with a member ``../../tmp/evil.sh``.
    """
    yield from issue_hits(ctx, ANOMALY_RULE)


def _kind_table() -> str:
    lines = [f"    - ``{k.name}`` ({k.severity}): {k.meaning}."
             for k in sorted(CONTAINER_ISSUE_KINDS.values(), key=lambda k: k.name)
             if k.rule == ANOMALY_RULE]
    return "\n\n    Kinds:\n\n" + "\n".join(lines) + "\n"


# The kind list in the documentation is the table the severities come from, not a copy.
container_anomaly.__doc__ = (container_anomaly.__doc__ or "").rstrip() + _kind_table()
