"""The CosyVoice side of benchmarks/gpu_rates/cosyvoice.py; runs in the CosyVoice interpreter
(.venv-cosyvoice, or $COSYVOICE_PYTHON) with the repository on PYTHONPATH.

    python -m benchmarks.gpu_rates.cosyvoice_child JSON_SETTINGS  # then commands on stdin (serve)

A stream process holds one CosyVoiceEngine per stream it runs (the first process builds the model
folder where it is missing) and, told to, synthesizes its streams' sentences, one thread each.
"""
from __future__ import annotations

import itertools
import json
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import standins_cosyvoice  # noqa: E402
from standins_cosyvoice import SPEAKERS, onnx_stub  # noqa: E402

# CosyVoice-300M-SFT's sizes (its released cosyvoice.yaml), in the stand-in's classes and layout:
# text encoder 6 conformer blocks and LM 14 transformer blocks at d 1024, flow encoder 6 blocks at
# d 512 with a 4+12+4-block decoder at 256 channels, HiFT at 512 base channels.
REAL_SIZE = {
    "    text_encoder_input_size: 64\n    llm_input_size: 64\n    llm_output_size: 64\n":
        "    text_encoder_input_size: 512\n    llm_input_size: 1024\n    llm_output_size: 1024\n",
    "    text_encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder\n        input_size: 64\n"
    "        output_size: 64\n        attention_heads: 2\n        linear_units: 128\n        num_blocks: 1\n":
        "    text_encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder\n        input_size: 512\n"
        "        output_size: 1024\n        attention_heads: 16\n        linear_units: 4096\n        num_blocks: 6\n",
    "    llm: !new:cosyvoice.transformer.encoder.TransformerEncoder\n        input_size: 64\n"
    "        output_size: 64\n        attention_heads: 2\n        linear_units: 128\n        num_blocks: 1\n":
        "    llm: !new:cosyvoice.transformer.encoder.TransformerEncoder\n        input_size: 1024\n"
        "        output_size: 1024\n        attention_heads: 16\n        linear_units: 4096\n        num_blocks: 14\n",
    "    input_size: 64\n    output_size: 80\n": "    input_size: 512\n    output_size: 80\n",
    "    encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder\n        input_size: 64\n"
    "        output_size: 64\n        attention_heads: 2\n        linear_units: 128\n        num_blocks: 1\n":
        "    encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder\n        input_size: 512\n"
        "        output_size: 512\n        attention_heads: 8\n        linear_units: 2048\n        num_blocks: 6\n",
    "        sampling_ratios: [1, 1]\n": "        sampling_ratios: [1, 1, 1, 1]\n",
    "            channels: [64]\n            dropout: 0.0\n            attention_head_dim: 32\n"
    "            n_blocks: 1\n            num_mid_blocks: 1\n            num_heads: 2\n":
        "            channels: [256, 256]\n            dropout: 0.0\n            attention_head_dim: 64\n"
        "            n_blocks: 4\n            num_mid_blocks: 12\n            num_heads: 8\n",
    "    base_channels: 64\n": "    base_channels: 512\n",
    "    resblock_kernel_sizes: [3]\n    resblock_dilation_sizes: [[1, 3]]\n":
        "    resblock_kernel_sizes: [3, 7, 11]\n    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]\n",
    "    source_resblock_dilation_sizes: [[1, 3], [1, 3]]\n": "    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5]]\n",
    "        cond_channels: 64\n": "        cond_channels: 512\n",
}


def real_size_config() -> str:
    config = standins_cosyvoice.CONFIG
    for tiny, real in REAL_SIZE.items():
        assert config.count(tiny) == 1, f"the stand-in config changed near: {tiny.strip()[:60]}"
        config = config.replace(tiny, real)
    return config


def build(folder: Path, seed: int = 0) -> None:
    """The stand-in folder (scripts/standins_cosyvoice.py's layout and speakers) at real size."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    config = real_size_config()
    (folder / "cosyvoice.yaml").write_text(config, encoding="utf-8")
    torch.manual_seed(seed)
    modules = load_hyperpyyaml(config)
    for name in ("llm", "flow", "hift"):
        torch.save(modules[name].state_dict(), folder / f"{name}.pt")
        print(f"{name}: {sum(p.numel() for p in modules[name].parameters()) / 1e6:.1f} M parameters", flush=True)
    torch.save({s: {"embedding": torch.randn(1, 192)} for s in SPEAKERS}, folder / "spk2info.pt")
    onnx_stub(folder / "campplus.onnx", "input", [1, "frames", 80], 192)
    onnx_stub(folder / "speech_tokenizer_v1.onnx", "feats", [1, "frames", 128], 1)


def fixed_length(llm, tokens: int) -> None:
    """Make the LM emit exactly `tokens` speech tokens per sentence: end of speech is refused until
    then (random weights may never stop, or stop at once) and decoding ends there."""
    inference = llm.inference

    def bounded(*args, **kwargs):
        text_len = int(kwargs["text_len"])  # upstream adds the prompt's length to it in place
        kwargs["min_token_text_ratio"] = kwargs["max_token_text_ratio"] = (tokens + 1) / max(text_len, 1)
        yield from itertools.islice(inference(*args, **kwargs), tokens)

    llm.inference = bounded


def load(settings: dict):
    from stages.engines.cosyvoice_tts import CosyVoiceEngine

    engine = CosyVoiceEngine(settings["model"], threads=settings["threads"], fp16=settings["precision"] == "fp16")
    fixed_length(engine.model.model.llm, settings["tokens"])
    engine.synthesize("Warm up.", SPEAKERS[0], seed=0)
    return engine


def speak(engines: list, sentences: list[list[str]]) -> dict:
    """Each stream's sentences through its own engine, one thread per stream, all at once."""
    import torch

    from benchmarks.gpu_rates.common import device_name

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    results = [None] * len(sentences)

    def one_stream(index: int) -> None:
        audio_s, started = 0.0, time.time()
        for n, text in enumerate(sentences[index]):
            audio, rate = engines[index].synthesize(text, SPEAKERS[n % len(SPEAKERS)], seed=n)
            audio_s += len(audio) / rate
        if cuda:
            torch.cuda.synchronize()
        results[index] = {"audio_s": audio_s, "started": started, "ended": time.time()}

    threads = [threading.Thread(target=one_stream, args=(i,)) for i in range(len(sentences))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak_mib = (torch.cuda.max_memory_allocated() / 2**20 if cuda  # the resident models included
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"streams": results, "peak_mib": peak_mib, "device": device_name("cuda" if cuda else "cpu"), "cuda": cuda}


def serve(settings: dict) -> None:
    """Answers commands on stdin, one JSON line each: {"load": N} -> `READY` once N engines are
    loaded and warm; {"sentences": [[...] per stream]} -> the measurement as one JSON line."""
    if settings["build"]:
        (standins_cosyvoice.build if settings["tiny"] else build)(Path(settings["model"]))
    engines = []
    for line in sys.stdin:
        command = json.loads(line)
        if "load" in command:
            while len(engines) < command["load"]:
                engines.append(load(settings))
            print("READY", flush=True)
        else:
            print(json.dumps(speak(engines, command["sentences"])), flush=True)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
