"""``python -m inspector`` is the same as the ``kinspect`` console script."""

from inspector.cli import main

raise SystemExit(main())
