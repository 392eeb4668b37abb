"""train=full_rehearsal is train=full with only model locations, dtypes, parallelism, devices, CPU
sizing and the shapes of the parts trained from scratch changed, and it trains both stages on a
CPU from the stand-ins (Hugging Face folders loaded with from_pretrained, as the recipe loads the
real models)."""
from __future__ import annotations

import math

import pytest
from config_diff import differing, flatten, outside
from omegaconf import OmegaConf

from omni.build import model_location
from omni.config import UserError, load_config

# Keys of the resolved trainer config that may differ between train=full and train=full_rehearsal.
ALLOWED = [
    "train.name", "run_name",  # the profile's name and the run folder named after it
    # model locations -> the stand-ins of scripts/make_standins.py
    "train.encoder.name", "train.llm.name", "train.tokenizer.name",
    "train.vocoder.path", "train.vocoder.url", "train.vocoder.sha256",
    # dtypes and precision
    "train.encoder.dtype", "train.llm.dtype", "train.precision",
    # parallelism and devices
    "train.fsdp", "device",
    # CPU sizing: batches, data workers, schedule length, evaluation/checkpoint/log frequency
    "train.batch_size", "train.micro_batch_size", "train.epochs", "train.num_workers", "data.num_workers",
    "train.eval_every", "eval.every_steps", "train.save_every", "checkpoint.every_steps",
    "train.log_every", "log.every_steps",
    # shapes of the parts trained from scratch (units and upsampling are the recipe's, not shapes)
    "train.adaptor.hidden", "train.decoder.hidden", "train.decoder.layers", "train.decoder.heads",
    "train.decoder.ffn",
]


def resolved(profile: str, *overrides: str) -> dict[str, object]:
    cfg = load_config(["data_root=/data", f"train={profile}", *overrides])
    return flatten(OmegaConf.to_container(cfg, resolve=True))


def test_rehearsal_differs_from_full_only_in_allowed_keys():
    full, rehearsal = resolved("full"), resolved("full_rehearsal")
    keys = differing(full, rehearsal)
    stray = outside(keys, ALLOWED)
    assert not stray, {k: (full.get(k, "<absent>"), rehearsal.get(k, "<absent>")) for k in stray}
    assert {"train.encoder.name", "train.llm.name", "train.tokenizer.name"} <= set(keys)
    mine = resolved("full_rehearsal", "model_cache=/models")
    assert mine["train.encoder.name"] == "/models/standins/whisper_hf"
    assert mine["train.llm.name"] == mine["train.tokenizer.name"] == "/models/standins/llama"


def test_model_locations_expand_home_and_a_missing_folder_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "llama").mkdir()
    assert model_location("~/llama", "train.llm.name") == str(tmp_path / "llama")
    assert model_location("meta-llama/Llama-3.1-8B-Instruct", "train.llm.name") == "meta-llama/Llama-3.1-8B-Instruct"
    with pytest.raises(UserError, match=r"train.encoder.name: .*/whisper_hf is not a folder"):
        model_location("~/whisper_hf", "train.encoder.name")


@pytest.mark.slow
def test_full_rehearsal_trains_both_stages_from_the_standins(rehearsal_build, standins, tmp_path):
    import torch
    from safetensors.torch import load_file

    from omni import checkpoint as ckpt
    from omni.metrics import read
    from omni.train import train

    model_cache, standins = standins, standins / "standins"  # the rehearsal build's stand-ins
    # The published build stays read-only: the run goes under tmp. Two optimizer steps per stage (two
    # epochs over a few items), each of two micro-batches of one item (gradient accumulation as in the recipe).
    cfg = load_config([f"data_root={rehearsal_build}", "train=full_rehearsal", f"model_cache={model_cache}",
                       f"runs_dir={tmp_path / 'runs'}", "device=cpu", "max_steps=2", "train.epochs=2", "train.batch_size=2",
                       "train.micro_batch_size=1", "eval.max_items=2", "log.tensorboard=false"])
    run = train(cfg)

    assert [(c.stage, c.step, c.meta["done"]) for c in ckpt.checkpoints(run)] == [(1, 2, True), (2, 2, True)]
    rows = [r for r in read(run) if r["split"] == "train"]
    assert sorted((int(r["stage"]), int(r["step"])) for r in rows) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in read(run))

    # Both came from the stand-in folders through from_pretrained: the frozen encoder exactly (as
    # stored, in the profile's bf16), the LLM within two small AdamW steps (a random init is far off).
    weights = load_file(ckpt.checkpoints(run)[0].path / "model.safetensors")
    whisper = load_file(standins / "whisper_hf" / "model.safetensors")
    conv = whisper["model.encoder.conv1.weight"].to(torch.bfloat16)
    assert torch.equal(weights["encoder.conv1.weight"], conv)
    llama = load_file(standins / "llama" / "model.safetensors")
    for key in ("lm_head.weight", "model.layers.0.mlp.down_proj.weight"):
        assert torch.allclose(weights[f"llm.{key}"].float(), llama[key].float(), atol=1e-3), key
    assert weights["adaptor.proj.2.weight"].shape[0] == 64  # the stand-in Llama's width
