"""Outputs a stage makes once after its shards (a card, plots): a step's record keeps the digest of
what the outputs were made from and the files written, so a rerun where nothing changed skips it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.fingerprint import digest
from pipeline.ledger import load_record, shard_records
from pipeline.shards import Layout, atomic_write_json


def step_record(layout: Layout, stage: str, step: str) -> Path:
    return layout.manifest_dir(stage) / f"step-{step}.json"


def files_key(paths: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def ledger_key(layout: Layout, stages: list[str]) -> str:
    """Changes whenever a shard of these stages is rewritten or its ledger changes."""
    return digest([[r.get("fingerprint"), r.get("sha256"), r.get("errors")] for s in stages
                   for r in shard_records(layout, s)])


def is_current(layout: Layout, stage: str, step: str, key: Any) -> bool:
    record = load_record(step_record(layout, stage, step))
    if not record or record.get("key") != digest(key):
        return False
    return all(Path(p).exists() and Path(p).stat().st_size == size for p, size in record["outputs"])


def mark_done(layout: Layout, stage: str, step: str, key: Any, outputs: list[Path]) -> None:
    atomic_write_json(step_record(layout, stage, step),
                      {"key": digest(key), "outputs": [[str(p), p.stat().st_size] for p in outputs]})
