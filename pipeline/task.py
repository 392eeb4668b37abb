"""One shard task: a pure function of (stage settings, input shards). Any executor runs it."""
from __future__ import annotations

import hashlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import shard_progress
from pipeline.errors import InfrastructureError, ItemFailure, StageContractError, is_infrastructure
from pipeline.fingerprint import digest, output_settings
from pipeline.registry import stage_class
from pipeline.shards import Layout, atomic_write_json, read_table, to_table, write_table
from pipeline.stage import Stage, StageSettings

log = logging.getLogger(__name__)

ERROR_SCHEMA = pa.schema(
    [("stage", pa.string()), ("shard", pa.int32()), ("id", pa.string()),
     ("reason", pa.string()), ("detail", pa.string())]
)


@dataclass
class ShardTask:
    stage: str
    kind: str
    settings: StageSettings
    context: dict[str, Any]
    index: int
    fingerprint: str
    input_fingerprints: list[str]
    records: list[dict] | None = None  # the raw chunk, for a source stage
    inputs: dict[str, str] = field(default_factory=dict)  # upstream stage -> shard path
    target: str = ""  # "module:Class" of the stage; a worker in another process has no config to look it up


# One stage instance per (stage, settings) per worker process: models load once.
_LOADED: dict[str, Stage] = {}


def load_stage(name: str, kind: str, settings: StageSettings, context: dict) -> Stage:
    """kind: the stage's class path (or a kind registered in this process)."""
    key = digest([name, kind, settings, context])
    if key not in _LOADED:
        stage = stage_class(kind)(name, settings, context)
        try:
            stage.setup()
        except Exception as exc:
            raise InfrastructureError(
                f"stage {name!r} ({kind}) could not load its engine: {type(exc).__name__}: {exc}"
            ) from exc
        _LOADED[key] = stage
    return _LOADED[key]


def join_inputs(inputs: dict[str, str], columns: dict[str, list[str] | dict[str, str]]) -> list[dict]:
    """Rows of the first input, in order, with the declared columns of every input joined on id
    (renamed where the stage maps them). A row missing from a later input was dropped there (and
    is in that stage's ledger)."""
    joined: list[dict] | None = None
    for name, path in inputs.items():
        wanted = columns[name]
        renames = wanted if isinstance(wanted, dict) else {c: c for c in wanted}
        table = read_table(Path(path), ["id", *renames]).rename_columns(["id", *renames.values()])
        rows = table.to_pylist()
        if joined is None:
            joined = rows
            continue
        by_id = {r["id"]: r for r in rows}
        joined = [{**row, **by_id[row["id"]]} for row in joined if row["id"] in by_id]
    return joined or []


class InjectedFault(RuntimeError):
    """Raised in place of the engine for items chosen by `fault_fraction` (fault-injection tests)."""


def injected_fault(item_id: str, fraction: float) -> bool:
    """A deterministic `fraction` of ids, the same in every run and process."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


def call_engine(stage: Stage, rows: list[dict]) -> list[dict | ItemFailure]:
    fraction = stage.settings.fault_fraction
    faulty = [r["id"] for r in rows if injected_fault(r["id"], fraction)]
    if faulty:
        raise InjectedFault(f"injected fault (fault_fraction={fraction}) for {faulty[0]}")
    return stage.process(rows)


def process_isolating_failures(stage: Stage, rows: list[dict]) -> list[dict | ItemFailure]:
    """Run the batch; if it raises (not infrastructure), retry one by one to find the bad item."""
    counted = stage.metrics.copy()
    reported = shard_progress.done_so_far()
    try:
        results = call_engine(stage, rows)
    except Exception as exc:
        if is_infrastructure(exc):
            raise
        stage.metrics = counted  # the retries count again what the failed batch had counted
        groups = stage.isolation_groups(rows)
        if len(groups) == 1:
            log.debug("item %s raised:\n%s", rows[0].get("id"), traceback.format_exc())
            shard_progress.settle(reported + len(rows))
            return [stage.fail(row["id"], "exception", f"{type(exc).__name__}: {exc}") for row in rows]
        log.warning("stage %s: batch raised %s; retrying item by item", stage.name, exc)
        shard_progress.settle(reported)
        return [r for group in groups for r in process_isolating_failures(stage, group)]
    shard_progress.settle(reported + len(rows))
    return results


def check_one_result_per_row(stage: str, rows: list[dict], results: list) -> None:
    wanted = [r["id"] for r in rows]
    got = [r.id if isinstance(r, ItemFailure) else r.get("id") for r in results]
    if got != wanted:
        missing = set(wanted) - set(got)
        raise StageContractError(
            f"stage {stage!r} must return one row or one failure per input row, in order; "
            f"{len(wanted)} in, {len(got)} out, missing {sorted(missing)[:5]}"
        )


def run_shard(task: ShardTask) -> dict:
    """Compute one shard and write it, its errors and (last, as completion marker) its record."""
    started = time.time()
    layout = Layout(task.context["data_root"])
    stage = load_stage(task.stage, task.target or task.kind, task.settings, task.context)
    loaded = time.time()
    stage.metrics.clear()
    stage.shard_fingerprint = task.fingerprint
    if task.records is not None:
        rows = task.records
    else:
        rows = join_inputs(task.inputs, stage.input_columns())
    progress_path = shard_progress.progress_file(layout.logs(), task.stage, task.index)
    with shard_progress.reporting(progress_path, len(rows)):
        results = process_isolating_failures(stage, rows) if rows else []
    if stage.one_row_per_input:
        check_one_result_per_row(task.stage, rows, results)

    outputs = [r for r in results if not isinstance(r, ItemFailure)]
    failures = [r for r in results if isinstance(r, ItemFailure)]
    shard_path = layout.shard(task.stage, task.index)
    sha256, size = write_table(shard_path, to_table(outputs, stage.output_schema(), task.stage))
    errors = [
        {"stage": task.stage, "shard": task.index, "id": f.id, "reason": f.reason, "detail": f.detail}
        for f in failures
    ]
    write_table(layout.errors(task.stage, task.index), pa.Table.from_pylist(errors, schema=ERROR_SCHEMA))
    record = {
        "stage": task.stage,
        "kind": task.kind,
        "stage_version": stage.version,
        # What the fingerprint covers, so a plan can tell (and name) what changed since.
        "settings": output_settings(task.settings),
        "prepared_digest": digest(task.context["prepared"]) if "prepared" in task.context else None,
        "shard": task.index,
        "path": str(shard_path.relative_to(layout.root)),
        "rows_in": len(rows),
        "rows": len(outputs),
        "errors": len(failures),
        "error_reasons": dict(sorted(_count(f.reason for f in failures).items())),
        "sha256": sha256,
        "bytes": size,
        "fingerprint": task.fingerprint,
        "input_fingerprints": task.input_fingerprints,
        "metrics": dict(stage.metrics),
        "engine_versions": stage.engine_versions(),
        "started": started,
        "elapsed_s": round(time.time() - started, 4),
        "setup_s": round(loaded - started, 4),  # loading the engine (first shard of a worker only)
    }
    atomic_write_json(layout.shard_record(task.stage, task.index), record)
    return record


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
