"""The static pipeline: open the file, compute shared weight stats, run the rule catalog."""

from __future__ import annotations

import os

from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.rules.registry import run_rules, select_rules
from inspector.stats import StatsCache


def analyze_static(path: str | os.PathLike[str], options: Options) -> Report:
    """Everything kinspect can say without TensorFlow; raises KinspectError on bad input."""
    return analyze_graph(open_model(path), options)


def analyze_graph(graph: ModelGraph, options: Options,
                  stats: StatsCache | None = None) -> Report:
    """The rule catalog over an already opened graph (the TUI opens first, shows the tree,
    then runs this in a worker; ``stats`` lets it share the cache it already shows)."""
    stats = StatsCache() if stats is None else stats
    findings, errors = run_rules(graph, stats, select_rules(options.select, options.ignore))
    return Report(graph=graph, findings=findings, errors=errors, stats=stats)
