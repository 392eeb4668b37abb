"""Inference on the tiny trained checkpoint: text, units, and streamed chunks; bad input ends in
one line with exit code 2; a checkpoint's config cannot switch on trust_remote_code."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from omni.infer import answer, load, main
from omni.synthetic import tone

REPO = Path(__file__).resolve().parents[2]


def _wav(path):
    sf.write(path, tone(1.5, 330.0, np.random.default_rng(0)), 16000)
    return path


def test_answer_returns_text_and_units_streamed_in_chunks(trained_run, tiny_data, tmp_path, omni_cfg):
    chunks = []
    cfg = omni_cfg(tiny_data, "infer.omega=4", "infer.max_new_tokens=12")
    result = answer(cfg, str(_wav(tmp_path / "q.wav")), emit=chunks.append)
    text, units = result.text, result.units
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


def test_missing_audio_fails_in_one_line_before_anything_loads(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "omni.infer", f"data_root={tmp_path}",  # no checkpoint there
                          f"audio={tmp_path / 'nope.wav'}"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip().splitlines() == [f"error: audio file {tmp_path / 'nope.wav'} does not exist"]
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("audio, data_root, message", [
    ("folder", "data", "is a folder"),
    ("text.wav", "data", "cannot read"),
    ("q.wav", "nope", "is not a folder"),
    ("q.wav", "data", "no checkpoint"),
    (None, "data", "audio is required"),
    ("q.wav output=folder", "data", "is a folder"),
    ("q.wav output=answer.txt", "data", "written as a .wav file"),
    ("q.wav output=nope/answer.wav", "data", "does not exist"),
])
def test_bad_input_gives_one_line_and_exit_code_2(audio, data_root, message, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.wav").write_text("not audio\n")
    _wav(tmp_path / "q.wav")
    audio, _, output = (audio or "").partition(" output=")
    argv = [f"data_root={tmp_path / data_root}"] + ([f"audio={tmp_path / audio}"] if audio else [])
    argv += [f"output={tmp_path / output}"] if output else []
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_checkpoint_config_cannot_turn_on_trust_remote_code(tiny_data, tmp_path, omni_cfg, monkeypatch):
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM

    from omni import checkpoint as ckpt
    from omni.build import build_model, load_tokenizer
    from omni.config import to_yaml

    cfg = omni_cfg(tiny_data)
    saved = OmegaConf.create(to_yaml(cfg))
    saved.train.llm.trust_remote_code = True
    saved.train.tokenizer.trust_remote_code = True
    tokenizer = load_tokenizer(cfg.train.tokenizer)
    path = ckpt.save(tmp_path, 2, 1, build_model(cfg.train, tokenizer).state_dict(), {"done": True},
                     config_yaml=OmegaConf.to_yaml(saved))
    seen, real = [], AutoModelForCausalLM.from_config

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)
    monkeypatch.setattr(AutoModelForCausalLM, "from_config", spy)
    load(omni_cfg(tiny_data, f"infer.checkpoint={path}"))
    load(omni_cfg(tiny_data, f"infer.checkpoint={path}", "train.llm.trust_remote_code=true"))  # explicit: allowed
    assert seen == [False, True]
