"""Reading the ledger back: per-stage status, the errors table, the dataset-level record."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.environment_record import environment_record, package_freeze
from pipeline.shards import Layout, atomic_write_json


def load_record(path: Path) -> dict | None:
    """A shard or stage record; None when it is absent or half-written."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def shard_records(layout: Layout, stage: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(layout.manifest_dir(stage).glob("shard-*.json"))]


def engine_versions(layout: Layout, stage: str) -> dict[str, str]:
    """A stage's engine_versions over its shard records (differing values joined with " | ")."""
    values: dict[str, set[str]] = {}
    for record in shard_records(layout, stage):
        for key, value in record.get("engine_versions", {}).items():
            values.setdefault(key, set()).add(str(value))
    return {k: " | ".join(sorted(v)) for k, v in values.items()}


def stage_status(layout: Layout, stage: str) -> dict:
    summary = load_record(layout.stage_record(stage)) or {}
    records = shard_records(layout, stage)
    reasons: dict[str, int] = {}
    metrics: dict[str, float] = {}
    for r in records:
        for reason, n in r["error_reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
        for key, value in r.get("metrics", {}).items():
            metrics[key] = metrics.get(key, 0) + value
    items = sum(r["rows"] for r in records)
    return {
        "stage": stage,
        "shards_done": len(records),
        "shards_total": summary.get("num_shards"),
        "items": items,
        "errors": sum(r["errors"] for r in records),
        "error_reasons": reasons,
        "metrics": metrics,
        "means": metric_means(metrics, items),
        # Shards plus the last run's work outside them (prepare(), finalize()), as the log counts it.
        "elapsed_s": round(sum(r["elapsed_s"] for r in records) + stage_overhead_s(summary, records), 2),
    }


def stage_overhead_s(summary: dict, records: list[dict]) -> float:
    """Seconds the stage's last run spent outside its shards: prepare() and finalize(), as the
    stage record counts them; a record written before they were counted gives its elapsed time
    less that of the shards that run ran (never below zero: parallel shards overlap)."""
    if "prepare_s" in summary:
        return summary["prepare_s"] + summary.get("finalize_s", 0.0)
    if "elapsed_s" not in summary or "finished" not in summary:
        return 0.0
    began = summary["finished"] - summary["elapsed_s"]
    in_shards = sum(r["elapsed_s"] for r in records if r.get("started", 0) >= began)
    return max(0.0, summary["elapsed_s"] - in_shards)


def metric_means(metrics: dict[str, float], items: int) -> dict[str, float]:
    """Stages count sums so shards add up; `X_x1000_sum` over `X_items` (or the kept items,
    for `kept_X_...`) gives the mean of X."""
    means = {}
    for key, total in metrics.items():
        if not key.endswith("_x1000_sum"):
            continue
        name = key[: -len("_x1000_sum")]
        count = items if name.startswith("kept_") else metrics.get(f"{name}_items", 0)
        if count:
            means[f"mean_{name}"] = round(total / 1000 / count, 4)
    return means


def errors_table(layout: Layout, stage: str | None = None) -> pa.Table:
    pattern = f"{stage}/errors-*.parquet" if stage else "*/errors-*.parquet"
    files = sorted((layout.root / "manifests").glob(pattern))
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables) if tables else pa.table({})


def package_versions() -> dict[str, str]:
    """The full freeze: every installed distribution (normalized name -> version)."""
    return package_freeze()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_dataset_record(layout: Layout, config: dict, summaries: list[dict], started: float) -> Path:
    path = layout.root / "manifests" / "dataset.json"
    atomic_write_json(path, {
        "config": config,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        # The full freeze and the machine kind (CPU model and flags, cores, GPUs): what may make
        # two builds of the same config differ (README: "What may differ across machine kinds").
        "packages": package_versions(),
        "environment": environment_record(),
        "started": started,
        "finished": time.time(),
        "stages": summaries,
    })
    return path
