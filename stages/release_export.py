"""release_export: turn rows (texts and clips from one stage, units from another) grouped back
into one dialogue row per conversation, then written in the InstructS2S-200K release layout
(stages/exports/instructs2s_release.py) under ${data_root}/export/ by finalize().

A dialogue keeps its turns from the first up to the first one that is missing (dropped upstream,
and ledgered there); the turns after a gap are ledgered here (`after_dropped_turn`), so every
dialogue written has an intact history.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import pyarrow as pa
import soundfile as sf

from pipeline.errors import ItemFailure
from pipeline.stage import Stage, StageSettings
from stages import audio
from stages.exports import export_format
from stages.exports.settings import ExportSettings

FORMAT = "instructs2s_release"

TURN = pa.struct([
    ("instruction", pa.string()), ("instruction_spoken", pa.string()), ("response", pa.string()),
    ("instruction_audio", audio.AUDIO_STRUCT), ("response_audio", audio.AUDIO_STRUCT),
    ("response_units", pa.list_(pa.int16())),
    ("instruction_duration", pa.float32()), ("response_duration", pa.float32()),
    ("instruction_wer", pa.float32()), ("response_wer", pa.float32()),
    ("meaning_similarity", pa.float32()), ("answer_similarity", pa.float32()),
])
OUTPUT = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("num_turns", pa.int8()),
    ("instruction_speaker", pa.string()), ("response_speaker", pa.string()), ("turns", pa.list_(TURN)),
])


@dataclass
class ReleaseExportSettings(StageSettings):
    kind: str = "release_export"
    turns_stage: str = "release"  # stage of the turn rows: texts and both clips
    units_stage: str = "units"  # stage whose `units` become each turn's response units
    source: str = "instructs2s_release"  # the dialogue rows' `source` value
    split: str = "train"  # split folder of the written layout
    out_dir: Optional[str] = None  # null: ${data_root}/export/instructs2s_release/


class ReleaseExportStage(Stage):
    Settings: ClassVar = ReleaseExportSettings
    version: ClassVar[str] = "1"
    one_row_per_input: ClassVar[bool] = False  # turn rows in, one row per dialogue out

    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        return {s.turns_stage: ["dialogue_id", "turn", "instruction", "instruction_spoken", "response",
                                "instruction_audio", "response_audio", "meaning_similarity", "answer_similarity"],
                s.units_stage: ["units"]}

    def output_schema(self) -> pa.Schema:
        return OUTPUT

    def isolation_groups(self, rows: list[dict]) -> list[list[dict]]:
        return list(dialogues(rows).values())

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        out: list[dict | ItemFailure] = []
        for dialogue_id, turns in dialogues(rows).items():
            turns.sort(key=lambda r: r["turn"])
            whole = 0
            while whole < len(turns) and turns[whole]["turn"] == whole + 1:
                whole += 1
            for late in turns[whole:]:
                out.append(self.fail(late["id"], "after_dropped_turn",
                                     f"turn {whole + 1} of {dialogue_id} is missing (see the upstream ledgers)"))
            if whole:
                out.append(self.dialogue_row(dialogue_id, turns[:whole]))
        return out

    def dialogue_row(self, dialogue_id: str, turns: list[dict]) -> dict:
        self.count("turns", len(turns))
        return {"id": dialogue_id, "source": self.settings.source, "num_turns": len(turns),
                "instruction_speaker": None, "response_speaker": None,
                "turns": [{"instruction": t["instruction"], "instruction_spoken": t["instruction_spoken"],
                           "response": t["response"], "instruction_audio": t["instruction_audio"],
                           "response_audio": t["response_audio"], "response_units": t["units"],
                           "instruction_duration": seconds(t["instruction_audio"]),
                           "response_duration": seconds(t["response_audio"]),
                           "instruction_wer": None, "response_wer": None,
                           "meaning_similarity": t["meaning_similarity"],
                           "answer_similarity": t["answer_similarity"]} for t in turns]}

    def out_dir(self) -> Path:
        if self.settings.out_dir:
            return Path(self.settings.out_dir).expanduser().absolute()
        return (Path(self.context["data_root"]) / "export" / FORMAT).absolute()

    def finalize(self, shard_paths: list[str]) -> None:
        """The release layout of every dialogue row; redone only when the shards changed."""
        splits = {self.settings.split: [Path(p) for p in shard_paths]}
        export_format(FORMAT, splits, self.out_dir(), ExportSettings(formats=[FORMAT]))


def dialogues(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by dialogue, in the order the dialogues first appear."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["dialogue_id"], []).append(row)
    return grouped


def seconds(struct: dict) -> float:
    info = sf.info(io.BytesIO(struct["bytes"]))
    return info.frames / info.samplerate
