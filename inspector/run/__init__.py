"""The run layer: everything between "here are some paths" and "here is the exit code".

One module per job, so the CLI, the worker processes, the TUI and ``kinspect diff`` share
them instead of each assembling open -> rules -> gate -> probe again:

- ``pipeline``: ``inspect_file`` (open, static pass, trust gate, probe) and its stages;
- ``gate``: may the probe load this file (code in it, no TensorFlow, no architecture)?
- ``isolation``: killable worker processes around one file or many;
- ``outcome``: one file to one rendered, picklable record (what a worker sends back);
- ``targets``: paths and directories to the list of model files to inspect;
- ``writers``: records to text / JSON / JSON Lines / SARIF output, and the run's exit code;
- ``command``: the CLI's one-file and many-file runs built from the above;
- ``exit_codes``: the exit codes, defined once.

Library use: ``from inspector.run import inspect_file``. Nothing else is imported here, and
that name only on first use, so ``import inspector.run.gate`` stays light.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "inspect_file":
        from inspector.run.pipeline import inspect_file

        return inspect_file
    raise AttributeError(f"module 'inspector.run' has no attribute {name!r}")
