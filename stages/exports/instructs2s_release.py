"""The layout of the released InstructS2S-200K (huggingface.co/datasets/ICTNLP/InstructS2S-200K):
per split, `<split>/conversations.json`, a JSON list of items

    {"id": ..., "conversation": [
        {"from": "human", "speech": "wav/<id>/<id>-1-user.wav", "text": <spoken instruction>, "unit": null},
        {"from": "gpt", "speech": "wav/<id>/<id>-1-assistant.wav", "text": <response>, "unit": "<12><34>..."}]}

with the turn fields of the release (from, speech, text, unit) and its file naming; `speech`
is relative to the split folder, as the release's is to its own root (Lyra's loader joins it to
a `speech_folder` and parses a "<12><34>" unit string with re.findall(r"<(\\d+)>")). One turn
pair per item: the recipe is single-turn. Units are this build's HuBERT k-means units with
repeats merged; the release's own units come from another tokenizer and keep repeats.
"""
from __future__ import annotations

from pathlib import Path

from stages.exports.files import item_stem, iter_rows, wav_16bit, write_if_changed, write_json_list
from stages.exports.settings import ExportSettings

VERSION = "1"
LIST_FILE = "conversations.json"
RATE = 16_000
COLUMNS = ["id", "instruction_spoken", "instruction_audio", "response", "response_audio", "response_units"]


def unit_string(units: list[int]) -> str:
    return "".join(f"<{u}>" for u in units)


def export(splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings) -> set[Path]:
    written: set[Path] = set()
    for split, files in splits.items():
        split_dir = out_dir / split
        items = (conversation(row, split_dir, written) for row in iter_rows(files, COLUMNS))
        written.add(write_json_list(split_dir / LIST_FILE, items))
    return written


def conversation(row: dict, split_dir: Path, written: set[Path]) -> dict:
    stem = item_stem(row["id"])
    turns = []
    for side, role, suffix, text, unit in (
            ("instruction", "human", "user", row["instruction_spoken"], None),
            ("response", "gpt", "assistant", row["response"], unit_string(row["response_units"]))):
        speech = f"wav/{stem}/{stem}-1-{suffix}.wav"
        # Names follow the release, not the content: rewritten only when the clip changed.
        written.add(write_if_changed(split_dir / speech, wav_16bit(row[f"{side}_audio"]["bytes"], RATE)))
        turns.append({"from": role, "speech": speech, "text": text, "unit": unit})
    return {"id": row["id"], "conversation": turns}


def describe(out_dir: str) -> str:
    return (f"InstructS2S-200K release layout: `{out_dir}/<split>/{LIST_FILE}` (`conversation` turns with "
            "`from`, `speech`, `text`, `unit` as a \"<12><34>\" string) and 16 kHz wavs of both sides")
