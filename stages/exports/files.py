"""What every exporter shares: rows streamed from the split's Parquet files, file names made
from item ids, atomic writes of streamed files, and removal of what a run did not write."""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf

from pipeline.shards import atomic_stream, atomic_write_bytes
from stages import audio

STEM_CHARS = 64  # keeps `<stem>.instruction.flac` inside a plain (USTAR) tar name of 100 characters
BATCH_ROWS = 64  # rows held at once: audio bytes make rows large


def iter_rows(files: Iterable[Path], columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of the files in order, a small batch at a time (the dataset never sits in memory)."""
    for path in files:
        # pre_buffer (the default) reads a whole file ahead: a published file is about 0.5 GB.
        reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        for batch in reader.iter_batches(columns=columns, batch_size=BATCH_ROWS):
            yield from batch.to_pylist()


def count_rows(files: Iterable[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def item_stem(item_id: str) -> str:
    """A file name stem for an id: letters, digits, '_' and '-' only (no '.', which WebDataset
    reads as the start of an extension). An id that had to change gets a hash of itself, so two
    ids never share a stem."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", item_id)[:STEM_CHARS]
    if stem != item_id:
        stem += "-" + hashlib.sha256(item_id.encode()).hexdigest()[:8]
    return stem


def content_name(item_id: str, data: bytes, suffix: str) -> str:
    """Names carry a hash of the content: a changed clip gets a new file, the old one is pruned."""
    return f"{item_stem(item_id)}-{hashlib.sha256(data).hexdigest()[:10]}{suffix}"


def wav_16bit(flac: bytes, rate: int) -> bytes:
    clip, clip_rate = audio.decode(flac)
    buffer = io.BytesIO()
    sf.write(buffer, audio.resample(clip, clip_rate, rate), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> Path:
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        atomic_write_bytes(path, data)
    return path


def write_json_list(path: Path, items: Iterable[dict]) -> Path:
    """A JSON list, one item a line, streamed: the full list never sits in memory."""
    with atomic_stream(path) as out:
        out.write(b"[")
        for i, item in enumerate(items):
            out.write((",\n" if i else "\n").encode() + json.dumps(item, ensure_ascii=False).encode())
        out.write(b"\n]\n")
    return path


def prune(root: Path, keep: set[Path]) -> int:
    """Remove files under root that this run did not write (a dropped item's clip, a split that
    is gone), then the folders left empty."""
    removed = 0
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed
