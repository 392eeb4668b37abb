"""Two engine-only stages of a toy recipe: one expands each item into two rows, one groups them back."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import ClassVar

import pyarrow as pa

from pipeline.stage import Stage, StageSettings


@dataclass
class ToySettings(StageSettings):
    upstream: str = "source"  # the stage read
    fail_group: str = ""  # SplitInTwo: its rows of this item fail; JoinPairs: this item's group raises


class SplitInTwo(Stage):
    Settings: ClassVar = ToySettings
    one_row_per_input: ClassVar[bool] = False

    def input_columns(self):
        return {self.settings.upstream: ["text"]}

    def output_schema(self):
        return pa.schema([("id", pa.string()), ("item", pa.string()), ("half", pa.int8()), ("text", pa.string())])

    def process(self, rows):
        out = []
        for row in rows:
            words = row["text"].split()
            for half, part in enumerate((words[: len(words) // 2], words[len(words) // 2:])):
                out.append({"id": f"{row['id']}-t{half + 1}", "item": row["id"], "half": half + 1,
                            "text": " ".join(part)})
        return out


class JoinPairs(Stage):
    Settings: ClassVar = ToySettings
    one_row_per_input: ClassVar[bool] = False

    def input_columns(self):
        return {self.settings.upstream: ["item", "half", "text"]}

    def output_schema(self):
        return pa.schema([("id", pa.string()), ("halves", pa.int8()), ("text", pa.string())])

    def isolation_groups(self, rows):
        return [list(g) for _, g in groupby(rows, key=lambda r: r["item"])]

    def process(self, rows):
        out = []
        for group in self.isolation_groups(rows):
            if group[0]["item"] == self.settings.fail_group:
                raise ValueError(f"cannot join {group[0]['item']}")
            group.sort(key=lambda r: r["half"])
            out.append({"id": group[0]["item"], "halves": len(group), "text": " ".join(r["text"] for r in group)})
        return out
