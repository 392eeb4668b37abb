"""The full profile's rehearsal build (profile=full_rehearsal) on stand-ins, shared by its tests."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COSYVOICE_PYTHON = REPO / ".venv-cosyvoice" / "bin" / "python"
# Enough items that some reach every split-free stage; the stand-ins' noise is cheap to make.
REHEARSAL_BUILD = ["profile=full_rehearsal", "source.limit=4", "progress=false"]
# What the single-turn rehearsal and the trainer's rehearsal load; the CosyVoice 2 and S3 tokenizer
# stand-ins (hundreds of MB) are built by their own tests.
REHEARSAL_STANDINS = ["llama", "whisper", "whisper_hf", "voices", "hubert", "vocoder", "cosyvoice"]


def make_standins(model_cache: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/make_standins.py", "--model-cache", str(model_cache),
                           "--only", *REHEARSAL_STANDINS],
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                          timeout=timeout)


def run_rehearsal(data_root: Path, model_cache: Path, *overrides: str,
                  timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "build", f"data_root={data_root}",
                           f"model_cache={model_cache}", *REHEARSAL_BUILD, *overrides],
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=timeout)
