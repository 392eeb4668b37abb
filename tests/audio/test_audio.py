import numpy as np
import pyarrow as pa

from stages import audio


def tone(seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_stereo_becomes_mono():
    stereo = np.stack([tone(0.5, 16000), tone(0.5, 16000)], axis=1)
    assert audio.to_mono(stereo).shape == (8000,)


def test_resample_changes_length_by_the_rate_ratio():
    out = audio.resample(tone(1.0, 22050), 22050, 16000)
    assert abs(len(out) - 16000) <= 1 and out.dtype == np.float32


def test_trim_keeps_the_sound_and_a_small_margin():
    rate = 16000
    clip = np.concatenate([np.zeros(rate), tone(1.0, rate), np.zeros(rate)])
    trimmed = audio.trim_silence(clip, rate, threshold_db=-40, pad_s=0.1)
    assert 1.15 <= len(trimmed) / rate <= 1.25


def test_trim_of_silence_is_empty():
    assert audio.trim_silence(np.zeros(16000, dtype=np.float32), 16000).size == 0


def test_loudness_gain_never_clips():
    rate = 16000
    # A quiet clip with one loud click: the loudness target would need a gain that clips it.
    clip = tone(2.0, rate, amplitude=0.01)
    clip[100] = 0.9
    out = audio.normalize_loudness(clip, rate, target_lufs=-14, peak_dbfs=-1)
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20) + 1e-6


def test_loudness_reaches_the_target():
    import pyloudnorm

    rate = 16000
    out = audio.normalize_loudness(tone(2.0, rate, amplitude=0.05), rate, target_lufs=-23)
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(out.astype(np.float64)) + 23) < 0.5


def test_postprocess_keeps_native_rate_when_asked():
    clip, rate = audio.postprocess(tone(1.0, 22050), 22050, target_rate=None)
    assert rate == 22050


def test_flac_round_trip_in_the_hf_audio_struct():
    clip, rate = audio.postprocess(tone(1.0, 22050), 22050)
    data = audio.encode_flac(clip, rate)
    assert data[:4] == b"fLaC"
    table = pa.Table.from_pylist([{"audio": audio.audio_struct(data, "x.flac")}],
                                 schema=pa.schema([("audio", audio.AUDIO_STRUCT)]))
    decoded, decoded_rate = audio.decode(table.column("audio")[0]["bytes"].as_py())
    assert decoded_rate == 16000 and len(decoded) == len(clip)
    assert np.max(np.abs(decoded - clip)) < 1e-3  # 16-bit PCM
