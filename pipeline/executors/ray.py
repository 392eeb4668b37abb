"""executor=ray: shard tasks run on a Ray cluster, one pool of long-lived actors per stage.

The runner still plans, skips done shards and writes the stage records, so resume and
fingerprints are the local executor's; this class only decides where a task runs.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
from collections.abc import Iterable, Iterator

import ray

from pipeline.errors import ConfigError, InfrastructureError
from pipeline.executors.ray_pool import ActorPool, WorkerResources
from pipeline.task import ShardTask

log = logging.getLogger(__name__)


def worker_resources(stage: str, stage_resources: dict) -> WorkerResources:
    values = dict(stage_resources.get(stage) or {})
    known = {f.name for f in dataclasses.fields(WorkerResources)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"executor.stage_resources.{stage}: unknown keys {unknown}; known: {sorted(known)}")
    resources = WorkerResources(**values)
    workers = resources.workers
    if resources.num_cpus < 0 or resources.num_gpus < 0 or not (
            workers is None or workers == "auto" or (isinstance(workers, int) and workers >= 1)):
        raise ConfigError(f"executor.stage_resources.{stage}: needs num_cpus/num_gpus >= 0 and workers "
                          f">= 1, 'auto' or null; got {values}")
    return resources


def workers_that_fit(resources: WorkerResources, nodes: list[dict]) -> int:
    """How many such workers the live nodes hold at once (a worker never spans two nodes)."""
    total = 0
    for node in nodes:
        if not node.get("Alive"):
            continue
        have = node.get("Resources", {})
        per_node = [math.floor(have.get(name, 0.0) / need + 1e-9)
                    for name, need in (("CPU", resources.num_cpus), ("GPU", resources.num_gpus)) if need > 0]
        total += min(per_node) if per_node else 1_000_000
    return total


class RayExecutor:
    def __init__(self, settings):
        self.settings = settings
        self.started_ray = False
        if settings.max_retries < 0:
            raise ConfigError(f"executor.max_retries must be >= 0, got {settings.max_retries}")
        for stage in settings.stage_resources:  # fail on a typo before any work
            worker_resources(stage, settings.stage_resources)

    def connect(self) -> None:
        """Join the configured cluster, or start a local instance; reuse one already joined."""
        if ray.is_initialized():
            return
        kwargs = {"address": self.settings.address, "runtime_env": same_threads_as_here(self.settings.runtime_env)}
        if self.settings.address is None:
            kwargs.update(num_cpus=self.settings.num_cpus, include_dashboard=self.settings.dashboard)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InfrastructureError(f"could not start or join Ray (address={self.settings.address!r}): {exc}") from exc
        self.started_ray = True

    def pool_size(self, stage: str, resources: WorkerResources, stage_workers: int) -> int:
        wanted = stage_workers if resources.workers is None else resources.workers
        fit = workers_that_fit(resources, ray.nodes())
        if fit == 0:
            raise InfrastructureError(
                f"stage {stage!r}: no node of the Ray cluster has num_cpus={resources.num_cpus}, "
                f"num_gpus={resources.num_gpus} for one worker (executor.stage_resources.{stage})")
        if wanted == "auto":
            return fit
        if wanted > fit:
            log.warning("stage %s: %d workers asked, the cluster holds %d; using %d", stage, wanted, fit, fit)
        return min(wanted, fit)

    def map(self, tasks: Iterable[ShardTask], workers: int) -> Iterator[dict]:
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:  # everything already done: no need to touch the cluster
            return
        self.connect()
        resources = worker_resources(first.stage, self.settings.stage_resources)
        size = self.pool_size(first.stage, resources, workers)
        log.info("stage %s: up to %d Ray workers, each with %g CPUs and %g GPUs",
                 first.stage, size, resources.num_cpus, resources.num_gpus)
        pool = ActorPool(first.stage, resources, size, self.settings.max_retries)
        yield from pool.run(itertools.chain([first], tasks))

    def close(self) -> None:
        if self.started_ray and ray.is_initialized():
            ray.shutdown()
        self.started_ray = False


def same_threads_as_here(runtime_env: dict) -> dict:
    """Ray sets OMP_NUM_THREADS=<num_cpus> in its workers; some engines' numerics depend on it
    (Whisper via CTranslate2 transcribed differently with 1 thread than with the default), so
    workers get the driver's effective value and a Ray build matches a local one byte for byte."""
    env_vars = dict(runtime_env.get("env_vars") or {})
    env_vars.setdefault("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count() or 1))
    return {**runtime_env, "env_vars": env_vars}
