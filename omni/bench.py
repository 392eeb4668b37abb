"""CPU training throughput of the local profile (used by `make bench`; never a pass/fail test).

    python -m omni.bench                      # synthetic shards in a temp folder, 6 steps per stage
    python -m omni.bench data_root=DIR steps=10 train.micro_batch_size=2

Trains each stage for a few optimizer steps in a throw-away run folder and reports the mean of
the per-step tokens/s after the first (warm-up) step. Tokens are the LLM's input positions that
are not padding (the 300 speech embeddings + prompt + response per item), and the step time
includes loading, decoding and log-mel computation, as in real training.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def measure(overrides: list[str] | None = None, steps: int = 6, items: int = 16) -> dict:
    """{stage: tokens/s} for the local profile; synthetic data unless data_root is given."""
    import torch

    from .config import load_config
    from .metrics import read
    from .synthetic import make_rows, write_shards
    from .train import train

    overrides = list(overrides or [])
    with tempfile.TemporaryDirectory(prefix="omni-bench-") as tmp:
        if not any(o.startswith("data_root=") for o in overrides):
            write_shards(tmp, make_rows(items, seed=7), shards=2)
            overrides.append(f"data_root={tmp}")
        cfg = load_config([f"runs_dir={tmp}/runs", f"run_name=bench-{int(time.time())}",
                           f"max_steps={steps + 1}", "data.eval_fraction=0.0", "eval.max_items=0",
                           "checkpoint.every_steps=0", "log.every_steps=1", "log.tensorboard=false",
                           *overrides])
        run = train(cfg)
        rows = read(run)
    out = {"threads": torch.get_num_threads(), "micro_batch_size": int(cfg.train.micro_batch_size)}
    for stage in (1, 2):
        rates = [float(r["tokens_per_s"]) for r in rows
                 if r["split"] == "train" and int(r["stage"]) == stage and int(r["step"]) > 1]
        if rates:
            out[f"stage{stage}_tokens_per_s"] = sum(rates) / len(rates)
    return out


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    steps = 6
    for a in list(args):
        if a.startswith("steps="):
            steps = int(a.split("=", 1)[1])
            args.remove(a)
    result = measure(args, steps=steps)
    print(f"omni local profile on CPU ({result['threads']} threads, micro-batch {result['micro_batch_size']}):")
    for stage, name in ((1, "speech->text, cross-entropy"), (2, "speech->units, CTC")):
        rate = result.get(f"stage{stage}_tokens_per_s")
        if rate is not None:
            print(f"  stage {stage} ({name}): {rate:,.0f} training tokens/s")


if __name__ == "__main__":
    main()
