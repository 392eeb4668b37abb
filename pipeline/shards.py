"""Where shard files live and how they are written: atomically, schema-checked."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StageContractError

SHARD_DIGITS = 5


class Layout:
    """Paths of one run under data_root."""

    def __init__(self, data_root: str | Path):
        self.root = Path(data_root)

    def shard(self, stage: str, index: int) -> Path:
        return self.root / "stages" / stage / f"shard-{index:0{SHARD_DIGITS}d}.parquet"

    def manifest_dir(self, stage: str) -> Path:
        return self.root / "manifests" / stage

    def shard_record(self, stage: str, index: int) -> Path:
        return self.manifest_dir(stage) / f"shard-{index:0{SHARD_DIGITS}d}.json"

    def errors(self, stage: str, index: int) -> Path:
        return self.manifest_dir(stage) / f"errors-{index:0{SHARD_DIGITS}d}.parquet"

    def stage_record(self, stage: str) -> Path:
        return self.manifest_dir(stage) / "stage.json"

    def logs(self) -> Path:
        return self.root / "logs"

    # What a build publishes; every folder here is listed in pipeline.data_root.OWNED_DIRS.
    def splits_dir(self) -> Path:
        """The published splits, {split}-NNNNN-of-NNNNN.parquet."""
        return self.root / "data"

    def legacy_splits_dir(self) -> Path:
        """Where builds before the data/ folder wrote their train split."""
        return self.root / "train"

    def export_dir(self, fmt: str | None = None) -> Path:
        return self.root / "export" / fmt if fmt else self.root / "export"

    def plots_dir(self) -> Path:
        return self.root / "plots"

    def card(self) -> Path:
        return self.root / "README.md"

    def cache_dir(self, name: str) -> Path:
        return self.root / "cache" / name


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path (a folder: so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_stream(path: Path):
    """A binary file written in pieces: temp file, fsync, rename, so a reader sees the old file or
    the new one, never half (the temp name is the one pipeline.data_root cleans after a kill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_stream(path) as out:
        out.write(data)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode())


def to_table(rows: list[dict], schema: pa.Schema, stage: str) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError) as exc:
        raise StageContractError(f"stage {stage!r} produced rows that do not fit its schema: {exc}") from exc


def write_table(path: Path, table: pa.Table) -> tuple[str, int]:
    """Write a Parquet file atomically; returns (sha256, size). Output is byte-deterministic."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), len(data)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)
