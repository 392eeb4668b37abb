"""Each GPU rate benchmark on its tiny shapes: the real code paths (random weights), and a sane
rate line (positive rate, memory recorded)."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_rates.common import parse
from benchmarks.gpu_rates.cosyvoice import cosyvoice_python

ROOT = Path(__file__).resolve().parents[2]


def rates(module: str, *args: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.gpu_rates.{module}", "--tiny", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = parse(done.stdout)
    assert rows, done.stdout
    for row in rows:
        assert row["audio_h_per_device_min"] > 0 and row["wall_s"] > 0 and row["audio_s"] > 0
        assert row["peak_mib"] > 0 and row["device"] and row["precision"] and row["batch"]
    return rows


def test_hubert_rate():
    assert {r["stage"] for r in rates("hubert")} == {"units"}


def test_whisper_engines_and_verify_batching():
    rows = rates("whisper", "--verify-batch", "4")
    engines = {r["engine"].split(",")[0] for r in rows}
    assert {"CTranslate2 (faster-whisper's engine)", "transformers WhisperForConditionalGeneration"} <= engines
    assert all(r["clips_per_device_s"] > 0 for r in rows)
    verify = [r for r in rows if r["engine"].startswith("verify engine")]
    if verify:  # the batched verify engine gives the per-clip transcripts
        assert all(r["same_transcripts"].split("/")[0] == r["same_transcripts"].split("/")[1] for r in verify)


def test_vits_rate():
    rows = rates("vits")
    assert rows[0]["stage"] == "speak_response" and rows[0]["device_class"] == "cpu_core"


@pytest.mark.skipif(not cosyvoice_python(), reason="no CosyVoice environment (make setup-cosyvoice, or set COSYVOICE_PYTHON)")
def test_cosyvoice_concurrent_streams_rate():
    rows = rates("cosyvoice")
    assert [r["batch"].split()[0] for r in rows] == ["1", "2"]
    assert all(r["stage"] == "speak_instruction" and r["real_time_factor"] > 0 for r in rows)
    # speech tokens are bounded: every sentence is the recipe's mean instruction, 7.5 s
    assert all(abs(r["audio_s"] / r["sentences"] - 7.5) < 0.1 for r in rows)


@pytest.mark.parametrize("module", ["llm"])
def test_published_llm_rows_name_their_source(module):
    done = subprocess.run([sys.executable, "-m", f"benchmarks.gpu_rates.{module}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "https://" in done.stdout
