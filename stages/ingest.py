"""ingest: source records -> items with stable ids, the recipe's selection and pre-filters."""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import pyarrow as pa

from pipeline.stage import SourceStage, StageSettings
from stages import ingest_filters as filters
from stages.records import check_record
from stages.selection import manifest_expected, write_selection
from stages.sources import SourcePart, SourceSettings, check_part, part_identity, raw_records
from stages.text.clean import clean_text, has_speakable_text
from stages.text.validate import not_english

ALPACA_INPUT_POLICIES = ("merge", "drop_nonempty", "instruction_only")


@dataclass
class IngestSettings(StageSettings):
    source: SourceSettings = field(default_factory=SourceSettings)
    alpaca_input: str = "merge"  # merge | drop_nonempty | instruction_only: rows with a non-empty `input`
    max_input_words: int = 60  # merge: an `input` longer than this cannot be spoken; dropped
    max_chars: int = 2000  # drop prompts longer than this (cannot be spoken in 30 s anyway)
    drop_code: bool = True  # drop prompts with source code or asking for code
    drop_tables: bool = True  # drop prompts with tables
    max_url_share: float = 0.2  # drop prompts where URLs are more than this share of the words
    drop_math: bool = True  # drop prompts with heavy math notation
    max_equations: int = 2  # math: operators between terms tolerated before a drop
    drop_non_english: bool = True  # drop prompts that are not English
    dedupe_text: bool = True  # drop later items whose prompt equals an earlier one (case/space-insensitive)
    max_record_bytes: int = 1_000_000  # a source record larger than this is ledgered, not parsed

    def __post_init__(self):
        super().__post_init__()
        if self.alpaca_input not in ALPACA_INPUT_POLICIES:
            raise ValueError(f"alpaca_input must be one of {', '.join(ALPACA_INPUT_POLICIES)}, "
                             f"got {self.alpaca_input!r}")
        for name in ("max_input_words", "max_chars", "max_record_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.max_url_share <= 1:
            raise ValueError(f"max_url_share must be between 0 and 1, got {self.max_url_share}")
        if self.max_equations < 0:
            raise ValueError(f"max_equations must be >= 0, got {self.max_equations}")
        if self.source.limit is not None and self.source.limit < 0:
            raise ValueError(f"source.limit must be >= 0 (or null for all), got {self.source.limit}")


OUTPUT = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("instruction", pa.string()), ("context", pa.string()),
    ("prompt", pa.string()), ("reference_response", pa.string()),
    ("prompt_raw", pa.string()),  # the prompt as the source wrote it, before clean_text (lineage)
])


