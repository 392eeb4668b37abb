"""Engine-only stages: a generated source and a passthrough, for benchmarks and engine tests.

They are test doubles for the engine-independent machinery, not stand-ins for real engines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator

import pyarrow as pa

from pipeline.stage import SourceStage, Stage, StageSettings


@dataclass
class GeneratedSettings(StageSettings):
    items: int = 1000  # how many records to generate
    text_words: int = 12  # words per generated text
    fail_every: int = 0  # every Nth item fails (0: none), to exercise the ledger


class GeneratedSource(SourceStage):
    Settings: ClassVar = GeneratedSettings

    def read(self) -> Iterator[dict]:
        words = " ".join(["word"] * self.settings.text_words)
        for i in range(self.settings.items):
            yield {"id": f"gen-{i:09d}", "text": f"{i} {words}"}

    def source_identity(self) -> dict:
        return {"items": self.settings.items}

    def reads_locally(self) -> bool:
        return True

    def expected_records(self) -> int:
        return self.settings.items

    def output_schema(self) -> pa.Schema:
        return pa.schema([("id", pa.string()), ("text", pa.string())])

    def process(self, rows):
        every = self.settings.fail_every
        return [
            self.fail(r["id"], "generated_failure", r["text"][:20]) if every and i % every == every - 1 else r
            for i, r in enumerate(rows)
        ]


@dataclass
class PassthroughSettings(StageSettings):
    upstream: str = "source"  # stage whose `text` column is copied
    suffix: str = ""  # appended to the text, so a settings change changes output
    raise_on: str = ""  # an item whose id ends with this raises (exercises failure isolation)
    broken_setup: bool = False  # setup() raises (exercises infrastructure failures)


class PassthroughStage(Stage):
    Settings: ClassVar = PassthroughSettings

    def input_columns(self) -> dict[str, list[str]]:
        return {self.settings.upstream: ["text"]}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("id", pa.string()), ("text", pa.string())])

    def setup(self) -> None:
        if self.settings.broken_setup:
            raise OSError("model file not found: /nonexistent/model.bin")

    def process(self, rows):
        marker = self.settings.raise_on
        if marker and any(r["id"].endswith(marker) for r in rows):
            raise ValueError(f"cannot handle an item ending in {marker}")
        suffix = self.settings.suffix
        return [{"id": r["id"], "text": r["text"] + suffix} for r in rows] if suffix else rows
