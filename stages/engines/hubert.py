"""HuBERT features of one transformer layer, through transformers' `HubertModel`.

Two sources of weights:
- the recipe's fairseq checkpoint (`mhubert_base_vp_en_es_fr_it3.pt`), whose tensors are renamed
  into transformers' layout by the mapping below (no fairseq needed). It is read with
  `torch.load(weights_only=True)` after its sha256 matched the pinned value. Besides tensors and
  plain containers, fairseq's HuBERT pre-training checkpoints pickle the task's label dictionaries
  (`task_state.dictionaries`, `fairseq.data.dictionary.Dictionary`); those are rebuilt as inert
  records (see FAIRSEQ_INERT_GLOBALS): no fairseq code is imported or run;
- `checkpoint: null`: HuBERT-base with random weights drawn from a fixed seed, for offline runs
  and tests (no registry ships HuBERT weights). Its units carry no phonetic meaning.

Batching: HuBERT-base's first convolution is followed by a GroupNorm with one group per
channel, i.e. each channel is normalized over the whole time axis. With zero padding in a batch
those statistics would include the padding and every frame of the shorter clips would change.
`features()` therefore applies that normalization to each clip's own frames only; the rest
of the network is padding-safe (later convolutions only see real samples for the frames we
keep, and the encoder zeroes padded frames and masks them out of attention). Batched features
then equal per-clip features up to float rounding (tests/units/ checks the units are equal), in
exact fp32: TF32 and bf16 on CUDA round differently for different batch shapes.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000

# fairseq's HuBERT parameter names -> transformers' HubertModel names (first match wins).
FAIRSEQ_TO_TRANSFORMERS: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", r"feature_extractor.conv_layers.\1.conv.weight"),
    (r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"feature_extractor.conv_layers.0.layer_norm.\1"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(k|q|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", r"masked_spec_embed"),
]
# Pre-training heads that feature extraction never uses.
FAIRSEQ_UNUSED = re.compile(r"(final_proj|label_embs_concat)(\.|$)")
FAIRSEQ_DEFAULT_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
# Classes fairseq pickles into HuBERT checkpoints that feature extraction never reads: the
# pre-training task's label dictionaries (state["task_state"]["dictionaries"]). The weights-only
# unpickler may build them only as InertRecord subclasses carrying their attributes.
FAIRSEQ_INERT_GLOBALS = ("fairseq.data.dictionary.Dictionary",)


class InertRecord:
    """Stands in for a pickled class: keeps the attributes it is given, has no other code."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def inert_global(dotted: str) -> tuple[type, str]:
    """An InertRecord subclass the weights-only unpickler accepts under the name `dotted`."""
    module, _, name = dotted.rpartition(".")
    return type(name, (InertRecord,), {"__module__": module, "__qualname__": name}), dotted


def allowed_globals(safe_globals: list[str]) -> list[Any]:
    """What torch's weights-only unpickler may build besides tensors and plain containers: the
    argparse Namespace of legacy fairseq configs, fairseq's label dictionaries (inert), and the
    configured classes: the real class where its module imports here, else an inert record."""
    import importlib

    allowed: list[Any] = [argparse.Namespace, *(inert_global(name) for name in FAIRSEQ_INERT_GLOBALS)]
    for dotted in safe_globals:
        if dotted in FAIRSEQ_INERT_GLOBALS:
            continue
        module, _, name = dotted.rpartition(".")
        try:
            allowed.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            log.info("checkpoint_safe_globals: %s is not importable here; rebuilt as an inert record", dotted)
            allowed.append(inert_global(dotted))
    return allowed


def rename_fairseq_state(state: dict[str, Any]) -> dict[str, Any]:
    renamed = {}
    for name, tensor in state.items():
        if FAIRSEQ_UNUSED.match(name):
            continue
        for pattern, target in FAIRSEQ_TO_TRANSFORMERS:
            if re.fullmatch(pattern, name):
                renamed[re.sub(pattern, target, name)] = tensor
                break
        else:
            raise ValueError(f"fairseq HuBERT parameter {name!r} has no transformers counterpart")
    return renamed


