"""Rule catalog. Importing this package registers every rule module listed here."""

from __future__ import annotations

import importlib
import pkgutil

# Every module in this package except the registry itself holds rules; import them all so a
# new rule module needs no extra wiring.
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")
