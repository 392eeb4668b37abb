"""The published splits: the package stage's rows divided into train / validation / test by a
hash of the item id, written as ${data_root}/data/{split}-NNNNN-of-NNNNN.parquet, the layout the
Hugging Face hub and `datasets.load_dataset(folder)` detect without configuration.

A split depends on the id alone, so an item stays in its split across rebuilds and any shard
size. Rows are streamed (a row group per split in memory at most) into a staging folder that
replaces data/ when complete; the output is a pure function of the package shards and the
settings (byte-identical on rerun), and a rerun over unchanged shards rewrites nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards import Layout, atomic_write_json, fsync_path

SPLITS = ("train", "validation", "test")
HELD_OUT = ("validation", "test")  # in this order on the hash line: adding a test split never moves validation
SALT = b"instructs2s-split:"  # keeps the split independent of other id hashes (the trainer's, fault injection)
FORMAT = 1  # bump when the written bytes change for the same inputs and settings
PUBLISHED_NAME = re.compile(r"(train|validation|test)-\d{5}-of-\d{5}\.parquet")


@dataclass
class PublishedSplit:
    name: str
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


def check_fractions(fractions: Mapping[str, float]) -> None:
    """ValueError unless the held-out fractions are known splits in [0, 1) leaving some train."""
    unknown = sorted(set(fractions) - set(HELD_OUT))
    if unknown:
        raise ValueError(f"splits: unknown split(s) {unknown}; give fractions for {list(HELD_OUT)} (train is the rest)")
    for name, value in fractions.items():
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"splits.{name} must be a fraction in [0, 1), got {value}")
    if sum(float(v) for v in fractions.values()) >= 1.0:
        raise ValueError(f"splits: validation + test must leave items for train, got {dict(fractions)}")


def hash_position(item_id: str) -> float:
    """Where an id falls on [0, 1): the first 8 bytes of a salted SHA-256."""
    return int.from_bytes(hashlib.sha256(SALT + str(item_id).encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_of(item_id: str, fractions: Mapping[str, float]) -> str:
    position, edge = hash_position(item_id), 0.0
    for name in HELD_OUT:
        edge += float(fractions.get(name, 0.0))
        if position < edge:
            return name
    return "train"


def decode_free(features):
    """The features with every Audio column as Audio(decode=False): indexing gives {bytes, path}
    and needs no torchcodec (datasets' only audio decoder, not installable in this environment)."""
    from datasets import Audio, Features

    return Features({name: dataclasses.replace(f, decode=False) if isinstance(f, Audio) else f
                     for name, f in features.items()})


def file_names(split: str, count: int) -> list[str]:
    return [f"{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]


def publish_splits(shard_paths: list[str], layout: Layout, features, fractions: Mapping[str, float],
                   rows_per_file: int, rows_per_row_group: int, record_path: Path) -> dict[str, PublishedSplit]:
    """Write root/data/{split}-*.parquet from the package shards (empty splits get no file);
    `record_path` remembers inputs and outputs so that a rerun over unchanged shards is a no-op."""
    data_dir = layout.splits_dir()
    schema = features.arrow_schema
    shards = [Path(p) for p in shard_paths if pq.ParquetFile(p).metadata.num_rows > 0]
    key = {
        "format": FORMAT, "pyarrow": pa.__version__, "fractions": {k: float(v) for k, v in sorted(fractions.items())},
        "rows_per_file": rows_per_file, "rows_per_row_group": rows_per_row_group,
        "schema": hashlib.sha256(schema.serialize().to_pybytes()).hexdigest(),
        "inputs": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in shards],
    }
    published = up_to_date(record_path, key, data_dir)
    if published is None:
        published = write_splits(shards, data_dir, schema, fractions, rows_per_file, rows_per_row_group)
        atomic_write_json(record_path, {"key": key, "splits": {
            s.name: {"rows": s.rows, "files": [[f.name, f.stat().st_size] for f in s.files]}
            for s in published.values()}})
    remove_legacy_train_dir(layout.legacy_splits_dir())
    return published


def up_to_date(record_path: Path, key: dict, data_dir: Path) -> dict[str, PublishedSplit] | None:
    """The recorded splits when they were written from these inputs and are all still there."""
    try:
        record = json.loads(record_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if record.get("key") != json.loads(json.dumps(key)):
        return None
    published, expected = {}, set()
    for name in SPLITS:
        entry = record["splits"].get(name, {"rows": 0, "files": []})
        files = [data_dir / f for f, _ in entry["files"]]
        if any(not f.is_file() or f.stat().st_size != size for f, (_, size) in zip(files, entry["files"])):
            return None
        expected.update(files)
        published[name] = PublishedSplit(name, files, entry["rows"], sum(size for _, size in entry["files"]))
    present = set(data_dir.glob("*.parquet")) if data_dir.is_dir() else set()
    return published if present == expected else None


def write_splits(shards: list[Path], data_dir: Path, schema: pa.Schema, fractions: Mapping[str, float],
                 rows_per_file: int, rows_per_row_group: int) -> dict[str, PublishedSplit]:
    """Two passes: ids (to size the splits and name the files), then the rows, streamed."""
    labels = []
    for path in shards:
        ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
        labels.append(np.array([SPLITS.index(split_of(i, fractions)) for i in ids], dtype=np.int8))
    counts = {name: int(sum((lab == k).sum() for lab in labels)) for k, name in enumerate(SPLITS)}
    for stale in data_dir.parent.glob(".data.*-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that died mid-publish
    staging = data_dir.with_name(f".data.tmp-{os.getpid()}")
    staging.mkdir(parents=True)
    try:
        writers = {name: SplitWriter(staging, name, counts[name], schema, rows_per_file, rows_per_row_group)
                   for name in SPLITS}
        for path, lab in zip(shards, labels):
            offset = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows_per_row_group, columns=schema.names):
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                part = lab[offset:offset + batch.num_rows]
                offset += batch.num_rows
                for k, name in enumerate(SPLITS):
                    rows = np.flatnonzero(part == k)
                    if rows.size:
                        writers[name].add(batch.take(pa.array(rows)))
        for writer in writers.values():
            writer.close()
        fsync_path(staging)
        swap_in(staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: PublishedSplit(name, [data_dir / n for n in w.names], w.total,
                                 sum((data_dir / n).stat().st_size for n in w.names))
            for name, w in writers.items()}


class SplitWriter:
    """One split's files: `total` rows in ceil(total / rows_per_file) files of near-equal size,
    row groups of `rows_per_row_group` rows; boundaries depend on the split's rows alone."""

    def __init__(self, folder: Path, name: str, total: int, schema: pa.Schema, rows_per_file: int,
                 rows_per_row_group: int):
        self.folder, self.schema, self.total, self.group = folder, schema, total, rows_per_row_group
        count = -(-total // rows_per_file)
        self.names = file_names(name, count)
        self.sizes = [(i + 1) * total // count - i * total // count for i in range(count)]
        self.index, self.left, self.writer = -1, 0, None
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.drain()

    def drain(self) -> None:
        while self.pending_rows:
            if self.left == 0:
                self.next_file()
            take = min(self.group, self.left)
            if self.pending_rows < take:
                return
            table = pa.Table.from_batches(self.pending, schema=self.schema)
            self.writer.write_table(table.slice(0, take), row_group_size=take)
            rest = table.slice(take).combine_chunks()
            self.pending, self.pending_rows = rest.to_batches(), rest.num_rows
            self.left -= take

    def next_file(self) -> None:
        self.close_file()
        self.index += 1
        if self.index >= len(self.names):
            raise RuntimeError(f"split {self.names[0][:-len('-00000-of-00000.parquet')]}: more rows than counted")
        self.path = self.folder / self.names[self.index]
        self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd", write_statistics=True)
        self.left = self.sizes[self.index]

    def close_file(self) -> None:
        if self.writer is not None:
            self.writer.close()
            fsync_path(self.path)
            self.writer = None

    def close(self) -> None:
        self.close_file()
        if self.pending_rows or self.index != len(self.names) - 1 or self.left:
            raise RuntimeError("a split got fewer rows than counted; did a package shard change while publishing?")


def swap_in(staging: Path, data_dir: Path) -> None:
    """Replace data_dir by staging (a reader sees the old folder, the new one, or briefly none)."""
    old = data_dir.with_name(f".data.old-{os.getpid()}")
    if data_dir.exists():
        os.replace(data_dir, old)
    os.replace(staging, data_dir)
    fsync_path(data_dir.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_legacy_train_dir(train_dir: Path) -> None:
    """Builds before the split layout published train/train-*.parquet; remove those files (only)."""
    if not train_dir.is_dir():
        return
    for path in train_dir.glob("train-*.parquet"):
        if PUBLISHED_NAME.fullmatch(path.name):
            path.unlink()
    if not any(train_dir.iterdir()):
        train_dir.rmdir()
