"""Coqui TTS's VITS (`tts_models/en/ljspeech/vits`): the recipe's response voice, as an
alternative to the same model exported to ONNX for Piper.

Optional: needs `coqui-tts` plus an importable torchaudio and (torch >= 2.9) torchcodec. On the
CPU-only stack those two exist only as CUDA builds that fail to import, so this engine is for
GPU machines; the offline profiles use Piper. `model` is a Coqui model name (downloaded on first
use) or, with `config`, a local checkpoint path.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np


class CoquiVitsEngine:
    kind = "coqui_vits"

    def __init__(self, model: str = "tts_models/en/ljspeech/vits", config: str | None = None,
                 threads: int = 1, device: str = "cpu"):
        import torch
        from TTS.api import TTS

        if device == "cpu":
            torch.set_num_threads(threads)
        if config is not None:
            self.tts = TTS(model_path=str(Path(model).expanduser()), config_path=str(Path(config).expanduser()),
                           progress_bar=False)
        else:
            self.tts = TTS(model_name=model, progress_bar=False)
        self.tts.to(device)
        self.model_name = model
        self.native_rate = int(self.tts.synthesizer.output_sample_rate)

    def check_speaker(self, speaker: str | None) -> None:
        speakers = self.tts.speakers or []
        if speakers and speaker not in speakers:
            raise ValueError(f"Coqui model {self.model_name} has no speaker {speaker!r}; it has {speakers[:20]}")

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        import torch

        torch.manual_seed(seed % (2**63))  # VITS samples noise: seed it per item
        wav = self.tts.tts(text=text, speaker=speaker if self.tts.speakers else None)
        return np.asarray(wav, dtype=np.float32), self.native_rate

    def version(self) -> str:
        return f"coqui-tts {metadata.version('coqui-tts')}, {self.model_name}"
