"""The LLaMA-Omni training layout (recipe.md section 7): one JSON list of conversations plus a
16 kHz wav of each spoken instruction, under ${data_root}/export/llama_omni/.

Each item: `id`; `speech`, the wav's path relative to the JSON file; `conversations`, a human
turn of "<speech>" plus the user prompt line and a gpt turn with the text response; and
`tgt_units`, the response's de-duplicated units (stage 2 targets). Wav names carry a hash of
the audio, so a rebuild that changes a clip writes a new file and the stale one is removed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf

from pipeline.shards import atomic_write_bytes
from stages import audio

JSON_NAME = "instructs2s.json"
COLUMNS = ["id", "instruction_audio", "response", "response_units"]


def safe_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", item_id)


def export_llama_omni(train_files: list[Path], out_dir: Path, user_prompt: str, rate: int = 16_000) -> Path:
    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    json_path = out_dir / JSON_NAME
    tmp = json_path.with_name(f".{JSON_NAME}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as out:  # streamed: the full list never sits in memory
        out.write("[")
        first = True
        for train_file in train_files:
            for batch in pq.ParquetFile(train_file).iter_batches(columns=COLUMNS, batch_size=256):
                for row in batch.to_pylist():
                    wav = write_wav(row["id"], row["instruction_audio"]["bytes"], wav_dir, rate)
                    written.add(wav.name)
                    item = {
                        "id": row["id"],
                        "speech": f"wavs/{wav.name}",
                        "conversations": [
                            {"from": "human", "value": f"<speech>\n{user_prompt}"},
                            {"from": "gpt", "value": row["response"]},
                        ],
                        "tgt_units": row["response_units"],
                    }
                    out.write(("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False))
                    first = False
        out.write("\n]\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, json_path)
    for stale in wav_dir.glob("*.wav"):
        if stale.name not in written:
            stale.unlink()
    return json_path


def write_wav(item_id: str, flac: bytes, wav_dir: Path, rate: int) -> Path:
    path = wav_dir / f"{safe_name(item_id)}-{hashlib.sha256(flac).hexdigest()[:10]}.wav"
    if not path.exists():
        clip, clip_rate = audio.decode(flac)
        buffer = io.BytesIO()
        sf.write(buffer, audio.resample(clip, clip_rate, rate), rate, format="WAV", subtype="PCM_16")
        atomic_write_bytes(path, buffer.getvalue())
    return path
