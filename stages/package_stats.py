"""Numbers about the training shards for the card and plots, read column-wise (no audio)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ["source", "instruction_spoken", "response", "instruction_duration", "response_duration",
           "instruction_wer", "response_wer", "response_units", "response_units_per_second"]

# The LLaMA-Omni paper's Table 1 (InstructS2S-200K), for comparison.
PAPER = {"instruction_hours": 418.0, "instruction_seconds": 7.5, "instruction_words": 21.7,
         "response_hours": 1058.0, "response_seconds": 19.0, "response_words": 39.5,
         "units_per_response": 553.6, "units_per_second": 29.0}


@dataclass
class TrainingStats:
    items: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # per-row values by name
    bytes: int = 0
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # every float column of the rows, by name
    voices: dict[str, int] = field(default_factory=dict)  # instruction_speaker -> items

    def mean(self, name: str) -> float | None:
        values = self.arrays.get(name)
        return float(np.mean(values)) if values is not None and len(values) else None

    def hours(self, name: str) -> float:
        values = self.arrays.get(name)
        return float(np.sum(values)) / 3600 if values is not None else 0.0

    def table_one(self) -> dict[str, float | None]:
        return {
            "instruction_hours": self.hours("instruction_duration"),
            "instruction_seconds": self.mean("instruction_duration"),
            "instruction_words": self.mean("instruction_words"),
            "response_hours": self.hours("response_duration"),
            "response_seconds": self.mean("response_duration"),
            "response_words": self.mean("response_words"),
            "units_per_response": self.mean("units_per_response"),
            "units_per_second": self.mean("response_units_per_second"),
        }


def words(column: pa.ChunkedArray) -> np.ndarray:
    return pc.list_value_length(pc.utf8_split_whitespace(column)).to_numpy(zero_copy_only=False)


def score_columns(schema: pa.Schema) -> list[str]:
    """Every per-item float column: durations, rates, WER and whatever scores the stages store.
    Found by type, so a stage that adds a score adds it to the card without a change here."""
    return [f.name for f in schema if pa.types.is_floating(f.type)]


def training_stats(train_files: list[Path]) -> TrainingStats:
    scored = score_columns(pq.read_schema(train_files[0])) if train_files else []
    tables = [pq.read_table(f, columns=sorted(set(COLUMNS) | set(scored) | {"instruction_speaker"}))
              for f in train_files]
    stats = TrainingStats(bytes=sum(f.stat().st_size for f in train_files))
    if not tables:
        return stats
    table = pa.concat_tables(tables)
    stats.items = table.num_rows
    sources = table.column("source").value_counts().to_pylist()
    stats.sources = {s["values"]: s["counts"] for s in sources}
    for name in ("instruction_duration", "response_duration", "instruction_wer", "response_wer",
                 "response_units_per_second"):
        stats.arrays[name] = table.column(name).to_numpy().astype(np.float64)
    stats.arrays["instruction_words"] = words(table.column("instruction_spoken"))
    stats.arrays["response_words"] = words(table.column("response"))
    stats.arrays["units_per_response"] = pc.list_value_length(table.column("response_units")).to_numpy()
    for name in scored:
        stats.scores[name] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    counts = table.column("instruction_speaker").value_counts().to_pylist()
    stats.voices = dict(sorted(((c["values"], c["counts"]) for c in counts), key=lambda kv: (-kv[1], kv[0])))
    return stats
