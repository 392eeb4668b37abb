"""Inference on the tiny trained checkpoint: text, units, and streamed chunks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from omni.infer import answer
from omni.synthetic import tone

REPO = Path(__file__).resolve().parents[2]


def _wav(path):
    sf.write(path, tone(1.5, 330.0, np.random.default_rng(0)), 16000)
    return path


def test_answer_returns_text_and_units_streamed_in_chunks(trained_run, tiny_data, tmp_path, omni_cfg):
    chunks = []
    cfg = omni_cfg(tiny_data, "infer.omega=4", "infer.max_new_tokens=12")
    text, units = answer(cfg, str(_wav(tmp_path / "q.wav")), emit=chunks.append)
    assert isinstance(text, str)
    assert all(0 <= u < 1000 for u in units)
    assert [u for c in chunks for u in c] == units
    assert all(len(c) == 4 for c in chunks[:-1]) and all(1 <= len(c) <= 4 for c in chunks)


def test_infer_command_line(trained_run, tiny_data, tmp_path, omni_cfg):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "omni.infer", f"data_root={tiny_data}",
                          f"audio={_wav(tmp_path / 'q.wav')}", "infer.max_new_tokens=8", "infer.omega=5"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("text:") for line in lines)
    units_line = [line for line in lines if line.startswith("units:")][-1]
    assert all(tok.isdigit() for tok in units_line.split()[1:])
