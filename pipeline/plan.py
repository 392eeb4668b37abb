"""A dry run: per selected stage, how many shards are done, stale or still to run, what a build
would take, and which settings changed since the shards were built. Runs no stage, loads no model.

A shard is stale when its record no longer matches the config: its stage's settings or code
version changed, its input shards will change (an upstream shard is stale or differs), or, for a
stage with its own prepare() (which reads all input shards, e.g. a k-means fit), any input shard
will run. A source stage that reads local files is read again and fingerprinted exactly as a build
would; one that would download is not read (its done shards are taken as unchanged).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from pipeline.config import RunConfig, StageNode, _merge
from pipeline.executors.local import LocalExecutor
from pipeline.fingerprint import digest, output_settings, shard_fingerprint
from pipeline.ledger import load_record
from pipeline.rates import (
    EstimateSettings,
    Rate,
    flatten,
    format_estimate,
    gpu_estimate,
    load_table,
    metric_amount,
    plain,
    stage_rate,
)
from pipeline.registry import stage_class
from pipeline.runner import Runner
from pipeline.shards import Layout
from pipeline.stage import SourceStage, Stage


@dataclass
class Shards:
    """What one stage's shards will be after the planned build: per index, the fingerprint it
    will have (None: it changes, or cannot be known without running) and its rows."""

    expected: list[str | None] = field(default_factory=list)
    rows: list[float] = field(default_factory=list)  # rows out: recorded, or projected
    runs: list[bool] = field(default_factory=list)  # stale or to run
    more_unknown: bool = False  # a source not read: there may be shards beyond these


@dataclass
class StagePlan:
    stage: str
    kind: str
    done: int
    stale: int
    new: int | None  # shards not built yet; None: unknown (a source not read, with no known size)
    items_to_run: float | None  # items the stale and new shards will process (projected)
    estimate_s: float | None  # None: no rate for this stage, or unknown work
    basis: str  # where the estimate comes from
    reasons: list[str] = field(default_factory=list)  # why shards are stale


@dataclass
class Plan:
    data_root: str
    stages: list[StagePlan]
    changes: list[str]  # "stages.respond.sampling.max_tokens: 160 -> 96"
    notes: list[str]
    gpu_estimate: list[str] = field(default_factory=list)  # profile=full: the recipe on N GPUs, last line `estimated: ...`

    @property
    def total_s(self) -> float | None:
        busy = [s for s in self.stages if s.stale or s.new != 0]
        if any(s.estimate_s is None for s in busy):
            return None
        return sum(s.estimate_s or 0.0 for s in self.stages)


def shown(value) -> str:
    return repr(value) if isinstance(value, str) and (not value or value != value.strip()) else str(value)


def setting_changes(stage: str, old: dict, new: dict) -> list[str]:
    before, after = flatten(old), flatten(new)
    return [f"stages.{stage}.{key}: {shown(before.get(key, '(unset)'))} -> {shown(after.get(key, '(unset)'))}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


class Planner:
    def __init__(self, run: RunConfig, table: dict | None = None):
        self.run = run
        self.runner = Runner(run, executor=LocalExecutor())  # never starts an executor
        self.layout = Layout(run.context["data_root"])
        self.table = load_table() if table is None else table
        self.shards: dict[str, Shards] = {}
        self.changes: list[str] = []
        self.notes: list[str] = []
        self._last_build: dict | None = None

    # -- settings the shards were built with -------------------------------------------------
    def last_build_settings(self, node: StageNode) -> dict | None:
        """A stage's output settings as the data_root's last build (manifests/dataset.json) had
        them: for records written before shard records carried their settings."""
        if self._last_build is None:
            try:
                self._last_build = json.loads((self.layout.root / "manifests" / "dataset.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                self._last_build = {}
        config = ((self._last_build.get("config") or {}).get("stages") or {}).get(node.name)
        if not isinstance(config, dict) or config.get("kind") != node.kind:
            return None
        try:
            return plain(output_settings(_merge(stage_class(node.kind).Settings, config, node.name)))
        except Exception:  # a config an older version of the code accepted
            return None

    def settings_reasons(self, node: StageNode, stage: Stage, record: dict, fp_inputs: list | None) -> list[str]:
        """Why the record's own stage (settings, code version) no longer matches, naming the
        settings that changed; [] when it matches. fp_inputs: the record's whole fingerprint
        input where known, so the fingerprint itself is the test."""
        now = plain(output_settings(node.settings))
        old = record["settings"] if "settings" in record else self.last_build_settings(node)
        named = setting_changes(node.name, old, now) if old is not None and old != now else []
        if record.get("stage_version") != stage.version:
            return [f"stages.{node.name}: code version {record.get('stage_version')} -> {stage.version}", *named]
        if fp_inputs is not None:
            same = record["fingerprint"] == shard_fingerprint(node.kind, stage.version, node.settings, fp_inputs)
        else:
            same = not named
        if same:
            return []
        return named or [f"stages.{node.name}: settings changed (not named: the records predate settings recording)"]

    def fingerprint_inputs(self, stage: Stage, record: dict) -> list | None:
        """Everything the record's fingerprint was computed from, where the record tells."""
        if isinstance(stage, SourceStage):
            return record["input_fingerprints"]
        prepared = record.get("prepared_digest")
        if prepared is None and type(stage).prepare is Stage.prepare:
            prepared = digest({})  # a record from before prepare digests were recorded
        return None if prepared is None else record["input_fingerprints"] + [prepared]

    # -- per stage --------------------------------------------------------------------------
    def on_disk(self, name: str) -> Shards:
        """A stage this run does not select: its shards stay as they are."""
        summary = load_record(self.layout.stage_record(name)) or {}
        shards = Shards()
        for index in range(summary.get("num_shards") or 0):
            record = load_record(self.layout.shard_record(name, index))
            shards.expected.append(record["fingerprint"] if record else None)
            shards.rows.append(record["rows"] if record else 0)
            shards.runs.append(False)
        return shards

    def fill_from_disk(self, name: str, shards: Shards, rows_in: list[float], until: int) -> None:
        """Shards outside this run's shard range (stages.shards) stay as they are."""
        while len(shards.runs) < until:
            record = load_record(self.layout.shard_record(name, len(shards.runs)))
            shards.expected.append(record["fingerprint"] if record else None)
            shards.rows.append(record["rows"] if record else 0)
            rows_in.append(record["rows_in"] if record else 0)
            shards.runs.append(False)

    def upstream(self, name: str) -> Shards:
        if name not in self.shards:
            self.shards[name] = self.on_disk(name)
        return self.shards[name]

    def plan_source(self, node: StageNode, stage: SourceStage) -> tuple[Shards, list[float], list[str]]:
        shards, rows_in, reasons = Shards(), [], []
        if stage.reads_locally():
            counter = [0]
            for task in self.runner.source_tasks(node, stage, counter):
                index = counter[0] - 1
                self.fill_from_disk(node.name, shards, rows_in, index)
                record = load_record(self.layout.shard_record(node.name, index))
                if task is None:  # done: the fingerprint on disk is the one a build computes
                    shards.expected.append(record["fingerprint"])
                    shards.rows.append(record["rows"])
                    rows_in.append(record["rows_in"])
                    shards.runs.append(False)
                    continue
                shards.expected.append(task.fingerprint)
                rows_in.append(len(task.records))
                shards.rows.append(float(len(task.records)))
                shards.runs.append(True)
                if record is not None:
                    found = self.settings_reasons(node, stage, record, self.fingerprint_inputs(stage, record))
                    if not found and record["input_fingerprints"][0] != task.input_fingerprints[0]:
                        found = [f"stages.{node.name}: source changed (a file or its selection)"]
                    elif not found and record["fingerprint"] != task.fingerprint:
                        found = [f"stages.{node.name}: source records changed"]
                    reasons += found or [f"{node.name}: shard file missing or altered"]
            self.fill_from_disk(node.name, shards, rows_in, counter[0])
            return shards, rows_in, reasons
        identity = digest(stage.source_identity())
        expected = stage.expected_records()
        size = self.run.root.shard_size
        existing = load_record(self.layout.stage_record(node.name)) or {}
        count = math.ceil(expected / size) if expected is not None else existing.get("num_shards") or 0
        shards.more_unknown = expected is None
        self.notes.append(f"{node.name}: source not read (it is not local); done shards are taken as unchanged"
                          + ("" if expected is not None else ", its size is unknown"))
        for index in range(count):
            record = load_record(self.layout.shard_record(node.name, index))
            chunk = size if expected is None else min(size, expected - index * size)
            found = []
            if record is not None:
                found = self.settings_reasons(node, stage, record, self.fingerprint_inputs(stage, record))
                if not found and record["input_fingerprints"][0] != identity:
                    found = [f"stages.{node.name}: source changed (its parts or their revisions)"]
                elif not found and not self.runner.shard_is_intact(node.name, index, record):
                    found = [f"{node.name}: shard file missing or altered"]
            done = record is not None and not found
            reasons += found
            shards.expected.append(record["fingerprint"] if done else None)
            shards.rows.append(record["rows"] if done else float(chunk))
            rows_in.append(record["rows_in"] if record else chunk)
            shards.runs.append(not done)
        return shards, rows_in, reasons

    def plan_downstream(self, node: StageNode, stage: Stage) -> tuple[Shards, list[float], list[str]]:
        inputs = [self.upstream(name) for name in stage.input_columns()]
        names = list(stage.input_columns())
        own_prepare = type(stage).prepare is not Stage.prepare
        summary = load_record(self.layout.stage_record(node.name)) or {}
        count = len(inputs[0].expected)
        inputs_change = any(any(s.runs) or s.more_unknown for s in inputs) or summary.get("num_shards", count) != count
        records = [load_record(self.layout.shard_record(node.name, i)) for i in range(count)]
        if not own_prepare:
            prepared = digest({})
        elif inputs_change:
            prepared = None
        else:  # prepare() reads the same inputs again: the digest the records carry
            digests = {r.get("prepared_digest") for r in records if r}
            prepared = digests.pop() if len(digests) == 1 else None
        shards, rows_in, reasons = Shards(more_unknown=inputs[0].more_unknown), [], []
        for index, record in enumerate(records):
            if not self.runner.in_shard_range(index):  # another slice's shard (stages.shards): as it is
                shards.expected.append(record["fingerprint"] if record else None)
                shards.rows.append(record["rows"] if record else 0.0)
                rows_in.append(record["rows_in"] if record else 0.0)
                shards.runs.append(False)
                continue
            ups = [s.expected[index] if index < len(s.expected) else None for s in inputs]
            items = min(s.rows[index] if index < len(s.rows) else 0.0 for s in inputs)
            if record is None:
                known = prepared is not None and None not in ups
                shards.expected.append(shard_fingerprint(node.kind, stage.version, node.settings, ups + [prepared])
                                       if known else None)
                shards.rows.append(items)
                rows_in.append(items)
                shards.runs.append(True)
                continue
            found = self.settings_reasons(node, stage, record, self.fingerprint_inputs(stage, record))
            changed = [n for n, u, r in zip(names, ups, record["input_fingerprints"]) if u is None or u != r]
            if changed:
                found.append(f"{node.name}: input {', '.join(changed)} changes")
            if own_prepare and inputs_change:
                found.append(f"{node.name}: prepare() reads input shards that change")
            if not found and not self.runner.shard_is_intact(node.name, index, record):
                found.append(f"{node.name}: shard file missing or altered")
            reasons += found
            shards.expected.append(None if found else record["fingerprint"])
            shards.rows.append(items if found else record["rows"])
            rows_in.append(record["rows_in"] if not changed else items)
            shards.runs.append(bool(found))
        return shards, rows_in, reasons

    # -- estimates --------------------------------------------------------------------------
    def estimate(self, node: StageNode, shards: Shards, rows_in: list[float]) -> tuple[float | None, float, str]:
        """(seconds, items, basis) for the shards that run, in this run's shard range."""
        todo = [i for i, runs in enumerate(shards.runs) if runs and self.runner.in_shard_range(i)]
        items = sum(rows_in[i] for i in todo)
        if shards.more_unknown:
            return None, items, "source size unknown"
        if not todo:
            return 0.0, 0.0, ""
        rate: Rate | None = stage_rate(self.layout, node.name, node.kind, node.settings, self.table)
        if rate is None:
            return None, items, "no measured rate (run it once, or add a row to manifests/rates.yaml)"
        if rate.device and (note := f"table rates measured on {rate.device}") not in self.notes:
            self.notes.append(note)
        work = 0.0
        for i in todo:
            record = load_record(self.layout.shard_record(node.name, i)) if rate.metric else None
            amount = metric_amount(record.get("metrics", {}), rate.metric) if record else None
            work += amount * rate.per_metric_s if amount is not None else rows_in[i] * rate.per_item_s
        parallel = max(1, min(node.settings.workers, len(todo)))
        return rate.fixed_s + work / parallel, items, rate.basis

    def keep(self, node: StageNode, shards: Shards, rows_in: list[float]) -> None:
        """Projected rows out of the shards that run: rows in times the share the stage kept in
        this ledger, else in the table's measurement; all of them where neither says."""
        rate = stage_rate(self.layout, node.name, node.kind, node.settings, self.table)
        if rate is None or rate.keep is None:
            return
        for i, runs in enumerate(shards.runs):
            if runs:
                shards.rows[i] = rows_in[i] * rate.keep

    def plan(self) -> Plan:
        missing: list[str] = []
        selected = self.runner.preflight(missing)
        self.notes += [f"not ready to build: {m}" for m in missing]
        stages = []
        for node in selected:
            stage = self.runner.describe(node)
            if isinstance(stage, SourceStage):
                shards, rows_in, reasons = self.plan_source(node, stage)
            else:
                shards, rows_in, reasons = self.plan_downstream(node, stage)
            self.keep(node, shards, rows_in)
            self.shards[node.name] = shards
            seconds, items, basis = self.estimate(node, shards, rows_in)
            records = [load_record(self.layout.shard_record(node.name, i)) for i in range(len(shards.runs))]
            stale = sum(1 for r, runs in zip(records, shards.runs) if runs and r is not None)
            new = sum(1 for r, runs in zip(records, shards.runs) if runs and r is None)
            unique = list(dict.fromkeys(reasons))
            self.changes += [r for r in unique if r.startswith("stages.") and r not in self.changes]
            stages.append(StagePlan(
                stage=node.name, kind=node.kind, done=len(shards.runs) - stale - new, stale=stale,
                new=None if shards.more_unknown else new, items_to_run=items, estimate_s=seconds,
                basis=basis, reasons=[r for r in unique if not r.startswith("stages.")]))
        return Plan(data_root=str(self.layout.root), stages=stages, changes=self.changes, notes=self.notes,
                    gpu_estimate=self.recipe_estimate(selected))

    def recipe_estimate(self, selected: list[StageNode]) -> list[str]:
        """For profile=full: the whole recipe's GPU-hours per selected stage and its wall time on the
        `estimate` settings' GPUs, from the table's GPU rates (a build from scratch)."""
        if self.run.root.profile != "full":
            return []
        settings = EstimateSettings.from_run(self.run)
        names = [n.name for n in selected]
        return format_estimate(gpu_estimate(settings, self.table, names),
                               gpu_estimate(settings, self.table, names, baseline=True))