def hubert_config_from_fairseq(cfg: dict[str, Any]):
    """HubertConfig for a fairseq model config (a dict, or the legacy argparse namespace)."""
    from transformers import HubertConfig

    if cfg.get("layer_norm_first"):
        raise ValueError("fairseq HuBERT with layer_norm_first=True (large models) is not supported")
    conv = str(cfg.get("conv_feature_layers", FAIRSEQ_DEFAULT_CONV)).replace(" ", "")
    if conv != FAIRSEQ_DEFAULT_CONV.replace(" ", ""):
        raise ValueError(f"unsupported conv_feature_layers {conv!r}")
    return HubertConfig(
        hidden_size=cfg.get("encoder_embed_dim", 768),
        num_hidden_layers=cfg.get("encoder_layers", 12),
        num_attention_heads=cfg.get("encoder_attention_heads", 12),
        intermediate_size=cfg.get("encoder_ffn_embed_dim", 3072),
        hidden_act=cfg.get("activation_fn", "gelu"),
        feat_extract_norm="layer" if cfg.get("extractor_mode") == "layer_norm" else "group",
        conv_bias=bool(cfg.get("conv_bias", False)),
        num_conv_pos_embeddings=cfg.get("conv_pos", 128),
        num_conv_pos_embedding_groups=cfg.get("conv_pos_groups", 16),
        do_stable_layer_norm=False,
        apply_spec_augment=False,
    )


def cached_checkpoint(checkpoint: str, model_cache: str) -> Path:
    """Where the checkpoint is read from: a local path as given, a URL's file under ${model_cache}/hubert/."""
    if not re.match(r"https?://", checkpoint):
        return Path(checkpoint).expanduser()
    return Path(model_cache).expanduser() / "hubert" / checkpoint.rsplit("/", 1)[-1]


def fetch_checkpoint(checkpoint: str, model_cache: str) -> Path:
    """A local path, or an http(s) URL downloaded once into the model cache."""
    path = cached_checkpoint(checkpoint, model_cache)
    if not re.match(r"https?://", checkpoint):
        if not path.is_file():
            raise FileNotFoundError(f"HuBERT checkpoint not found: {path}")
        return path
    from torch.hub import download_url_to_file

    if not path.is_file():
        log.info("downloading %s -> %s", checkpoint, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        download_url_to_file(checkpoint, str(path), progress=False)
    return path


def load_fairseq_checkpoint(path: Path, sha256: str | None, safe_globals: list[str]):
    """The weights and model config of a fairseq HuBERT checkpoint, without executing pickle code."""
    import pickle

    import torch

    actual = file_sha256(path)
    if sha256 is None:
        raise ValueError(f"no sha256 pinned for {path.name} (its sha256 is {actual}); check it against "
                         f"a trusted source, then set stages.units.checkpoint_sha256={actual}")
    if actual != sha256:
        raise ValueError(f"{path} has sha256 {actual}, but {sha256} is pinned: wrong or corrupt file")
    # The checkpoint also pickles its training config and task state (see allowed_globals).
    # Anything else is refused by the weights-only unpickler unless the config lists it.
    try:
        with torch.serialization.safe_globals(allowed_globals(safe_globals)):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path.name} could not be read weights-only: {exc}\nIf the file is the one you "
                         "pinned, list the class it names in stages.units.checkpoint_safe_globals (one "
                         "that cannot be imported here is rebuilt as an inert record).") from None
    if ckpt.get("cfg"):
        model_cfg = dict(ckpt["cfg"]["model"])
    elif ckpt.get("args") is not None:
        model_cfg = vars(ckpt["args"])
    else:
        model_cfg = {}
    return ckpt["model"], model_cfg


@dataclass(frozen=True)
class HubertSpec:
    checkpoint: str | None = None  # path or URL of a fairseq checkpoint; None: random HuBERT-base
    checkpoint_sha256: str | None = None
    safe_globals: tuple[str, ...] = ()  # extra classes the weights-only unpickler may build
    layer: int = 11  # 1-based transformer layer whose output is the feature
    seed: int = 0  # for random weights
    device: str = "cpu"  # cpu | cuda | auto
    precision: str = "fp32"  # fp32 | tf32 | bf16; the last two only on CUDA


PRECISIONS = ("fp32", "tf32", "bf16")