class IngestStage(SourceStage):
    Settings: ClassVar = IngestSettings
    version = "2"

    def output_schema(self) -> pa.Schema:
        return OUTPUT

    def source_identity(self) -> dict:
        src = self.settings.source
        return {"parts": [part_identity(p) for p in self.parts()], "limit": src.limit}

    def check(self) -> None:
        for part in self.parts():
            check_part(part)

    def parts(self) -> list[SourcePart]:
        return list(self.settings.source.parts or [])

    def reads_locally(self) -> bool:
        return all(p.path for p in self.parts())

    def expected_records(self) -> int | None:
        """source.limit, else the parts' `take`; a recipe part without one counts what the
        checked-in manifest froze (null until frozen: unknown)."""
        src = self.settings.source
        frozen = frozen_counts() if src.name == "recipe" else {}
        counts = [p.take if p.take is not None else frozen.get(p.format) for p in self.parts()]
        total = None if None in counts else sum(counts)
        if src.limit is not None:
            return src.limit if total is None else min(src.limit, total)
        return total

    def read(self) -> Iterator[dict]:
        """All parts in order, capped at source.limit, duplicates marked (not yet dropped:
        the drop happens in process() so it lands in the ledger like every other drop)."""
        max_bytes = self.settings.max_record_bytes
        records = itertools.chain.from_iterable(raw_records(p, max_bytes) for p in self.parts())
        if self.settings.source.limit is not None:
            records = itertools.islice(records, self.settings.source.limit)
        seen_ids: dict[str, str] = {}  # id -> location of the row that has it
        seen_texts: dict[bytes, str] = {}  # prompt digest -> "id (location)" of its first row
        for record in records:
            record["collision"] = None
            where = f"{record['id']} ({record['location']})"
            if record["id"] in seen_ids:
                record["collision"] = ("duplicate_id", f"the row at {record['location']} has id {record['id']}, "
                                       f"already taken by the row at {seen_ids[record['id']]}")
            elif self.settings.dedupe_text and (key := text_key(record)) is not None:
                first = seen_texts.setdefault(key, where)
                if first != where:
                    record["collision"] = ("duplicate_text", f"same prompt as {first}")
            seen_ids.setdefault(record["id"], record["location"])
            yield record

    def finalize(self, shard_paths: list[str]) -> None:
        write_selection(self.context["data_root"], self.settings.source.name, shard_paths)

    def process(self, rows: list[dict]) -> list:
        return [self.ingest_one(r) for r in rows]

    def ingest_one(self, row: dict):
        item_id = row["id"]
        if row.get("problem"):
            return self.fail(item_id, "unreadable_record", f"{row['location']}: {row['problem']}")
        if row.get("collision"):
            return self.fail(item_id, *row["collision"])
        record = json.loads(row["raw"])
        if not isinstance(record, dict):
            return self.fail(item_id, "bad_record",
                             f"{row['location']}: expected an object, got {type(record).__name__}")
        fields = alpaca_fields(record) if row["source"] == "alpaca" else ultrachat_fields(record)
        if isinstance(fields, str):
            return self.fail(item_id, "bad_record", f"{row['location']}: {fields}")
        raw_prompt = "\n".join(x for x in fields[:2] if x)
        instruction, context, reference = (clean_text(x) for x in fields)
        if not has_speakable_text(instruction):
            return self.fail(item_id, "empty_after_cleaning",
                             f"{row['location']}: no letters or digits left after cleaning {fields[0][:200]!r}")
        prompt = self.apply_input_policy(instruction, context)
        if prompt is None:
            return self.fail(item_id, "alpaca_input_dropped",
                             f"policy {self.settings.alpaca_input}; input: {context[:200]}")
        reason = self.speech_filter(prompt)
        if reason:
            return self.fail(item_id, reason[0], f"{reason[1]}: {prompt[:300]}")
        item = {"id": item_id, "source": row["source"], "instruction": instruction, "context": context,
                "prompt": prompt, "reference_response": reference, "prompt_raw": raw_prompt}
        if problem := check_record(item):
            return self.fail(item_id, "unreadable_record", f"{row['location']}: after cleaning, {problem}")
        return item

    def apply_input_policy(self, instruction: str, context: str) -> str | None:
        if not context:
            return instruction
        policy = self.settings.alpaca_input
        if policy == "instruction_only":
            return instruction
        if policy == "drop_nonempty" or len(context.split()) > self.settings.max_input_words:
            return None
        if filters.code_reason(context) or filters.table_reason(context):
            return None
        return f"{instruction}\n{context}"

    def speech_filter(self, prompt: str) -> tuple[str, str] | None:
        s = self.settings
        checks = [
            ("too_long", filters.length_reason(prompt, s.max_chars)),
            ("code", s.drop_code and (filters.code_reason(prompt) or filters.code_request_reason(prompt))),
            ("table", s.drop_tables and filters.table_reason(prompt)),
            ("urls", filters.url_reason(prompt, s.max_url_share)),
            ("math", s.drop_math and filters.math_reason(prompt, s.max_equations)),
        ]
        for name, reason in checks:
            if reason:
                return name, reason
        if s.drop_non_english:
            problem = not_english(prompt)
            if problem:
                return "not_english", problem.reason
        return None


def frozen_counts() -> dict[str, int]:
    """Items per source part in the checked-in manifest's `expected` block (filled once frozen)."""
    return {part: v["count"] for part, v in manifest_expected().items() if v and v.get("count") is not None}


def text_key(record: dict) -> bytes | None:
    """A short digest of the words that make the prompt, for duplicate detection."""
    if record["raw"] is None:
        return None
    data = json.loads(record["raw"])
    if not isinstance(data, dict):
        return None
    if record["source"] == "alpaca":
        parts = [data.get("instruction"), data.get("input")]
    else:
        turns = data.get("data")
        parts = [turns[0]] if isinstance(turns, list) and turns else []
    words = " ".join(str(p) for p in parts if isinstance(p, str)).lower().split()
    return hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest() if words else None


def _text(value, name: str, allow_empty: bool = False) -> str:
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"field {name!r} is {type(value).__name__}, expected text")
    if not allow_empty and not value.strip():
        raise ValueError(f"field {name!r} is empty")
    return value.strip()


def alpaca_fields(record: dict) -> tuple[str, str, str] | str:
    try:
        return (_text(record.get("instruction"), "instruction"), _text(record.get("input"), "input", True),
                _text(record.get("output"), "output", True))
    except (TypeError, ValueError) as exc:
        return str(exc)


def ultrachat_fields(record: dict) -> tuple[str, str, str] | str:
    turns = record.get("data")
    if not isinstance(turns, list) or not turns:
        return "field 'data' is missing or not a list of turns"
    try:
        user = _text(turns[0], "data[0]")
        reply = _text(turns[1], "data[1]", True) if len(turns) > 1 else ""
    except (TypeError, ValueError) as exc:
        return str(exc)
    return user, "", reply
