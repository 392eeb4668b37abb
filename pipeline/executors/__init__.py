"""Executors run shard tasks; they are interchangeable because a task is self-contained."""
from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from pipeline.task import ShardTask


class Executor(Protocol):
    def map(self, tasks: Iterable[ShardTask], workers: int) -> Iterator[dict]:
        """Run tasks, yielding each finished shard's ledger record (any order)."""
        ...

    def close(self) -> None: ...


def make_executor(settings) -> Executor:
    if settings.name == "local":
        from pipeline.executors.local import LocalExecutor

        return LocalExecutor()
    if settings.name == "ray":
        from pipeline.executors.ray import RayExecutor

        return RayExecutor(settings)
    from pipeline.errors import ConfigError

    raise ConfigError(f"executor.name must be 'local' or 'ray', got {settings.name!r}")
