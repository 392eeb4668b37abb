"""The layout of the released InstructS2S-200K (huggingface.co/datasets/ICTNLP/InstructS2S-200K),
per split: `<split>/conversations.json`, a JSON list of items

    {"id": ..., "conversation": [
        {"from": "human", "speech": "wav/<id>/<id>-1-user.wav", "text": <spoken instruction>, "unit": null},
        {"from": "gpt", "speech": "wav/<id>/<id>-1-assistant.wav", "text": <response>, "unit": "<12><34>..."},
        {"from": "human", "speech": "wav/<id>/<id>-2-user.wav", ...}, ...]}

with the release's turn fields (from, speech, text, unit) and its wav naming. The release itself
is one list, `instruct_en_200k_data_cosy2.json`, whose `speech` reads
`data/multiturn_instruction/en/wav/<id>/<file>`, with its wavs in a split tar.gz that unpacks to
`en/wav/<id>/<file>`; here each split has its own list and `speech` is relative to the split
folder (readers that keep the last two parts of `speech` find the wavs either way;
stages/release_source.py reads both). Single-turn rows give one turn pair per item; dialogue rows
(a `turns` column) give one pair per turn. Units are this build's units with repeats merged; the
release's own are CosyVoice 2 tokens that keep repeats.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from stages.exports.files import item_stem, iter_rows, wav_16bit, write_if_changed, write_json_list
from stages.exports.settings import ExportSettings

VERSION = "1"  # single-turn output unchanged by the dialogue support
LIST_FILE = "conversations.json"
RATE = 16_000
COLUMNS = ["id", "instruction_spoken", "instruction_audio", "response", "response_audio", "response_units"]
DIALOGUE_COLUMNS = ["id", "turns"]


def unit_string(units: list[int] | None) -> str | None:
    return None if units is None else "".join(f"<{u}>" for u in units)


def export(splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings) -> set[Path]:
    written: set[Path] = set()
    for split, files in splits.items():
        split_dir = out_dir / split
        items = (conversation(row, split_dir, written) for row in iter_rows(files, columns_of(files)))
        written.add(write_json_list(split_dir / LIST_FILE, items))
    return written


def columns_of(files: list[Path]) -> list[str]:
    """Dialogue rows where the split's files have a `turns` column, single-turn rows otherwise."""
    return DIALOGUE_COLUMNS if files and "turns" in pq.read_schema(files[0]).names else COLUMNS


def conversation(row: dict, split_dir: Path, written: set[Path]) -> dict:
    stem = item_stem(row["id"])
    turns = row["turns"] if "turns" in row else [row]
    pairs = []
    for number, turn in enumerate(turns, 1):
        for side, role, suffix, text, unit in (
                ("instruction", "human", "user", turn["instruction_spoken"], None),
                ("response", "gpt", "assistant", turn["response"], unit_string(turn["response_units"]))):
            speech = f"wav/{stem}/{stem}-{number}-{suffix}.wav"
            # Names follow the release, not the content: rewritten only when the clip changed.
            written.add(write_if_changed(split_dir / speech, wav_16bit(turn[f"{side}_audio"]["bytes"], RATE)))
            pairs.append({"from": role, "speech": speech, "text": text, "unit": unit})
    return {"id": row["id"], "conversation": pairs}


def describe(out_dir: str) -> str:
    return (f"InstructS2S-200K release layout: `{out_dir}/<split>/{LIST_FILE}` (`conversation` turns with "
            "`from`, `speech`, `text`, `unit` as a \"<12><34>\" string, one human/gpt pair per turn) "
            "and 16 kHz wavs of both sides")