class HubertFeatures:
    """`features(waves)` -> one [frames, hidden] float32 tensor per 16 kHz clip, on the model's
    device (the centroid search runs there too, so GPU features never make a round trip)."""

    def __init__(self, spec: HubertSpec, model_cache: str = "."):
        import torch
        from transformers import HubertConfig, HubertModel

        # CPU threads are the caller's to set, around each call (units: pinned_threads): a count
        # set here, once, would not survive what other engines of the process do to it.
        self.spec = spec
        if spec.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(spec.device)
        if spec.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {spec.precision!r}")
        if spec.precision != "fp32" and self.device.type != "cuda":
            raise ValueError(f"precision {spec.precision} needs a CUDA device; this one is {self.device}")
        if spec.checkpoint is None:
            config = HubertConfig(apply_spec_augment=False)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(spec.seed)
                model = HubertModel(config)
            self.identity = f"hubert-base random weights (seed {spec.seed})"
        else:
            path = fetch_checkpoint(spec.checkpoint, model_cache)
            state, fairseq_cfg = load_fairseq_checkpoint(path, spec.checkpoint_sha256, list(spec.safe_globals))
            model = HubertModel(hubert_config_from_fairseq(fairseq_cfg))
            missing, unexpected = model.load_state_dict(rename_fairseq_state(state), strict=False)
            missing = [m for m in missing if m != "masked_spec_embed"]
            if missing or unexpected:
                raise ValueError(f"checkpoint does not fit HubertModel: missing {missing}, unexpected {unexpected}")
            self.identity = f"{path.name} sha256:{spec.checkpoint_sha256}"
        layers = model.config.num_hidden_layers
        if not 1 <= spec.layer <= layers:
            raise ValueError(f"layer must be in 1..{layers}, got {spec.layer}")
        # Layers past the one we read are never needed.
        model.encoder.layers = model.encoder.layers[: spec.layer]
        self.model = model.eval().to(self.device)
        self.hidden_size = model.config.hidden_size
        convs = model.feature_extractor.conv_layers
        self._first_norm = getattr(convs[0], "layer_norm", None)
        self._group_norm_first = isinstance(self._first_norm, torch.nn.GroupNorm)

    def num_frames(self, num_samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(num_samples))

    def features(self, waves: list[np.ndarray]) -> list:
        """One forward pass over a (right-padded) batch; returns each clip's frames, unpadded."""
        import torch

        lengths = torch.tensor([len(w) for w in waves], device=self.device)
        batch = torch.zeros(len(waves), int(lengths.max()), device=self.device)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
        with torch.inference_mode(), self._precision():
            conv = self._conv_features(batch, lengths)  # [batch, channels, frames]
            frames = self.model._get_feat_extract_output_lengths(lengths)
            mask = torch.arange(conv.shape[-1], device=self.device)[None, :] < frames[:, None]
            hidden = self.model.feature_projection(conv.transpose(1, 2))
            hidden = self.model.encoder(hidden, attention_mask=mask).last_hidden_state
        return [hidden[i, :n].float() for i, n in enumerate(frames.tolist())]

    @contextlib.contextmanager
    def _precision(self):
        """fp32 is exact fp32: TF32 convolutions (cuDNN's default) pick different rounding for
        different batch shapes, so a batch would no longer give what each clip alone gives."""
        import torch

        if self.device.type != "cuda":
            yield
            return
        tf32 = self.spec.precision == "tf32"
        matmul = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32), \
                    torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.spec.precision == "bf16"):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul

    def _conv_features(self, batch, lengths):

        convs = self.model.feature_extractor.conv_layers
        x = batch[:, None, :]
        if not self._group_norm_first:
            for layer in convs:  # per-frame LayerNorm variant: padding-safe as is
                x = layer(x)
            return x
        first = convs[0]
        x = first.conv(x)
        valid = (lengths - first.conv.kernel_size[0]) // first.conv.stride[0] + 1
        x = first.activation(masked_channel_norm(x, valid, self._first_norm))
        for layer in convs[1:]:
            x = layer(x)
        return x


def masked_channel_norm(x, valid, norm):
    """GroupNorm (one group per channel) of each clip over its first `valid` frames only, in
    place: the library's fused kernel on each clip's unpadded slice, so a batch gives exactly
    what the clip alone gives. Frames past `valid` are left as they are; nothing kept reads them."""
    from torch.nn import functional

    for i, n in enumerate(valid.tolist()):
        x[i, :, :n] = functional.group_norm(x[i : i + 1, :, :n], norm.num_groups, norm.weight, norm.bias, norm.eps)[0]
    return x


def length_batches(lengths: list[int], max_samples: int) -> list[list[int]]:
    """Indices grouped by similar length so padding stays small; each group's padded size
    (count x longest) stays under `max_samples` (a clip longer than that is a group alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > max_samples:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
