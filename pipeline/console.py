"""The terminal, kept apart from engine output.

Engines write to the process's stdout and stderr from C code and from child processes (vLLM's
EngineCore, Ray's workers, onnxruntime, CTranslate2), where no Python setting reaches. So a quiet
build points file descriptors 1 and 2 at the run's log file (every library and every child started
later writes there) and keeps duplicates of the original descriptors for our own output:
`console.stdout` and `console.stderr` write to the terminal whatever fds 1 and 2 point at.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO


def writes_to_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


class ConsoleStream:
    """sys.stdout or sys.stderr as they were before engine output went to the log.

    While output is redirected and sys.<name> writes to the redirected fd, this writes to a
    duplicate of the original fd; otherwise (nothing redirected, or sys.<name> replaced by a test's
    capture) it writes to the current sys.<name>."""

    def __init__(self, name: str, fd: int):
        self.name = name
        self.fd = fd
        self.saved: TextIO | None = None

    def target(self) -> TextIO:
        current = getattr(sys, self.name)
        if self.saved is not None and writes_to_fd(current, self.fd):
            return self.saved
        return current

    def write(self, text: str) -> int:
        return self.target().write(text)

    def flush(self) -> None:
        self.target().flush()

    def isatty(self) -> bool:
        return self.target().isatty()

    def fileno(self) -> int:
        return self.target().fileno()

    def __getattr__(self, name: str):  # encoding, errors, ... as the target has them
        return getattr(self.target(), name)


class Console:
    def __init__(self):
        self.stdout = ConsoleStream("stdout", 1)
        self.stderr = ConsoleStream("stderr", 2)
        self.log_path: Path | None = None
        self._excepthook = None

    @property
    def redirected(self) -> bool:
        return self.log_path is not None

    def send_engine_output_to(self, log_path: Path) -> None:
        """Point fds 1 and 2 at `log_path` (appending); again with another path re-targets them."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if not self.redirected:
            for console_stream, current in ((self.stdout, sys.stdout), (self.stderr, sys.stderr)):
                console_stream.saved = os.fdopen(
                    os.dup(console_stream.fd), "w", buffering=1,
                    encoding=getattr(current, "encoding", None) or "utf-8", errors="backslashreplace")
            self._excepthook = sys.excepthook
            sys.excepthook = self._restore_then_report
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
        finally:
            os.close(log_fd)
        self.log_path = Path(log_path)

    def restore(self) -> None:
        """fds 1 and 2 back to the terminal (no-op when not redirected)."""
        if not self.redirected:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for console_stream in (self.stdout, self.stderr):
            saved = console_stream.saved
            saved.flush()
            os.dup2(saved.fileno(), console_stream.fd)
            saved.close()
            console_stream.saved = None
        if sys.excepthook == self._restore_then_report:
            sys.excepthook = self._excepthook
        self.log_path = None

    def _restore_then_report(self, kind, value, tb) -> None:
        """An uncaught exception (Ctrl-C included) is reported on the terminal, not in the log."""
        hook = self._excepthook or sys.__excepthook__
        self.restore()
        hook(kind, value, tb)


console = Console()
