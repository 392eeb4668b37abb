"""WebDataset shards (github.com/webdataset/webdataset) for streaming training: per split,
`<split>/<split>-000000.tar`, ... with `webdataset_shard_items` items each, in the order of the
training shards. A sample per item: `__key__` (the id made file-safe), `instruction.flac`,
`response.flac` (16 kHz FLAC as stored) and `json` (the id and every other non-audio column:
texts, `response_units` with repeats merged, durations, lineage). Plain tar with fixed owner
and time, so a rerun writes the same bytes.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

from pipeline.shards import atomic_stream
from stages.exports.files import item_stem, iter_rows
from stages.exports.settings import ExportSettings

VERSION = "1"
AUDIO = ("instruction_audio", "response_audio")


def shard_path(out_dir: Path, split: str, index: int) -> Path:
    return out_dir / split / f"{split}-{index:06d}.tar"


def export(splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings) -> set[Path]:
    import webdataset as wds

    written: set[Path] = set()
    for split, files in splits.items():
        rows = iter_rows(files)
        for index in itertools.count():
            first = next(rows, None)
            if first is None:
                break
            path = shard_path(out_dir, split, index)
            with atomic_stream(path) as out, wds.TarWriter(out, encoder=False, mtime=0) as tar:
                for row in itertools.chain([first], itertools.islice(rows, settings.webdataset_shard_items - 1)):
                    tar.write(sample(row))
            written.add(path)
    return written


def sample(row: dict) -> dict:
    meta = {k: v for k, v in row.items() if k not in AUDIO}
    return {
        "__key__": item_stem(row["id"]),
        "instruction.flac": row["instruction_audio"]["bytes"],
        "response.flac": row["response_audio"]["bytes"],
        "json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(),
    }


def describe(out_dir: str) -> str:
    return (f"WebDataset shards: `{out_dir}/<split>/<split>-NNNNNN.tar`, a sample per item with "
            "`instruction.flac`, `response.flac` and `json` (texts, ids, `response_units`)")
