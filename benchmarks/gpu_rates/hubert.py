"""HuBERT units (the units stage): benchmarks/units.py's model and batching, as rate lines.

    python -m benchmarks.gpu_rates.hubert [--tiny] [--device cuda] [--precision fp32 bf16]
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks.gpu_rates.common import cuda_available, device_name, emit, peak_memory, rate_row
from benchmarks.units import RATE, batched, load, recipe_clips


def run(tiny: bool, device: str, precisions: list[str]) -> list[dict]:
    data = [c[: 3 * RATE] for c in recipe_clips(0.001)][:2] if tiny else recipe_clips(0.5)  # 3 s, or half an hour
    seconds = sum(len(c) for c in data) / RATE
    batch_seconds = 10.0 if tiny else 240.0
    rows = []
    for precision in precisions:
        hubert = load(device, precision)
        batched(hubert, data[:2], batch_seconds)  # warm-up
        with peak_memory(device) as peak:
            started = time.perf_counter()
            batched(hubert, data, batch_seconds)
            wall = time.perf_counter() - started
        rows.append(emit(rate_row(engine="HuBERT-base random weights, layer 11 (units stage batching)",
                                  model_shape="HuBERT-base (12 layers, d_model 768)", device=device_name(device),
                                  precision=precision, batch=f"{batch_seconds:g} padded s", audio_s=seconds,
                                  wall_s=wall, peak_mib=peak["mib"], stage="units")))
        del hubert
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_rates.hubert")
    parser.add_argument("--tiny", action="store_true", help="a few seconds of audio (a CPU check of the code path)")
    parser.add_argument("--device", default="cuda" if cuda_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=None, help="fp32 tf32 bf16 (default: fp32, + bf16 on CUDA)")
    args = parser.parse_args(argv)
    run(args.tiny, args.device, args.precision or (["fp32", "bf16"] if args.device == "cuda" else ["fp32"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
