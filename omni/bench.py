"""Training throughput and memory of the trainer (used by `make bench`; never a pass/fail test).

    python -m omni.bench                                  # local profile on CPU, tiny synthetic items
    python -m omni.bench data_root=DIR steps=10 train.micro_batch_size=2
    python -m omni.bench shape=recipe items=64 train=real_size train.llm.config.num_hidden_layers=16

Trains each stage for a few optimizer steps in a throw-away run folder (no checkpoints are
written) and reports the mean of the per-step tokens/s and model TFLOP/s after the first (warm-up)
step, the model FLOPs utilization against the GPU's bf16 dense peak (omni/flops.py says what is
counted), and the peak GPU memory of each stage on CUDA. Tokens are the LLM's input positions that are not
padding (the 300 speech embeddings + prompt + response per item), and the step time includes
loading, decoding and log-mel computation, as in real training.

`shape=recipe` makes items of the recipe's sizes (instructions of 5-10 s, responses of 30-50
words and 554 units; docs/recipe.md section 5) instead of tiny ones. Stage 1 of the 8B recipe needs
FSDP over several GPUs (fp32 weights + AdamW: ~130 GB); on one GPU, fewer LLM layers give the
per-layer cost.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {  # make_rows keyword arguments
    "tiny": {},
    "recipe": {"seconds": (5.0, 10.0), "words": (30, 51), "units_per_item": 554},
}


def measure(overrides: list[str] | None = None, steps: int = 6, items: int = 16, shape: str = "tiny") -> dict:
    """{stage{N}_tokens_per_s, stage{N}_peak_gib (CUDA)} for the configured profile."""
    import torch

    from .config import load_config
    from .metrics import read
    from .synthetic import make_rows, write_shards
    from .train import train

    overrides = list(overrides or [])
    out: dict = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="omni-bench-") as tmp:
        if not any(o.startswith("data_root=") for o in overrides):
            write_shards(tmp, make_rows(items, seed=7, **SHAPES[shape]), shards=2)
            overrides.append(f"data_root={tmp}")
        for stage in (1, 2):
            cfg = load_config([f"runs_dir={tmp}/runs", f"run_name=bench-{stage}-{int(time.time())}",
                               f"stage={stage}", f"max_steps={steps + 1}", "data.eval_fraction=0.0",
                               "eval.max_items=0", "checkpoint.enabled=false", "log.every_steps=1",
                               "log.tensorboard=false", *overrides])
            cuda = torch.cuda.is_available() and cfg.device != "cpu"
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            rows = read(train(cfg))
            timed = [r for r in rows if r["split"] == "train" and int(r["stage"]) == stage and int(r["step"]) > 1]
            if timed:
                out[f"stage{stage}_tokens_per_s"] = sum(float(r["tokens_per_s"]) for r in timed) / len(timed)
                out[f"stage{stage}_tflops_per_s"] = sum(float(r["tflops_per_s"]) for r in timed) / len(timed)
            if cuda:
                out[f"stage{stage}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                out["device"] = torch.cuda.get_device_name()
        out["micro_batch_size"] = int(cfg.train.micro_batch_size)
        out["batch_size"] = int(cfg.train.batch_size)
        out["profile"] = str(cfg.train.name)
    return out


def main(argv: list[str] | None = None) -> None:
    from . import flops

    args = list(sys.argv[1:] if argv is None else argv)
    options = {"steps": "6", "items": "16", "shape": "tiny"}
    for a in list(args):
        key, _, value = a.partition("=")
        if key in options:
            options[key] = value
            args.remove(a)
    result = measure(args, steps=int(options["steps"]), items=int(options["items"]), shape=options["shape"])
    where = result.get("device") or f"CPU ({result['threads']} threads)"
    print(f"omni {result['profile']} profile on {where}, {options['shape']} items, "
          f"batch {result['batch_size']} (micro-batch {result['micro_batch_size']}):")
    peak_flops = flops.peak_flops(result.get("device"))
    if peak_flops:  # the counted FLOPs are summed over every rank
        peak_flops *= int(os.environ.get("WORLD_SIZE", "1"))
    for stage, name in ((1, "speech->text, cross-entropy"), (2, "speech->units, CTC")):
        rate = result.get(f"stage{stage}_tokens_per_s")
        if rate is not None:
            peak = result.get(f"stage{stage}_peak_gib")
            memory = f", peak GPU memory {peak:.1f} GiB" if peak is not None else ""
            tflops = result[f"stage{stage}_tflops_per_s"]
            mfu = f", MFU {tflops * 1e12 / peak_flops:.1%}" if peak_flops else ""
            print(f"  stage {stage} ({name}): {rate:,.0f} training tokens/s, {tflops:,.2f} model TFLOP/s{mfu}{memory}")
    if peak_flops:
        print(f"  MFU = model FLOPs/s (omni/flops.py) / {peak_flops / 1e12:,.0f} TFLOP/s, the bf16 dense peak")
    else:
        print("  MFU: no GPU peak known for this device (model FLOPs counted as in omni/flops.py)")


if __name__ == "__main__":
    main()
