"""Stand-ins for the full profile's units stage, in the recipe's real file formats, random weights.

    make_hubert_standins(directory, seed) -> paths and sha256 pins

writes into `directory` the file names `conf/profile/full.yaml` reads under ${model_cache}/hubert/
(profile=full_rehearsal reads them under ${model_cache}/standins/hubert/):
- `mhubert_base_vp_en_es_fr_it3.pt`: a fairseq HuBERT pre-training checkpoint as fairseq writes
  one (`args`, a plain-dict `cfg`, `model` with fairseq's parameter names including the
  pre-training heads, `task_state` holding the label dictionary as a pickled
  `fairseq.data.dictionary.Dictionary`, `optimizer_history`, `extra_state`). Layout as the
  recipe's base model (the default conv feature extractor, 12 transformer layers, so layer 11
  exists) but tiny transformer widths.
- `mhubert_base_vp_en_es_fr_it3_L11_km1000.bin`: a scikit-learn MiniBatchKMeans with 1000
  clusters saved with joblib, as fairseq's `learn_kmeans.py` saves it (centroids set, not fitted);
- `mhubert_base_vp_en_es_fr_it3_L11_km1000.npy`: that file converted by running
  `scripts/convert_kmeans.py SOURCE TARGET --sha256 HEX`, the command a user runs.

The returned pins are what a user sets: `stages.units.checkpoint_sha256` and
`stages.units.kmeans.centroids_sha256` (the one convert_kmeans.py prints). Every value is built
from seeded integers (exact_random), so a seed gives the same bytes on any CPU with the locked
torch, scikit-learn and joblib: profile=full_rehearsal pins seed 0's hashes.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.shards import file_sha256  # noqa: E402

CHECKPOINT = "mhubert_base_vp_en_es_fr_it3.pt"
KMEANS_BIN = "mhubert_base_vp_en_es_fr_it3_L11_km1000.bin"
CENTROIDS = "mhubert_base_vp_en_es_fr_it3_L11_km1000.npy"
LAYERS, LAYER = 12, 11
HIDDEN, HEADS, FFN, FINAL_DIM = 64, 4, 128, 16  # the recipe's: 768, 12, 3072, 256
CLUSTERS = 1000
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq Dictionary's first four symbols

# fairseq's HubertConfig (model) and HubertPretrainingConfig (task) as a checkpoint stores them.
MODEL_CFG = {
    "_name": "hubert", "label_rate": 50.0, "extractor_mode": "default", "encoder_layers": LAYERS,
    "encoder_embed_dim": HIDDEN, "encoder_ffn_embed_dim": FFN, "encoder_attention_heads": HEADS,
    "activation_fn": "gelu", "layer_type": "transformer", "dropout": 0.1, "attention_dropout": 0.1,
    "activation_dropout": 0.0, "encoder_layerdrop": 0.05, "dropout_input": 0.1, "dropout_features": 0.1,
    "final_dim": FINAL_DIM, "untie_final_proj": False, "layer_norm_first": False,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", "conv_bias": False,
    "logit_temp": 0.1, "target_glu": False, "feature_grad_mult": 0.1, "mask_length": 10, "mask_prob": 0.8,
    "mask_selection": "static", "mask_other": 0.0, "no_mask_overlap": False, "mask_min_space": 1,
    "mask_channel_length": 10, "mask_channel_prob": 0.0, "mask_channel_selection": "static",
    "mask_channel_other": 0.0, "no_mask_channel_overlap": False, "mask_channel_min_space": 1,
    "conv_pos": 128, "conv_pos_groups": 16, "latent_temp": [2.0, 0.5, 0.999995], "skip_masked": False,
    "skip_nomask": False, "checkpoint_activations": False, "required_seq_len_multiple": 2,
}
TASK_CFG = {
    "_name": "hubert_pretraining", "data": "/checkpoint/manifests", "fine_tuning": False, "labels": ["km"],
    "label_dir": "/checkpoint/labels", "label_rate": 50.0, "sample_rate": 16000, "normalize": False,
    "enable_padding": False, "max_keep_size": None, "max_sample_size": 250000, "min_sample_size": 32000,
    "single_target": False, "random_crop": True, "pad_audio": False,
}


class Dictionary:
    """Pickled as fairseq.data.dictionary.Dictionary (its attributes, fairseq's layout)."""

    def __init__(self, symbols: list[str]):
        self.bos_word, self.unk_word, self.pad_word, self.eos_word = "<s>", "<unk>", "<pad>", "</s>"
        self.symbols = list(symbols)
        self.count = [1] * len(symbols)
        self.indices = {s: i for i, s in enumerate(symbols)}
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3
        self.nspecial = len(SPECIALS)


@contextlib.contextmanager
def pickled_as_fairseq_dictionary():
    """Let pickle name `Dictionary` as fairseq does; fairseq itself is not needed."""
    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    sys.modules["fairseq.data.dictionary"].Dictionary = Dictionary
    original = (Dictionary.__module__, Dictionary.__qualname__)
    Dictionary.__module__ = "fairseq.data.dictionary"
    try:
        yield
    finally:
        Dictionary.__module__, Dictionary.__qualname__ = original
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = module


def exact_random(rng, shape, scale: float, offset: float = 0.0):
    """Seeded values built from integers with single correctly-rounded float operations, so the
    same seed gives the same bits on any CPU (floating-point samplers and forward passes may not)."""
    import numpy as np

    ints = rng.integers(-128, 129, size=shape).astype(np.float32)
    return ints * np.float32(scale / 128) + np.float32(offset)


def random_hubert(seed: int):
    """transformers' HubertModel with the stand-in's shape and seeded random weights (every
    tensor replaced by exact_random values: uniform, scaled by 1/sqrt(fan-in); norms near 1; biases
    zero). Each layer's residual branches are scaled down: a random 12-layer post-norm transformer
    otherwise averages every frame into the same vector by layer 11, and k-means would see one point."""
    import numpy as np
    import torch
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                          intermediate_size=FFN, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
                          apply_spec_augment=False)
    model = HubertModel(config).eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight") or name.endswith("original0"):
                values = exact_random(rng, tuple(p.shape), 0.25, 1.0)
            elif p.dim() > 1:
                branch = "out_proj" in name or "output_dense" in name
                values = exact_random(rng, tuple(p.shape), (0.1 if branch else 1.0) * float(np.sqrt(3.0 / p[0].numel())))
            else:
                values = exact_random(rng, tuple(p.shape), 0.1) * np.float32(0.0 if name.endswith("bias") else 1.0)
            p.copy_(torch.from_numpy(values))
    return model


