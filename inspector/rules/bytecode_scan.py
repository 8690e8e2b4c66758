"""Show what a marshalled Python function names, without unmarshalling it.

Keras stores a Lambda's function as base64 of ``marshal.dumps(code)`` (and loads raw marshal
bytes or loosely encoded base64 just as well, see ``func_load_bytes``). Unmarshalling untrusted
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

import binascii
from dataclasses import dataclass, field

_SHORT = {ord("z"), ord("Z")}
_LONG = {ord("a"), ord("A"), ord("u"), ord("t"), ord("s")}
_CODE = ord("c")
_FLAG_REF = 0x80
_MAX_SHOWN = 40
_MAX_LONG = 4096
_MIN_CODE_BYTES = 16
_MAX_ARGS = 255
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


def func_load_bytes(text: str) -> bytes:
    """The bytes Keras' ``func_load`` hands to ``marshal.loads`` for ``text``.

    Both tf.keras and Keras 3 decode with ``codecs.decode(text.encode("ascii"), "base64")``,
    which drops characters outside the base64 alphabet (newlines, spaces, ``-``, ``!``...),
    and when that fails (bad padding, non-ASCII text) they take the string's code points as
    raw bytes (``raw_unicode_escape``): a JSON string may hold the marshal bytes themselves.
    """
    try:
        return binascii.a2b_base64(text.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return text.encode("raw_unicode_escape")


def looks_like_code(raw: bytes) -> bool:
    """Marshalled code object: the ``c`` type byte, then argument counts (small numbers).

    Every Python 3 layout starts with two counts (argcount, then posonly or kw-only
    argcount); text never has the zero bytes a small little-endian count carries.
    """
    if len(raw) < _MIN_CODE_BYTES or (raw[0] & ~_FLAG_REF) != _CODE:
        return False
    return all(int.from_bytes(raw[i:i + 4], "little") <= _MAX_ARGS for i in (1, 5))


def decode_marshalled(value: object) -> bytes | None:
    """The bytes of a string holding a marshalled code object in any encoding Keras'
    ``func_load`` accepts (strict or lenient base64, raw bytes), else None."""
    if not isinstance(value, str) or len(value) < _MIN_CODE_BYTES:
        return None
    raw = func_load_bytes(value)
    return raw if looks_like_code(raw) else None


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
