"""scripts/make_standins.py: idempotent, atomic builds; the stand-ins load as the full profile loads
the real models (profile=full_rehearsal's settings)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_standins  # noqa: E402


def counting_builder(calls: list[int], fail: bool = False):
    def build(out: Path, seed: int) -> None:
        calls.append(seed)
        (out / "weights.bin").write_bytes(bytes([seed]))
        if fail:
            raise RuntimeError("half-way")
    return build


def test_ensure_builds_once_per_version_and_seed(tmp_path):
    calls: list[int] = []
    builder = make_standins.Builder(name="x", version="1", build=counting_builder(calls))
    target = make_standins.ensure(builder, tmp_path, seed=3)
    assert make_standins.ensure(builder, tmp_path, seed=3) == target == tmp_path / "x"
    assert calls == [3] and (target / "weights.bin").read_bytes() == b"\x03"
    assert json.loads((target / make_standins.MARKER).read_text()) == {"builder": "x", "version": "1", "seed": 3}
    make_standins.ensure(builder, tmp_path, seed=4)  # another seed: rebuilt
    make_standins.ensure(make_standins.Builder("x", "2", builder.build), tmp_path, seed=4)  # another version
    assert calls == [3, 4, 4] and sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_a_failed_build_leaves_the_finished_folder_alone(tmp_path):
    calls: list[int] = []
    make_standins.ensure(make_standins.Builder("x", "1", counting_builder(calls)), tmp_path, seed=1)
    with pytest.raises(RuntimeError):
        make_standins.ensure(make_standins.Builder("x", "2", counting_builder(calls, fail=True)), tmp_path, seed=1)
    assert (tmp_path / "x" / "weights.bin").read_bytes() == b"\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no scratch folder left


def test_unknown_builder_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        make_standins.main(["--out", str(tmp_path), "--only", "nosuch"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_whisper_and_llama_standins_load_as_the_full_profile_loads_them(standins):
    from pipeline.cli import load_config
    from stages.engines.whisper_asr import WhisperASR

    root = standins / "standins"
    run = load_config(["profile=full_rehearsal", f"model_cache={standins}"])
    verify = {n.name: n.settings for n in run.stages}["verify_response"]
    assert Path(verify.asr_model) == root / "whisper"
    asr = WhisperASR(verify.asr_model, device=verify.asr_device, compute_type=verify.asr_compute_type,
                     beam_size=verify.beam_size)
    assert asr.model.feature_extractor.mel_filters.shape[0] == 128  # large-v3's front end
    assert isinstance(asr.transcribe(np.zeros(16000, dtype=np.float32)), str)

    from transformers import AutoConfig, AutoTokenizer

    llama = root / "llama"
    config = AutoConfig.from_pretrained(llama)
    assert config.model_type == "llama" and config.head_dim >= 32  # vLLM's CPU attention needs >= 32
    tokenizer = AutoTokenizer.from_pretrained(llama)
    text = tokenizer.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\ns<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nu<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert tokenizer.eos_token == "<|eot_id|>"