def plan(run: RunConfig, table: dict | None = None) -> Plan:
    """The dry run of `build` with this config: nothing runs, nothing is written. table: rates
    for stages this data_root never ran (default: manifests/rates.yaml)."""
    return Planner(run, table).plan()


def remaining_seconds(run: RunConfig) -> dict[str, float | None]:
    """Per selected stage, the estimated seconds its stale and new shards still take (None:
    unknown); for a build's ETA."""
    return {s.stage: s.estimate_s for s in plan(run).stages}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(result: Plan) -> str:
    header = f"{'stage':<20}{'shards done':>12}{'stale':>7}{'to run':>8}{'estimated time':>16}  basis"
    lines = [f"plan for {result.data_root} (nothing is run)", "", header]
    for s in result.stages:
        to_run = "?" if s.new is None else str(s.stale + s.new)  # stale shards are rebuilt too
        items = f"{s.items_to_run:,.0f} items; " if s.items_to_run else ""
        lines.append(f"{s.stage:<20}{s.done:>12}{s.stale:>7}{to_run:>8}{duration(s.estimate_s):>16}  "
                     f"{items}{s.basis}".rstrip())
    total = result.total_s
    lines.append(f"{'total':<47}{duration(total):>16}" + ("  (a stage's rate or size is unknown)" if total is None else ""))
    if result.changes:
        lines += ["", "changed since the shards were built:"] + [f"  {c}" for c in result.changes]
    reasons = [f"  {r}" for s in result.stages for r in s.reasons]
    if reasons:
        lines += ["", "stale because:"] + list(dict.fromkeys(reasons))
    if result.notes:
        lines += ["", "notes:"] + [f"  {n}" for n in result.notes]
    if result.gpu_estimate:
        lines += [""] + result.gpu_estimate
    return "\n".join(lines)
