"""A pool of long-lived Ray actors that run shard tasks, retrying a dead worker's shard elsewhere.

Each actor is one worker process: `run_shard` keeps the stage (and its model) loaded in that
process, so a model loads once per actor and serves many shards. A shard is retried only when
its worker died (process killed, node lost); an exception raised by the stage code itself is
re-raised in the driver exactly as the local executor would raise it. Retrying is safe because a
shard task writes its shard atomically under its own index: a second run overwrites the first
with the same bytes, and its ledger record is written last.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import ray
from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    RayActorError,
    RayTaskError,
    RuntimeEnvSetupError,
    WorkerCrashedError,
)

from pipeline.errors import InfrastructureError
from pipeline.task import ShardTask, run_shard

log = logging.getLogger(__name__)

# The worker (or its node) is gone; the shard it was running can be rerun on another worker.
WORKER_LOST = (RayActorError, WorkerCrashedError, NodeDiedError, ObjectLostError)
WAIT_LOG_S = 60.0  # how long to wait in silence before saying which workers are still starting


@ray.remote
class ShardWorker:
    """One worker process; `run_shard` caches the loaded stage in it (pipeline.task._LOADED)."""

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: ShardTask) -> dict:
        return run_shard(task)


@dataclass
class WorkerResources:
    """What one worker of a stage reserves on the cluster (executor.stage_resources.<stage>)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    workers: int | str | None = None  # pool size: an int, "auto" (all that fit), None: the stage's `workers`


class ActorPool:
    """Up to `size` workers; a worker starts only when a shard is waiting for one."""

    def __init__(self, stage: str, resources: WorkerResources, size: int, max_retries: int):
        self.stage = stage
        self.size = size
        self.max_retries = max_retries
        self.options = {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus,
                        "max_restarts": 0, "max_task_retries": 0}
        self.starting: dict[ray.ObjectRef, object] = {}  # readiness probe -> actor
        self.idle: list = []
        self.running: dict[ray.ObjectRef, tuple[ShardTask, object]] = {}
        self.queue: deque[ShardTask] = deque()  # taken from the source (or retried), not yet running
        self.drained = False
        self.deaths: dict[int, int] = {}  # shard index -> workers that died running it
        self.start_failures = 0

    def alive(self) -> int:
        return len(self.starting) + len(self.idle) + len(self.running)

    def start_worker(self) -> None:
        actor = ShardWorker.options(**self.options).remote()
        self.starting[actor.pid.remote()] = actor

    def run(self, tasks: Iterable[ShardTask]) -> Iterator[dict]:
        """Yield each shard's ledger record as it finishes; any order, each shard exactly once."""
        source = iter(tasks)
        try:
            while True:
                self.fill(source)
                if self.drained and not self.queue and not self.running:
                    return
                ready, _ = ray.wait([*self.running, *self.starting], num_returns=1, timeout=WAIT_LOG_S)
                if not ready:
                    self.log_waiting()
                elif ready[0] in self.starting:
                    self.on_started(ready[0])
                else:
                    record = self.on_finished(ready[0])
                    if record is not None:
                        self.fill(source)  # keep the freed worker busy while the caller takes the record
                        yield record
        finally:
            self.close()

    def fill(self, source: Iterator[ShardTask]) -> None:
        """Hand waiting shards (retries first) to idle workers; start workers for shards that wait."""
        while True:
            if self.idle and self.queue:
                actor, task = self.idle.pop(), self.queue.popleft()
                self.running[actor.run.remote(task)] = (task, actor)
            elif len(self.queue) > len(self.starting) and self.alive() < self.size:
                self.start_worker()
            elif not self.drained and len(self.queue) < len(self.idle) + len(self.starting) + self.size - self.alive():
                task = next(source, None)
                if task is None:
                    self.drained = True
                else:
                    self.queue.append(task)
            else:
                return

    def on_started(self, ref: ray.ObjectRef) -> None:
        actor = self.starting.pop(ref)
        try:
            ray.get(ref)
        except RuntimeEnvSetupError as exc:
            raise InfrastructureError(f"stage {self.stage!r}: Ray could not set up a worker: {exc}") from exc
        except WORKER_LOST as exc:
            self.start_failures += 1
            if self.start_failures > self.max_retries:
                raise InfrastructureError(
                    f"stage {self.stage!r}: {self.start_failures} workers died while starting; last: {exc}"
                ) from exc
            log.warning("stage %s: a worker died while starting (%s); starting another", self.stage, exc)
            return
        self.idle.append(actor)

    def on_finished(self, ref: ray.ObjectRef) -> dict | None:
        task, actor = self.running.pop(ref)
        try:
            record = ray.get(ref)
        except RayTaskError as exc:  # the stage code raised: behave as the local executor does
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise cause from exc
        except WORKER_LOST as exc:
            deaths = self.deaths[task.index] = self.deaths.get(task.index, 0) + 1
            if deaths > self.max_retries:
                raise InfrastructureError(
                    f"stage {self.stage!r} shard {task.index}: its worker died {deaths} times "
                    f"(executor.max_retries={self.max_retries}); last: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("stage %s shard %d: worker died (%s); retrying on another worker (%d/%d)",
                        self.stage, task.index, type(exc).__name__, deaths, self.max_retries)
            ray.kill(actor, no_restart=True)
            self.queue.appendleft(task)
            return None
        self.idle.append(actor)
        return record

    def log_waiting(self) -> None:
        if self.starting and not self.running:
            log.warning("stage %s: waiting for %d workers to start (each needs %s)",
                        self.stage, len(self.starting), self.options)

    def close(self) -> None:
        actors = [*self.starting.values(), *self.idle, *(actor for _, actor in self.running.values())]
        for actor in actors:
            ray.kill(actor, no_restart=True)
        self.starting.clear()
        self.idle.clear()
        self.running.clear()
