"""``python -m inspector.probe PLAN``: the probe child (see child.py)."""

from __future__ import annotations

from inspector.probe.child import main

raise SystemExit(main())
