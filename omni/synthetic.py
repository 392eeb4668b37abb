"""Tiny synthetic training shards in the pipeline's schemas (tests and `omni.bench`).

Instruction audio is a few seconds of tones and noise encoded as 16 kHz FLAC; responses are short
sentences from a small word list; units are random de-duplicated ids in 0..999. `make_rows` gives
single-turn rows, `make_dialogue_rows` multi-turn rows (one per dialogue, a `turns` list);
`write_shards` writes either.
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


def make_dialogue_rows(n: int, seed: int = 0, *, num_turns=None, units_per_item: int = 20,
                       seconds: tuple[float, float] = (1.0, 2.5), words: tuple[int, int] = (5, 9)) -> list[dict]:
    """n dialogue rows with 1..5 turns each (random), or `num_turns` (an int, or one per dialogue).
    Each turn is a `make_rows` item; the dialogue keeps one instruction voice."""
    rng = np.random.default_rng(seed)
    counts = ([int(num_turns)] * n if isinstance(num_turns, int) else list(num_turns) if num_turns is not None
              else [int(k) for k in rng.integers(1, 6, n)])
    dialogues = []
    for d, count in enumerate(counts):
        items = make_rows(count, seed=seed * 1000 + d, units_per_item=units_per_item, seconds=seconds, words=words)
        turns = [{
            "instruction": f"Dialogue {d} question {t + 1}?", "instruction_spoken": f"Dialogue {d}, question {t + 1}?",
            **{k: item[k] for k in ("response", "instruction_audio", "response_audio", "response_units",
                                    "instruction_duration", "response_duration", "response_wer")},
            "instruction_wer": 0.0, "meaning_similarity": None, "answer_similarity": 0.9,
        } for t, item in enumerate(items)]
        dialogues.append({"id": f"dia-{seed}-{d:05d}", "source": "synthetic", "num_turns": count,
                          "instruction_speaker": f"voice-{d % 3}", "response_speaker": "synthetic",
                          "turns": turns})
    return dialogues


def _schemas():
    import pyarrow as pa

    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    single = pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("instruction", pa.string()),
        ("instruction_spoken", pa.string()), ("response", pa.string()),
        ("instruction_audio", audio), ("response_audio", audio), ("instruction_speaker", pa.string()),
        ("instruction_duration", pa.float32()), ("response_duration", pa.float32()),
        ("response_units", pa.list_(pa.int16())), ("response_wer", pa.float32()),
    ])
    turn = pa.struct([
        ("instruction", pa.string()), ("instruction_spoken", pa.string()), ("response", pa.string()),
        ("instruction_audio", audio), ("response_audio", audio), ("response_units", pa.list_(pa.int16())),
        ("instruction_duration", pa.float32()), ("response_duration", pa.float32()),
        ("instruction_wer", pa.float32()), ("response_wer", pa.float32()),
        ("meaning_similarity", pa.float32()), ("answer_similarity", pa.float32()),
    ])
    dialogue = pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("num_turns", pa.int8()),
        ("instruction_speaker", pa.string()), ("response_speaker", pa.string()), ("turns", pa.list_(turn)),
    ])
    return single, dialogue


def write_shards(data_root: str | Path, rows: list[dict], shards: int = 2) -> list[Path]:
    """Write rows round-robin into `data/train-XXXXX-of-XXXXX.parquet` with the training-shard schema
    (the dialogue schema when the rows have `turns`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    single, dialogue = _schemas()
    schema = dialogue if rows and "turns" in rows[0] else single
    out = Path(data_root) / "data"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(shards):
        part = rows[s::shards]
        path = out / f"train-{s:05d}-of-{shards:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(part, schema=schema), path)
        paths.append(path)
    return paths
