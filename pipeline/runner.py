"""Plans and runs the stages in order; skips shards whose fingerprint is already on disk."""
from __future__ import annotations

import itertools
import logging
import time
from typing import Iterator

import pyarrow.parquet as pq

from pipeline.config import RunConfig, StageNode
from pipeline.data_root import claim, remove_stale_temp_files
from pipeline.errors import ConfigError, InfrastructureError, MissingModelError, is_infrastructure
from pipeline.executors import Executor, make_executor
from pipeline.executors.interpreter import InterpreterExecutor, check_interpreter
from pipeline.fingerprint import digest, shard_fingerprint
from pipeline.ledger import engine_versions, load_record
from pipeline.progress import StageProgress
from pipeline.registry import stage_class
from pipeline.shards import SHARD_DIGITS, Layout, atomic_write_json
from pipeline.stage import SourceStage, Stage
from pipeline.task import ShardTask

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, run: RunConfig, executor: Executor | None = None):
        self.run = run
        self.context = run.context
        self.layout = Layout(self.context["data_root"])
        self.executor = executor or make_executor(run.root.executor)
        self.by_name = {n.name: n for n in run.stages}
        self.prepare_s: dict[str, float] = {}  # stage -> seconds its prepare() took in this run
        # stage -> seconds it still needs (pipeline.plan.remaining_seconds), for the build's ETA
        self.estimates: dict[str, float | None] = {}

    # -- planning ---------------------------------------------------------------------------
    def order(self) -> list[StageNode]:
        """The selected stages in config order, checked to come after the stages they read."""
        selected = [n for n in self.run.stages if self.run.only is None or n.name in self.run.only]
        position = {n.name: i for i, n in enumerate(self.run.stages)}
        for node in selected:
            for upstream in self.describe(node).input_columns():
                if upstream not in position:
                    raise ConfigError(f"stage {node.name!r} reads {upstream!r}, which is not configured")
                if position[upstream] > position[node.name]:
                    raise ConfigError(f"stage {node.name!r} is listed before its input {upstream!r}")
        return selected

    def describe(self, node: StageNode) -> Stage:
        """A stage instance without setup(): enough to ask for inputs and schema."""
        return stage_class(node.target or node.kind)(node.name, node.settings, self.context)

    def upstream(self, node: StageNode) -> list[str]:
        """Every stage `node` reads from, directly or further up, in config order."""
        found: set[str] = set()
        todo = [node.name]
        while todo:
            for name in self.describe(self.by_name[todo.pop()]).input_columns():
                if name not in found and name in self.by_name:
                    found.add(name)
                    todo.append(name)
        return [n.name for n in self.run.stages if n.name in found]

    def lineage(self, node: StageNode) -> dict[str, dict[str, str]]:
        return {name: engine_versions(self.layout, name) for name in self.upstream(node)}

    def is_done(self, stage: str, index: int, fingerprint: str) -> bool:
        record = load_record(self.layout.shard_record(stage, index))
        return bool(record) and record.get("fingerprint") == fingerprint and self.shard_is_intact(stage, index, record)

    def shard_is_intact(self, stage: str, index: int, record: dict) -> bool:
        shard = self.layout.shard(stage, index)
        return shard.exists() and shard.stat().st_size == record["bytes"]

    def in_shard_range(self, index: int) -> bool:
        """stages.shards=[start, end] runs only those shards (one slice of a Slurm job array)."""
        return self.run.shards is None or self.run.shards[0] <= index < self.run.shards[1]

    def source_tasks(self, node: StageNode, stage: SourceStage, counter: list[int]) -> Iterator[ShardTask]:
        identity = digest(stage.source_identity())
        records = stage.read()
        for index in itertools.count():
            chunk = list(itertools.islice(records, self.run.root.shard_size))
            if not chunk:
                break
            counter[0] = index + 1
            if not self.in_shard_range(index):
                continue
            inputs = [identity, digest(chunk)]
            fp = shard_fingerprint(node.kind, stage.version, node.settings, inputs)
            if self.is_done(node.name, index, fp):
                yield None  # type: ignore[misc]  # a skipped shard, for progress accounting
                continue
            yield ShardTask(node.name, node.kind, node.settings, self.context, index, fp, inputs, records=chunk,
                            target=node.target)

    def upstream_shard_count(self, node: StageNode, stage: Stage) -> int:
        first = next(iter(stage.input_columns()))
        record = load_record(self.layout.stage_record(first))
        if record is None:
            raise ConfigError(f"stage {node.name!r} needs {first!r}, which has not run in {self.layout.root}")
        return record["num_shards"]

    def downstream_tasks(self, node: StageNode, stage: Stage, num_shards: int) -> Iterator[ShardTask]:
        input_shards = {
            upstream: [str(self.layout.shard(upstream, i)) for i in range(num_shards)]
            for upstream in stage.input_columns()
        }
        preparing = time.time()
        prepared = stage.prepare(input_shards)
        self.prepare_s[node.name] = round(time.time() - preparing, 3)
        context = {**self.context, "prepared": prepared}
        for index in filter(self.in_shard_range, range(num_shards)):
            inputs, fps = {}, []
            for upstream in stage.input_columns():
                record = load_record(self.layout.shard_record(upstream, index))
                if record is None:
                    raise ConfigError(f"shard {index} of {upstream!r} is missing; run {upstream!r} first")
                inputs[upstream] = str(self.layout.shard(upstream, index))
                fps.append(record["fingerprint"])
            fp = shard_fingerprint(node.kind, stage.version, node.settings, fps + [digest(prepared)])
            if self.is_done(node.name, index, fp):
                yield None  # type: ignore[misc]
                continue
            yield ShardTask(node.name, node.kind, node.settings, context, index, fp, fps, inputs=inputs,
                            target=node.target)

    # -- running ----------------------------------------------------------------------------
    def run_stage(self, node: StageNode) -> dict:
        stage = self.describe(node)
        stage.lineage = self.lineage(node)
        started = time.time()
        log.info("stage %s: started", node.name, extra={"console": not self.run.root.progress})  # else: its bar
        counter = [0]
        if isinstance(stage, SourceStage):
            tasks = self.source_tasks(node, stage, counter)
            shard_items = None
        else:
            counter[0] = self.upstream_shard_count(node, stage)
            tasks = self.downstream_tasks(node, stage, counter[0])
            first = next(iter(stage.input_columns()))
            shard_items = {i: (load_record(self.layout.shard_record(first, i)) or {}).get("rows", 0)
                           for i in filter(self.in_shard_range, range(counter[0]))}
        names = [n.name for n in self.order()]
        progress = StageProgress(
            node.name, shard_items, enabled=self.run.root.progress, log_dir=self.layout.logs(),
            log_every_s=self.run.root.progress_log_s,
            estimate_s=self.estimates.get(node.name),
            later_estimates={n: self.estimates.get(n) for n in names[names.index(node.name) + 1:]}
            if node.name in names else {})
        skipped = 0

        def pending() -> Iterator[ShardTask]:
            nonlocal skipped
            # The task generators yield one entry per shard in range, in index order.
            first_index = self.run.shards[0] if self.run.shards else 0
            for index, task in enumerate(tasks, start=first_index):
                if task is None:
                    skipped += 1
                    record = load_record(self.layout.shard_record(node.name, index)) or {}
                    progress.skip(index, record.get("rows_in", record.get("rows", 0)))
                else:
                    progress.dispatched(task.index)
                    yield task

        ran = 0
        executor = InterpreterExecutor(node.settings.python) if node.settings.python else self.executor
        try:
            for record in executor.map(pending(), node.settings.workers):
                ran += 1
                progress.done(record)
        finally:
            progress.close()
            if executor is not self.executor:
                executor.close()
        num_shards = counter[0]
        self.remove_shards_beyond(node.name, num_shards)
        finalizing = time.time()
        if self.run.shards is None:
            stage.finalize([str(self.layout.shard(node.name, i)) for i in range(num_shards)])
        else:  # other slices may still be running; a later full run (all shards done) finalizes
            log.info("stage %s: ran shards %s only; finalize() waits for a run over all shards",
                     node.name, list(self.run.shards))
        summary = {
            "stage": node.name,
            "kind": node.kind,
            "num_shards": num_shards,
            "shards_run": ran,
            "shards_skipped": skipped,
            "shard_range": list(self.run.shards) if self.run.shards else None,
            "elapsed_s": round(time.time() - started, 3),
            # Outside any shard: `status` and the plan's rates add them to the shards' time.
            "prepare_s": self.prepare_s.get(node.name, 0.0),
            "finalize_s": round(time.time() - finalizing, 3),
            "finished": time.time(),
        }
        atomic_write_json(self.layout.stage_record(node.name), summary)
        log.info("stage %s: %d shards (%d run, %d already done) in %.1fs",
                 node.name, num_shards, ran, skipped, summary["elapsed_s"])
        return summary

    def remove_shards_beyond(self, stage: str, num_shards: int) -> None:
        """A smaller rerun (lower source.limit) must not leave old shards behind."""
        for directory, pattern in ((self.layout.shard(stage, 0).parent, "shard-*.parquet"),
                                   (self.layout.manifest_dir(stage), "*-*.*")):
            for path in directory.glob(pattern):
                stem = path.stem.split("-")[-1]
                if len(stem) == SHARD_DIGITS and stem.isdigit() and int(stem) >= num_shards:
                    path.unlink()

    def preflight(self, missing: list[str] | None = None) -> list[StageNode]:
        """User errors that can be found before any work: one line, nothing written. With `missing`
        (a plan), a model only the user can supply (MissingModelError) is listed there instead."""
        selected = self.order()
        names = {n.name for n in selected}
        for node in selected:
            stage = self.describe(node)
            try:
                stage.check()
            except MissingModelError as exc:
                if missing is None:
                    raise
                missing.append(f"{node.name}: {exc}")
            if node.settings.python:
                self.check_interpreter(node)
            self.check_columns(node, stage, names)
            for upstream in stage.input_columns():
                if upstream not in names and load_record(self.layout.stage_record(upstream)) is None:
                    raise ConfigError(f"stage {node.name!r} needs {upstream!r}, which has not run in "
                                      f"{self.layout.root}; add it to stages.only or build it first")
        return selected

    def written_columns(self, upstream: str, selected: set[str]) -> set[str] | None:
        """What an upstream stage writes: its schema when this run builds it, else its shards' on disk."""
        if upstream in selected:
            return set(self.describe(self.by_name[upstream]).output_schema().names)
        shard = self.layout.shard(upstream, 0)
        return set(pq.read_schema(shard).names) if shard.exists() else None

    def check_columns(self, node: StageNode, stage: Stage, selected: set[str]) -> None:
        """Every column a stage reads is one its upstream stage writes (a typo in text_column, voice_by...)."""
        for upstream, wanted in stage.input_columns().items():
            written = self.written_columns(upstream, selected)
            if written is None:
                continue  # not built yet: preflight names it below
            missing = sorted(set(wanted) - written)
            if missing:
                raise ConfigError(f"stage {node.name!r} reads {missing} from {upstream!r}, which writes "
                                  f"{sorted(written - {'id'})}")

    def check_interpreter(self, node: StageNode) -> None:
        if self.run.root.executor.name != "local":
            raise ConfigError(f"stages.{node.name}.python works with the local executor only "
                              f"(for {self.run.root.executor.name}, give its workers that environment)")
        problem = check_interpreter(node.name, node.settings.python)
        if problem:
            raise ConfigError(problem)

    def build(self) -> list[dict]:
        selected = self.preflight()
        claim(self.context["data_root"])
        # A slice run must not delete temp files that concurrent slices are writing.
        removed = remove_stale_temp_files(self.layout.root) if self.run.shards is None else 0
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        summaries = []
        try:
            for node in selected:
                summaries.append(self.run_stage(node))
        except InfrastructureError as exc:
            log.error("run stopped: %s. Finished shards are kept; rerun to resume.", exc)
            raise
        except Exception as exc:
            if not is_infrastructure(exc):
                raise
            # An engine's own infrastructure error (a dead vLLM engine between batches, a killed
            # worker pool) that no stage wrapped: the same stop, one line and exit code 2.
            log.error("run stopped: %s: %s. Finished shards are kept; rerun to resume.", type(exc).__name__, exc)
            raise InfrastructureError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.executor.close()
        return summaries
