"""The static pipeline: open the file, compute shared weight stats, run the rule catalog."""

from __future__ import annotations

import os

from inspector.options import Options
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.rules.registry import run_rules, select_rules
from inspector.stats import StatsCache


def analyze_static(path: str | os.PathLike[str], options: Options) -> Report:
    """Everything kinspect can say without TensorFlow; raises KinspectError on bad input."""
    graph = open_model(path)
    stats = StatsCache()
    findings, errors = run_rules(graph, stats, select_rules(options.select, options.ignore))
    return Report(graph=graph, findings=findings, errors=errors, stats=stats)