def fairseq_state(model, seed: int) -> dict:
    """The model's tensors under fairseq's names (spelled out here, independent of the project's
    renaming in stages/engines/hubert.py), plus fairseq's pre-training heads."""
    import numpy as np
    import torch

    hf = {k: v.clone() for k, v in model.state_dict().items()}
    fs = {f"feature_extractor.conv_layers.{i}.0.weight": hf[f"feature_extractor.conv_layers.{i}.conv.weight"]
          for i in range(7)}
    for p in ("weight", "bias"):
        fs[f"feature_extractor.conv_layers.0.2.{p}"] = hf[f"feature_extractor.conv_layers.0.layer_norm.{p}"]
    fs["mask_emb"] = hf["masked_spec_embed"]
    for p in ("weight", "bias"):
        fs[f"layer_norm.{p}"] = hf[f"feature_projection.layer_norm.{p}"]
        fs[f"post_extract_proj.{p}"] = hf[f"feature_projection.projection.{p}"]
    fs["encoder.pos_conv.0.bias"] = hf["encoder.pos_conv_embed.conv.bias"]
    fs["encoder.pos_conv.0.weight_g"] = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    fs["encoder.pos_conv.0.weight_v"] = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    for i in range(LAYERS):
        for p in ("weight", "bias"):
            for proj in ("k", "v", "q", "out"):
                fs[f"encoder.layers.{i}.self_attn.{proj}_proj.{p}"] = hf[f"encoder.layers.{i}.attention.{proj}_proj.{p}"]
            fs[f"encoder.layers.{i}.self_attn_layer_norm.{p}"] = hf[f"encoder.layers.{i}.layer_norm.{p}"]
            fs[f"encoder.layers.{i}.fc1.{p}"] = hf[f"encoder.layers.{i}.feed_forward.intermediate_dense.{p}"]
            fs[f"encoder.layers.{i}.fc2.{p}"] = hf[f"encoder.layers.{i}.feed_forward.output_dense.{p}"]
            fs[f"encoder.layers.{i}.final_layer_norm.{p}"] = hf[f"encoder.layers.{i}.final_layer_norm.{p}"]
    for p in ("weight", "bias"):
        fs[f"encoder.layer_norm.{p}"] = hf[f"encoder.layer_norm.{p}"]
    rng = np.random.default_rng(seed + 1)
    fs["final_proj.weight"] = torch.from_numpy(exact_random(rng, (FINAL_DIM, HIDDEN), 0.02))
    fs["final_proj.bias"] = torch.zeros(FINAL_DIM)
    fs["label_embs_concat"] = torch.from_numpy(exact_random(rng, (CLUSTERS + len(SPECIALS), FINAL_DIM), 1.0))
    return fs


