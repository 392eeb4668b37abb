"""LLaMA-Omni's inference layout (github.com/ictnlp/LLaMA-Omni, omni_speech/infer/infer.py and
run.sh): per split, `<split>/question.json` and a 16 kHz wav of each spoken instruction.

infer.py reads `id`, `speech` (opened as given, so here an absolute path that resolves from any
working directory), `conversations[0].value` (the prompt: "<speech>" and the user prompt line)
and, when present, `conversations[1].value` as the reference answer it copies next to its
prediction. `tgt_units` (the response's units, repeats merged) is this project's own field for
a stage-2 (speech decoder) trainer; infer.py ignores it. LLaMA-Omni's training code was not
released, so no training layout of theirs is claimed here.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.shards import atomic_write_bytes
from stages.exports.files import content_name, iter_rows, wav_16bit, write_json_list
from stages.exports.settings import ExportSettings

VERSION = "2"
QUESTION_FILE = "question.json"
RATE = 16_000  # what LLaMA-Omni's Whisper encoder hears
COLUMNS = ["id", "instruction_audio", "response", "response_units"]


def export(splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings) -> set[Path]:
    written: set[Path] = set()
    for split, files in splits.items():
        split_dir = out_dir / split
        items = (question(row, split_dir / "wavs", settings.user_prompt, written)
                 for row in iter_rows(files, COLUMNS))
        written.add(write_json_list(split_dir / QUESTION_FILE, items))
    return written


def question(row: dict, wav_dir: Path, user_prompt: str, written: set[Path]) -> dict:
    flac = row["instruction_audio"]["bytes"]
    # The name hashes the source clip and how it is converted: an existing file is this wav.
    wav = wav_dir / content_name(row["id"], flac + f"|{RATE}|{VERSION}".encode(), ".wav")
    if not wav.exists():
        atomic_write_bytes(wav, wav_16bit(flac, RATE))
    written.add(wav)
    return {
        "id": row["id"],
        "speech": str(wav),
        "conversations": [
            {"from": "human", "value": f"<speech>\n{user_prompt}"},
            {"from": "gpt", "value": row["response"]},
        ],
        "tgt_units": row["response_units"],
    }


def describe(out_dir: str) -> str:
    return (f"LLaMA-Omni inference layout: `{out_dir}/<split>/{QUESTION_FILE}` (absolute `speech` paths, the "
            "response as reference answer, `tgt_units`) and 16 kHz wavs; "
            f"run omni_speech/infer/run.sh with ROOT={out_dir}/<split>")
