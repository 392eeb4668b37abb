"""The fairseq checkpoint path: weight renaming, sha256 pin, weights-only loading.

The real mHuBERT checkpoint cannot be downloaded here, so the test writes a checkpoint in
fairseq's layout (fairseq's own parameter names, written out below independently of the
mapping under test) from a small random HubertModel, and checks the loaded model computes
the same features.
"""
import argparse
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from stages.engines.hubert import HubertFeatures, HubertSpec

LAYERS = 2
FAIRSEQ_CFG = {"_name": "hubert", "encoder_layers": LAYERS, "encoder_embed_dim": 64, "encoder_ffn_embed_dim": 128,
               "encoder_attention_heads": 4, "extractor_mode": "default", "conv_pos": 16, "conv_pos_groups": 4,
               "layer_norm_first": False, "conv_bias": False, "activation_fn": "gelu",
               "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"}


def source_model() -> HubertModel:
    torch.manual_seed(3)
    config = HubertConfig(hidden_size=64, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=128,
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, apply_spec_augment=False)
    model = HubertModel(config).eval()
    with torch.no_grad():  # non-trivial norm parameters, so a mix-up would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.rand_like(p) * 0.5)
    return model


def fairseq_state(model: HubertModel) -> dict:
    hf = model.state_dict()
    fs = {f"feature_extractor.conv_layers.{i}.0.weight": hf[f"feature_extractor.conv_layers.{i}.conv.weight"]
          for i in range(7)}
    fs["feature_extractor.conv_layers.0.2.weight"] = hf["feature_extractor.conv_layers.0.layer_norm.weight"]
    fs["feature_extractor.conv_layers.0.2.bias"] = hf["feature_extractor.conv_layers.0.layer_norm.bias"]
    for p in ("weight", "bias"):
        fs[f"layer_norm.{p}"] = hf[f"feature_projection.layer_norm.{p}"]
        fs[f"post_extract_proj.{p}"] = hf[f"feature_projection.projection.{p}"]
        fs[f"encoder.layer_norm.{p}"] = hf[f"encoder.layer_norm.{p}"]
    fs["encoder.pos_conv.0.weight_g"] = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    fs["encoder.pos_conv.0.weight_v"] = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    fs["encoder.pos_conv.0.bias"] = hf["encoder.pos_conv_embed.conv.bias"]
    for i in range(LAYERS):
        for p in ("weight", "bias"):
            for proj in ("k", "q", "v", "out"):
                fs[f"encoder.layers.{i}.self_attn.{proj}_proj.{p}"] = hf[f"encoder.layers.{i}.attention.{proj}_proj.{p}"]
            fs[f"encoder.layers.{i}.self_attn_layer_norm.{p}"] = hf[f"encoder.layers.{i}.layer_norm.{p}"]
            fs[f"encoder.layers.{i}.fc1.{p}"] = hf[f"encoder.layers.{i}.feed_forward.intermediate_dense.{p}"]
            fs[f"encoder.layers.{i}.fc2.{p}"] = hf[f"encoder.layers.{i}.feed_forward.output_dense.{p}"]
            fs[f"encoder.layers.{i}.final_layer_norm.{p}"] = hf[f"encoder.layers.{i}.final_layer_norm.{p}"]
    fs["mask_emb"] = torch.zeros(64)
    fs["final_proj.weight"] = torch.zeros(256, 64)  # pre-training heads, unused
    fs["label_embs_concat"] = torch.zeros(504, 256)
    return fs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = source_model()
    path = tmp_path_factory.mktemp("ckpt") / "mhubert_tiny.pt"
    torch.save({"args": None, "cfg": {"model": FAIRSEQ_CFG, "task": {"normalize": False}},
                "model": fairseq_state(model), "optimizer_history": [{"num_updates": 1}]}, path)
    return model, path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_converted_checkpoint_computes_the_same_features(checkpoint, clips):
    model, path, sha = checkpoint
    loaded = HubertFeatures(HubertSpec(checkpoint=str(path), checkpoint_sha256=sha, layer=LAYERS, device="cpu"))
    with torch.inference_mode():
        expected = model(torch.from_numpy(clips[1])[None]).last_hidden_state[0]
    torch.testing.assert_close(loaded.features([clips[1]])[0], expected, atol=1e-4, rtol=1e-4)
    assert sha in loaded.identity


def test_legacy_namespace_args_are_accepted(tmp_path, clips):
    model = source_model()
    path = tmp_path / "legacy.pt"
    torch.save({"args": argparse.Namespace(**FAIRSEQ_CFG), "cfg": None, "model": fairseq_state(model)}, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = HubertFeatures(HubertSpec(checkpoint=str(path), checkpoint_sha256=sha, layer=1, device="cpu"))
    assert loaded.features([clips[1]])[0].shape[1] == 64


def test_unpinned_or_wrong_sha256_is_refused(checkpoint):
    _, path, sha = checkpoint
    with pytest.raises(ValueError, match=f"its sha256 is {sha}"):
        HubertFeatures(HubertSpec(checkpoint=str(path), checkpoint_sha256=None, layer=1))
    with pytest.raises(ValueError, match="wrong or corrupt"):
        HubertFeatures(HubertSpec(checkpoint=str(path), checkpoint_sha256="0" * 64, layer=1))


class Payload:
    """Anything outside the allow-list, as a tampered checkpoint might carry."""


def test_unknown_pickled_classes_are_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"cfg": {"model": FAIRSEQ_CFG}, "model": {}, "extra": Payload()}, path)
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        HubertFeatures(HubertSpec(checkpoint=str(path), checkpoint_sha256=sha, layer=1))


def test_a_layer_past_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match="layer must be in 1..12"):
        HubertFeatures(HubertSpec(layer=13))
    assert np.iinfo(np.int16).max > 1000  # the recipe's units fit the stored type
