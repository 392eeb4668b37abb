"""The training shards: the package stage's non-empty shards, hard-linked (or copied across
file systems) to ${data_root}/train/train-NNNNN-of-NNNNN.parquet, the names the hub expects."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq


def publish_training_shards(shard_paths: list[str], train_dir: Path) -> list[Path]:
    """Idempotent: unchanged shards are left alone, stale train files are removed."""
    non_empty = [Path(p) for p in shard_paths if pq.ParquetFile(p).metadata.num_rows > 0]
    total = len(non_empty)
    wanted = {train_dir / f"train-{i:05d}-of-{total:05d}.parquet": source for i, source in enumerate(non_empty)}
    train_dir.mkdir(parents=True, exist_ok=True)
    for target, source in wanted.items():
        link_or_copy(source, target)
    for stale in train_dir.glob("*.parquet"):
        if stale not in wanted:
            stale.unlink()
    return list(wanted)


def link_or_copy(source: Path, target: Path) -> None:
    if target.exists() and os.path.samefile(source, target):
        return
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
