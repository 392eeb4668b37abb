"""speak: text -> one FLAC clip per item, in a voice picked per item (seeded by the item id).

Runs twice from config: speak_instruction (the user's spoken request) and speak_response (the
answer the speech decoder learns). Each voice entry names a TTS engine, its options and a
speaker; entries with the same engine and options share one loaded engine.

A TTS engine (see stages/engines/) is any class with
    __init__(**options, threads)                      loads the model; raising stops the run
    check_speaker(speaker)                            raises if the engine lacks that speaker
    synthesize(text, speaker, seed) -> (audio, rate)  mono float32 at the engine's rate
    version() -> str
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import pyarrow as pa

from pipeline.errors import ConfigError, ItemFailure, is_infrastructure
from pipeline.shard_progress import counted
from pipeline.stage import Stage, StageSettings
from stages import audio
from stages.model_paths import piper_download_hint, require_local

TTS_ENGINES = {
    "piper": "stages.engines.piper_tts:PiperEngine",
    "flite": "stages.engines.flite_tts:FliteEngine",
    "festival": "stages.engines.festival_tts:FestivalEngine",
    "cosyvoice": "stages.engines.cosyvoice_tts:CosyVoiceEngine",
}

VOICE_KEYS = {"engine", "speaker", "name", "meta"}  # the rest of a voice entry are engine options


@dataclass
class SpeakSettings(StageSettings):
    kind: str = "speak"
    text_stage: str = "rewrite"  # upstream stage holding the text to speak
    text_column: str = "instruction_spoken"  # its column
    voice_by: Optional[str] = None  # a column of the text stage that picks the voice (dialogue_id: one per dialogue); null: the item id
    voices: list[dict[str, Any]] = field(default_factory=list)  # one picked per item; see conf
    sample_rate: int | None = 16000  # output rate (soxr); null keeps the engine's native rate
    loudness_lufs: float | None = -23.0  # integrated loudness target; null: leave levels alone
    peak_dbfs: float = -1.0  # loudness gain stops before the peak passes this (no clipping)
    trim_db: float | None = -40.0  # trim lead/tail quieter than this below the peak; null: no trim
    trim_pad_s: float = 0.1  # silence kept at each end after trimming
    max_chars: int = 2000  # longer texts are ledgered, not spoken
    threads: int = 1  # CPU threads per worker for the TTS engine

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"threads"})
    OMIT_WHEN_DEFAULT: ClassVar[frozenset[str]] = frozenset({"voice_by"})

    def __post_init__(self):
        super().__post_init__()
        if not self.voices:
            raise ConfigError("speak: `voices` must list at least one voice")
        for voice in self.voices:
            if voice.get("engine") not in TTS_ENGINES:
                raise ConfigError(f"speak: voice {dict(voice)} needs `engine`, one of {sorted(TTS_ENGINES)}")


def voice_name(voice: dict) -> str:
    return voice.get("name") or f"{voice['engine']}:{voice.get('speaker') or 'default'}"


def item_seed(seed: int, item_id: str) -> int:
    """A per-item integer that depends only on the run seed and the id (stable across runs)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:8], "big") >> 1


def engine_key(voice: dict) -> str:
    options = {k: v for k, v in voice.items() if k not in VOICE_KEYS}
    return json.dumps([voice["engine"], options], sort_keys=True, default=str)


def load_engine(voice: dict, threads: int):
    module_name, class_name = TTS_ENGINES[voice["engine"]].split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    options = {k: v for k, v in voice.items() if k not in VOICE_KEYS}
    return engine_class(**options, threads=threads)


class SpeakStage(Stage):
    Settings: ClassVar = SpeakSettings
    version: ClassVar[str] = "1"

    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        return {s.text_stage: [s.text_column, *([s.voice_by] if s.voice_by and s.voice_by != "id" else [])]}

    def output_schema(self) -> pa.Schema:
        return pa.schema([
            ("id", pa.string()), ("audio", audio.AUDIO_STRUCT), ("duration", pa.float32()),
            ("sample_rate", pa.int32()), ("speaker", pa.string()), ("engine", pa.string()),
        ])

    def check(self) -> None:
        for i, voice in enumerate(self.settings.voices):
            if voice.get("model"):
                hint = piper_download_hint(voice["model"]) if voice.get("engine") == "piper" else ""
                require_local(voice["model"], f"stages.{self.name}.voices.{i}.model", hint)
            if voice.get("engine") == "cosyvoice":  # a zero-shot voice's prompt clip and transcript
                from stages.engines.cosyvoice_tts import prompt_files

                prompt_files(voice.get("speaker"), f"stages.{self.name}.voices.{i}.speaker")

    def setup(self) -> None:
        self.engines: dict[str, Any] = {}
        for voice in self.settings.voices:
            key = engine_key(voice)
            if key not in self.engines:
                self.engines[key] = load_engine(voice, self.settings.threads)
            self.engines[key].check_speaker(voice.get("speaker"))  # a typo stops the run here

    def engine_versions(self) -> dict[str, str]:
        engines = getattr(self, "engines", {})
        return {voice_name(v): engines[engine_key(v)].version() for v in self.settings.voices if engine_key(v) in engines}

    def pick_voice(self, row: dict) -> tuple[dict, int]:
        """(voice chosen by the `voice_by` column's value, synthesis seed of the item)."""
        seed = item_seed(self.context["seed"], row["id"])
        if self.settings.voice_by:
            choice = item_seed(self.context["seed"], str(row[self.settings.voice_by]))
            return self.settings.voices[choice % len(self.settings.voices)], seed
        return self.settings.voices[seed % len(self.settings.voices)], seed

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        return [self.speak_one(row) for row in counted(rows)]

    def speak_one(self, row: dict) -> dict | ItemFailure:
        item_id, text = row["id"], (row[self.settings.text_column] or "").strip()
        if not text:
            return self.fail(item_id, "empty_text")
        if len(text) > self.settings.max_chars:
            return self.fail(item_id, "text_too_long", f"{len(text)} chars > {self.settings.max_chars}")
        voice, seed = self.pick_voice(row)
        name = voice_name(voice)
        try:
            raw, rate = self.engines[engine_key(voice)].synthesize(text, voice.get("speaker"), seed)
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            return self.fail(item_id, "tts_failed", f"{name}: {type(exc).__name__}: {exc}")
        s = self.settings
        clip, rate = audio.postprocess(raw, rate, target_rate=s.sample_rate, target_lufs=s.loudness_lufs,
                                       peak_dbfs=s.peak_dbfs, trim_db=s.trim_db, trim_pad_s=s.trim_pad_s)
        if clip.size == 0:
            return self.fail(item_id, "no_audio", f"{name} produced silence for {text[:80]!r}")
        duration = len(clip) / rate
        self.count("clips")
        self.count("audio_ms", round(duration * 1000))
        self.count(f"voice:{name}")
        return {
            "id": item_id,
            "audio": audio.audio_struct(audio.encode_flac(clip, rate), f"{item_id}.flac"),
            "duration": duration,
            "sample_rate": rate,
            "speaker": name,
            "engine": voice["engine"],
        }
