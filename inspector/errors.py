"""Errors that end a run on one file with a clear one-line message and exit code 2."""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    NOT_FOUND = "not-found"
    EMPTY = "empty"
    UNSUPPORTED = "unsupported"
    CORRUPT = "corrupt"
    NOT_A_MODEL = "not-a-model"
    TOO_LARGE = "too-large"
    TIMEOUT = "timeout"
    USAGE = "usage"
    # A batch worker died (e.g. a C library crashed on a crafted file) or failed internally.
    CRASHED = "crashed"


class KinspectError(Exception):
    """A problem with the input itself; rendered as ``kinspect: <path>: <message>``."""

    def __init__(self, path: str, message: str, kind: ErrorKind = ErrorKind.CORRUPT) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.kind = kind

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return f"kinspect: {self.path}: {text}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "path": self.path, "message": self.message}
