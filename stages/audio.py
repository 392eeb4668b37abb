"""Audio clips as the dataset stores them: mono float32 in memory, FLAC in the HF `Audio` struct.

Everything downstream (Whisper, HuBERT, the unit vocoder) works at 16 kHz mono, so speak
resamples there by default; the engine's native rate can be kept instead.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pyarrow as pa
import soundfile as sf
import soxr

TARGET_RATE = 16_000

# The Hugging Face `datasets.Audio` feature reads and writes exactly this struct.
AUDIO_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"expected 1-D or 2-D audio, got shape {audio.shape}")
    return audio


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    if rate == target_rate:
        return audio
    return soxr.resample(audio, rate, target_rate, quality="HQ").astype(np.float32)


def trim_silence(audio: np.ndarray, rate: int, threshold_db: float = -40.0, pad_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing stretches quieter than `threshold_db` below the clip's peak,
    keeping `pad_s` of margin so word onsets and releases survive."""
    if audio.size == 0:
        return audio
    frame = max(1, int(rate * 0.02))
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame) if len(audio) >= frame else audio[None, :]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12) / peak) > threshold_db)
    pad = int(pad_s * rate)
    start = max(0, loud[0] * frame - pad)
    end = min(len(audio), (loud[-1] + 1) * frame + pad)
    return audio[start:end]


def normalize_loudness(audio: np.ndarray, rate: int, target_lufs: float = -23.0,
                       peak_dbfs: float = -1.0) -> np.ndarray:
    """Scale to `target_lufs` (ITU-R BS.1770 integrated loudness), but never so far that the
    peak passes `peak_dbfs`: a quieter clip beats a clipped one."""
    import pyloudnorm

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0:
        return audio
    gain = 1.0
    if len(audio) >= int(0.4 * rate):  # BS.1770 needs at least one 400 ms block
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyloudnorm warns about its own clipping check
            loudness = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
        if np.isfinite(loudness):
            gain = 10 ** ((target_lufs - loudness) / 20)
    gain = min(gain, 10 ** (peak_dbfs / 20) / peak)
    return (audio * gain).astype(np.float32)


def postprocess(audio: np.ndarray, rate: int, *, target_rate: int | None = TARGET_RATE,
                target_lufs: float | None = -23.0, peak_dbfs: float = -1.0,
                trim_db: float | None = -40.0, trim_pad_s: float = 0.1) -> tuple[np.ndarray, int]:
    """Engine output -> stored clip: mono, trimmed, resampled, loudness-normalized."""
    audio = to_mono(audio)
    if trim_db is not None:
        audio = trim_silence(audio, rate, trim_db, trim_pad_s)
    if target_rate is not None:
        audio, rate = resample(audio, rate, target_rate), target_rate
    if target_lufs is not None:
        audio = normalize_loudness(audio, rate, target_lufs, peak_dbfs)
    return audio, rate


def encode_flac(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """FLAC (or any soundfile format) bytes -> (mono float32, rate)."""
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_mono(audio), int(rate)


def audio_struct(data: bytes, path: str) -> dict:
    return {"bytes": data, "path": path}