def write_checkpoint(path: Path, model, seed: int) -> None:
    import torch

    cfg = {"_name": None, "common": {"fp16": True, "seed": seed, "log_interval": 200},
           "distributed_training": {"distributed_world_size": 32}, "dataset": {"max_tokens": 1400000},
           "optimization": {"max_update": 400000, "lr": [0.0005], "update_freq": [1]},
           "checkpoint": {"save_dir": "/checkpoint/hubert"}, "model": MODEL_CFG, "task": TASK_CFG,
           "criterion": {"_name": "hubert", "pred_masked_weight": 1.0, "pred_nomask_weight": 0.0,
                         "loss_weights": [10.0]},
           "optimizer": {"_name": "adam", "adam_betas": "(0.9,0.98)", "adam_eps": 1e-06, "weight_decay": 0.01},
           "lr_scheduler": {"_name": "polynomial_decay", "warmup_updates": 32000}}
    state = {
        "args": None,
        "cfg": cfg,
        "model": fairseq_state(model, seed),
        "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 2.1}, "num_updates": 400000}],
        "task_state": {"dictionaries": [Dictionary(SPECIALS + [str(i) for i in range(CLUSTERS)])]},
        "extra_state": {"metrics": {}, "previous_training_time": 123456.7,
                        "train_iterator": {"version": 2, "epoch": 30, "iterations_in_epoch": 0, "shuffle": True}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with pickled_as_fairseq_dictionary():
        torch.save(state, path)


def write_kmeans(path: Path, seed: int) -> None:
    """A scikit-learn MiniBatchKMeans with 1000 clusters saved with joblib, as fairseq's
    learn_kmeans.py saves one. Its centroids are exact_random values in the range of layer-11
    features (post-norm, near unit scale), set rather than fitted: a fit's float arithmetic would
    give other bits, and so other pins, on another CPU."""
    import joblib
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=CLUSTERS, init="k-means++", max_iter=100, batch_size=10000, tol=0.0,
                         max_no_improvement=100, n_init=20, reassignment_ratio=0.0, compute_labels=False,
                         random_state=seed)
    km.cluster_centers_ = exact_random(np.random.default_rng(seed + 2), (CLUSTERS, HIDDEN), 1.0)
    km.n_features_in_ = HIDDEN
    km.n_steps_ = km.n_iter_ = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(km, path)


def convert(source: Path, target: Path, source_sha256: str) -> str:
    """Run scripts/convert_kmeans.py as a user does; returns the centroids pin it prints."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_kmeans.py"), str(source), str(target),
                           "--sha256", source_sha256], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"convert_kmeans.py failed ({done.returncode}):\n{done.stderr}")
    found = re.search(r"kmeans\.centroids_sha256=([0-9a-f]{64})", done.stdout)
    if not found:
        raise RuntimeError(f"convert_kmeans.py printed no centroids pin:\n{done.stdout}")
    return found.group(1)


def make_hubert_standins(directory: Path, seed: int) -> dict:
    """Write the stand-ins into `directory` (the full profile's: ${model_cache}/hubert).

    Returns {"checkpoint", "checkpoint_sha256", "kmeans_bin", "kmeans_bin_sha256", "centroids",
    "centroids_sha256", "layer", "clusters", "hidden_size"} (paths as str)."""
    directory = Path(directory).expanduser().resolve()
    model = random_hubert(seed)
    checkpoint = directory / CHECKPOINT
    write_checkpoint(checkpoint, model, seed)
    kmeans_bin = directory / KMEANS_BIN
    write_kmeans(kmeans_bin, seed)
    bin_sha = file_sha256(kmeans_bin)
    centroids = directory / CENTROIDS
    centroids_sha = convert(kmeans_bin, centroids, bin_sha)
    if centroids_sha != file_sha256(centroids):
        raise RuntimeError("convert_kmeans.py printed a pin that does not match the file it wrote")
    return {"checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
            "kmeans_bin": str(kmeans_bin), "kmeans_bin_sha256": bin_sha,
            "centroids": str(centroids), "centroids_sha256": centroids_sha,
            "layer": LAYER, "clusters": CLUSTERS, "hidden_size": HIDDEN}


if __name__ == "__main__":
    import json

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("standins")
    print(json.dumps(make_hubert_standins(target, int(sys.argv[2]) if len(sys.argv) > 2 else 0), indent=2))
