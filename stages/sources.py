"""Reading Alpaca and UltraChat records, from the Hub by name or from a local file.

Local files are parsed with the standard library rather than `datasets`: a file with a bad row
(a number where text belongs, invalid UTF-8, a syntax error) must yield that row as a ledger
entry, while an Arrow schema inference would reject the whole file. Problems of the file as a
whole (missing, a directory, not Parquet, a JSON top level that is not a list of records) stop
the run with one line naming the file.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional

from pipeline.errors import ConfigError, InfrastructureError
from pipeline.shards import file_sha256
from stages.records import RowProblem, check_record, loads_guarded

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"  # `bundled:NAME` is a file shipped in the package's samples/ folder
FORMATS = ("alpaca", "ultrachat")
SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet")


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


@dataclass
class SourceRow:
    """One record of a source as read, before any interpretation."""

    index: int  # position within its part (counts unreadable rows too)
    location: str  # where a person finds it: "file.jsonl line 7", "file.parquet row 3"
    record: object = None
    problem: str | None = None


def resolve_path(path: str) -> Path:
    """`bundled:NAME` is a sample shipped with the package; any other relative path is taken
    from the working directory, as a user typing it expects."""
    if path.startswith(BUNDLED_PREFIX):
        name = path[len(BUNDLED_PREFIX):]
        with resources.as_file(resources.files("stages") / "samples" / name) as p:
            return Path(p)
    return Path(path).expanduser().absolute()


def check_part(part: SourcePart) -> None:
    """File-level problems, found before any work starts."""
    if part.format not in FORMATS:
        raise ConfigError(f"source format {part.format!r} is not one of {', '.join(FORMATS)}")
    if part.take is not None and part.take < 0:
        raise ConfigError(f"source take must be >= 0, got {part.take}")
    if not part.path:
        if not part.dataset:
            raise ConfigError(f"source part ({part.format}) needs a path or a Hub dataset name")
        return
    path = resolve_path(part.path)
    if not path.exists():
        raise ConfigError(f"source file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"source path is a directory, expected a file: {path}")
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"source file {path}: expected .json, .jsonl or .parquet, got {path.suffix or 'no suffix'!r}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"source file {path} cannot be read: {exc.strerror}") from None


def part_identity(part: SourcePart) -> dict:
    """What identifies a part's data; check_part has run (the stage's preflight check)."""
    if part.path:
        return {"format": part.format, "file_sha256": file_sha256(resolve_path(part.path)), "take": part.take}
    return {"format": part.format, "dataset": part.dataset, "revision": part.revision,
            "split": part.split, "take": part.take}


def read_local(path: Path, max_record_bytes: int) -> Iterator[SourceRow]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from read_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path, max_record_bytes)
    else:
        yield from read_json_array(path, max_record_bytes)


def read_parquet(path: Path) -> Iterator[SourceRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"source file {path} is not a readable Parquet file: {exc}") from None
    index = 0
    for batch in reader.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield SourceRow(index, f"{path.name} row {index}", row, check_record(row))
            index += 1


def read_jsonl(path: Path, max_record_bytes: int) -> Iterator[SourceRow]:
    index = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM is valid input
                line = line[3:]
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            yield SourceRow(index, where, *parse_line(line, max_record_bytes))
            index += 1


def parse_line(line: bytes, max_record_bytes: int) -> tuple[object, str | None]:
    if len(line) > max_record_bytes:
        return None, f"record of {len(line)} bytes, over max_record_bytes={max_record_bytes}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
    try:
        record = loads_guarded(text)
    except RowProblem as exc:
        return None, str(exc)
    return record, check_record(record)


_NEXT_RECORD = re.compile(r",\s*(?=\{)")


def read_json_array(path: Path, max_record_bytes: int) -> Iterator[SourceRow]:
    """A JSON file holding a list of records (or {"data": [...]}), read record by record so a
    syntax error or bad bytes in one record cost that record only."""
    # surrogateescape keeps invalid bytes as lone surrogates: check_record turns them into a
    # ledgered row instead of failing the whole file.
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    start = _skip_space(text, 0)
    if start == len(text):
        raise ConfigError(f"source file {path} is empty")
    if text[start] != "[":
        yield from _records_of_object(path, text)
        return
    decoder = json.JSONDecoder()
    pos, index, line, line_pos = start + 1, 0, 1, 0
    while True:
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == "]":
            break
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        where = f"{path.name} record {index} (line {line})"
        if pos >= len(text):
            raise ConfigError(f"source file {path} ends inside its list (after {where})")
        try:
            record, end = decoder.raw_decode(text, pos)
            problem = (f"record of {end - pos} characters, over max_record_bytes={max_record_bytes}"
                       if end - pos > max_record_bytes else check_record(record))
        except (json.JSONDecodeError, RecursionError) as exc:
            record, problem, end = None, _syntax_problem(exc), _resync(text, pos + 1)
        yield SourceRow(index, where, record, problem)
        index += 1
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos += 1  # (a missing comma between two whole records costs nothing: parsing goes on)
    if text[_skip_space(text, pos + 1):].strip():
        raise ConfigError(f"source file {path} has content after the closing ']' of its list")


def _records_of_object(path: Path, text: str) -> Iterator[SourceRow]:
    try:
        data = loads_guarded(text)
    except RowProblem as exc:
        raise ConfigError(f"source file {path}: {exc}") from None
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        shape = f"an object with keys {sorted(data)[:5]}" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise ConfigError(f"source file {path}: the top level is {shape}; expected a list of records "
                          f"(or an object whose 'data' is that list)")
    for index, row in enumerate(rows):
        problem = check_record(row)
        yield SourceRow(index, f"{path.name} data[{index}]", row, problem)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _resync(text: str, pos: int) -> int:
    """After the start of a broken record, the comma before the next record (`, {`), or the
    list's end. A broken record holding `, {` itself (a list of objects) splits into more rows."""
    match = _NEXT_RECORD.search(text, pos)
    if match:
        return match.start()
    end = text.rfind("]")
    return end if end > pos else len(text)


