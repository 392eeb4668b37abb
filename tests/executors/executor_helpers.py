"""Building a small engine-only pipeline with a chosen executor, and fingerprinting its output."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.config import validate
from pipeline.runner import Runner

LOCAL = {"name": "local"}
RAY = {"name": "ray", "num_cpus": 2}


def engine_stages(items: int = 600, workers: int = 2, **pass1) -> dict:
    """generated -> pass1 -> pass2, with item failures of both kinds (ledgered and raised)."""
    return {
        "source": {"kind": "generated", "items": items, "fail_every": 7},
        "pass1": {"kind": "passthrough", "upstream": "source", "raise_on": "3", "workers": workers, **pass1},
        "pass2": {"kind": "passthrough", "upstream": "pass1", "suffix": "!", "workers": workers},
    }


def build(data_root: Path, executor: dict, stages: dict, only: list[str] | None = None,
          shards: list[int] | None = None, shard_size: int = 100) -> dict[str, int]:
    """Runs the pipeline; returns shards run per stage."""
    cfg = {"profile": "test", "data_root": str(data_root), "shard_size": shard_size, "seed": 1,
           "model_cache": str(data_root / "models"), "progress": False, "executor": executor,
           "stages": {**stages, "only": only, "shards": shards}}
    return {s["stage"]: s["shards_run"] for s in Runner(validate(OmegaConf.create(cfg))).build()}


def output_hashes(root: Path) -> dict[str, str]:
    """sha256 of every shard and every errors file of a run."""
    files = [*(root / "stages").rglob("*.parquet"), *(root / "manifests").rglob("errors-*.parquet")]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def ledger(root: Path) -> dict[str, dict]:
    """Each shard record without its timings (which differ run to run)."""
    records = {}
    for path in sorted((root / "manifests").rglob("shard-*.json")):
        record = json.loads(path.read_text())
        for key in ("started", "elapsed_s", "setup_s"):
            record.pop(key)
        records[str(path.relative_to(root))] = record
    return records
