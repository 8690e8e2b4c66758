"""Show what a marshalled Python function names, without unmarshalling it.

Keras stores a Lambda's function as base64 of ``marshal.dumps(code)``. Unmarshalling untrusted
bytes is unsafe (``marshal`` is documented as not secure against crafted data) and only works
on the Python minor version that wrote it, so kinspect never calls ``marshal.loads``, not even
in a child process. Instead it scans the raw bytes for the marshal string records that code
objects are made of (names, variable names, string constants, file name): a type byte
(``z``/``Z`` short ASCII, ``a``/``A`` ASCII, ``u``/``t`` UTF-8, optionally with the 0x80
reference flag) followed by a length and printable text. The layout of these records has been
stable across Python 3 versions, so the scan works whatever version wrote the code. It is a
display aid: it may miss or over-report a short string, which is fine for a human reading it,
and nothing it finds is executed.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

_SHORT = {ord("z"), ord("Z")}
_LONG = {ord("a"), ord("A"), ord("u"), ord("t"), ord("s")}
_CODE = ord("c")
_FLAG_REF = 0x80
_MAX_SHOWN = 40
_MAX_LONG = 4096
_B64_RE = re.compile(r"^[A-Za-z0-9+/=\s]+$")
# Names that reach the operating system, the interpreter or the network.
RISKY_NAMES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "system", "popen", "Popen", "spawn", "execv",
    "execve", "exec", "eval", "compile", "__import__", "import_module", "importlib", "open",
    "socket", "urllib", "urlopen", "requests", "http", "shutil", "rmtree", "remove", "unlink",
    "pickle", "marshal", "ctypes", "builtins", "__builtins__", "getattr", "setattr",
    "globals", "__globals__", "__code__", "__subclasses__", "get_file", "write_file",
})


@dataclass
class CodeSummary:
    """What a marshalled code blob shows: its size, identifiers and other strings."""

    size: int
    names: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)

    @property
    def risky(self) -> list[str]:
        return sorted({n for n in self.names if n in RISKY_NAMES} | {
            s for s in self.strings if s in RISKY_NAMES})

    def as_evidence(self) -> dict[str, object]:
        return {"code_bytes": self.size, "names": self.names[:_MAX_SHOWN],
                "strings": self.strings[:_MAX_SHOWN], "risky_names": self.risky}


def decode_marshalled(value: object) -> bytes | None:
    """The bytes of a base64 string holding a marshalled code object, else None."""
    if not isinstance(value, str) or len(value) < 24 or not _B64_RE.match(value):
        return None
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 16 or (raw[0] & ~_FLAG_REF) != _CODE:
        return None
    return raw


def _printable(chunk: bytes) -> str | None:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None


def scan_code(raw: bytes) -> CodeSummary:
    """Identifiers and string constants found in marshalled code bytes (never executed)."""
    summary = CodeSummary(size=len(raw))
    seen: set[str] = set()
    i = 1
    end = len(raw)
    while i < end:
        kind = raw[i] & ~_FLAG_REF
        text: str | None = None
        step = 1
        if kind in _SHORT and i + 1 < end:
            n = raw[i + 1]
            if n and i + 2 + n <= end:
                text = _printable(raw[i + 2:i + 2 + n])
                step = 2 + n
        elif kind in _LONG and i + 5 <= end:
            n = int.from_bytes(raw[i + 1:i + 5], "little")
            if 0 < n <= _MAX_LONG and i + 5 + n <= end:
                text = _printable(raw[i + 5:i + 5 + n])
                step = 5 + n
        if text is None:
            i += 1
            continue
        i += step
        if text in seen or not text.strip():
            continue
        seen.add(text)
        (summary.names if text.isidentifier() or text.startswith("<") else
         summary.strings).append(text)
    return summary