def _syntax_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse"
    return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def read_hub(part: SourcePart) -> Iterator[SourceRow]:
    try:
        import datasets

        ds = datasets.load_dataset(part.dataset, revision=part.revision, split=part.split, streaming=True)
        for index, row in enumerate(ds):
            yield SourceRow(index, f"{part.dataset} {part.split} row {index}", row, check_record(row))
    except Exception as exc:  # hub unreachable, dataset renamed, no auth: nothing to do per item
        raise InfrastructureError(
            f"cannot read dataset {part.dataset!r} (revision {part.revision}) from the Hub: {exc}. "
            f"Offline? Point source.path (or source.parts[].path) at a local copy."
        ) from exc


def raw_records(part: SourcePart, max_record_bytes: int) -> Iterator[dict]:
    """Records as the engine shards them: {id, source, location, raw (JSON text or None), problem}."""
    reader = read_local(resolve_path(part.path), max_record_bytes) if part.path else read_hub(part)
    count = 0
    for row in reader:
        if part.take is not None and row.index >= part.take:
            break
        count += 1
        record = None if row.problem else row.record  # an unreadable row's own id is not trusted
        yield {"id": source_id(part.format, row.index, record), "source": part.format, "location": row.location,
               "raw": None if row.problem else json.dumps(record, ensure_ascii=False), "problem": row.problem}
    if count == 0 and part.take != 0:
        raise ConfigError(f"source {part.path or part.dataset} holds no records")


def source_id(fmt: str, index: int, record: object) -> str:
    """Stable ids. A record's own id (UltraChat) becomes `ultrachat-<id>`; a row without one is
    named by its position as `<format>#<row>`, a form no own id can take, so the two name spaces
    never meet. Alpaca has no ids of its own: `alpaca-<row>`."""
    if fmt == "alpaca":
        return f"alpaca-{index:06d}"
    own = record.get("id") if isinstance(record, dict) else None
    if isinstance(own, str) and own.strip() or isinstance(own, int) and not isinstance(own, bool):
        return f"{fmt}-{own}"
    return f"{fmt}#{index:06d}"
