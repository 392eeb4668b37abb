"""Audio in: FLAC/WAV bytes or files via soundfile (not torchaudio), and the Whisper log-mel."""

from __future__ import annotations

import functools
import io

import numpy as np

SAMPLE_RATE = 16000


def to_16k_mono(audio: np.ndarray, rate: int) -> np.ndarray:
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        try:
            import soxr
        except ImportError as err:  # the shards are 16 kHz; only foreign files need this
            raise RuntimeError(f"audio at {rate} Hz needs resampling to 16 kHz: pip install soxr") from err
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


def decode_bytes(data: bytes) -> np.ndarray:
    """Encoded audio (FLAC, WAV, ...) -> float32 16 kHz mono samples."""
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_16k_mono(audio, rate)


def read_file(path: str) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=False)
    return to_16k_mono(audio, rate)


@functools.lru_cache(maxsize=4)
def feature_extractor(num_mel_bins: int = 128):
    """Whisper's log-mel front end, built directly (no download): 30 s padding, 10 ms hop."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=SAMPLE_RATE)


def log_mel(audio: np.ndarray, num_mel_bins: int = 128) -> np.ndarray:
    """[num_mel_bins, 3000] log-mel of the audio padded (or cut) to 30 s."""
    fe = feature_extractor(num_mel_bins)
    return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"][0]
