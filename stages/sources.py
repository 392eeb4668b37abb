"""Reading Alpaca and UltraChat records, from the Hub by name or from a local file.

Local files are parsed with the standard library rather than `datasets`: a file with a bad row
(a number where text belongs, invalid UTF-8) must yield that row as a ledger entry, while an
Arrow schema inference would reject the whole file.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from pipeline.errors import ConfigError, InfrastructureError
from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


@dataclass
class SourcePart:
    format: str = "alpaca"  # alpaca ({instruction, input, output}) or ultrachat ({id, data: [turns]})
    dataset: Optional[str] = None  # Hub dataset name, read when path is null
    revision: Optional[str] = None  # Hub revision (commit) pinned for reproducibility
    split: str = "train"  # Hub split
    path: Optional[str] = None  # local JSON / JSONL / Parquet file instead of the Hub
    take: Optional[int] = None  # keep the first N records of this part (the recipe's selection)


@dataclass
class SourceSettings:
    name: str = "sample"  # sample | alpaca | ultrachat | recipe
    path: Optional[str] = None  # single-part sources: local file instead of the Hub
    limit: Optional[int] = None  # cap on the total number of records (all parts)
    parts: list[SourcePart] = field(default_factory=list)


def resolve_path(path: str) -> Path:
    """`samples/...` paths point into the package's bundled sample files."""
    p = Path(path).expanduser()
    if not p.is_absolute() and p.parts and p.parts[0] == "samples":
        p = SAMPLES_DIR.joinpath(*p.parts[1:])
    return p


def part_identity(part: SourcePart) -> dict:
    if part.path:
        path = resolve_path(part.path)
        if not path.exists():
            raise ConfigError(f"source file not found: {path}")
        return {"format": part.format, "file_sha256": file_sha256(path), "take": part.take}
    return {"format": part.format, "dataset": part.dataset, "revision": part.revision,
            "split": part.split, "take": part.take}


def read_local(path: Path) -> Iterator[tuple[object, str | None]]:
    """Yields (record, problem): a record that could not be decoded comes with a reason."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield row, None
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line.decode("utf-8")), None
                except UnicodeDecodeError as exc:
                    yield None, f"line {number}: invalid UTF-8 ({exc.reason} at byte {exc.start})"
                except json.JSONDecodeError as exc:
                    yield None, f"line {number}: invalid JSON ({exc.msg})"
    elif suffix == ".json":
        data = json.loads(path.read_bytes().decode("utf-8", errors="strict"))
        rows = data if isinstance(data, list) else data.get("data", [])
        for row in rows:
            yield row, None
    else:
        raise ConfigError(f"source file {path}: expected .json, .jsonl or .parquet")


def read_hub(part: SourcePart) -> Iterator[tuple[object, str | None]]:
    try:
        import datasets

        ds = datasets.load_dataset(part.dataset, revision=part.revision, split=part.split, streaming=True)
    except Exception as exc:  # hub unreachable, dataset renamed, no auth: nothing to do per item
        raise InfrastructureError(
            f"cannot load dataset {part.dataset!r} (revision {part.revision}) from the Hub: {exc}. "
            f"Offline? Point source.path (or source.parts[].path) at a local copy."
        ) from exc
    for row in ds:
        yield row, None


def raw_records(part: SourcePart) -> Iterator[dict]:
    """Records as the engine shards them: {id, source, raw (JSON text or None), problem}."""
    reader = read_local(resolve_path(part.path)) if part.path else read_hub(part)
    for index, (record, problem) in enumerate(reader):
        if part.take is not None and index >= part.take:
            return
        yield {
            "id": source_id(part.format, index, record),
            "source": part.format,
            "raw": None if problem else json.dumps(record, ensure_ascii=False, default=str),
            "problem": problem,
        }


def source_id(fmt: str, index: int, record: object) -> str:
    """Stable ids from the source: Alpaca by row number, UltraChat by its own id."""
    if fmt == "ultrachat" and isinstance(record, dict) and isinstance(record.get("id"), (str, int)):
        return f"ultrachat-{record['id']}"
    return f"{fmt}-{index:06d}"
