"""``python -m inspector.probe PLAN``: the probe child (see child.py), for running it by hand.

kinspect itself starts the child with ``python -I -c`` and an explicit import path
(``runner.child_command``): ``-m`` would put the current directory first on ``sys.path``.
"""

from __future__ import annotations

from inspector.probe.child import main

raise SystemExit(main())
