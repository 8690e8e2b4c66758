"""One-line error records that keep the cause.

TensorFlow and Keras put the cause of a failure last: a graph-execution error starts with
"Graph execution error:" and a call stack, and ends with the message that matters
("indices[0,3] = 200 is not in [0, 50)"). Keeping the first N characters of such a text
keeps the stack and loses the cause, so a record keeps the first line and the last
meaningful line, each shortened on its own.
"""

from __future__ import annotations

import re

FIRST_CHARS = 160
LAST_CHARS = 240

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\](\s*name:.*)?$")
# Lines that are context, not the cause: stack frames, node markers, echoed call arguments.
_NOISE = ("File \"", "[[", "Detected at node", "Arguments received by", "•", "Traceback",
          "Exception encountered when calling", "Node:")


def _clean(line: str) -> str:
    line = _FUNCTION_NODE.sub("", _ANSI.sub("", line)).strip()
    return _OP_SUFFIX.sub("", line).strip()


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(exc: BaseException) -> str:
    """``Type: first line … last meaningful line`` (one of them when they are the same)."""
    lines = [_clean(line) for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    name = type(exc).__name__
    if not lines:
        return name
    first = lines[0]
    meaningful = [line for line in lines if not line.startswith(_NOISE)
                  and not line.endswith("(most recent call last):")]
    last = meaningful[-1] if meaningful else lines[-1]
    if last == first or len(lines) == 1:
        return f"{name}: {_shorten(first, FIRST_CHARS + LAST_CHARS)}"
    return f"{name}: {_shorten(first, FIRST_CHARS)} … {_shorten(last, LAST_CHARS)}"
