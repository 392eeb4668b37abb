"""Items done inside a running shard task, reported to the main process through a small file.

A task runs in the main process, a joblib worker, a Ray actor or a Slurm job; all of them share
the data root (they write their shards there), so each running shard keeps
`logs/progress/<stage>/<index>.json` up to date ({"done": n, "total": m}, at most every
WRITE_EVERY_S) and the main process polls those files. The engine reports a batch as done when
`process()` returns; a stage that wants its bar to move during a long batch calls `advance()` as
items finish (or iterates over `counted(rows)`), from any thread of the task's process.
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

WRITE_EVERY_S = 0.5  # a file write per item would cost more than many items

T = TypeVar("T")


def progress_file(log_dir: Path, stage: str, index: int) -> Path:
    return Path(log_dir) / "progress" / stage / f"{index:06d}.json"


def read_progress(path: Path) -> tuple[int, int] | None:
    """(done, total), or None when the file is absent or being replaced."""
    try:
        data = json.loads(path.read_text())
        return int(data["done"]), int(data["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ShardReporter:
    def __init__(self, path: Path, total: int):
        self.path = Path(path)
        self.total = total
        self.done = 0
        self.written_at = 0.0
        self.lock = threading.Lock()

    def set(self, done: int, force: bool = False) -> None:
        with self.lock:
            self._set(done, force)

    def add(self, n: int) -> None:
        with self.lock:
            self._set(self.done + n, False)

    def _set(self, done: int, force: bool) -> None:
        self.done = max(0, min(done, self.total))
        if force or time.monotonic() - self.written_at >= WRITE_EVERY_S:
            self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")  # the engine's temp-file pattern
        tmp.write_text(json.dumps({"done": self.done, "total": self.total}))
        os.replace(tmp, self.path)
        self.written_at = time.monotonic()


_current: ShardReporter | None = None  # one shard at a time runs in a worker process


@contextmanager
def reporting(path: Path, total: int) -> Iterator[ShardReporter]:
    """While a shard task runs: `advance()` and friends report to `path`."""
    global _current
    reporter = ShardReporter(path, total)
    reporter.set(0, force=True)
    _current = reporter
    try:
        yield reporter
    finally:
        _current = None
        reporter.set(reporter.done, force=True)


def advance(n: int = 1) -> None:
    """`n` more items of the running shard are done (no-op outside a shard task)."""
    reporter = _current
    if reporter is not None:
        reporter.add(n)


def counted(items: Iterable[T]) -> Iterator[T]:
    """Yield each item; when the next is asked for, the previous one counts as done."""
    for item in items:
        yield item
        advance()


def done_so_far() -> int:
    reporter = _current
    return 0 if reporter is None else reporter.done


def settle(done: int) -> None:
    """The engine's correction: exactly `done` items are done (after a batch, or before a retry)."""
    reporter = _current
    if reporter is not None:
        reporter.set(done)
