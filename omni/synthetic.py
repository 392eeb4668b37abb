"""Tiny synthetic training shards in the pipeline's schema (tests and `omni.bench`).

Instruction audio is a few seconds of tones and noise encoded as 16 kHz FLAC; responses are short
sentences from a small word list; units are random de-duplicated ids in 0..999.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

WORDS = ("the sun is warm and bright today so we can walk to the park near the river "
         "try to drink water eat fruit and sleep well every night to stay healthy").split()


def flac_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), rate, format="FLAC")
    return buf.getvalue()


def tone(seconds: float, freq: float, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def dedup_units(n: int, rng: np.random.Generator) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        u = int(rng.integers(0, 1000))
        if not out or out[-1] != u:
            out.append(u)
    return out


def make_rows(n: int, seed: int = 0, *, long_audio: int = 0, empty_response: int = 0,
              no_units: int = 0, units_per_item: int = 20, seconds: tuple[float, float] = (1.0, 2.5),
              words: tuple[int, int] = (5, 9)) -> list[dict]:
    """n usable rows, plus rows that must be skipped (over 30 s, empty response, no units).
    Instruction audio lasts uniformly `seconds`; responses have `words` words (high end excluded)."""
    rng = np.random.default_rng(seed)
    rows = []
    kinds = ["ok"] * n + ["long"] * long_audio + ["empty"] * empty_response + ["nounits"] * no_units
    for i, kind in enumerate(kinds):
        duration = 31.0 if kind == "long" else float(rng.uniform(*seconds))
        audio = tone(duration, 200.0 + 40.0 * i, rng)
        picked = [WORDS[int(j)] for j in rng.integers(0, len(WORDS), int(rng.integers(*words)))]
        response = "" if kind == "empty" else " ".join(picked).capitalize() + "."
        reply = tone(1.0, 300.0, rng)
        rows.append({
            "id": f"syn-{seed}-{i:05d}", "source": "synthetic",
            "instruction": f"Question number {i}?", "instruction_spoken": f"Hey, question number {i}?",
            "response": response,
            "instruction_audio": {"bytes": flac_bytes(audio), "path": f"syn-{i:05d}-instruction.flac"},
            "response_audio": {"bytes": flac_bytes(reply), "path": f"syn-{i:05d}-response.flac"},
            "instruction_speaker": "synthetic", "instruction_duration": duration, "response_duration": 1.0,
            "response_units": [] if kind == "nounits" else dedup_units(units_per_item, rng),
            "response_wer": 0.0,
        })
    return rows


def write_shards(data_root: str | Path, rows: list[dict], shards: int = 2) -> list[Path]:
    """Write rows round-robin into `data/train-XXXXX-of-XXXXX.parquet` with the training-shard schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("instruction", pa.string()),
        ("instruction_spoken", pa.string()), ("response", pa.string()),
        ("instruction_audio", audio), ("response_audio", audio), ("instruction_speaker", pa.string()),
        ("instruction_duration", pa.float32()), ("response_duration", pa.float32()),
        ("response_units", pa.list_(pa.int16())), ("response_wer", pa.float32()),
    ])
    out = Path(data_root) / "data"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(shards):
        part = rows[s::shards]
        path = out / f"train-{s:05d}-of-{shards:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(part, schema=schema), path)
        paths.append(path)
    return paths
